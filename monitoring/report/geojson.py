"""Report: the briefing as an RFC 7946 GeoJSON FeatureCollection (area footprints, alerts, active fires)."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.polygon import orient

from monitoring.atomic import write_text_atomic
from monitoring.errors import ReportError
from monitoring.report.fires import FireOnAlert, iso_utc, match_fires, pixel_m
from monitoring.report.load import sort_results
from monitoring.report.text import coverage_line, fire_line, notice, observation_status, statement
from monitoring.results import CHANGE_LABELS, Alert, HotspotResult, ObservationGap

DECIMALS = 6
"""RFC 7946 §11.2: six decimals of a degree is about 10 cm, finer than any 10 m pixel."""


def _clean_ring(ring: Any) -> list[list[float]]:
    out: list[list[float]] = []
    for x, y, *_ in ring:  # drop any z: the briefing is 2-D
        pt = [round(float(x), DECIMALS), round(float(y), DECIMALS)]
        if not out or pt != out[-1]:  # rounding can merge neighbours; a repeated vertex upsets some readers
            out.append(pt)
    if out and out[0] != out[-1]:
        out.append(out[0])
    return out


def _polygon_coords(p: Polygon) -> list[list[list[float]]]:
    p = orient(p, sign=1.0)  # right-hand rule: exterior counter-clockwise, holes clockwise
    return [_clean_ring(p.exterior.coords)] + [_clean_ring(r.coords) for r in p.interiors]


def clean_geometry(geom: dict[str, Any], *, what: str) -> dict[str, Any]:
    """A WGS84 MultiPolygon, oriented by the right-hand rule and rounded to six decimals.

    Every polygon is written as a MultiPolygon, so that all polygons share one geometry type: QGIS then opens the
    file as two layers at most (these polygons, and the active-fire points) instead of one per polygon type.
    """
    try:
        g = shape(geom)
    except Exception as e:  # shapely raises several types for malformed GeoJSON
        raise ReportError(
            f"{what}: geometry cannot be read ({e}); it must be a GeoJSON Polygon in lon/lat."
        ) from e
    minx, miny, maxx, maxy = g.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise ReportError(
            f"{what}: coordinates {g.bounds} are not lon/lat degrees; "
            "alert and footprint geometry must be WGS84."
        )
    if isinstance(g, Polygon):
        return {"type": "MultiPolygon", "coordinates": [_polygon_coords(g)]}
    if isinstance(g, MultiPolygon):
        return {"type": "MultiPolygon", "coordinates": [_polygon_coords(p) for p in g.geoms]}
    raise ReportError(f"{what}: geometry is a {g.geom_type}; only Polygon and MultiPolygon can be reported.")


def _scalar(v: Any) -> Any:
    """JSON-safe scalar: ISO dates, times in UTC with a Z, no NaN (invalid JSON), enums as their value."""
    if isinstance(v, datetime):
        return iso_utc(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "value") and isinstance(v.value, str):
        return v.value
    return v


def _alert_feature(
    result: HotspotResult, alert: Alert, *, simulated: bool, feature_type: str = "alert"
) -> dict[str, Any]:
    """An alert, or (feature_type 'seasonal_burn') a burn set aside as the season's farm burning."""
    props: dict[str, Any] = {"feature_type": feature_type}
    for key, value in alert.model_dump(exclude={"geometry"}).items():
        props[key] = [_scalar(x) for x in value] if isinstance(value, list) else _scalar(value)
    props.update(
        hotspot=result.name,
        change_label=CHANGE_LABELS[alert.change_type],
        # GDAL reads string lists, but many tools only show scalars: keep a joined copy of each list.
        sensors_text=", ".join(alert.sensors),
        methods_text=", ".join(alert.methods),
        scene_ids_text=", ".join(alert.scene_ids),
        simulated=simulated,
    )
    geometry = clean_geometry(alert.geometry, what=f"alert {alert.id!r} of area {result.area_id!r}")
    return {"type": "Feature", "id": alert.id, "geometry": geometry, "properties": props}


def _gap_feature(result: HotspotResult, gap: ObservationGap, *, simulated: bool) -> dict[str, Any]:
    """Where a sensor did not observe the area in the after window (feature_type 'not_observed')."""
    w = result.windows
    props: dict[str, Any] = {
        "feature_type": "not_observed",
        "hotspot_id": result.area_id,
        "hotspot": result.name,
        "not_seen_by": gap.not_seen_by,
        "not_seen_by_text": " and ".join(gap.not_seen_by),
        "area_ha": gap.area_ha,
        "statement": gap.statement,
        "after_start": w.after[0].isoformat(),
        "after_end": w.after[1].isoformat(),
        "simulated": simulated,
    }
    what = f"not-observed outline ({', '.join(gap.not_seen_by)}) of area {result.area_id!r}"
    geometry = clean_geometry(gap.geometry, what=what)
    fid = f"gap:{result.area_id}:{'+'.join(gap.not_seen_by)}"
    return {"type": "Feature", "id": fid, "geometry": geometry, "properties": props}


def _fire_feature(
    result: HotspotResult, match: FireOnAlert, number: int, *, simulated: bool
) -> dict[str, Any]:
    """One active-fire detection as a Point at its pixel's centre; on_alert names the alert or farm burn it lies on
    (fires.match_fires), or is null."""
    f = match.fire
    if not (-180 <= f.longitude <= 180 and -90 <= f.latitude <= 90):
        raise ReportError(
            f"active fire {number} of area {result.area_id!r} ({iso_utc(f.time)}): latitude {f.latitude}, "
            f"longitude {f.longitude} are not degrees; fire detections must be WGS84."
        )
    props: dict[str, Any] = {
        "feature_type": "fire_detection",
        "hotspot_id": result.area_id,
        "hotspot": result.name,
        "time": iso_utc(f.time),
        "satellite": f.satellite,
        "instrument": f.instrument,
        "confidence": f.confidence,
        "frp": _scalar(f.frp),
        "daynight": f.daynight,
        "product": f.product,
        "pixel_m": pixel_m(f),
        "latitude": f.latitude,
        "longitude": f.longitude,
        "on_alert": match.alert.id if match.alert is not None else None,
        "thermal_source": result.thermal_source,
        "simulated": simulated,
    }
    geometry = {"type": "Point", "coordinates": [round(f.longitude, DECIMALS), round(f.latitude, DECIMALS)]}
    return {
        "type": "Feature",
        "id": f"fire:{result.area_id}:{number}",
        "geometry": geometry,
        "properties": props,
    }


def _observation_feature(
    result: HotspotResult, matches: list[FireOnAlert], *, simulated: bool
) -> dict[str, Any]:
    cov = result.coverage
    checked = result.thermal_source is not None
    on_farm = sum(1 for m in matches if m.seasonal)
    on_alerts = sum(1 for m in matches if m.alert is not None) - on_farm
    w = result.windows
    props: dict[str, Any] = {
        "feature_type": "observation",
        "hotspot_id": result.area_id,
        "hotspot": result.name,
        "name_th": result.name_th,
        "name_km": result.name_km,
        "priority": result.priority,
        "coordinates": result.coordinates,
        "status": observation_status(result),
        "run_status": result.status,
        "error": result.error,
        "warnings": list(result.warnings),
        "warnings_text": "; ".join(result.warnings) or None,
        "statement": statement(result),
        "coverage_text": coverage_line(cov) if cov else None,
        "optical_scenes_before": cov.optical_scenes_before if cov else None,
        "optical_scenes_after": cov.optical_scenes_after if cov else None,
        "optical_observed_fraction": _scalar(cov.optical_observed_fraction) if cov else None,
        "optical_last_clear": _scalar(cov.optical_last_clear) if cov else None,
        "sar_scenes_before": cov.sar_scenes_before if cov else None,
        "sar_scenes_after": cov.sar_scenes_after if cov else None,
        "sar_observed_fraction": _scalar(cov.sar_observed_fraction) if cov else None,
        "sar_last": _scalar(cov.sar_last) if cov else None,
        "not_observed_fraction": _scalar(cov.not_observed_fraction) if cov else None,
        "before_start": w.before[0].isoformat(),
        "before_end": w.before[1].isoformat(),
        "after_start": w.after[0].isoformat(),
        "after_end": w.after[1].isoformat(),
        "sar_before_start": w.sar_before[0].isoformat(),
        "sar_before_end": w.sar_before[1].isoformat(),
        "alert_count": len(result.alerts),
        "seasonal_burn_count": len(result.seasonal_burns),
        "seasonal_burn_ha": round(sum(a.area_ha for a in result.seasonal_burns), 2),
        # Active fires on the area's cropland over both windows, away from its alerts (the farm-burning season
        # test); null where thermal data or land cover was not available.
        "cropland_fires": result.cropland_fires,
        # Tracked (daily runs): how many alerts are new today; null for ad hoc checks, which are not tracked.
        "tracked": result.tracked,
        # The earlier daily run the alerts were compared with; null for the first tracked run and ad hoc checks.
        "previous_run": result.previous_run.isoformat() if result.previous_run else None,
        "new_alert_count": sum(1 for a in result.alerts if a.lifecycle == "new") if result.tracked else None,
        "withdrawn_count": len(result.withdrawn) if result.tracked else None,
        # Null, not 0, where thermal data was not checked: no fire seen and not looked are different.
        "thermal_source": result.thermal_source,
        "fire_detections": len(matches) if checked else None,
        "fire_detections_on_alerts": on_alerts if checked else None,
        "fire_detections_on_farm_burns": on_farm if checked else None,
        "fire_text": fire_line(result, matches),
        "scene_count": len(result.scene_ids),
        "source": result.source,
        "simulated": simulated,
    }
    geometry = clean_geometry(result.footprint, what=f"footprint of area {result.area_id!r}")
    return {"type": "Feature", "id": f"area:{result.area_id}", "geometry": geometry, "properties": props}


def _bbox(features: list[dict[str, Any]]) -> list[float] | None:
    xs: list[float] = []
    ys: list[float] = []
    for f in features:
        geom = f["geometry"]
        points = (
            [geom["coordinates"]]
            if geom["type"] == "Point"
            else [p for poly in geom["coordinates"] for p in poly[0]]
        )
        for x, y in points:
            xs.append(x)
            ys.append(y)
    return [min(xs), min(ys), max(xs), max(ys)] if xs else None


def feature_collection(
    results: list[HotspotResult],
    *,
    run_date: date,
    source: str,
    simulated: bool,
    generated: datetime | None = None,
) -> dict[str, Any]:
    """The briefing's FeatureCollection: area footprints first (drawn underneath), then where each sensor did not
    observe each area (feature_type 'not_observed', by which sensor missed it), then per area its alerts by
    size, the burns set aside as farm burning (feature_type 'seasonal_burn', not alerts), the alerts earlier daily
    runs reported that this run no longer detects (feature_type 'withdrawn_alert', as last reported), and its
    active-fire detections in the after window as Points in time order (feature_type 'fire_detection').

    Polygons and points in one collection are valid GeoJSON; GDAL reports the layer's geometry type as Unknown
    and QGIS offers it as two layers, the polygons and the points.
    """
    results = sort_results(results)
    # A single simulated input makes the whole briefing simulated: never under-label.
    simulated = simulated or any(r.simulated for r in results)
    # Alerts first: their geometry is checked there, with a message naming the alert, before fires use it.
    per_area: list[list[dict[str, Any]]] = []
    for r in results:
        area: list[dict[str, Any]] = []
        for kind, alerts in (
            ("alert", r.alerts),
            ("seasonal_burn", r.seasonal_burns),
            ("withdrawn_alert", r.withdrawn),
        ):
            order = sorted(alerts, key=lambda a: (-a.area_ha, a.id))
            area.extend(_alert_feature(r, a, simulated=simulated, feature_type=kind) for a in order)
        per_area.append(area)
    matches = {r.area_id: match_fires(r) for r in results}
    features = [_observation_feature(r, matches[r.area_id], simulated=simulated) for r in results]
    # What was not seen, above the footprints and beneath the alerts.
    features += [_gap_feature(r, g, simulated=simulated) for r in results for g in r.gaps]
    for r, area in zip(results, per_area, strict=True):
        features.extend(area)
        features.extend(
            _fire_feature(r, m, i, simulated=simulated) for i, m in enumerate(matches[r.area_id], start=1)
        )
    fc: dict[str, Any] = {
        "type": "FeatureCollection",
        "name": "briefing",
        "run_date": run_date.isoformat(),
        "source": source,
        "simulated": simulated,
        "generated": (generated or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "notice": notice(simulated),
    }
    bbox = _bbox(features)
    if bbox:
        fc["bbox"] = bbox
    fc["features"] = features
    return fc


def write_geojson(
    results: list[HotspotResult], path: Path | str, *, run_date: date, source: str, simulated: bool
) -> Path:
    """Write briefing.geojson (UTF-8, WGS84 lon/lat, no 'crs' member) atomically; returns the path."""
    fc = feature_collection(results, run_date=run_date, source=source, simulated=simulated)
    return write_text_atomic(Path(path), json.dumps(fc, ensure_ascii=False, indent=1) + "\n")
