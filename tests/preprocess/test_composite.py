from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from monitoring.preprocess import composite, latest_clear, mask_clouds, nanmedian_time
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
    got = nanmedian_time(xr.DataArray(a, dims=("time", "y", "x"))).values
    with (
        np.errstate(all="ignore"),
        pytest.warns(RuntimeWarning) if np.isnan(a).all(axis=0).any() else _null(),
    ):
        want = np.nanmedian(a, axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True)


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
