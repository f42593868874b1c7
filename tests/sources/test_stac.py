"""Tests of the STAC source against a local fake STAC API (real COGs read by GDAL over HTTP; no internet)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pystac
import pytest
import requests
from scipy.ndimage import binary_dilation

from monitoring.aoi import AOI, aoi_from_hotspot, windows_for
from monitoring.config import HotSpot, StacSettings, WindowSettings
from monitoring.errors import ConfigError, SceneLoadError, SourceError
from monitoring.preprocess.shadow import sun_angles, sun_at
from monitoring.sources.base import OPTICAL_BANDS, SCL_CLOUD_HIGH, SCL_CLOUD_SHADOW
from monitoring.sources.cache import SceneCache
from monitoring.sources.stac import (
    ReadSettings,
    StacSource,
    dedupe_granules,
    item_sun,
    redact,
    resolve_signer,
    s2_scale_offset,
    solar_day,
)
from tests.fakes.stac_server import (
    CENTRE_LONLAT,
    TOKEN,
    Catalog,
    FakeStacServer,
    S2Spec,
    build_catalog,
    dense_specs,
)
from tests.sources.conformance import check_source

# rasterio's MemoryDataset silences this warning with warnings.catch_warnings, which is not thread-safe: under
# dask threads it sometimes escapes. It is about the empty in-memory destination, before its transform is set.
pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

DEC = (date(2025, 12, 1), date(2025, 12, 20))
FAST = ReadSettings(http_retries=2, retry_delay_s=0.05, api_retries=1, api_backoff_s=0.01)


def make_aoi(km: float = 2.0) -> AOI:
    lon, lat = CENTRE_LONLAT
    return aoi_from_hotspot(
        HotSpot(id="fake-site", name="Fake site", lat=lat, lon=lon, coordinates="sourced", aoi_km=km)
    )


@pytest.fixture(scope="session")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return build_catalog(tmp_path_factory.mktemp("stac-cogs"))


@pytest.fixture
def server(catalog: Catalog) -> Iterator[FakeStacServer]:
    # A new port per test: GDAL's /vsicurl/ cache is per URL, so no test sees another's cached bytes.
    with FakeStacServer(catalog) as srv:
        yield srv


def settings_for(srv: FakeStacServer, **kw: object) -> StacSettings:
    base: dict[str, object] = {
        "url": srv.url,
        "sar_url": srv.url,
        "signer": "tests.fakes.stac_server:sign_href",
        "landcover_collection": "esa-worldcover",
    }
    return StacSettings(**{**base, **kw})  # type: ignore[arg-type]


def source_for(srv: FakeStacServer, cache: SceneCache | None = None, **kw: object) -> StacSource:
    return StacSource(settings_for(srv, **kw), max_cloud_cover=90, chunk_size=128, cache=cache, read=FAST)


# -- conformance and correctness -----------------------------------------------------------------------------


def test_conformance(server: FakeStacServer, tmp_path: Path) -> None:
    check_source(source_for(server, SceneCache(tmp_path, max_bytes=10**9)), make_aoi(), *DEC)


def test_processing_baselines_agree(server: FakeStacServer) -> None:
    """Identical ground under baseline 02.14 (no offset), 05.00 (offset -0.1 in raster:bands), 04.00 without
    the offset in metadata (inferred) and 04.00 harmonised by Earth Search (boa_offset_applied) load equal."""
    ds = source_for(server).load_optical(make_aoi(), *DEC).compute()
    days = [str(t)[:10] for t in ds["time"].values]
    old, new, inferred = (
        ds.sel(time=ds["time"].values[days.index(d)]) for d in ("2025-12-03", "2025-12-08", "2025-12-13")
    )
    # Away from clouds: SCL is 20 m (10 m cloud specks fall between its pixels), and bilinear 20 m bands blend
    # cloud into their neighbours, also from just outside the area (hence the border).
    cloud = np.isin(inferred["SCL"].values, [SCL_CLOUD_HIGH, SCL_CLOUD_SHADOW]) | (
        inferred["B02"].values > 0.3
    )
    cloud[:2], cloud[-2:], cloud[:, :2], cloud[:, -2:] = True, True, True, True
    clear = ~binary_dilation(cloud, iterations=3)
    assert clear.mean() > 0.3
    for b in OPTICAL_BANDS:
        np.testing.assert_allclose(new[b].values, old[b].values, atol=1e-6)
        np.testing.assert_allclose(inferred[b].values[clear], old[b].values[clear], atol=1e-6)
    assert 0.0 < float(np.nanmean(old["B04"])) < 0.2


def test_granules_of_one_day_make_one_time_step(server: FakeStacServer) -> None:
    ds = source_for(server).load_optical(make_aoi(), date(2025, 12, 3), date(2025, 12, 3))
    assert ds.sizes["time"] == 1
    assert ds["scene_id"].item() == "S2B_48PVA_20251203_0_L2A,S2B_48PVB_20251203_0_L2A"
    # Granule B has a no-data hole where it overlaps A: the day's mosaic fills it from A, no seam of NaN.
    v = ds.isel(time=0).compute()
    assert np.isfinite(v["B04"].values).all() and (v["SCL"].values > 0).all()


def test_sun_angles_come_from_the_items(server: FakeStacServer) -> None:
    aoi = make_aoi()
    ds = source_for(server).load_optical(aoi, *DEC)
    day = {str(t)[:10]: i for i, t in enumerate(ds["time"].values)}

    def sun(d: date, tile: str) -> tuple[float, float]:
        return S2Spec(d, tile).sun_angles

    # 8 Dec: Earth Search's view:sun_elevation, two tiles averaged; 13 Dec: tile A in Planetary Computer's
    # s2:mean_solar_* and tile B in Earth Search's names.
    for d in (date(2025, 12, 8), date(2025, 12, 13)):
        (az_a, zen_a), (az_b, zen_b) = sun(d, "A"), sun(d, "B")
        one = ds.isel(time=day[d.isoformat()])
        assert sun_angles(one) == pytest.approx(((az_a + az_b) / 2, (zen_a + zen_b) / 2), abs=1e-6)
    # 3 Dec: items without sun angles: the sun at the sensing time over the area.
    one = ds.isel(time=day["2025-12-03"])
    c = aoi.footprint.centroid
    assert sun_angles(one) == pytest.approx(sun_at(one["time"].values, lat=c.y, lon=c.x))
    assert 140 < float(one["sun_azimuth"]) < 160 and 35 < float(one["sun_zenith"]) < 45


def test_item_sun_reads_either_convention_and_ignores_junk() -> None:
    def item(props: dict[str, object]) -> pystac.Item:
        return pystac.Item("x", None, None, pystac.utils.str_to_datetime("2025-12-08T03:35:12Z"), props)

    assert item_sun(item({"view:sun_azimuth": 151.0, "view:sun_elevation": 50.0})) == (151.0, 40.0)
    assert item_sun(item({"s2:mean_solar_azimuth": -10.0, "s2:mean_solar_zenith": 41.0})) == (350.0, 41.0)
    assert item_sun(item({"view:sun_azimuth": 151.0})) is None
    assert item_sun(item({"view:sun_azimuth": "n/a", "view:sun_elevation": 50.0})) is None


def test_reprocessed_duplicate_is_dropped() -> None:
    items = [
        _item("S2B_48PVA_20251218_0_L2A", "02.14", tile="MGRS-48PVA"),
        _item("S2B_48PVA_20251218_1_L2A", "05.00", tile="MGRS-48PVA"),
        _item("S2B_48PVB_20251218_0_L2A", "05.00", tile="MGRS-48PVB"),
    ]
    assert [i.id for i in dedupe_granules(items)] == ["S2B_48PVA_20251218_1_L2A", "S2B_48PVB_20251218_0_L2A"]


def test_cloudy_scenes_are_not_loaded(server: FakeStacServer) -> None:
    aoi, day = make_aoi(), date(2025, 12, 10)
    assert source_for(server).load_optical(aoi, day, day).sizes["time"] == 0
    src = StacSource(settings_for(server), max_cloud_cover=100, chunk_size=128, read=FAST)
    assert src.load_optical(aoi, day, day).sizes["time"] == 1


def test_sar_groups_by_day_and_orbit(server: FakeStacServer) -> None:
    ds = source_for(server).load_sar(make_aoi(3.0), *DEC)
    assert list(ds["relative_orbit"].values) == [128, 26, 128, 26]
    assert list(ds["orbit_direction"].values) == ["ascending", "descending"] * 2
    last = ds.isel(time=3)
    assert last["scene_id"].item().count(",") == 1  # the north and south slices of one pass
    v = last.compute()
    valid = v["valid"].values
    # The layover patch of orbit 26 is RTC no-data: invalid; the rest is measured.
    assert 0.001 < (~valid).mean() < 0.05
    assert np.isnan(v["VV"].values[~valid]).all() and (v["VV"].values[valid] > 0).all()


def test_landcover_is_worldcover_on_the_grid(server: FakeStacServer, catalog: Catalog) -> None:
    aoi = make_aoi()
    lc = source_for(server).load_landcover(aoi)
    assert lc is not None and lc.odc.geobox == aoi.geobox and lc.dtype == np.uint8
    xs, ys = np.meshgrid(lc["x"].values, lc["y"].values)
    # WorldCover is in lon/lat: reprojected with nearest, it matches the ground at most pixels.
    assert (lc.values == catalog.ground.at(xs, ys)).mean() > 0.8
    assert source_for(server, landcover_collection=None).load_landcover(aoi) is None


# -- robustness ----------------------------------------------------------------------------------------------


def test_failing_asset_names_href_item_and_area(server: FakeStacServer) -> None:
    href = server.href("S2B_48PVB_20251208_0_L2A", "red")
    server.fail(href.removeprefix(server.url), status=500)
    ds = source_for(server).load_optical(make_aoi(), *DEC)
    with pytest.raises(SceneLoadError) as e:
        ds.compute()
    msg = str(e.value)
    assert href in msg and "S2B_48PVB_20251208_0_L2A" in msg and "'fake-site'" in msg
    assert e.value.__cause__ is not None


def test_transient_errors_are_retried(server: FakeStacServer) -> None:
    href = server.href("S2B_48PVA_20251208_0_L2A", "nir")
    server.fail(href.removeprefix(server.url), status=503, times=1)
    ds = source_for(server).load_optical(make_aoi(), date(2025, 12, 8), date(2025, 12, 8)).compute()
    assert np.isfinite(ds["B08"].values).all()
    assert any(r.status == 503 for r in server.log)


def test_sar_needs_the_signing_hook(server: FakeStacServer) -> None:
    ds = source_for(server, signer=None).load_sar(make_aoi(), *DEC)
    with pytest.raises(SceneLoadError, match="403|authenticat|not recognized|HTTP"):
        ds.compute()
    # With the hook, every SAR data request carried the token (the fake rejects the others).
    server.reset()
    source_for(server).load_sar(make_aoi(), *DEC).compute()
    assert server.stats()["errors"] == 0 and server.stats()["data_requests"] > 0


def test_errors_never_leak_url_tokens(server: FakeStacServer, caplog: pytest.LogCaptureFixture) -> None:
    href = server.href("S1A_IW_GRDH_1SDV_20251202T111000_R128_full_rtc", "vv")
    server.fail(href.removeprefix(server.url), status=500)
    with pytest.raises(SceneLoadError) as e:
        source_for(server).load_sar(make_aoi(), *DEC).compute()
    assert href in str(e.value) and TOKEN not in str(e.value)
    assert href in caplog.text and TOKEN not in caplog.text  # odc-loader logs the failing URL too
    assert redact(f"GET {href}?token={TOKEN}&x=1 failed") == f"GET {href}?<redacted> failed"


def test_search_failure_is_a_source_error(server: FakeStacServer) -> None:
    server.fail("/search", status=500)
    with pytest.raises(SourceError, match=r"sentinel-2-l2a.*fake-site"):
        source_for(server).load_optical(make_aoi(), *DEC)


def test_search_follows_pages(server: FakeStacServer) -> None:
    src = StacSource(settings_for(server), read=ReadSettings(page_size=2, api_retries=0))
    items = src.search(server.url, "sentinel-2-l2a", make_aoi(), start=DEC[0], end=DEC[1])
    assert len(items) == 11
    assert sum(r.path == "/search" for r in server.log) == 6


def test_fake_search_get_with_cql2_filter(server: FakeStacServer) -> None:
    flt = '{"op": "<=", "args": [{"property": "eo:cloud_cover"}, 50]}'
    r = requests.get(
        f"{server.url}/search",
        params={"collections": "sentinel-2-l2a", "filter": flt, "filter-lang": "cql2-json", "limit": 3},
        timeout=10,
    )
    page = r.json()
    assert r.status_code == 200 and page["numberMatched"] == 9 and len(page["features"]) == 3
    nxt = next(link for link in page["links"] if link["rel"] == "next")
    assert requests.get(nxt["href"], timeout=10).json()["numberReturned"] == 3
    first = page["features"][0]["assets"]["red"]["href"]
    part = requests.get(first, headers={"Range": "bytes=0-99"}, timeout=10)
    assert (
        part.status_code == 206
        and len(part.content) == 100
        and part.headers["Content-Range"].startswith("bytes 0-99/")
    )


# -- the cache -----------------------------------------------------------------------------------------------


def test_second_identical_load_makes_no_request(server: FakeStacServer, tmp_path: Path) -> None:
    aoi, cache = make_aoi(), SceneCache(tmp_path / "cache", max_bytes=10**9)
    first = [
        source_for(server, cache).load_optical(aoi, *DEC).compute(),
        source_for(server, cache).load_sar(aoi, *DEC).compute(),
        source_for(server, cache).load_landcover(aoi).compute(),  # type: ignore[union-attr]
    ]
    assert server.stats()["data_requests"] > 0
    server.reset()
    again = StacSource(settings_for(server), max_cloud_cover=90, chunk_size=128, cache=cache, read=FAST)
    second = [
        again.load_optical(aoi, *DEC).compute(),
        again.load_sar(aoi, *DEC).compute(),
        again.load_landcover(aoi).compute(),  # type: ignore[union-attr]
    ]
    assert server.stats()["requests"] == 0
    for a, b in zip(first, second, strict=True):
        assert a.identical(b)


# -- pure helpers --------------------------------------------------------------------------------------------


def _item(
    item_id: str,
    baseline: str | None,
    *,
    tile: str = "MGRS-48PVA",
    when: str = "2025-12-18T03:35:12Z",
    offset: float | None = None,
    applied: bool | None = None,
) -> pystac.Item:
    props: dict[str, object] = {"grid:code": tile}
    if baseline is not None:
        props["s2:processing_baseline"] = baseline
    if applied is not None:
        props["earthsearch:boa_offset_applied"] = applied
    rb: dict[str, object] = {"nodata": 0, "data_type": "uint16", "scale": 0.0001}
    if offset is not None:
        rb["offset"] = offset
    it = pystac.Item(item_id, None, None, pystac.utils.str_to_datetime(when), props)
    it.add_asset("red", pystac.Asset("https://x/red.tif", extra_fields={"raster:bands": [rb]}))
    return it


@pytest.mark.parametrize(
    ("baseline", "when", "offset", "applied", "expected"),
    [
        ("02.14", "2021-06-01T03:00:00Z", None, None, 0.0),  # old baseline, old metadata
        ("05.00", "2021-06-01T03:00:00Z", -0.1, None, -0.1),  # Collection-1 reprocessing of an old date
        ("04.00", "2023-01-01T03:00:00Z", None, None, -0.1),  # new baseline, offset not in metadata
        ("04.00", "2023-01-01T03:00:00Z", -0.1, True, 0.0),  # Earth Search harmonised the pixels
        (None, "2023-01-01T03:00:00Z", None, None, -0.1),  # no baseline: acquired after 2022-01-25
        (None, "2021-01-01T03:00:00Z", None, None, 0.0),
        ("02.14", "2021-06-01T03:00:00Z", 0.0, None, 0.0),
    ],
)
def test_scale_offset_rules(
    baseline: str | None, when: str, offset: float | None, applied: bool | None, expected: float
) -> None:
    scale, off = s2_scale_offset(_item("x", baseline, when=when, offset=offset, applied=applied), "red")
    assert scale == pytest.approx(1e-4) and off == pytest.approx(expected)


def test_solar_day_of_a_late_descending_pass() -> None:
    from datetime import datetime

    assert solar_day(datetime(2025, 12, 17, 23, 5), 104.7) == date(2025, 12, 18)
    assert solar_day(datetime(2025, 12, 17, 3, 35), 104.7) == date(2025, 12, 17)


def test_signer_setting_is_checked() -> None:
    assert resolve_signer(None) is None
    assert resolve_signer("tests.fakes.stac_server:sign_href") is not None
    assert resolve_signer("tests.fakes.stac_server.sign_href") is not None
    with pytest.raises(ConfigError, match="planetary"):
        resolve_signer("no_such_module_xyz:sign")


# -- measurement (run by hand: BORDERWATCH_MEASURE=1 pytest -s -k measure) -----------------------------------


@pytest.mark.skipif(
    os.environ.get("BORDERWATCH_MEASURE") != "1", reason="measurement; set BORDERWATCH_MEASURE=1"
)
def test_measure_requests_per_area_per_day(tmp_path: Path) -> None:
    """Daily-run windows (16-day after, 60-day before, 12-month SAR baseline and the season a year before) over a 3 km x 3 km area: cold,
    warm (rerun the same day), and the run five days later (new searches, only new scenes read)."""
    run = date(2025, 12, 20)
    first = windows_for(run, WindowSettings())
    later = windows_for(date(2025, 12, 25), WindowSettings())
    cat = build_catalog(tmp_path / "cogs", dense_specs(first.sar_ranges()[0][0], date(2025, 12, 25)))
    aoi, cache = make_aoi(3.0), SceneCache(tmp_path / "cache", max_bytes=10**10)
    with FakeStacServer(cat) as srv:
        for label, w, ttl in (("cold", first, 3600.0), ("warm", first, 3600.0), ("5 days later", later, 0.0)):
            src = StacSource(
                settings_for(srv),
                max_cloud_cover=90,
                chunk_size=512,
                cache=cache,
                read=ReadSettings(search_ttl_s=ttl),
            )
            total = {"requests": 0, "bytes": 0}
            t0 = time.perf_counter()
            for part in ("optical before", "optical after", "sar", "landcover"):
                srv.reset()
                if part == "landcover":
                    ds = src.load_landcover(aoi)
                elif part == "sar":
                    ds = src.load_sar(aoi, w.sar_ranges()[0][0], w.after[1])
                else:
                    ds = src.load_optical(aoi, *(w.before if part == "optical before" else w.after))
                assert ds is not None
                ds.compute()
                st = srv.stats()
                steps = ds.sizes.get("time", 1)
                print(
                    f"{label:13s} {part:15s} scenes {steps:3d} requests {st['requests']:4d} "
                    f"(api {st['api_requests']}) bytes {st['bytes'] / 1e6:7.2f} MB"
                )
                total = {k: total[k] + st[k] for k in total}
            print(
                f"{label:13s} {'total':15s} requests {total['requests']:4d} "
                f"bytes {total['bytes'] / 1e6:.2f} MB in {time.perf_counter() - t0:.1f} s; "
                f"cache {cache.size_bytes() / 1e6:.1f} MB, {cache.stats.as_dict()}"
            )
