"""Detect: unsupervised multispectral change between two dates — CVA, IR-MAD with a chi-square test."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import dask
import dask.array as da
import numpy as np
import scipy.linalg
import xarray as xr
from dask.delayed import delayed
from scipy import integrate, ndimage, optimize, stats

from monitoring.detect.sar import bh_threshold
from monitoring.errors import DetectionError

CHANGE_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08", "B11", "B12")
"""Bands for IR-MAD: the four 10 m bands (blue, green, red, NIR) and the two SWIR bands, which separate soil,
built surfaces and vegetation; the same as sources.base.OPTICAL_BANDS, which every source delivers, but fixed
here because the OSCD figures hold for this set. The red-edge bands add little beyond NIR, and the 60 m
atmospheric bands (B01, B09, B10) see haze and water vapour: on OSCD adding them lowered F1."""
ALPHA = 0.05
"""Family-wise false-alarm rate over all pixels of the scene (Bonferroni), before the mapping unit."""
MMU_PX = 20
"""Minimum mapping unit in pixels: 0.2 ha at 10 m, the project's alert MMU (ThresholdSettings.mmu_ha)."""
GREEN_NDVI = 0.5
"""NDVI (B08 - B04) / (B08 + B04) above this on both dates is dense vegetation: no building or road there."""
WATER_NDWI = 0.0
"""NDWI (B03 - B08) / (B03 + B08) above this on both dates is open water (McFeeters 1996)."""

Context = Literal["pixel", "shift", "window", "segment", "coherent"]
CONTEXTS: tuple[str, ...] = ("pixel", "shift", "window", "segment", "coherent")
"""The statistic tested: Z per pixel (the rule), Z tolerant to a misregistration of SHIFT_PX, Z averaged
over WINDOW_PX x WINDOW_PX pixels, Z averaged over a segment of the pair (`segment_mean_chi2`), or the
length of a segment's mean MAD vector (`segment_coherent_chi2`)."""
Correction = Literal["bonferroni", "fdr"]
SegmentNull = Literal["genomic", "calibrated", "equicorrelated", "stratified"]
SEGMENT_NULLS: tuple[str, ...] = ("genomic", "calibrated", "equicorrelated", "stratified")
"""The confirmation's no-change null: n |m|² over one genomic control (the rule), or m^T (B + W/n)^-1 m with
B and W measured on the image (`calibrated_segment_chi2`), or with W replaced by the per-pixel test's
lambda_Z I less B ("equicorrelated"), or n |m|² over a genomic control per segment-size decile
("stratified", `size_stratified_inflation`)."""
SIZE_STRATA = 10
"""Quantile bins of the segment size for null="stratified": deciles, fixed before the OSCD run."""
CORRECTIONS: tuple[str, ...] = ("bonferroni", "fdr")
SHIFT_PX = 1
"""Misregistration tolerated by context="shift": Sentinel-2's multi-temporal co-registration was specified at
0.3 px (2 sigma) only from 2019 (the global reference image); OSCD's 2015-2018 pairs can be a pixel off, and
its 20 m bands are resampled."""
WINDOW_PX = 3
"""Window of context="window": 30 m, below the mapping unit's side (~45 m), so it does not erase an object
the mapping unit would keep."""
SEGMENT_SEED_PX = 4
"""Segments grow from seeds on a grid of this spacing: ~16 px each, under the 20 px mapping unit, so the
segmentation never coarsens what the mapping unit would keep."""
SEGMENT_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08")
"""Bands whose gradient (both dates) the segments follow: the 10 m bands, which hold the sharpest edges."""
REFINE_PASSES = 2
"""Reassignments of the watershed's pixels to the closest neighbouring segment mean (`_refine`)."""
TEXTURE_BANDS: tuple[str, ...] = ("B04", "B08")
"""Bands whose local texture (`local_texture`) the "texture" variant adds to IR-MAD: red and NIR, where built
surfaces and vegetation contrast most."""
TEXTURE_PX = 3
"""Window of `local_texture`: 30 m, the scale of streets and building blocks at 10 m."""
REFLECTANCE_STEP = 1e-4
"""Quantisation step of Sentinel-2 L1C/L2A reflectance (digital number / 10000): the floor of a local std."""
NULL_QUANTILES = (0.25, 0.5)
"""Quantiles a scaled chi-square null is fitted to: below the changed minority's reach (OSCD: 0.3-4% changed)."""

_EIGHT = np.ones((3, 3), dtype=bool)
_SLAB_PX = 1 << 15


@dataclass(frozen=True)
class IRMAD:
    """IR-MAD of two images (Nielsen 2007). Arrays are (y, x), lazy on dask input, NaN where no data."""

    chi2: xr.DataArray
    """Z, the sum of the squared standardised MAD variates: chi-square with `df` degrees under no change."""
    p_no_change: xr.DataArray
    """Chi-square survival function of Z: the chance of a Z at least this large for an unchanged pixel."""
    rho: np.ndarray
    """Canonical correlations, ascending: MAD variate 1 is the least correlated (carries most change)."""
    a: np.ndarray
    """(bands, df) canonical weights of the before image (columns match `rho`)."""
    b: np.ndarray
    """(bands, df) canonical weights of the after image."""
    mean_before: np.ndarray
    mean_after: np.ndarray
    sigma: np.ndarray
    """Standard deviation of each MAD variate for unchanged pixels."""
    bands: tuple[str, ...]
    iterations: int
    converged: bool

    @property
    def df(self) -> int:
        return len(self.bands)

    def variates(self, before: xr.Dataset, after: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
        """The canonical variates U of before and V of after (mad, y, x), scaled so that MAD = U - V."""
        x, y = _stack(before, self.bands), _stack(after, self.bands)
        u = xr.dot(
            x - xr.DataArray(self.mean_before, dims="band"),
            xr.DataArray(self.a / self.sigma, dims=("band", "mad")),
            dim="band",
        )
        v = xr.dot(
            y - xr.DataArray(self.mean_after, dims="band"),
            xr.DataArray(self.b / self.sigma, dims=("band", "mad")),
            dim="band",
        )
        return u.transpose("mad", ...), v.transpose("mad", ...)

    def mad(self, before: xr.Dataset, after: xr.Dataset) -> xr.DataArray:
        """The MAD variates (mad, y, x), each with unit variance for unchanged pixels."""
        u, v = self.variates(before, after)
        return (u - v).astype("float32")


@dataclass(frozen=True)
class MultivariateChange:
    """The IR-MAD statistic and the change mask one fixed rule draws from it."""

    irmad: IRMAD
    mask: xr.DataArray
    """bool (y, x): changed (after the segment confirmation when `confirmed`). Lazy on dask input."""
    p_value: xr.DataArray
    """No-change p-value of the tested statistic S: chi2.sf(S / inflation, dof)."""
    inflation: float
    """Scale of the no-change null. For the per-pixel Z, median(Z) / median(chi2_df): how much wider the scene's
    no-change spread is than the model's; for a spatial statistic, the scale of its fitted scaled chi-square."""
    threshold: float
    """S / inflation above this is change (the chi-square quantile at the Bonferroni or the FDR level)."""
    pixels: int
    """Valid pixels tested (the Bonferroni and FDR count)."""
    dof: float
    """Degrees of freedom of the no-change null: df for the per-pixel Z, fitted for a spatial statistic."""
    context: str = "pixel"
    """The tested statistic: "pixel" (Z), "shift" (`shift_tolerant_chi2`), "window" (`window_mean` of Z),
    "segment" (`segment_mean_chi2`) or "coherent" (`segment_coherent_chi2`). For the last two `pixels`,
    `threshold` and `dof` are of the segment test: `pixels` counts the segments tested."""
    correction: str = "bonferroni"
    """How alpha is spread over the pixels: "bonferroni" (family-wise) or "fdr" (Benjamini-Hochberg)."""
    confirmed: bool = False
    """Whether the flags passed `confirm_coherent` (the rule) before the mapping unit; `p_value`,
    `threshold` and `pixels` are those of the per-pixel test either way."""


def _stack(ds: xr.Dataset, bands: Sequence[str]) -> xr.DataArray:
    missing = [b for b in bands if b not in ds.data_vars]
    if missing:
        raise DetectionError(
            f"Bands {missing} are missing from the image (it has {sorted(map(str, ds.data_vars))}): "
            "pass bands= that both images hold."
        )
    return xr.concat([ds[b].astype("float64") for b in bands], dim="band").assign_coords(band=list(bands))


def _map(arr: xr.DataArray, fn: Callable[[np.ndarray], np.ndarray], dtype: str) -> xr.DataArray:
    """Elementwise numpy function on a numpy- or dask-backed array."""
    data = arr.data
    if isinstance(data, da.Array):
        return arr.copy(data=da.map_blocks(fn, data, dtype=dtype))
    return arr.copy(data=fn(np.asarray(data)))


def cva(before: xr.Dataset, after: xr.Dataset, bands: Sequence[str] = CHANGE_BANDS) -> xr.DataArray:
    """Change vector analysis: the Euclidean length of the change over `bands` (reflectance units)."""
    sq = xr.zeros_like(before[bands[0]], dtype="float64")
    for b in bands:
        sq = sq + (after[b].astype("float64") - before[b].astype("float64")) ** 2
    return xr.apply_ufunc(np.sqrt, sq, dask="allowed").astype("float32").rename("cva")


def water_mask(before: xr.Dataset, after: xr.Dataset) -> xr.DataArray:
    """Open water on both dates (NDWI > 0): it changes with waves, glint and sediment, not with land use."""

    def ndwi(ds: xr.Dataset) -> xr.DataArray:
        return (ds["B03"] - ds["B08"]) / (ds["B03"] + ds["B08"])

    return ((ndwi(before) > WATER_NDWI) & (ndwi(after) > WATER_NDWI)).rename("water")


def green_mask(before: xr.Dataset, after: xr.Dataset) -> xr.DataArray:
    """Dense vegetation on both dates (NDVI > GREEN_NDVI): what changes there is phenology, mowing or canopy."""

    def ndvi(ds: xr.Dataset) -> xr.DataArray:
        return (ds["B08"] - ds["B04"]) / (ds["B08"] + ds["B04"])

    return ((ndvi(before) > GREEN_NDVI) & (ndvi(after) > GREEN_NDVI)).rename("green")


# --- IR-MAD core: the per-block kernels see numpy only; on dask they are mapped over the blocks ----------

_Params = tuple[np.ndarray, np.ndarray, int]
"""(mean of [x; y], projection [a; -b] / sigma, df) of the previous pass."""


def _block_z(xy: np.ndarray, mean: np.ndarray, proj: np.ndarray) -> np.ndarray:
    """Z of a (2p, h, w) block: MAD_i = a_i·(x - mx) - b_i·(y - my), standardised, squared and summed."""
    k = xy.shape[0]
    mad = np.einsum("kp,kn->pn", proj, xy.reshape(k, -1) - mean[:, None])
    return np.einsum("ij,ij->j", mad, mad).reshape(xy.shape[1:])


def _block_moments(xy: np.ndarray, fit: np.ndarray | None, params: _Params | None) -> np.ndarray:
    """Weighted sums [sum w, sum w·v, sum w·v·vᵀ] of one block; w is the chi-square no-change probability.

    Sums are taken about the previous mean (zero on the first pass) so the covariance does not lose digits to
    cancellation. Pixels with a non-finite band, or outside `fit`, get weight zero. The products are einsum
    loops, not BLAS: multi-threaded BLAS on these skinny matrices spun for up to 100x longer on the shared
    2-core machine, and dask already runs blocks in parallel.
    """
    k = xy.shape[0]
    flat = xy.reshape(k, -1)
    valid = np.isfinite(flat).all(axis=0)
    if fit is not None:
        valid &= fit.reshape(-1).astype(bool)
    if params is None:
        w = valid.astype("float64")
        centred = np.where(valid, flat, 0.0)
    else:
        mean, proj, df = params
        centred = np.where(valid, flat - mean[:, None], 0.0)
        mad = np.einsum("kp,kn->pn", proj, centred)
        w = np.where(valid, stats.chi2.sf(np.einsum("ij,ij->j", mad, mad), df), 0.0)
    cw = centred * w
    return np.concatenate([[w.sum()], cw.sum(axis=1), np.einsum("in,jn->ij", cw, centred).ravel()])


def _moments(
    xy: np.ndarray | da.Array, fit: np.ndarray | da.Array | None, params: _Params | None
) -> np.ndarray:
    if isinstance(xy, da.Array):
        # One pass over the data per iteration: each block reduces to k² + k + 1 numbers, summed here.
        lazy: da.Array = xy.rechunk({0: -1})
        blocks = list(lazy.to_delayed()[0].ravel())
        fits: list[object] = [None] * len(blocks)
        if fit is not None:
            fits = list(da.asarray(fit).rechunk(lazy.chunks[1:]).to_delayed().ravel())
        parts = [delayed(_block_moments)(blk, f, params) for blk, f in zip(blocks, fits, strict=True)]
        (total,) = dask.compute(delayed(sum)(parts))
        return np.asarray(total)
    # numpy: the same kernel over slabs of rows, so the temporaries stay in cache instead of costing a few
    # copies of the whole image per pass.
    fit_np = None if fit is None else np.asarray(fit)
    rows = max(1, _SLAB_PX // max(1, xy.shape[2]))
    return sum(
        (
            _block_moments(xy[:, i : i + rows], None if fit_np is None else fit_np[i : i + rows], params)
            for i in range(0, xy.shape[1], rows)
        ),
        start=np.zeros(1 + xy.shape[0] + xy.shape[0] ** 2),
    )


def _canonical(
    moments: np.ndarray, shift: np.ndarray, p: int, bands: Sequence[str]
) -> tuple[np.ndarray, ...]:
    """Canonical correlation analysis of the weighted covariance: mean, rho (ascending), a, b."""
    k = 2 * p
    sw = moments[0]
    if sw <= k:
        raise DetectionError(
            f"IR-MAD has {sw:.0f} weighted pixels for {k} variables: the images share too few valid pixels "
            "(check the no-data masks, the fit mask and that both dates cover the same area)."
        )
    m1 = moments[1 : 1 + k] / sw
    cov = moments[1 + k :].reshape(k, k) / sw - np.outer(m1, m1)
    s11, s22, s12 = cov[:p, :p], cov[p:, p:], cov[:p, p:]
    try:
        s22_inv_s21 = np.linalg.solve(s22, s12.T)
        rho2, a = scipy.linalg.eigh(s12 @ s22_inv_s21, s11)  # a.T @ s11 @ a = I
    except (np.linalg.LinAlgError, ValueError) as e:
        raise DetectionError(
            f"IR-MAD covariance of bands {list(bands)} is singular (a constant or duplicated band?): "
            "drop that band from bands=."
        ) from e
    rho = np.sqrt(rho2.clip(0.0, 1.0))
    # b = S22⁻¹ S21 a / rho gives b.T S22 b = 1 and a.T S12 b = rho > 0, so the signs pair up.
    b = s22_inv_s21 @ a / rho.clip(min=1e-12)
    return m1 + shift, rho, a, b


@functools.cache
def _weight_shrink(df: int) -> float:
    """How much weighting by the no-change probability shrinks the variance of an unchanged MAD variate.

    With w = P(chi2_df > Z) and Z ~ chi2_df, E[Z w] / (df E[w]) = 2 P(chi2_{df+2} < chi2_df): 0.66 for df = 5,
    0.75 for df = 10. Nielsen's 2(1 - rho) is the *weighted* variance; dividing by this factor makes the true
    variance a fixed point of the iteration. Without it every pass underestimates the spread, the weights
    concentrate on ever fewer pixels and unchanged pixels end with p-values piled up near 0.
    """
    val, _ = integrate.quad(lambda z: stats.chi2.pdf(z, df + 2) * stats.chi2.sf(z, df), 0.0, np.inf)
    return 2.0 * float(val)


def irmad(
    before: xr.Dataset,
    after: xr.Dataset,
    bands: Sequence[str] = CHANGE_BANDS,
    *,
    max_iter: int = 50,
    tol: float = 1e-4,
    fit_mask: xr.DataArray | None = None,
) -> IRMAD:
    """Iteratively reweighted multivariate alteration detection (Nielsen 2007).

    Canonical correlation of the two images gives MAD variates (differences of canonical variates) that are
    uncorrelated, with variance 2(1 - rho) for unchanged pixels; Z, the sum of their squares standardised, is
    then chi-square with len(bands) degrees of freedom. Each pass reweights the covariances by each pixel's
    no-change probability, so changed pixels stop shaping the no-change model, until no canonical correlation
    moves by more than `tol`. The result is invariant to any affine radiometric change of either image (gain,
    offset, band mixing). `fit_mask` (bool, y/x) limits the pixels the statistics are fitted on (e.g. land
    only); Z is computed everywhere. The covariances are one reduction per pass, computed block by block on
    dask input; the per-pixel outputs stay lazy.

    One change to the paper: the MAD variances are corrected for the shrinkage the weighting itself causes
    (`_weight_shrink`), so that unchanged pixels keep uniform no-change probabilities.
    """
    bands = tuple(bands)
    p = len(bands)
    if before.sizes.get("y") != after.sizes.get("y") or before.sizes.get("x") != after.sizes.get("x"):
        raise DetectionError(
            f"Before {dict(before.sizes)} and after {dict(after.sizes)} are on different grids: "
            "align the after image to the before image first."
        )
    xy_da = xr.concat([_stack(before, bands), _stack(after, bands)], dim="band").transpose("band", "y", "x")
    xy = xy_da.data
    fit = None if fit_mask is None else fit_mask.transpose("y", "x").data

    shift = np.zeros(2 * p)
    params: _Params | None = None
    rho_old = np.full(p, np.inf)
    converged = False
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (the count of passes is reported)
        shrink = 1.0 if params is None else _weight_shrink(p)
        mean, rho, a, b = _canonical(_moments(xy, fit, params), shift, p, bands)
        sigma = np.sqrt(2.0 * (1.0 - rho) / shrink).clip(min=1e-12)
        params = (mean, np.vstack([a, -b]) / sigma, p)
        shift = mean
        if np.max(np.abs(rho - rho_old)) < tol:
            converged = True
            break
        rho_old = rho

    mean, proj, _ = params  # type: ignore[misc]
    if isinstance(xy, da.Array):
        xy = xy.rechunk({0: -1})
        z = da.map_blocks(_block_z, xy, mean, proj, drop_axis=0, dtype="float64")
    else:
        z = _block_z(xy, mean, proj)
    chi2 = xy_da.isel(band=0, drop=True).copy(data=z).rename("irmad_chi2")
    prob = _map(chi2, lambda v: stats.chi2.sf(v, p), "float64").rename("irmad_p_no_change")
    return IRMAD(
        chi2=chi2.astype("float32"),
        p_no_change=prob.astype("float32"),
        rho=rho,
        a=a,
        b=b,
        mean_before=mean[:p],
        mean_after=mean[p:],
        sigma=sigma,
        bands=bands,
        iterations=iterations,
        converged=converged,
    )


# --- Spatial statistics: the per-pixel Z seen with its neighbours -----------------------------------------


def shift_tolerant_chi2(
    result: IRMAD, before: xr.Dataset, after: xr.Dataset, *, radius: int = SHIFT_PX
) -> xr.DataArray:
    """Z with a tolerance for misregistration: each pixel against its best match within `radius` px.

    For each pixel p, Z(p, q) = |U(p) - V(q)|² with q within `radius` px of p, in both directions: the before
    pixel against its best-matching after pixel, and the after pixel against its best-matching before pixel;
    the larger of the two minima is kept, so that an object that appears (or goes) is not matched away by a
    neighbour of the same material (Bovolo & Bruzzone's registration-noise reduction for CVA, applied to the
    MAD variates). NaN where the pixel itself is not observed. Lazy on dask input (xarray shifts, no halo).
    """
    u, v = (w.astype("float64") for w in result.variates(before, after))
    own = ((u - v) ** 2).sum("mad", skipna=False)
    fwd = bwd = own
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy or dx:
                fwd = _fmin(fwd, ((u - v.shift(y=dy, x=dx)) ** 2).sum("mad", skipna=False))
                bwd = _fmin(bwd, ((u.shift(y=dy, x=dx) - v) ** 2).sum("mad", skipna=False))
    out = xr.apply_ufunc(np.maximum, fwd, bwd, dask="allowed").where(own.notnull())
    return out.transpose("y", "x").rename("irmad_shift_chi2")


def _fmin(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    return xr.apply_ufunc(np.fmin, a, b, dask="allowed")  # NaN (a neighbour off the image or unseen) loses


def window_mean(stat: xr.DataArray, *, size: int = WINDOW_PX) -> xr.DataArray:
    """Mean of `stat` over a size x size window of observed pixels; NaN where the centre is not observed.

    The window is cut at the image edge, not padded. Lazy on dask input.
    """
    mean = stat.astype("float64").rolling(y=size, x=size, center=True, min_periods=1).mean()
    return mean.where(stat.notnull()).rename(f"{stat.name or 'stat'}_mean{size}")


# --- Texture and segments: extra variables and object support ---------------------------------------------


def local_texture(
    ds: xr.Dataset, bands: Sequence[str] = TEXTURE_BANDS, *, size: int = TEXTURE_PX
) -> xr.Dataset:
    """log10 of each band's standard deviation over size x size observed pixels, as `<band>_texture`.

    Building a field or a vacant lot into blocks and streets raises the reflectance's spread at 10-30 m;
    crops between seasons, a new roof or new paving mostly change its level and leave it as smooth. The log
    makes the skewed spread near-Gaussian, as IR-MAD's canonical correlation and chi-square test assume;
    the spread is floored at the reflectance's quantisation step. NaN where the centre pixel is not observed
    or the window holds a single observed pixel. Lazy on dask input.
    """
    out = {}
    for b in bands:
        if b not in ds.data_vars:
            raise DetectionError(
                f"Band {b!r} for the texture variables is missing from the image (it has "
                f"{sorted(map(str, ds.data_vars))}): pass texture= bands that both images hold."
            )
        x = ds[b].astype("float64")
        mean, mean_sq = _box_mean(x, size), _box_mean(x**2, size)
        std = xr.apply_ufunc(np.sqrt, (mean_sq - mean**2).clip(min=0.0), dask="allowed")
        tex = xr.apply_ufunc(np.log10, std.clip(min=REFLECTANCE_STEP), dask="allowed")
        out[f"{b}_texture"] = tex.where(x.notnull()).astype("float32")
    return xr.Dataset(out)


def _box_mean_block(x: np.ndarray, size: int) -> np.ndarray:
    seen = np.isfinite(x)
    total = ndimage.uniform_filter(np.where(seen, x, 0.0), size, mode="constant")
    count = ndimage.uniform_filter(seen.astype("float64"), size, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        # Fewer than two observed pixels in the window: no spread to speak of.
        return np.where(count * size * size >= 1.5 + 1e-9, total / count, np.nan)


def _box_mean(arr: xr.DataArray, size: int) -> xr.DataArray:
    """Mean over size x size observed pixels (NaN skipped, cut at the image edge); NaN below two pixels."""
    data = arr.transpose("y", "x").data
    if isinstance(data, da.Array):
        out = data.map_overlap(_box_mean_block, depth=size // 2, boundary="none", dtype="float64", size=size)
    else:
        out = _box_mean_block(np.asarray(data, dtype="float64"), size)
    return arr.transpose("y", "x").copy(data=out)


def _seed_ids(ny: int, nx: int, spacing: int, like: np.ndarray | da.Array) -> np.ndarray | da.Array:
    """Segment ids 1, 2, … on a grid of seeds `spacing` px apart (global, so dask blocks agree), 0 elsewhere."""
    xp = da if isinstance(like, da.Array) else np
    if isinstance(like, da.Array):
        yy = da.arange(ny, chunks=like.chunks[-2])[:, None]
        xx = da.arange(nx, chunks=like.chunks[-1])[None, :]
    else:
        yy, xx = np.arange(ny)[:, None], np.arange(nx)[None, :]
    half = spacing // 2
    cols = -(-nx // spacing)
    ids = (yy // spacing) * cols + xx // spacing + 1
    return xp.where((yy % spacing == half) & (xx % spacing == half), ids, 0).astype("float64")


def _refine(
    inverse: np.ndarray, feats: np.ndarray, valid: np.ndarray, n: int, seeds: np.ndarray
) -> np.ndarray:
    """One reassignment of each observed pixel to the closest segment mean among its own and its 4-neighbours'.

    Seeds stay in their own segment, so that each segment can be read at its seed.
    """
    keep = valid.ravel()
    flat = inverse.ravel()
    count = np.maximum(np.bincount(flat[keep], minlength=n), 1)
    centres = np.stack([np.bincount(flat[keep], weights=f.ravel()[keep], minlength=n) / count for f in feats])
    cands = [inverse]
    for axis, step in ((0, 1), (0, -1), (1, 1), (1, -1)):
        moved = np.roll(inverse, step, axis=axis)
        edge = [slice(None)] * 2
        edge[axis] = slice(0, 1) if step == 1 else slice(-1, None)
        moved[tuple(edge)] = inverse[tuple(edge)]  # no wrap-around at the image edge
        moved = np.where(np.roll(valid, step, axis=axis), moved, inverse)
        cands.append(moved)
    dist = np.stack([((feats - centres[:, c]) ** 2).sum(axis=0) for c in cands])
    best = np.take_along_axis(np.stack(cands), dist.argmin(axis=0)[None], axis=0)[0]
    return np.where(valid & ~seeds, best, inverse)


def _segment_block(stack: np.ndarray, *, edges: int, spacing: int) -> np.ndarray:
    """[edge channels (edges), values (k), seed ids (1)] -> [segment mean of each value (k), segment size (1)].

    Watershed (image foresting transform) of the summed gradient magnitude of the edge channels from the
    seeds; a segment holds the pixels where every edge channel and value is finite, and its mean and size are
    over those. Segment sizes at the seeds' own pixels are what the tests count.
    """
    chans, values, ids = stack[:edges], stack[edges:-1], stack[-1]
    valid = np.isfinite(chans).all(axis=0) & np.isfinite(values).all(axis=0)
    grad = np.zeros(valid.shape)
    for c in np.where(np.isfinite(chans), chans, 0.0):
        grad += ndimage.sobel(c, axis=0) ** 2 + ndimage.sobel(c, axis=1) ** 2
    # 1/8 undoes Sobel's gain; one step of the uint16 landscape is 1/1000 of a scene standard deviation.
    land = np.where(valid, np.minimum(np.sqrt(grad) / 8.0 * 1000.0, 65534.0), 65535.0).astype(np.uint16)
    markers = np.where(valid, ids, 0.0).astype(np.int32)
    labels = ndimage.watershed_ift(land, markers, structure=_EIGHT).astype(np.int64)
    labels = np.where(valid, labels, 0)
    uniq, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.reshape(labels.shape)
    # A gradient marks both sides of an edge, so the watershed line falls on either: hand each pixel to the
    # segment (its own or a 4-neighbour's) whose mean it is closest to, as SLIC's assignment step.
    feats = np.where(valid, chans, 0.0)
    for _ in range(REFINE_PASSES):
        inverse = _refine(inverse, feats, valid, uniq.size, markers > 0)
    size = np.bincount(inverse.ravel(), minlength=uniq.size).astype("float64")
    labels = np.where(valid, uniq[inverse], 0)
    out = np.full((values.shape[0] + 1, *labels.shape), np.nan)
    keep = labels > 0
    for i, v in enumerate(values):
        sums = np.bincount(inverse[keep], weights=v[keep], minlength=uniq.size)
        out[i][keep] = (sums / np.maximum(size, 1.0))[inverse[keep]]
    out[-1][keep] = size[inverse[keep]]
    return out


def segment_means(
    values: xr.DataArray,
    before: xr.Dataset,
    after: xr.Dataset,
    *,
    bands: Sequence[str] = SEGMENT_BANDS,
    spacing: int = SEGMENT_SEED_PX,
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Segment the pair and average `values` (k, y, x) over each segment: (means, sizes, seeds).

    Segments are watersheds of the gradient of `bands` on both dates (each band divided by its scene standard
    deviation), grown from seeds `spacing` px apart, so they follow the edges of either date: an object that
    appeared keeps its outline. `means` (k, y, x) holds each pixel's segment mean, `sizes` (y, x) its
    segment's observed pixel count, `seeds` (y, x) is True at one pixel per segment (its seed), where
    per-segment figures are read. On dask the segmentation is one task over the whole scene (a watershed is
    not local), so it needs the scene in memory once. NaN where a pixel is not observed.
    """
    chans = [ds[b].astype("float64") for ds in (before, after) for b in bands]
    data = [c.data for c in chans]
    if isinstance(data[0], da.Array):
        sds = dask.compute(*[da.nanstd(d) for d in data])
    else:
        sds = [np.nanstd(d) for d in data]
    lazy = isinstance(values.data, da.Array) or isinstance(data[0], da.Array)
    xp = da if lazy else np
    vals = values.transpose(..., "y", "x").data
    vals = vals.reshape(-1, *vals.shape[-2:])
    k = vals.shape[0]
    ny, nx = vals.shape[-2:]
    parts = [d / (s if s > 0 else 1.0) for d, s in zip(data, sds, strict=True)]
    ids = _seed_ids(ny, nx, spacing, vals if lazy else np.asarray(vals))
    stack = xp.concatenate([xp.stack(parts), vals.astype("float64"), ids[None]], axis=0)
    if lazy:
        # The watershed is not local (a low basin floods until it meets a ridge, however far), so on dask it
        # runs as one task on the whole scene, like the mapping unit would need for regions of any size.
        whole = da.asarray(stack).rechunk(-1)
        out = whole.map_blocks(
            _segment_block,
            edges=len(parts),
            spacing=spacing,
            chunks=((k + 1,), (ny,), (nx,)),
            dtype="float64",
        ).rechunk({0: -1, 1: vals.chunks[-2], 2: vals.chunks[-1]} if isinstance(vals, da.Array) else "auto")
    else:
        out = _segment_block(np.asarray(stack), edges=len(parts), spacing=spacing)
    dims = ("seg", "y", "x")
    full = xr.DataArray(out, dims=dims)
    means = full.isel(seg=slice(0, k))
    sizes = full.isel(seg=k, drop=True).rename("segment_size")
    seeds = xr.DataArray(ids > 0, dims=("y", "x")) & sizes.notnull()
    return means, sizes, seeds.rename("segment_seed")


def segment_mean_chi2(
    result: IRMAD, before: xr.Dataset, after: xr.Dataset, *, inflation: float, spacing: int = SEGMENT_SEED_PX
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Each segment's mean of Z / inflation: (means, sizes, seeds) as `segment_means`."""
    z = (result.chi2.astype("float64") / inflation).expand_dims("seg")
    means, sizes, seeds = segment_means(z, before, after, spacing=spacing)
    return means.isel(seg=0, drop=True).rename("segment_mean_chi2"), sizes, seeds


def segment_coherent_chi2(
    result: IRMAD, before: xr.Dataset, after: xr.Dataset, *, spacing: int = SEGMENT_SEED_PX
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """n |m|² per segment, m the mean of its n pixels' MAD vectors: chi2_df for a segment of independent,
    unchanged pixels, and only scaled by spatial correlation (a mean of Gaussians stays Gaussian).

    A changed object moves all its pixels the same way in MAD space; noise, texture, misregistration and
    parallax slivers (of opposite sign either side of an edge) cancel in the mean vector, though they add up
    in the mean of Z. Returns (T, sizes, seeds) as `segment_means`.
    """
    means, sizes, seeds = segment_means(
        result.mad(before, after).rename(mad="seg"), before, after, spacing=spacing
    )
    t = (means.astype("float64") ** 2).sum("seg", skipna=False) * sizes
    return t.rename("segment_coherent_chi2"), sizes, seeds


def confirm_coherent(
    raw: xr.DataArray,
    result: IRMAD,
    before: xr.Dataset,
    after: xr.Dataset,
    *,
    alpha: float = ALPHA,
    grow: bool = False,
    null: SegmentNull = "genomic",
) -> xr.DataArray:
    """Keep the flagged pixels of `raw` whose segment also changed coherently (`segment_coherent_chi2`).

    T / lambda_T, lambda_T the genomic control of T over all segments, is tested against chi2_df at alpha /
    (number of segments holding a flagged pixel): a second test of the candidates only. It removes
    detections whose object does not move one way in MAD space (misregistration and parallax edges,
    texture flicker) and keeps the rest. With `grow`, a confirmed segment with a majority of its pixels
    flagged is flagged whole (the object's outline, whose mixed pixels the per-pixel test misses). Lazy on
    dask input but for the segmentation (`segment_means`).

    `null="calibrated"` (a variant) tests m^T (B + W/n)^-1 m instead, the covariance of a mean of n
    correlated pixels measured on the image itself (`calibrated_segment_chi2`), with no genomic control.
    """
    if null == "calibrated":
        return _confirm_calibrated(raw, result, before, after, alpha=alpha, grow=grow)
    if null == "equicorrelated":
        lam_z = inflation_factor(result.chi2, result.df)
        return _confirm_calibrated(raw, result, before, after, alpha=alpha, grow=grow, pixel_var=lam_z)
    if null not in ("genomic", "stratified"):
        raise DetectionError(f"Unknown segment null {null!r}: choose one of {list(SEGMENT_NULLS)}")
    mad = result.mad(before, after).rename(mad="seg")
    flagged = raw.astype("float64").where(result.chi2.notnull()).expand_dims(seg=[mad.sizes["seg"]])
    means, sizes, seeds = segment_means(
        xr.concat([mad.drop_vars("seg", errors="ignore"), flagged.drop_vars("seg")], dim="seg"), before, after
    )
    df = result.df
    t = (means.isel(seg=slice(0, df)).astype("float64") ** 2).sum("seg", skipna=False) * sizes
    share = means.isel(seg=df, drop=True)
    per_seg = _at_seeds(t, seeds)
    if per_seg.size == 0:
        raise DetectionError("No segment has an observed pixel: both images are no-data everywhere.")
    candidates = int(np.count_nonzero(_at_seeds(share, seeds) > 0))
    if candidates == 0:
        return raw
    if null == "stratified":
        lam_of = size_stratified_inflation(per_seg, _at_seeds(sizes.where(t.notnull()), seeds), df)
        lam_px = xr.apply_ufunc(lam_of, sizes, dask="parallelized", output_dtypes=["float64"])
        coherent = t / lam_px > float(stats.chi2.isf(alpha / candidates, df))
    else:
        lam = max(1.0, float(np.median(per_seg)) / float(stats.chi2.median(df)))
        coherent = t / lam > float(stats.chi2.isf(alpha / candidates, df))
    kept = raw & coherent
    if grow:
        kept = kept | (coherent & (share > 0.5))
    return kept


def size_stratified_inflation(
    t: np.ndarray, n: np.ndarray, df: int, *, strata: int = SIZE_STRATA
) -> Callable[[np.ndarray], np.ndarray]:
    """Genomic control of the segment statistic t per segment size: median(t) / median(chi2_df), at least 1,
    over the segments in each of `strata` quantile bins of their size n (bins that tie on an integer size
    merge). Returns the function of the size that gives each segment's inflation (NaN for a NaN size).
    """
    edges = np.unique(np.quantile(n, np.arange(1, strata) / strata))
    bins = np.digitize(n, edges)
    med = float(stats.chi2.median(df))
    lams = np.array(
        [
            max(1.0, float(np.median(t[bins == i])) / med) if np.any(bins == i) else np.nan
            for i in range(edges.size + 1)
        ]
    )
    overall = max(1.0, float(np.median(t)) / med)
    lams = np.where(np.isfinite(lams), lams, overall)

    def lam_of(size: np.ndarray) -> np.ndarray:
        out = lams[np.digitize(np.nan_to_num(size, nan=0.0), edges)]
        return np.where(np.isfinite(size), out, np.nan)

    return lam_of


def _at_seeds(stat: xr.DataArray, seeds: xr.DataArray) -> np.ndarray:
    """The per-segment values of a per-pixel segment statistic (read at each segment's seed), in memory."""
    vals = stat.where(seeds).data.ravel()
    vals = vals.compute() if isinstance(vals, da.Array) else vals
    vals = np.asarray(vals, dtype="float64")
    return vals[np.isfinite(vals)]


def _segment_null_fit(
    m: np.ndarray,
    q: np.ndarray | None,
    n: np.ndarray,
    *,
    pixel_var: float | None = None,
    max_iter: int = 50,
    tol: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """(V, beta) of the no-change covariance B + W/n of a segment's mean MAD vector, fitted over all segments.

    m (s, df) segment means, q (s, df, df) segment means of the outer products x x^T, n (s,) sizes. W is the
    pooled within-segment covariance (each segment's scatter about its own mean, n - 1 degrees of freedom
    each); B, what every pixel of a segment shares, is the reweighted second moment of m less the mean W/n,
    clipped to be positive semi-definite. The weights are each segment's chi2_df no-change probability under
    the current fit, with IR-MAD's shrinkage correction (`_weight_shrink`), so changed segments drop out as
    they do from IR-MAD's fit. For Gaussian pixels a segment's mean and scatter are independent, so weighting
    by the mean does not bias W. Returned as the generalised eigenvectors V (V^T W V = I, V^T B V =
    diag(beta)): (B + W/n)^-1 = V diag(1 / (beta + 1/n)) V^T.

    With `pixel_var` (lambda; q unused) the pixel covariance is lambda I instead, the per-pixel test's null,
    and the covariance of a mean is B + (lambda I - B)/n (equicorrelated pixels); B's eigenvalues are kept
    in [0, lambda) and the result has the same form, V = U diag((lambda - b)^-1/2), beta = b / (lambda - b).
    """
    df = m.shape[1]
    outer = m[:, :, None] * m[:, None, :]
    if pixel_var is not None:
        return _equicorrelated_fit(outer, n, pixel_var, max_iter=max_iter, tol=tol)
    assert q is not None
    scatter = n[:, None, None] * (q - m[:, :, None] * m[:, None, :])
    w = np.ones(n.size)
    shrink = 1.0
    beta_old = np.full(df, np.inf)
    vecs = np.eye(df)
    beta = np.zeros(df)
    for _ in range(max_iter):
        dof = float(np.sum(w * np.maximum(n - 1.0, 0.0)))
        if dof <= df or w.sum() <= df:
            raise DetectionError(
                f"The segment null has {dof:.0f} weighted within-segment degrees of freedom for {df} MAD "
                "variates: too few observed segments of more than one pixel."
            )
        within = np.einsum("s,sij->ij", w, scatter) / dof
        between = np.einsum("s,sij->ij", w, outer) / w.sum() / shrink - within * float(
            np.sum(w / n) / w.sum()
        )
        evals, evecs = np.linalg.eigh(0.5 * (between + between.T))
        between = (evecs * evals.clip(min=0.0)) @ evecs.T
        try:
            beta, vecs = scipy.linalg.eigh(between, within)
        except (np.linalg.LinAlgError, ValueError) as e:
            raise DetectionError("The within-segment covariance of the MAD variates is singular.") from e
        beta = beta.clip(min=0.0)
        y = m @ vecs
        t = np.sum(y**2 / (beta[None, :] + 1.0 / n[:, None]), axis=1)
        w = stats.chi2.sf(t, df)
        shrink = _weight_shrink(df)
        if np.max(np.abs(beta - beta_old)) < tol * max(1.0, float(beta.max())):
            break
        beta_old = beta
    return vecs, beta


def _equicorrelated_fit(
    outer: np.ndarray, n: np.ndarray, lam: float, *, max_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray]:
    """`_segment_null_fit` with the pixel covariance lam I: Cov(m) = B (1 - 1/n) + lam I / n."""
    df = outer.shape[1]
    w = np.ones(n.size)
    shrink = 1.0
    b_old = np.full(df, np.inf)
    vecs, beta = np.eye(df), np.zeros(df)
    for _ in range(max_iter):
        if w.sum() <= df:
            raise DetectionError(
                f"The segment null has {w.sum():.1f} weighted segments for {df} MAD variates."
            )
        moment = np.einsum("s,sij->ij", w, outer) / w.sum() / shrink
        inv_n = float(np.sum(w / n) / w.sum())
        between = (moment - lam * inv_n * np.eye(df)) / max(1.0 - inv_n, 1e-12)
        b, u = np.linalg.eigh(0.5 * (between + between.T))
        b = b.clip(0.0, 0.99 * lam)
        vecs, beta = u / np.sqrt(lam - b)[None, :], b / (lam - b)
        y2 = np.einsum("sij,ik,jk->sk", outer, vecs, vecs)
        t = np.sum(y2 / (beta[None, :] + 1.0 / n[:, None]), axis=1)
        w = stats.chi2.sf(t, df)
        shrink = _weight_shrink(df)
        if np.max(np.abs(b - b_old)) < tol * lam:
            break
        b_old = b
    return vecs, beta


def calibrated_segment_chi2(
    result: IRMAD,
    before: xr.Dataset,
    after: xr.Dataset,
    extra: xr.DataArray | None = None,
    *,
    pixel_var: float | None = None,
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray, xr.DataArray | None]:
    """m^T (B + W/n)^-1 m per segment, m the mean MAD vector of its n pixels, B + W/n fitted on the image
    (`_segment_null_fit`): chi2_df for an unchanged segment whatever its size and its pixels' correlation.

    Under an equicorrelated model the mean of n pixels has covariance B + W/n, W the pixels' scatter about
    the segment mean and B what the whole segment shares (spatially correlated noise, haze, illumination);
    the rule's n |m|² / lambda_T takes it as lambda_T I / n for every size and every variate. Returns (T,
    sizes, seeds, the segment mean of `extra`) as `segment_means`. Lazy on dask input but for the fit.
    With `pixel_var` (lambda), W is replaced by the pixel covariance lambda I less B (`_segment_null_fit`):
    the watersheds are cut where the reflectances change, so the scatter within a segment is biased low.
    """
    mad = result.mad(before, after).astype("float64")
    df = result.df
    pairs = [] if pixel_var is not None else [(i, j) for i in range(df) for j in range(i, df)]
    chans = [mad.isel(mad=i, drop=True) for i in range(df)]
    chans += [mad.isel(mad=i, drop=True) * mad.isel(mad=j, drop=True) for i, j in pairs]
    if extra is not None:
        chans.append(extra.astype("float64").where(result.chi2.notnull()))
    values = xr.concat(chans, dim="seg")
    means, sizes, seeds = segment_means(values, before, after)
    at = means.where(seeds).transpose("seg", "y", "x").data
    at_seed, seed_np = dask.compute(at, seeds.data) if isinstance(at, da.Array) else (at, seeds.values)
    per = np.asarray(at_seed)[:, np.asarray(seed_np, dtype=bool)]
    n_np = sizes.where(seeds).data
    n_np = np.asarray(n_np.compute() if isinstance(n_np, da.Array) else n_np)[np.asarray(seed_np, dtype=bool)]
    ok = np.isfinite(per).all(axis=0) & np.isfinite(n_np) & (n_np > 0)
    if not ok.any():
        raise DetectionError("No segment has an observed pixel: both images are no-data everywhere.")
    m = per[:df, ok].T
    q = None
    if pixel_var is None:
        q = np.zeros((m.shape[0], df, df))
        for k, (i, j) in enumerate(pairs):
            q[:, i, j] = q[:, j, i] = per[df + k, ok]
    vecs, beta = _segment_null_fit(m, q, n_np[ok], pixel_var=pixel_var)
    y = xr.dot(
        means.isel(seg=slice(0, df)).rename(seg="mad"), xr.DataArray(vecs, dims=("mad", "k")), dim="mad"
    )
    t = ((y**2) / (xr.DataArray(beta, dims="k") + 1.0 / sizes)).sum("k", skipna=False)
    share = means.isel(seg=len(chans) - 1, drop=True) if extra is not None else None
    return t.transpose("y", "x").rename("calibrated_segment_chi2"), sizes, seeds, share


def _confirm_calibrated(
    raw: xr.DataArray,
    result: IRMAD,
    before: xr.Dataset,
    after: xr.Dataset,
    *,
    alpha: float,
    grow: bool,
    pixel_var: float | None = None,
) -> xr.DataArray:
    t, _, seeds, share = calibrated_segment_chi2(
        result, before, after, extra=raw.astype("float64"), pixel_var=pixel_var
    )
    assert share is not None
    candidates = int(np.count_nonzero(_at_seeds(share, seeds) > 0))
    if candidates == 0:
        return raw
    coherent = t > float(stats.chi2.isf(alpha / candidates, result.df))
    kept = raw & coherent
    if grow:
        kept = kept | (coherent & (share > 0.5))
    return kept


def gated_change(
    result: IRMAD, before: xr.Dataset, after: xr.Dataset, *, alpha: float = ALPHA
) -> xr.DataArray:
    """Segments first, then pixels (a gatekeeping order of the rule's two tests): the coherent segment test
    (`segment_coherent_chi2`, genomic control over all segments) at alpha / (all segments), then the per-pixel
    test of Z / inflation only inside the segments that passed, at alpha / (observed pixels in them).

    Under the global null the gate rarely opens, so the family-wise rate holds; inside a segment that moved
    the pixel test is looser than alpha / N, which keeps more of an object's mixed outline. A variant, not the
    rule. Returns the flags before the mapping unit; lazy on dask input but for the segmentation.
    """
    df = result.df
    stat, _, seeds = segment_coherent_chi2(result, before, after)
    per_seg = _at_seeds(stat, seeds)
    if per_seg.size == 0:
        raise DetectionError("No segment has an observed pixel: both images are no-data everywhere.")
    lam_t = max(1.0, float(np.median(per_seg)) / float(stats.chi2.median(df)))
    gate = (stat / lam_t > float(stats.chi2.isf(alpha / per_seg.size, df))) & result.chi2.notnull()
    selected = int(np.asarray(dask.compute(gate.data.sum())[0]))
    if selected == 0:
        return gate
    lam_z = inflation_factor(result.chi2, df)
    return gate & (result.chi2.astype("float64") / lam_z > float(stats.chi2.isf(alpha / selected, df)))


def segment_change_mask(
    result: IRMAD,
    before: xr.Dataset,
    after: xr.Dataset,
    *,
    context: Literal["segment", "coherent"],
    alpha: float = ALPHA,
    mmu_px: int = MMU_PX,
    spacing: int = SEGMENT_SEED_PX,
) -> MultivariateChange:
    """The segment variants of `change_mask`: one test per segment at alpha / (number of segments), then the
    mapping unit on the flagged segments' pixels.

    "coherent": T = n |m|² (`segment_coherent_chi2`) against inflation · chi2_df, the inflation the genomic
    control of T over the segments. "segment": M = mean of Z / inflation (`segment_mean_chi2`); for n
    independent pixels n·M is chi2(n·df), spatial correlation widens it by a design effect k, taken as
    M ~ (k/n) chi2(n·df/k) (mean df, variance 2·df·k/n), with k from the interquartile range of
    sqrt(n)·(M - df) over the segments (robust to a changed minority).
    """
    lam_z = inflation_factor(result.chi2, result.df)
    df = result.df
    if context == "coherent":
        stat, sizes, seeds = segment_coherent_chi2(result, before, after, spacing=spacing)
        per_seg = _at_seeds(stat, seeds)
        if per_seg.size == 0:
            raise DetectionError("No segment has an observed pixel: both images are no-data everywhere.")
        lam = max(1.0, float(np.median(per_seg)) / float(stats.chi2.median(df)))
        tests = int(per_seg.size)
        threshold = float(stats.chi2.isf(alpha / tests, df))
        scaled = stat / lam
        p64 = _map(scaled, lambda v: stats.chi2.sf(v, df), "float64")
        raw = scaled > threshold
        dof = float(df)
    elif context == "segment":
        stat, sizes, seeds = segment_mean_chi2(result, before, after, inflation=lam_z, spacing=spacing)
        m_seg, n_seg = _at_seeds(stat, seeds), _at_seeds(sizes.where(stat.notnull()), seeds)
        if m_seg.size == 0:
            raise DetectionError("No segment has an observed pixel: both images are no-data everywhere.")
        q1, q3 = np.percentile(np.sqrt(n_seg) * (m_seg - df), [25, 75])
        lam = max(1.0, ((q3 - q1) / 1.349) ** 2 / (2.0 * df))  # the design effect k
        tests = int(m_seg.size)
        k = lam

        def sf(m: np.ndarray, n: np.ndarray) -> np.ndarray:
            return stats.chi2.sf(n * m / k, n * df / k)

        p64 = xr.apply_ufunc(sf, stat, sizes, dask="parallelized", output_dtypes=["float64"])
        raw = p64 < alpha / tests
        threshold = float(stats.chi2.isf(alpha / tests, df))  # for a one-pixel segment; larger ones differ
        dof = float(df)
        lam = lam_z * k
    else:
        raise DetectionError(f"Unknown segment context {context!r}: choose 'segment' or 'coherent'")
    mask = remove_small_regions(raw.fillna(False).astype(bool).rename("change"), mmu_px)
    return MultivariateChange(
        irmad=result,
        mask=mask,
        p_value=p64.astype("float32").rename("p_value"),
        inflation=float(lam),
        threshold=threshold,
        pixels=tests,
        dof=dof,
        context=context,
        correction="bonferroni",
    )


# --- Decision ----------------------------------------------------------------------------------------------


def _finite(values: xr.DataArray) -> np.ndarray | da.Array:
    data = values.data.ravel()
    return data[da.isfinite(data)] if isinstance(data, da.Array) else data[np.isfinite(data)]


def _quantile(values: np.ndarray | da.Array, q: float, *, bins: int = 1024, passes: int = 2) -> float:
    """Quantile q of non-negative finite values, linear between order statistics as np.quantile.

    On dask, histograms in log1p space narrow the range that holds the order statistics either side of rank
    q·(n - 1) to one of `bins` bins per pass; the few values left in it are then sorted, so the result is
    np.quantile's. (dask's own percentile merges per-block estimates and was 10% off on OSCD scenes.)
    """
    if not isinstance(values, da.Array):
        return float(np.quantile(values, q)) if values.size else float("nan")
    logs = da.log1p(values)
    n, lo, hi = (float(v) for v in dask.compute(da.isfinite(logs).sum(), logs.min(), logs.max()))
    if n == 0:
        return float("nan")
    rank = q * (n - 1)
    k = int(np.floor(rank))
    left = float(k)  # order statistics below the current range [lo, hi]
    for _ in range(passes):
        if hi <= lo:
            break
        hist, edges = da.histogram(logs, bins=bins, range=(lo, hi))
        cum = np.cumsum(np.asarray(hist.compute()))
        i = min(int(np.searchsorted(cum, left, side="right")), bins - 1)
        left -= cum[i - 1] if i else 0
        lo, hi = float(edges[i]), float(edges[i + 1])
    # Exact counts from here on: the histogram's bin edges and these comparisons may disagree by an ulp.
    below, inside, above = dask.compute(
        (logs < lo).sum(), values[(logs >= lo) & (logs <= hi)], da.where(logs > hi, values, np.inf).min()
    )
    ordered = np.concatenate([np.sort(np.asarray(inside)), [above]])
    idx = k - int(below)
    if not 0 <= idx < ordered.size - 1:  # the edges moved the order statistic out: sort everything (rare)
        return float(np.quantile(np.asarray(values.compute()), q))
    if rank == k:
        return float(ordered[idx])
    return float(np.quantile(ordered[idx : idx + 2], rank - k))  # np.quantile's interpolation of the two


def _median(values: np.ndarray | da.Array) -> float:
    return _quantile(values, 0.5)


def inflation_factor(chi2: xr.DataArray, df: int) -> float:
    """median(Z) / median(chi2_df), at least 1: the scene-wide over-dispersion of the no-change statistic.

    Real scenes break the Gaussian no-change model (spatially correlated noise, textures, bidirectional
    effects), so Z of unchanged pixels spreads wider than chi2_df. The median is set by the unchanged majority
    and barely moves with the changed minority; dividing by it is "genomic control" (Devlin & Roeder 1999).
    """
    med = _median(_finite(chi2.astype("float64")))
    if not np.isfinite(med):
        raise DetectionError("The IR-MAD statistic has no finite pixel: both images are no-data everywhere.")
    return max(1.0, med / float(stats.chi2.median(df)))


def scaled_chi2_fit(
    stat: xr.DataArray, *, quantiles: tuple[float, float] = NULL_QUANTILES
) -> tuple[float, float]:
    """(scale, dof) of the scaled chi-square scale · chi2_dof whose two `quantiles` match those of `stat`.

    A mean of correlated chi-squares (`window_mean`) or a minimum over shifts (`shift_tolerant_chi2`) is no
    longer chi2_df; Satterthwaite's approximation of such a statistic by a scaled chi-square is fitted here on
    the bulk of the scene, which the unchanged majority sets (genomic control with the degrees of freedom
    free as well as the scale). The ratio of the two quantiles fixes dof, then the upper one fixes the scale.
    """
    data = _finite(stat.astype("float64"))
    lo, hi = (_quantile(data, q) for q in quantiles)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise DetectionError("The IR-MAD statistic has no finite pixel: both images are no-data everywhere.")
    if lo <= 0.0 or hi <= lo:
        raise DetectionError(
            f"The statistic's {quantiles[0]:.0%} and {quantiles[1]:.0%} quantiles are {lo:.3g} and {hi:.3g}: "
            "more than a quarter of the pixels are identical on both dates (a copied image?), so no no-change "
            "spread can be fitted; use context='pixel'."
        )

    def excess(log_dof: float) -> float:
        dof = np.exp(log_dof)
        return float(stats.chi2.ppf(quantiles[1], dof) / stats.chi2.ppf(quantiles[0], dof)) - hi / lo

    bounds = (np.log(0.05), np.log(1e5))
    ends = [excess(b) for b in bounds]
    if ends[0] <= 0.0:  # heavier-tailed than chi2 with 0.05 dof
        log_dof = bounds[0]
    elif ends[1] >= 0.0:  # as narrow as a near-constant: practically Gaussian
        log_dof = bounds[1]
    else:
        log_dof = optimize.brentq(excess, *bounds, xtol=1e-10)
    dof = float(np.exp(log_dof))
    return hi / float(stats.chi2.ppf(quantiles[1], dof)), dof


def otsu_threshold(values: xr.DataArray, *, bins: int = 256) -> float:
    """Otsu's threshold of the finite values (one histogram pass; computed at once on dask input)."""
    data = _finite(values)
    if isinstance(data, da.Array):
        lo, hi = dask.compute(data.min(), data.max())
        hist, edges = da.histogram(data, bins=bins, range=(float(lo), float(hi)))
        hist = np.asarray(hist.compute())
    else:
        hist, edges = np.histogram(data, bins=bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    w0 = np.cumsum(hist).astype("float64")
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    with np.errstate(invalid="ignore", divide="ignore"):
        between = w0 * w1 * (m0 / w0 - (m0[-1] - m0) / w1) ** 2
    return float(edges[int(np.nanargmax(between[:-1])) + 1])


def _sieve_block(mask: np.ndarray, min_px: int) -> np.ndarray:
    labels, _ = ndimage.label(mask, structure=_EIGHT)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return sizes[labels] >= min_px


def remove_small_regions(mask: xr.DataArray, min_px: int) -> xr.DataArray:
    """Drop 8-connected regions of fewer than `min_px` pixels (the minimum mapping unit).

    On dask each block is labelled with a halo of `min_px` pixels: a region that reaches the halo's edge from
    the block spans more than `min_px` pixels, so it is kept, exactly as a whole-image pass would.
    """
    if min_px <= 1:
        return mask
    data = mask.data
    if isinstance(data, da.Array):
        out = data.map_overlap(_sieve_block, depth=min_px, boundary="none", dtype=bool, min_px=min_px)
    else:
        out = _sieve_block(np.asarray(data), min_px)
    return mask.copy(data=out)


def _bh_threshold(p: xr.DataArray, q: float, n: int) -> float:
    """Benjamini-Hochberg: the largest p-value p_(k) with p_(k) <= q·k/n, or -1 when none is.

    Every rejection has p <= q, so only those values are gathered and sorted (a few % of a scene).
    """
    small = _finite(p.where(p <= q))
    values = np.sort(np.asarray(small.compute() if isinstance(small, da.Array) else small))
    return float(bh_threshold(values, q, n)) if values.size else -1.0


def change_mask(
    result: IRMAD,
    *,
    alpha: float = ALPHA,
    mmu_px: int = MMU_PX,
    inflation: float | None = None,
    correction: Correction = "bonferroni",
    statistic: xr.DataArray | None = None,
    context: str = "pixel",
) -> MultivariateChange:
    """The per-pixel test: Z / inflation above the chi-square quantile at alpha / N, then the mapping unit.

    alpha is a family-wise rate over the N valid pixels (Bonferroni), so the rule sets its own threshold from
    the scene's size and spread and has nothing to tune per image. `inflation` defaults to
    `inflation_factor(result.chi2, df)`; pass 1.0 for the textbook chi-square test. The rule
    (`detect_multivariate_change`) confirms these flags by their segment (`confirm_coherent`) before the
    mapping unit.

    Variants (not the default; see benchmarks/oscd.py for how they fared on OSCD): `correction="fdr"` flags
    the pixels the Benjamini-Hochberg procedure rejects at false-discovery rate alpha instead; `statistic`
    tests a spatial statistic derived from Z (`shift_tolerant_chi2`, `window_mean`; `context` names it) against
    a scaled chi-square fitted to the scene (`scaled_chi2_fit`) instead of inflation · chi2_df.
    """
    if correction not in CORRECTIONS:
        raise DetectionError(f"Unknown correction {correction!r}: choose one of {list(CORRECTIONS)}")
    stat = result.chi2 if statistic is None else statistic
    pixels = int(np.asarray(dask.compute(np.isfinite(stat.data).sum())[0]))
    if pixels == 0:
        raise DetectionError("The IR-MAD statistic has no finite pixel: both images are no-data everywhere.")
    if statistic is None:
        dof: float = result.df
        lam = inflation_factor(stat, result.df) if inflation is None else float(inflation)
    else:
        lam, dof = scaled_chi2_fit(stat)
        lam = lam if inflation is None else float(inflation)
    scaled = stat.astype("float64") / lam
    p64 = _map(scaled, lambda v: stats.chi2.sf(v, dof), "float64")
    if correction == "fdr":
        cut = _bh_threshold(p64, alpha, pixels)
        threshold = float(stats.chi2.isf(cut, dof)) if cut > 0 else float("inf")
        raw = p64 <= cut
    else:
        threshold = float(stats.chi2.isf(alpha / pixels, dof))
        raw = scaled > threshold
    mask = remove_small_regions(raw.rename("change"), mmu_px)
    return MultivariateChange(
        irmad=result,
        mask=mask,
        p_value=p64.astype("float32").rename("p_value"),
        inflation=lam,
        threshold=threshold,
        pixels=pixels,
        dof=float(dof),
        context=context,
        correction=correction,
    )


def detect_multivariate_change(
    before: xr.Dataset,
    after: xr.Dataset,
    *,
    bands: Sequence[str] = CHANGE_BANDS,
    alpha: float = ALPHA,
    mmu_px: int = MMU_PX,
    exclude_water: bool = True,
    context: Context = "pixel",
    correction: Correction = "bonferroni",
    texture: Sequence[str] = (),
    confirm: bool = True,
    grow: bool = False,
    exclude_green: bool = False,
    dry: bool = False,
    confirm_null: SegmentNull = "genomic",
    gate: bool = False,
    max_iter: int = 50,
    tol: float = 1e-4,
) -> MultivariateChange:
    """IR-MAD fitted on land, the per-pixel test of `change_mask`, each flag confirmed by a coherent change
    of its segment (`confirm_coherent`), then the mapping unit: unsupervised, one rule for every scene.

    The confirmation drops flags whose segment of the pair does not move one way in MAD space
    (misregistration and parallax edges, texture flicker); on OSCD it removed 13-22% of the false alarms of
    every city for 1-5% of the hits (benchmarks/oscd.py). `confirm=False` is the per-pixel test alone.

    Open water on both dates is left out of the fit: a calm sea is so uniform that IR-MAD otherwise takes it
    for the whole no-change population and flags most of the land (Beirut, Hong Kong in OSCD).
    Pixels NaN in either image (not observed: clouds and shadows masked by preprocess.mask_clouds, or
    oscd.observed_mask) are left out of the fit, the inflation and the Bonferroni count, and never flagged.
    `context` and `correction` select the variants of `change_mask` ("pixel" and "bonferroni" are the rule);
    "segment" and "coherent" test segments instead (`segment_change_mask`, Bonferroni only, no
    confirmation). `texture` names bands whose `local_texture` joins `bands` as IR-MAD variables.
    `exclude_green` drops flags on dense vegetation on both dates (`green_mask`), `dry` on open water on both
    dates (`water_mask`, which the fit leaves out anyway); `grow` (with `confirm`)
    flags confirmed segments whole where most of their pixels are flagged. `confirm_null="calibrated"`
    confirms against a segment null measured on the image (`calibrated_segment_chi2`); `gate` tests segments
    first and pixels inside the passing ones (`gated_change`; `p_value` and `threshold` stay those of the
    scene-wide pixel test). None of these is in the rule.
    """
    if context not in CONTEXTS:
        raise DetectionError(f"Unknown context {context!r}: choose one of {list(CONTEXTS)}")
    has_ndwi = {"B03", "B08"} <= set(map(str, before.data_vars))
    fit = ~water_mask(before, after) if exclude_water and has_ndwi else None
    if texture:
        before = before.assign(local_texture(before, texture))
        after = after.assign(local_texture(after, texture))
        bands = (*bands, *(f"{b}_texture" for b in texture))
    result = irmad(before, after, bands, max_iter=max_iter, tol=tol, fit_mask=fit)
    if context in ("segment", "coherent"):
        if correction != "bonferroni":
            raise DetectionError(f"context={context!r} tests segments with Bonferroni only: drop correction=")
        return segment_change_mask(result, before, after, context=context, alpha=alpha, mmu_px=mmu_px)  # type: ignore[arg-type]
    statistic = None
    if context == "shift":
        statistic = shift_tolerant_chi2(result, before, after)
    elif context == "window":
        statistic = window_mean(result.chi2)
    if gate:
        if context != "pixel" or correction != "bonferroni" or grow or exclude_green:
            raise DetectionError("gate=True gates the per-pixel Bonferroni test only: drop the other options")
        found = change_mask(result, alpha=alpha, mmu_px=1)
        mask = remove_small_regions(gated_change(result, before, after, alpha=alpha).rename("change"), mmu_px)
        return dataclasses.replace(found, mask=mask, confirmed=True)
    if not (confirm or exclude_green or dry):
        return change_mask(
            result, alpha=alpha, mmu_px=mmu_px, correction=correction, statistic=statistic, context=context
        )
    found = change_mask(
        result, alpha=alpha, mmu_px=1, correction=correction, statistic=statistic, context=context
    )
    raw = found.mask
    if exclude_green:
        raw = raw & ~green_mask(before, after)
    if dry and has_ndwi:
        raw = raw & ~water_mask(before, after)
    if confirm:
        raw = confirm_coherent(raw, result, before, after, alpha=alpha, grow=grow, null=confirm_null)
    mask = remove_small_regions(raw.rename("change"), mmu_px)
    return dataclasses.replace(found, mask=mask, confirmed=confirm)


QUANTILE_GAMMA_MIN = 0.05
"""Smallest quantile the region p-value (`region_p_value`) searches: a region in which 5% of the pixels changed
can still be significant. Meinshausen, Meier & Bühlmann (2009)'s example value."""


def change_p_values(
    before: xr.Dataset, after: xr.Dataset, *, bands: Sequence[str] = CHANGE_BANDS
) -> xr.DataArray:
    """Per pixel, the no-change p-value of the rule's per-pixel test: the inflation-corrected chi-square
    p-value of IR-MAD's Z (fitted on land), unadjusted. NaN where either image has no data.

    An alert cites `region_p_value` of its pixels' values. Lazy on dask input except for IR-MAD's fit, which
    reads the data once per iteration.
    """
    found = detect_multivariate_change(before, after, bands=bands, confirm=False, mmu_px=1)
    return found.p_value.astype("float32").rename("p_value")


def region_p_value(p: np.ndarray, *, regions: float, gamma_min: float = QUANTILE_GAMMA_MIN) -> float:
    """The no-change p-value of a region from its pixels' p-values, adjusted for `regions` tested.

    Adaptive quantile aggregation (Meinshausen, Meier & Bühlmann 2009, JASA 104: 1671): min(1, (1 - ln
    gamma_min) * min over gamma in [gamma_min, 1] of quantile_gamma(p) / gamma), valid whatever the dependence
    between the pixels (neighbouring pixels share the point spread, the resampling and the registration
    error), then Bonferroni over `regions`, the number of regions of its size the area holds (pixels tested /
    region pixels). Unlike the smallest pixel p-value, one odd pixel (a misregistered edge, a car, a glint)
    cannot make a large region significant, while a share of gamma_min changed pixels still can. On OSCD's real
    pairs, 0.2 ha blocks with no labelled change got p < 0.05 in 19% of cases against 57% for the smallest
    pixel's Bonferroni p, and 97% of blocks half covered by labelled change did (benchmarks/oscd_pvalues.py).
    NaN values are ignored; NaN if none is finite.
    """
    finite = np.sort(np.asarray(p, dtype="float64")[np.isfinite(p)])
    if finite.size == 0:
        return float("nan")
    gamma = np.arange(1, finite.size + 1) / finite.size
    # Quantile gamma of n values is the ceil(gamma n)-th smallest: searching the order statistics suffices.
    use = gamma >= gamma_min
    aggregated = (1.0 - np.log(gamma_min)) * float(np.min(finite[use] / gamma[use]))
    return min(1.0, aggregated * max(float(regions), 1.0))
