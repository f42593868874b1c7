"""Tests of the Sentinel Hub / CDSE source against the local fake of the Sentinel Hub APIs (no network)."""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dask
import numpy as np
import pytest
import requests
from sentinelhub.exceptions import DownloadFailedException, SHRateLimitWarning

from monitoring.aoi import AOI, aoi_from_bbox
from monitoring.config import SentinelHubSettings
from monitoring.errors import SceneLoadError, SourceError
from monitoring.preprocess.cloudmask import clear_mask, cloud_shadow_masks
from monitoring.preprocess.shadow import sun_angles, sun_at
from monitoring.sources import sentinelhub as shmod
from monitoring.sources.base import ImagerySource
from monitoring.sources.cache import SceneCache
from monitoring.sources.sentinelhub import Acquisition, SentinelHubSource, group_acquisitions
from tests.fakes.sentinelhub_server import FakeSentinelHub, Fault
from tests.sources.conformance import check_source

START, END = date(2025, 12, 1), date(2025, 12, 6)
"""In the fake: two Sentinel-2 days (Dec 1, 6), two Sentinel-1 passes (Dec 1 descending, Dec 4 ascending)."""
DEPLOYMENTS = ("sentinelhub", "cdse")

_: type[ImagerySource] = SentinelHubSource  # the Protocol, checked statically


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeSentinelHub]]:
    """One fake per deployment, with the realms the real token endpoints use."""
    with FakeSentinelHub(realm="main") as sh, FakeSentinelHub(realm="CDSE") as cdse:
        yield {"sentinelhub": sh, "cdse": cdse}


@pytest.fixture
def deployment() -> str:
    """The commercial service; tests that hold for both deployments parametrize this."""
    return "sentinelhub"


@pytest.fixture
def fake(
    fakes: dict[str, FakeSentinelHub], deployment: str, monkeypatch: pytest.MonkeyPatch
) -> FakeSentinelHub:
    f = fakes[deployment]
    f.reset()
    monkeypatch.setenv(
        "REQUESTS_CA_BUNDLE", f.ca_file
    )  # TLS is verified as in production, against the fake's CA
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("SH_CLIENT_ID", f.client_id)
    monkeypatch.setenv("SH_CLIENT_SECRET", f.client_secret)
    return f


def settings_for(fake: FakeSentinelHub, **kw: object) -> SentinelHubSettings:
    base = {"base_url": fake.url, "token_url": fake.token_url, "max_retries": 2, "timeout_s": 10.0}
    return SentinelHubSettings(**{**base, **kw})  # type: ignore[arg-type]


def make_source(fake: FakeSentinelHub, deployment: str = "sentinelhub", **kw: object) -> SentinelHubSource:
    settings = kw.pop("settings", None) or settings_for(fake)
    opts: dict[str, object] = {"max_cloud_cover": 90.0, "chunk_size": 512, "retry_sleep_s": 0.01, **kw}
    return SentinelHubSource(settings, name=deployment, **opts)  # type: ignore[arg-type]


@pytest.fixture
def aoi() -> AOI:
    """About 1.5 km x 1.5 km inside one Sentinel-2 tile and one Sentinel-1 slice of the fake."""
    return aoi_from_bbox((104.50, 14.20, 104.514, 14.214), aoi_id="test-area")


@pytest.fixture
def edge_aoi() -> AOI:
    """On the 104 E edge of the fake's Sentinel-2 tiles: two granules per day."""
    return aoi_from_bbox((103.993, 14.20, 104.007, 14.214), aoi_id="edge-area")


# -- the contract --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_conformance(fake: FakeSentinelHub, deployment: str, aoi: AOI) -> None:
    src = make_source(fake, deployment)
    assert src.name == deployment and src.simulated is False
    check_source(src, aoi, START, END)


def test_nothing_downloads_until_compute(fake: FakeSentinelHub, aoi: AOI) -> None:
    src = make_source(fake)
    ds = src.load_optical(aoi, START, END)
    sar = src.load_sar(aoi, START, END)
    assert fake.stats["catalog"].requests == 2 and fake.stats["process"].requests == 0
    dask.compute(ds, sar)
    assert fake.stats["process"].requests == ds.sizes["time"] + sar.sizes["time"] == 4


def test_requests_are_on_the_aoi_grid(fake: FakeSentinelHub, aoi: AOI) -> None:
    src = make_source(fake)
    opt = src.load_optical(aoi, START, END)
    sar = src.load_sar(aoi, START, END)
    dask.compute(opt, sar)
    bodies = fake.process_bodies
    assert len(bodies) == 4
    bb = aoi.geobox.extent.boundingbox
    for body in bodies:
        bounds = body["input"]["bounds"]
        assert bounds["properties"]["crs"] == f"http://www.opengis.net/def/crs/EPSG/0/{aoi.crs.epsg}"
        assert bounds["bbox"] == pytest.approx([bb.left, bb.bottom, bb.right, bb.top])
        assert (body["output"]["width"], body["output"]["height"]) == (aoi.shape[1], aoi.shape[0])
        tr = body["input"]["data"][0]["dataFilter"]["timeRange"]
        assert tr["from"][:10] == tr["to"][:10], "one acquisition, one day: dates are never blended"
    s2 = [b for b in bodies if b["input"]["data"][0]["type"] == "sentinel-2-l2a"]
    s1 = [b for b in bodies if b["input"]["data"][0]["type"] == "sentinel-1-grd"]
    assert len(s2) == 2 and len(s1) == 2
    assert all(b["input"]["data"][0]["dataFilter"]["maxCloudCoverage"] == 90 for b in s2)
    for b in s1:
        d = b["input"]["data"][0]
        assert d["processing"] == {
            "backCoeff": "GAMMA0_TERRAIN",
            "orthorectify": True,
            "demInstance": "COPERNICUS_30",
        }
        assert d["dataFilter"]["orbitDirection"] in ("ASCENDING", "DESCENDING")
        assert d["dataFilter"]["acquisitionMode"] == "IW" and d["dataFilter"]["polarization"] == "DV"
    assert sorted(set(sar["orbit_direction"].values.tolist())) == ["ascending", "descending"]
    assert sorted(sar["relative_orbit"].values.tolist()) == [26, 91]


def test_sar_values_and_mask(fake: FakeSentinelHub, aoi: AOI) -> None:
    sar = make_source(fake).load_sar(aoi, START, END).compute()
    valid = sar["valid"].values
    assert 0.5 < valid.mean() < 1.0, "radar shadow marks a minority of pixels invalid"
    assert np.isfinite(sar["VV"].values).all(), "shadow is flagged, not blanked"


# -- cloud probability and sun, for the cloud and shadow masks ----------------------------------------------


def test_optical_scenes_carry_clp_and_the_sun_at_sensing(fake: FakeSentinelHub, aoi: AOI) -> None:
    ds = make_source(fake).load_optical(aoi, START, END)
    assert fake.stats["process"].requests == 0, "the sun comes from the catalog, before any pixel"
    c = aoi.footprint.centroid
    for t in range(ds.sizes["time"]):
        az, zen = float(ds["sun_azimuth"][t]), float(ds["sun_zenith"][t])
        assert (az, zen) == pytest.approx(sun_at(ds["time"].values[t], lat=c.y, lon=c.x))
        assert 140 < az < 160 and 30 < zen < 45  # December, 14 N, 10:35 local time: low in the south-east
        assert sun_angles(ds.isel(time=t)) == (az, zen), "the shadow test reads them"
    assert ds["CLP"].dtype == np.float32
    computed = ds.compute()
    evalscript = fake.process_bodies[0]["evalscript"]
    assert '"CLP"' in evalscript and '"CLM"' in evalscript
    clp, scl = computed["CLP"].values[0], computed["SCL"].values[0]  # 1 December: about a third cloud
    cloudy = np.isin(scl, (8, 9))
    assert 0.1 < cloudy.mean() < 0.6 and np.isfinite(clp).all() and 0 <= clp.min() and clp.max() <= 255
    assert np.mean(clp[cloudy]) > 200 and np.mean(clp[~cloudy]) < 60

    masks = cloud_shadow_masks(ds)
    assert masks.attrs["cloud_source"] == "CLP", "auto takes Sentinel Hub's probability, not s2cloudless"
    assert f"azimuth {float(ds['sun_azimuth'][0]):.1f}" in masks.attrs["sun"]
    clear = clear_mask(ds).values
    assert not clear[0][cloudy].any() and clear[0].any()
    np.testing.assert_array_equal(clear, clear_mask(computed).values)


def test_a_tile_without_clp_falls_back_to_scl(fake: FakeSentinelHub, aoi: AOI) -> None:
    fake.clp_missing_days.add(START)  # the service answers CLM 255 and CLP 0 for such a tile
    ds = make_source(fake).load_optical(aoi, START, START).compute()
    assert np.isnan(ds["CLP"].values).all(), "no probability, not a clear sky"
    assert np.isin(ds["SCL"].values, (8, 9)).any()
    np.testing.assert_array_equal(clear_mask(ds).values, clear_mask(ds, method="scl").values)


# -- the fake checks bodies as the service does --------------------------------------------------------------


def _post(fake: FakeSentinelHub, path: str, body: object, **headers: str) -> requests.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
    }
    token = requests.post(fake.token_url, data=form, timeout=10).json()["access_token"]
    return requests.post(
        fake.url + path, json=body, headers={"Authorization": f"Bearer {token}", **headers}, timeout=10
    )


def _valid_body(src: SentinelHubSource, aoi: AOI) -> dict[str, object]:
    acq = Acquisition(
        sensor="optical",
        time=shmod._parse_datetime("2025-12-01T03:35:37Z"),
        start=shmod._parse_datetime("2025-12-01T03:35:37Z"),
        end=shmod._parse_datetime("2025-12-01T03:35:37Z"),
        item_ids=("x",),
        platform="sentinel-2a",
    )
    return json.loads(json.dumps(src.process_request(acq, aoi.geobox).download_list[0].post_values))


def test_fake_accepts_the_source_body_and_rejects_malformed_ones(fake: FakeSentinelHub, aoi: AOI) -> None:
    src = make_source(fake)
    body = _valid_body(src, aoi)
    ok = _post(fake, "/api/v1/process", body, Accept="application/x-tar")
    assert ok.status_code == 200 and ok.headers["Content-Type"] == "application/x-tar"
    assert float(ok.headers["x-processingunits-spent"]) > 0

    too_wide = json.loads(json.dumps(body))
    too_wide["output"]["width"] = 3000
    r = _post(fake, "/api/v1/process", too_wide, Accept="application/x-tar")
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["status"] == 400 and err["reason"] == "Bad Request"
    assert "`width = 3000` is larger than allowed 2500" in err["message"]

    for breakage, message in [
        (lambda b: b.pop("evalscript"), "evalscript is missing"),
        (
            lambda b: b["input"]["bounds"]["properties"].update(crs="EPSG:32648"),
            "CRS 'EPSG:32648' is not supported",
        ),
        (lambda b: b["input"]["data"][0]["dataFilter"]["timeRange"].pop("to"), "needs 'from' and 'to'"),
        (
            lambda b: b["output"]["responses"][1].update(identifier="nope"),
            "Output nope requested but missing",
        ),
        (lambda b: b["input"]["data"][0].update(type="sentinel-9"), "unknown data type"),
    ]:
        bad = json.loads(json.dumps(body))
        breakage(bad)
        r = _post(fake, "/api/v1/process", bad, Accept="application/x-tar")
        assert r.status_code == 400, message
        assert message in r.json()["error"]["message"]


def test_malformed_body_from_the_source_is_a_clear_error(fake: FakeSentinelHub) -> None:
    # A settings object bypassing validation lets the source ask for more than the service's 2500 px.
    settings = settings_for(fake).model_copy(update={"max_pixels": 4000})
    src = make_source(fake, settings=settings)
    wide = aoi_from_bbox((104.50, 14.20, 104.76, 14.212), aoi_id="too-wide")
    assert wide.shape[1] > 2500
    ds = src.load_optical(wide, START, START)
    with pytest.raises(SceneLoadError) as info:
        ds["B04"].isel(time=0).compute()
    msg = str(info.value)
    assert "larger than allowed 2500" in msg and "HTTP 400" in msg
    assert "'too-wide'" in msg and "2025-12-01" in msg and fake.url + "/api/v1/process" in msg
    assert "\n" not in msg
    assert fake.stats["process"].requests == 1, "a 400 is not retried"


# -- retries, rate limits, failures --------------------------------------------------------------------------


def test_429_is_waited_out_and_counted(fake: FakeSentinelHub, aoi: AOI) -> None:
    src = make_source(fake)
    clean = src.load_optical(aoi, START, START).compute()
    fake.reset()
    src = make_source(fake)
    fake.inject("process", Fault(status=429, retry_after_ms=400))
    with pytest.warns(SHRateLimitWarning):
        ds = src.load_optical(aoi, START, START).compute()
    times = fake.stats["process"].times
    assert fake.stats["process"].statuses == {429: 1, 200: 1}
    assert times[1] - times[0] >= 0.4, "Retry-After (milliseconds) was not honoured"
    assert src.stats.by_endpoint["process"].rate_limited == 1
    assert src.stats.by_endpoint["process"].requests == 2
    np.testing.assert_array_equal(ds["B04"].values, clean["B04"].values)


def test_5xx_and_timeouts_are_retried(fake: FakeSentinelHub, aoi: AOI) -> None:
    src = make_source(fake, settings=settings_for(fake, max_retries=3, timeout_s=0.5))
    fake.inject("process", Fault(status=503), Fault(delay_s=1.5), Fault(status=500))
    ds = src.load_optical(aoi, START, START).compute()
    assert ds.sizes["time"] == 1 and np.isfinite(ds["B04"].values).any()
    counts = src.stats.by_endpoint["process"]
    assert (counts.requests, counts.server_errors, counts.failed) == (4, 2, 1)
    assert fake.stats["process"].statuses[200] >= 1


def test_catalog_5xx_is_retried(fake: FakeSentinelHub, aoi: AOI) -> None:
    fake.inject("catalog", Fault(status=502))
    acqs = make_source(fake).search_optical(aoi, START, END)
    assert len(acqs) == 2 and fake.stats["catalog"].requests == 2


def test_persistent_failure_names_scene_date_area_and_request(fake: FakeSentinelHub, aoi: AOI) -> None:
    src = make_source(fake)  # max_retries=2: three attempts
    fake.fail_always("process", Fault(status=503))
    ds = src.load_optical(aoi, START, START)
    scene = str(ds["scene_id"].values[0])
    with pytest.raises(SceneLoadError) as info:
        ds.compute()
    msg = str(info.value)
    assert scene in msg and "2025-12-01" in msg and "'test-area'" in msg
    assert f"POST {fake.url}/api/v1/process" in msg and "sentinel-2-l2a 2025-12-01T" in msg
    assert "HTTP 503" in msg and "after 3 attempt(s)" in msg and "max_retries" in msg
    assert isinstance(info.value.__cause__, DownloadFailedException)
    assert fake.stats["process"].requests == 3


def test_persistent_429_gives_up(fake: FakeSentinelHub, aoi: AOI) -> None:
    src = make_source(fake)
    fake.fail_always("process", Fault(status=429, retry_after_ms=10))
    with pytest.raises(SceneLoadError, match=r"HTTP 429 .*rate-limited"), pytest.warns(SHRateLimitWarning):
        src.load_optical(aoi, START, START).compute()
    assert fake.stats["process"].requests == 3


# -- grid tiles, acquisitions, pagination --------------------------------------------------------------------


def test_wide_area_is_tiled_and_reassembled_exactly(fake: FakeSentinelHub) -> None:
    area = aoi_from_bbox((104.50, 14.20, 104.528, 14.214), aoi_id="wide")  # ~300 x 150 px
    whole = make_source(fake).load_optical(area, START, START).compute()
    assert fake.stats["process"].requests == 1
    fake.reset_stats()
    tiled_src = make_source(fake, settings=settings_for(fake, max_pixels=128), chunk_size=64)
    tiled = tiled_src.load_optical(area, START, START)
    assert tiled["B04"].chunks[1][0] == 64, "download tiles are split into chunk_size chunks"
    tiled = tiled.compute()
    ny, nx = area.shape
    assert fake.stats["process"].requests == -(-ny // 128) * -(-nx // 128)
    assert all(max(b["output"]["width"], b["output"]["height"]) <= 128 for b in fake.process_bodies)
    assert tiled.odc.geobox == area.geobox
    for v in whole.data_vars:
        np.testing.assert_array_equal(tiled[v].values, whole[v].values, err_msg=v)


def test_granules_of_one_day_are_one_scene(fake: FakeSentinelHub, edge_aoi: AOI) -> None:
    src = make_source(fake)
    ds = src.load_optical(edge_aoi, START, END)
    days = ds["time"].values.astype("datetime64[D]")
    assert len(days) == len(np.unique(days)) == 2
    for sid in ds["scene_id"].values:
        ids = str(sid).split("+")
        assert len(ids) == 2 and {i.split("_T48P")[1][:2] for i in ids} == {"ZO", "AO"}
    ds.compute()
    assert fake.stats["process"].requests == 2, "one mosaic request per day, not per granule"
    assert np.isfinite(ds["B04"].isel(time=0).values).all(), "the mosaic covers both sides of the tile edge"


def test_reprocessed_duplicate_is_not_a_second_scene(
    fake: FakeSentinelHub, aoi: AOI, caplog: pytest.LogCaptureFixture
) -> None:
    src = make_source(fake)
    (first,) = src.search_optical(aoi, START, START)
    dup_id = first.item_ids[0].replace("N0511", "N0510")  # the same granule, an older processing baseline
    fake.extra_items.append(
        {
            "type": "Feature",
            "id": dup_id,
            "collection": "sentinel-2-l2a",
            "bbox": [104.0, 14.0, 105.0, 15.0],
            "properties": {
                "datetime": "2025-12-01T03:35:39Z",
                "platform": "sentinel-2a",
                "eo:cloud_cover": 10.0,
            },
        }
    )
    with caplog.at_level(logging.INFO, logger="monitoring.sources.sentinelhub"):
        (acq,) = src.search_optical(aoi, START, START)
    assert set(acq.item_ids) == {*first.item_ids, dup_id}
    assert "duplicate granules of one tile" in caplog.text, "a merged duplicate is never silent"
    ds = src.load_optical(aoi, START, START).compute()
    assert ds.sizes["time"] == 1 and fake.stats["process"].requests == 1


def test_pagination_is_followed(fake: FakeSentinelHub, aoi: AOI) -> None:
    src = make_source(fake)
    start, end = date(2025, 10, 1), date(2025, 12, 16)
    full = src.search_sar(aoi, start, end)
    fake.reset_stats()
    fake.page_size = 3
    paged = src.search_sar(aoi, start, end)
    assert paged == full and len(full) > 6
    assert fake.stats["catalog"].requests == -(-len(full) // 3)


def test_sar_is_grouped_per_day_and_orbit() -> None:
    def item(
        i: str, when: str, state: str, rel: int | None, absolute: int, platform: str = "sentinel-1a"
    ) -> dict:
        props = {
            "datetime": when,
            "platform": platform,
            "sat:orbit_state": state,
            "sat:absolute_orbit": absolute,
        }
        if rel is not None:
            props["sat:relative_orbit"] = rel
        return {"id": i, "properties": props}

    items = [
        item("a1", "2025-12-01T22:55:05Z", "descending", 91, 0),
        item("a2", "2025-12-01T22:55:30Z", "descending", 91, 0),  # the next slice of the same pass
        item(
            "b", "2025-12-02T11:22:05Z", "ascending", None, 26 + 72 + 175 * 330
        ),  # derived from absolute orbit
        item(
            "c", "2025-12-02T11:22:05Z", "ascending", None, 5, platform="sentinel-1c"
        ),  # no way to tell: skipped
    ]
    acqs = group_acquisitions(items, sensor="sar", lon=104.5)
    assert [(a.item_ids, a.orbit_direction, a.relative_orbit) for a in acqs] == [
        (("a1", "a2"), "descending", 91),
        (("b",), "ascending", 26),
    ]
    # 22:55 UTC on Dec 1 is Dec 2 at 104.5 E: both passes fall on one solar day, apart by orbit.
    assert acqs[0].day == date(2025, 12, 1) and acqs[0].end > acqs[0].start


def test_empty_window_is_an_empty_lazy_dataset(fake: FakeSentinelHub, aoi: AOI) -> None:
    src = make_source(fake, max_cloud_cover=0.0)
    ds = src.load_optical(aoi, START, START)
    assert ds.sizes["time"] == 0 and ds["B04"].chunks is not None
    assert ds.odc.geobox == aoi.geobox


# -- credentials ---------------------------------------------------------------------------------------------


def test_missing_credentials_is_one_line(fake: FakeSentinelHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SH_CLIENT_ID")
    monkeypatch.delenv("SH_CLIENT_SECRET")
    with pytest.raises(SourceError) as info:
        make_source(fake, "cdse")
    msg = str(info.value)
    assert "\n" not in msg
    assert "SH_CLIENT_ID" in msg and "SH_CLIENT_SECRET" in msg and "cdse.credentials_block" in msg
    assert fake.stats["token"].requests == 0


def test_credentials_from_a_prefect_block(
    fake: FakeSentinelHub, aoi: AOI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SH_CLIENT_ID")
    monkeypatch.delenv("SH_CLIENT_SECRET")
    blocks = {"sh-creds": {"client_id": fake.client_id, "client_secret": fake.client_secret}}
    monkeypatch.setattr(shmod, "_load_secret_block", lambda name: blocks[name])
    src = make_source(fake, settings=settings_for(fake, credentials_block="sh-creds"))
    assert len(src.search_optical(aoi, START, END)) == 2
    with pytest.raises(SourceError, match="Prefect Secret block 'nope'"):  # not in blocks: KeyError
        make_source(fake, settings=settings_for(fake, credentials_block="nope"))


def test_wrong_secret_names_the_token_endpoint(
    fake: FakeSentinelHub, aoi: AOI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SH_CLIENT_SECRET", "wrong")
    with pytest.raises(SourceError, match=r"token endpoint .*refused the credentials \(invalid_client"):
        make_source(fake).search_optical(aoi, START, END)


# -- bookkeeping ---------------------------------------------------------------------------------------------


def test_stats_match_what_the_server_saw(fake: FakeSentinelHub, aoi: AOI) -> None:
    src = make_source(fake)
    dask.compute(src.load_optical(aoi, START, END), src.load_sar(aoi, START, END))
    st = src.stats
    for endpoint in ("catalog", "process"):
        assert st.by_endpoint[endpoint].requests == fake.stats[endpoint].requests
        assert st.by_endpoint[endpoint].bytes == fake.stats[endpoint].bytes_out
    assert st.by_endpoint["token"].requests == fake.stats["token"].requests == 1
    area = st.by_area["test-area"]
    assert area.requests == fake.stats["catalog"].requests + fake.stats["process"].requests
    assert area.processing_units > 0 and st.total.bytes == area.bytes


def test_source_pickles_for_distributed_workers(fake: FakeSentinelHub, aoi: AOI) -> None:
    src = make_source(fake)
    src.search_optical(aoi, START, END)  # opens a session, which must not travel
    clone = pickle.loads(pickle.dumps(src))
    ds = clone.load_optical(aoi, START, START).compute()
    assert ds.sizes["time"] == 1 and clone.stats.by_endpoint["process"].requests == 1


def test_scene_cache_spares_the_second_download(fake: FakeSentinelHub, aoi: AOI, tmp_path: Path) -> None:
    cache = SceneCache(tmp_path, max_bytes=10**9)
    first = make_source(fake, cache=cache).load_optical(aoi, START, END).compute()
    assert fake.stats["process"].requests == 2
    again = make_source(fake, cache=cache).load_optical(aoi, START, END).compute()
    assert fake.stats["process"].requests == 2, "cached scenes are not downloaded again"
    for v in first.data_vars:
        np.testing.assert_array_equal(again[v].values, first[v].values)
