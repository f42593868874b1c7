"""Tests for the Prefect flows: one task per hot spot, failures recorded not lost, deployments as declared."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.context import TaskRunContext
from prefect.flows import Flow
from prefect.states import Completed, Failed
from shapely.geometry import mapping

from flows.area_check import area_check, area_spec, parse_window
from flows.briefing import briefing, run_info
from flows.daily import (
    RETRY_DELAYS_S,
    _retry_delays,
    analyse,
    daily_monitoring,
    retry_if_transient,
    run_settings,
    settings_from_dict,
)
from monitoring import pipeline
from monitoring.aoi import AOI, TimeWindows, aoi_from_bbox, windows_for
from monitoring.config import load_settings
from monitoring.errors import AOIError, ConfigError, DetectionError, SourceError, StoreError
from monitoring.progress import ProgressEvent, subscribed
from monitoring.results import Coverage, HotspotResult, Windows
from monitoring.store import AlertStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RUN_DATE = "2025-12-22"


class FakeSource:
    name = "fake"
    simulated = True


@dataclass
class FakePipeline:
    """Stands in for the science: records what the flows asked for and writes minimal results."""

    fail: dict[str, Callable[[int], BaseException | None]] = field(default_factory=dict)
    """area id -> f(attempt) giving the error to raise on that attempt (None: succeed)."""
    calls: list[tuple[str, str, set[str]]] = field(default_factory=list)
    """(area id, task run name, task run tags) per analyse_area call."""
    briefings: list[dict[str, Any]] = field(default_factory=list)

    def make_source(self, settings: Any) -> FakeSource:
        return FakeSource()

    def analyse_area(
        self, aoi: AOI, windows: TimeWindows, *, source: Any, settings: Any, run_dir: Path
    ) -> HotspotResult:
        ctx = TaskRunContext.get()
        # Outside Prefect (task.fn()) there is no task run to record.
        self.calls.append((aoi.id, ctx.task_run.name, set(ctx.task_run.tags)) if ctx else (aoi.id, "", set()))
        attempt = sum(1 for c in self.calls if c[0] == aoi.id)
        if aoi.id in self.fail and (error := self.fail[aoi.id](attempt)) is not None:
            raise error
        b = aoi.geobox.boundingbox
        result = HotspotResult(
            area_id=aoi.id,
            name=aoi.name,
            footprint=dict(mapping(aoi.footprint)),
            crs=str(aoi.crs),
            bounds=(b.left, b.bottom, b.right, b.top),
            windows=Windows(before=windows.before, after=windows.after, sar_before=windows.sar_before),
            source=source.name,
            simulated=source.simulated,
            status="ok",
            coverage=Coverage(
                optical_scenes_before=3,
                optical_scenes_after=2,
                optical_observed_fraction=1.0,
                optical_last_clear=windows.after[1],
                sar_scenes_before=30,
                sar_scenes_after=2,
                sar_observed_fraction=1.0,
                sar_last=windows.after[1],
                not_observed_fraction=0.0,
                status="observed",
            ),
        )
        pipeline.save_result(result, run_dir)
        return result

    def build_briefing(self, run_dir: Path, **kwargs: Any) -> dict[str, Path]:
        self.briefings.append({"run_dir": run_dir, **kwargs})
        out = run_dir / "briefing.pdf"
        out.write_bytes(b"%PDF-fake")
        return {"pdf": out}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakePipeline:
    fp = FakePipeline()
    for name in ("make_source", "analyse_area", "build_briefing"):
        monkeypatch.setattr(pipeline, name, getattr(fp, name))
    return fp


def _results(run_dir: Path) -> dict[str, HotspotResult]:
    return {
        p.parent.name: HotspotResult.model_validate_json(p.read_text())
        for p in sorted(run_dir.glob("areas/*/result.json"))
    }


# --- structure (no server needed)


def test_flow_and_task_structure() -> None:
    assert isinstance(daily_monitoring, Flow) and daily_monitoring.name == "daily-monitoring"
    assert isinstance(area_check, Flow) and area_check.name == "area-check"
    assert isinstance(briefing, Flow) and briefing.name == "briefing"
    assert analyse.task_run_name == "analyse-{area_id}"
    assert analyse.retries == len(RETRY_DELAYS_S)
    assert analyse.retry_condition_fn is retry_if_transient


def test_production_retry_delays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BORDERWATCH_RETRY_DELAYS", raising=False)
    assert _retry_delays() == [2, 5, 15]
    monkeypatch.setenv("BORDERWATCH_RETRY_DELAYS", "soon")
    with pytest.raises(ConfigError, match="BORDERWATCH_RETRY_DELAYS"):
        _retry_delays()


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (SourceError("timeout"), True),
        (DetectionError("no bands"), False),
        (ConfigError("bad"), False),
        (ValueError("bug"), False),
    ],
)
def test_retry_only_transient_errors(error: Exception, retry: bool) -> None:
    assert retry_if_transient(analyse, None, Failed(data=error)) is retry  # type: ignore[arg-type]
    assert retry_if_transient(analyse, None, Completed(data=1)) is False  # type: ignore[arg-type]


def test_area_spec_needs_exactly_one_area() -> None:
    with pytest.raises(ConfigError, match="exactly one area"):
        area_spec(None, None, None, None)
    with pytest.raises(ConfigError, match="hotspot and bbox"):
        area_spec("poipet", [1.0, 2.0, 3.0, 4.0], None, None)
    assert area_spec(None, [104.66, 14.38, 104.70, 14.41], None, "x") == {
        "bbox": [104.66, 14.38, 104.70, 14.41],
        "name": "x",
    }


def test_parse_window() -> None:
    assert parse_window("2025-12-07..2025-12-22", what="after") == (date(2025, 12, 7), date(2025, 12, 22))
    assert parse_window(["2025-12-07", "2025-12-22"], what="after")[1] == date(2025, 12, 22)
    with pytest.raises(ConfigError, match="START..END"):
        parse_window("2025-12-07", what="after")
    with pytest.raises(ConfigError, match="after end"):
        parse_window("2025-12-07..22.12.2025", what="after")


def test_cli_source_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BORDERWATCH_SOURCE", "stac")
    assert run_settings().source == "stac"
    assert run_settings("simulator").source == "simulator"
    with pytest.raises(ConfigError, match="unknown source 'drone'"):
        run_settings("drone")


def test_recorded_settings_are_kept_as_run(monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = load_settings().model_dump(mode="json")
    recorded["thresholds"]["mmu_ha"] = 0.7
    monkeypatch.setenv("BORDERWATCH_THRESHOLDS__MMU_HA", "0.1")
    assert settings_from_dict(recorded).thresholds.mmu_ha == 0.7


def test_bare_task_runs_without_prefect_and_reports_progress(fake: FakePipeline, tmp_path: Path) -> None:
    events: list[ProgressEvent] = []

    def broken_display(ev: ProgressEvent) -> None:
        raise RuntimeError("display gone")

    windows = windows_for(date(2025, 12, 22), load_settings().windows)
    settings = load_settings().model_dump(mode="json")
    with subscribed(events.append), subscribed(broken_display):
        path = analyse.fn("poipet", {"hotspot": "poipet"}, windows, str(tmp_path), settings, 2, 5)
    assert Path(path) == tmp_path / "areas" / "poipet" / "result.json" and Path(path).exists()
    assert [(e.step, e.state, e.area_id, e.index, e.total) for e in events] == [
        ("analyse", "started", "poipet", 2, 5),
        ("analyse", "finished", "poipet", 2, 5),
    ]
    analyse.fn("poipet", {"hotspot": "poipet"}, windows, str(tmp_path), settings, 2, 5)
    assert len(events) == 2, "listeners are unsubscribed when the with block ends"


# --- flow runs (one temporary Prefect server per session)


def test_one_failing_hotspot_is_recorded_and_the_others_kept(
    prefect_server: None, fake: FakePipeline, tmp_path: Path
) -> None:
    fake.fail["chong-bok"] = lambda attempt: DetectionError("chong-bok: no bands")
    run_dir = daily_monitoring(
        run_date=RUN_DATE, hotspots=["chong-bok", "preah-vihear", "poipet"], out_dir=str(tmp_path)
    )
    assert Path(run_dir) == tmp_path / RUN_DATE
    results = _results(Path(run_dir))
    assert {k: r.status for k, r in results.items()} == {
        "preah-vihear": "ok",
        "poipet": "ok",
        "chong-bok": "failed",
    }
    failed = results["chong-bok"]
    assert failed.error is not None and "DetectionError" in failed.error and "no bands" in failed.error
    assert failed.windows.after == (date(2025, 12, 7), date(2025, 12, 22))
    # One task run per hot spot, named and tagged after it, priority 1 first; DetectionError is not retried.
    assert [(c[0], c[1]) for c in fake.calls] == [
        ("preah-vihear", "analyse-preah-vihear"),
        ("poipet", "analyse-poipet"),
        ("chong-bok", "analyse-chong-bok"),
    ]
    assert all(c[0] in c[2] for c in fake.calls)
    (b,) = fake.briefings
    assert (b["run_dir"], b["run_date"], b["kind"]) == (Path(run_dir), date(2025, 12, 22), "daily")
    assert (b["source_name"], b["simulated"]) == ("fake", True)


def test_transient_errors_are_retried(prefect_server: None, fake: FakePipeline, tmp_path: Path) -> None:
    fake.fail["poipet"] = lambda attempt: SourceError("timeout") if attempt == 1 else None
    fake.fail["nong-chan"] = lambda attempt: SourceError("service down")
    daily_monitoring(run_date=RUN_DATE, hotspots=["poipet", "nong-chan"], out_dir=str(tmp_path))
    results = _results(tmp_path / RUN_DATE)
    assert results["poipet"].status == "ok"
    assert results["nong-chan"].status == "failed" and "service down" in (results["nong-chan"].error or "")
    attempts = [c[0] for c in fake.calls]
    assert attempts.count("poipet") == 2
    assert attempts.count("nong-chan") == 1 + len(RETRY_DELAYS_S)


def test_bad_input_fails_the_run_before_any_area(
    prefect_server: None, fake: FakePipeline, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="unknown hot spot 'atlantis'"):
        daily_monitoring(run_date=RUN_DATE, hotspots=["atlantis"], out_dir=str(tmp_path))
    assert fake.calls == [] and not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        (lambda out: daily_monitoring(run_date="2099-01-01", hotspots=["poipet"], out_dir=out), "run_date"),
        (
            lambda out: area_check(
                hotspot="poipet",
                before=["2025-10-01", "2025-12-06"],
                after=["2025-12-07", "2099-01-01"],
                out_dir=out,
            ),
            "after window end",
        ),
    ],
    ids=["daily", "area-check"],
)
def test_a_future_date_stops_the_run_before_any_area(
    prefect_server: None, fake: FakePipeline, tmp_path: Path, run: Callable[[str], str], expected: str
) -> None:
    with pytest.raises(ConfigError, match=f"{expected} 2099-01-01 is after today"):
        run(str(tmp_path))
    assert fake.calls == [] and not any(tmp_path.iterdir())


def test_an_unwritable_output_folder_stops_the_run_before_any_area(
    prefect_server: None, fake: FakePipeline, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("a file where the run folder would go\n")
    with pytest.raises(ConfigError, match=r"out_dir .*notes\.txt is a file, not a folder"):
        daily_monitoring(run_date=RUN_DATE, hotspots=["poipet"], out_dir=str(tmp_path / "notes.txt" / "out"))
    assert fake.calls == [] and [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_broken_tracking_store_stops_the_run_before_any_area(
    prefect_server: None, fake: FakePipeline, tmp_path: Path
) -> None:
    store = tmp_path / "tracks.sqlite"
    store.write_text("these are notes, not a database\n" * 50)
    with pytest.raises(StoreError, match=r"tracks\.sqlite: not a readable alert store .* move it aside"):
        daily_monitoring(run_date=RUN_DATE, hotspots=["poipet"], out_dir=str(tmp_path))
    assert fake.calls == [] and [p.name for p in tmp_path.iterdir()] == ["tracks.sqlite"]


def test_daily_runs_are_tracked(prefect_server: None, fake: FakePipeline, tmp_path: Path) -> None:
    daily_monitoring(run_date=RUN_DATE, hotspots=["poipet"], out_dir=str(tmp_path))
    assert _results(tmp_path / RUN_DATE)["poipet"].tracked
    assert AlertStore(tmp_path / "tracks.sqlite").runs("poipet") == [date(2025, 12, 22)]


def test_area_check_flow(prefect_server: None, fake: FakePipeline, tmp_path: Path) -> None:
    run_dir = Path(
        area_check(
            bbox=[104.66, 14.38, 104.70, 14.41],
            before=["2025-10-01", "2025-12-06"],
            after=["2025-12-07", "2025-12-22"],
            out_dir=str(tmp_path),
            name="Temple box",
        )
    )
    (area_id,) = _results(run_dir)
    assert run_dir == tmp_path / "checks" / f"2025-12-22-{area_id}"
    assert area_id.startswith("area-")
    assert _results(run_dir)[area_id].name == "Temple box"
    # Ad hoc checks are not tracked: no store, no lifecycle states.
    assert not _results(run_dir)[area_id].tracked and not (tmp_path / "tracks.sqlite").exists()
    assert fake.calls[0][1] == f"analyse-{area_id}"
    (b,) = fake.briefings
    assert (b["kind"], b["run_date"]) == ("area-check", date(2025, 12, 22))


def test_briefing_flow_rebuilds_from_manifest(
    prefect_server: None, fake: FakePipeline, tmp_path: Path
) -> None:
    run_dir = Path(daily_monitoring(run_date=RUN_DATE, hotspots=["poipet"], out_dir=str(tmp_path)))
    settings = load_settings().model_dump(mode="json")
    settings["thresholds"]["mmu_ha"] = 0.9
    manifest = {
        "kind": "daily",
        "run_date": RUN_DATE,
        "source": "simulator",
        "simulated": True,
        "settings": settings,
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    fake.briefings.clear()
    files = briefing(run_dir=str(run_dir))
    assert files == {"pdf": str(run_dir / "briefing.pdf")}
    (b,) = fake.briefings
    assert (b["kind"], b["run_date"], b["source_name"]) == ("daily", date(2025, 12, 22), "simulator")
    assert b["settings"].thresholds.mmu_ha == 0.9


def test_run_info_without_manifest(fake: FakePipeline, tmp_path: Path) -> None:
    check_dir = tmp_path / "checks" / "2025-12-22-area-1234abcd" / "areas" / "area-1234abcd"
    check_dir.mkdir(parents=True)
    (check_dir / "result.json").write_text(json.dumps({"source": "simulator", "simulated": True}))
    info = run_info(check_dir.parents[1])
    assert (info["kind"], info["run_date"], info["source_name"]) == (
        "area-check",
        date(2025, 12, 22),
        "simulator",
    )
    with pytest.raises(ConfigError, match="no areas"):
        run_info(tmp_path)


# --- deployments: prefect.yaml and `borderwatch serve` agree with settings


def test_prefect_yaml_matches_settings_and_serve() -> None:
    from monitoring.cli import DEPLOYMENT_NAMES, build_deployments

    doc = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in doc["deployments"]}
    assert set(deployments) == set(DEPLOYMENT_NAMES.values())
    # Nothing in the pull steps reaches the internet: only a working directory.
    for step in doc.get("pull") or []:
        assert list(step) == ["prefect.deployments.steps.set_working_directory"]
    flows_by_entry = {
        "flows/daily.py:daily_monitoring": daily_monitoring,
        "flows/area_check.py:area_check": area_check,
        "flows/briefing.py:briefing": briefing,
    }
    for name, d in deployments.items():
        flow = flows_by_entry[d["entrypoint"]]
        assert DEPLOYMENT_NAMES[flow.name] == name
        assert (PROJECT_ROOT / d["entrypoint"].split(":")[0]).exists()
        assert d["work_pool"]["name"]
    settings = load_settings()
    (sched,) = deployments["daily"]["schedules"]
    assert (sched["cron"], sched["timezone"]) == (settings.schedule.cron, settings.schedule.timezone)
    assert not deployments["area-check"].get("schedules")
    assert not deployments["briefing"].get("schedules")

    served = {d.name: d for d in build_deployments(settings)}
    assert set(served) == set(deployments)
    (s,) = served["daily"].schedules
    assert (s.schedule.cron, s.schedule.timezone) == (sched["cron"], sched["timezone"])
    assert not served["area-check"].schedules and not served["briefing"].schedules
    for name, d in served.items():
        assert d.entrypoint == deployments[name]["entrypoint"]


# --- the CLI over the flows


def test_cli_run_check_report(prefect_server: None, fake: FakePipeline, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from monitoring.cli import app

    runner = CliRunner()
    fake.fail["chong-bok"] = lambda attempt: DetectionError("no bands")
    args = [
        "run",
        "--date",
        RUN_DATE,
        "--hotspot",
        "poipet",
        "--hotspot",
        "chong-bok",
        "--out",
        str(tmp_path),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"Outputs in {tmp_path / RUN_DATE}: briefing.pdf" in result.stdout
    assert (
        "2 area(s); alerts: none; not observed: none; partly observed: none; failed: chong-bok [SIMULATED]"
        in result.stdout
    )
    assert "failed chong-bok: DetectionError: no bands" in result.stderr

    result = runner.invoke(app, ["report", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert fake.briefings[-1]["run_dir"] == tmp_path / RUN_DATE

    args = ["check", "--bbox", "104.66,14.38,104.70,14.41", "--before", "2025-10-01..2025-12-06"]
    result = runner.invoke(app, [*args, "--after", "2025-12-07..2025-12-22", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"Outputs in {tmp_path / 'checks'}" in result.stdout
    assert fake.briefings[-1]["kind"] == "area-check"

    # A check whose one area failed still writes its briefing (the record of why) but exits 1.
    area_id = aoi_from_bbox((104.66, 14.38, 104.70, 14.41)).id
    fake.fail[area_id] = lambda attempt: AOIError(f"area {area_id!r} needs about 60.0 GB of memory")
    result = runner.invoke(app, [*args, "--after", "2025-12-07..2025-12-22", "--out", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert f"failed: {area_id} [SIMULATED]" in result.stdout
    assert f"failed {area_id}: AOIError: area '{area_id}' needs about 60.0 GB" in result.stderr
    assert "error:" not in result.stderr  # the exit code is the whole message: the summary said what failed
    assert fake.briefings[-1]["kind"] == "area-check"


# --- end to end with the real pipeline and the simulator

SCENARIO = PROJECT_ROOT / "config" / "scenarios" / "dec-2025.yaml"


@pytest.mark.slow
def test_daily_run_end_to_end(prefect_server: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = pipeline.analyse_area

    def analyse_or_fail(aoi: AOI, windows: TimeWindows, **kwargs: Any) -> HotspotResult:
        if aoi.id == "poipet":
            raise DetectionError("poipet: injected failure")
        return real(aoi, windows, **kwargs)

    monkeypatch.setattr(pipeline, "analyse_area", analyse_or_fail)
    run_dir = Path(
        daily_monitoring(run_date=RUN_DATE, hotspots=["preah-vihear", "poipet"], out_dir=str(tmp_path))
    )
    results = _results(run_dir)
    assert {k: r.status for k, r in results.items()} == {"preah-vihear": "ok", "poipet": "failed"}
    assert results["preah-vihear"].simulated and results["preah-vihear"].coverage is not None
    for name in ("briefing.pdf", "briefing.geojson", "manifest.json"):
        assert (run_dir / name).stat().st_size > 0, name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["kind"] == "daily" and manifest["failed"] == ["poipet"] and manifest["simulated"] is True
