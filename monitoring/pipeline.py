"""Pipeline: one area from imagery to alerts and coverage — the library's entry points that flows/ wraps."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any, Literal

import dask
import dask.array
import geopandas as gpd
import numpy as np
import xarray as xr
from odc.geo.geom import Geometry

from monitoring.aoi import AOI, TimeWindows
from monitoring.atomic import write_bytes_atomic
from monitoring.config import Settings, resolve_config_path
from monitoring.detect import (
    Detection,
    builtup_mask,
    detect_burn_scars,
    detect_optical_change,
    detect_sar_change,
    detect_soil_exposure,
)
from monitoring.detect.multivariate import CHANGE_BANDS, change_p_values
from monitoring.detect.omnibus import date_sar_changes
from monitoring.detect.sar import to_db
from monitoring.errors import ConfigError, DetectionError, OutputError, SourceError
from monitoring.fuse import Fires, cropland_fires, fuse_change_types, set_aside_farm_burning
from monitoring.memory import check_fits
from monitoring.preprocess import add_indices, composite, latest_clear, mask_clouds
from monitoring.preprocess.multilook import MULTILOOK_PX
from monitoring.results import Alert, Coverage, FireDetection, HotspotResult, Windows, area_dir
from monitoring.sources.base import LC_CROP, ImagerySource, check_optical, check_sar
from monitoring.sources.thermal import ThermalSource, check_fires, utc_day_bounds
from monitoring.store import AlertStore
from monitoring.track import track_alerts
from monitoring.vectorise import OPTICAL_P_LAYER, Evidence, coverage_gaps, vectorise_alerts

log = logging.getLogger(__name__)

CHIP_MAX_PX = 600
RGB_MAX_REFLECTANCE = 0.18
"""True-colour stretch: reflectance 0-0.18 to 0-255 (gamma 1/1.6), the same for every chip and date."""
CLEAR_DAY_SHARE = 0.5
"""A day counts as a clear view of an area when at least half of it was clear."""


def make_source(settings: Settings) -> ImagerySource:
    """The imagery source named in settings (every source keeps monitoring.sources.base.ImagerySource)."""
    name = settings.source
    if name == "simulator":
        from monitoring.sources.simulator import SimulatorSource, load_scenario

        scenario = load_scenario(resolve_config_path(settings.simulator.scenario))
        return SimulatorSource(scenario, seed=settings.simulator.seed, chunk_size=settings.chunk_size)
    from monitoring.sources.cache import SceneCache

    cache = SceneCache.from_settings(settings.cache)
    if name in ("sentinelhub", "cdse"):
        from monitoring.sources.sentinelhub import SentinelHubSource

        return SentinelHubSource(
            settings.sentinelhub if name == "sentinelhub" else settings.cdse,
            name=name,
            max_cloud_cover=settings.windows.max_cloud_cover,
            chunk_size=settings.chunk_size,
            cache=cache,
        )
    if name == "stac":
        from monitoring.sources.stac import StacSource

        return StacSource(
            settings.stac,
            max_cloud_cover=settings.windows.max_cloud_cover,
            chunk_size=settings.chunk_size,
            cache=cache,
        )
    if name == "local":
        from monitoring.sources.local import LocalSource

        if not settings.local.folder:
            raise ConfigError(
                "source 'local' needs a folder: set local.folder in config/settings.yaml or "
                "BORDERWATCH_LOCAL__FOLDER=/path/to/geotiffs."
            )
        return LocalSource(
            settings.local,
            chunk_size=settings.chunk_size,
            max_cloud_cover=settings.windows.max_cloud_cover,
            cache=cache,
        )
    raise ConfigError(f"unknown source {name!r}; choose simulator, sentinelhub, cdse, stac or local.")


def make_thermal_source(settings: Settings, imagery: ImagerySource) -> ThermalSource | None:
    """The active-fire source for a run (settings.thermal.source; 'auto' as firms.choose_thermal_source
    decides): the simulator's own fires, NASA FIRMS, or None (alerts then say thermal data was not checked)."""
    from monitoring.sources.firms import choose_thermal_source, firms_source

    choice = choose_thermal_source(settings)
    if choice == "none":
        return None
    if choice == "simulator":
        if not (imagery.simulated and isinstance(imagery, ThermalSource)):
            raise ConfigError(
                f"thermal.source 'simulator' needs source: simulator (the run uses {imagery.name!r}); set "
                "thermal.source to auto, firms or none."
            )
        return imagery
    return firms_source(settings)


def _rgb(ds: xr.Dataset) -> xr.DataArray:
    rgb = xr.concat([ds["B04"], ds["B03"], ds["B02"]], dim="band")
    scaled = (rgb / RGB_MAX_REFLECTANCE).clip(0, 1) ** (1 / 1.6) * 255
    return scaled.fillna(0).astype("uint8").transpose("y", "x", "band")


def _step(shape: tuple[int, int]) -> int:
    return max(1, int(np.ceil(max(shape) / CHIP_MAX_PX)))


def _save_chips(path: Path, **arrays: np.ndarray) -> None:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    write_bytes_atomic(path, buf.getvalue(), error=OutputError)


def save_result(result: HotspotResult, run_dir: Path) -> Path:
    path = area_dir(run_dir, result.area_id) / "result.json"
    write_bytes_atomic(path, result.model_dump_json(indent=2).encode(), error=OutputError)
    return path


def _base_fields(aoi: AOI, windows: TimeWindows, source_name: str, simulated: bool) -> dict[str, Any]:
    h = aoi.hotspot
    b = aoi.geobox.boundingbox
    return {
        "area_id": aoi.id,
        "name": aoi.name,
        "name_th": h.name_th if h else None,
        "name_km": h.name_km if h else None,
        "province_th": h.province_th if h else None,
        "province_kh": h.province_kh if h else None,
        "priority": h.priority if h else 2,
        "coordinates": h.coordinates if h else None,
        "notes": h.notes if h else "",
        "footprint": json.loads(json.dumps(aoi.footprint.__geo_interface__)),
        "crs": str(aoi.crs),
        "bounds": (b.left, b.bottom, b.right, b.top),
        "windows": Windows(before=windows.before, after=windows.after, sar_before=windows.sar_before),
        "source": source_name,
        "simulated": simulated,
    }


def record_failure(
    aoi: AOI,
    windows: TimeWindows,
    *,
    source_name: str,
    simulated: bool,
    run_dir: Path,
    error: BaseException,
) -> HotspotResult:
    """Write a 'failed' result for an area so the briefing reports the failure instead of losing the area."""
    msg = f"{type(error).__name__}: {error}".strip()
    result = HotspotResult(**_base_fields(aoi, windows, source_name, simulated), status="failed", error=msg)
    save_result(result, run_dir)
    return result


def _load_fires(
    thermal: ThermalSource | None, aoi: AOI, windows: TimeWindows, warnings: list[str]
) -> gpd.GeoDataFrame | None:
    """The area's active fires from the before window's start to the after window's end (a burn's last clear
    look before may lie in the before window); None, with a warning, where the source failed."""
    if thermal is None:
        return None
    start, end = windows.before[0], windows.after[1]
    try:
        return check_fires(thermal.load_fires(aoi, start, end), aoi, start, end)
    except SourceError as e:
        warnings.append(f"active fires not checked ({thermal.name}): {e}")
        return None


def _fire_records(fires: gpd.GeoDataFrame, aoi: AOI, windows: TimeWindows) -> list[FireDetection]:
    """The detections inside the area's footprint in the after window, for the briefing and the GeoJSON."""
    lo, hi = utc_day_bounds(*windows.after)
    inside = fires[(fires["time"] >= lo) & (fires["time"] < hi) & fires.within(aoi.footprint)]
    return [
        FireDetection(
            time=row.time.to_pydatetime(),
            latitude=round(float(row.latitude), 5),
            longitude=round(float(row.longitude), 5),
            satellite=str(row.satellite),
            instrument=str(row.instrument),
            confidence=str(row.confidence),
            frp=round(float(row.frp), 2) if np.isfinite(row.frp) else None,
            daynight=str(row.daynight),
            product=str(row.product),
            pixel_m=float(row.pixel_m),
        )
        for row in inside.itertuples()
    ]


def _compute(lazy: dict[str, Any]) -> dict[str, np.ndarray]:
    """One dask.compute of every layer of `lazy` (DataArrays or arrays), as numpy arrays by the same keys."""
    (computed,) = dask.compute({k: (v.data if isinstance(v, xr.DataArray) else v) for k, v in lazy.items()})
    return {k: np.asarray(v) for k, v in computed.items()}


def _as_lazy(like: xr.DataArray, values: np.ndarray) -> xr.DataArray:
    """Computed `values` in place of `like`'s, chunked as `like` was: later lazy steps keep their blocks."""
    data = like.data
    lazy = isinstance(data, dask.array.Array)
    return like.copy(data=dask.array.from_array(values, chunks=data.chunks) if lazy else values)


def _computed(d: Detection, c: dict[str, np.ndarray]) -> Detection:
    """`d` with every layer replaced by its computed values in `c` (keyed as Detection.layers)."""
    return d.map_layers(lambda key, layer: _as_lazy(layer, c[key]))


def _days(values: np.ndarray) -> list[date]:
    return [date.fromisoformat(str(np.datetime64(t, "D"))) for t in values]


def _optical_change_p(c: dict[str, np.ndarray], warnings: list[str]) -> np.ndarray | None:
    """The optical test's no-change p per pixel (detect.multivariate.change_p_values), from the before composite
    and the after window's latest clear looks the compute brought back (and drops from `c`); None, with a
    warning, where IR-MAD cannot be fitted."""
    images = [
        xr.Dataset({b: (("y", "x"), c.pop(f"irmad_{which}_{b}")) for b in CHANGE_BANDS})
        for which in ("before", "after")
    ]
    try:
        return np.asarray(change_p_values(*images).values)
    except DetectionError as e:
        warnings.append(f"optical change probability (IR-MAD) not computed: {e}")
        return None


def analyse_area(
    aoi: AOI,
    windows: TimeWindows,
    *,
    source: ImagerySource,
    settings: Settings,
    run_dir: Path,
    thermal: ThermalSource | None | Literal["auto"] = "auto",
) -> HotspotResult:
    """Load, mask, composite, detect, fuse and vectorise one area; write result.json and chips.npz.

    Everything up to the fused change map is lazy; two explicit dask computes evaluate it, the optical layers
    and then the radar's with the fusion (nothing is computed twice), and the small numpy layers are
    vectorised. `thermal`: the active-fire source ("auto": make_thermal_source; None: not checked);
    if it fails the area is still analysed and a warning says thermal data was not checked. Raises
    BorderwatchError subclasses for problems the caller should report.
    """
    t0 = time.perf_counter()
    th = settings.thresholds
    warnings: list[str] = []
    opt_b = check_optical(source.load_optical(aoi, *windows.before), aoi, *windows.before)
    opt_a = check_optical(source.load_optical(aoi, *windows.after), aoi, *windows.after)
    # The 12-month baseline and, where it does not reach, the same season a year earlier (cropland's baseline).
    # Multilooked as each tile is read (with its margin): no tile then waits on its neighbours' whole stacks.
    sar_parts = [
        check_sar(source.load_sar(aoi, a, b, multilook_px=MULTILOOK_PX), aoi, a, b)
        for a, b in windows.sar_ranges()
    ]
    sar = sar_parts[0] if len(sar_parts) == 1 else xr.concat(sar_parts, "time")
    # Everything so far is lazy: an area too large for this machine is refused before anything is computed.
    check_fits(
        aoi.id,
        aoi.shape[0] * aoi.shape[1],
        sar_scenes=int(sar.sizes["time"]),
        optical_scenes=int(opt_b.sizes["time"] + opt_a.sizes["time"]),
        limit_gb=settings.memory_limit_gb,
    )
    landcover = source.load_landcover(aoi)
    # The area's pixels: a drawn polygon's, not the rest of the bounding box the grid covers.
    inside = aoi.inside()
    n_inside = int(inside.sum())
    in_area = xr.DataArray(inside, dims=("y", "x"))
    if thermal == "auto":
        thermal = make_thermal_source(settings, source)
    fires = _load_fires(thermal, aoi, windows, warnings)

    lazy: dict[str, Any] = {}
    detections: list[Detection] = []
    burn = soil = sar_det = None
    builtup = None
    optical_ok = opt_b.sizes["time"] > 0 and opt_a.sizes["time"] > 0
    if optical_ok:
        mb = mask_clouds(opt_b)
        ma = add_indices(mask_clouds(opt_a))
        base = add_indices(composite(mb))
        burn = detect_burn_scars(base, ma, thresholds=th)
        soil = detect_soil_exposure(base, ma, thresholds=th, landcover=landcover)
        cva = detect_optical_change(base, ma, landcover=landcover)
        detections += [burn, soil, cva]
        after_view = latest_clear(ma, bands=CHANGE_BANDS)
        for b in CHANGE_BANDS:  # both images of the IR-MAD test, which fits after the compute (iterative)
            lazy[f"irmad_before_{b}"], lazy[f"irmad_after_{b}"] = base[b], after_view[b]
        step = _step(aoi.shape)
        lazy["before_rgb"] = _rgb(base)[::step, ::step]
        lazy["after_rgb"] = _rgb(after_view)[::step, ::step]
        lazy["opt_observed"] = (base["clear_count"] > 0) & ma["clear"].any("time")
        # The day of each pixel's latest clear look, where a clear baseline lets it show change (-1: none):
        # radar-only crater fields are claimed only where it came before radar's change
        # (vectorise.radar_crater_regions).
        days = xr.DataArray(ma["time"].values.astype("datetime64[D]").astype("int32"), dims="time")
        last_clear = days.where(ma["clear"], -1).max("time")
        lazy["optical_last_clear"] = last_clear.where(base["clear_count"] > 0, -1).astype("int32")
        lazy["clear_share_before"] = (mb["clear"] & in_area).sum(("y", "x")) / n_inside
        lazy["clear_share_after"] = (ma["clear"] & in_area).sum(("y", "x")) / n_inside
    else:
        warnings.append(
            "no Sentinel-2 scene in the "
            + ("before" if opt_b.sizes["time"] == 0 else "after")
            + " window: optical change not assessed"
        )
    if landcover is not None:
        lazy["landcover"] = landcover
    # The first of the area's two explicit computes: the optical layers. Radar follows in a compute of its own:
    # the two share only the land cover, and in one compute dask interleaved them and held the optical stack
    # and the radar tiles together (benchmarks/scale.py, 400 km²: 6.8-7.0 GB in one compute, 3.6-4.0 in two).
    c = _compute({**lazy, **{k: v for d in detections for k, v in d.layers().items()}})
    if landcover is not None:
        landcover = _as_lazy(landcover, c["landcover"])
    burn, soil = (_computed(d, c) if d is not None else None for d in (burn, soil))
    lazy = {}
    baseline_end = windows.before[1]
    post = sar["time"].values.astype("datetime64[D]") > np.datetime64(baseline_end)
    if post.any():
        try:
            sar_db = to_db(sar)  # shared by the test and the built-up mask: multilooked once
            sar_det = detect_sar_change(
                sar,
                baseline_end=baseline_end,
                baseline_start=windows.sar_before[0],
                season=windows.sar_season,
                thresholds=th,
                landcover=landcover,
                db=sar_db,
            )
            # The test says whether backscatter changed; the omnibus change points say when.
            sar_det = date_sar_changes(sar_det, sar, sar_db, baseline_end=baseline_end)
            builtup = builtup_mask(
                sar, baseline_end=baseline_end, thresholds=th, landcover=landcover, db=sar_db
            )
            detections.append(sar_det)
        except DetectionError as e:
            warnings.append(f"Sentinel-1 change not assessed: {e}")
        lazy["sar_observed"] = sar["valid"].isel(time=np.flatnonzero(post)).any("time")
    else:
        warnings.append("no Sentinel-1 scene in the after window: structural damage not assessed")
    if detections:
        lazy["codes"] = fuse_change_types(burn=burn, soil=soil, sar=sar_det, builtup=builtup)
        if builtup is not None:
            lazy["builtup"] = builtup
    if sar_det is not None:
        lazy.update(sar_det.layers())
    # The second explicit compute: radar, and the fusion with the optical masks computed above.
    c.update(_compute(lazy))

    if optical_ok:
        irmad_p = _optical_change_p(c, warnings)
        if irmad_p is not None:
            c[OPTICAL_P_LAYER] = irmad_p

    shape = aoi.shape
    opt_obs = c.get("opt_observed", np.zeros(shape, bool)) & inside
    sar_obs = c.get("sar_observed", np.zeros(shape, bool)) & inside
    opt_frac = float(opt_obs.sum() / n_inside)
    sar_frac = float(sar_obs.sum() / n_inside)
    clear_days = []
    if optical_ok:
        for ds, share in ((opt_b, c["clear_share_before"]), (opt_a, c["clear_share_after"])):
            clear_days += [
                d for d, s in zip(_days(ds["time"].values), share, strict=True) if s >= CLEAR_DAY_SHARE
            ]
    sar_days = _days(sar["time"].values[post])
    status: Literal["observed", "partly observed", "not observed"]
    if opt_frac >= 0.9:
        status = "observed"
    elif opt_frac >= 0.1 or sar_frac >= th.min_observed_fraction:
        status = "partly observed"
    else:
        status = "not observed"
    coverage = Coverage(
        optical_scenes_before=int(opt_b.sizes["time"]),
        optical_scenes_after=int(opt_a.sizes["time"]),
        optical_observed_fraction=round(opt_frac, 4),
        optical_last_clear=max(clear_days) if clear_days else None,
        sar_scenes_before=int((~post).sum()),
        sar_scenes_after=int(post.sum()),
        sar_observed_fraction=round(sar_frac, 4),
        sar_last=max(sar_days) if sar_days else None,
        not_observed_fraction=round(float((inside & ~opt_obs & ~sar_obs).sum() / n_inside), 4),
        status=status,
    )
    if opt_frac < th.min_observed_fraction:
        warnings.append(
            f"only {opt_frac:.0%} of the area had a clear optical view in the after window: burn scars, "
            "earthworks and craters are not assessed in the rest"
        )

    alerts: list[Alert] = []
    seasonal_burns: list[Alert] = []
    farm_fires: int | None = None
    if "codes" in c:
        base_days = [d for d in clear_days if d <= baseline_end]
        evidence = Evidence(
            codes=c["codes"],
            layers={k: v for k, v in c.items() if "." in k},
            times={d.method: d.times for d in detections},
            sensors={d.method: d.sensor for d in detections},
            scene_ids={d.method: d.scene_ids for d in detections},
            baseline_last_clear=max(base_days) if base_days else None,
            baseline_last={sar_det.method: max(_days(sar["time"].values[~post]))}
            if sar_det is not None and (~post).any()
            else {},
            landcover=c.get("landcover"),
            optical_last_clear=c.get("optical_last_clear"),
            fires=Fires.from_frame(fires, str(aoi.crs)) if fires is not None else None,
            builtup=c["builtup"].astype(bool) if "builtup" in c else None,
            inside=inside,
        )
        alerts = vectorise_alerts(evidence, geobox=aoi.geobox, area_id=aoi.id, mmu_ha=th.mmu_ha)
        if evidence.fires is not None and evidence.landcover is not None:
            outlines = [Geometry(a.geometry, "EPSG:4326").to_crs(aoi.crs).geom for a in alerts]
            area_cover = np.where(inside, evidence.landcover, 0)  # the area's cropland only (0: no data)
            farm_fires = cropland_fires(
                evidence.fires, area_cover, aoi.geobox.affine, crop=LC_CROP, accounted=outlines
            )
        alerts, seasonal_burns = set_aside_farm_burning(
            alerts,
            min_fields=th.farm_burning_min_fields,
            farm_fires=farm_fires or 0,
            min_fires=th.farm_burning_min_fires,
        )

    out = area_dir(run_dir, aoi.id)
    chips = None
    if optical_ok:
        step = _step(shape)
        _save_chips(
            out / "chips.npz",
            before_rgb=c["before_rgb"],
            after_rgb=c["after_rgb"],
            unobserved=(inside & ~opt_obs)[::step, ::step],
        )
        chips = "chips.npz"
    gaps = coverage_gaps(opt_obs, sar_obs, inside, aoi.geobox, aoi.footprint_in_grid().geom)
    scene_ids = [str(s) for ds in (opt_b, opt_a, sar) for s in ds["scene_id"].values]
    result = HotspotResult(
        **_base_fields(aoi, windows, source.name, source.simulated),
        status="ok",
        warnings=warnings,
        coverage=coverage,
        alerts=alerts,
        seasonal_burns=seasonal_burns,
        cropland_fires=farm_fires,
        thermal_source=thermal.name if fires is not None and thermal is not None else None,
        fires=_fire_records(fires, aoi, windows) if fires is not None else [],
        gaps=gaps,
        scene_ids=scene_ids,
        chips=chips,
        seconds=round(time.perf_counter() - t0, 2),
    )
    save_result(result, run_dir)
    return result


def track_run(run_dir: Path, *, run_date: date, settings: Settings, store: AlertStore) -> dict[str, int]:
    """Match each area's alerts to those earlier daily runs reported (monitoring.track); rewrite result.json.

    The store gets the run's tracked alerts only after every area was matched, and each area's result.json is then
    replaced atomically; repeating it for the same run gives the same ids and states (only earlier runs count).
    Failed areas are left out, and areas this run did not observe are not stored as a run: their tracks stay for
    the next run that looks. Returns the count of alerts per state.
    """
    from monitoring.report.load import load_results

    updated: list[HotspotResult] = []
    looked: set[str] = set()
    for result in load_results(run_dir):
        if result.status != "ok":
            continue
        # Where this run saw too little to say anything, not detecting an alert withdraws nothing.
        if result.coverage is not None and result.coverage.status != "not observed":
            looked.add(result.area_id)
        previous = store.previous_run(result.area_id, before=run_date)
        tracked = track_alerts(
            result.alerts,
            store.tracks(result.area_id, before=run_date, max_gap_days=settings.tracking.max_gap_days),
            run_date=run_date,
            after_start=result.windows.after[0],
            seasonal_burns=result.seasonal_burns,
            previous_run=previous,
        )
        withdrawn = [t.alert for t in tracked.withdrawn] if result.area_id in looked else []
        updated.append(
            result.model_copy(
                update={
                    "alerts": tracked.alerts,
                    "seasonal_burns": tracked.seasonal_burns,
                    "tracked": True,
                    "previous_run": previous,
                    "withdrawn": withdrawn,
                }
            )
        )
    for result in updated:
        if result.area_id in looked:
            store.record(result.area_id, run_date, [*result.alerts, *result.seasonal_burns])
    for result in updated:
        save_result(result, run_dir)
    return dict(Counter(a.lifecycle for r in updated for a in r.alerts if a.lifecycle is not None))


def build_briefing(
    run_dir: Path,
    *,
    run_date: date,
    kind: Literal["daily", "area-check"],
    settings: Settings,
    source_name: str,
    simulated: bool,
) -> dict[str, Path]:
    """Write briefing.pdf, briefing.geojson and manifest.json from the area results in run_dir."""
    from monitoring.report import write_briefing

    scenario = settings.simulator.scenario if source_name == "simulator" else None
    return write_briefing(
        run_dir,
        run_date=run_date,
        kind=kind,
        source=source_name,
        simulated=simulated,
        settings=settings.model_dump(mode="json"),
        scenario=scenario,
    )
