"""Preprocess: per-window composites (compiled NaN-median over time) and latest-clear mosaics."""

from __future__ import annotations

import functools

import numpy as np
import xarray as xr
from numba import njit

PIXELS_PER_PASS = 256
"""Pixels sorted together: (dates x 256) values stay in L1/L2 cache, and each comparator is one SIMD loop."""


@functools.cache
def sorting_network(n: int) -> np.ndarray:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort for n values: applied in order, each putting
    the smaller value at i, they sort any n values (Knuth, TAOCP 5.3.4, algorithm M, for any n)."""
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


@njit(cache=True, nogil=True)
def _nanmedian_rows(values, time_last, pairs, out):  # type: ignore[no-untyped-def]
    # values: (dates, pixels), or (pixels, dates) when time_last. Per pass of PIXELS_PER_PASS pixels: NaN
    # becomes +inf (it sorts last), every comparator is a branchless min/max over the pass's pixels
    # (vectorised), and each pixel's median is read at its own count of non-NaN values. The loads follow the
    # memory order of `values`, so either layout is read contiguously.
    n = values.shape[1] if time_last else values.shape[0]
    m = values.shape[0] if time_last else values.shape[1]
    buf = np.empty((n, PIXELS_PER_PASS), dtype=values.dtype)
    count = np.zeros(PIXELS_PER_PASS, dtype=np.int64)
    for start in range(0, m, PIXELS_PER_PASS):
        w = min(PIXELS_PER_PASS, m - start)
        count[:w] = 0
        if time_last:
            for j in range(w):
                for t in range(n):
                    v = values[start + j, t]
                    ok = v == v  # branchless: clouds fall at random, a branch would mispredict
                    buf[t, j] = v if ok else np.inf
                    count[j] += ok
        else:
            for t in range(n):
                for j in range(w):
                    v = values[t, start + j]
                    ok = v == v  # branchless: clouds fall at random, a branch would mispredict
                    buf[t, j] = v if ok else np.inf
                    count[j] += ok
        for c in range(pairs.shape[0]):
            a = pairs[c, 0]
            b = pairs[c, 1]
            for j in range(w):
                x = buf[a, j]
                y = buf[b, j]
                buf[a, j] = min(x, y)
                buf[b, j] = max(x, y)
        for j in range(w):
            k = count[j]
            if k == 0:
                out[start + j] = np.nan
            elif k % 2 == 1:
                out[start + j] = buf[k // 2, j]
            else:
                out[start + j] = 0.5 * (buf[k // 2 - 1, j] + buf[k // 2, j])


def _median_dtype(dtype: np.dtype) -> np.dtype:
    """The kernel's float type for values of `dtype`: float32 and float64 stay, anything else becomes float64."""
    return dtype if dtype in (np.float32, np.float64) else np.dtype("float64")


def _nanmedian_last(a: np.ndarray) -> np.ndarray:
    """NaN-median over the last axis (apply_ufunc's core dimension, at least one date) with the compiled
    sorting network."""
    dtype = _median_dtype(a.dtype)
    n = a.shape[-1]
    a = a.astype(dtype, copy=False)
    # Blocks arrive in two layouts: numpy's (time, y, x) stack, which apply_ufunc moved time last as a view, and
    # dask's blocks, time last in memory. Each is read in its own memory order, without a copy.
    time_first = np.moveaxis(a, -1, 0)
    if time_first.flags.c_contiguous:
        rows, time_last = time_first.reshape(n, -1), False
    else:
        rows, time_last = np.ascontiguousarray(a).reshape(-1, n), True
    out = np.empty(a.shape[:-1], dtype=dtype)
    _nanmedian_rows(rows, time_last, sorting_network(n), out.reshape(-1))
    return out


def nanmedian_time(da: xr.DataArray, dim: str = "time") -> xr.DataArray:
    """Median over `dim` ignoring NaN (NaN where every value is); numpy or dask (the time axis is gathered into
    one chunk). The same values as np.nanmedian."""
    dtype = _median_dtype(da.dtype)
    if da.sizes[dim] == 0:  # no date at all (dask cannot gather an empty axis into one chunk)
        return xr.full_like(da.sum(dim, keep_attrs=True), np.nan, dtype=dtype)
    if da.chunks is not None:
        da = da.chunk({dim: -1})
    return xr.apply_ufunc(
        _nanmedian_last,
        da,
        input_core_dims=[[dim]],
        dask="parallelized",
        output_dtypes=[dtype],
        keep_attrs=True,
    )


def composite(masked: xr.Dataset, *, bands: tuple[str, ...] | None = None) -> xr.Dataset:
    """Per-pixel median of the clear observations of each band, plus `clear_count` (observations used).

    `masked` is the output of mask_clouds: bands NaN where not clear, and a boolean `clear` layer.
    """
    names = bands or tuple(str(v) for v in masked.data_vars if v != "clear")
    out = xr.Dataset({b: nanmedian_time(masked[b]) for b in names})
    out["clear_count"] = masked["clear"].sum("time").astype("int16")
    return out


def latest_clear(masked: xr.Dataset, *, bands: tuple[str, ...] | None = None) -> xr.Dataset:
    """Per pixel, the values of the latest clear observation (NaN where none), and its time index `latest`."""
    names = bands or tuple(str(v) for v in masked.data_vars if v != "clear")
    clear = masked["clear"]
    idx = xr.DataArray(np.arange(masked.sizes["time"], dtype="int32"), dims="time")
    latest = idx.where(clear, -1).max("time")
    pick = clear & (idx == latest)
    # At most one look per pixel is picked: a sum selects it (NaN where none), with no all-NaN reductions.
    out = xr.Dataset(
        {b: masked[b].where(pick, 0).sum("time", skipna=False).where(latest >= 0) for b in names}
    )
    out["latest"] = latest.astype("int32")
    return out
