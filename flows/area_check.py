"""Orchestration: the area-check flow — an analyst's area and dates, analysed and briefed on demand."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from prefect import flow

from flows.daily import AreaSpec, analyse_areas, build_aoi, check_request, run_settings, write_briefing
from monitoring import pipeline
from monitoring.aoi import explicit_windows
from monitoring.config import parse_date
from monitoring.errors import ConfigError


def parse_window(value: list[str] | str, *, what: str) -> tuple[date, date]:
    """A window given as [START, END] or "START..END" (inclusive ISO dates)."""
    parts = value.split("..") if isinstance(value, str) else list(value)
    if len(parts) != 2:
        raise ConfigError(
            f"{what} window {value!r} needs a start and an end date: START..END, e.g. 2025-11-01..2025-12-06."
        )
    return parse_date(parts[0].strip(), what=f"{what} start"), parse_date(
        parts[1].strip(), what=f"{what} end"
    )


def area_spec(
    hotspot: str | None, bbox: list[float] | None, geojson: str | None, name: str | None
) -> AreaSpec:
    """Exactly one of hot spot, bbox or GeoJSON file, as a spec a task can rebuild the AOI from."""
    given = [k for k, v in (("hotspot", hotspot), ("bbox", bbox), ("geojson", geojson)) if v is not None]
    if len(given) != 1:
        raise ConfigError(
            "give exactly one area: a hot spot id, a bbox or a GeoJSON file"
            + (f" (got {' and '.join(given)})." if given else ".")
        )
    spec = AreaSpec()
    if hotspot is not None:
        spec["hotspot"] = hotspot
    elif bbox is not None:
        spec["bbox"] = [float(v) for v in bbox]
    elif geojson is not None:
        # Absolute, so a task (or a worker with another working directory) finds the same file.
        spec["geojson"] = str(Path(geojson).expanduser().resolve())
    if name:
        spec["name"] = name
    return spec


def check_dir(out_dir: str | Path, after_end: date, area_id: str) -> Path:
    """<out>/checks/<YYYY-MM-DD of the after window's end>-<area id>/."""
    return Path(out_dir) / "checks" / f"{after_end.isoformat()}-{area_id}"


@flow(name="area-check")
def area_check(
    hotspot: str | None = None,
    bbox: list[float] | None = None,
    geojson: str | None = None,
    *,
    before: list[str],
    after: list[str],
    source: str | None = None,
    out_dir: str | None = None,
    name: str | None = None,
) -> str:
    """Compare an area before and after given dates; returns the check folder.

    The area: one of hotspot (configured id), bbox ([min_lon, min_lat, max_lon, max_lat]) or geojson
    (a file path).
    before, after: [START, END] ISO dates, inclusive; before must end before after starts.
    """
    settings = run_settings(source)
    spec = area_spec(hotspot, bbox, geojson, name)
    aoi = build_aoi(spec)
    windows = explicit_windows(
        parse_window(before, what="before"),
        parse_window(after, what="after"),
        sar_baseline_days=settings.windows.sar_baseline_days,
        sar_season_days=settings.windows.sar_season_days,
    )
    check_request(settings, last_day=windows.after[1], out_dir=out_dir, names=("after window end", "out_dir"))
    imagery = pipeline.make_source(settings)
    run_dir = check_dir(out_dir or settings.output_dir, windows.after[1], aoi.id)
    analyse_areas(
        [(aoi.id, spec)],
        windows,
        run_dir=run_dir,
        settings=settings,
        source_name=imagery.name,
        simulated=imagery.simulated,
    )
    write_briefing(
        str(run_dir),
        windows.after[1],
        "area-check",
        imagery.name,
        imagery.simulated,
        settings.model_dump(mode="json"),
    )
    return str(run_dir)
