"""Live tests of the FIRMS thermal source against NASA FIRMS (off by default: they spend MAP_KEY transactions).

Run with FIRMS_MAP_KEY set: `pytest -m live tests/sources/test_firms_live.py`. They check what the fake cannot:
FIRMS' real CSV headers and codes (acq_time, satellite, confidence), its data-availability table and its answer
to a wrong key. They cost well under 100 of the 5000 transactions a key may spend per 10 minutes.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import pytest

from monitoring.aoi import AOI, aoi_from_bbox
from monitoring.config import Settings
from monitoring.sources.firms import FirmsKeyError, FirmsSource, firms_source
from monitoring.sources.thermal import CONFIDENCES, FIRE_COLUMNS, check_fires

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not os.environ.get("FIRMS_MAP_KEY"), reason="needs FIRMS_MAP_KEY (free, from the FIRMS MAP_KEY page)"
    ),
]

END = date.today() - timedelta(days=1)
START = END - timedelta(days=6)
"""The last week: near real time, two requests per product."""
DRY_SEASON = (date(2024, 2, 10), date(2024, 2, 16))
"""A week of the 2024 burning season, in the standard-processing archives (NOAA-21: near real time only)."""


@pytest.fixture(scope="module")
def source() -> FirmsSource:
    return firms_source(Settings())


@pytest.fixture(scope="module")
def aoi() -> AOI:
    """About 45 km x 45 km of the border north of Preah Vihear: forest and fields that burn every dry season."""
    return aoi_from_bbox((104.3, 14.1, 104.7, 14.5), aoi_id="live-firms-preah-vihear")


def test_data_availability_live(source: FirmsSource) -> None:
    table = source.data_availability()
    for data_id in (
        "VIIRS_SNPP_NRT",
        "VIIRS_SNPP_SP",
        "VIIRS_NOAA20_NRT",
        "VIIRS_NOAA21_NRT",
        "MODIS_NRT",
        "MODIS_SP",
    ):
        assert data_id in table, f"{data_id} missing from FIRMS' data availability: {sorted(table)}"
        lo, hi = table[data_id]
        assert lo <= hi
    assert table["VIIRS_SNPP_SP"][1] < table["VIIRS_SNPP_NRT"][1]


def test_last_week_live(source: FirmsSource, aoi: AOI) -> None:
    fires = source.load_fires(aoi, START, END)
    check_fires(fires, aoi, START, END)
    assert list(fires.columns) == [*FIRE_COLUMNS, "geometry"]
    assert all(g.days[0] > START for g in source.gaps), "near real time should hold all but the last days"


def test_dry_season_archive_live(source: FirmsSource, aoi: AOI) -> None:
    fires = source.load_fires(aoi, *DRY_SEASON)
    check_fires(fires, aoi, *DRY_SEASON)
    assert len(fires) > 0, "no fire in a week of the burning season: check the area and the products"
    assert {"VIIRS_SNPP_SP", "MODIS_SP"} <= set(fires["product"]), set(fires["product"])
    assert set(fires["satellite"]) <= {"Suomi NPP", "NOAA-20", "NOAA-21", "Terra", "Aqua"}
    assert set(fires["confidence"]) <= set(CONFIDENCES)
    assert set(fires["daynight"]) <= {"D", "N"}
    assert fires["time"].dt.hour.nunique() > 1, "acq_time read as whole days?"


def test_wrong_key_live() -> None:
    with pytest.raises(FirmsKeyError, match="FIRMS refused the MAP_KEY"):
        FirmsSource(Settings().firms, map_key="0" * 32).data_availability()
