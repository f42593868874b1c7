"""Detect: dating Sentinel-1 changes by the sequential omnibus test (Conradsen et al. 2016), per relative orbit.

Conradsen, Nielsen & Skriver (2016), "Determining the points of change in time series of polarimetric SAR data",
IEEE TGRS 54(5): 3007-3024. For k images X_1..X_k of a pixel, each complex Wishart with n looks, the likelihood
ratio Q of "all k covariance matrices are equal" factorises into R_2..R_k, where R_j tests "X_j equals the common
value of X_1..X_{j-1}". GRD data keep only the intensities, so this is the diagonal-only form that Canty's
`sar_seq` and the Earth Engine tutorials ("Detecting changes in Sentinel-1 imagery") use: each polarisation is
an independent gamma variable, |X| is the product of the intensities, and the degrees of freedom and Box's
corrections are those of p independent univariate (p = 1) tests summed:

    ln Q   = n [p k ln k + sum_i ln|X_i| - k ln|X_1 + ... + X_k|],    f = p (k - 1),
    rho    = 1 - (k/n - 1/(n k)) / (6 (k - 1)),                       omega2 = -(f/4) (1 - 1/rho)^2,
    ln R_j = n [p (j ln j - (j-1) ln(j-1)) + (j-1) ln|S_{j-1}| + ln|X_j| - j ln|S_j|],   S_j = X_1 + ... + X_j,
    rho_j  = 1 - (1 + 1/(j (j - 1))) / (6 n),                        f = p,  omega2_j = -(f/4) (1 - 1/rho_j)^2,

    P(-2 rho ln Q > z) ~ (1 - omega2) P(chi2_f > z) + omega2 P(chi2_{f+4} > z), and the same for R_j.

For p = 1 and two images these p-values agree with the exact F-distribution of the intensity ratio to ~1e-5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import xarray as xr
from scipy import stats

from monitoring.detect.result import Detection
from monitoring.errors import DetectionError
from monitoring.sources.base import SAR_BANDS

_POL_DIM = "_omnibus_pol"
_SLAB_PX = 1 << 15
"""Pixels per slab inside a block: bounds the float64 working set (~100 MB for 30 dates, 2 polarisations)."""
_NONE = -1

_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("first", "int32"),
    ("last", "int32"),
    ("n_changes", "int16"),
    ("p_first", "float32"),
    ("direction", "int8"),
    ("direction_last", "int8"),
    ("p_omnibus", "float32"),
    ("n_valid", "int16"),
)


def _pvalue(log_stat: np.ndarray, f: np.ndarray | float, rho: np.ndarray, omega2: np.ndarray) -> np.ndarray:
    """Chance of a -2 rho ln(statistic) at least this large under no change (Box's chi-square mixture)."""
    # ln Q and ln R_j are <= 0 in exact arithmetic; rounding can make them a hair positive.
    z = np.maximum(-2.0 * rho * log_stat, 0.0)
    p = (1.0 - omega2) * stats.chi2.sf(z, f) + omega2 * stats.chi2.sf(z, np.asarray(f) + 4.0)
    # omega2 < 0, and far in the tail (z of ~100 and more, p far below 1e-20) the correction term outgrows the
    # leading one: the expansion no longer holds there, and 0 is the honest value at float32.
    return np.clip(p, 0.0, 1.0)


def _row(x: np.ndarray, k: np.ndarray, *, enl: float, alpha: float) -> tuple[np.ndarray, ...]:
    """One start image for M pixels: x is (time, pol, M) from the start on, k the valid length (>= 2) of each.

    Returns the omnibus p-value of images 0..k-1, the offset j-1 of the first image j whose R_j rejects (-1 when
    Q does not reject or no R_j does), that R_j's p-value, and the sign of the change in ln|X|.
    """
    n = enl
    p = x.shape[1]
    m = np.arange(x.shape[2])
    ld = np.log(x).sum(axis=1)  # ln|X_i|: the log of a product of intensities, summed to avoid underflow
    lds = np.log(np.cumsum(x, axis=0)).sum(axis=1)  # ln|S_i|, S_i = X_1 + ... + X_i
    kf = k.astype("float64")
    ln_q = n * (p * kf * np.log(kf) + np.cumsum(ld, axis=0)[k - 1, m] - kf * lds[k - 1, m])
    rho = 1.0 - (kf / n - 1.0 / (n * kf)) / (6.0 * (kf - 1.0))
    f = p * (kf - 1.0)
    p_q = _pvalue(ln_q, f, rho, -(f / 4.0) * (1.0 - 1.0 / rho) ** 2)

    offset = np.full(k.shape, _NONE, dtype="int64")
    p_j = np.full(k.shape, np.nan)
    sign = np.zeros(k.shape, dtype="int8")
    r = np.flatnonzero(p_q < alpha)
    if r.size:
        j = np.arange(2, x.shape[0] + 1, dtype="float64")[:, None]
        ld_r, lds_r = ld[:, r], lds[:, r]
        ln_r = n * (
            p * (j * np.log(j) - (j - 1.0) * np.log(j - 1.0))
            + (j - 1.0) * lds_r[:-1]
            + ld_r[1:]
            - j * lds_r[1:]
        )
        rho_j = 1.0 - (1.0 + 1.0 / (j * (j - 1.0))) / (6.0 * n)
        p_r = _pvalue(ln_r, float(p), rho_j, -(p / 4.0) * (1.0 - 1.0 / rho_j) ** 2)
        reject = (p_r < alpha) & (j <= kf[r])
        hit = reject.any(axis=0)
        jj = reject.argmax(axis=0)[hit]  # index into j = 2.., i.e. offset jj + 1 of the changed image
        rh = r[hit]
        cols = np.flatnonzero(hit)
        offset[rh] = jj + 1
        p_j[rh] = p_r[jj, cols]
        # ln|X_j| against ln|S_{j-1} / (j-1)|: the determinant of the new image over that of the mean before.
        ratio = ld_r[jj + 1, cols] - (lds_r[jj, cols] - p * np.log(jj + 1.0))
        sign[rh] = np.sign(ratio).astype("int8")
    return p_q, offset, p_j, sign


def _sequential_slab(x: np.ndarray, *, enl: float, alpha: float) -> list[np.ndarray]:
    """The sequential omnibus procedure for a (time, pol, pixel) float64 slab; arrays as in _OUTPUTS."""
    t, _, npx = x.shape
    valid = (np.isfinite(x) & (x > 0)).all(axis=1)
    # A pixel's series is its valid dates only: move them to the front, in time order, and keep where each
    # came from so change points are reported as indices of the full series.
    order = np.argsort(~valid, axis=0, kind="stable")
    xc = np.take_along_axis(x, order[:, None, :], axis=0)
    xc = np.where(np.take_along_axis(valid, order, axis=0)[:, None, :], xc, 1.0)
    kp = valid.sum(axis=0)

    first = np.full(npx, _NONE, dtype="int32")
    last = np.full(npx, _NONE, dtype="int32")
    n_changes = np.zeros(npx, dtype="int16")
    p_first = np.full(npx, np.nan, dtype="float32")
    direction = np.zeros(npx, dtype="int8")
    direction_last = np.zeros(npx, dtype="int8")
    p_omnibus = np.full(npx, np.nan, dtype="float32")
    start = np.zeros(npx, dtype="int64")
    # Row `ell` holds the pixels whose latest change (or the series start) is at compact position ell; a pixel
    # leaves its row either with a new change (and waits in a later row) or for good.
    for ell in range(t - 1):
        idx = np.flatnonzero((start == ell) & (kp - ell >= 2))
        if idx.size == 0:
            continue
        k = kp[idx] - ell
        p_q, offset, p_j, sign = _row(xc[ell : ell + int(k.max()), :, idx], k, enl=enl, alpha=alpha)
        if ell == 0:
            p_omnibus[idx] = p_q
        found = offset >= 0
        hit = idx[found]
        pos = ell + offset[found]
        orig = order[pos, hit].astype("int32")
        is_first = n_changes[hit] == 0
        first[hit[is_first]] = orig[is_first]
        p_first[hit[is_first]] = p_j[found][is_first]
        direction[hit[is_first]] = sign[found][is_first]
        last[hit] = orig
        direction_last[hit] = sign[found]
        n_changes[hit] += 1
        start[hit] = pos
    return [first, last, n_changes, p_first, direction, direction_last, p_omnibus, kp.astype("int16")]


def _sequential_block(values: np.ndarray, *, enl: float, alpha: float) -> tuple[np.ndarray, ...]:
    """apply_ufunc kernel: values is (..., pol, time); returns the _OUTPUTS arrays of shape (...)."""
    lead = values.shape[:-2]
    flat = values.reshape(-1, *values.shape[-2:])
    outs = [np.empty(flat.shape[0], dtype=dt) for _, dt in _OUTPUTS]
    for s in range(0, flat.shape[0], _SLAB_PX):
        slab = np.ascontiguousarray(flat[s : s + _SLAB_PX].transpose(2, 1, 0), dtype="float64")
        for out, part in zip(outs, _sequential_slab(slab, enl=enl, alpha=alpha), strict=True):
            out[s : s + _SLAB_PX] = part
    return tuple(o.reshape(lead) for o in outs)


def _check_args(enl: float, alpha: float) -> None:
    if not np.isfinite(enl) or enl < 1.0:
        raise DetectionError(
            f"omnibus test: enl={enl!r} is not an equivalent number of looks; pass the ENL (>= 1) of the "
            "intensities given, e.g. ~4.4 for Sentinel-1 IW GRD, more after multilooking."
        )
    if not 0.0 < alpha < 1.0:
        raise DetectionError(f"omnibus test: alpha={alpha!r} must lie in (0, 1), e.g. 0.01.")


def _check_pols(stack: xr.Dataset, pols: Sequence[str]) -> None:
    missing = [p for p in pols if p not in stack.data_vars]
    if not pols or missing:
        raise DetectionError(
            f"omnibus test: the SAR stack lacks polarisations {missing or list(pols)} (has "
            f"{sorted(map(str, stack.data_vars))}); pass pols= with the variables present, e.g. pols=('VV',)."
        )


def _stack_pols(stack: xr.Dataset, pols: Sequence[str], time_dim: str) -> xr.DataArray:
    _check_pols(stack, pols)
    if time_dim not in stack.dims:
        raise DetectionError(
            f"omnibus test: the SAR stack has no {time_dim!r} dimension (dims {tuple(stack.dims)}); "
            "pass time_dim= with the name of its time dimension."
        )
    arr = xr.concat([stack[p] for p in pols], dim=_POL_DIM)
    if "valid" in stack.data_vars and "valid" not in pols:
        arr = arr.where(stack["valid"])
    if arr.chunks is not None:
        # The test runs along the whole series of a pixel: one chunk in time and polarisation.
        arr = arr.chunk({time_dim: -1, _POL_DIM: -1})
    return arr


def omnibus_change_points(
    stack: xr.Dataset,
    *,
    enl: float,
    alpha: float = 0.01,
    pols: Sequence[str] = SAR_BANDS,
    time_dim: str = "time",
) -> xr.Dataset:
    """Every change point of each pixel's series, by the sequential omnibus test; lazy on dask input.

    `stack` is ONE relative orbit's time series (time, y, x) of linear intensities (gamma0, not dB): one
    variable per entry of `pols`, NaN (or <= 0) where invalid. A `valid` variable, if present, masks too. With
    two polarisations the test is the dual-pol diagonal case (|X| = VV * VH), with one the univariate case.

    Procedure (Conradsen et al. 2016, sec. IV; Canty's sar_seq): test "all images equal" (omnibus Q) at level
    `alpha`; if rejected, the first j whose R_j rejects at `alpha` is a change, between image j-1 and j. The
    series then restarts with image j as its first, and so on until Q no longer rejects or fewer than two images
    remain.

    `enl` is the equivalent number of looks OF THE DATA PASSED, not of the product: ~4.4 for IW GRD as
    delivered; a 3x3 boxcar multilook gives at most 9 x 4.4 and, since neighbouring GRD pixels are correlated,
    typically about half that (estimate it on a homogeneous area as mean^2 / variance of the intensity). Too
    high an ENL overstates the evidence and raises the false-change rate above `alpha`; too low costs power.

    A pixel's series is its valid dates only (a date counts when every polarisation is finite and > 0): a gap
    neither breaks the series nor counts as a change, and a change seen after a gap is dated at the first valid
    image after it. Pixels with fewer than two valid dates are not tested (n_valid says so).

    Returns a Dataset on the stack's other dims (y, x):
      first, last (int32): index into the stack's `time_dim` of the image just after the first / last change
        (-1 = none);
      n_changes (int16): how many change points;
      p_first (float32): p-value of the R_j test that found the first change (NaN = none; 0 = beyond float
        precision);
      direction, direction_last (int8): +1 brighter, -1 darker, 0 none, for the first / last change, by the
        sign of ln|X_j| - ln|mean of the images since the previous change| (the product of the polarisations'
        ratios: a mixed change counts by its net effect);
      p_omnibus (float32): p-value of "no change over the whole valid series" (NaN = not tested);
      n_valid (int16): valid dates used.
    With many dates and change points, false changes add up: each R_j is tested at `alpha` once Q rejects.
    """
    _check_args(enl, alpha)
    arr = _stack_pols(stack, pols, time_dim)
    outs = xr.apply_ufunc(
        _sequential_block,
        arr,
        input_core_dims=[[_POL_DIM, time_dim]],
        output_core_dims=[[] for _ in _OUTPUTS],
        kwargs={"enl": float(enl), "alpha": float(alpha)},
        dask="parallelized",
        output_dtypes=[np.dtype(dt) for _, dt in _OUTPUTS],
    )
    ds = xr.Dataset({name: out for (name, _), out in zip(_OUTPUTS, outs, strict=True)})
    ds.attrs.update(method="s1-omnibus", enl=float(enl), alpha=float(alpha), pols=",".join(pols))
    return ds


def omnibus_for_orbits(
    sar: xr.Dataset,
    *,
    enl: float,
    alpha: float = 0.01,
    pols: Sequence[str] = SAR_BANDS,
) -> xr.Dataset:
    """The sequential omnibus test on each relative orbit of a Sentinel-1 dataset, combined into one (y, x) map.

    `sar` is shaped like a source's SAR dataset (sources.base.ImagerySource.load_sar): VV, VH (linear gamma0)
    and `valid` over (time, y, x), per-time coords `relative_orbit` and `scene_id`. Orbits are never mixed in
    one series (their geometries differ), so each runs omnibus_change_points on its own; `valid` masks.

    The result's `time` coordinate is the sorted unique acquisition times of all orbits (with `relative_orbit`
    and `scene_id` along it), and:
      first (int32): index into `time` of the earliest first change over orbits, last: of the latest last
        change (-1 = none); first_date, last_date: the acquisition day of those (NaT = none);
      p_first, direction: of the orbit whose first change is earliest; direction_last: of the latest one;
      n_changes (int16): the most change points any one orbit found (orbits see the same changes, so they
        are not summed); n_orbits (int16): how many orbits found a change, i.e. independent corroboration.
    `alpha` applies per orbit: a pixel with no change shows one in some orbit with chance up to
    (number of orbits) x alpha; pass alpha / orbits for a family-wise level.
    """
    _check_args(enl, alpha)
    if "relative_orbit" not in sar.coords or sar["relative_orbit"].dims != ("time",):
        raise DetectionError(
            "omnibus test: the SAR dataset lacks the per-time coordinate 'relative_orbit'; load it through an "
            "ImagerySource (sources.base.check_sar) so each scene carries its orbit."
        )
    _check_pols(sar, pols)
    times_all = sar["time"].values
    times, first_pos = np.unique(times_all, return_index=True)
    orbit_of = sar["relative_orbit"].values
    if times.size == 0:
        raise DetectionError("omnibus test: the SAR dataset has no scene; widen the time window.")

    like = sar[pols[0]].isel(time=0, drop=True)
    best_first = xr.full_like(like, _NONE, dtype="int32")
    best_last = xr.full_like(like, _NONE, dtype="int32")
    p_first = xr.full_like(like, np.nan, dtype="float32")
    direction = xr.full_like(like, 0, dtype="int8")
    direction_last = xr.full_like(like, 0, dtype="int8")
    n_changes = xr.full_like(like, 0, dtype="int16")
    n_orbits = xr.full_like(like, 0, dtype="int16")
    for orbit in np.unique(orbit_of):
        sel = np.flatnonzero(orbit_of == orbit)
        if sel.size < 2:
            continue
        res = omnibus_change_points(sar.isel(time=sel), enl=enl, alpha=alpha, pols=pols)
        lut = np.searchsorted(times, times_all[sel]).astype("int32")
        f = _lookup(res["first"], lut, _NONE)
        la = _lookup(res["last"], lut, _NONE)
        earlier = (f >= 0) & ((best_first < 0) | (f < best_first))
        best_first = xr.where(earlier, f, best_first).astype("int32")
        p_first = xr.where(earlier, res["p_first"], p_first).astype("float32")
        direction = xr.where(earlier, res["direction"], direction).astype("int8")
        later = la > best_last
        best_last = xr.where(later, la, best_last).astype("int32")
        direction_last = xr.where(later, res["direction_last"], direction_last).astype("int8")
        n_changes = xr.where(res["n_changes"] > n_changes, res["n_changes"], n_changes).astype("int16")
        n_orbits = (n_orbits + (res["n_changes"] > 0)).astype("int16")

    days = times.astype("datetime64[D]").astype("datetime64[ns]")
    out = xr.Dataset(
        {
            "first": best_first,
            "last": best_last,
            "first_date": _lookup(best_first, days, np.datetime64("NaT", "ns")),
            "last_date": _lookup(best_last, days, np.datetime64("NaT", "ns")),
            "n_changes": n_changes,
            "n_orbits": n_orbits,
            "p_first": p_first,
            "direction": direction,
            "direction_last": direction_last,
        }
    )
    out = out.assign_coords(
        time=("time", times),
        relative_orbit=("time", orbit_of[first_pos]),
        scene_id=(
            "time",
            sar["scene_id"].values[first_pos] if "scene_id" in sar.coords else times.astype(str),
        ),
    )
    out.attrs.update(method="s1-omnibus", enl=float(enl), alpha=float(alpha), pols=",".join(pols))
    return out


def _lookup(index: xr.DataArray, table: np.ndarray, missing: int | np.datetime64) -> xr.DataArray:
    """table[index] per pixel, `missing` where index is -1 (none); lazy on dask."""
    return xr.apply_ufunc(
        lambda a: np.where(a >= 0, table[np.maximum(a, 0)], missing).astype(table.dtype),
        index,
        dask="parallelized",
        output_dtypes=[table.dtype],
    )


SAR_ENL_MULTILOOKED = 20.0
"""Equivalent number of looks after the detector's 3x3 multilook of GRD (ENL ~4.4): nine looks' worth at most
(~40), about half of that because neighbouring GRD pixels are correlated (10 m spacing of a ~20 m resolution).
Too high an ENL inflates the false-change rate; too low only makes dating less sensitive."""
DATING_LOOKBACK_DAYS = 36
"""Baseline scenes the dating series starts with: ~3 per orbit at the 12-day repeat of one satellite, enough to
anchor the pre-change state without reaching back into last season's changes."""


def date_sar_changes(
    det: Detection,
    sar: xr.Dataset,
    db: xr.Dataset,
    *,
    baseline_end: date,
    alpha: float = 0.01,
    enl: float = SAR_ENL_MULTILOOKED,
    lookback_days: int = DATING_LOOKBACK_DAYS,
) -> Detection:
    """Date the changes of a Sentinel-1 detection by the sequential omnibus test.

    The significance test (monitoring.detect.sar) says *whether* backscatter changed after `baseline_end`; this
    says *when*: the omnibus test runs on each orbit's series from `lookback_days` before `baseline_end` to the
    end, and the first change point after `baseline_end` (or else the last one) becomes the detection's first
    observation of the change, the acquisition before it its last look before. Where the omnibus test finds no
    change point after the baseline, the detection's own dating stays. `db` is the multilooked dB backscatter
    the detection used (monitoring.detect.sar.to_db); `alpha` is family-wise over the orbits. Extra layers:
    `change_last` (index into det.times of the last change point after the baseline, -1 none) and
    `change_points` (how many change points the busiest orbit found in the series).
    """
    t = sar["time"].values
    keep = np.flatnonzero(
        t.astype("datetime64[D]") > np.datetime64(baseline_end - timedelta(days=lookback_days))
    )
    series = xr.Dataset(
        {pol: (10.0 ** (db[pol].isel(time=keep) / 10.0)).astype("float32") for pol in SAR_BANDS},
    )
    series["valid"] = series[SAR_BANDS[0]].notnull()
    for pol in SAR_BANDS[1:]:
        series["valid"] = series["valid"] & series[pol].notnull()
    series = series.assign_coords(
        relative_orbit=("time", sar["relative_orbit"].values[keep]),
        scene_id=("time", sar["scene_id"].values[keep]),
    )
    n_orbits = max(1, len(np.unique(series["relative_orbit"].values)))
    om = omnibus_for_orbits(series, enl=enl, alpha=alpha / n_orbits)

    # Index of every omnibus acquisition among the detection's post-baseline times (-1 for baseline scenes).
    post_days = np.asarray(det.times).astype("datetime64[D]")
    om_days = om["time"].values.astype("datetime64[D]")
    pos = np.searchsorted(post_days, om_days)
    hit = (pos < post_days.size) & (post_days[np.minimum(pos, post_days.size - 1)] == om_days)
    lut = np.where(hit, pos, _NONE).astype("int32")
    first_post = _lookup(om["first"], lut, _NONE)
    last_post = _lookup(om["last"], lut, _NONE)
    dated = xr.where(first_post >= 0, first_post, last_post)
    use = det.mask & (dated >= 0)
    first = xr.where(use, dated, det.first).astype("int32")
    before = xr.where(use, (dated - 1).where(dated > 0, _NONE), det.before).astype("int32")
    extra = dict(det.extra)
    extra["change_last"] = last_post.where(det.mask, _NONE).astype("int32")
    extra["change_points"] = om["n_changes"].where(det.mask, 0).astype("int16")
    return replace(det, first=first, before=before, extra=extra)
