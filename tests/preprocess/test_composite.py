from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from monitoring.preprocess import composite, latest_clear, mask_clouds, nanmedian_time
from monitoring.preprocess.composite import _nanmedian_last, sorting_network
from monitoring.sources.base import SCL_CLOUD_HIGH
from tests.synthetic import CHAR, FOREST, maybe_dask, optical_stack, paint, tiny_aoi


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 12), st.integers(1, 4), st.integers(1, 4)),
        elements=st.one_of(st.just(np.nan), st.floats(-1, 1, width=32)),
    )
)
def test_nanmedian_matches_numpy(a: np.ndarray) -> None:
    arr = xr.DataArray(a, dims=("time", "y", "x"))
    got = nanmedian_time(arr).values
    # On dask: chunks that cut y and x, and the time axis gathered from one chunk per date.
    lazy = nanmedian_time(arr.chunk({"time": 1, "y": 3, "x": 2}))
    with (
        np.errstate(all="ignore"),
        pytest.warns(RuntimeWarning) if np.isnan(a).all(axis=0).any() else _null(),
    ):
        want = np.nanmedian(a, axis=0)
    assert got.dtype == np.float32 and lazy.dtype == np.float32
    np.testing.assert_array_equal(got, want.astype(np.float32))
    np.testing.assert_array_equal(lazy.values, got)


@pytest.mark.parametrize("use_dask", [False, True])
def test_a_window_without_dates_composites_to_nan(use_dask: bool) -> None:
    arr = xr.DataArray(np.zeros((0, 3, 4), np.float32), dims=("time", "y", "x"))
    out = nanmedian_time(arr.chunk({"y": 2}) if use_dask else arr).values
    assert out.shape == (3, 4) and out.dtype == np.float32 and np.isnan(out).all()


@pytest.mark.parametrize("n", range(1, 15))
def test_the_sorting_network_sorts_every_zero_one_sequence(n: int) -> None:
    # The 0-1 principle (Knuth 5.3.4): a comparator network that sorts all 2^n sequences of 0s and 1s sorts
    # every sequence of n values.
    seqs = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.int8)
    for i, j in sorting_network(n):
        lo, hi = np.minimum(seqs[:, i], seqs[:, j]), np.maximum(seqs[:, i], seqs[:, j])
        seqs[:, i], seqs[:, j] = lo, hi
    assert (np.diff(seqs, axis=1) >= 0).all()


@pytest.mark.parametrize("n", [15, 16, 17, 31, 40, 64, 100])
def test_long_series_match_numpy(n: int) -> None:
    # Windows of many dates (a 60-day baseline in the dry season has up to ~25): more than the 0-1 test covers.
    rng = np.random.default_rng(n)
    a = rng.normal(size=(n, 20, 300)).astype(np.float32)
    a[rng.random(a.shape) < 0.4] = np.nan
    a[:, 0, 0] = np.nan  # never clear
    a[:, 0, 1] = np.inf  # saturated
    got = nanmedian_time(xr.DataArray(a, dims=("time", "y", "x"))).values
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        want = np.nanmedian(a, axis=0)
    np.testing.assert_array_equal(got, want)
    # The kernel reads blocks in their own memory order: time first (numpy's stack), time last (dask's blocks),
    # or neither (a strided view, copied).
    last = np.moveaxis(a, 0, -1)
    layouts = [(last, want), (np.ascontiguousarray(last), want), (last[:, ::2], want[:, ::2])]
    for layout, expected in [*layouts, (np.asfortranarray(last), want)]:
        np.testing.assert_array_equal(_nanmedian_last(layout), expected)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


@pytest.mark.parametrize("use_dask", [False, True])
def test_composite_ignores_clouds_and_counts_clear(use_dask: bool) -> None:
    ds = optical_stack(tiny_aoi(), ["2025-11-01", "2025-11-06", "2025-11-11"], FOREST)
    ds["SCL"].values[1, 10:20, 10:20] = SCL_CLOUD_HIGH
    ds["B04"].values[1, 10:20, 10:20] = 0.6  # the cloud itself, bright
    out = composite(mask_clouds(maybe_dask(ds, use_dask)))
    assert float(out["B04"].values[15, 15]) == pytest.approx(FOREST["B04"], abs=0.01)
    assert int(out["clear_count"].values[15, 15]) == 2
    assert int(out["clear_count"].values[40, 40]) == 3


@pytest.mark.parametrize("use_dask", [False, True])
def test_latest_clear_takes_the_last_clear_look(use_dask: bool) -> None:
    ds = optical_stack(tiny_aoi(), ["2025-12-01", "2025-12-06", "2025-12-11"], FOREST)
    paint(ds, 1, (slice(0, 10), slice(0, 10)), CHAR)
    ds["SCL"].values[2, 0:10, 0:10] = SCL_CLOUD_HIGH
    out = latest_clear(mask_clouds(maybe_dask(ds, use_dask), dilate_px=0))
    assert int(out["latest"].values[5, 5]) == 1
    assert float(out["B08"].values[5, 5]) == pytest.approx(CHAR["B08"])
    assert int(out["latest"].values[30, 30]) == 2
