from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from monitoring.config import ThresholdSettings
from monitoring.detect import detect_burn_scars, detect_optical_change, detect_soil_exposure
from monitoring.preprocess import add_indices, composite, mask_clouds
from monitoring.sources.base import LC_CROP, LC_TREE, SCL_CLOUD_HIGH
from tests.synthetic import (
    CHAR,
    FOREST,
    MATURE_RICE,
    SOIL,
    STUBBLE,
    maybe_dask,
    optical_stack,
    paint,
    tiny_aoi,
)

TH = ThresholdSettings()
BEFORE = ["2025-11-01", "2025-11-06", "2025-11-11", "2025-11-16"]
AFTER = ["2025-12-01", "2025-12-06", "2025-12-11", "2025-12-16"]
PATCH = (slice(10, 20), slice(10, 20))


def _prep(before: xr.Dataset, after: xr.Dataset, use_dask: bool) -> tuple[xr.Dataset, xr.Dataset]:
    base = add_indices(composite(mask_clouds(maybe_dask(before, use_dask))))
    ma = add_indices(mask_clouds(maybe_dask(after, use_dask)))
    return base, ma


@pytest.mark.parametrize("use_dask", [False, True])
def test_burn_scar_found_dated_and_counted(use_dask: bool) -> None:
    aoi = tiny_aoi()
    before = optical_stack(aoi, BEFORE, FOREST, seed=1)
    after = optical_stack(aoi, AFTER, FOREST, seed=2)
    for t in (1, 2, 3):
        paint(after, t, PATCH, CHAR)
    after["SCL"].values[2][PATCH] = SCL_CLOUD_HIGH  # one look lost to cloud
    d = detect_burn_scars(*_prep(before, after, use_dask), thresholds=TH)
    mask = d.mask.values
    assert mask[PATCH].all()
    assert mask.sum() == 100  # nothing outside the patch
    assert int(d.first.values[15, 15]) == 1 and int(d.before.values[15, 15]) == 0
    assert int(d.count.values[15, 15]) == 2  # t=1 and t=3; t=2 was cloudy
    assert float(d.score.values[15, 15]) > 0.5
    assert int(d.first.values[40, 40]) == -1
    # RBR = dNBR / (pre-fire NBR + 1.001): forest NBR ~0.62 -> char ~-0.19 gives ~0.50 ("high", Parks 2014).
    rbr = float(d.extra["rbr"].values[15, 15])
    assert rbr == pytest.approx(float(d.score.values[15, 15]) / (0.62 + 1.001), rel=0.05)


@pytest.mark.parametrize("use_dask", [False, True])
def test_harvest_is_neither_burn_nor_soil_on_cropland(use_dask: bool) -> None:
    aoi = tiny_aoi()
    before = optical_stack(aoi, BEFORE, MATURE_RICE, seed=1)
    after = optical_stack(aoi, AFTER, STUBBLE, seed=2)
    base, ma = _prep(before, after, use_dask)
    lc = xr.full_like(base["B04"], LC_CROP, dtype="uint8")
    assert not detect_burn_scars(base, ma, thresholds=TH).mask.values.any()
    assert not detect_soil_exposure(base, ma, thresholds=TH, landcover=lc).mask.values.any()
    assert not detect_soil_exposure(base, ma, thresholds=TH, landcover=None).mask.values.any()
    # ...while the generic change vector does see the harvest: that is why it only corroborates.
    assert detect_optical_change(base, ma).mask.values.mean() > 0.9


def _mix(a: dict[str, float], b: dict[str, float], share_b: float) -> dict[str, float]:
    return {k: (1 - share_b) * a[k] + share_b * b[k] for k in a}


@pytest.mark.parametrize("use_dask", [False, True])
def test_crater_field_over_harvested_paddy_stands_out_from_the_season(use_dask: bool) -> None:
    # Craters and ejecta covering a third of each pixel over fresh stubble: NDVI ~0.33, above the bare-soil
    # threshold, but far below the stubble the harvest left on every other field that day, and redder.
    aoi = tiny_aoi()
    before = optical_stack(aoi, BEFORE, MATURE_RICE, seed=1)
    after = optical_stack(aoi, AFTER, STUBBLE, seed=2)
    cratered = _mix(STUBBLE, SOIL, 0.35)
    for t in (2, 3):
        paint(after, t, PATCH, cratered)
    base, ma = _prep(before, after, use_dask)
    lc = xr.full_like(base["B04"], LC_CROP, dtype="uint8")
    d = detect_soil_exposure(base, ma, thresholds=TH, landcover=lc)
    assert float(ma["NDVI"].values[3][15, 15]) > TH.bare_ndvi_max  # the fixed rule alone misses it
    assert d.mask.values[PATCH].mean() > 0.95
    assert d.mask.values.sum() - d.mask.values[PATCH].sum() == 0  # the harvest around it is not flagged
    assert int(d.first.values[15, 15]) == 2


@pytest.mark.parametrize("use_dask", [False, True])
def test_haze_over_harvested_paddy_is_not_soil(use_dask: bool) -> None:
    # A missed thin haze brightens the visible bands (blue a little more than red) and lowers NDVI like soil
    # does, but it does not redden the field.
    aoi = tiny_aoi()
    before = optical_stack(aoi, BEFORE, MATURE_RICE, seed=1)
    after = optical_stack(aoi, AFTER, STUBBLE, seed=2)
    hazy = dict(STUBBLE, B02=STUBBLE["B02"] + 0.045, B03=STUBBLE["B03"] + 0.04, B04=STUBBLE["B04"] + 0.038)
    hazy["B08"] = STUBBLE["B08"] + 0.02
    paint(after, 3, PATCH, hazy)
    base, ma = _prep(before, after, use_dask)
    lc = xr.full_like(base["B04"], LC_CROP, dtype="uint8")
    assert float(ma["NDVI"].values[3][15, 15]) < 0.37  # as low as the cratered stubble above
    assert not detect_soil_exposure(base, ma, thresholds=TH, landcover=lc).mask.values.any()


@pytest.mark.parametrize("use_dask", [False, True])
def test_soil_exposure_in_forest_including_mixed_pixels(use_dask: bool) -> None:
    aoi = tiny_aoi()
    before = optical_stack(aoi, BEFORE, FOREST, seed=1)
    after = optical_stack(aoi, AFTER, FOREST, seed=2)
    mixed = {b: 0.6 * FOREST[b] + 0.4 * SOIL[b] for b in FOREST}
    for t in (2, 3):
        paint(after, t, PATCH, SOIL)
        paint(after, t, (slice(30, 34), slice(30, 34)), mixed)
    base, ma = _prep(before, after, use_dask)
    lc = xr.full_like(base["B04"], LC_TREE, dtype="uint8")
    d = detect_soil_exposure(base, ma, thresholds=TH, landcover=lc)
    assert d.mask.values[PATCH].all() and d.mask.values[30:34, 30:34].all()
    assert d.mask.values.sum() == 100 + 16
    assert int(d.first.values[15, 15]) == 2 and int(d.before.values[15, 15]) == 1
    assert not detect_burn_scars(base, ma, thresholds=TH).mask.values.any()


@pytest.mark.parametrize("use_dask", [False, True])
def test_a_change_that_went_away_is_not_current(use_dask: bool) -> None:
    aoi = tiny_aoi()
    before = optical_stack(aoi, BEFORE, FOREST, seed=1)
    after = optical_stack(aoi, AFTER, FOREST, seed=2)
    paint(after, 1, PATCH, SOIL)  # e.g. an unflagged haze or a one-off artefact
    base, ma = _prep(before, after, use_dask)
    d = detect_soil_exposure(base, ma, thresholds=TH, landcover=None)
    assert not d.mask.values.any()
    assert int(d.count.values[15, 15]) == 1


def test_numpy_and_dask_agree_exactly() -> None:
    aoi = tiny_aoi()
    before = optical_stack(aoi, BEFORE, FOREST, seed=1)
    after = optical_stack(aoi, AFTER, FOREST, seed=2, noise=0.03)
    for t in (1, 2, 3):
        paint(after, t, PATCH, CHAR)
    a = detect_burn_scars(*_prep(before, after, False), thresholds=TH)
    b = detect_burn_scars(*_prep(before, after, True), thresholds=TH)
    for k, v in a.layers().items():
        np.testing.assert_array_equal(v.values, b.layers()[k].values, err_msg=k)
