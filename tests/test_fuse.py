from __future__ import annotations

from datetime import date, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from pyproj import Transformer

from monitoring.fuse import (
    FireMatch,
    Fires,
    confidence_tier,
    cropland_fires,
    set_aside_farm_burning,
    summarise_fires,
)
from monitoring.results import Alert, ChangeType, Confidence
from monitoring.sources.thermal import empty_fires, fires_frame

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[103.0, 14.0], [103.001, 14.0], [103.001, 14.001], [103.0, 14.0]]],
}


def _alert(
    i: int,
    change: ChangeType = ChangeType.BURN_SCAR,
    *,
    seasonal: bool = True,
    sensors: tuple[str, ...] = ("sentinel-2",),
) -> Alert:
    return Alert(
        id=f"a{i}",
        hotspot_id="x",
        change_type=change,
        area_ha=1.0,
        first_observed=date(2025, 12, 10),
        last_observed=date(2025, 12, 20),
        confidence=confidence_tier(sensors=sensors, methods=["dnbr"], observations=1, seasonal=seasonal),
        sensors=list(sensors),
        methods=["dnbr"],
        observations=1,
        score_mean=0.5,
        score_max=0.7,
        seasonal=seasonal,
        scene_ids=[],
        geometry=SQUARE,
    )


def test_a_few_field_fires_stay_alerts() -> None:
    alerts = [_alert(i) for i in range(4)] + [_alert(9, seasonal=False)]
    kept, aside = set_aside_farm_burning(alerts, min_fields=5)
    assert kept == alerts and aside == []


@pytest.mark.parametrize("n", [5, 40])
def test_in_the_burning_season_single_sensor_cropland_burns_are_set_aside(n: int) -> None:
    seasonal = [_alert(i) for i in range(n)]
    others = [
        _alert(100, seasonal=False),  # a burn off cropland
        _alert(101, sensors=("sentinel-1", "sentinel-2")),  # radar agrees: not routine farm burning
        _alert(102, ChangeType.CRATER_FIELD, seasonal=False),
    ]
    kept, aside = set_aside_farm_burning(seasonal + others, min_fields=5)
    assert [a.id for a in aside] == [a.id for a in seasonal]
    assert [a.id for a in kept] == [a.id for a in others]


def test_corroborated_burns_do_not_count_towards_the_season() -> None:
    two_sensors = [_alert(i, sensors=("sentinel-1", "sentinel-2")) for i in range(10)]
    kept, aside = set_aside_farm_burning(two_sensors + [_alert(50)], min_fields=5)
    assert aside == [] and len(kept) == 11


def test_seasonal_change_stays_low_until_another_sensor_agrees() -> None:
    assert confidence_tier(sensors=["sentinel-2"], methods=["dnbr"], observations=4, seasonal=True) is (
        Confidence.LOW
    )
    assert confidence_tier(sensors=["sentinel-2"], methods=["dnbr"], observations=4) is Confidence.HIGH
    both = confidence_tier(
        sensors=["sentinel-2", "sentinel-1"], methods=["dnbr"], observations=1, seasonal=True
    )
    assert both is Confidence.HIGHEST


def test_a_fire_confirms_a_burn_but_not_a_farm_burn() -> None:
    # Thermal is a second sensor for a burn off cropland; stubble fires are hot too, so on cropland it is not.
    both = ("sentinel-2", "viirs")
    assert (
        confidence_tier(sensors=both, methods=["dnbr", "active-fire"], observations=1) is Confidence.HIGHEST
    )
    assert (
        confidence_tier(sensors=both, methods=["dnbr", "active-fire"], observations=1, seasonal=True)
        is Confidence.LOW
    )
    assert (
        confidence_tier(
            sensors=("sentinel-1", "sentinel-2", "viirs"), methods=[], observations=1, seasonal=True
        )
        is Confidence.HIGHEST
    )
    # ... and a farm burn that only a fire detection confirms is still set aside with the season's others.
    seasonal = [_alert(i, sensors=both) for i in range(5)]
    kept, aside = set_aside_farm_burning(seasonal, min_fields=5)
    assert kept == [] and aside == seasonal


def _fires(xy_days: list[tuple[float, float, str]], pixel_m: float | list[float] = 375.0) -> Fires:
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime([f"{d} 06:30" for _, _, d in xy_days], utc=True),
            "latitude": [0.0] * len(xy_days),
            "longitude": [0.0] * len(xy_days),
            "satellite": "NOAA-20",
            "instrument": "VIIRS",
            "confidence": "nominal",
            "frp": np.arange(len(xy_days), dtype="float64") + 1.0,
            "daynight": "D",
            "pixel_m": pixel_m,
            "product": "simulated",
        }
    )
    # Points given in the grid's own metres (EPSG:32648), as Fires.from_frame would project them.
    gdf = gpd.GeoDataFrame(
        frame, geometry=gpd.points_from_xy([x for x, _, _ in xy_days], [y for _, y, _ in xy_days]), crs=32648
    )
    return Fires.from_frame(gdf, "EPSG:32648")


def test_many_fires_on_cropland_make_the_season_however_few_burns_this_window_shows() -> None:
    two = [_alert(0), _alert(1)]
    kept, aside = set_aside_farm_burning(two, min_fields=5, farm_fires=9, min_fires=10)
    assert kept == two and aside == []  # a few fires now and then is the background
    kept, aside = set_aside_farm_burning(
        two + [_alert(9, seasonal=False)], min_fields=5, farm_fires=10, min_fires=10
    )
    assert [a.id for a in aside] == ["a0", "a1"] and [a.id for a in kept] == ["a9"]
    # Fires set nothing aside where there is no seasonal burn, and never a corroborated one.
    radar = [_alert(3, sensors=("sentinel-1", "sentinel-2"))]
    assert set_aside_farm_burning(radar, min_fields=5, farm_fires=500, min_fires=10) == (radar, [])


LC_CROP, LC_TREE = 40, 10


def test_cropland_fires_counts_fires_on_crop_pixels_away_from_the_alerts() -> None:
    # A 10 x 10 grid of 10 m pixels from (0, 100) down: the left half cropland, the right half forest.
    affine = Affine(10.0, 0.0, 0.0, 0.0, -10.0, 100.0)
    landcover = np.full((10, 10), LC_TREE, dtype="uint8")
    landcover[:, :5] = LC_CROP
    fires = _fires(
        [
            (5.0, 95.0, "2025-12-10"),  # crop, top-left pixel
            (45.0, 5.0, "2025-12-11"),  # crop, bottom row, column 4
            (55.0, 50.0, "2025-12-12"),  # forest
            (25.0, 50.0, "2025-12-13"),  # crop, beside an alert below
            (500.0, 50.0, "2025-12-14"),  # off the grid
        ],
        pixel_m=20.0,
    )
    assert cropland_fires(fires, landcover, affine, crop=LC_CROP) == 3
    alert = shapely.box(
        15, 30, 35, 40
    )  # 10 m below the fourth fire: within its 20 m reach, 27 m from the second
    assert cropland_fires(fires, landcover, affine, crop=LC_CROP, accounted=[alert]) == 2
    assert cropland_fires(_fires([]), landcover, affine, crop=LC_CROP) == 0


def _summary_near(fires: Fires, geom: shapely.Geometry, first_day: date | None, last_day: date) -> FireMatch:
    """The detections within reach of a change's outline in its interval, summarised."""
    return summarise_fires(fires, fires.near(geom, first_day, last_day))


def test_fires_match_a_change_within_a_pixel_and_its_interval() -> None:
    scar = shapely.box(0, 0, 100, 100)
    fires = _fires(
        [
            (50, 50, "2025-12-05"),  # inside, in the interval
            (400, 50, "2025-12-06"),  # 300 m off the edge: within a 375 m pixel
            (600, 50, "2025-12-06"),  # 500 m off: another place
            (50, 50, "2025-11-20"),  # before the last look before
            (50, 50, "2025-12-12"),  # after the first look that showed the scar
        ]
    )
    m = _summary_near(fires, scar, date(2025, 12, 1), date(2025, 12, 6))
    assert m.count == 2 and m.sensors == ("viirs",) and m.frp_max == 2.0
    assert m.first == datetime(2025, 12, 5, 6, 30) and m.last == datetime(2025, 12, 6, 6, 30)
    assert _summary_near(fires, scar, None, date(2025, 12, 6)).count == 3  # no look before: no lower bound
    assert _summary_near(fires, scar, date(2025, 12, 7), date(2025, 12, 10)) == FireMatch(
        0, None, None, None, ()
    )
    # A MODIS pixel is a kilometre across: its reach is too.
    assert _summary_near(_fires([(600, 50, "2025-12-06")], 1000.0), scar, None, date(2025, 12, 6)).count == 1


def test_a_fire_reaches_as_far_as_its_own_pixel() -> None:
    # Two VIIRS detections 600 m off a scar's edge: FIRMS gives the one near the swath's edge an 800 m pixel
    # (scan 0.8 km), the one at nadir 390 m. The reach is each detection's pixel, not the instrument's.
    scar = shapely.box(0, 0, 100, 100)
    fires = _fires([(700, 50, "2025-12-05"), (700, 50, "2025-12-06")], pixel_m=[800.0, 390.0])
    assert fires.near(scar, date(2025, 12, 1), date(2025, 12, 6)).tolist() == [0]
    m = _summary_near(fires, scar, date(2025, 12, 1), date(2025, 12, 6))
    assert m.count == 1 and m.first == datetime(2025, 12, 5, 6, 30) and m.last == m.first


def test_fires_from_a_frame_project_wgs84_points_onto_the_grid() -> None:
    frame = empty_fires()
    assert len(Fires.from_frame(frame, "EPSG:32648")) == 0
    row = pd.DataFrame(
        {
            "time": pd.to_datetime(["2025-12-05 06:30"], utc=True),
            "latitude": [14.0],
            "longitude": [104.0],
            "satellite": ["Suomi NPP"],
            "instrument": ["MODIS"],
            "confidence": ["high"],
            "frp": [np.nan],
            "daynight": ["D"],
            "pixel_m": [1000.0],
            "product": ["MODIS_NRT"],
        }
    )
    f = Fires.from_frame(fires_frame(row), "EPSG:32648")
    x, y = Transformer.from_crs(4326, 32648, always_xy=True).transform(104.0, 14.0)
    assert (f.x[0], f.y[0]) == pytest.approx((x, y)) and f.sensor[0] == "modis" and np.isnan(f.frp[0])
    assert _summary_near(f, shapely.Point(x, y).buffer(10), None, date(2025, 12, 5)).frp_max is None


def test_a_fire_within_reach_of_two_changes_counts_for_the_nearer_only() -> None:
    from monitoring.fuse import attribute_fires, summarise_fires

    # A burning village (its outline 100 m from the detection) and a burn scar 300 m away, both within the
    # 375 m reach and both in their intervals: one fire in one pixel, the village's.
    fires = _fires([(100, 0, "2025-12-05"), (700, 0, "2025-12-05")], 375.0)
    village = shapely.Point(0, 0).buffer(1)
    scar = shapely.Point(400, 0).buffer(1)
    owned = attribute_fires(
        fires, [(scar, date(2025, 12, 1), date(2025, 12, 6)), (village, None, date(2025, 12, 6))]
    )
    assert owned[0].tolist() == [1] and owned[1].tolist() == [0]
    assert (
        _summary_near(fires, scar, date(2025, 12, 1), date(2025, 12, 6)).count == 2
    )  # alone, it would take both
    assert summarise_fires(fires, owned[0]).count == 1
    # Outside the village's interval the fire is not its: the scar keeps it.
    late = attribute_fires(
        fires, [(scar, date(2025, 12, 1), date(2025, 12, 6)), (village, None, date(2025, 12, 4))]
    )
    assert late[0].tolist() == [0, 1] and late[1].size == 0
