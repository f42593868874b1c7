from __future__ import annotations

import numpy as np
import pytest

from monitoring.preprocess import clear_mask, mask_clouds
from monitoring.sources.base import SCL_CLOUD_HIGH, SCL_CLOUD_SHADOW, SCL_NO_DATA
from tests.synthetic import FOREST, maybe_dask, optical_stack, tiny_aoi


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
