"""Live tests of the Sentinel Hub source against the real service (off by default: they spend PUs).

Run with SH_CLIENT_ID/SH_CLIENT_SECRET set: `pytest -m live tests/sources/test_sentinelhub_live.py`.
BORDERWATCH_SH_LIVE picks the deployment the credentials belong to: 'cdse' (default) or 'sentinelhub'. They
check what the fake cannot: the real Catalog properties, evalscript semantics and response headers.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import numpy as np
import pytest

from monitoring.aoi import AOI, aoi_from_bbox
from monitoring.config import Settings
from monitoring.sources.sentinelhub import SentinelHubSource
from tests.sources.conformance import check_source

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (os.environ.get("SH_CLIENT_ID") and os.environ.get("SH_CLIENT_SECRET")),
        reason="needs SH_CLIENT_ID and SH_CLIENT_SECRET of a Sentinel Hub or CDSE account",
    ),
]

END = date.today() - timedelta(days=3)
START = END - timedelta(days=24)


@pytest.fixture(scope="module")
def source() -> SentinelHubSource:
    name = os.environ.get("BORDERWATCH_SH_LIVE", "cdse")
    if name not in ("cdse", "sentinelhub"):
        pytest.fail(f"BORDERWATCH_SH_LIVE={name!r}: use 'cdse' or 'sentinelhub'")
    settings = getattr(Settings(), name)
    return SentinelHubSource(settings, name=name, max_cloud_cover=95.0, chunk_size=512)


@pytest.fixture(scope="module")
def aoi() -> AOI:
    """1 km x 1 km by the Ta Muen temples on the Dangrek escarpment: slopes, so radar shadow shows up."""
    return aoi_from_bbox((103.262, 14.345, 103.271, 14.354), aoi_id="live-ta-muen")


def test_conformance_live(source: SentinelHubSource, aoi: AOI) -> None:
    check_source(source, aoi, START, END)


def test_sar_metadata_and_mask_polarity_live(source: SentinelHubSource, aoi: AOI) -> None:
    sar = source.load_sar(aoi, START, END)
    assert sar.sizes["time"] > 0
    assert (sar["relative_orbit"].values > 0).all(), "sat:relative_orbit (or the absolute orbit) was not read"
    first = sar.isel(time=0).compute()
    # shadowMask = 1 marks shadow/layover: on a 1 km hillside most pixels must still be valid.
    assert first["valid"].values.mean() > 0.5


def test_processing_units_are_reported_live(source: SentinelHubSource, aoi: AOI) -> None:
    ds = source.load_optical(aoi, START, END)
    if ds.sizes["time"] == 0:
        pytest.skip("no Sentinel-2 scene under the cloud limit in the window")
    ds.isel(time=0).compute()
    process = source.stats.by_endpoint["process"]
    assert process.requests >= 1 and process.bytes > 0
    assert process.processing_units > 0, "x-processingunits-spent missing from the Process API answer"
    assert np.isfinite(float(ds["cloud_cover"].values[0]))
