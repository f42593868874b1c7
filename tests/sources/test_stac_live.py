"""Live STAC tests: Earth Search and Planetary Computer (only with BORDERWATCH_LIVE_STAC=1)."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from monitoring.aoi import AOI, aoi_from_hotspot
from monitoring.config import HotSpot, StacSettings
from monitoring.sources.cache import SceneCache
from monitoring.sources.stac import StacSource
from tests.sources.conformance import check_optical_source, check_sar_source

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        os.environ.get("BORDERWATCH_LIVE_STAC") != "1", reason="live STAC; set BORDERWATCH_LIVE_STAC=1"
    ),
    pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning"),
]

PC = "https://planetarycomputer.microsoft.com/api/stac/v1"
DRY_SEASON = (date(2025, 1, 1), date(2025, 1, 31))
"""Mostly cloud-free over the border."""


def preah_vihear(km: float = 1.0) -> AOI:
    return aoi_from_hotspot(
        HotSpot(
            id="live-preah-vihear",
            name="Preah Vihear",
            lat=14.39,
            lon=104.68,
            coordinates="sourced",
            aoi_km=km,
        )
    )


def test_earth_search_optical(tmp_path: Path) -> None:
    cache = SceneCache(tmp_path, max_bytes=10**9)
    src = StacSource(StacSettings(), max_cloud_cover=50, chunk_size=512, cache=cache)
    ds = check_optical_source(src, preah_vihear(), *DRY_SEASON)
    v = ds.isel(time=0).compute()
    # Dry-season vegetation and soil: reflectance well inside 0-1 whatever the processing baseline.
    assert 0.0 < float(np.nanmedian(v["B04"])) < 0.3
    again = StacSource(StacSettings(), max_cloud_cover=50, chunk_size=512, cache=cache).load_optical(
        preah_vihear(), *DRY_SEASON
    )
    assert again.isel(time=0).compute().identical(v)
    assert cache.stats.hits >= 2  # the search and the scene


def test_planetary_computer_sar_and_landcover() -> None:
    pytest.importorskip("planetary_computer")
    settings = StacSettings(
        url=PC, sar_url=PC, signer="planetary_computer:sign", landcover_collection="esa-worldcover"
    )
    src = StacSource(settings, chunk_size=512)
    ds = check_sar_source(src, preah_vihear(), *DRY_SEASON)
    assert set(ds["orbit_direction"].values.tolist()) <= {"ascending", "descending"}
    lc = src.load_landcover(preah_vihear())
    assert lc is not None and set(np.unique(lc.compute().values)) <= {
        0,
        10,
        20,
        30,
        40,
        50,
        60,
        70,
        80,
        90,
        95,
        100,
    }


def test_planetary_computer_optical_infers_the_offset() -> None:
    """PC Sentinel-2 items have B02... keys and no raster:bands offset: the baseline decides."""
    pytest.importorskip("planetary_computer")
    settings = StacSettings(url=PC, signer="planetary_computer:sign")
    ds = check_optical_source(StacSource(settings, max_cloud_cover=50), preah_vihear(), *DRY_SEASON)
    assert 0.0 < float(np.nanmedian(ds["B04"].isel(time=0).compute())) < 0.3
