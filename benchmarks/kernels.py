"""Kernels: throughput of the compositing median, the hot path of preprocessing, against numpy's.

    python benchmarks/kernels.py [--mpx 4] [--dates 10,16,40] [--cloud 0.3] [--repeat 3]

A (dates, y, x) float32 stack of --mpx megapixels with a share --cloud of NaN (masked cloud), as mask_clouds
leaves it. Per number of dates: the best of --repeat runs, in Mpx·dates per second, of
- np.nanmedian over time (numpy's partition; what a plain implementation would use),
- monitoring.preprocess.nanmedian_time on numpy (the compiled kernel, one thread),
- the same on dask in 512 x 512 chunks already in memory (2 threads here; the time axis in one chunk).
../shared/research/performance.md gives this machine's figures for comparison (10 dates: np.nanmedian 23,
numba insertion sort 157, a branchless sorting network 868 Mpx·dates/s).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

from monitoring.preprocess import nanmedian_time  # noqa: E402


def best_of(fn: Any, repeat: int) -> float:
    """The shortest of `repeat` runs of fn() (seconds): the machine is shared, the minimum is the least noisy."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mpx", type=float, default=4.0, help="megapixels per date")
    ap.add_argument("--dates", default="10,16,40")
    ap.add_argument("--cloud", type=float, default=0.3, help="share of NaN values")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    side = int(round(np.sqrt(args.mpx * 1e6)))
    rng = np.random.default_rng(0)
    nanmedian_time(xr.DataArray(np.ones((3, 4, 4), "float32"), dims=("time", "y", "x")))  # compile once
    print(f"{side} x {side} px, {args.cloud:.0%} NaN; Mpx·dates per second (best of {args.repeat})")
    print(f"{'dates':>5} {'np.nanmedian':>13} {'kernel numpy':>13} {'kernel dask':>12} {'speed-up':>9}")
    for n in (int(d) for d in args.dates.split(",")):
        a = rng.random((n, side, side), dtype=np.float32)
        a[rng.random(a.shape) < args.cloud] = np.nan
        arr = xr.DataArray(a, dims=("time", "y", "x"))
        # Blocks already in memory, as a computed stack hands them on: the figure is the kernel's, not numpy's
        # slicing into chunks.
        lazy = arr.chunk({"time": -1, "y": 512, "x": 512}).persist()
        work = n * side * side / 1e6
        with (
            warnings.catch_warnings()
        ):  # pixels never clear: np.nanmedian warns, the kernel returns NaN quietly
            warnings.simplefilter("ignore", RuntimeWarning)
            t_np = best_of(lambda a=a: np.nanmedian(a, axis=0), args.repeat)
        t_k = best_of(lambda arr=arr: nanmedian_time(arr).values, args.repeat)
        t_d = best_of(lambda lazy=lazy: nanmedian_time(lazy).compute(), args.repeat)
        print(
            f"{n:>5} {work / t_np:>13.0f} {work / t_k:>13.0f} {work / t_d:>12.0f} {t_np / min(t_k, t_d):>8.1f}x",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
