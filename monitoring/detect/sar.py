"""Detect: Sentinel-1 backscatter change by a pixel-wise t-test per relative orbit (PWTT-style)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, cast

import dask
import dask.array
import numpy as np
import xarray as xr
from scipy import ndimage, special

from monitoring.config import ThresholdSettings
from monitoring.detect.result import Detection
from monitoring.errors import DetectionError
from monitoring.preprocess.multilook import MULTILOOK_PX, boxcar_mean
from monitoring.results import SENSOR_S1
from monitoring.sources.base import LC_CROP, LC_WATER, SAR_BANDS

SENSOR = SENSOR_S1
MIN_BASELINE_SCENES = 3
TIME_CHUNK = 16
"""Scenes per dask chunk for the SAR stack (16 x 512 x 512 float32 = 16 MB)."""
P_FLOOR = 1e-300
"""Smallest p-value carried (|z| ~ 37): float64 underflows not far below."""
MIN_SHARE = 0.5
"""A smoothing scale tests a pixel only where at least this share of its box was tested (valid, not layover or
shadow): a box mostly outside the data says little about the pixel."""
MAD_NORMAL = 0.6744897501960817
"""Median of |Z| for a standard normal Z."""
INFLATION_BINS = 4000
INFLATION_RANGE = 20.0
"""Fixed histogram bins of |u| (0.005 wide) for the robust spread of a smoothed statistic."""
INFLATION_SUBSAMPLE = 4
"""Every 4th row and column: 1/16 of the pixels (still >5,000 on a 3 km area) estimate a median well enough."""
ONSET_Z = 2.576
"""A post scene shows a change by itself at |z| >= 2.576 (p < 0.01), PWTT's damage-date rule."""
FDR_CANDIDATES = 1 << 16
"""The false-discovery-rate cut is exact while fewer pixels than this have p <= q (655 ha at 10 m)."""


def _smooth(da: xr.DataArray, valid: xr.DataArray, radius: int) -> xr.DataArray:
    """Multilook by a boxcar, ignoring invalid pixels: cuts speckle (ENL 4.4 -> ~40 for 3x3)."""
    size = 2 * radius + 1
    if radius <= 0:
        return da.where(valid)
    if da.chunks is not None:
        ok = valid & da.notnull()
        data = dask.array.map_overlap(
            lambda v, w: boxcar_mean(v, w, size),
            da.data,
            ok.data.rechunk(da.data.chunks),
            depth={0: 0, 1: radius, 2: radius},
            boundary="nearest",
            dtype="float32",
        )
        return da.copy(data=data)
    weights = (valid & da.notnull()).values
    return da.copy(data=boxcar_mean(da.values, weights, size))


def to_db(sar: xr.Dataset, *, smooth_px: int = MULTILOOK_PX) -> xr.Dataset:
    """VV and VH in dB after multilooking; NaN outside the valid (no layover/shadow) area.

    A source that multilooked as it read (sar.attrs["multilook_px"], the pipeline asks for it: no tile then
    needs its neighbours) is not multilooked again; here the multilook over a chunked stack takes dask's
    map_overlap, which holds the stack in memory (monitoring.preprocess.multilook).
    """
    done = int(sar.attrs.get("multilook_px", 0))
    if done and done != smooth_px:
        raise ValueError(
            f"the scenes were multilooked over {done} px as read, not the {smooth_px} px asked for"
        )
    if sar["VV"].chunks is not None:
        # Sources deliver one scene per chunk; a year of scenes would make thousands of tiny tasks whose
        # scheduling, not the arithmetic, sets the run time. Only the pixels are rechunked: Dataset.chunk
        # would also turn the per-scene coordinates into dask arrays.
        sar = sar.copy(
            data={
                k: v.data.rechunk({v.get_axis_num("time"): TIME_CHUNK}) if v.chunks else v.data
                for k, v in sar.data_vars.items()
            }
        )
    out = {}
    for pol in SAR_BANDS:
        lin = sar[pol] if done else _smooth(sar[pol], sar["valid"], smooth_px)
        out[pol] = (10.0 * np.log10(lin.where(lin > 0))).astype("float32")
    return xr.Dataset(out, coords=sar.coords)


def _moments(stack: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Count, mean and sample variance over time, NaN-aware, without dividing by empty counts."""
    n = stack.notnull().sum("time")
    s1 = stack.fillna(0).sum("time")
    s2 = (stack.fillna(0) ** 2).sum("time")
    return _finish_moments(n, s1, s2)


def _finish_moments(
    n: xr.DataArray, s1: xr.DataArray, s2: xr.DataArray
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    safe = n.clip(min=1)
    mean = s1 / safe
    var = ((s2 - safe * mean**2) / (safe - 1).clip(min=1)).clip(min=0)
    return n, mean.where(n > 0), var.where(n > 1)


def _onset_moments(post: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Count, mean and variance of the scenes from each onset on, along `time` (one entry per onset).

    Sums accumulated backwards over the post scenes: every onset's moments in one pass instead of re-reducing
    the stack once per onset.
    """
    rev = slice(None, None, -1)

    def tail_sum(a: xr.DataArray) -> xr.DataArray:
        return a.isel(time=rev).cumsum("time").isel(time=rev)

    filled = post.fillna(0)
    return _finish_moments(tail_sum(post.notnull().astype("int32")), tail_sum(filled), tail_sum(filled**2))


def _t_test(mu0, var0, n0, mu1, var1, n1):  # type: ignore[no-untyped-def]
    """Two-sided two-sample t-test p-value with the pooled variance (Student), as PWTT's code computes it.

    Under no change the baseline and the post scenes share one distribution, so pooling is exact; Welch's
    separate post variance, estimated from 2-3 scenes, is not: measured on simulated speckle it put 3% of
    unchanged pixels beyond |z| = 4.4 (1e-5 expected). With one post scene the pooled variance is the
    baseline's, and the test is the prediction interval of the baseline.
    """
    dof = (n0 + n1 - 2).clip(min=1)
    pooled = ((n0 - 1) * var0 + (n1 - 1) * var1.fillna(0)) / dof
    t = (mu1 - mu0) / np.sqrt(pooled * (1.0 / n0 + 1.0 / n1))
    p = 2.0 * special.stdtr(dof, -np.abs(t))
    return p, mu1 - mu0


def _signed_z(p: xr.DataArray, delta: xr.DataArray) -> xr.DataArray:
    """The standard normal deviate with the test's two-sided p-value, signed like the change: puts tests with
    different degrees of freedom on one scale, so they can be averaged over space."""
    z = -special.ndtri(p.clip(min=P_FLOOR) / 2.0)
    return (np.sign(delta) * z).astype("float32")


def box_sides(scales_m: Sequence[float], pixel_m: float) -> tuple[int, ...]:
    """Odd box sides (pixels) with the area of disks of radius scales_m (PWTT's 50/100/150 m kernels): boxes are
    separable, so their cost does not grow with the scale."""
    sides = []
    for r in scales_m:
        s = float(r) * np.sqrt(np.pi) / pixel_m
        sides.append(max(3, 2 * round((s - 1) / 2) + 1))
    return tuple(sides)


def _null_sd(side: int, look: int) -> float:
    """Standard deviation of the box mean (side x side) of unit-variance z-values that share speckle through a
    look x look multilook: white noise through both boxes."""
    k = np.convolve(np.ones(side) / side, np.ones(look) / np.sqrt(look))
    return float((k**2).sum())  # the 1-D variance; the 2-D boxes are separable, so the 2-D sd is this


def _scale_block(z: np.ndarray, side: int, sd: float) -> np.ndarray:
    """(test, y, x) box mean of z over the tested pixels, divided by its null standard deviation.

    A box with only a share f of tested pixels averages fewer independent looks: its sd grows as 1/sqrt(f), and
    below MIN_SHARE the scale does not test the pixel (NaN).
    """
    ok = np.isfinite(z)
    num = ndimage.uniform_filter(
        np.where(ok, z, 0.0).astype("float32"), size=(1, side, side), mode="constant"
    )
    share = ndimage.uniform_filter(ok.astype("float32"), size=(1, side, side), mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        u = num / (np.sqrt(share) * np.float32(sd))
    return np.where(ok & (share >= MIN_SHARE), u, np.nan).astype("float32")


def _smooth_scale(z: xr.DataArray, side: int, sd: float) -> xr.DataArray:
    if z.chunks is None:
        return z.copy(data=_scale_block(z.values, side, sd))
    h = side // 2
    data = dask.array.map_overlap(
        _scale_block,
        z.data,
        depth={0: 0, 1: h, 2: h},
        boundary="none",
        dtype="float32",
        side=side,
        sd=sd,
    )
    return z.copy(data=data)


def _inflation(u: xr.DataArray) -> xr.DataArray:
    """Per test, how much wider than the speckle-only model the smoothed statistic spreads over the area.

    The box means assume speckle independent between looks; calibration offsets of a scene, soil moisture after
    rain or speckle correlated beyond the multilook are shared over large areas and do not average out. The
    robust spread of the statistic over the area measures that (genomic control, Devlin & Roeder 1999: median
    |u| over its null median), and may only widen the null. The median comes from a fixed-bin histogram of
    every INFLATION_SUBSAMPLE-th pixel, so numpy and dask agree and dask stays lazy.
    """
    a = np.abs(u.data[:, ::INFLATION_SUBSAMPLE, ::INFLATION_SUBSAMPLE])
    a = np.where(np.isfinite(a), np.minimum(a, INFLATION_RANGE * (1 - 1e-6)), -1.0)
    histogram = np.histogram if u.chunks is None else dask.array.histogram
    lams = []
    for i in range(u.sizes["test"]):
        counts, _ = histogram(a[i], bins=INFLATION_BINS, range=(0.0, INFLATION_RANGE))
        cum = np.cumsum(counts)
        k = (cum < cum[-1] / 2.0).sum()  # the bin holding the median
        median = (k + 0.5) * (INFLATION_RANGE / INFLATION_BINS)
        lams.append(np.where(cum[-1] > 0, np.maximum(median / MAD_NORMAL, 1.0), 1.0))
    data = np.stack(lams) if u.chunks is None else dask.array.stack(lams)
    return xr.DataArray(data.astype("float64"), dims="test")


def _multiscale_p(z: xr.DataArray, sides: Sequence[int], look: int) -> xr.DataArray:
    """Per test, the smallest two-sided p-value over the base scale and the box scales, Bonferroni-corrected
    for the number of scales. A scale counts only where its smoothed change has the sign of the pixel's own:
    the neighbourhood may strengthen a pixel's evidence, never reverse it."""
    base = xr.where(z.notnull(), special.erfc(np.abs(z) / np.sqrt(2.0)), 1.0)
    best = base
    for side in sides:
        u = _smooth_scale(z, side, _null_sd(side, look))
        lam = _inflation(u)
        p = special.erfc(np.abs(u) / (lam * np.sqrt(2.0)))
        agree = u.notnull() & (np.sign(u) == np.sign(z))
        best = np.minimum(best, xr.where(agree, p, 1.0))
    return (best * (1 + len(sides))).clip(max=1.0)


def bh_threshold(p: Any, q: float, m: Any) -> Any:
    """The Benjamini-Hochberg cut-off at level q: the largest p_(k) with p_(k) <= q k / m (-1 when none), from
    the smallest p-values sorted ascending and m, the number of all hypotheses (numpy or dask)."""
    k = np.arange(1, p.shape[0] + 1)
    return np.where(p <= q * k / np.maximum(m, 1), p, -1.0).max()


def fdr_mask(p: xr.DataArray, q: float) -> xr.DataArray:
    """Where p passes Benjamini-Hochberg at level q among the area's finite p-values (NaN: not tested).

    Only p-values <= q can pass, and their ranks do not depend on the larger ones: the FDR_CANDIDATES smallest
    p-values and the count of tested pixels decide. So the cut is exact (as scipy.stats.false_discovery_control)
    whenever fewer than FDR_CANDIDATES pixels have p <= q, i.e. the area's changed pixels plus about q times
    the rest; beyond, the cut found among them rejects a subset of BH's (conservative). Under dask it stays in
    the graph (a top-k reduction), computed with the rest of the radar layers in the pipeline's radar compute.
    """
    data = p.data
    tested = np.isfinite(data)
    m = tested.sum()
    filled = np.where(tested, data, np.inf)
    k = min(FDR_CANDIDATES, int(np.prod(data.shape)))
    if p.chunks is None:
        smallest = np.sort(filled.ravel())[:k]
    else:
        blocks = cast(dask.array.Array, filled).blocks.ravel()
        flat = dask.array.concatenate([b.ravel() for b in blocks])
        smallest = (-dask.array.topk(-flat, k)).map_blocks(np.sort)
    cut = bh_threshold(smallest, q, m)
    return p.copy(data=tested & (data <= cut))


def _pick(p, delta, n1, single, *, onset, last, n_tests, alpha, min_db, no_onset):  # type: ignore[no-untyped-def]
    """Per pixel over the tests (last axis): the smallest p and its change, post count and last scene; and the
    onset: the earliest whose test is significant and whose first scene shows the change by itself (|z| of
    that scene alone >= ONSET_Z, same sign); failing that, the earliest significant one. Without the first-scene
    check a test from an earlier onset passes on the later scenes' change alone, and dates it too early."""
    p = np.where(np.isfinite(p), p, 1.0)
    i = np.argmin(p, axis=-1)[..., None]
    best_p = np.take_along_axis(p, i, -1)[..., 0]
    tested = best_p < 1.0
    best_delta = np.where(tested, np.take_along_axis(delta, i, -1)[..., 0], 0.0)
    best_n = np.where(tested, np.take_along_axis(n1, i, -1)[..., 0], 0)
    best_last = np.where(tested, last[i[..., 0]], -1)
    with np.errstate(invalid="ignore"):
        significant = (p * n_tests < alpha) & (np.abs(delta) >= min_db)
        shows = (np.abs(single) >= ONSET_Z) & (np.sign(single) == np.sign(delta))
    loose = np.where(significant, onset, no_onset).min(axis=-1)
    strict = np.where(significant & shows, onset, no_onset).min(axis=-1)
    earliest = np.where(strict < no_onset, strict, loose)
    return (
        best_p,
        best_delta.astype("float32"),
        best_n.astype("int16"),
        best_last.astype("int32"),
        earliest.astype("int32"),
    )


def detect_sar_change(
    sar: xr.Dataset,
    *,
    baseline_end: date,
    thresholds: ThresholdSettings,
    baseline_start: date | None = None,
    season: tuple[date, date] | None = None,
    smooth_px: int = MULTILOOK_PX,
    landcover: xr.DataArray | None = None,
    db: xr.Dataset | None = None,
) -> Detection:
    """Backscatter change after `baseline_end` against the baseline, per relative orbit, VV and VH.

    For each orbit, each polarisation and each possible onset (every post-baseline acquisition), a two-sample
    t-test (pooled variance; the method keeps its name 's1-welch-t') compares the scenes from that onset on
    with the baseline stack: the scenes from `baseline_start` (default:
    all loaded) to `baseline_end`; on cropland, when `season` and `landcover` are given, the scenes of `season`
    instead: the same season a year earlier, so that flooding, transplanting and harvest, which the rice cycle
    repeats every year, are not change. Where an orbit has fewer than MIN_BASELINE_SCENES seasonal scenes,
    its test skips cropland.

    Each test's p-value becomes a signed z; z is also averaged over boxes of thresholds.sar_scales_m (PWTT's
    50/100/150 m) and standardised (speckle model and, where wider, the spread over the area), so that change
    spread over many pixels adds up. A pixel keeps the smallest p over scales and tests, Bonferroni-corrected
    for their number (orbits x polarisations x onsets x (1 + scales)): thresholds.sar_alpha is the family-wise
    error per pixel. The change must also reach thresholds.sar_min_change_db at the pixel itself (its own
    multilook), which keeps the smoothing from spreading a change over its neighbours, and pass
    Benjamini-Hochberg at thresholds.sar_fdr_q over the area's pixels. The earliest onset whose test is
    significant and whose first scene shows the change by itself dates it.

    Extra layers: `support`, where this change may corroborate another sensor's alert: off cropland, and on
    cropland only where it is unusual for the season; and
    `seasonal`, the change on cropland that is unusual for the season (significant against the same-season
    baseline), e.g. crater fields raising VV through roughness (False everywhere without a seasonal baseline);
    `season_baseline`, the cropland whose change (score) was measured against the same-season baseline.
    """
    db = to_db(sar, smooth_px=smooth_px) if db is None else db
    times = sar["time"].values
    days = times.astype("datetime64[D]")
    is_post = days > np.datetime64(baseline_end)
    post_times = np.unique(times[is_post])
    orbits = sar["relative_orbit"].values
    if not db.sizes["time"] or not is_post.any():
        raise DetectionError(
            "no Sentinel-1 scene after the baseline: nothing to test; widen the after window."
        )
    in_plain = ~is_post
    if baseline_start is not None:
        in_plain &= days >= np.datetime64(baseline_start)
    crop = None
    in_season = np.zeros_like(is_post)
    if season is not None and landcover is not None:
        in_season = ~is_post & (days >= np.datetime64(season[0])) & (days <= np.datetime64(season[1]))
        crop = landcover == LC_CROP

    plan = []
    for orbit in np.unique(orbits):
        pre_idx = np.flatnonzero((orbits == orbit) & in_plain)
        post_idx = np.flatnonzero((orbits == orbit) & is_post)
        season_idx = np.flatnonzero((orbits == orbit) & in_season) if crop is not None else None
        if len(pre_idx) >= MIN_BASELINE_SCENES and len(post_idx) > 0:
            plan.append((pre_idx, post_idx, season_idx))
    n_tests = sum(len(post) for _, post, _ in plan) * len(SAR_BANDS)
    if n_tests == 0:
        raise DetectionError(
            f"no relative orbit has {MIN_BASELINE_SCENES}+ baseline scenes and a scene after {baseline_end}; "
            "lengthen windows.sar_baseline_days."
        )

    zs, deltas, counts, singles, onsets, lasts = [], [], [], [], [], []
    for pre_idx, post_idx, season_idx in plan:
        last_pos = int(np.searchsorted(post_times, times[post_idx[-1]]))
        for pol in SAR_BANDS:
            n0, mu0, var0 = _moments(db[pol].isel(time=pre_idx))
            if crop is not None and season_idx is not None:
                if len(season_idx) >= MIN_BASELINE_SCENES:
                    sn, smu, svar = _moments(db[pol].isel(time=season_idx))
                    n0, mu0, var0 = (xr.where(crop, a, b) for a, b in ((sn, n0), (smu, mu0), (svar, var0)))
                else:
                    n0 = xr.where(crop, 0, n0)
            post = db[pol].isel(time=post_idx)
            n1, mu1, var1 = _onset_moments(post)
            tested = (n0 >= MIN_BASELINE_SCENES) & (n1 >= 1)
            n0 = n0.clip(min=2)
            p, delta = _t_test(mu0, var0, n0, mu1, var1, n1.clip(min=1))
            zs.append(_signed_z(p, delta).where(tested))
            deltas.append(delta.where(tested).astype("float32"))
            counts.append(n1.astype("int16"))
            p1, delta1 = _t_test(
                mu0, var0, n0, post, xr.zeros_like(post), 1
            )  # each onset's first scene alone
            singles.append(_signed_z(p1, delta1).where(tested))
            onsets += [int(np.searchsorted(post_times, times[k])) for k in post_idx]
            lasts += [last_pos] * len(post_idx)

    def stack(arrays: list[xr.DataArray]) -> xr.DataArray:
        out = xr.concat([a.drop_vars("time", errors="ignore").rename(time="test") for a in arrays], "test")
        out = out.drop_vars([c for c in out.coords if "test" in out[c].dims])
        return out.chunk({"test": -1}) if out.chunks is not None else out

    z = stack(zs)
    look = 2 * smooth_px + 1
    sides = box_sides(thresholds.sar_scales_m, _pixel_m(sar))
    p_test = _multiscale_p(z, sides, look)
    if p_test.chunks is not None:
        p_test = p_test.chunk({"test": -1})
    no_onset = len(post_times)
    best_p, best_delta, best_n, best_last, earliest = xr.apply_ufunc(
        _pick,
        p_test,
        stack(deltas),
        stack(counts),
        stack(singles),
        input_core_dims=[["test"]] * 4,
        output_core_dims=[[]] * 5,
        dask="parallelized",
        output_dtypes=["float64", "float32", "int16", "int32", "int32"],
        kwargs={
            "onset": np.array(onsets),
            "last": np.array(lasts),
            "n_tests": n_tests,
            "alpha": thresholds.sar_alpha,
            "min_db": thresholds.sar_min_change_db,
            "no_onset": no_onset,
        },
    )
    p_corr = (best_p * n_tests).clip(max=1.0)  # the scales were counted in p_test
    strong = np.abs(best_delta) >= thresholds.sar_min_change_db
    # Benjamini-Hochberg over the pixels that were tested; a pixel whose own change is too small cannot be
    # reported, so it enters with p = 1 (counted among the hypotheses, never among the discoveries).
    gated = xr.where(strong, p_corr, 1.0).where(z.notnull().any("test"))
    mask = (p_corr < thresholds.sar_alpha) & strong & fdr_mask(gated, thresholds.sar_fdr_q)
    first = earliest.where(mask & (earliest < no_onset), -1).astype("int32")
    # Radar sees through cloud, so the last look before the change is simply the previous acquisition.
    before = (first - 1).where(first >= 0, -1).astype("int32")
    # Given a season, cropland is tested against that season a year earlier or not at all.
    season_baseline = (crop & z.notnull().any("test")) if crop is not None else xr.zeros_like(mask)
    if landcover is None:
        support = mask
        seasonal = xr.zeros_like(mask)
    else:
        is_crop = landcover == LC_CROP
        seasonal = mask & is_crop if crop is not None else xr.zeros_like(mask)
        # On cropland only change unusual for the season may corroborate (crater fields roughen the soil).
        support = (mask & ~is_crop) | seasonal
    return Detection(
        method="s1-welch-t",
        sensor=SENSOR,
        change_type=None,
        mask=mask,
        score=best_delta,
        count=best_n.where(mask, 0).astype("int16"),
        first=first,
        last=best_last.where(mask, -1).astype("int32"),
        before=before,
        times=post_times,
        scene_ids=tuple(
            str(s) for s in sar["scene_id"].values[is_post][np.argsort(times[is_post], kind="stable")]
        ),
        p_value=p_corr.astype("float32"),
        extra={"support": support, "seasonal": seasonal, "season_baseline": season_baseline},
    )


def _pixel_m(sar: xr.Dataset) -> float:
    x = sar["x"].values
    return float(abs(x[1] - x[0])) if x.size > 1 else 10.0


def _dilate(mask: xr.DataArray, radius: int) -> xr.DataArray:
    yy, xx = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    disk = (xx**2 + yy**2) <= radius**2
    if mask.chunks is not None:
        data = mask.data.map_overlap(
            lambda b: ndimage.binary_dilation(b, structure=disk), depth=radius, boundary="none", dtype=bool
        )
        return mask.copy(data=data)
    return mask.copy(data=ndimage.binary_dilation(mask.values, structure=disk))


def builtup_mask(
    sar: xr.Dataset,
    *,
    baseline_end: date,
    thresholds: ThresholdSettings,
    landcover: xr.DataArray | None = None,
    dilate_px: int = 2,
    db: xr.Dataset | None = None,
) -> xr.DataArray:
    """Built-up land: bright baseline VV (double bounce from walls), grown by dilate_px.

    Structural damage is only claimed here, as PWTT restricts itself to an urban mask: elsewhere the rice cycle and
    soil moisture move backscatter as much as damage does.
    """
    db = to_db(sar) if db is None else db
    pre = db.isel(
        time=np.flatnonzero(db["time"].values.astype("datetime64[D]") <= np.datetime64(baseline_end))
    )
    _, vv_mean, _ = _moments(pre["VV"])
    bright = vv_mean > thresholds.builtup_vv_db
    if landcover is None:
        return _dilate(bright, dilate_px).rename("builtup")
    # WorldCover counts roads as built-up, but roads are dark to radar (specular) and run through paddy whose
    # harvest moves backscatter: land cover only vetoes, brightness decides. The veto also applies after the
    # dilation, which would otherwise reach the paddy 20-30 m from the houses, where flooding (-3.5 dB) and
    # harvest (-2.8 dB) pass for lost double bounce.
    grown = _dilate(bright & (landcover != LC_WATER), dilate_px)
    return (grown & ~landcover.isin([LC_CROP, LC_WATER])).rename("builtup")
