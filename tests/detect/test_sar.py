from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from monitoring.config import ThresholdSettings
from monitoring.detect import builtup_mask, detect_sar_change
from tests.synthetic import maybe_dask, sar_stack, tiny_aoi

TH = ThresholdSettings()
BASELINE_END = date(2025, 12, 6)


def _dates(start: str, n: int, every: int = 6) -> list[str]:
    return [str(d.date()) for d in pd.date_range(start, periods=n, freq=f"{every}D")]


def _two_orbits(aoi, *, vv: float = 0.5, drop_from: int | None = None, seed: int = 0) -> xr.Dataset:  # type: ignore[no-untyped-def]
    dates = _dates("2025-09-10", 17)  # 15 baseline + 2 after 6 Dec
    stacks = []
    for k, (orbit, direction, hour) in enumerate(((26, "ascending", 11), (91, "descending", 23))):
        ds = sar_stack(aoi, dates, vv=vv, vh=vv / 5, seed=seed + k, orbit=orbit, direction=direction)
        ds = ds.assign_coords(time=ds["time"] + pd.Timedelta(hours=hour - 11, days=3 * k))
        if drop_from is not None:
            post = np.flatnonzero(ds["time"].values.astype("datetime64[D]") > np.datetime64(BASELINE_END))
            for t in post[drop_from:]:
                ds["VV"].values[t, 10:30, 10:30] *= 0.2  # lost double bounce: -7 dB
                ds["VH"].values[t, 10:30, 10:30] *= 0.4
        stacks.append(ds)
    return xr.concat(stacks, dim="time").sortby("time")


@pytest.mark.parametrize("use_dask", [False, True])
def test_collapse_of_bright_structures_is_significant_and_dated(use_dask: bool) -> None:
    aoi = tiny_aoi()
    ds = _two_orbits(aoi, drop_from=0)
    d = detect_sar_change(maybe_dask(ds, use_dask), baseline_end=BASELINE_END, thresholds=TH)
    mask = d.mask.values
    assert mask[12:28, 12:28].all()
    assert float(d.p_value.values[20, 20]) < 1e-6
    assert float(d.score.values[20, 20]) < -4
    first = int(d.first.values[20, 20])
    assert d.times[first] > np.datetime64(BASELINE_END)
    assert mask[40:, 40:].mean() < 0.001


@pytest.mark.parametrize("use_dask", [False, True])
def test_no_change_gives_no_detection(use_dask: bool) -> None:
    aoi = tiny_aoi()
    ds = _two_orbits(aoi, vv=0.12, seed=5)
    d = detect_sar_change(maybe_dask(ds, use_dask), baseline_end=BASELINE_END, thresholds=TH)
    assert d.mask.values.sum() == 0
    # Corrected p-values under no change are not concentrated near zero.
    assert np.median(d.p_value.values) > 0.3


def test_onset_tracks_the_later_change() -> None:
    aoi = tiny_aoi()
    late = detect_sar_change(_two_orbits(aoi, drop_from=1), baseline_end=BASELINE_END, thresholds=TH)
    early = detect_sar_change(_two_orbits(aoi, drop_from=0), baseline_end=BASELINE_END, thresholds=TH)
    assert late.times[int(late.first.values[20, 20])] > early.times[int(early.first.values[20, 20])]


@pytest.mark.parametrize("use_dask", [False, True])
def test_builtup_mask_from_bright_baseline(use_dask: bool) -> None:
    aoi = tiny_aoi()
    ds = _two_orbits(aoi, vv=0.12)
    ds["VV"].values[:, 5:15, 5:15] = 0.6 * ds["VV"].values[:, 5:15, 5:15] / 0.12
    m = builtup_mask(maybe_dask(ds, use_dask), baseline_end=BASELINE_END, thresholds=TH).values
    assert m[5:15, 5:15].all()
    assert not m[30:, 30:].any()


@pytest.mark.parametrize("use_dask", [False, True])
def test_builtup_mask_leaves_out_the_paddy_beside_the_houses(use_dask: bool) -> None:
    aoi = tiny_aoi()
    ds = _two_orbits(aoi, vv=0.12)
    ds["VV"].values[:, 5:15, 5:15] = 0.6 * ds["VV"].values[:, 5:15, 5:15] / 0.12
    lc = xr.DataArray(np.full(aoi.shape, 40, "uint8"), dims=("y", "x"), coords={"y": ds.y, "x": ds.x})
    lc.values[5:15, 5:15] = 50  # the village; cropland all around it
    m = builtup_mask(maybe_dask(ds, use_dask), baseline_end=BASELINE_END, thresholds=TH, landcover=lc).values
    assert m[5:15, 5:15].all()
    assert not m[lc.values == 40].any()
