"""Tests of the report stage's run-folder entry points: load_results and write_briefing, all or nothing."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from monitoring.errors import ReportError
from monitoring.report import figures, load_results, write_briefing, write_pdf
from monitoring.report.samples import write_sample_run
from monitoring.results import RunManifest, area_dir

RUN_DATE = date(2025, 12, 22)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "2025-12-22"
    write_sample_run(run, run_date=RUN_DATE, size_px=48)
    return run


def _brief(run: Path, **kw: object) -> dict[str, Path]:
    args: dict = dict(
        run_date=RUN_DATE,
        kind="daily",
        source="simulator",
        simulated=True,
        settings={"source": "simulator"},
        scenario="scenarios/dec-2025.yaml",
    )
    args.update(kw)
    return write_briefing(run, **args)


def test_load_results_sorted_by_priority_then_id(run_dir: Path) -> None:
    ids = [r.area_id for r in load_results(run_dir)]
    assert ids == ["chong-an-ma", "preah-vihear", "ta-muen-thom", "chong-bok", "poipet"]


def test_load_results_names_an_unreadable_file(run_dir: Path) -> None:
    bad = area_dir(run_dir, "chong-bok") / "result.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ReportError, match="chong-bok/result.json"):
        load_results(run_dir)


def test_load_results_without_areas_folder(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no areas folder"):
        load_results(tmp_path)


def test_write_briefing_writes_all_three(run_dir: Path) -> None:
    out = _brief(run_dir, versions={"borderwatch": "test"})
    assert set(out) == {"geojson", "pdf", "manifest"}
    assert all(p.parent == run_dir and p.exists() for p in out.values())
    manifest = RunManifest.model_validate_json(out["manifest"].read_text(encoding="utf-8"))
    assert manifest.failed == ["poipet"]
    assert manifest.areas[0] == "chong-an-ma" and len(manifest.areas) == 5
    assert manifest.simulated and manifest.versions == {"borderwatch": "test"}
    assert manifest.outputs == ["briefing.geojson", "briefing.pdf", "manifest.json"]
    assert manifest.scene_ids["poipet"] == []
    fc = json.loads(out["geojson"].read_text(encoding="utf-8"))
    assert fc["simulated"] and fc["run_date"] == "2025-12-22"
    # Nothing but the outputs and the areas folder: no staging or temporary files left.
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "areas",
        "briefing.geojson",
        "briefing.pdf",
        "manifest.json",
    ]


def test_default_versions_are_the_installed_ones(run_dir: Path) -> None:
    manifest = RunManifest.model_validate_json(_brief(run_dir)["manifest"].read_text(encoding="utf-8"))
    assert manifest.versions["borderwatch"] != "not installed"
    assert "numpy" in manifest.versions and "reportlab" in manifest.versions


def test_failed_render_leaves_no_partial_pdf(
    tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_a: object, **_k: object) -> bytes:
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(figures, "render_area_figure", boom)
    target = tmp_path / "out" / "briefing.pdf"
    with pytest.raises(ReportError, match="briefing.pdf"):
        write_pdf(
            load_results(run_dir),
            target,
            run_date=RUN_DATE,
            source="simulator",
            simulated=True,
            run_dir=run_dir,
        )
    assert not target.exists()
    assert list(target.parent.iterdir()) == [], "the temporary file must be removed"


def test_failed_briefing_keeps_the_previous_one(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {k: p.read_bytes() for k, p in _brief(run_dir).items()}

    def boom(*_a: object, **_k: object) -> bytes:
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(figures, "render_area_figure", boom)
    with pytest.raises(ReportError, match="renderer broke"):
        _brief(run_dir, scenario="other.yaml")
    names = {"geojson": "briefing.geojson", "pdf": "briefing.pdf", "manifest": "manifest.json"}
    assert {k: (run_dir / name).read_bytes() for k, name in names.items()} == before
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "areas",
        "briefing.geojson",
        "briefing.pdf",
        "manifest.json",
    ]


def test_empty_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "areas").mkdir()
    with pytest.raises(ReportError, match="no area results"):
        _brief(tmp_path)
