from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from monitoring.errors import DetectionError
from monitoring.preprocess import clear_mask, mask_clouds
from monitoring.preprocess.cloudmask import (
    _dilate_2d,
    _disk,
    cloud_probability,
    cloud_shadow_masks,
    from_cells,
    scl_shadow_mask,
    to_cells,
)
from monitoring.preprocess.shadow import (
    project_along_sun,
    sentinel2_solar_time,
    shadow_offsets,
    solar_position,
    sun_angles,
)
from monitoring.sources.base import (
    OPTICAL_BANDS,
    SCL_CIRRUS,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_CLOUD_SHADOW,
    SCL_NO_DATA,
)
from tests.synthetic import FOREST, maybe_dask, optical_stack, paint, tiny_aoi


@pytest.mark.parametrize("use_dask", [False, True])
def test_cloud_and_shadow_are_masked_and_grown(use_dask: bool) -> None:
    ds = optical_stack(tiny_aoi(), ["2025-12-01", "2025-12-06"], FOREST)
    ds["SCL"].values[0, 30, 30] = SCL_CLOUD_HIGH
    ds["SCL"].values[1, 5, 5] = SCL_CLOUD_SHADOW
    ds["SCL"].values[1, 60, 60] = SCL_NO_DATA
    clear = clear_mask(maybe_dask(ds, use_dask), dilate_px=2).values
    assert not clear[0, 30, 30] and not clear[0, 32, 30] and not clear[0, 30, 28]
    assert clear[0, 33, 30]  # beyond the 2-pixel disk
    assert not clear[1, 5, 5] and not clear[1, 7, 5]
    assert not clear[1, 60, 60] and clear[1, 60, 62]  # no-data is dropped, not grown
    assert clear[0].sum() == clear[0].size - 13  # a radius-2 disk holds 13 pixels


@pytest.mark.parametrize("use_dask", [False, True])
def test_dilation_crosses_chunk_edges(use_dask: bool) -> None:
    ds = optical_stack(tiny_aoi(), ["2025-12-01"], FOREST)
    ds["SCL"].values[0, 31, 31] = SCL_CLOUD_HIGH  # at a chunk corner for chunk 32
    clear = clear_mask(maybe_dask(ds, use_dask), dilate_px=1).values
    assert not clear[0, 32, 31] and not clear[0, 31, 32]


@pytest.mark.parametrize("use_dask", [False, True])
def test_nan_reflectance_is_not_clear(use_dask: bool) -> None:
    ds = optical_stack(tiny_aoi(), ["2025-12-01"], FOREST)
    ds["B11"].values[0, 10, 10] = np.nan
    masked = mask_clouds(maybe_dask(ds, use_dask))
    assert not bool(masked["clear"].values[0, 10, 10])
    assert np.isnan(masked["B04"].values[0, 10, 10])
    assert np.isfinite(masked["B04"].values[0, 10, 11])


# --- Cloud probability and shadows projected along the sun ---------------------------------------------------

CLOUD_TOA = {"B01": 0.45, "B02": 0.42, "B04": 0.40, "B05": 0.41, "B08": 0.44, "B8A": 0.45}
CLOUD_TOA |= {"B09": 0.15, "B10": 0.05, "B11": 0.30, "B12": 0.18, "B03": 0.40}
"""A thick cumulus at the top of the atmosphere: bright and flat from blue to NIR, B09/B10 absorbed above it."""
VEG_TOA = {"B01": 0.08, "B02": 0.06, "B04": 0.04, "B05": 0.09, "B08": 0.30, "B8A": 0.32}
VEG_TOA |= {"B09": 0.10, "B10": 0.002, "B11": 0.15, "B12": 0.07, "B03": 0.07}
AZIMUTH, ZENITH = 135.0, 45.0  # sun in the south-east, tan(zenith) = 1: a cloud at h m shades h m to the NW
CLOUD = (slice(180, 240), slice(180, 240))  # 60 x 60 px = 10 x 10 cells of 60 m
SHADOW = (slice(110, 170), slice(110, 170))  # 71 px (707 m) north and west of it: a cloud at 1000 m
LAKE = (slice(20, 70), slice(230, 280))  # north-east of the cloud: the sun never puts its shadow there


def _sunny_scene(use_dask: bool, *, prob_layer: bool) -> xr.Dataset:
    """Forest with one cloud, its shadow and a dark lake away from the projection; sun angles in attrs."""
    ds = optical_stack(tiny_aoi(300), ["2025-12-01"], FOREST)
    if prob_layer:
        prob = np.zeros(ds["B02"].shape, "float32")
        prob[(0, *CLOUD)] = 0.95
        ds["cloud_prob"] = (("time", "y", "x"), prob)
        paint(ds, 0, CLOUD, {b: CLOUD_TOA[b] for b in OPTICAL_BANDS})
    else:
        for b, v in VEG_TOA.items():
            ds[b] = ds["B02"].copy(data=np.full(ds["B02"].shape, v, "float32"))
        for b, v in CLOUD_TOA.items():
            ds[b].values[(0, *CLOUD)] = v
    shade = {b: float(ds[b].values[0, 0, 0]) * 0.2 for b in OPTICAL_BANDS}
    paint(ds, 0, SHADOW, shade)
    paint(ds, 0, LAKE, {"B02": 0.04, "B03": 0.05, "B04": 0.03, "B08": 0.02, "B11": 0.01, "B12": 0.01})
    ds.attrs.update(sun_azimuth=AZIMUTH, sun_zenith=ZENITH)
    return maybe_dask(ds, use_dask, chunk=64)


@pytest.mark.parametrize("prob_layer", [True, False])
@pytest.mark.parametrize("use_dask", [False, True])
def test_cloud_and_its_projected_shadow_are_flagged_but_not_a_dark_lake(
    use_dask: bool, prob_layer: bool
) -> None:
    ds = _sunny_scene(use_dask, prob_layer=prob_layer)
    masks = cloud_shadow_masks(ds)
    assert masks.attrs["cloud_source"] == ("cloud_prob" if prob_layer else "s2cloudless")
    assert "azimuth 135.0" in masks.attrs["sun"]
    if use_dask:
        assert isinstance(masks["cloud"].data, da.Array)
    cloud, shade = masks["cloud"].values[0], masks["shadow"].values[0]
    assert cloud[CLOUD].all() and shade[SHADOW].all()
    assert not shade[LAKE].any() and not cloud[LAKE].any()
    assert not cloud[SHADOW].any() and not (cloud & shade).any()
    # Grown by 120 m (2 cells of 60 m), give or take a cell: the forest 250 m east of the cloud stays clear.
    assert cloud[210, 250] and not cloud[210, 265] and not cloud[10, 10]
    clear = clear_mask(ds).values[0]
    assert not clear[CLOUD].any() and not clear[SHADOW].any() and clear[LAKE].all() and clear[10, 10]


@pytest.mark.parametrize("use_dask", [False, True])
def test_without_sun_angles_there_is_no_shadow_test(use_dask: bool) -> None:
    ds = _sunny_scene(False, prob_layer=True).isel(time=0, drop=True)
    ds.attrs = {}  # no sun angles, and without a time no overpass to work them out from
    masks = cloud_shadow_masks(ds.chunk(64) if use_dask else ds)
    assert masks["cloud"].values[CLOUD].all()
    assert not masks["shadow"].values.any() and "no sun angles" in masks.attrs["sun"]


def test_sun_angles_come_from_metadata_or_from_the_overpass() -> None:
    ds = optical_stack(tiny_aoi(), ["2025-12-01"], FOREST)
    one = ds.isel(time=0)
    az, zen = sun_angles(one)  # time + grid: Sentinel-2's overpass at 14 deg N on 1 December
    assert 140 < az < 160 and 35 < zen < 45
    assert sun_angles(one.assign_coords(sun_azimuth=120.0, sun_elevation=50.0)) == (120.0, 40.0)
    assert sun_angles(xr.Dataset({"B02": (("y", "x"), np.zeros((2, 2)))})) is None


def test_solar_position_and_overpass_time_are_physical() -> None:
    assert sentinel2_solar_time(0.0) == pytest.approx(10.5)
    assert sentinel2_solar_time(48.0) > 11.0 > 10.5 > sentinel2_solar_time(-16.0) > 10.2
    az, zen = solar_position("2024-03-20", 0.0, 12.0 + 7.5 / 60)  # equinox, true solar noon on the equator
    assert zen < 1.0
    az, zen = solar_position("2024-06-21", 48.8, 12.0 + 1.6 / 60)  # summer solstice, Paris latitude, noon
    assert az == pytest.approx(180.0, abs=1.0) and zen == pytest.approx(48.8 - 23.44, abs=0.3)
    az, _ = solar_position("2024-06-21", 48.8, 10.0)
    assert 90 < az < 180  # morning: the sun is east of south


def test_shadow_offsets_point_away_from_the_sun() -> None:
    offs = shadow_offsets((180.0, 45.0), (60.0, 60.0))  # sun due south: shadows fall due north (rows up)
    assert (offs[:, 1] == 0).all() and (offs[:, 0] < 0).all()
    assert offs[:, 0].max() == -3 and offs[:, 0].min() == -67  # 200 m / 60 m and 4000 m / 60 m
    assert (np.diff(np.sort(offs[:, 0])) == 1).all()  # no gaps along the band
    cloud = np.zeros((10, 10), bool)
    cloud[8, 5] = True
    band = project_along_sun(cloud, np.array([[-2, 0], [-3, 1]]))
    assert band[6, 5] and band[5, 6] and band.sum() == 2


@pytest.mark.parametrize("use_dask", [False, True])
def test_a_ready_probability_layer_is_used_and_clp_is_scaled(use_dask: bool) -> None:
    ds = optical_stack(tiny_aoi(128), ["2025-12-01", "2025-12-06"], FOREST)
    clp = np.zeros(ds["B02"].shape, "uint8")
    clp[1, 40:90, 40:90] = 230  # 0.9 on Sentinel Hub's 0-255 scale
    ds["CLP"] = (("time", "y", "x"), clp)
    prob = cloud_probability(maybe_dask(ds, use_dask))
    assert float(prob.max()) == pytest.approx(230 / 255, abs=1e-6) and float(prob[0].max()) == 0.0
    clear = clear_mask(maybe_dask(ds, use_dask)).values
    # The 240 m averaging rounds the square's corners off; its body and a 120 m rim are masked.
    assert clear[0].all() and not clear[1, 36:94, 50:80].any() and clear[1, 0:20, 0:20].all()


@pytest.mark.parametrize("use_dask", [False, True])
def test_l2a_without_probability_and_without_shadow_is_masked_by_scl_alone(use_dask: bool) -> None:
    ds = optical_stack(tiny_aoi(), ["2025-12-01"], FOREST)
    ds["SCL"].values[0, 30, 30] = SCL_CLOUD_HIGH  # one pixel: less than half a 60 m cell, it casts nothing
    ds = maybe_dask(ds, use_dask)
    auto = clear_mask(ds).values
    np.testing.assert_array_equal(auto, clear_mask(ds, method="scl").values)
    assert auto[0].sum() == auto[0].size - 13
    with pytest.raises(DetectionError, match="No cloud probability for this image"):
        clear_mask(ds, method="probability")


def test_numpy_and_dask_masks_agree_on_chunks_that_cut_cells() -> None:
    ds = _sunny_scene(False, prob_layer=False)
    a = cloud_shadow_masks(ds)
    b = cloud_shadow_masks(ds.chunk({"time": 1, "y": 50, "x": 70}))  # not multiples of the 6-pixel cell
    for v in ("cloud", "shadow"):
        np.testing.assert_array_equal(a[v].values, b[v].values)
    assert b["cloud"].chunks == ds.chunk({"time": 1, "y": 50, "x": 70})["B02"].chunks


# --- Shadows of SCL's clouds, found along the sun --------------------------------------------------------------

FLOODED = (slice(20, 60), slice(20, 60))  # far up the projection band (a cloud at ~2.5 km): a flooded paddy
FLOODED_L2A = {"B02": 0.05, "B03": 0.06, "B04": 0.05, "B08": 0.08, "B11": 0.06, "B12": 0.04}
"""Wet ground: dark in NIR and SWIR like a shadow, but green below NIR (not open water) and a sunlit red."""


def _scl_scene(use_dask: bool, *, chunk: int | dict[str, int] = 64) -> xr.Dataset:
    """L2A forest with one cloud SCL flags, its shadow SCL misses, a dark lake and a flooded paddy."""
    ds = optical_stack(tiny_aoi(300), ["2025-12-01", "2025-12-06"], FOREST)
    ds["SCL"].values[(0, *CLOUD)] = SCL_CLOUD_HIGH
    ds["SCL"].values[0, 180:240, 180:190] = SCL_CLOUD_MEDIUM
    paint(ds, 0, CLOUD, {b: CLOUD_TOA[b] for b in OPTICAL_BANDS})
    paint(ds, 0, SHADOW, {b: FOREST[b] * 0.2 for b in OPTICAL_BANDS})
    for t in (0, 1):  # the lake and the paddy are there on both dates; the cloud only on the first
        paint(ds, t, LAKE, {"B02": 0.04, "B03": 0.05, "B04": 0.03, "B08": 0.02, "B11": 0.01, "B12": 0.01})
        paint(ds, t, FLOODED, FLOODED_L2A)
    ds.attrs.update(sun_azimuth=AZIMUTH, sun_zenith=ZENITH)
    if not use_dask:
        return ds
    return ds.chunk(chunk if isinstance(chunk, dict) else {"time": 1, "y": chunk, "x": chunk})


@pytest.mark.parametrize("use_dask", [False, True])
def test_shadow_scl_missed_is_found_along_the_sun(use_dask: bool) -> None:
    ds = _scl_scene(use_dask)
    shade = scl_shadow_mask(ds)
    if use_dask:
        assert isinstance(shade.data, da.Array) and shade.chunks == ds["B02"].chunks
    assert "azimuth 135.0" in shade.attrs["sun"]
    s = shade.values
    assert s[(0, *SHADOW)].all()
    assert not s[1].any(), "no cloud on the second date, no shadow"
    assert not s[(0, *LAKE)].any(), "the lake is dark but off the sun's line"
    assert not s[(0, *FLOODED)].any(), "flooded paddy is dark in NIR/SWIR but not in the red"
    assert not s[(0, *CLOUD)].any()
    # Grown by 120 m, give or take a 60 m cell: forest 200 m beyond the shadow stays clear.
    assert s[0, 100, 140] and not s[0, 80, 140] and not s[0, 10, 290]
    old, new = clear_mask(ds, method="scl").values, clear_mask(ds).values
    assert old[(0, *SHADOW)].all() and not new[(0, *SHADOW)].any()
    np.testing.assert_array_equal(new, clear_mask(ds, method="scl+shadow").values)
    np.testing.assert_array_equal(new, old & ~s)
    assert new[(0, *FLOODED)].all() and new[(0, *LAKE)].all() and new[1].all()


def test_scl_shadow_is_the_same_on_numpy_and_on_dask_chunks_that_cut_cells() -> None:
    a = scl_shadow_mask(_scl_scene(False))
    b = scl_shadow_mask(_scl_scene(True, chunk={"time": 1, "y": 50, "x": 70}))
    assert a.values.any()
    np.testing.assert_array_equal(a.values, b.values)


@pytest.mark.parametrize("use_dask", [False, True])
def test_cirrus_casts_no_shadow_and_without_sun_there_is_no_test(use_dask: bool) -> None:
    ds = _scl_scene(False)
    ds["SCL"].values[(0, *CLOUD)] = SCL_CIRRUS  # a cirrus veil flies far above the heights searched
    assert not scl_shadow_mask(maybe_dask(ds, use_dask)).values.any()
    one = _scl_scene(False).isel(time=0, drop=True)
    one.attrs = {}  # no sun angles, and no time to work out an overpass from
    shade = scl_shadow_mask(one.chunk(64) if use_dask else one)
    assert not shade.values.any() and "no sun angles" in shade.attrs["sun"]
    np.testing.assert_array_equal(clear_mask(one).values, clear_mask(one, method="scl").values)


def test_an_image_without_scenes_gets_an_empty_mask() -> None:
    ds = _scl_scene(True).isel(time=slice(0, 0))
    assert clear_mask(ds).shape == ds["B02"].shape and ds.sizes["time"] == 0
    with pytest.raises(DetectionError, match="No SCL layer"):
        scl_shadow_mask(ds.drop_vars("SCL"))


# --- Cells and growth: the fast forms give the plain forms' bits -----------------------------------------------


def _plain_cell_means(block: np.ndarray, f: int) -> np.ndarray:
    """The numpy expression to_cells replaced: pad with NaN, mean of the finite values of each f x f cell."""
    *lead, h, w = block.shape
    ch, cw = -(-h // f), -(-w // f)
    pad = [(0, 0)] * len(lead) + [(0, ch * f - h), (0, cw * f - w)]
    x = np.pad(block, pad, constant_values=np.nan).reshape(*lead, ch, f, cw, f)
    valid = np.isfinite(x)
    n = valid.sum(axis=(-3, -1))
    total = np.where(valid, x, 0.0).sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan)


@settings(max_examples=80, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 3), st.integers(1, 20), st.integers(1, 20)),
        elements=st.one_of(
            st.sampled_from([np.nan, np.inf, -0.0]),
            st.floats(-0.5, 2.0, width=32),  # reflectance, with the negative values L2A offsets can give
        ),
    ),
    st.sampled_from([1, 2, 6]),
)
def test_cell_means_are_the_means_of_the_finite_values(a: np.ndarray, f: int) -> None:
    # The kernel adds in float32 as the numpy expression it replaced did; within float32 rounding of 36 terms it
    # is the exact mean of each cell's finite values, and dask's blocks (cutting cells) give the same bits.
    want = _plain_cell_means(a.astype("float64"), f)
    got = to_cells(a, f)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    lazy = to_cells(da.from_array(a, chunks=(1, 7, 5)), f).compute()  # blocks that cut cells
    np.testing.assert_array_equal(lazy.view("uint32"), got.view("uint32"))
    # Shares of a mask (what the shadow test averages) are exact: small integer sums.
    share = _plain_cell_means((a > 0).astype("float64"), f).astype("float32")
    np.testing.assert_array_equal(to_cells(a > 0, f), share)


@settings(max_examples=80, deadline=None)
@given(
    arrays(np.bool_, st.tuples(st.integers(1, 2), st.integers(1, 30), st.integers(1, 30))),
    st.integers(0, 6),
)
def test_dilation_is_binary_dilation_by_the_disk(a: np.ndarray, radius: int) -> None:
    want = ndimage.binary_dilation(a, structure=_disk(radius)[None]) if radius else a
    np.testing.assert_array_equal(_dilate_2d(a, radius), want)


def test_cells_go_back_to_any_chunking_of_the_pixels() -> None:
    cells = np.arange(2 * 9 * 7, dtype="float32").reshape(2, 9, 7)
    like = da.zeros((2, 50, 40), chunks=(1, 17, 13))  # the last cells only partly on the grid
    want = from_cells(cells, like.compute())
    got = from_cells(da.from_array(cells, chunks=(1, 4, 3)), like)
    assert got.chunks == like.chunks and want.shape == like.shape
    np.testing.assert_array_equal(got.compute(), want)
    assert want[1, 49, 39] == cells[1, 8, 6] and want[0, 6, 5] == cells[0, 1, 0]
