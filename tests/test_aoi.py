"""Tests for AOIs and time windows: one UTM 10 m grid per area, one-line errors, window arithmetic."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import Point

from monitoring.aoi import (
    aoi_from_bbox,
    aoi_from_geojson,
    aoi_from_hotspot,
    explicit_windows,
    utm_crs,
    windows_for,
)
from monitoring.config import HotSpot, WindowSettings, hotspot_by_id, load_hotspots
from monitoring.errors import AOIError

HOTSPOTS = load_hotspots()
TEMPLE_BOX = (104.66, 14.38, 104.70, 14.41)


@pytest.mark.parametrize("h", HOTSPOTS, ids=lambda h: h.id)
def test_hotspot_aoi_is_a_utm48n_10m_square(h: HotSpot) -> None:
    aoi = aoi_from_hotspot(h)
    # The whole border (102.3-105.6 E) lies in UTM zone 48N.
    assert aoi.crs.epsg == 32648
    res = aoi.geobox.resolution
    assert (res.x, res.y) == (10.0, -10.0)
    side = round(h.aoi_km * 100)
    assert aoi.shape == (side, side)
    assert aoi.area_km2 == pytest.approx(h.aoi_km**2)
    assert aoi.footprint.contains(aoi.footprint.centroid)
    assert aoi.footprint.centroid.distance(Point(h.lon, h.lat)) < 0.001
    assert aoi.id == h.id and aoi.hotspot is h
    assert aoi.inside().shape == aoi.shape and aoi.inside().all()  # the square is the whole grid


def test_same_hotspot_same_pixels() -> None:
    h = hotspot_by_id(HOTSPOTS, "preah-vihear")
    assert aoi_from_hotspot(h).geobox == aoi_from_hotspot(h).geobox
    # Snapped to the 10 m grid of the zone.
    assert aoi_from_hotspot(h).geobox.affine.c % 10 == 0


def test_utm_zone() -> None:
    assert utm_crs(102.5, 13.6).epsg == 32648
    assert utm_crs(101.9, 13.6).epsg == 32647
    assert utm_crs(104.0, -5.0).epsg == 32748


def test_bbox_aoi() -> None:
    aoi = aoi_from_bbox(TEMPLE_BOX, name="Temple")
    assert aoi.crs.epsg == 32648 and aoi.name == "Temple"
    assert aoi.id.startswith("area-")
    # Deterministic id: the same box gives the same folder name on every run.
    assert aoi_from_bbox(TEMPLE_BOX).id == aoi.id
    assert 4.3 * 3.3 < aoi.area_km2 < 4.5 * 3.5
    assert aoi.footprint.bounds == pytest.approx(TEMPLE_BOX)


@pytest.mark.parametrize(
    ("bbox", "match"),
    [
        ((104.70, 14.38, 104.66, 14.41), "min < max"),
        ((104.66, 14.41, 104.70, 14.38), "min < max"),
        ((200.0, 14.38, 201.0, 14.41), "degrees"),
        ((102.0, 12.0, 104.0, 14.0), "larger than"),
        ((104.66, 14.38, 104.66001, 14.38001), "too small"),
    ],
)
def test_bad_bbox_one_line(bbox: tuple[float, float, float, float], match: str) -> None:
    with pytest.raises(AOIError, match=match) as e:
        aoi_from_bbox(bbox)
    assert "\n" not in str(e.value)


def _polygon(minx: float, miny: float, maxx: float, maxy: float) -> dict[str, Any]:
    return {
        "type": "Polygon",
        "coordinates": [[[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]],
    }


def test_geojson_aoi(tmp_path: Path) -> None:
    feature = {"type": "Feature", "properties": {}, "geometry": _polygon(*TEMPLE_BOX)}
    fc = {"type": "FeatureCollection", "features": [feature]}
    path = tmp_path / "area.geojson"
    path.write_text(json.dumps(fc))
    aoi = aoi_from_geojson(path, name="Temple")
    assert aoi.crs.epsg == 32648
    assert aoi.footprint.bounds == pytest.approx(TEMPLE_BOX)
    assert aoi_from_geojson(fc).id == aoi.id


def test_a_drawn_polygon_is_the_area_not_its_bounding_box() -> None:
    minx, miny, maxx, maxy = TEMPLE_BOX
    triangle = {"type": "Polygon", "coordinates": [[[minx, miny], [maxx, miny], [minx, maxy], [minx, miny]]]}
    aoi = aoi_from_geojson(triangle)
    # The grid covers the bounding box; the area is the triangle's pixels, about half of them.
    assert aoi.footprint.bounds == pytest.approx(TEMPLE_BOX)
    inside = aoi.inside()
    assert 0.47 < inside.mean() < 0.53
    assert inside[-10, 10] and not inside[10, -10]  # the south-west corner is in, the north-east is not
    # Two parts stay two parts (not their envelope); a ring that crosses itself keeps its two lobes.
    west = _polygon(minx, miny, minx + 0.01, maxy)
    east = _polygon(maxx - 0.01, miny, maxx, maxy)
    parts = aoi_from_geojson(
        {"type": "MultiPolygon", "coordinates": [west["coordinates"], east["coordinates"]]}
    )
    assert parts.footprint.geom_type == "MultiPolygon"
    assert 0.45 < parts.inside().mean() < 0.55 and not parts.inside()[:, parts.shape[1] // 2].any()
    bowtie = [[minx, miny], [maxx, maxy], [maxx, miny], [minx, maxy], [minx, miny]]
    lobes = aoi_from_geojson({"type": "Polygon", "coordinates": [bowtie]})
    assert lobes.footprint.is_valid and 0.45 < lobes.inside().mean() < 0.55


def test_parts_far_apart_are_refused_for_the_box_between_them() -> None:
    # Two small squares 400 km apart: small in area, but the grid would cover the box between them.
    far = {
        "type": "MultiPolygon",
        "coordinates": [
            _polygon(*TEMPLE_BOX)["coordinates"],
            _polygon(102.0, 11.0, 102.04, 11.03)["coordinates"],
        ],
    }
    with pytest.raises(
        AOIError, match=r"km² \(its bounding box, which the analysis covers; the area is 2\d\)"
    ):
        aoi_from_geojson(far)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "not found"),
        ("{not json", "not valid JSON"),
        (json.dumps({"type": "Point", "coordinates": [104.68, 14.39]}), "is a 'Point'; give a Polygon"),
        (json.dumps([104.68, 14.39]), "is a 'list'; give a Polygon"),
        (json.dumps({"type": "FeatureCollection", "features": []}), "has no features; give a Polygon"),
        (
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {"type": "Feature", "properties": {}, "geometry": _polygon(*TEMPLE_BOX)},
                        {"type": "Feature", "properties": {}, "geometry": None},
                    ],
                }
            ),
            "feature 2 of 2 has no geometry; give a Polygon",
        ),
        (json.dumps(_polygon(480000, 1590000, 484000, 1593000)), "lon/lat"),
        (
            json.dumps(
                {
                    "type": "Polygon",
                    "coordinates": [[[104.6, 14.3], [104.7, 14.3], [104.6, 14.3], [104.6, 14.3]]],
                }
            ),
            "encloses no area; draw it with at least three distinct corners",
        ),
    ],
)
def test_bad_geojson_one_line(tmp_path: Path, content: str | None, match: str) -> None:
    path = tmp_path / "area.geojson"
    if content is not None:
        path.write_text(content)
    with pytest.raises(AOIError, match=match) as e:
        aoi_from_geojson(path)
    assert "\n" not in str(e.value)
    assert str(path) in str(e.value)


def test_daily_windows() -> None:
    run = date(2025, 12, 22)
    w = windows_for(run, WindowSettings(after_days=16, before_days=60, sar_baseline_days=90))
    assert w.after == (date(2025, 12, 7), run)
    assert (w.after[1] - w.after[0]).days + 1 == 16
    assert w.before == (date(2025, 10, 8), date(2025, 12, 6))
    assert (w.before[1] - w.before[0]).days + 1 == 60
    assert w.sar_before == (date(2025, 9, 8), date(2025, 12, 6))
    assert w.before[1] + timedelta(days=1) == w.after[0]
    assert w.as_dict()["after"] == ["2025-12-07", "2025-12-22"]


def test_explicit_windows() -> None:
    before = (date(2025, 11, 20), date(2025, 12, 6))
    after = (date(2025, 12, 7), date(2025, 12, 22))
    w = explicit_windows(before, after, sar_baseline_days=90)
    assert (w.before, w.after) == (before, after)
    # A short optical baseline still gets the full SAR baseline, ending where the optical one ends.
    assert w.sar_before == (date(2025, 9, 8), date(2025, 12, 6))
    long = explicit_windows((date(2025, 1, 1), date(2025, 12, 6)), after, sar_baseline_days=90)
    assert long.sar_before[0] == date(2025, 1, 1)


@pytest.mark.parametrize(
    ("before", "after", "match"),
    [
        ((date(2025, 11, 1), date(2025, 12, 10)), (date(2025, 12, 7), date(2025, 12, 22)), "overlaps"),
        ((date(2025, 11, 1), date(2025, 12, 7)), (date(2025, 12, 7), date(2025, 12, 22)), "overlaps"),
        (
            (date(2025, 12, 6), date(2025, 11, 1)),
            (date(2025, 12, 7), date(2025, 12, 22)),
            "ends before it starts",
        ),
        (
            (date(2025, 11, 1), date(2025, 12, 6)),
            (date(2025, 12, 22), date(2025, 12, 7)),
            "ends before it starts",
        ),
    ],
)
def test_bad_windows_rejected(before: tuple[date, date], after: tuple[date, date], match: str) -> None:
    with pytest.raises(AOIError, match=match) as e:
        explicit_windows(before, after, sar_baseline_days=90)
    assert "\n" not in str(e.value)


def test_default_windows_have_a_year_of_radar_baseline_and_last_years_season() -> None:
    run = date(2025, 12, 22)
    w = windows_for(run, WindowSettings())
    assert w.sar_before == (date(2024, 12, 7), date(2025, 12, 6))
    assert (w.sar_before[1] - w.sar_before[0]).days + 1 == 365
    # The after window (7-22 Dec 2025) a year earlier, +-21 days.
    assert w.sar_season == (date(2024, 11, 16), date(2025, 1, 12))
    # It overlaps the baseline, so the radar is loaded in one range reaching 21 days further back.
    assert w.sar_ranges() == [(date(2024, 11, 16), run)]


def test_short_radar_baseline_loads_last_years_season_apart() -> None:
    run = date(2025, 12, 22)
    w = windows_for(run, WindowSettings(sar_baseline_days=90))
    assert w.sar_ranges() == [(date(2024, 11, 16), date(2025, 1, 12)), (date(2025, 9, 8), run)]
    assert windows_for(run, WindowSettings(sar_season_days=0)).sar_ranges() == [(date(2024, 12, 7), run)]
    assert (
        explicit_windows((date(2025, 11, 1), date(2025, 12, 6)), w.after, sar_baseline_days=90).sar_season
        is None
    )
