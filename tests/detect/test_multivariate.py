from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage, stats

from monitoring.detect.multivariate import (
    _segment_null_fit,
    _weight_shrink,
    change_mask,
    change_p_values,
    cva,
    detect_multivariate_change,
    green_mask,
    inflation_factor,
    irmad,
    local_texture,
    otsu_threshold,
    region_p_value,
    remove_small_regions,
    scaled_chi2_fit,
    segment_coherent_chi2,
    segment_mean_chi2,
    segment_means,
    shift_tolerant_chi2,
    size_stratified_inflation,
    water_mask,
    window_mean,
)
from monitoring.errors import DetectionError

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
SIZE = 96
PATCH = (slice(20, 32), slice(40, 52))  # 144 changed pixels, 1.6% of the scene
SEA = 32


def _scene(seed: int = 0, *, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Correlated Gaussian 'reflectances' (band, y, x) and the same scene seen again with sensor noise."""
    rng = np.random.default_rng(seed)
    p = len(BANDS)
    mix = rng.normal(size=(p, p))
    cov = mix @ mix.T / p + 0.2 * np.eye(p)
    mean = np.array([0.05, 0.08, 0.06, 0.30, 0.20, 0.10])  # vegetated land: NIR well above green (NDWI < 0)
    x = rng.multivariate_normal(mean, 0.002 * cov, size=size * size)
    noise = rng.normal(scale=0.01, size=x.shape)
    return x.T.reshape(p, size, size), (x + noise).T.reshape(p, size, size)


def _ds(arr: np.ndarray) -> xr.Dataset:
    return xr.Dataset({b: (("y", "x"), arr[i].astype("float32")) for i, b in enumerate(BANDS)})


def _maybe_dask(ds: xr.Dataset, use_dask: bool) -> xr.Dataset:
    return ds.chunk({"y": 32, "x": 40}) if use_dask else ds


def _pair(seed: int = 0, *, sea: bool = False) -> tuple[xr.Dataset, xr.Dataset, np.ndarray]:
    """Before, after = a global linear radiometric change of before (+ noise), with one changed patch.

    With `sea`, the left third is calm water: dark, nearly uniform, NDWI > 0 on both dates.
    """
    before, after = _scene(seed)
    p = len(BANDS)
    if sea:
        rng = np.random.default_rng(seed + 200)
        level = np.array([0.08 if b in ("B02", "B03") else 0.01 for b in BANDS])[:, None, None]
        before[:, :, :SEA] = level + rng.normal(scale=1e-4, size=(p, SIZE, SEA))
        after[:, :, :SEA] = level + rng.normal(scale=1e-4, size=(p, SIZE, SEA))
    rng = np.random.default_rng(seed + 100)
    gain = np.diag(rng.uniform(0.6, 1.5, p)) + 0.1 * rng.normal(size=(p, p))  # gains plus band mixing
    offset = rng.uniform(-0.05, 0.05, p)
    if sea:  # a milder change that keeps the water dark in NIR (NDWI > 0) on the second date too
        gain, offset = np.diag(rng.uniform(0.8, 1.2, p)), rng.uniform(-0.005, 0.005, p)
    after = np.einsum("ij,jyx->iyx", gain, after) + offset[:, None, None]
    truth = np.zeros((SIZE, SIZE), bool)
    truth[PATCH] = True
    after[:, truth] += rng.normal(0.0, 0.15, size=(p, 1))  # new material: one spectral shift for the patch
    return _ds(before), _ds(after), truth


@pytest.mark.parametrize("use_dask", [False, True])
def test_irmad_finds_injected_change_and_ignores_linear_radiometry(use_dask: bool) -> None:
    before, after, truth = _pair()
    out = detect_multivariate_change(_maybe_dask(before, use_dask), _maybe_dask(after, use_dask))
    mask = out.mask.values
    p = out.irmad.p_no_change.values
    assert out.irmad.converged
    assert np.median(p[truth]) < 1e-6
    assert mask[truth].mean() > 0.9  # recall
    assert (mask & ~truth).sum() <= 5  # the gain/offset/mixing everywhere else is not change
    assert out.irmad.rho[-1] > 0.95 and 0 < out.inflation < 1.3


@pytest.mark.parametrize("use_dask", [False, True])
def test_no_change_probabilities_are_uniform_for_unchanged_pixels(use_dask: bool) -> None:
    before, after, truth = _pair(seed=3)
    res = irmad(_maybe_dask(before, use_dask), _maybe_dask(after, use_dask))
    p = res.p_no_change.values[~truth]
    # The iteration keeps the no-change variance as its fixed point (see _weight_shrink): p ~ U(0, 1).
    assert abs(p.mean() - 0.5) < 0.03
    assert abs((p < 0.1).mean() - 0.1) < 0.02
    assert stats.kstest(p, "uniform").statistic < 0.04
    assert res.chi2.dtype == np.float32 and res.df == len(BANDS)


def test_textbook_weighting_without_the_variance_correction_piles_p_values_near_zero() -> None:
    # Why _weight_shrink exists: it is < 1 and matches a Monte Carlo of E[Z w] / (df E[w]) with w = sf(Z).
    rng = np.random.default_rng(0)
    for df in (1, 4, 6):
        z = stats.chi2.rvs(df, size=400_000, random_state=rng)
        w = stats.chi2.sf(z, df)
        assert _weight_shrink(df) == pytest.approx((z * w).sum() / w.sum() / df, rel=0.02)
    assert 0.6 < _weight_shrink(6) < 0.8


def test_numpy_and_dask_give_the_same_result() -> None:
    before, after, _ = _pair(seed=5)
    a = detect_multivariate_change(before, after)
    b = detect_multivariate_change(_maybe_dask(before, True), _maybe_dask(after, True))
    assert b.mask.chunks is not None  # lazy until asked
    np.testing.assert_allclose(a.irmad.rho, b.irmad.rho, rtol=1e-10)
    np.testing.assert_allclose(a.irmad.chi2.values, b.irmad.chi2.values, rtol=1e-5)
    assert a.inflation == pytest.approx(b.inflation, rel=1e-4)
    assert a.threshold == b.threshold and a.pixels == b.pixels == SIZE * SIZE
    np.testing.assert_array_equal(a.mask.values, b.mask.values)


@settings(max_examples=10, deadline=None)
@given(
    gains=st.lists(st.floats(0.2, 5.0), min_size=len(BANDS), max_size=len(BANDS)),
    offsets=st.lists(st.floats(-0.5, 0.5), min_size=len(BANDS), max_size=len(BANDS)),
)
def test_irmad_is_invariant_to_a_gain_and_offset_per_band(gains: list[float], offsets: list[float]) -> None:
    before, after, _ = _pair(seed=7)
    ref = irmad(before, after)
    moved = xr.Dataset(
        {b: after[b].astype("float64") * g + o for b, g, o in zip(BANDS, gains, offsets, strict=True)}
    )
    res = irmad(before, moved)
    np.testing.assert_allclose(res.rho, ref.rho, atol=1e-6)
    np.testing.assert_allclose(res.chi2.values, ref.chi2.values, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("use_dask", [False, True])
def test_cva_matches_a_hand_computation(use_dask: bool) -> None:
    before = xr.Dataset({"B04": (("y", "x"), [[0.1, 0.2]]), "B08": (("y", "x"), [[0.3, 0.3]])})
    after = xr.Dataset({"B04": (("y", "x"), [[0.4, 0.2]]), "B08": (("y", "x"), [[0.7, 0.3]])})
    got = cva(_maybe_dask(before, use_dask), _maybe_dask(after, use_dask), ("B04", "B08"))
    np.testing.assert_allclose(got.values, [[0.5, 0.0]], atol=1e-7)  # sqrt(0.3² + 0.4²) = 0.5


def test_mad_variates_have_unit_variance_and_sum_to_chi2() -> None:
    before, after, truth = _pair(seed=2)
    res = irmad(before, after)
    mad = res.mad(before, after).values
    np.testing.assert_allclose((mad**2).sum(axis=0), res.chi2.values, rtol=1e-3)
    np.testing.assert_allclose(mad[:, ~truth].std(axis=1), 1.0, atol=0.05)


def test_inflation_corrects_an_over_dispersed_statistic() -> None:
    rng = np.random.default_rng(1)
    z = xr.DataArray(3.0 * stats.chi2.rvs(6, size=(200, 200), random_state=rng), dims=("y", "x"))
    assert inflation_factor(z, 6) == pytest.approx(3.0, rel=0.03)
    assert inflation_factor(z.chunk(64), 6) == pytest.approx(inflation_factor(z, 6), rel=1e-4)
    assert inflation_factor(z / 10, 6) == 1.0  # never sharpens the test


@pytest.mark.parametrize("use_dask", [False, True])
def test_mapping_unit_drops_small_regions_across_chunks(use_dask: bool) -> None:
    m = np.zeros((60, 60), bool)
    m[5:8, 5:8] = True  # 9 px: dropped
    m[28:36, 28:36] = True  # 64 px straddling the chunk corner at (32, 32): kept
    m[50, 10:40] = True  # a 30 px line across a chunk edge: kept
    m[40, 40] = m[41, 41] = True  # diagonal neighbours are one (8-connected) region of 2: dropped
    da_ = xr.DataArray(m, dims=("y", "x"))
    if use_dask:
        da_ = da_.chunk(32)
    out = remove_small_regions(da_, 20).values
    expected = np.zeros_like(m)
    expected[28:36, 28:36] = True
    expected[50, 10:40] = True
    np.testing.assert_array_equal(out, expected)


def test_change_mask_without_inflation_is_the_plain_chi_square_test() -> None:
    before, after, truth = _pair(seed=4)
    res = irmad(before, after)
    out = change_mask(res, alpha=0.05, mmu_px=1, inflation=1.0)
    assert out.threshold == pytest.approx(stats.chi2.isf(0.05 / SIZE**2, len(BANDS)))
    np.testing.assert_array_equal(out.mask.values, res.chi2.values > out.threshold)
    np.testing.assert_allclose(out.p_value.values, res.p_no_change.values, rtol=1e-4, atol=1e-30)


def test_water_on_both_dates_is_left_out_of_the_fit() -> None:
    before, after, truth = _pair(seed=6, sea=True)
    land = np.zeros((SIZE, SIZE), bool)
    land[:, SEA:] = True
    out = detect_multivariate_change(before, after)
    assert out.mask.values[truth].mean() > 0.9
    assert out.mask.values[~truth].mean() < 0.01
    # Fitted on the sea too, IR-MAD takes the sea for the whole no-change population: its model no longer fits
    # the land, whose Z (and so the inflation) explodes, and the changed patch drowns.
    with_sea = detect_multivariate_change(before, after, exclude_water=False)
    assert np.median(with_sea.irmad.chi2.values[land]) > 100 * np.median(out.irmad.chi2.values[land])
    assert with_sea.mask.values[truth].mean() < 0.5


def test_otsu_splits_two_modes() -> None:
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0, 1, 5000), rng.normal(10, 1, 5000)])
    arr = xr.DataArray(v.reshape(100, 100), dims=("y", "x"))
    assert 3 < otsu_threshold(arr) < 7
    assert otsu_threshold(arr.chunk(50)) == pytest.approx(otsu_threshold(arr), abs=0.1)


def test_missing_band_and_mismatched_grids_raise_with_the_fix() -> None:
    before, after, _ = _pair()
    with pytest.raises(DetectionError, match=r"Bands \['B05'\] are missing.*pass bands="):
        irmad(before, after, ("B04", "B05"))
    with pytest.raises(DetectionError, match="different grids: align"):
        irmad(before, after.isel(x=slice(0, 90)))
    const = before.copy()
    const["B04"] = const["B04"] * 0 + 0.1
    with pytest.raises(DetectionError, match="singular"):
        irmad(const, after)


@pytest.mark.parametrize("use_dask", [False, True])
def test_masked_cloud_is_left_out_of_the_fit_and_never_flagged(use_dask: bool) -> None:
    before, after, truth = _pair()
    cloud = np.zeros((SIZE, SIZE), bool)
    cloud[60:90, 10:70] = True  # a bright cloud over a fifth of the after image
    for b in BANDS:
        after[b].values[cloud] = 0.45
    clear = xr.DataArray(~cloud, dims=("y", "x"))
    blind = detect_multivariate_change(_maybe_dask(before, use_dask), _maybe_dask(after, use_dask))
    masked = detect_multivariate_change(
        _maybe_dask(before.where(clear), use_dask), _maybe_dask(after.where(clear), use_dask)
    )
    assert blind.mask.values[cloud].mean() > 0.9  # unmasked, the cloud is "change"
    assert not masked.mask.values[cloud].any() and np.isnan(masked.p_value.values[cloud]).all()
    assert masked.pixels == SIZE * SIZE - cloud.sum()  # the Bonferroni count is of observed pixels
    assert masked.mask.values[truth].mean() > 0.9 and (masked.mask.values & ~truth).sum() <= 5


# --- Variants of the rule: spatial statistics and the FDR correction -----------------------------------------

VARIANTS = [{"context": "shift"}, {"context": "window"}, {"correction": "fdr"}]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: next(iter(v.values())))
def test_variants_give_the_same_result_on_numpy_and_dask(variant: dict[str, str]) -> None:
    before, after, truth = _pair(seed=5)
    a = detect_multivariate_change(before, after, **variant)  # type: ignore[arg-type]
    b = detect_multivariate_change(_maybe_dask(before, True), _maybe_dask(after, True), **variant)  # type: ignore[arg-type]
    assert b.mask.chunks is not None and b.p_value.chunks is not None  # lazy until asked
    assert (a.context, a.correction) == (b.context, b.correction)
    assert a.inflation == pytest.approx(b.inflation, rel=1e-9) and a.dof == pytest.approx(b.dof, rel=1e-9)
    assert a.pixels == b.pixels == SIZE * SIZE
    np.testing.assert_allclose(a.p_value.values, b.p_value.values, rtol=1e-3, atol=1e-12)
    np.testing.assert_array_equal(a.mask.values, b.mask.values)
    # Every variant still finds the patch and flags next to nothing away from it (window: its 1 px ring).
    assert a.mask.values[truth].mean() > 0.9
    assert (a.mask.values & ~ndimage.binary_dilation(truth, iterations=1)).sum() <= 5


@pytest.mark.parametrize("use_dask", [False, True])
def test_shift_tolerant_chi2_forgives_a_one_pixel_misregistration(use_dask: bool) -> None:
    before, after, truth = _pair(seed=8)
    res = irmad(before, after)  # fitted on the registered pair
    moved = after.shift(x=1)  # the after image one pixel east: every pixel of this white-noise scene differs
    plain = res.chi2.values
    z_moved = (res.mad(before, moved).values.astype("float64") ** 2).sum(axis=0)  # the registered model
    tolerant = shift_tolerant_chi2(res, _maybe_dask(before, use_dask), _maybe_dask(moved, use_dask)).values
    inner = ~ndimage.binary_dilation(truth, iterations=2)
    inner[:, :2] = inner[:, -1] = False  # no after pixel in the first column, no match east of the last
    assert np.isnan(tolerant[:, 0]).all() and np.isfinite(tolerant[:, 1:]).all()
    # Its best match is the pixel it came from: no larger than the registered Z, both ways.
    assert (tolerant[inner] <= np.maximum(plain[inner], np.roll(plain, 1, axis=1)[inner]) + 1e-6).all()
    assert np.median(z_moved[inner]) > 20 * np.median(tolerant[inner])
    # Inside the 12 x 12 changed patch every neighbour has changed too: the change is not matched away.
    core = ndimage.binary_erosion(truth, iterations=2)
    assert np.median(tolerant[core]) > 0.5 * np.median(plain[core])


@pytest.mark.parametrize("use_dask", [False, True])
def test_window_mean_averages_observed_neighbours_and_cuts_at_the_edge(use_dask: bool) -> None:
    z = np.array([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0], [7.0, 8.0, 9.0]])
    arr = xr.DataArray(z, dims=("y", "x"))
    got = window_mean(arr.chunk(2) if use_dask else arr).values
    assert got[0, 0] == pytest.approx((1 + 2 + 4) / 3)  # the corner: three observed pixels in its window
    assert got[1, 2] == pytest.approx((2 + 3 + 6 + 8 + 9) / 5)  # the NaN neighbour does not count
    assert np.isnan(got[1, 1])  # an unobserved centre stays unobserved


@pytest.mark.parametrize("use_dask", [False, True])
def test_scaled_chi2_fit_recovers_scale_and_degrees_of_freedom(use_dask: bool) -> None:
    rng = np.random.default_rng(2)
    z = xr.DataArray(2.5 * stats.chi2.rvs(9, size=(300, 300), random_state=rng), dims=("y", "x"))
    scale, dof = scaled_chi2_fit(z.chunk(100) if use_dask else z)
    assert scale == pytest.approx(2.5, rel=0.05) and dof == pytest.approx(9, rel=0.05)
    # The mean of 9 independent chi2_6 is chi2_54 / 9: Satterthwaite exactly.
    mean9 = window_mean(xr.DataArray(stats.chi2.rvs(6, size=(300, 300), random_state=rng), dims=("y", "x")))
    interior = mean9.isel(y=slice(1, -1), x=slice(1, -1))
    scale, dof = scaled_chi2_fit(interior)
    assert dof == pytest.approx(54, rel=0.1) and scale == pytest.approx(1 / 9, rel=0.1)
    # A changed minority (5% of the pixels, far in the tail) moves the fit little: it is fitted on the bulk.
    z.values[:15] = 1e3
    scale, dof = scaled_chi2_fit(z)
    assert scale == pytest.approx(2.5, rel=0.15) and dof == pytest.approx(9, rel=0.15)


def test_fdr_is_benjamini_hochberg_and_contains_the_bonferroni_mask() -> None:
    before, after, _ = _pair(seed=9)
    res = irmad(before, after)
    fdr = change_mask(res, alpha=0.05, mmu_px=1, inflation=1.0, correction="fdr")
    bonf = change_mask(res, alpha=0.05, mmu_px=1, inflation=1.0)
    p = np.sort(stats.chi2.sf(res.chi2.values.astype("float64").ravel(), res.df))
    k = np.nonzero(p <= 0.05 * np.arange(1, p.size + 1) / p.size)[0].max() + 1  # hand-made BH
    assert fdr.mask.values.sum() == k
    assert fdr.mask.values.sum() >= bonf.mask.values.sum() and not (bonf.mask.values & ~fdr.mask.values).any()
    assert fdr.threshold <= bonf.threshold and fdr.correction == "fdr" and bonf.correction == "bonferroni"


def test_unknown_context_and_correction_name_the_choices() -> None:
    before, after, _ = _pair()
    with pytest.raises(
        DetectionError,
        match=r"Unknown context 'blur': choose one of \['pixel', 'shift', 'window', 'segment', 'coherent'\]",
    ):
        detect_multivariate_change(before, after, context="blur")  # type: ignore[arg-type]
    with pytest.raises(DetectionError, match=r"Unknown correction 'holm'"):
        detect_multivariate_change(before, after, correction="holm")  # type: ignore[arg-type]


# --- Texture variables and segment tests ----------------------------------------------------------------------


@pytest.mark.parametrize("use_dask", [False, True])
def test_local_texture_is_the_log_spread_of_observed_neighbours(use_dask: bool) -> None:
    checker = np.where(np.add.outer(np.arange(6), np.arange(6)) % 2 == 0, 0.2, 0.1)
    flat = np.full((6, 6), 0.3)
    flat[2, 2] = np.nan
    ds = xr.Dataset({"B04": (("y", "x"), checker), "B08": (("y", "x"), flat)})
    tex = local_texture(ds.chunk({"y": 4, "x": 3}) if use_dask else ds)
    # The 3 x 3 window of an interior pixel holds 5 of one value and 4 of the other: spread 0.05·sqrt(80)/9.
    assert tex["B04_texture"].values[3, 3] == pytest.approx(np.log10(0.05 * np.sqrt(80) / 9), abs=1e-6)
    assert tex["B04_texture"].values[0, 0] == pytest.approx(np.log10(0.05), abs=1e-6)  # 2 + 2
    # A uniform surface sits at the quantisation floor; an unobserved centre stays unobserved.
    assert np.nanmax(tex["B08_texture"].values) == pytest.approx(-4.0, abs=1e-6)
    assert np.isnan(tex["B08_texture"].values[2, 2]) and np.isfinite(tex["B08_texture"].values[2, 3])


@pytest.mark.parametrize("use_dask", [False, True])
def test_segments_follow_an_edge_of_either_date_and_average_within(use_dask: bool) -> None:
    rng = np.random.default_rng(3)
    bands = ("B02", "B03", "B04", "B08")
    before = xr.Dataset({b: (("y", "x"), 0.1 + 0.002 * rng.normal(size=(40, 40))) for b in bands})
    after = before.copy(deep=True)
    block = (slice(11, 23), slice(6, 17))  # a new building block, seen only in the after image
    for b in bands:
        after[b].values[block] += 0.08
    values = xr.DataArray(np.zeros((40, 40)), dims=("y", "x"))
    values.values[block] = 1.0
    if use_dask:
        before, after, values = before.chunk(16), after.chunk(16), values.chunk(16)
    means, sizes, seeds = segment_means(values.expand_dims("seg"), before, after)
    # No segment straddles the block's outline, so every segment mean is 0 or 1 exactly.
    np.testing.assert_array_equal(means.values[0], values.values)
    assert int(seeds.sum()) == 100  # one segment per seed of the 4 px grid

    np.testing.assert_allclose(
        np.bincount(np.ones(int(seeds.sum()), int), weights=sizes.values[seeds.values]), [0, 40**2]
    )  # the segments' sizes read at their seeds add up to the image


def test_coherent_segments_cancel_a_change_of_alternating_sign_that_the_mean_keeps() -> None:
    before, after = map(_ds, _scene(seed=11))  # nothing changed
    sign = np.where(np.add.outer(np.arange(SIZE), np.arange(SIZE)) % 2 == 0, 1.0, -1.0)
    jitter = after.copy(deep=True)
    for b in ("B11", "B12"):  # pixel by pixel up and down, nothing on average (and no edge to segment on)
        jitter[b].values[PATCH] += 0.05 * sign[PATCH]
    res = irmad(before, jitter)
    mean_z, sizes, _ = segment_mean_chi2(res, before, jitter, inflation=1.0)
    coherent, _, _ = segment_coherent_chi2(res, before, jitter)
    core = np.zeros((SIZE, SIZE), bool)
    core[24:28, 44:48] = True
    assert np.median(mean_z.values[core]) > 5 * res.df  # the mean of Z sees a strong change
    # Both are sums over the segment's n pixels; the up and down cancel in the mean vector (but for an odd
    # pixel out), and no more than a pixel's worth is left.
    total_z = (mean_z * sizes).values[core]
    assert np.median(coherent.values[core]) < 0.05 * np.median(total_z)


@pytest.mark.parametrize("context", ["segment", "coherent"])
def test_segment_variants_find_the_patch_with_one_test_per_segment(context: str) -> None:
    before, after, truth = _pair(seed=5)
    a = detect_multivariate_change(before, after, context=context)  # type: ignore[arg-type]
    b = detect_multivariate_change(_maybe_dask(before, True), _maybe_dask(after, True), context=context)  # type: ignore[arg-type]
    assert b.mask.chunks is not None and b.p_value.chunks is not None  # lazy until asked
    assert a.pixels == b.pixels == (SIZE // 4) ** 2 and a.context == context
    assert a.inflation == pytest.approx(b.inflation, rel=1e-9)
    np.testing.assert_array_equal(a.mask.values, b.mask.values)
    np.testing.assert_allclose(a.p_value.values, b.p_value.values, rtol=1e-6, atol=1e-300)
    assert a.mask.values[truth].all() and not (a.mask.values & ~truth).any()


@pytest.mark.parametrize("use_dask", [False, True])
def test_texture_variables_join_irmad_and_keep_the_patch(use_dask: bool) -> None:
    before, after, truth = _pair(seed=5)
    res = detect_multivariate_change(
        _maybe_dask(before, use_dask), _maybe_dask(after, use_dask), texture=("B04", "B08")
    )
    assert res.irmad.bands[-2:] == ("B04_texture", "B08_texture") and res.dof == len(BANDS) + 2
    assert res.mask.values[truth].mean() > 0.9
    # A new surface changes the spread only where a window straddles its outline: at most a 1 px ring more.
    ring = ndimage.binary_dilation(truth, structure=np.ones((3, 3), bool))
    assert not (res.mask.values & ~ring).any()


def _jittered_pair(seed: int) -> tuple[xr.Dataset, xr.Dataset, np.ndarray, np.ndarray]:
    """_pair plus a flicker: SWIR up and down pixel by pixel in a second patch, nothing on average."""
    before, after, truth = _pair(seed=seed)
    flicker = np.zeros((SIZE, SIZE), bool)
    flicker[60:76, 10:26] = True
    sign = np.where(np.add.outer(np.arange(SIZE), np.arange(SIZE)) % 2 == 0, 1.0, -1.0)
    for b in ("B11", "B12"):
        after[b].values[flicker] += 0.05 * sign[flicker]  # per pixel ~1.7x the Bonferroni level of Z
    return before, after, truth, flicker


@pytest.mark.parametrize("use_dask", [False, True])
def test_confirmation_drops_a_flicker_and_keeps_the_coherent_patch(use_dask: bool) -> None:
    before, after, truth, flicker = _jittered_pair(seed=5)
    b, a = _maybe_dask(before, use_dask), _maybe_dask(after, use_dask)
    pixel = detect_multivariate_change(b, a, confirm=False).mask.values
    rule = detect_multivariate_change(b, a)
    confirmed = rule.mask.values
    assert (
        rule.confirmed and not detect_multivariate_change(b, a, confirm=False).confirmed
    )  # the rule confirms
    assert pixel[flicker].mean() > 0.9 and pixel[truth].mean() > 0.9  # per pixel, the flicker is change
    # Segments do not see the flicker (it is in SWIR only), so some hold one sign more than the other and
    # keep a pixel's worth of it; most of it cancels.
    assert confirmed[flicker].mean() < 0.5 * pixel[flicker].mean() and confirmed[truth].mean() > 0.9
    assert not (confirmed & ~pixel).any()  # a confirmation only removes
    grown = detect_multivariate_change(b, a, confirm=True, grow=True).mask.values
    assert not (confirmed & ~grown).any() and grown[truth].all()


def test_green_on_both_dates_is_never_flagged() -> None:
    ds = xr.Dataset(
        {"B04": (("y", "x"), np.array([[0.03, 0.03, 0.10]])), "B08": (("y", "x"), [[0.30, 0.30, 0.12]])}
    )
    later = ds.copy(deep=True)
    later["B08"].values[0, 1] = 0.05  # cleared
    np.testing.assert_array_equal(green_mask(ds, later).values, [[True, False, False]])
    before, after, truth = _pair(seed=5)  # vegetated land: NDVI ~0.7 on both dates away from the patch
    res = detect_multivariate_change(before, after, exclude_green=True, confirm=False)
    assert not (res.mask & green_mask(before, after)).values.any()


@pytest.mark.parametrize("use_dask", [False, True])
def test_dry_never_flags_water_and_keeps_the_land_patch(use_dask: bool) -> None:
    before, after, truth = _pair(seed=5, sea=True)
    plume = np.zeros_like(truth)
    plume[4:20, 2 : SEA - 2] = True  # sediment: brighter in the visible, still dark in NIR (NDWI > 0)
    for b in ("B02", "B03", "B04"):
        after[b].values[plume] += 0.08
    b_, a_ = _maybe_dask(before, use_dask), _maybe_dask(after, use_dask)
    rule = detect_multivariate_change(b_, a_).mask.values
    dry = detect_multivariate_change(b_, a_, dry=True).mask.values
    water = water_mask(before, after).values
    assert water[plume].all() and rule[plume].mean() > 0.5  # the rule flags the plume as change
    assert not (dry & water).any() and dry[truth].mean() > 0.9  # dry does not; the land patch stays
    assert not (dry & ~rule).any()  # it only removes


@pytest.mark.parametrize("use_dask", [False, True])
def test_change_p_values_are_the_rules_per_pixel_p_and_small_only_on_change(use_dask: bool) -> None:
    before, after, truth = _pair(seed=4)
    b_, a_ = _maybe_dask(before, use_dask), _maybe_dask(after, use_dask)
    p = change_p_values(b_, a_).values
    test = detect_multivariate_change(before, after, confirm=False, mmu_px=1)
    np.testing.assert_allclose(p, test.p_value.values, rtol=1e-5, atol=1e-30)
    tested = np.isfinite(p).sum()
    assert region_p_value(p[truth], regions=tested / truth.sum()) < 1e-6  # the changed patch
    # A 0.2 ha block (14 x 14 px) of unchanged land is not significant.
    assert region_p_value(p[60:74, 10:24].ravel(), regions=tested / 196) > 0.05
    assert (p[~truth] < 0.05).mean() < 0.1 and ((p >= 0) & (p <= 1)).all()


def test_region_p_value_holds_its_level_under_the_null_even_when_pixels_are_dependent() -> None:
    rng = np.random.default_rng(0)
    iid = [region_p_value(rng.uniform(size=40), regions=1) for _ in range(4000)]
    assert np.mean(np.array(iid) < 0.05) <= 0.05
    # Perfectly dependent pixels (one draw shared by all): still at most the level.
    shared = [region_p_value(np.full(40, rng.uniform()), regions=1) for _ in range(4000)]
    assert np.mean(np.array(shared) < 0.05) <= 0.05
    # Smoothed (spatially correlated) uniforms, as neighbouring pixels are.
    smooth = []
    for _ in range(1000):
        z = ndimage.uniform_filter(rng.normal(size=(30, 30)), 5)
        smooth.append(region_p_value(stats.norm.sf(z / z.std()).ravel(), regions=1))
    assert np.mean(np.array(smooth) < 0.05) <= 0.05


def test_region_p_value_needs_a_share_of_changed_pixels_not_one_odd_pixel() -> None:
    rng = np.random.default_rng(1)
    p = rng.uniform(size=400)
    p[0] = 1e-12  # one odd pixel: a glint, a misregistered edge
    assert region_p_value(p, regions=10) > 0.05
    p[:40] = 1e-12  # a tenth of the region changed
    assert region_p_value(p, regions=10) < 1e-8
    # Bonferroni over the regions tested, capped at 1; NaN pixels ignored; nothing finite -> NaN.
    assert region_p_value(p, regions=1e6) == pytest.approx(min(1.0, 1e6 * region_p_value(p, regions=1)))
    assert region_p_value(np.r_[p, np.nan], regions=10) == region_p_value(p, regions=10)
    assert np.isnan(region_p_value(np.full(5, np.nan), regions=1))


@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=60), st.floats(1.0, 1e6))
@settings(max_examples=200, deadline=None)
def test_region_p_value_is_a_probability_no_smaller_than_the_smallest_pixel(
    ps: list[float], regions: float
) -> None:
    q = region_p_value(np.array(ps), regions=regions)
    assert 0.0 <= q <= 1.0 and q >= min(1.0, min(ps))


# --- Third round of OSCD variants: other segment nulls, segments-first gating -------------------------------


@pytest.mark.parametrize("null", ["calibrated", "equicorrelated", "stratified"])
def test_other_segment_nulls_keep_the_patch_only_remove_and_agree_on_dask(null: str) -> None:
    before, after, truth, flicker = _jittered_pair(seed=5)
    pixel = detect_multivariate_change(before, after, confirm=False).mask.values
    a = detect_multivariate_change(before, after, confirm_null=null)  # type: ignore[arg-type]
    b = detect_multivariate_change(_maybe_dask(before, True), _maybe_dask(after, True), confirm_null=null)  # type: ignore[arg-type]
    assert b.mask.chunks is not None  # lazy until asked
    np.testing.assert_array_equal(a.mask.values, b.mask.values)
    assert a.confirmed and a.mask.values[truth].all()
    assert not (a.mask.values & ~pixel).any()  # a confirmation only removes
    assert a.mask.values[flicker].mean() <= pixel[flicker].mean()


def test_unknown_segment_null_names_the_choices() -> None:
    before, after, _ = _pair(seed=5)
    with pytest.raises(DetectionError, match=r"Unknown segment null 'flat'.*'stratified'"):
        detect_multivariate_change(before, after, confirm_null="flat")  # type: ignore[arg-type]


@pytest.mark.parametrize("use_dask", [False, True])
def test_gating_tests_segments_first_and_finds_the_patch(use_dask: bool) -> None:
    before, after, truth, _ = _jittered_pair(seed=5)
    b, a = _maybe_dask(before, use_dask), _maybe_dask(after, use_dask)
    gated = detect_multivariate_change(b, a, gate=True)
    assert gated.confirmed and gated.mask.values[truth].all()
    # Only pixels of segments that pass the coherent test over all segments can be flagged.
    stat, _, seeds = segment_coherent_chi2(gated.irmad, b, a)
    per_seg = stat.where(seeds).values
    per_seg = per_seg[np.isfinite(per_seg)]
    lam = max(1.0, np.median(per_seg) / stats.chi2.median(len(BANDS)))
    gate = (stat / lam).values > stats.chi2.isf(0.05 / per_seg.size, len(BANDS))
    assert not (gated.mask.values & ~gate).any()
    with pytest.raises(DetectionError, match="gate=True"):
        detect_multivariate_change(b, a, gate=True, context="shift")


def test_size_stratified_inflation_takes_the_median_per_size_decile() -> None:
    rng = np.random.default_rng(3)
    n = rng.integers(4, 40, size=20_000).astype("float64")
    deff = 1.0 + 0.2 * (n - 1.0)  # a design effect growing with the segment size
    t = deff * rng.chisquare(6, size=n.size)
    lam_of = size_stratified_inflation(t, n, 6)
    scaled = t / lam_of(n)
    for lo, hi in ((4, 10), (15, 25), (30, 40)):
        sel = (n >= lo) & (n < hi)
        assert np.median(scaled[sel]) == pytest.approx(stats.chi2.median(6), rel=0.1)
    assert np.isnan(lam_of(np.array([np.nan])))[0] and lam_of(np.array([1.0]))[0] >= 1.0


@pytest.mark.parametrize("pixel", [False, True])
def test_segment_null_fit_recovers_an_equicorrelated_covariance(pixel: bool) -> None:
    """Gaussian segment means with covariance B + W/n (or B + (lam I - B)/n): the fit recovers it, changed
    segments included, and the unchanged segments' statistic is chi2_df."""
    rng = np.random.default_rng(4)
    df, lam = 3, 2.0
    n = rng.integers(4, 30, size=30_000).astype("float64")
    mix = rng.normal(size=(df, df))
    between = 0.3 * mix @ mix.T / df
    within = lam * np.eye(df) - between if pixel else np.diag([1.0, 2.0, 0.5])
    cov = between[None] + within[None] / n[:, None, None]
    m = np.einsum("sij,sj->si", np.linalg.cholesky(cov), rng.normal(size=(n.size, df)))
    changed = rng.random(n.size) < 0.03
    m[changed] += 3.0
    q = None
    if not pixel:  # segment means of x x^T from n pixels scattered by `within` about m
        scatter = np.stack([stats.wishart.rvs(int(k) - 1, within, random_state=rng) for k in n[:2000]])
        n, m, changed = n[:2000], m[:2000], changed[:2000]
        q = scatter / n[:, None, None] + m[:, :, None] * m[:, None, :]
    vecs, beta = _segment_null_fit(m, q, n, pixel_var=lam if pixel else None)
    y = m @ vecs
    t = np.sum(y**2 / (beta[None, :] + 1.0 / n[:, None]), axis=1)
    assert np.median(t[~changed]) == pytest.approx(stats.chi2.median(df), rel=0.1)
    assert np.median(t[changed]) > 5 * stats.chi2.median(df)
