"""Command line: `borderwatch run | check | hotspots | report | serve`, thin over the flows in flows/."""

from __future__ import annotations

import os
import sys
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated

import click
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

import flows  # noqa: F401  -- sets PREFECT_HOME & co. before anything can import prefect
from monitoring.config import config_dir, load_hotspots, load_settings, parse_date, resolve_config_path
from monitoring.errors import AOIError, BorderwatchError, ConfigError
from monitoring.progress import ProgressEvent, subscribed
from monitoring.results import CHANGE_LABELS, DRAWN_SHARE, ChangeType, HotspotResult

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

    from monitoring.config import Settings

app = typer.Typer(
    name="borderwatch",
    help=(
        "Satellite monitoring of the Thailand–Cambodia border hot spots: what changed, where, when, how "
        "sure we are, and what could not be seen. Outputs a PDF briefing and a GeoJSON per run.\n\n"
        "Configuration: config/hotspots.yaml and config/settings.yaml (or `$BORDERWATCH_CONFIG_DIR`); any "
        "setting can be overridden from the environment, e.g. `BORDERWATCH_THRESHOLDS__MMU_HA=0.5`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)

out_console = Console()
err_console = Console(stderr=True)


class Source(StrEnum):
    """Imagery sources the CLI accepts (monitoring.config.SourceName)."""

    simulator = "simulator"
    sentinelhub = "sentinelhub"
    cdse = "cdse"
    stac = "stac"
    local = "local"


DEPLOYMENT_NAMES = {"daily-monitoring": "daily", "area-check": "area-check", "briefing": "briefing"}
"""Flow name -> deployment name, the same in prefect.yaml and `borderwatch serve`."""

# --- helpers

SourceOpt = Annotated[
    Source | None,
    typer.Option(
        "--source", help="Imagery source; default: settings.yaml `source` (simulator).", show_default=False
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        metavar="DIR",
        help="Output folder; default: settings.yaml `output_dir` (out).",
        show_default=False,
    ),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's logs and full tracebacks.")]


def _one_line(error: BaseException | str) -> str:
    return " ".join(part.strip() for part in str(error).splitlines() if part.strip())


@contextmanager
def _errors(verbose: bool = False) -> Iterator[None]:
    """Turn Borderwatch errors into one `error: ...` line on stderr: exit 2 for bad input, 1 for failures."""
    try:
        yield
    except (typer.Exit, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
        raise
    except (ConfigError, AOIError) as e:
        typer.echo(f"error: {_one_line(e)}", err=True)
        raise typer.Exit(2) from None
    except BorderwatchError as e:
        typer.echo(f"error: {_one_line(e)}", err=True)
        if verbose:
            traceback.print_exc()
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("error: interrupted; areas finished so far are in their areas/ folders.", err=True)
        raise typer.Exit(130) from None
    except Exception as e:
        hint = "" if verbose else " (run again with --verbose for the traceback)"
        typer.echo(f"error: unexpected {type(e).__name__}: {_one_line(e)}{hint}", err=True)
        if verbose:
            traceback.print_exc()
        raise typer.Exit(1) from None


def _flows(verbose: bool) -> tuple[ModuleType, ModuleType, ModuleType]:
    """Import the flows (and so Prefect) only when a command needs them: `--help` and `hotspots` stay fast."""
    if not verbose and "prefect" not in sys.modules:
        # Prefect logs every state change and each failure's traceback to the console; the progress display
        # and the summary say the same in a few lines. Logs still reach the Prefect API (and its UI) in full.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    import flows.area_check
    import flows.briefing
    import flows.daily

    return flows.daily, flows.area_check, flows.briefing


class _ProgressView:
    """A rich progress bar fed by monitoring.progress events: which area is being analysed, n/total."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("Starting Prefect (temporary local server)…", total=None)

    def __call__(self, ev: ProgressEvent) -> None:
        p, t = self.progress, self.task
        if ev.step == "analyse":
            if ev.state == "started":
                p.update(
                    t,
                    total=ev.total,
                    completed=ev.index - 1,
                    description=f"Analysing [bold]{ev.area_id}[/] ({ev.index}/{ev.total})",
                )
            elif ev.state == "finished":
                p.update(t, completed=ev.index)
                p.console.print(f"  [green]done[/]   {ev.area_id}: {escape(ev.detail)}", highlight=False)
            else:
                p.update(t, completed=ev.index)
                p.console.print(f"  [red]failed[/] {ev.area_id}: {escape(ev.detail)}", highlight=False)
        elif ev.step == "track" and ev.state == "started":
            p.update(t, description="Tracking alerts against earlier daily runs")
        elif ev.step == "track" and ev.state == "finished":
            p.console.print(f"  [green]tracked[/] {escape(ev.detail) or 'no alerts'}", highlight=False)
        elif ev.step == "briefing" and ev.state == "started":
            p.update(t, description="Writing the briefing (PDF, GeoJSON, manifest)")

    @contextmanager
    def showing(self) -> Iterator[None]:
        with self.progress, subscribed(self):
            yield


def _read_results(run_dir: Path) -> list[HotspotResult]:
    results = []
    for path in sorted(run_dir.glob("areas/*/result.json")):
        try:
            results.append(HotspotResult.model_validate_json(path.read_text(encoding="utf-8")))
        except ValueError:
            # The briefing reports unreadable results; the summary must not crash on them.
            continue
    return results


def summary_line(results: list[HotspotResult]) -> str:
    """One line: alerts per change type, areas not or only partly observed, failures."""
    counts = Counter(a.change_type for r in results for a in r.alerts)
    alerts = (
        ", ".join(f"{n} {CHANGE_LABELS[ChangeType(t)].lower()}" for t, n in sorted(counts.items())) or "none"
    )
    not_seen = [r.area_id for r in results if r.coverage is not None and r.coverage.status == "not observed"]
    partly = [r.area_id for r in results if r.coverage is not None and r.coverage.status == "partly observed"]
    failed = [r.area_id for r in results if r.status == "failed"]
    simulated = " [SIMULATED]" if any(r.simulated for r in results) else ""
    return (
        f"{len(results)} area(s); alerts: {alerts}; not observed: {', '.join(not_seen) or 'none'}; "
        f"partly observed: {', '.join(partly) or 'none'}; failed: {', '.join(failed) or 'none'}{simulated}"
    )


def _print_outcome(run_dir: Path, files: dict[str, str] | None = None) -> list[HotspotResult]:
    """Print where the outputs are and the one-line summary; returns the run's results it summarised."""
    names = (
        sorted(Path(f).name for f in files.values())
        if files
        else sorted(p.name for p in run_dir.glob("*") if p.is_file())
    )
    out_console.print(
        f"Outputs in [bold]{escape(str(run_dir))}[/]: {escape(', '.join(names)) or '(none)'}",
        soft_wrap=True,
        highlight=False,
    )
    results = _read_results(run_dir)
    out_console.print(escape(summary_line(results)), soft_wrap=True, highlight=False)
    return results


def _parse_bbox(value: str) -> list[float]:
    parts = value.split(",")
    try:
        bbox = [float(p) for p in parts]
    except ValueError:
        bbox = []
    if len(bbox) != 4:
        raise ConfigError(
            f"--bbox {value!r} must be four numbers min_lon,min_lat,max_lon,max_lat, "
            "e.g. 104.66,14.38,104.70,14.41."
        )
    return bbox


def build_deployments(settings: Settings) -> list[RunnerDeployment]:
    """The deployments `serve` runs; prefect.yaml declares the same (a test keeps them in step)."""
    from prefect.schedules import Cron

    daily, area_check, briefing = _flows(verbose=True)
    return [
        daily.daily_monitoring.to_deployment(
            name=DEPLOYMENT_NAMES["daily-monitoring"],
            schedules=[Cron(settings.schedule.cron, timezone=settings.schedule.timezone)],
            description="Every hot spot, every morning: alerts, coverage gaps, PDF and GeoJSON briefing.",
            tags=["borderwatch", "daily"],
        ),
        area_check.area_check.to_deployment(
            name=DEPLOYMENT_NAMES["area-check"],
            description="An analyst's area (hot spot, bbox or GeoJSON) and before/after dates, on demand.",
            tags=["borderwatch", "area-check"],
        ),
        briefing.briefing.to_deployment(
            name=DEPLOYMENT_NAMES["briefing"],
            description="Rebuild the briefing of a past run from its results.",
            tags=["borderwatch", "briefing"],
        ),
    ]


# --- commands


@app.command()
def run(
    date: Annotated[
        str | None,
        typer.Option(
            "--date",
            metavar="YYYY-MM-DD",
            help="Run date; default: today in Asia/Bangkok.",
            show_default=False,
        ),
    ] = None,
    source: SourceOpt = None,
    hotspot: Annotated[
        list[str] | None,
        typer.Option(
            "--hotspot",
            metavar="ID",
            help="Only this hot spot (repeat for several); default: all. Areas already in the run folder "
            "stay in the briefing, so a failed hot spot can be re-run alone.",
            show_default=False,
        ),
    ] = None,
    out: OutOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run the daily monitoring of the hot spots: OUT/DATE/briefing.pdf, briefing.geojson, manifest.json.

    The after window ends on the run date, the baseline lies before it (settings.yaml `windows`). A hot spot
    that fails is reported as failed in the briefing; the others are still analysed.
    """
    with _errors(verbose):
        daily, _, _ = _flows(verbose)
        from monitoring import pipeline

        # Check everything that is bad input before Prefect starts: a typo must not cost a server start-up.
        settings = daily.run_settings(source.value if source else None)
        tz = settings.schedule.timezone
        day = parse_date(date, what="--date") if date is not None else daily.today_in(tz)
        daily.select_hotspots(load_hotspots(), hotspot)
        pipeline.make_source(settings)
        daily.check_request(
            settings, last_day=day, out_dir=str(out) if out else None, names=("--date", "--out")
        )
        with _ProgressView(err_console).showing():
            run_dir = daily.daily_monitoring(
                run_date=date,
                source=settings.source,
                hotspots=list(hotspot) if hotspot else None,
                out_dir=str(out) if out else None,
            )
        _print_outcome(Path(run_dir))


@app.command()
def check(
    before: Annotated[
        str, typer.Option("--before", metavar="START..END", help="Baseline window, inclusive ISO dates.")
    ],
    after: Annotated[
        str,
        typer.Option(
            "--after", metavar="START..END", help="Window to look for change in; after the baseline."
        ),
    ],
    hotspot: Annotated[
        str | None, typer.Option("--hotspot", metavar="ID", help="A configured hot spot.", show_default=False)
    ] = None,
    bbox: Annotated[
        str | None,
        typer.Option(
            "--bbox",
            metavar="MINLON,MINLAT,MAXLON,MAXLAT",
            help="A lon/lat box (WGS84 degrees).",
            show_default=False,
        ),
    ] = None,
    geojson: Annotated[
        Path | None,
        typer.Option(
            "--geojson", metavar="FILE", help="A GeoJSON (Multi)Polygon in lon/lat.", show_default=False
        ),
    ] = None,
    source: SourceOpt = None,
    out: OutOpt = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="TEXT", help="Name of the area in the briefing.", show_default=False),
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Check one area between two windows: writes OUT/checks/AFTER-END-AREA-ID/briefing.pdf and .geojson.

    Give exactly one of --hotspot, --bbox or --geojson, e.g.

    borderwatch check --bbox 104.66,14.38,104.70,14.41
    --before 2025-10-01..2025-12-06 --after 2025-12-07..2025-12-22
    """
    with _errors(verbose):
        daily, area_check, _ = _flows(verbose)
        from monitoring import pipeline
        from monitoring.aoi import explicit_windows

        settings = daily.run_settings(source.value if source else None)
        box = _parse_bbox(bbox) if bbox is not None else None
        spec = area_check.area_spec(hotspot, box, str(geojson) if geojson else None, name)
        aoi = daily.build_aoi(spec)
        b = area_check.parse_window(before, what="--before")
        a = area_check.parse_window(after, what="--after")
        explicit_windows(
            b,
            a,
            sar_baseline_days=settings.windows.sar_baseline_days,
            sar_season_days=settings.windows.sar_season_days,
        )
        pipeline.make_source(settings)
        daily.check_request(
            settings, last_day=a[1], out_dir=str(out) if out else None, names=("--after window end", "--out")
        )
        drawn_km2 = aoi.footprint_in_grid().area / 1e6
        drawn = (
            f" ({drawn_km2:.1f} km² of it in the area drawn)"
            if drawn_km2 < DRAWN_SHARE * aoi.area_km2
            else ""
        )
        err_console.print(
            f"Area {aoi.id!r}: {aoi.area_km2:.1f} km², {aoi.shape[1]} x {aoi.shape[0]} px at 10 m{drawn}"
        )
        with _ProgressView(err_console).showing():
            run_dir = area_check.area_check(
                hotspot=hotspot,
                bbox=box,
                geojson=spec.get("geojson"),
                before=[d.isoformat() for d in b],
                after=[d.isoformat() for d in a],
                source=settings.source,
                out_dir=str(out) if out else None,
                name=name,
            )
        if any(r.status == "failed" for r in _print_outcome(Path(run_dir))):
            # The briefing records why; a script that asked for this one area must not take it for a result.
            raise typer.Exit(1)


@app.command()
def hotspots(
    details: Annotated[
        bool,
        typer.Option("--details", "-d", help="Also show Thai/Khmer names and the provinces on each side."),
    ] = False,
) -> None:
    """List the configured hot spots, most important first, after checking hotspots.yaml and settings.yaml."""
    with _errors():
        spots = load_hotspots()
        settings = load_settings()
        scenario = ""
        if settings.source == "simulator":
            path = resolve_config_path(settings.simulator.scenario)
            if not path.exists():
                raise ConfigError(
                    f"{path}: simulator scenario not found (settings.yaml simulator.scenario); "
                    "create it or point the setting at an existing file."
                )
            scenario = f", scenario {settings.simulator.scenario} seed {settings.simulator.seed}"
        table = Table(
            title=f"Hot spots in {config_dir() / 'hotspots.yaml'}",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        table.add_column("Pri", justify="right", no_wrap=True)
        table.add_column("ID", no_wrap=True, min_width=max(len(h.id) for h in spots), style="bold")
        table.add_column("Name", ratio=1)
        table.add_column("Lat", justify="right", no_wrap=True)
        table.add_column("Lon", justify="right", no_wrap=True)
        table.add_column("Position", no_wrap=True)
        table.add_column("AOI", justify="right", no_wrap=True)
        if details:
            table.add_column("Thai side / Cambodian side", ratio=1)
        for h in sorted(spots, key=lambda h: h.priority):
            name = escape(h.name)
            if details:
                local = " · ".join(n for n in (h.name_th, h.name_km) if n)
                name += f"\n[dim]{escape(local)}[/]" if local else ""
            row = [
                str(h.priority),
                h.id,
                name,
                f"{h.lat:.4f}",
                f"{h.lon:.4f}",
                "sourced" if h.coordinates == "sourced" else f"est ±{h.uncertainty_km:g} km",
                f"{h.aoi_km:g} km",
            ]
            if details:
                row.append(f"{escape(h.province_th or '–')} / {escape(h.province_kh or '–')}")
            table.add_row(*row)
        out_console.print(table)
        out_console.print(
            f"{len(spots)} hot spots; config OK (source {settings.source}{scenario}; "
            f"daily at {settings.schedule.cron!r} {settings.schedule.timezone})",
            soft_wrap=True,
        )


@app.command()
def report(
    run_dir: Annotated[
        Path | None,
        typer.Argument(
            metavar="RUN_DIR",
            help="A run folder, e.g. out/2025-12-22 or out/checks/DATE-AREA.",
            show_default=False,
        ),
    ] = None,
    date: Annotated[
        str | None,
        typer.Option(
            "--date", metavar="YYYY-MM-DD", help="The daily run of this date (in --out).", show_default=False
        ),
    ] = None,
    out: OutOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Rebuild the briefing (PDF, GeoJSON, manifest) of a past run from its areas/*/result.json.

    Give a RUN_DIR or --date; with neither, the latest daily run in the output folder.
    """
    with _errors(verbose):
        if run_dir is not None and date is not None:
            raise ConfigError("give either RUN_DIR or --date, not both.")
        _, _, briefing = _flows(verbose)
        if run_dir is None:
            base = out or Path(load_settings().output_dir)
            if date is not None:
                run_dir = base / parse_date(date, what="--date").isoformat()
            else:
                runs = sorted(
                    p for p in base.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]") if p.is_dir()
                )
                if not runs:
                    raise ConfigError(
                        f"no daily runs in {base}/; give RUN_DIR or --date, or run `borderwatch run`."
                    )
                run_dir = runs[-1]
        if not run_dir.is_dir():
            raise ConfigError(f"{run_dir}: no such run folder; `ls {run_dir.parent}` shows the runs there.")
        briefing.run_info(run_dir)
        with _ProgressView(err_console).showing():
            files = briefing.briefing(run_dir=str(run_dir))
        _print_outcome(run_dir, files)


@app.command()
def serve(verbose: VerboseOpt = False) -> None:
    """Serve the deployments until interrupted: daily-monitoring on its schedule (settings.yaml `schedule`,
    06:00 Asia/Bangkok), area-check and briefing on demand (`prefect deployment run 'area-check/area-check'
    -p before='["2025-11-01","2025-12-06"]' ...`).

    Without PREFECT_API_URL this starts a temporary local Prefect server (database in .prefect/) that only
    this process knows, so only the schedule triggers runs. To trigger runs from another shell, start a
    server first (`prefect server start`) and set `PREFECT_API_URL=http://127.0.0.1:4200/api` in both
    shells. Prefect's logs are always shown here; --verbose adds tracebacks.
    """
    with _errors(verbose):
        settings = load_settings()
        deployments = build_deployments(settings)
        from prefect import serve as prefect_serve

        err_console.print(
            f"Serving {', '.join(f'{d.flow_name}/{d.name}' for d in deployments)}; daily at "
            f"{settings.schedule.cron!r} {settings.schedule.timezone}. Ctrl-C stops."
        )
        prefect_serve(*deployments)


evaluate_app = typer.Typer(
    help="Measure detection quality: on real labelled imagery (OSCD) or on a simulator scenario's ground truth.",
    no_args_is_help=True,
)
app.add_typer(evaluate_app, name="evaluate")


def _check_json(path: Path | None) -> None:
    """Refuse a --json FILE that could not be written before the evaluation runs, not after it."""
    if path is None:
        return
    from monitoring.config import check_output_dir

    if path.is_dir():
        raise ConfigError(f"--json {path}: is a folder; give a file name, e.g. {path / 'figures.json'}.")
    check_output_dir(path.parent, what="--json folder")


def _write_json(data: dict[str, object], path: Path | None) -> None:
    if path is None:
        return
    import json

    from monitoring.atomic import write_text_atomic
    from monitoring.errors import OutputError

    write_text_atomic(path, json.dumps(data, indent=2, default=str), error=OutputError)
    out_console.print(f"Wrote {path}")


def _fmt(v: object) -> str:
    return "—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


@evaluate_app.command("oscd")
def evaluate_oscd_cmd(
    root: Annotated[
        Path, typer.Argument(help="The OSCD folder (images/<city>/imgs_1, imgs_2; labels/<city>/).")
    ],
    json_path: Annotated[
        Path | None, typer.Option("--json", metavar="FILE", help="Also write the figures as JSON.")
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Precision, recall, F1 and IoU per city and pooled, with one fixed unsupervised rule for every city."""
    with _errors(verbose):
        from monitoring.oscd import evaluate_oscd

        if not root.is_dir():
            raise ConfigError(f"{root}: not a folder; give the OSCD root that holds images/ and labels/.")
        _check_json(json_path)
        with err_console.status("Evaluating OSCD cities..."):
            res = evaluate_oscd(root)
        table = Table("city", "precision", "recall", "F1", "IoU", "misregistration (px)", box=box.SIMPLE)
        for city, m in res["cities"].items():
            shift = m["misregistration_px"]
            table.add_row(
                city,
                *(_fmt(m[k]) for k in ("precision", "recall", "f1", "iou")),
                "not measured" if shift is None else f"{shift[0]:+.2f} row, {shift[1]:+.2f} col",
            )
        p = res["pooled"]
        table.add_row("[bold]pooled[/]", *(_fmt(p[k]) for k in ("precision", "recall", "f1", "iou")), "")
        out_console.print(table)
        out_console.print(f"method: {res.get('method')}")
        _write_json(res, json_path)


@evaluate_app.command("scenario")
def evaluate_scenario_cmd(
    scenario: Annotated[
        Path, typer.Argument(help="A simulator scenario file (e.g. config/scenarios/dec-2025.yaml).")
    ],
    date_: Annotated[
        str, typer.Option("--date", metavar="YYYY-MM-DD", help="Run date the detection looks back from.")
    ] = "2025-12-22",
    hotspot: Annotated[
        list[str] | None, typer.Option("--hotspot", metavar="ID", help="Only these hot spots (repeatable).")
    ] = None,
    min_event_ha: Annotated[
        float, typer.Option(help="Events smaller than this do not count for recall.")
    ] = 0.2,
    json_path: Annotated[
        Path | None, typer.Option("--json", metavar="FILE", help="Also write the figures as JSON.")
    ] = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run the simulator on a scenario and score the alerts: precision, recall, F1 per event type and false
    alerts per 100 km² of unchanged land."""
    with _errors(verbose):
        from monitoring.config import hotspot_by_id
        from monitoring.evaluate import evaluate_scenario

        if not scenario.is_file():
            raise ConfigError(f"{scenario}: scenario file not found; see config/scenarios/ for examples.")
        run_date = parse_date(date_, what="--date")
        settings = load_settings()
        spots = load_hotspots()
        if hotspot:
            spots = [hotspot_by_id(spots, h) for h in hotspot]
        _check_json(json_path)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as prog:
            task = prog.add_task("Evaluating", total=len(spots))
            res = evaluate_scenario(
                scenario,
                settings=settings,
                hotspots=spots,
                run_date=run_date,
                min_event_ha=min_event_ha,
                progress=lambda area: prog.update(task, description=f"Analysing {area}", advance=1),
            )
        table = Table(
            "type", "events", "found", "alerts", "true", "precision", "recall", "F1", box=box.SIMPLE
        )
        for t, m in res["by_type"].items():
            table.add_row(
                t,
                *(
                    _fmt(m[k])
                    for k in ("events", "found", "alerts", "true_alerts", "precision", "recall", "f1")
                ),
            )
        out_console.print(table)
        out_console.print(
            f"false alerts: {res['false_alerts']} ({_fmt(res['false_alerts_per_100km2'])} per 100 km² of unchanged "
            f"land, {res['unchanged_km2']} km²); largest {res['largest_false_alert_ha']} ha; wrong type: "
            f"{res['wrong_type']}"
        )
        if res["set_aside_as_farm_burning"]:
            hidden = ", ".join(res["events_set_aside"]) or "none"
            out_console.print(
                f"set aside as farm burning (not alerts, not scored): {res['set_aside_as_farm_burning']} burns "
                f"on cropland; events among them: {hidden}"
            )
        _write_json(res, json_path)
