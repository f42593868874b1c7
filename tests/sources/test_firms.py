"""Tests of the NASA FIRMS thermal source against a local fake of FIRMS' area and data-availability APIs."""

from __future__ import annotations

import logging
import math
import pickle
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest
import shapely
from pydantic import ValidationError
from pyproj import Transformer

from monitoring.aoi import AOI, aoi_from_bbox
from monitoring.config import FirmsSettings, Settings, ThermalSettings
from monitoring.errors import SourceError
from monitoring.fuse import Fires, summarise_fires
from monitoring.sources import firms as firms_mod
from monitoring.sources.firms import (
    AreaRequest,
    FirmsError,
    FirmsKeyError,
    FirmsLimitError,
    FirmsRequestError,
    FirmsSource,
    FirmsUnavailableError,
    area_param,
    choose_thermal_source,
    confidence_class,
    firms_map_key,
    firms_source,
    parse_acq_time,
    parse_availability,
    parse_fires_csv,
    pixel_size_m,
    plan_requests,
    satellite_names,
    select_fires,
    split_days,
)
from monitoring.sources.thermal import FIRE_COLUMNS, ThermalSource, check_fires, search_bbox
from tests.fakes.firms_server import MAP_KEY, TODAY, VIIRS_HEADER, Detection, FakeFirmsServer

DEC = (date(2025, 12, 1), date(2025, 12, 12))
LAT, LON = 14.395, 104.68
"""Inside the test area."""


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIRMS_MAP_KEY", raising=False)


@pytest.fixture(scope="module")
def aoi() -> AOI:
    return aoi_from_bbox((104.66, 14.38, 104.70, 14.41), aoi_id="fake-firms")


def det(source: str, day: date, acq_time: int | str = 600, **kw: Any) -> Detection:
    return Detection(source, kw.pop("latitude", LAT), kw.pop("longitude", LON), day, acq_time, **kw)


def source_for(srv: FakeFirmsServer, key: str = MAP_KEY, **kw: Any) -> FirmsSource:
    base: dict[str, Any] = {"base_url": srv.url, "max_retries": 2, "backoff_s": 0.0, "timeout_s": 5.0}
    return FirmsSource(FirmsSettings(**{**base, **kw}), map_key=key)


@pytest.fixture
def server() -> Iterator[FakeFirmsServer]:
    with FakeFirmsServer() as srv:
        yield srv


def one_line(msg: str) -> bool:
    return "\n" not in msg and len(msg) < 1200


# -- the contract ----------------------------------------------------------------------------------------------


def test_contract_and_normalisation(aoi: AOI) -> None:
    d3, d4, d5 = date(2025, 12, 3), date(2025, 12, 4), date(2025, 12, 5)
    table = [
        det("VIIRS_SNPP_NRT", d3, 523, confidence="h", frp=12.5),
        det("VIIRS_NOAA20_NRT", d3, 1341, confidence="l", daynight="N"),
        det("VIIRS_NOAA21_NRT", d4, 5, confidence="n"),
        det("MODIS_NRT", d5, 320, satellite="T", confidence=85),
        det("MODIS_NRT", d5, 645, satellite="Aqua", confidence=10, frp=None),
    ]
    with FakeFirmsServer(table) as srv:
        src = source_for(srv)
        fires = src.load_fires(aoi, *DEC)
    assert isinstance(src, ThermalSource) and src.name == "firms" and src.simulated is False
    assert check_fires(fires, aoi, *DEC) is fires
    assert list(fires.columns) == [*FIRE_COLUMNS, "geometry"]
    assert str(fires["time"].dtype) == "datetime64[ns, UTC]"
    rows = fires.drop(columns="geometry").to_dict("records")
    got = [
        (r["time"].strftime("%Y-%m-%d %H:%M"), r["satellite"], r["confidence"], r["product"]) for r in rows
    ]
    assert got == [
        ("2025-12-03 05:23", "Suomi NPP", "high", "VIIRS_SNPP_NRT"),
        ("2025-12-03 13:41", "NOAA-20", "low", "VIIRS_NOAA20_NRT"),
        ("2025-12-04 00:05", "NOAA-21", "nominal", "VIIRS_NOAA21_NRT"),
        ("2025-12-05 03:20", "Terra", "high", "MODIS_NRT"),
        ("2025-12-05 06:45", "Aqua", "low", "MODIS_NRT"),
    ]
    assert [r["instrument"] for r in rows] == ["VIIRS"] * 3 + ["MODIS"] * 2
    assert [r["pixel_m"] for r in rows] == [390.0] * 3 + [1000.0] * 2  # near nadir: scan 0.39 / 1.0 km
    assert [r["daynight"] for r in rows] == ["D", "N", "D", "D", "D"]
    assert rows[0]["frp"] == 12.5 and pd.isna(rows[4]["frp"])
    assert fires.geometry.iloc[0].x == pytest.approx(LON) and fires.geometry.iloc[0].y == pytest.approx(LAT)
    assert src.gaps == []


def test_empty_answer_keeps_the_columns(server: FakeFirmsServer, aoi: AOI) -> None:
    fires = source_for(server).load_fires(aoi, *DEC)
    assert len(fires) == 0
    assert list(fires.columns) == [*FIRE_COLUMNS, "geometry"]
    assert fires.crs.to_epsg() == 4326
    check_fires(fires, aoi, *DEC)


# -- requests: day ranges, archive or near real time ----------------------------------------------------------


def test_a_long_window_is_read_in_requests_of_at_most_five_days(aoi: AOI) -> None:
    table = [det("VIIRS_SNPP_NRT", DEC[0], 100), det("VIIRS_SNPP_NRT", DEC[1], 2359)]
    with FakeFirmsServer(table) as srv:
        fires = source_for(srv).load_fires(aoi, *DEC)
        calls = srv.area_requests()
    assert len(fires) == 2  # both edge days are read
    assert len(calls) == 4 * 3
    for product in ("VIIRS_SNPP_NRT", "VIIRS_NOAA20_NRT", "VIIRS_NOAA21_NRT", "MODIS_NRT"):
        mine = [(c.start, c.days) for c in calls if c.source == product]
        assert mine == [(date(2025, 12, 1), 5), (date(2025, 12, 6), 5), (date(2025, 12, 11), 2)]
    assert {c.area for c in calls} == {area_param(search_bbox(aoi))}
    assert split_days(date(2025, 1, 1), 11) == [
        (date(2025, 1, 1), 5),
        (date(2025, 1, 6), 5),
        (date(2025, 1, 11), 1),
    ]


def test_archive_where_it_holds_the_day_near_real_time_otherwise(aoi: AOI) -> None:
    start, end = date(2025, 9, 28), date(2025, 10, 3)  # the archives end on 30 September
    table = [
        det("VIIRS_SNPP_SP", date(2025, 9, 29), 612),
        det("VIIRS_SNPP_NRT", date(2025, 10, 2), 618),
        det("MODIS_SP", date(2025, 9, 30), 330, satellite="T", confidence=50),
        det("VIIRS_NOAA21_NRT", date(2025, 9, 28), 700),
    ]
    with FakeFirmsServer(table) as srv:
        src = source_for(srv)
        fires = src.load_fires(aoi, start, end)
        src.load_fires(aoi, start, end)
        calls = {(c.source, c.start, c.days) for c in srv.area_requests()}
        assert srv.availability_requests() == 1  # once per source instance
    assert calls == {
        ("VIIRS_SNPP_SP", date(2025, 9, 28), 3),
        ("VIIRS_SNPP_NRT", date(2025, 10, 1), 3),
        ("VIIRS_NOAA20_SP", date(2025, 9, 28), 3),
        ("VIIRS_NOAA20_NRT", date(2025, 10, 1), 3),
        ("VIIRS_NOAA21_NRT", date(2025, 9, 28), 5),  # no archive: near real time all along
        ("VIIRS_NOAA21_NRT", date(2025, 10, 3), 1),
        ("MODIS_SP", date(2025, 9, 28), 3),
        ("MODIS_NRT", date(2025, 10, 1), 3),
    }
    assert list(fires["product"]) == ["VIIRS_NOAA21_NRT", "VIIRS_SNPP_SP", "MODIS_SP", "VIIRS_SNPP_NRT"]


def test_a_product_without_data_is_skipped_and_recorded(server: FakeFirmsServer, aoi: AOI) -> None:
    src = source_for(server)
    src.load_fires(aoi, date(2023, 12, 1), date(2023, 12, 5))  # before NOAA-21's first day
    assert "VIIRS_NOAA21" not in {c.source.removesuffix("_NRT") for c in server.area_requests()}
    (gap,) = src.gaps
    assert (gap.product, gap.satellite, gap.skipped) == ("VIIRS_NOAA21", "NOAA-21", True)
    assert gap.held == (date(2024, 1, 17), TODAY)
    assert gap.describe() == (
        "NOAA-21 (VIIRS_NOAA21): no FIRMS data for 2023-12-01..2023-12-05 (FIRMS holds 2024-01-17..2025-12-22)"
    )
    # Partly held: the held days are read, the others recorded.
    server.log.clear()
    src.load_fires(aoi, date(2024, 1, 15), date(2024, 1, 19))
    assert [(c.start, c.days) for c in server.area_requests() if c.source == "VIIRS_NOAA21_NRT"] == [
        (date(2024, 1, 17), 3)
    ]
    (gap,) = src.gaps
    assert gap.days == (date(2024, 1, 15), date(2024, 1, 16)) and not gap.skipped


def test_a_pinned_source_is_the_only_one_read(server: FakeFirmsServer, aoi: AOI) -> None:
    src = source_for(server, products=("VIIRS_SNPP_NRT",))
    src.load_fires(aoi, date(2025, 9, 28), date(2025, 10, 3))
    assert [(c.source, c.start, c.days) for c in server.area_requests()] == [
        ("VIIRS_SNPP_NRT", date(2025, 10, 1), 3)
    ]
    assert [g.days for g in src.gaps] == [(date(2025, 9, 28), date(2025, 9, 29), date(2025, 9, 30))]


def test_plan_is_pure_and_lists_unknown_products_as_gaps() -> None:
    table = parse_availability(
        "data_id,min_date,max_date\nVIIRS_SNPP_NRT,2025-10-01,2025-12-22\nMODIS_NRT,,\n"
    )
    plan, gaps = plan_requests(["VIIRS_SNPP", "MODIS"], table, date(2025, 12, 20), date(2025, 12, 23))
    assert plan == [AreaRequest("VIIRS_SNPP_NRT", date(2025, 12, 20), 3)]
    assert [(g.product, g.days, g.held) for g in gaps] == [
        ("VIIRS_SNPP", (date(2025, 12, 23),), (date(2025, 10, 1), date(2025, 12, 22))),
        ("MODIS", tuple(date(2025, 12, 20) + timedelta(days=i) for i in range(4)), None),
    ]
    with pytest.raises(ValueError, match="data_id"):
        parse_availability("Invalid MAP_KEY.")


# -- rows: times, confidence, satellites, duplicates, box ------------------------------------------------------


@pytest.mark.parametrize(
    ("acq_time", "expected"),
    [(5, "00:05"), (523, "05:23"), (1341, "13:41"), ("0523", "05:23"), (0, "00:00"), (2359, "23:59")],
)
def test_acq_time_is_hhmm_in_utc_with_or_without_leading_zeros(
    aoi: AOI, acq_time: int | str, expected: str
) -> None:
    with FakeFirmsServer([det("VIIRS_SNPP_NRT", date(2025, 12, 7), acq_time)]) as srv:
        fires = source_for(srv, products=("VIIRS_SNPP",)).load_fires(aoi, *DEC)
    assert fires["time"].dt.strftime("%Y-%m-%d %H:%M").tolist() == [f"2025-12-07 {expected}"]


@pytest.mark.parametrize("bad", ["2400", "1260", "ab", "-5", "12.5"])
def test_acq_time_that_is_not_hhmm_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="acq_time"):
        parse_acq_time(pd.Series(["2025-12-07"]), pd.Series([bad]))


def test_confidence_classes() -> None:
    modis = pd.Series(["0", "29", "30", "79", "80", "100"])
    assert confidence_class(modis).tolist() == ["low", "low", "nominal", "nominal", "high", "high"]
    viirs = pd.Series(["l", "n", "h", "N", "high"])
    assert confidence_class(viirs).tolist() == ["low", "nominal", "high", "nominal", "high"]
    for bad in ("x", "101", ""):
        with pytest.raises(ValueError, match="confidence"):
            confidence_class(pd.Series([bad]))


def test_modis_confidence_is_binned_through_the_api(aoi: AOI) -> None:
    table = [
        det("MODIS_NRT", date(2025, 12, 2), 300 + i, satellite="A", confidence=c)
        for i, c in enumerate([29, 30, 79, 80])
    ]
    with FakeFirmsServer(table) as srv:
        fires = source_for(srv, products=("MODIS",)).load_fires(aoi, *DEC)
    assert fires["confidence"].tolist() == ["low", "nominal", "nominal", "high"]


def test_satellite_names() -> None:
    def names(codes: list[str], source: str) -> list[str]:
        return list(satellite_names(pd.Series(codes), source))

    assert names(["N"], "VIIRS_SNPP_NRT") == ["Suomi NPP"]
    assert names(["N20", "1"], "VIIRS_NOAA20_SP") == ["NOAA-20", "NOAA-20"]
    assert names(["N21", "?"], "VIIRS_NOAA21_NRT") == ["NOAA-21", "NOAA-21"]  # one platform per VIIRS source
    assert names(["T", "A", "Terra", "Aqua"], "MODIS_NRT") == ["Terra", "Aqua", "Terra", "Aqua"]
    with pytest.raises(ValueError, match="neither Terra"):
        names(["X"], "MODIS_SP")


def test_pixel_size_is_each_detections_own_from_scan_and_track(aoi: AOI) -> None:
    d = date(2025, 12, 9)
    table = [
        det("VIIRS_SNPP_NRT", d, 600),  # near nadir: 0.39 x 0.36 km
        det("VIIRS_SNPP_NRT", d, 601, scan=0.8, track=0.78),  # at the swath's edge
        det("VIIRS_SNPP_NRT", d, 602, scan=0.33, track=0.52),  # track the larger
        det("VIIRS_SNPP_NRT", d, 603, scan="", track=""),  # a row without them: nominal
        det("MODIS_NRT", d, 604, scan=4.8, track=2.0),
        det("MODIS_NRT", d, 605, scan="NaN", track="inf"),
    ]
    with FakeFirmsServer(table) as srv:
        fires = source_for(srv, products=("VIIRS_SNPP", "MODIS")).load_fires(aoi, *DEC)
    assert fires["pixel_m"].tolist() == [390.0, 800.0, 520.0, 375.0, 4800.0, 1000.0]
    assert str(fires["pixel_m"].dtype) == "float64"
    check_fires(fires, aoi, *DEC)
    # The fake keeps to what FIRMS serves: a VIIRS pixel is never 1 km across, a MODIS one never 0.5 km.
    with pytest.raises(ValueError, match="scan"):
        det("VIIRS_SNPP_NRT", d, scan=1.0)
    with pytest.raises(ValueError, match="track"):
        det("MODIS_SP", d, track=0.5)


def test_pixel_size_falls_back_to_the_nominal_one() -> None:
    raw = pd.DataFrame({"scan": ["0.5", "", "x", "-1", "0", "1e400"], "track": ["", "", "", "0.4", "", ""]})
    assert pixel_size_m(raw, 375.0).tolist() == [500.0, 375.0, 375.0, 400.0, 375.0, 375.0]
    assert pixel_size_m(pd.DataFrame({"latitude": ["1", "2"]}), 1000.0).tolist() == [1000.0, 1000.0]
    # A CSV without scan/track still parses, every row at the family's nominal size.
    csv = (
        "latitude,longitude,acq_date,acq_time,satellite,confidence,frp,daynight\n"
        f"{LAT},{LON},2025-12-09,611,T,50,3.1,D\n"
    )
    assert parse_fires_csv(csv, "MODIS_NRT")["pixel_m"].tolist() == [1000.0]


def test_a_pixel_size_in_the_wrong_unit_breaks_the_contract(aoi: AOI) -> None:
    with FakeFirmsServer([det("VIIRS_SNPP_NRT", date(2025, 12, 9))]) as srv:
        fires = source_for(srv, products=("VIIRS_SNPP",)).load_fires(aoi, *DEC)
    for bad in (0.39, float("nan"), 5000.0):  # km, unknown, a MODIS edge pixel for VIIRS
        wrong = fires.assign(pixel_m=bad)
        with pytest.raises(SourceError, match="pixel_m"):
            check_fires(wrong, aoi, *DEC)


def test_an_off_nadir_fire_reaches_an_alert_that_a_nadir_one_does_not(aoi: AOI) -> None:
    # A burn scar 100 m across, and two VIIRS fires 600 m east of its edge on the same day: the one FIRMS saw at
    # the swath's edge (scan 0.8 km) may have burnt in the scar, the one seen at nadir (0.39 km) lies elsewhere.
    crs = str(aoi.crs)
    x, y = Transformer.from_crs(4326, crs, always_xy=True).transform(LON, LAT)
    scar = shapely.box(x - 50, y - 50, x + 50, y + 50)
    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(x + 50 + 600, y)
    d = date(2025, 12, 9)
    table = [
        det("VIIRS_SNPP_NRT", d, 600, latitude=lat, longitude=lon),
        det("VIIRS_NOAA20_NRT", d, 700, latitude=lat, longitude=lon, scan=0.8, track=0.78),
    ]
    with FakeFirmsServer(table) as srv:
        fires = source_for(srv, products=("VIIRS_SNPP", "VIIRS_NOAA20")).load_fires(aoi, *DEC)
    grid = Fires.from_frame(fires, crs)
    assert shapely.distance(shapely.points(grid.x, grid.y), scar).tolist() == pytest.approx(
        [600.0] * 2, abs=1
    )
    m = summarise_fires(grid, grid.near(scar, date(2025, 12, 1), d))
    assert m.count == 1 and m.sensors == ("viirs",)
    assert fires["satellite"].iloc[grid.near(scar, None, d)].tolist() == ["NOAA-20"]


def test_repeated_rows_are_dropped(aoi: AOI) -> None:
    d = date(2025, 12, 9)
    table = [det("VIIRS_SNPP_NRT", d, 611), det("VIIRS_SNPP_NRT", d, 611), det("VIIRS_SNPP_NRT", d, 612)]
    with FakeFirmsServer(table) as srv:
        fires = source_for(srv, products=("VIIRS_SNPP",)).load_fires(aoi, *DEC)
    assert fires["time"].dt.strftime("%H%M").tolist() == ["0611", "0612"]
    # The same answer twice (overlapping requests) is one set of detections.
    csv = f"{VIIRS_HEADER}\n{LAT},{LON},330,0.4,0.4,2025-12-09,611,N,VIIRS,n,2.0NRT,290,3.1,D\n"
    frame = parse_fires_csv(csv, "VIIRS_SNPP_NRT")
    assert len(select_fires([frame, frame], aoi, *DEC)) == 1


def test_the_request_reaches_as_far_as_the_largest_pixel(aoi: AOI) -> None:
    # A MODIS pixel at the swath edge (~4.8 km along scan) centred outside the area can still cover an alert
    # on its edge: the box FIRMS is asked for must reach that far on every side, at the border's latitudes.
    w, s, e, n = search_bbox(aoi)
    aw, as_, ae, an = aoi.bbox_wgs84()
    m_per_deg_lon = 111_320 * math.cos(math.radians(max(abs(s), abs(n))))
    assert min(aw - w, e - ae) * m_per_deg_lon >= 4800
    assert min(as_ - s, n - an) * 110_574 >= 4800


def test_rows_outside_the_days_or_the_box_are_dropped() -> None:
    aoi = aoi_from_bbox((104.66003, 14.38003, 104.70003, 14.41003), aoi_id="fake-firms")
    w, s, e, n = search_bbox(aoi)
    # FIRMS is asked for the box rounded outwards: a pixel just beyond it comes back and must go.
    assert float(area_param((w, s, e, n)).split(",")[2]) > e + 0.00005
    beyond = det("VIIRS_SNPP_NRT", date(2025, 12, 9), 600, longitude=e + 0.00005)
    with FakeFirmsServer([beyond, det("VIIRS_SNPP_NRT", date(2025, 12, 9), 601)]) as srv:
        fires = source_for(srv, products=("VIIRS_SNPP",)).load_fires(aoi, *DEC)
        (served,) = [r for r in srv.log if r.path.endswith("/5/2025-12-06")]
        assert served.nbytes > len(VIIRS_HEADER) + 150  # both rows came back
    assert fires["longitude"].tolist() == [LON]
    rows = "\n".join(
        [
            f"{LAT},{LON},330,0.4,0.4,2025-11-30,2359,N,VIIRS,n,2.0NRT,290,1,N",  # the day before
            f"{LAT},{LON},330,0.4,0.4,2025-12-13,0,N,VIIRS,n,2.0NRT,290,1,N",  # the day after
            f"{n + 0.001},{LON},330,0.4,0.4,2025-12-05,100,N,VIIRS,n,2.0NRT,290,1,N",  # north of the box
            f"{s},{w},330,0.4,0.4,2025-12-05,100,N,VIIRS,n,2.0NRT,290,1,N",  # on its corner: kept
        ]
    )
    kept = select_fires([parse_fires_csv(f"{VIIRS_HEADER}\n{rows}\n", "VIIRS_SNPP_NRT")], aoi, *DEC)
    assert kept["latitude"].tolist() == [s]
    check_fires(kept, aoi, *DEC)


def test_an_unreadable_answer_is_an_error_naming_it(server: FakeFirmsServer, aoi: AOI) -> None:
    with pytest.raises(ValueError, match="missing"):
        parse_fires_csv("latitude,longitude\n1,2\n", "VIIRS_SNPP_NRT")
    server.table.append(det("MODIS_NRT", date(2025, 12, 4), 600, satellite="Z"))
    with pytest.raises(
        FirmsError, match=r"MODIS_NRT 2025-12-01\.\.2025-12-05 .*cannot be read .*Terra"
    ) as err:
        source_for(server, products=("MODIS",)).load_fires(aoi, *DEC)
    assert MAP_KEY not in str(err.value) and one_line(str(err.value))


# -- errors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 200])
def test_a_refused_key_says_how_to_fix_it(aoi: AOI, status: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "fedcba9876543210fedcba9876543210"
    with FakeFirmsServer(bad_key_status=status) as srv:
        with pytest.raises(FirmsKeyError) as err:
            source_for(srv, key=wrong).load_fires(aoi, *DEC)
    msg = str(err.value)
    assert isinstance(err.value, SourceError) and one_line(msg)
    assert "Invalid MAP_KEY." in msg and f"HTTP {status}" in msg
    assert "data availability 2025-12-01..2025-12-12 for area 'fake-firms'" in msg
    assert "set FIRMS_MAP_KEY to a valid key from the FIRMS MAP_KEY page" in msg
    assert wrong not in msg and wrong not in caplog.text


def test_a_spent_transaction_limit_names_the_request_and_the_limit(aoi: AOI) -> None:
    with FakeFirmsServer(transaction_limit=6) as srv:  # availability (1) + the first five days (5)
        with pytest.raises(FirmsLimitError) as err:
            source_for(srv).load_fires(aoi, *DEC)
    msg = str(err.value)
    assert msg.startswith("FIRMS VIIRS_SNPP_NRT 2025-12-06..2025-12-10 for area 'fake-firms' (bbox 104.6100,")
    assert "Exceeding allowed transaction limit." in msg and "5000 transactions per 10 minutes" in msg
    assert "wait 10 minutes" in msg and MAP_KEY not in msg and one_line(msg)


def test_a_rejected_parameter_is_reported_with_the_service_text(server: FakeFirmsServer, aoi: AOI) -> None:
    src = source_for(server)
    with pytest.raises(FirmsRequestError) as err:
        src.fetch_area(AreaRequest("VIIRS_SNPP_NRT", date(2025, 12, 1), 6), aoi)
    msg = str(err.value)
    assert "FIRMS VIIRS_SNPP_NRT 2025-12-01..2025-12-06 for area 'fake-firms'" in msg
    assert "Invalid day range. Expects [1..5]." in msg and "check firms.products" in msg
    assert "/api/area/csv/***/VIIRS_SNPP_NRT/" in msg and MAP_KEY not in msg and one_line(msg)
    with pytest.raises(FirmsRequestError, match=r"Invalid source\."):
        src.fetch_area(AreaRequest("VIIRS_NOAA21_SP", date(2025, 12, 1), 1), aoi)
    with pytest.raises(FirmsRequestError, match="no such endpoint .*check firms.base_url"):
        source_for(server, base_url=server.url + "/firms").load_fires(aoi, *DEC)
    with pytest.raises(FirmsRequestError, match="ends before it starts"):
        src.load_fires(aoi, DEC[1], DEC[0])


# -- retries --------------------------------------------------------------------------------------------------


def test_server_errors_and_429_are_retried(aoi: AOI) -> None:
    with FakeFirmsServer([det("VIIRS_SNPP_NRT", date(2025, 12, 2))]) as srv:
        srv.fail(500, times=2, match="data_availability")
        srv.fail(429, times=1, match="VIIRS_SNPP_NRT", retry_after=1)
        srv.fail(429, times=1, match="VIIRS_SNPP_NRT", retry_after=0)
        src = source_for(srv, products=("VIIRS_SNPP",))
        t0 = time.monotonic()
        fires = src.load_fires(aoi, *DEC)
        assert time.monotonic() - t0 >= 1.0  # Retry-After honoured (the backoff here is 0)
        statuses = [r.status for r in srv.log]
    assert len(fires) == 1
    assert statuses == [500, 500, 200, 429, 429, 200, 200, 200]
    assert (src.stats.requests, src.stats.retries, src.stats.failed) == (8, 4, 0)
    assert src.stats.bytes > 0


def test_a_read_timeout_is_retried(aoi: AOI) -> None:
    with FakeFirmsServer() as srv:
        srv.stall(1.0)
        src = source_for(srv, products=("VIIRS_SNPP",), timeout_s=0.2)
        src.load_fires(aoi, date(2025, 12, 1), date(2025, 12, 3))
    assert src.stats.retries == 1


def test_retries_run_out(aoi: AOI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeFirmsServer() as srv:
        srv.fail(503, times=10)
        with pytest.raises(FirmsUnavailableError) as err:
            source_for(srv).load_fires(aoi, *DEC)
        assert len(srv.log) == 3
    msg = str(err.value)
    assert "failed 3 time(s) (HTTP 503" in msg and "raise firms.max_retries" in msg and one_line(msg)
    with FakeFirmsServer() as srv:
        srv.fail(429, times=10, retry_after=0)
        with pytest.raises(FirmsLimitError, match=r"still rate-limited the requests after 3 attempt\(s\)"):
            source_for(srv).load_fires(aoi, *DEC)
    # Nobody listening: urllib3 logs its retries with the URL, the key in it.
    with FakeFirmsServer() as srv:
        url = srv.url
    src = source_for(srv, base_url=url, max_retries=1)
    with pytest.raises(
        FirmsUnavailableError, match=r"no answer from http://127\.0\.0\.1:\d+ after 2 attempt"
    ) as err:
        src.load_fires(aoi, *DEC)
    assert src.stats.failed == 1
    chain = f"{err.value} {err.value.__cause__!r} {err.value.__cause__}"
    assert MAP_KEY not in chain and "***" in chain
    assert "Retrying" in caplog.text and MAP_KEY not in caplog.text


# -- the MAP_KEY, the settings, the factory -------------------------------------------------------------------


def test_map_key_from_the_environment_or_a_secret_block(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks: dict[str, Any] = {
        "plain": " 123e4567abc ",  # looks like a number to JSON: must stay a string
        "json": '{"map_key": "from-json"}',
        "dict": {"map_key": "from-dict"},
        "empty": "",
    }

    def load(block: str) -> Any:
        if block not in blocks:
            raise ValueError(f"Unable to find block document named {block}")
        return blocks[block]

    monkeypatch.setattr(firms_mod, "_load_secret_block", load)
    assert firms_map_key(FirmsSettings()) is None
    assert firms_map_key(FirmsSettings(map_key_block="plain")) == "123e4567abc"
    assert firms_map_key(FirmsSettings(map_key_block="json")) == "from-json"
    assert firms_map_key(Settings(firms=FirmsSettings(map_key_block="dict"))) == "from-dict"
    for bad in ("empty", "missing"):
        with pytest.raises(FirmsKeyError, match=f"Prefect Secret block '{bad}' .*or set FIRMS_MAP_KEY"):
            firms_map_key(FirmsSettings(map_key_block=bad))
    monkeypatch.setenv("FIRMS_MAP_KEY", "from-env")
    assert firms_map_key(FirmsSettings(map_key_block="json")) == "from-env"  # the environment wins


def test_no_key_fails_before_any_request() -> None:
    with pytest.raises(FirmsKeyError, match="no MAP_KEY: set FIRMS_MAP_KEY .*firms.map_key_block"):
        FirmsSource(FirmsSettings())


def test_thermal_source_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choose_thermal_source(Settings(source="simulator")) == "simulator"
    assert choose_thermal_source(Settings(source="stac")) == "none"
    assert (
        choose_thermal_source(Settings(source="stac", thermal=ThermalSettings(source="simulator")))
        == "simulator"
    )
    monkeypatch.setattr(firms_mod, "_load_secret_block", lambda block: 1 / 0)
    broken = Settings(source="cdse", firms=FirmsSettings(map_key_block="gone"))
    assert choose_thermal_source(broken) == "none"  # auto: a broken block means no FIRMS, with a warning
    monkeypatch.setenv("FIRMS_MAP_KEY", MAP_KEY)
    assert choose_thermal_source(Settings(source="stac")) == "firms"
    assert choose_thermal_source(Settings(source="simulator")) == "simulator"
    assert choose_thermal_source(Settings(source="stac", thermal=ThermalSettings(source="none"))) == "none"
    src = firms_source(Settings(firms=FirmsSettings(products=("MODIS",))))
    assert src.products == ("MODIS",) and MAP_KEY not in repr(src)


def test_settings_validation() -> None:
    assert FirmsSettings().products == ("VIIRS_SNPP", "VIIRS_NOAA20", "VIIRS_NOAA21", "MODIS")
    for bad in [("VIIRS_SNPP", "VIIRS_SNPP_NRT"), ("LANDSAT",), (), ("viirs_snpp",)]:
        with pytest.raises(ValidationError):
            FirmsSettings(products=bad)


def test_source_pickles_without_its_session(server: FakeFirmsServer, aoi: AOI) -> None:
    src = source_for(server, products=("VIIRS_SNPP",))
    src.load_fires(aoi, *DEC)
    copy = pickle.loads(pickle.dumps(src))
    copy.load_fires(aoi, *DEC)
    assert server.availability_requests() == 1  # the table travelled with it
