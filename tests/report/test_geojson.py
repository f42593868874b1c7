"""Tests of the report stage's GeoJSON: RFC 7946, readable by GDAL, honest about simulation and coverage."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import LinearRing

from monitoring.errors import ReportError
from monitoring.report import write_geojson
from monitoring.report.samples import sample_results
from monitoring.results import Confidence, HotspotResult

RUN_DATE = date(2025, 12, 22)


def _results(simulated: bool = True) -> list[HotspotResult]:
    return [r for r, _ in sample_results(RUN_DATE, simulated=simulated, size_px=48)]


def _write(tmp_path: Path, results: list[HotspotResult], simulated: bool = True) -> tuple[Path, dict]:
    path = write_geojson(
        results, tmp_path / "briefing.geojson", run_date=RUN_DATE, source="simulator", simulated=simulated
    )
    return path, json.loads(path.read_text(encoding="utf-8"))


def _rings(geometry: dict) -> list[tuple[list, bool]]:
    """(ring, is_exterior) for every ring of a (Multi)Polygon."""
    polys = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
    return [(ring, i == 0) for poly in polys for i, ring in enumerate(poly)]


def test_feature_collection_is_rfc7946(tmp_path: Path) -> None:
    results = _results()
    _, fc = _write(tmp_path, results)
    assert fc["type"] == "FeatureCollection"
    assert "crs" not in fc, "RFC 7946 removed the crs member: coordinates are always WGS84"
    n_alerts = sum(len(r.alerts) for r in results)
    n_fires = sum(len(r.fires) for r in results)
    assert n_fires, "the samples must include active fires for this test to mean anything"
    n_gaps = sum(len(r.gaps) for r in results)
    assert len(fc["features"]) == n_alerts + n_fires + n_gaps + len(results)
    for f in fc["features"]:
        assert f["type"] == "Feature"
        if f["properties"]["feature_type"] == "fire_detection":
            assert f["geometry"]["type"] == "Point"
            lon, lat = f["geometry"]["coordinates"]
            assert 100 < lon < 106 and 10 < lat < 15, "lon/lat order (x, y), not lat/lon"
            continue
        assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
        for ring, exterior in _rings(f["geometry"]):
            assert ring[0] == ring[-1] and len(ring) >= 4
            for lon, lat in ring:
                assert -180 <= lon <= 180 and -90 <= lat <= 90
                assert 100 < lon < 106 and 10 < lat < 15, "lon/lat order (x, y), not lat/lon"
            # Right-hand rule: exteriors counter-clockwise, holes clockwise.
            assert LinearRing(ring).is_ccw == exterior
    minx, miny, maxx, maxy = fc["bbox"]
    assert minx < maxx and miny < maxy


def test_clockwise_input_is_reoriented(tmp_path: Path) -> None:
    results = _results()
    alerts = [a for r in results for a in r.alerts]
    clockwise = [a for a in alerts if not LinearRing(_rings(a.geometry)[0][0]).is_ccw]
    assert clockwise, "the samples must include clockwise input for this test to mean anything"
    _, fc = _write(tmp_path, results)
    by_id = {f["id"]: f for f in fc["features"]}
    for a in clockwise:
        for ring, exterior in _rings(by_id[a.id]["geometry"]):
            assert LinearRing(ring).is_ccw == exterior


def test_at_most_six_decimals(tmp_path: Path) -> None:
    _, fc = _write(tmp_path, _results())
    for f in fc["features"]:
        decimals = re.findall(r"\.(\d+)", json.dumps(f["geometry"]["coordinates"]))
        assert decimals and max(len(d) for d in decimals) <= 6


def test_reads_back_with_gdal_as_wgs84(tmp_path: Path) -> None:
    results = _results()
    path, _ = _write(tmp_path, results)
    info = pyogrio.read_info(path)
    # Polygons and fire points: GDAL calls the layer's type Unknown and reads every feature with its own type
    # (QGIS offers the file as two layers, polygons and points).
    assert info["geometry_type"] == "Unknown"
    df = pyogrio.read_dataframe(path)
    assert len(df) == info["features"]
    fire_rows = df["feature_type"] == "fire_detection"
    assert (df.geom_type[fire_rows] == "Point").all() and fire_rows.sum() == sum(
        len(r.fires) for r in results
    )
    assert (df.geom_type[~fire_rows] == "MultiPolygon").all()
    # ISO times with a Z come back as UTC datetimes.
    assert str(df["time"].dt.tz) == "UTC"
    df = gpd.read_file(path)
    assert df.crs is not None and df.crs.to_epsg() == 4326
    assert (df["feature_type"] == "alert").sum() == sum(len(r.alerts) for r in results)
    assert (df["feature_type"] == "observation").sum() == len(results)
    assert df["simulated"].all()
    alerts = df[df["feature_type"] == "alert"]
    assert set(alerts["change_type"]) >= {"burn_scar", "crater_field", "structural_damage", "earthworks"}
    assert alerts["sensors_text"].str.contains("sentinel").all()
    assert alerts["change_label"].notna().all() and alerts["hotspot"].notna().all()
    x0, y0, x1, y1 = df.total_bounds
    assert 102 < x0 < x1 < 106 and 11 < y0 < y1 < 15


def test_observation_features_say_what_was_seen(tmp_path: Path) -> None:
    _, fc = _write(tmp_path, _results())
    obs = {
        f["properties"]["hotspot_id"]: f["properties"]
        for f in fc["features"]
        if f["properties"]["feature_type"] == "observation"
    }
    assert obs["poipet"]["status"] == "failed"
    assert "SceneLoadError" in obs["poipet"]["error"]
    assert obs["poipet"]["optical_observed_fraction"] is None
    assert obs["chong-bok"]["status"] == "not observed"
    assert obs["chong-bok"]["statement"].startswith("Not observed — no statement possible")
    assert obs["ta-muen-thom"]["statement"] == "No change detected in the observed part."
    assert obs["preah-vihear"]["alert_count"] == 4
    assert obs["chong-an-ma"]["warnings_text"].startswith("no Sentinel-1 scene")
    assert obs["preah-vihear"]["warnings"] == [] and obs["preah-vihear"]["warnings_text"] is None
    assert obs["preah-vihear"]["after_end"] == "2025-12-22"
    for props in obs.values():
        assert all(not isinstance(v, dict) for v in props.values()), "properties must be flat for GDAL"


def test_alert_properties_carry_the_alert_fields(tmp_path: Path) -> None:
    results = _results()
    _, fc = _write(tmp_path, results)
    alert = results[[r.area_id for r in results].index("preah-vihear")].alerts[0]
    props = next(f["properties"] for f in fc["features"] if f["id"] == alert.id)
    for field in alert.model_dump(exclude={"geometry"}):
        assert field in props
    assert "geometry" not in props
    assert props["feature_type"] == "alert"
    assert props["first_observed"] == alert.first_observed.isoformat()
    assert props["sensors"] == alert.sensors
    assert props["sensors_text"] == ", ".join(alert.sensors)


def test_simulated_flag_and_notice(tmp_path: Path) -> None:
    _, fc = _write(tmp_path, _results(simulated=True), simulated=True)
    assert fc["simulated"] is True
    assert "SIMULATED DATA — NOT OBSERVATIONS" in fc["notice"]
    assert all(f["properties"]["simulated"] is True for f in fc["features"])
    for key in ("run_date", "source", "generated"):
        assert fc[key]
    assert fc["generated"].endswith("Z")


def test_real_data_is_not_stamped_simulated(tmp_path: Path) -> None:
    _, fc = _write(tmp_path, _results(simulated=False), simulated=False)
    assert fc["simulated"] is False
    assert "SIMULATED" not in fc["notice"]
    assert "Preliminary, not validated in the field" in fc["notice"]
    assert all(f["properties"]["simulated"] is False for f in fc["features"])


def test_one_simulated_result_makes_the_briefing_simulated(tmp_path: Path) -> None:
    results = _results(simulated=False)
    results[0] = results[0].model_copy(update={"simulated": True})
    _, fc = _write(tmp_path, results, simulated=False)
    assert fc["simulated"] is True
    assert all(f["properties"]["simulated"] for f in fc["features"])


def test_bad_geometry_names_the_alert_and_leaves_no_file(tmp_path: Path) -> None:
    results = _results()
    r = results[[x.area_id for x in results].index("preah-vihear")]
    bad = r.alerts[0].model_copy(
        update={
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[500000, 1600000], [500100, 1600000], [500100, 1600100], [500000, 1600000]]],
            }
        }
    )
    results[results.index(r)] = r.model_copy(update={"alerts": [bad]})
    with pytest.raises(ReportError, match=bad.id):
        _write(tmp_path, results)
    assert list(tmp_path.iterdir()) == []


def test_burns_set_aside_as_farm_burning_are_context_not_alerts(tmp_path: Path) -> None:
    results = _results()
    i = [r.area_id for r in results].index("preah-vihear")
    r = results[i]
    burns = [a.model_copy(update={"seasonal": True}) for a in r.alerts[:2]]
    results[i] = r.model_copy(update={"alerts": r.alerts[2:], "seasonal_burns": burns, "cropland_fires": 146})
    path, fc = _write(tmp_path, results)
    df = gpd.read_file(path)
    assert (df["feature_type"] == "alert").sum() == sum(len(x.alerts) for x in results)
    aside = df[df["feature_type"] == "seasonal_burn"]
    assert sorted(aside["id"]) == sorted(a.id for a in burns) and aside["seasonal"].all()
    obs = next(f["properties"] for f in fc["features"] if f["id"] == "area:preah-vihear")
    assert obs["alert_count"] == len(r.alerts) - 2 and obs["seasonal_burn_count"] == 2
    assert obs["seasonal_burn_ha"] == pytest.approx(sum(a.area_ha for a in burns), abs=0.01)
    assert "Farm burning: 2 burnt patches on cropland" in obs["statement"]
    assert "not counted as alerts" in obs["statement"]
    first, last = min(a.first_observed for a in burns), max(a.last_observed for a in burns)
    assert f"seen {first.isoformat()} to {last.isoformat()})" in obs["statement"]
    # Why the season is under way: the area's fires on cropland, stated and given as a field.
    assert obs["cropland_fires"] == 146
    since = results[i].windows.before[0].isoformat()
    assert (
        f"active-fire data show 146 fires on this area's cropland away from any alert since {since}"
        in (obs["statement"])
    )
    other = next(f["properties"] for f in fc["features"] if f["id"] == f"area:{results[i - 1].area_id}")
    assert other["cropland_fires"] is None  # not computed (the synthetic sample leaves it unset): null, not 0


def _by_type(fc: dict, feature_type: str) -> list[dict]:
    return [f for f in fc["features"] if f["properties"]["feature_type"] == feature_type]


def test_fire_detections_are_points_matched_to_alerts(tmp_path: Path) -> None:
    results = _results()
    _, fc = _write(tmp_path, results)
    fires = _by_type(fc, "fire_detection")
    pv = next(r for r in results if r.area_id == "preah-vihear")
    burn = next(a for a in pv.alerts if a.change_type.value == "burn_scar")
    on = [f for f in fires if f["properties"]["on_alert"]]
    # The sample's burn scar: 3 fires between its last clear look and its first observation; the rest came later.
    assert {f["properties"]["on_alert"] for f in on} == {burn.id}
    assert len(on) == 3 == burn.thermal_detections
    assert len([f for f in fires if f["properties"]["hotspot_id"] == "preah-vihear"]) == len(pv.fires)
    assert all(
        f["properties"]["on_alert"] is None for f in fires if f["properties"]["hotspot_id"] != "preah-vihear"
    )
    props = on[0]["properties"]
    assert props["time"] == "2025-12-08T06:41:00Z"
    for key in ("satellite", "instrument", "confidence", "frp", "daynight", "product", "hotspot_id"):
        assert props[key] is not None
    assert props["pixel_m"] == 375.0
    assert {f["properties"]["pixel_m"] for f in fires if f["properties"]["instrument"] == "MODIS"} == {1000.0}
    assert len({f["id"] for f in fires}) == len(fires), "fire ids are unique"
    assert all(not isinstance(v, (dict, list)) for f in fires for v in f["properties"].values())


def test_alerts_carry_their_thermal_fields(tmp_path: Path) -> None:
    results = _results()
    _, fc = _write(tmp_path, results)
    alerts = {f["id"]: f["properties"] for f in _by_type(fc, "alert")}
    pv = next(r for r in results if r.area_id == "preah-vihear")
    burn = next(a for a in pv.alerts if a.change_type.value == "burn_scar")
    props = alerts[burn.id]
    assert props["thermal_detections"] == 3
    assert props["thermal_first"] == "2025-12-08T06:41:00Z" and props["thermal_last"].endswith("Z")
    assert props["thermal_frp_max"] == 18.6
    assert "viirs" in props["sensors"] and "active-fire" in props["methods"]
    cam = next(r for r in results if r.area_id == "chong-an-ma")
    assert alerts[cam.alerts[0].id]["thermal_detections"] == 0, "checked, none: 0"
    # Naive times (as numpy hands them over) are UTC and say so.
    naive = burn.model_copy(update={"thermal_first": datetime(2025, 12, 8, 6, 41)})
    pv2 = pv.model_copy(update={"alerts": [naive]})
    _, fc2 = _write(tmp_path, [pv2])
    assert _by_type(fc2, "alert")[0]["properties"]["thermal_first"] == "2025-12-08T06:41:00Z"


def test_observation_features_count_fires_or_say_not_checked(tmp_path: Path) -> None:
    _, fc = _write(tmp_path, _results())
    obs = {f["properties"]["hotspot_id"]: f["properties"] for f in _by_type(fc, "observation")}
    fires = _by_type(fc, "fire_detection")
    for area, props in obs.items():
        mine = [f for f in fires if f["properties"]["hotspot_id"] == area]
        if props["thermal_source"] is None:
            assert props["fire_detections"] is None and props["fire_detections_on_alerts"] is None
            assert "not checked" in props["fire_text"] and not mine
        else:
            assert props["fire_detections"] == len(mine)
            assert props["fire_detections_on_alerts"] == sum(1 for f in mine if f["properties"]["on_alert"])
    assert obs["preah-vihear"]["thermal_source"] == "simulator"
    assert (obs["preah-vihear"]["fire_detections"], obs["preah-vihear"]["fire_detections_on_alerts"]) == (
        6,
        3,
    )
    assert obs["chong-an-ma"]["fire_detections"] == 0, "checked and none seen: 0, not null"
    assert "not proof of no fire" in obs["chong-an-ma"]["fire_text"]
    assert obs["chong-bok"]["fire_detections"] is None
    assert obs["ta-muen-thom"]["fire_text"].endswith("none on a change alert.")


def test_fires_on_farm_burns_name_the_seasonal_burn(tmp_path: Path) -> None:
    results = _results()
    i = [r.area_id for r in results].index("preah-vihear")
    r = results[i]
    burn = next(a for a in r.alerts if a.change_type.value == "burn_scar")
    # A fire confirms a fire, not a conflict: the farm burn keeps its thermal fields and stays set aside.
    farm = burn.model_copy(update={"seasonal": True, "confidence": Confidence.LOW})
    results[i] = r.model_copy(
        update={"alerts": [a for a in r.alerts if a is not burn], "seasonal_burns": [farm]}
    )
    path, fc = _write(tmp_path, results)
    aside = _by_type(fc, "seasonal_burn")
    assert aside[0]["properties"]["thermal_detections"] == 3
    on = [f["properties"]["on_alert"] for f in _by_type(fc, "fire_detection") if f["properties"]["on_alert"]]
    assert on == [farm.id] * 3
    obs = next(f["properties"] for f in fc["features"] if f["id"] == "area:preah-vihear")
    assert obs["fire_detections_on_alerts"] == 0 and obs["fire_detections_on_farm_burns"] == 3
    assert "3 of them on farm burns (stubble fires are hot too)" in obs["fire_text"]
    df = gpd.read_file(path)
    assert (df["feature_type"] == "seasonal_burn").sum() == 1


def test_tracked_areas_count_new_alerts_and_show_withdrawn_ones(tmp_path: Path) -> None:
    results = _results()
    i = [r.area_id for r in results].index("preah-vihear")
    r = results[i]
    gone = r.alerts[0].model_copy(update={"id": "pv-gone", "first_reported": date(2025, 12, 18)})
    states = ["confirmed"] + ["new"] * (len(r.alerts) - 1)
    alerts = [a.model_copy(update={"lifecycle": st}) for a, st in zip(r.alerts, states, strict=True)]
    results[i] = r.model_copy(
        update={"alerts": alerts, "tracked": True, "previous_run": date(2025, 12, 21), "withdrawn": [gone]}
    )
    path, fc = _write(tmp_path, results)
    withdrawn = _by_type(fc, "withdrawn_alert")
    assert [f["id"] for f in withdrawn] == ["pv-gone"]
    assert withdrawn[0]["properties"]["first_reported"] == "2025-12-18"
    obs = next(f["properties"] for f in fc["features"] if f["id"] == "area:preah-vihear")
    assert obs["tracked"] is True and obs["withdrawn_count"] == 1
    assert obs["new_alert_count"] == len(r.alerts) - 1 and obs["previous_run"] == "2025-12-21"
    assert "No longer detected: pv-gone (burn scar, first reported 2025-12-18)" in obs["statement"]
    # An untracked area (an ad hoc check) says neither 0 new nor 0 withdrawn: it was not compared.
    other = next(f["properties"] for f in fc["features"] if f["id"] == "area:chong-an-ma")
    assert other["tracked"] is False and other["new_alert_count"] is None and other["withdrawn_count"] is None
    assert other["previous_run"] is None
    df = gpd.read_file(path)
    assert (df["feature_type"] == "alert").sum() == sum(len(x.alerts) for x in results)


def test_what_was_not_seen_is_outlined_by_which_sensor_missed_it(tmp_path: Path) -> None:
    results = _results()
    path, fc = _write(tmp_path, results)
    kinds = [f["properties"]["feature_type"] for f in fc["features"]]
    gaps = [f for f in fc["features"] if f["properties"]["feature_type"] == "not_observed"]
    # Above the footprints, beneath every alert.
    assert gaps and kinds.index("not_observed") > max(i for i, k in enumerate(kinds) if k == "observation")
    assert max(i for i, k in enumerate(kinds) if k == "not_observed") < kinds.index("alert")
    by_area = {(f["properties"]["hotspot_id"], f["properties"]["not_seen_by_text"]): f for f in gaps}
    # chong-an-ma had no radar scene and a cloud: radar missed all of it, and both missed the cloud.
    assert set(by_area) == {
        ("chong-an-ma", "sentinel-1"),
        ("chong-an-ma", "sentinel-1 and sentinel-2"),
        ("chong-bok", "sentinel-1"),
        ("chong-bok", "sentinel-1 and sentinel-2"),
    }
    cloud = by_area[("chong-an-ma", "sentinel-1 and sentinel-2")]["properties"]
    assert cloud["statement"].startswith("Observed by neither sensor") and cloud["area_ha"] > 0
    assert cloud["after_end"] == "2025-12-22" and cloud["simulated"] is True
    assert all(f["geometry"]["type"] == "MultiPolygon" for f in gaps)
    # Their pixel areas add up to what the area's coverage says neither sensor saw.
    area = next(r for r in results if r.area_id == "chong-an-ma")
    assert area.coverage is not None
    side_ha = 48 * 48 * 0.01
    assert cloud["area_ha"] == pytest.approx(area.coverage.not_observed_fraction * side_ha, abs=0.01)
    df = gpd.read_file(path)
    assert (df["feature_type"] == "not_observed").sum() == 4 and df.crs.to_epsg() == 4326
