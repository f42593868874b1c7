from __future__ import annotations

from datetime import date

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from monitoring.aoi import season_window
from monitoring.config import ThresholdSettings
from monitoring.detect import builtup_mask, detect_sar_change
from monitoring.detect import sar as sar_module
from monitoring.detect.sar import box_sides, fdr_mask, to_db
from monitoring.preprocess.multilook import MULTILOOK_PX, multilook_tile
from monitoring.sources.base import LC_CROP
from tests.synthetic import maybe_dask, sar_stack, tiny_aoi

TH = ThresholdSettings()
BASELINE_END = date(2025, 12, 6)


def _dates(start: str, n: int, every: int = 6) -> list[str]:
    return [str(d.date()) for d in pd.date_range(start, periods=n, freq=f"{every}D")]


def _two_orbits(  # type: ignore[no-untyped-def]
    aoi,
    *,
    vv: float = 0.5,
    drop_from: int | None = None,
    seed: int = 0,
    where: tuple[slice, slice] = (slice(10, 30), slice(10, 30)),
    factors: tuple[float, float] = (0.2, 0.4),  # lost double bounce: VV -7 dB, VH -4 dB
    dates: list[str] | None = None,
) -> xr.Dataset:
    dates = dates or _dates("2025-09-10", 17)  # 15 baseline + 2 after 6 Dec
    stacks = []
    for k, (orbit, direction, hour) in enumerate(((26, "ascending", 11), (91, "descending", 23))):
        ds = sar_stack(aoi, dates, vv=vv, vh=vv / 5, seed=seed + k, orbit=orbit, direction=direction)
        ds = ds.assign_coords(time=ds["time"] + pd.Timedelta(hours=hour - 11, days=3 * k))
        if drop_from is not None:
            post = np.flatnonzero(ds["time"].values.astype("datetime64[D]") > np.datetime64(BASELINE_END))
            for t in post[drop_from:]:
                ds["VV"].values[(t, *where)] *= factors[0]
                ds["VH"].values[(t, *where)] *= factors[1]
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


@pytest.mark.parametrize("use_dask", [False, True])
def test_a_small_target_is_kept_and_not_spread(use_dask: bool) -> None:
    # A 5 x 5 px (0.25 ha) building: the finest scale stays, and the smoothing scales do not widen it, since
    # every flagged pixel must show the change itself.
    aoi = tiny_aoi()
    ds = _two_orbits(aoi, drop_from=0, where=(slice(30, 35), slice(30, 35)))
    d = detect_sar_change(maybe_dask(ds, use_dask), baseline_end=BASELINE_END, thresholds=TH)
    mask = d.mask.values
    assert mask[31:34, 31:34].all()
    assert mask[30:35, 30:35].mean() >= 0.8
    halo = np.ones_like(mask)
    halo[29:36, 29:36] = False  # one pixel around the target: the 3 x 3 multilook reaches that far
    assert not mask[halo].any()


@pytest.mark.parametrize("use_dask", [False, True])
def test_smoothing_scales_find_a_weak_extended_change(use_dask: bool) -> None:
    # -2.5 dB over 24 x 24 px in one scene per orbit: too weak for most single pixels after Bonferroni, but
    # the region's evidence adds up at 50-150 m.
    aoi = tiny_aoi()
    ds = maybe_dask(
        _two_orbits(aoi, drop_from=1, where=(slice(8, 32), slice(8, 32)), factors=(0.56, 0.56)), use_dask
    )
    scaled = detect_sar_change(ds, baseline_end=BASELINE_END, thresholds=TH)
    pixel_only = detect_sar_change(
        ds, baseline_end=BASELINE_END, thresholds=ThresholdSettings(sar_scales_m=())
    )
    region = (slice(10, 30), slice(10, 30))
    assert scaled.mask.values[region].mean() > 0.6
    assert pixel_only.mask.values[region].mean() < 0.2
    assert scaled.mask.values[40:, 40:].sum() == 0


def test_box_sides_match_pwtt_disks() -> None:
    # Boxes with the area of 50/100/150 m disks at 10 m: 9, 17 and 27 px across.
    assert box_sides((50, 100, 150), 10.0) == (9, 17, 27)


@pytest.mark.parametrize("use_dask", [False, True])
def test_fdr_mask_is_benjamini_hochberg(use_dask: bool) -> None:
    rng = np.random.default_rng(7)
    p = rng.uniform(size=(60, 50))
    p[:6, :10] = rng.uniform(0, 1e-4, size=(6, 10))  # 60 changed pixels among 3,000
    p[50:, :] = np.nan  # not tested: not counted among the hypotheses
    tested = np.isfinite(p)
    for q in (0.01, 0.05, 0.2):
        expected = np.zeros(p.shape, bool)
        expected[tested] = stats.false_discovery_control(p[tested], method="bh") <= q
        da = xr.DataArray(p, dims=("y", "x"))
        got = fdr_mask(da.chunk({"y": 16, "x": 16}) if use_dask else da, q).values
        assert (got == expected).all(), q
        assert expected.sum() >= 50


def test_fdr_mask_rejects_nothing_without_signal() -> None:
    p = xr.DataArray(np.random.default_rng(3).uniform(size=(40, 40)), dims=("y", "x"))
    assert not fdr_mask(p, 0.01).values.any()
    assert not fdr_mask(p * np.nan, 0.01).values.any()


def test_fdr_mask_beyond_its_candidates_is_conservative(monkeypatch: pytest.MonkeyPatch) -> None:
    # More p <= q than it keeps: the cut from the smallest ones rejects a subset of BH's.
    rng = np.random.default_rng(11)
    p = rng.uniform(size=(40, 40))
    p[:20] = rng.uniform(0, 0.01, size=(20, 40))
    exact = stats.false_discovery_control(p.ravel(), method="bh").reshape(p.shape) <= 0.05
    monkeypatch.setattr(sar_module, "FDR_CANDIDATES", 100)
    capped = fdr_mask(xr.DataArray(p, dims=("y", "x")), 0.05).values
    assert capped.sum() > 0
    assert not (capped & ~exact).any()


def _rice_year(aoi, *, crater: tuple[slice, slice] | None = None):  # type: ignore[no-untyped-def]
    """Two orbits every 6 days from Nov 2024 to 22 Dec 2025 over a field whose backscatter drops 5 dB each
    November-January (flooding and stubble), with cropland in a 24 x 24 px block; optional crater roughening
    (+3 dB) of the field in the after window."""
    dates = [str(d.date()) for d in pd.date_range("2024-11-01", "2025-12-22", freq="6D")]
    ds = _two_orbits(aoi, vv=0.1, dates=dates, seed=21)
    field = (slice(8, 32), slice(8, 32))
    t = pd.DatetimeIndex(ds["time"].values)
    low = np.isin(t.month, (11, 12, 1))
    for pol in ("VV", "VH"):
        ds[pol].values[(low, *field)] *= 10 ** (-5 / 10)
        if crater is not None:
            after = ds["time"].values.astype("datetime64[D]") > np.datetime64(BASELINE_END)
            ds[pol].values[(after, *crater)] *= 10 ** (3 / 10)
    lc = xr.DataArray(np.full(aoi.shape, 30, "uint8"), dims=("y", "x"), coords={"y": ds.y, "x": ds.x})
    lc.values[field] = LC_CROP
    return ds, lc


@pytest.mark.parametrize("use_dask", [False, True])
def test_seasonal_baseline_ignores_the_rice_cycle(use_dask: bool) -> None:
    aoi = tiny_aoi()
    ds, lc = _rice_year(aoi)
    ds = maybe_dask(ds, use_dask)
    baseline_start = date(2024, 12, 7)  # 12 months before the after window
    season = season_window((date(2025, 12, 7), date(2025, 12, 22)), 21)
    field = (slice(10, 30), slice(10, 30))
    plain = detect_sar_change(
        ds, baseline_end=BASELINE_END, baseline_start=baseline_start, thresholds=TH, landcover=lc
    )
    # Against the whole year the December low is change...
    assert plain.mask.values[field].mean() > 0.5
    seasonal = detect_sar_change(
        ds,
        baseline_end=BASELINE_END,
        baseline_start=baseline_start,
        season=season,
        thresholds=TH,
        landcover=lc,
    )
    # ... against last December it is not.
    assert seasonal.mask.values.sum() == 0
    assert not seasonal.extra["seasonal"].values.any()
    # Which cropland was measured against its season: all of it here, none without a season.
    crop = lc.values == LC_CROP
    assert (np.asarray(seasonal.extra["season_baseline"].values) == crop).all()
    assert not np.asarray(plain.extra["season_baseline"].values).any()


@pytest.mark.parametrize("use_dask", [False, True])
def test_seasonal_layer_flags_roughening_unusual_for_the_season(use_dask: bool) -> None:
    aoi = tiny_aoi()
    crater = (slice(12, 24), slice(12, 24))
    ds, lc = _rice_year(aoi, crater=crater)
    d = detect_sar_change(
        maybe_dask(ds, use_dask),
        baseline_end=BASELINE_END,
        baseline_start=date(2024, 12, 7),
        season=season_window((date(2025, 12, 7), date(2025, 12, 22)), 21),
        thresholds=TH,
        landcover=lc,
    )
    seasonal = d.extra["seasonal"].values
    assert seasonal[13:23, 13:23].mean() > 0.8
    assert float(np.median(d.score.values[13:23, 13:23])) > 2.0  # the signed dB change: VV up
    rest = np.ones(aoi.shape, bool)
    rest[11:25, 11:25] = False
    assert not seasonal[rest].any()
    # On cropland only what is unusual for the season may corroborate an optical alert.
    support = d.extra["support"].values
    crop = lc.values == LC_CROP
    assert (support[crop] == seasonal[crop]).all() and support[13:23, 13:23].mean() > 0.8


def test_seasonal_baseline_too_thin_leaves_cropland_untested() -> None:
    aoi = tiny_aoi()
    ds, lc = _rice_year(aoi)
    # A 3-day window a year back holds at most one scene per orbit: cropland is not tested at all.
    d = detect_sar_change(
        ds,
        baseline_end=BASELINE_END,
        baseline_start=date(2024, 12, 7),
        season=(date(2024, 12, 8), date(2024, 12, 10)),
        thresholds=TH,
        landcover=lc,
    )
    crop = lc.values == LC_CROP
    assert (d.p_value.values[crop] == 1).all()
    assert not d.mask.values[crop].any()
    assert not d.extra["season_baseline"].values.any()


@pytest.mark.parametrize("use_dask", [False, True])
def test_layover_and_shadow_are_never_tested(use_dask: bool) -> None:
    # Inside a changed block, a patch the radar cannot see (valid = False in every scene) stays unflagged:
    # neither its own test nor its neighbours' smoothed evidence speaks for it.
    aoi = tiny_aoi()
    ds = _two_orbits(aoi, drop_from=0)
    ds["valid"].values[:, 14:20, 14:20] = False
    d = detect_sar_change(maybe_dask(ds, use_dask), baseline_end=BASELINE_END, thresholds=TH)
    assert not d.mask.values[15:19, 15:19].any()
    assert (d.p_value.values[15:19, 15:19] == 1).all()
    assert d.mask.values[22:28, 22:28].all()


def _no_compute(*args, **kwargs):  # type: ignore[no-untyped-def]
    raise AssertionError("computed before the pipeline's one compute")


def test_numpy_and_dask_agree_and_dask_stays_lazy() -> None:
    aoi = tiny_aoi()
    ds, lc = _rice_year(aoi, crater=(slice(12, 24), slice(12, 24)))
    ds["VV"].values[-4:, 40:50, 40:50] *= 0.2  # and a collapse off the field
    kw = {
        "baseline_end": BASELINE_END,
        "baseline_start": date(2024, 12, 7),
        "season": season_window((date(2025, 12, 7), date(2025, 12, 22)), 21),
        "thresholds": TH,
    }
    eager = detect_sar_change(ds, landcover=lc, **kw)
    # Sources hand over per-scene metadata (orbits, ids) as numpy; only the pixels are lazy.
    per_scene = ("scene_id", "platform", "orbit_direction", "relative_orbit")
    lazy_ds = maybe_dask(ds, True).assign_coords({k: ds[k] for k in per_scene})
    with dask.config.set(scheduler=_no_compute):
        lazy = detect_sar_change(lazy_ds, landcover=lc.chunk(32), **kw)
    for name, layer in lazy.layers().items():
        assert layer.chunks is not None, name
    (computed,) = dask.compute({k: v.data for k, v in lazy.layers().items()})
    flagged = eager.mask.values
    for name, expected in eager.layers().items():
        if name.endswith("p_value"):
            np.testing.assert_allclose(computed[name], expected.values, rtol=1e-2, atol=1e-6, err_msg=name)
        elif name.endswith("score"):
            # Sums in another order round float32 otherwise (and shift the spread estimate by a bin at most);
            # where two tests tie (unchanged pixels) either may give the score.
            got, want = computed[name][flagged], expected.values[flagged]
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=name)
        else:
            np.testing.assert_array_equal(computed[name], expected.values, err_msg=name)
    assert eager.mask.values[41:49, 41:49].all()


@pytest.mark.parametrize("use_dask", [False, True])
def test_to_db_does_not_multilook_twice(use_dask: bool) -> None:
    ds = sar_stack(tiny_aoi(), _dates("2025-11-01", 4))
    ds["valid"].values[:, 10:14, :] = False  # a layover band
    raw = maybe_dask(ds, use_dask)
    db = to_db(raw).compute()
    # The same scenes multilooked as a source does it while reading (no margin beyond the area here).
    looked = ds.copy(deep=True)
    for t in range(ds.sizes["time"]):
        tile = multilook_tile({k: ds[k].values[t] for k in ("VV", "VH", "valid")}, radius=MULTILOOK_PX)
        for pol in ("VV", "VH"):
            looked[pol].values[t] = tile[pol]
    looked.attrs["multilook_px"] = MULTILOOK_PX
    again = to_db(maybe_dask(looked, use_dask)).compute()
    xr.testing.assert_allclose(again, db, rtol=1e-6)
    with pytest.raises(ValueError, match="multilooked over 1 px as read, not the 2 px"):
        to_db(looked, smooth_px=2)
