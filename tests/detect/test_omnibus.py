from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from monitoring.detect.omnibus import omnibus_change_points, omnibus_for_orbits
from monitoring.errors import DetectionError
from tests.synthetic import maybe_dask, sar_stack, tiny_aoi

UP = 10**0.3  # +3 dB
ENL_3X3 = 40.0  # the most a 3x3 boxcar of ENL 4.4 can give (uncorrelated neighbours)


def _dates(n: int, start: str = "2025-09-01", every: int = 12) -> list[str]:
    return [str(d.date()) for d in pd.date_range(start, periods=n, freq=f"{every}D")]


def _stack(n_dates: int, size_px: int, *, enl: float, seed: int = 0, orbit: int = 26) -> xr.Dataset:
    return sar_stack(tiny_aoi(size_px), _dates(n_dates), enl=enl, seed=seed, orbit=orbit)


def _scale(ds: xr.Dataset, t: slice | tuple[slice, ...], factor: float) -> None:
    for pol in ("VV", "VH"):
        ds[pol].values[t] *= factor


def _binomial_ok(hits: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    return abs(hits - n * p) <= sigmas * np.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("use_dask", [False, True])
def test_false_change_rate_of_the_omnibus_test_is_alpha(use_dask: bool) -> None:
    # Raw GRD looks, where Box's rho and omega2 corrections matter most: without them, or with the full-pol
    # degrees of freedom, the rate at alpha = 0.01 lands ~9 binomial sigmas away.
    ds = _stack(12, 200, enl=4.4, seed=11)
    out = omnibus_change_points(maybe_dask(ds, use_dask, chunk=100), enl=4.4, alpha=0.01).compute()
    p = out["p_omnibus"].values.ravel()
    assert _binomial_ok(int((p < 0.01).sum()), p.size, 0.01)
    assert _binomial_ok(int((p < 0.05).sum()), p.size, 0.05)
    # A change point needs Q to reject first, so false changes are rarer still.
    assert (out["n_changes"].values > 0).mean() <= 0.01 + 4 * np.sqrt(0.01 * 0.99 / p.size)
    assert (out["n_valid"].values == 12).all()


@pytest.mark.parametrize("ratio", [1.3, 2.0, 3.0, 5.0, 0.1])
def test_two_image_pvalue_matches_the_exact_f_test(ratio: float) -> None:
    # One polarisation, two images: X2 / X1 is F(2n, 2n) under no change, two-sided by symmetry.
    enl = 4.4
    ds = xr.Dataset({"VV": (("time", "y", "x"), np.array([1.0, ratio]).reshape(2, 1, 1))})
    out = omnibus_change_points(ds, enl=enl, pols=("VV",))
    exact = 2 * stats.f.sf(max(ratio, 1 / ratio), 2 * enl, 2 * enl)
    assert float(out["p_omnibus"].values[0, 0]) == pytest.approx(exact, rel=2e-3)


@pytest.mark.parametrize("j", [3, 6, 12])
@pytest.mark.parametrize("t", [0.2, 0.5, 2.0, 4.0])
def test_rj_pvalue_matches_the_exact_f_test(j: int, t: float) -> None:
    # j - 1 equal images, then one t times as bright: R_2..R_{j-1} are 1, and R_j's exact test is
    # t ~ F(2n, 2n(j-1)), rejecting where the likelihood ratio ln t - j ln(j - 1 + t) is at most that of the
    # observed t. A last, 1000 times brighter image makes Q reject without touching R_2..R_j.
    enl = 4.4
    series = np.ones(j + 1)
    series[j - 1] = t
    series[j] = 1000.0
    ds = xr.Dataset({"VV": (("time", "y", "x"), series.reshape(j + 1, 1, 1))})
    # alpha near 1 so that Q lets R_j speak even for the mildest ratios.
    out = omnibus_change_points(ds, enl=enl, alpha=0.99, pols=("VV",))

    def g(s: float) -> float:
        return float(np.log(s) - j * np.log(j - 1 + s))

    other = optimize.brentq(lambda s: g(s) - g(t), *((1 + 1e-12, 1e6) if t < 1 else (1e-9, 1 - 1e-12)))
    lo, hi = sorted((t, other))
    f_dist = stats.f(2 * enl, 2 * enl * (j - 1))
    exact = f_dist.cdf(lo) + f_dist.sf(hi)
    assert int(out["first"].values[0, 0]) == j - 1
    assert float(out["p_first"].values[0, 0]) == pytest.approx(exact, rel=2e-3)
    assert int(out["direction"].values[0, 0]) == (1 if t > 1 else -1)


@pytest.mark.parametrize("use_dask", [False, True])
@pytest.mark.parametrize("factor", [UP, 1 / UP])
def test_a_step_change_is_dated_at_the_first_image_after_it(use_dask: bool, factor: float) -> None:
    ds = _stack(12, 40, enl=ENL_3X3, seed=1)
    _scale(ds, slice(6, None), factor)
    out = omnibus_change_points(maybe_dask(ds, use_dask, chunk=16), enl=ENL_3X3).compute()
    first = out["first"].values
    assert (first == 6).mean() > 0.9
    assert (out["n_changes"].values == 1).mean() > 0.9
    assert (out["direction"].values[first == 6] == (1 if factor > 1 else -1)).all()
    assert (out["p_first"].values[first == 6] < 0.01).all()
    # The misses are false changes before the step: each R_j before it is a test at alpha.
    assert ((first >= 0) & (first < 6)).mean() < 0.08
    assert (first == -1).sum() == 0


@pytest.mark.parametrize("use_dask", [False, True])
def test_up_then_down_gives_two_dated_changes(use_dask: bool) -> None:
    ds = _stack(12, 40, enl=ENL_3X3, seed=2)
    _scale(ds, slice(4, 9), UP)
    out = omnibus_change_points(maybe_dask(ds, use_dask, chunk=16), enl=ENL_3X3).compute()
    both = (out["first"].values == 4) & (out["last"].values == 9)
    assert both.mean() > 0.9
    assert (out["n_changes"].values == 2).mean() > 0.9
    assert (out["direction"].values[both] == 1).all()
    assert (out["direction_last"].values[both] == -1).all()


def _messy(seed: int = 3) -> xr.Dataset:
    """Unchanged, stepped and gapped pixels together, so that every branch runs."""
    ds = _stack(10, 24, enl=10.0, seed=seed)
    _scale(ds, (slice(5, None), slice(0, 12)), UP**2)
    ds["VV"].values[2, 6:18, 6:18] = np.nan
    ds["VH"].values[0:9, 20:, 20:] = np.nan  # one valid date left
    ds["valid"].values[7, :4, :] = False
    return ds


def test_numpy_and_dask_give_identical_results() -> None:
    ds = _messy()
    eager = omnibus_change_points(ds, enl=10.0)
    lazy = omnibus_change_points(maybe_dask(ds, True, chunk=7), enl=10.0)
    assert lazy["first"].chunks is not None
    xr.testing.assert_identical(eager, lazy.compute())


@pytest.mark.parametrize("use_dask", [False, True])
def test_a_gap_is_skipped_and_dates_stay_indices_of_the_full_series(use_dask: bool) -> None:
    ds = _stack(12, 16, enl=ENL_3X3, seed=4)
    _scale(ds, slice(6, None), UP)
    gapped = ds.copy(deep=True)
    gapped["VV"].values[3] = np.nan  # a NaN in one polarisation invalidates the date
    gapped["VH"].values[6, :8] = -1.0  # so does a non-positive intensity
    gapped["valid"].values[8, 8:] = False
    out = omnibus_change_points(maybe_dask(gapped, use_dask, chunk=8), enl=ENL_3X3).compute()

    for rows, dropped in ((slice(0, 8), [3, 6]), (slice(8, 16), [3, 8])):
        kept = np.delete(np.arange(12), dropped)
        ref = omnibus_change_points(ds.isel(time=kept, y=rows), enl=ENL_3X3)
        got = out.isel(y=rows)
        for name in ("first", "last"):
            mapped = np.where(ref[name].values >= 0, kept[np.maximum(ref[name].values, 0)], -1)
            np.testing.assert_array_equal(got[name].values, mapped)
        for name in ("n_changes", "p_first", "direction", "p_omnibus"):
            np.testing.assert_array_equal(got[name].values, ref[name].values)
        assert (got["n_valid"].values == 10).all()
    # Where the first image after the step is missing, the change is dated at the next valid one.
    assert (out["first"].values[:8] == 7).mean() > 0.9


def test_pixels_with_fewer_than_two_valid_dates_are_not_tested() -> None:
    ds = _stack(6, 12, enl=4.4)
    ds["VV"].values[:, 0, :] = np.nan
    ds["VV"].values[1:, 1, :] = np.nan
    out = omnibus_change_points(ds, enl=4.4)
    nx = ds.sizes["x"]
    assert out["n_valid"].values[:2].tolist() == [[0] * nx, [1] * nx]
    assert np.isnan(out["p_omnibus"].values[:2]).all()
    assert (out["first"].values[:2] == -1).all() and (out["n_changes"].values[:2] == 0).all()
    assert np.isfinite(out["p_omnibus"].values[2:]).all()


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    scale=st.floats(1e-3, 1e3),
    step_at=st.integers(1, 9),
    step_db=st.floats(-6.0, 6.0),
)
def test_invariant_to_a_common_scale_and_to_the_order_of_polarisations(
    seed: int, scale: float, step_at: int, step_db: float
) -> None:
    ds = _stack(10, 12, enl=20.0, seed=seed)
    ds = ds.assign(VV=ds["VV"].astype("float64"), VH=ds["VH"].astype("float64"))
    _scale(ds, slice(step_at, None), 10 ** (step_db / 10))
    base = omnibus_change_points(ds, enl=20.0)
    scaled = ds.copy(deep=True)
    _scale(scaled, slice(None), scale)
    for other in (
        omnibus_change_points(scaled, enl=20.0),
        omnibus_change_points(ds, enl=20.0, pols=("VH", "VV")),
    ):
        for name in ("first", "last", "n_changes", "direction", "direction_last", "n_valid"):
            np.testing.assert_array_equal(other[name].values, base[name].values)
        for name in ("p_first", "p_omnibus"):
            np.testing.assert_allclose(other[name].values, base[name].values, rtol=1e-6, atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), perm_seed=st.integers(0, 2**16))
def test_the_omnibus_pvalue_ignores_the_order_of_the_dates(seed: int, perm_seed: int) -> None:
    ds = _stack(8, 12, enl=10.0, seed=seed)
    _scale(ds, slice(5, None), UP)
    perm = np.random.default_rng(perm_seed).permutation(8)
    a = omnibus_change_points(ds, enl=10.0)["p_omnibus"].values
    b = omnibus_change_points(ds.isel(time=perm), enl=10.0)["p_omnibus"].values
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12)


DATES_26 = _dates(12)
DATES_91 = _dates(12, start="2025-09-04")


def _two_orbits(size_px: int = 16) -> xr.Dataset:
    """Orbit 26 sees a +3 dB step from its 7th scene, orbit 91 (3 days later each time) from its 6th."""
    a = sar_stack(tiny_aoi(size_px), DATES_26, enl=ENL_3X3, seed=5, orbit=26)
    b = sar_stack(tiny_aoi(size_px), DATES_91, enl=ENL_3X3, seed=6, orbit=91)
    b = b.assign_coords(orbit_direction=("time", ["descending"] * 12))
    _scale(a, slice(6, None), UP)
    _scale(b, slice(5, None), UP)
    return xr.concat([a, b], dim="time").sortby("time")


@pytest.mark.parametrize("use_dask", [False, True])
def test_orbits_combine_into_the_earliest_first_and_latest_last_change(use_dask: bool) -> None:
    sar = _two_orbits()
    # A small alpha keeps false changes before the step (one chance in each R_j, in each orbit) rare.
    out = omnibus_for_orbits(maybe_dask(sar, use_dask, chunk=8), enl=ENL_3X3, alpha=0.001).compute()
    np.testing.assert_array_equal(out["time"].values, sar["time"].values)
    np.testing.assert_array_equal(out["scene_id"].values, sar["scene_id"].values)
    scene = list(sar["scene_id"].values)
    # Orbit 91's 6th scene comes before orbit 26's 7th.
    assert DATES_91[5] < DATES_26[6]
    earliest = scene.index(f"S1A_TEST_{DATES_91[5]}_91")
    latest = scene.index(f"S1A_TEST_{DATES_26[6]}_26")
    first = out["first"].values
    assert (first == earliest).mean() > 0.95
    assert int(out["relative_orbit"].values[earliest]) == 91
    hit = first == earliest
    assert (out["first_date"].values[hit] == np.datetime64(DATES_91[5], "ns")).all()
    assert (out["direction"].values[hit] == 1).all()
    assert (out["p_first"].values[hit] < 0.001).all()
    assert (out["last"].values == latest).mean() > 0.95
    assert (out["last_date"].values[out["last"].values == latest] == np.datetime64(DATES_26[6], "ns")).all()
    assert (out["n_orbits"].values == 2).mean() > 0.95
    assert (out["n_changes"].values == 1).mean() > 0.95
    assert np.isnat(out["first_date"].values[first < 0]).all()


def test_an_orbit_without_change_reports_none() -> None:
    sar = _two_orbits()
    for pol in ("VV", "VH"):
        sar[pol].values[:] = 0.05  # constant series: Q = 1 exactly
    out = omnibus_for_orbits(sar, enl=ENL_3X3)
    assert (out["first"].values == -1).all() and (out["n_orbits"].values == 0).all()
    assert np.isnat(out["last_date"].values).all()


def test_bad_arguments_say_what_to_pass() -> None:
    ds = _stack(4, 12, enl=4.4)
    with pytest.raises(DetectionError, match="ENL"):
        omnibus_change_points(ds, enl=0.5)
    with pytest.raises(DetectionError, match="alpha"):
        omnibus_change_points(ds, enl=4.4, alpha=1.5)
    with pytest.raises(DetectionError, match="HH"):
        omnibus_change_points(ds, enl=4.4, pols=("HH",))
    with pytest.raises(DetectionError, match="time_dim"):
        omnibus_change_points(ds, enl=4.4, time_dim="date")
    with pytest.raises(DetectionError, match="relative_orbit"):
        omnibus_for_orbits(ds.drop_vars("relative_orbit"), enl=4.4)


@pytest.mark.parametrize("use_dask", [False, True])
def test_date_sar_changes_dates_a_detection_at_the_step(use_dask: bool) -> None:
    from datetime import date

    from monitoring.detect.omnibus import date_sar_changes
    from monitoring.detect.result import Detection
    from monitoring.detect.sar import to_db

    dates = _dates(14, start="2025-09-01", every=6)  # baseline through 2025-10-25, post from 2025-10-31
    ds = sar_stack(tiny_aoi(48), dates, enl=4.4, seed=3)
    patch = (slice(None), slice(10, 22), slice(10, 22))
    post0 = 10  # 2025-10-31
    _scale(ds, (slice(post0 + 1, None), patch[1], patch[2]), 10**0.5)  # +5 dB from the second post scene
    ds = maybe_dask(ds, use_dask)
    baseline_end = date(2025, 10, 25)
    post_times = ds["time"].values[post0:]
    like = ds["VV"].isel(time=0, drop=True)
    mask = xr.zeros_like(like, dtype=bool)
    mask[10:22, 10:22] = True
    late = xr.full_like(like, 3, dtype="int32").where(mask, -1)  # a dating one scene too late on purpose
    det = Detection(
        method="s1-welch-t",
        sensor="sentinel-1",
        change_type=None,
        mask=mask,
        score=xr.zeros_like(like, dtype="float32"),
        count=xr.zeros_like(like, dtype="int16"),
        first=late,
        last=late,
        before=(late - 1).where(mask, -1),
        times=post_times,
    )
    out = date_sar_changes(det, ds, to_db(ds), baseline_end=baseline_end)
    first = np.asarray(out.first.values)
    before = np.asarray(out.before.values)
    assert (first[12:20, 12:20] == 1).mean() > 0.9  # the second post scene: 2025-11-06
    assert (before[12:20, 12:20] == 0).mean() > 0.9
    assert (first[~np.asarray(mask.values)] == -1).all()  # nothing dated where nothing was detected
    assert int(np.asarray(out.extra["change_points"].values)[15, 15]) >= 1
