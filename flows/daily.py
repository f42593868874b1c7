"""Orchestration: the daily-monitoring flow — one task per hot spot, failures recorded, then the briefing."""

from __future__ import annotations

import dataclasses
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, TypedDict, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect import flow, tags, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import Task
from pydantic import TypeAdapter, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from monitoring import pipeline
from monitoring.aoi import AOI, TimeWindows, aoi_from_bbox, aoi_from_geojson, aoi_from_hotspot, windows_for
from monitoring.config import (
    HotSpot,
    Settings,
    SourceName,
    check_output_dir,
    hotspot_by_id,
    load_hotspots,
    load_settings,
    not_after_today,
    parse_date,
)
from monitoring.errors import ConfigError, SourceError
from monitoring.progress import ProgressEvent, emit
from monitoring.results import LIFECYCLE_LABELS
from monitoring.store import AlertStore


def _retry_delays() -> list[float]:
    # Tests and impatient operators set BORDERWATCH_RETRY_DELAYS=0,0 (one delay per retry); it belongs in
    # Settings once config.py grows a field for it.
    raw = os.environ.get("BORDERWATCH_RETRY_DELAYS", "2,5,15")
    try:
        delays = [float(x) for x in raw.split(",") if x.strip()]
    except ValueError as e:
        raise ConfigError(
            f"BORDERWATCH_RETRY_DELAYS={raw!r} is not a comma-separated list of seconds, e.g. 2,5,15."
        ) from e
    if any(d < 0 for d in delays):
        raise ConfigError(
            f"BORDERWATCH_RETRY_DELAYS={raw!r} has a negative delay; use seconds >= 0, e.g. 2,5,15."
        )
    return delays


RETRY_DELAYS_S: list[float] = _retry_delays()
"""Delay before each retry of an area (so len() retries); production: 2, 5, 15 s."""


class AreaSpec(TypedDict, total=False):
    """How to rebuild an AOI inside a task from small, JSON-able values (never the grid itself)."""

    hotspot: str
    bbox: list[float]
    geojson: str
    name: str


def retry_if_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only what can succeed on a second try: imagery that could not be searched or loaded."""
    try:
        state.result()
    except SourceError:
        return True
    except Exception:
        # ConfigError, AOIError, DetectionError and bugs fail the same way every time.
        return False
    return False


def run_settings(source: str | None = None) -> Settings:
    """Settings from config/, with an explicitly chosen source winning over the file and the environment."""
    settings = load_settings()
    if source is None or source == settings.source:
        return settings
    try:
        chosen = TypeAdapter(SourceName).validate_python(source)
    except ValidationError as e:
        known = ", ".join(get_args(SourceName))
        raise ConfigError(f"unknown source {source!r}; choose one of {known}.") from e
    # load_settings lets BORDERWATCH_SOURCE win over its overrides; a CLI flag or deployment parameter is more
    # specific than the environment, so apply it afterwards.
    return settings.model_copy(update={"source": chosen})


class _RecordedSettings(Settings):
    """Settings validated from a dict alone: the environment must not rewrite what a run recorded."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource, *_: Any, **__: Any
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def settings_from_dict(data: dict[str, Any]) -> Settings:
    """Settings as recorded in a manifest (or passed to a task), validated, without BORDERWATCH_* winning."""
    try:
        recorded = _RecordedSettings(**data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"recorded settings: field {field!r} is invalid ({first['msg']}).") from e
    return Settings.model_construct(**{name: getattr(recorded, name) for name in Settings.model_fields})


def today_in(timezone: str) -> date:
    """Today's date where the analysts are (the schedule's timezone), not on the server's clock."""
    try:
        return datetime.now(ZoneInfo(timezone)).date()
    except ZoneInfoNotFoundError as e:
        raise ConfigError(
            f"schedule.timezone {timezone!r} is not an IANA timezone, e.g. Asia/Bangkok."
        ) from e


def check_request(settings: Settings, *, last_day: date, out_dir: str | None, names: tuple[str, str]) -> None:
    """Refuse, before any work, a run that asks for imagery of a day after today (in the schedule's timezone)
    or whose output folder cannot be written (ConfigError). last_day: the after window's end (a daily run's
    date). names: how the caller calls that date and the folder."""
    not_after_today(last_day, today_in(settings.schedule.timezone), what=names[0])
    check_output_dir(out_dir or settings.output_dir, what=names[1] if out_dir else "settings.yaml output_dir")


def select_hotspots(hotspots: list[HotSpot], ids: list[str] | None) -> list[HotSpot]:
    """The hot spots to analyse, most important first (a run cut short has done those)."""
    chosen = [hotspot_by_id(hotspots, i) for i in dict.fromkeys(ids)] if ids else list(hotspots)
    return sorted(chosen, key=lambda h: h.priority)


def build_aoi(spec: AreaSpec) -> AOI:
    """The AOI an AreaSpec names: a configured hot spot, a lon/lat bbox or a GeoJSON file."""
    name = spec.get("name")
    if "hotspot" in spec:
        aoi = aoi_from_hotspot(hotspot_by_id(load_hotspots(), spec["hotspot"]))
        return dataclasses.replace(aoi, name=name) if name else aoi
    if "bbox" in spec:
        bbox = spec["bbox"]
        if len(bbox) != 4:
            raise ConfigError(f"bbox {bbox} needs 4 numbers: min_lon, min_lat, max_lon, max_lat.")
        return aoi_from_bbox((bbox[0], bbox[1], bbox[2], bbox[3]), name=name)
    if "geojson" in spec:
        return aoi_from_geojson(spec["geojson"], name=name)
    raise ConfigError("no area given: pass a hot spot id, a bbox or a GeoJSON file.")


@task(
    name="analyse-area",
    task_run_name="analyse-{area_id}",
    retries=len(RETRY_DELAYS_S),
    retry_delay_seconds=RETRY_DELAYS_S,
    retry_condition_fn=retry_if_transient,
    cache_policy=NO_CACHE,
)
def analyse(
    area_id: str,
    spec: AreaSpec,
    windows: TimeWindows,
    run_dir: str,
    settings: dict[str, Any],
    index: int,
    total: int,
) -> str:
    """Analyse one area; returns the path of its result.json. Builds its own source: they are cheap.

    settings: the run's settings as JSON, so every area of a run uses the same ones even if the file changes.
    """
    emit(ProgressEvent("analyse", "started", area_id, index, total))
    run_settings_ = settings_from_dict(settings)
    result = pipeline.analyse_area(
        build_aoi(spec),
        windows,
        source=pipeline.make_source(run_settings_),
        settings=run_settings_,
        run_dir=Path(run_dir),
    )
    seen = result.coverage.status if result.coverage else result.status
    emit(
        ProgressEvent(
            "analyse", "finished", area_id, index, total, detail=f"{seen}, {len(result.alerts)} alert(s)"
        )
    )
    return str(Path(run_dir) / "areas" / result.area_id / "result.json")


@task(name="record-failure", task_run_name="record-failure-{area_id}", cache_policy=NO_CACHE)
def record_failure(
    area_id: str,
    spec: AreaSpec,
    windows: TimeWindows,
    run_dir: str,
    source_name: str,
    simulated: bool,
    error: BaseException,
) -> str:
    """Write a 'failed' result.json for an area, so the briefing says it failed instead of dropping it."""
    result = pipeline.record_failure(
        build_aoi(spec),
        windows,
        source_name=source_name,
        simulated=simulated,
        run_dir=Path(run_dir),
        error=error,
    )
    return str(Path(run_dir) / "areas" / result.area_id / "result.json")


@task(name="write-briefing", cache_policy=NO_CACHE)
def write_briefing(
    run_dir: str,
    run_date: date,
    kind: Literal["daily", "area-check"],
    source_name: str,
    simulated: bool,
    settings: dict[str, Any],
) -> dict[str, str]:
    """Write briefing.pdf, briefing.geojson and manifest.json; settings: those the run used, as JSON."""
    emit(ProgressEvent("briefing", "started"))
    paths = pipeline.build_briefing(
        Path(run_dir),
        run_date=run_date,
        kind=kind,
        settings=settings_from_dict(settings),
        source_name=source_name,
        simulated=simulated,
    )
    emit(ProgressEvent("briefing", "finished"))
    return {k: str(v) for k, v in paths.items()}


@task(name="track-alerts", cache_policy=NO_CACHE)
def track_alerts(run_dir: str, run_date: date, store: str, settings: dict[str, Any]) -> dict[str, int]:
    """Give each alert the id and lifecycle state earlier daily runs knew it by; returns the count per state."""
    emit(ProgressEvent("track", "started"))
    counts = pipeline.track_run(
        Path(run_dir), run_date=run_date, settings=settings_from_dict(settings), store=AlertStore(store)
    )
    emit(
        ProgressEvent(
            "track",
            "finished",
            detail=", ".join(f"{counts[s]} {s}" for s in LIFECYCLE_LABELS if counts.get(s)),
        )
    )
    return counts


def analyse_areas(
    areas: list[tuple[str, AreaSpec]],
    windows: TimeWindows,
    *,
    run_dir: Path,
    settings: Settings,
    source_name: str,
    simulated: bool,
) -> list[str]:
    """One task run per area, in order; an area failing after its retries is recorded and the rest go on.

    Areas run one after another: each analysis already keeps every core busy through dask threads.
    Returns the ids of the areas that failed.
    """
    failed: list[str] = []
    total = len(areas)
    recorded = settings.model_dump(mode="json")
    for index, (area_id, spec) in enumerate(areas, start=1):
        with tags(area_id):
            state = analyse(area_id, spec, windows, str(run_dir), recorded, index, total, return_state=True)
            if state.is_completed():
                continue
            error = state.result(raise_on_failure=False)
            if not isinstance(error, BaseException):
                error = RuntimeError(f"task ended in state {state.type.value}: {state.message}")
            record_failure(area_id, spec, windows, str(run_dir), source_name, simulated, error)
        failed.append(area_id)
        emit(
            ProgressEvent(
                "analyse", "failed", area_id, index, total, detail=f"{type(error).__name__}: {error}"
            )
        )
    return failed


def _daily_run_name() -> str:
    from prefect.runtime import flow_run

    return f"daily-{flow_run.parameters.get('run_date') or 'today'}"


@flow(name="daily-monitoring", flow_run_name=_daily_run_name)
def daily_monitoring(
    run_date: str | None = None,
    source: str | None = None,
    hotspots: list[str] | None = None,
    out_dir: str | None = None,
) -> str:
    """Look at every configured hot spot (or the listed ids) for one day; returns the run folder.

    run_date: YYYY-MM-DD, default today in the schedule's timezone (Asia/Bangkok). source: override of
    settings.source. out_dir: override of settings.output_dir; the run goes to <out_dir>/<run_date>/.
    """
    settings = run_settings(source)
    day = parse_date(run_date, what="run_date") if run_date else today_in(settings.schedule.timezone)
    selected = select_hotspots(load_hotspots(), hotspots)
    check_request(settings, last_day=day, out_dir=out_dir, names=("run_date", "out_dir"))
    # Fail the whole run early (ConfigError) if the source cannot work here, rather than once per hot spot.
    imagery = pipeline.make_source(settings)
    windows = windows_for(day, settings.windows)
    run_dir = Path(out_dir or settings.output_dir) / day.isoformat()
    store = settings.store_path(out_dir) if settings.tracking.enabled else None
    if store is not None:
        AlertStore(store).check()  # a broken store stops the run before hours of analysis, not after
    analyse_areas(
        [(h.id, AreaSpec(hotspot=h.id)) for h in selected],
        windows,
        run_dir=run_dir,
        settings=settings,
        source_name=imagery.name,
        simulated=imagery.simulated,
    )
    recorded = settings.model_dump(mode="json")
    if store is not None:
        track_alerts(str(run_dir), day, str(store), recorded)
    write_briefing(str(run_dir), day, "daily", imagery.name, imagery.simulated, recorded)
    return str(run_dir)
