"""Tests of the report stage's active fires: which detection lies on which alert, and the statement line."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import shape

from monitoring.report.fires import as_utc, fires_near, iso_utc, local_text, match_fires
from monitoring.report.samples import sample_results
from monitoring.report.text import FIRES_NOT_CHECKED, NO_FIRES, fire_line
from monitoring.results import Alert, FireDetection, HotspotResult

RUN_DATE = date(2025, 12, 22)


def _area(area_id: str, size_px: int = 160) -> HotspotResult:
    return next(r for r, _ in sample_results(RUN_DATE, size_px=size_px) if r.area_id == area_id)


def _burn(result: HotspotResult) -> Alert:
    return next(a for a in result.alerts if a.change_type.value == "burn_scar")


def _fire_east_of(
    result: HotspotResult, alert: Alert, metres: float, when: datetime, instrument: str = "VIIRS"
) -> FireDetection:
    """A detection `metres` due east of the alert's easternmost vertex (so exactly that far from the outline)."""
    to_grid = Transformer.from_crs("EPSG:4326", result.crs, always_xy=True)
    to_ll = Transformer.from_crs(result.crs, "EPSG:4326", always_xy=True)
    coords = shapely.get_coordinates(shape(alert.geometry))
    x, y = max((to_grid.transform(lon, lat) for lon, lat in coords), key=lambda p: p[0])
    lon, lat = to_ll.transform(x + metres, y)
    return FireDetection(
        time=when,
        latitude=lat,
        longitude=lon,
        satellite="Suomi NPP" if instrument == "VIIRS" else "Aqua",
        instrument=instrument,
        confidence="nominal",
        frp=3.0,
        daynight="D",
        product="simulated",
    )


def _only_burn(result: HotspotResult, fires: list[FireDetection]) -> HotspotResult:
    return result.model_copy(update={"alerts": [_burn(result)], "fires": fires})


def test_sample_burn_scar_is_confirmed_by_its_fires() -> None:
    r = _area("preah-vihear")
    burn = _burn(r)
    assert burn.thermal_detections == 3 and "viirs" in burn.sensors and "active-fire" in burn.methods
    matches = match_fires(r)
    assert [m.alert.id if m.alert else None for m in matches] == [burn.id] * 3 + [None] * 3
    # What the alert counts and what the map matches agree for the sample's fires.
    assert len(fires_near(burn, r.fires, r.crs)) == burn.thermal_detections
    assert as_utc(burn.thermal_first) == min(as_utc(m.fire.time) for m in matches if m.alert)


@pytest.mark.parametrize(
    ("instrument", "metres", "on"),
    [("VIIRS", 300.0, True), ("VIIRS", 450.0, False), ("MODIS", 900.0, True), ("MODIS", 1100.0, False)],
)
def test_a_fire_lies_on_an_alert_within_its_pixel_size(instrument: str, metres: float, on: bool) -> None:
    r = _area("preah-vihear")
    burn = _burn(r)
    when = datetime.combine(burn.first_observed, datetime.min.time(), tzinfo=UTC) - timedelta(hours=20)
    (m,) = match_fires(_only_burn(r, [_fire_east_of(r, burn, metres, when, instrument)]))
    assert (m.alert is not None) == on


def test_an_off_nadir_fire_reaches_as_far_as_its_own_pixel() -> None:
    r = _area("preah-vihear")
    burn = _burn(r)
    when = datetime.combine(burn.first_observed, datetime.min.time(), tzinfo=UTC) - timedelta(hours=20)
    fire = _fire_east_of(r, burn, 600.0, when)
    for size, on in ((None, False), (390.0, False), (800.0, True)):
        (m,) = match_fires(_only_burn(r, [fire.model_copy(update={"pixel_m": size})]))
        assert (m.alert is not None) == on, size


@pytest.mark.parametrize(
    ("day", "on"),
    [("last_clear_before", True), ("before", False), ("first_observed", True), ("after", False)],
)
def test_a_fire_lies_on_an_alert_between_its_last_clear_look_and_first_observation(
    day: str, on: bool
) -> None:
    r = _area("preah-vihear")
    burn = _burn(r)
    assert burn.last_clear_before is not None
    days = {
        "last_clear_before": burn.last_clear_before,
        "before": burn.last_clear_before - timedelta(days=1),
        "first_observed": burn.first_observed,
        "after": burn.first_observed + timedelta(days=1),
    }
    # Late in the UTC day: the days are UTC days, inclusive, whatever the local date.
    when = datetime.combine(days[day], datetime.min.time(), tzinfo=UTC) + timedelta(hours=23, minutes=30)
    (m,) = match_fires(_only_burn(r, [_fire_east_of(r, burn, 10.0, when)]))
    assert (m.alert is not None) == on


def test_nearest_alert_wins_and_farm_burns_are_matched_too() -> None:
    r = _area("preah-vihear")
    burn = _burn(r)
    farm = burn.model_copy(update={"id": "farm-1", "seasonal": True})
    when = datetime.combine(burn.first_observed, datetime.min.time(), tzinfo=UTC)
    fire = _fire_east_of(r, burn, 5.0, when)
    (m,) = match_fires(r.model_copy(update={"alerts": [], "seasonal_burns": [farm], "fires": [fire]}))
    assert m.alert is not None and m.alert.id == "farm-1" and m.seasonal and not m.on_burn_alert
    text = fire_line(r.model_copy(update={"alerts": [], "seasonal_burns": [farm], "fires": [fire]}))
    assert "1 of them on farm burns (stubble fires are hot too)" in text


def test_naive_times_are_utc() -> None:
    naive = datetime(2025, 12, 8, 6, 41)
    assert iso_utc(naive) == "2025-12-08T06:41:00Z"
    assert iso_utc(naive.replace(tzinfo=UTC)) == "2025-12-08T06:41:00Z"
    assert local_text(naive) == "2025-12-08 13:41"
    assert local_text(datetime(2025, 12, 8, 18, 27, tzinfo=UTC)) == "2025-12-09 01:27", (
        "local date rolls over"
    )


def test_fire_line_says_checked_none_or_not_checked() -> None:
    by_id = {r.area_id: r for r, _ in sample_results(RUN_DATE, size_px=64)}
    assert fire_line(by_id["preah-vihear"]) == (
        "Active fires: 6 detections (5 VIIRS, 1 MODIS) in the after window, 3 of them on burn-scar alerts "
        "(first 2025-12-08 13:41 local time, UTC+7)."
    )
    assert fire_line(by_id["ta-muen-thom"]) == (
        "Active fires: 2 VIIRS detections in the after window (first 2025-12-15 01:40 local time, UTC+7), "
        "none on a change alert."
    )
    assert fire_line(by_id["chong-an-ma"]) == NO_FIRES
    assert "not proof of no fire" in NO_FIRES
    assert by_id["chong-bok"].thermal_source is None
    assert fire_line(by_id["chong-bok"]) == FIRES_NOT_CHECKED
