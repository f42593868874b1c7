"""Tests of the local-folder source: file-name conventions, sidecars, VHR with missing bands, bad sidecars."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

from monitoring.aoi import AOI, aoi_from_hotspot
from monitoring.config import HotSpot, LocalSettings
from monitoring.errors import ConfigError, SourceError
from monitoring.sources.base import SCL_NO_DATA, SCL_UNCLASSIFIED, check_optical
from monitoring.sources.local import LocalSource, MissingBandsWarning, read_sidecar
from tests.fakes.stac_server import CENTRE_LONLAT, EPSG, Ground, _centre_xy, _grid, reflectance
from tests.sources.conformance import check_source

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

DEC = (date(2025, 12, 1), date(2025, 12, 20))
HALF = 1500.0  # files cover 3 km x 3 km around the centre; the AOI is 2 km


def make_aoi() -> AOI:
    lon, lat = CENTRE_LONLAT
    return aoi_from_hotspot(
        HotSpot(id="fake-site", name="Fake site", lat=lat, lon=lon, coordinates="sourced", aoi_km=2.0)
    )


@pytest.fixture(scope="module")
def ground() -> Ground:
    return Ground.render(*_centre_xy())


def _write(
    path: Path, data: np.ndarray, transform: object, *, crs: str = f"EPSG:{EPSG}", nodata: float | None = None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
    ) as dst:
        dst.write(data)
    return path


def _s2_stack(ground: Ground, *, dx: float = 0.0) -> tuple[np.ndarray, object]:
    """Reflectance of six bands plus SCL (vegetation) on a 10 m grid, 3 km around the centre (+dx east)."""
    cx, cy = _centre_xy()
    x0, y1, n = cx - HALF + dx, cy + HALF, int(2 * HALF / 10)
    x, y = _grid(x0, y1, 10.0, n, n)
    lc = ground.at(x, y)
    refl = np.stack([reflectance(lc, x, y, b) for b in range(6)])
    return np.concatenate([refl, np.full((1, n, n), 4.0)]), from_origin(x0, y1, 10, 10)


def _s1_stack(ground: Ground) -> tuple[np.ndarray, object]:
    cx, cy = _centre_xy()
    x0, y1, n = cx - HALF, cy + HALF, int(2 * HALF / 10)
    x, y = _grid(x0, y1, 10.0, n, n)
    vv = np.where(ground.at(x, y) == 10, 0.12, 0.05).astype(np.float32)
    return np.stack([vv, vv / 5]), from_origin(x0, y1, 10, 10)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory, ground: Ground) -> Path:
    """Exported Sentinel scenes by file-name convention and by sidecar, and a WorldCover tile."""
    d = tmp_path_factory.mktemp("local")
    stack, tr = _s2_stack(ground)
    dn = np.round(stack[:6] * 10000).astype(np.uint16)
    scl = stack[6:].astype(np.uint16)
    _write(d / "S2_20251203T033512_export.tif", np.concatenate([dn, scl]), tr, nodata=0)
    _write(d / "2025/S2_20251208T033512_export.tif", np.concatenate([dn, scl]), tr, nodata=0)
    # A float reflectance export described by a sidecar (band order differs from the convention).
    _write(
        d / "scene_1213.tif", np.concatenate([stack[:6][::-1], stack[6:]]).astype(np.float32), tr, nodata=-1
    )
    (d / "scene_1213.tif.json").write_text(
        json.dumps(
            {
                "datetime": "2025-12-13T03:35:12Z",
                "sensor": "optical",
                "platform": "sentinel-2a",
                "cloud_cover": 4.5,
                "bands": ["B12", "B11", "B08", "B04", "B03", "B02", "SCL"],
            }
        )
    )
    sar, tr1 = _s1_stack(ground)
    _write(d / "S1_20251205T230500_D026_rtc.tif", sar, tr1, nodata=float("nan"))
    _write(d / "S1_20251214T111000_A128_rtc.tif", sar, tr1, nodata=float("nan"))
    # The same backscatter in dB, by sidecar.
    _write(d / "s1_db.tif", (10 * np.log10(sar)).astype(np.float32), tr1)
    (d / "s1_db.json").write_text(
        json.dumps(
            {
                "datetime": "2025-12-17T23:05:00Z",
                "sensor": "sar",
                "bands": ["VV", "VH"],
                "units": "dB",
                "orbit_direction": "descending",
                "relative_orbit": 26,
                "platform": "sentinel-1c",
            }
        )
    )
    # WorldCover as ESA ships it: lon/lat, 1/12000 degree.
    cx, cy = _centre_xy()
    to_ll = Transformer.from_crs(f"EPSG:{EPSG}", "EPSG:4326", always_xy=True)
    lo0, la1 = to_ll.transform(cx - HALF, cy + HALF)
    res = 1 / 12000
    lon, lat = _grid(lo0, la1, res, 420, 420)
    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{EPSG}", always_xy=True).transform(lon, lat)
    lc = ground.at(np.asarray(x), np.asarray(y))
    _write(
        d / "ESA_WorldCover_10m_2021_v200_N12E102_Map.tif",
        lc[None],
        from_origin(lo0, la1, res, res),
        crs="EPSG:4326",
        nodata=0,
    )
    # Far from the area (40 km east): skipped.
    far, trf = _s2_stack(ground, dx=40_000)
    _write(d / "S2_20251210T033512_far.tif", np.round(far * 10000).astype(np.uint16), trf, nodata=0)
    return d


def test_conformance(folder: Path) -> None:
    check_source(LocalSource(LocalSettings(folder=str(folder)), chunk_size=128), make_aoi(), *DEC)


def test_conventions_and_sidecars_agree(folder: Path) -> None:
    ds = LocalSource(LocalSettings(folder=str(folder)), chunk_size=128).load_optical(make_aoi(), *DEC)
    assert [str(t)[:10] for t in ds["time"].values] == ["2025-12-03", "2025-12-08", "2025-12-13"]
    assert list(ds["scene_id"].values) == [
        "S2_20251203T033512_export",
        "S2_20251208T033512_export",
        "scene_1213",
    ]
    assert ds["cloud_cover"].values.tolist() == [0.0, 0.0, 4.5]
    v = ds.compute()
    for b in ("B02", "B08", "B12"):
        np.testing.assert_allclose(v[b].values[2], v[b].values[0], atol=6e-5)  # DN rounding
    assert (v["SCL"].values == 4).all()


def test_sar_from_conventions_and_db_sidecar(folder: Path) -> None:
    ds = LocalSource(LocalSettings(folder=str(folder))).load_sar(make_aoi(), *DEC)
    assert ds["relative_orbit"].values.tolist() == [26, 128, 26]
    assert ds["orbit_direction"].values.tolist() == ["descending", "ascending", "descending"]
    v = ds.compute()
    np.testing.assert_allclose(v["VV"].values[2], v["VV"].values[0], rtol=1e-5)  # dB converted to linear
    assert v["valid"].values.all()


def test_vhr_image_with_missing_bands(tmp_path: Path, ground: Ground) -> None:
    """A 3-band 8-bit Pleiades-like image at 2 m in lon/lat: averaged onto the 10 m grid, no SWIR, no SCL."""
    cx, cy = _centre_xy()
    to_ll = Transformer.from_crs(f"EPSG:{EPSG}", "EPSG:4326", always_xy=True)
    lo0, la1 = to_ll.transform(cx - HALF, cy + HALF)
    res = 2 / 111_000
    n = int(2 * HALF / 2)
    lon, lat = _grid(lo0, la1, res, n, n)
    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{EPSG}", always_xy=True).transform(lon, lat)
    x, y = np.asarray(x), np.asarray(y)
    lc = ground.at(x, y)
    rgb = np.stack([reflectance(lc, x, y, b) for b in (2, 1, 0)])
    _write(
        tmp_path / "pleiades.tif",
        np.round(rgb / 0.002).astype(np.uint8),
        from_origin(lo0, la1, res, res),
        crs="EPSG:4326",
        nodata=0,
    )
    (tmp_path / "pleiades.tif.json").write_text(
        json.dumps(
            {
                "datetime": "2025-12-15T03:50:00+07:00",
                "sensor": "optical",
                "platform": "pleiades-1a",
                "bands": ["B04", "B03", "B02"],
                "scale": 0.002,
                "cloud_cover": 0,
            }
        )
    )
    src = LocalSource(LocalSettings(folder=str(tmp_path)), chunk_size=128)
    aoi = make_aoi()
    with pytest.warns(
        MissingBandsWarning, match=r"pleiades\.tif: has no B08, B11, B12, SCL; those bands are NaN"
    ):
        ds = src.load_optical(aoi, *DEC)
    assert str(ds["time"].values[0])[:16] == "2025-12-14T20:50"  # +07:00 is read as such, kept in UTC
    v = ds.isel(time=0).compute()
    assert np.isnan(v["B08"].values).all() and np.isnan(v["B12"].values).all()
    assert (
        set(np.unique(v["SCL"].values)) <= {SCL_UNCLASSIFIED, SCL_NO_DATA}
        and (v["SCL"] == SCL_UNCLASSIFIED).mean() > 0.99
    )
    # Against the ground at 10 m: average resampling of 2 m pixels matches but at cell edges.
    xs, ys = np.meshgrid(v["x"].values, v["y"].values)
    truth = reflectance(ground.at(xs, ys), xs, ys, 2)
    err = np.abs(v["B04"].values - truth)
    assert np.nanmedian(err) < 0.003
    check_optical(ds, aoi, *DEC)  # the contract holds (the conformance suite wants every band, so not that)


def test_bad_sidecar_names_file_and_key(tmp_path: Path) -> None:
    img = np.zeros((2, 10, 10), np.float32)
    _write(tmp_path / "a.tif", img, from_origin(465000, 1591000, 10, 10))
    cases = {
        "datetime": {"datetime": "yesterday", "sensor": "sar", "bands": ["VV", "VH"]},
        "sensr": {"datetime": "2025-12-01T00:00:00Z", "sensr": "sar"},
        "orbit_direction and relative_orbit": {
            "datetime": "2025-12-01T00:00:00Z",
            "sensor": "sar",
            "bands": ["VV", "VH"],
        },
        "B8": {"datetime": "2025-12-01T00:00:00Z", "sensor": "optical", "bands": ["B04", "B8"]},
    }
    for what, doc in cases.items():
        side = tmp_path / "a.tif.json"
        side.write_text(json.dumps(doc))
        with pytest.raises(SourceError) as e:
            read_sidecar(side)
        msg = str(e.value)
        assert "\n" not in msg and str(side) in msg and what in msg, msg
    side.write_text("{not json")
    with pytest.raises(SourceError, match=r"a\.tif\.json: sidecar is not valid JSON"):
        LocalSource(LocalSettings(folder=str(tmp_path))).load_optical(make_aoi(), *DEC)
    # A sidecar naming more bands than the file has is caught when the file is opened.
    side.write_text(
        json.dumps({"datetime": "2025-12-01T00:00:00Z", "sensor": "optical", "bands": ["B02", "B03", "B04"]})
    )
    with pytest.raises(
        SourceError, match=r"a\.tif: has 2 band\(s\) but sidecar .* names band\(s\) \{'B04': 3\}"
    ):
        LocalSource(LocalSettings(folder=str(tmp_path))).load_optical(make_aoi(), *DEC)


def test_undescribed_and_outside_files_are_skipped(tmp_path: Path, ground: Ground) -> None:
    stack, tr = _s2_stack(ground, dx=40_000)
    _write(tmp_path / "S2_20251203T033512_far.tif", np.round(stack * 10000).astype(np.uint16), tr, nodata=0)
    _write(tmp_path / "notes.tif", np.zeros((1, 10, 10), np.uint8), tr)
    src = LocalSource(LocalSettings(folder=str(tmp_path)))
    with pytest.warns(UserWarning, match=r"notes\.tif: no sidecar"):
        assert src.load_optical(make_aoi(), *DEC).sizes["time"] == 0
    assert src.load_landcover(make_aoi()) is None


def test_folder_setting_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="local.folder is not set"):
        LocalSource(LocalSettings())
    with pytest.raises(ConfigError, match="is not a folder"):
        LocalSource(LocalSettings(folder=str(tmp_path / "missing")))
