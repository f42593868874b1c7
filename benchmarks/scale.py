"""Scale: time and peak memory of one area's analysis as the area grows (an analyst's ad hoc check).

    python benchmarks/scale.py [--sides 3,10,20] [--hotspot chong-chom] [--date 2025-12-22] [--part all]
                               [--held] [--json FILE]

Each side (km) is a square around the hot spot, analysed as the daily flow analyses an area (default windows for
the date: 60-day optical baseline, 16-day after window, 12-month radar baseline) without Prefect, each in a fresh
process so that its peak resident memory is its own. Printed per area: km², megapixels, the Sentinel-1 and
Sentinel-2 scenes loaded, seconds, peak RSS, and monitoring.memory's estimate of that peak (the model that
refuses areas too large for the machine), so the model is checked every time this runs. The memory guard itself
is lifted for the measurement. --part optical or radar drops the other sensor's scenes (the source returns none
of them), so each of the area's two computes is measured alone: the coefficients of monitoring.memory. --held
also prints what dask holds at the peak of each compute, by layer (the results it keeps for later tasks): where
the memory goes.

On the simulator: rendering the scenes is part of the time (real sources read COGs or call an API instead).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from dask.callbacks import Callback

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

from monitoring import memory, pipeline  # noqa: E402
from monitoring.aoi import aoi_from_hotspot, windows_for  # noqa: E402
from monitoring.config import load_hotspots, load_settings  # noqa: E402

PARTS = ("all", "optical", "radar")


def _without(load: Callable[..., xr.Dataset]) -> Callable[..., xr.Dataset]:
    """`load`, returning none of its scenes: the pipeline then skips that sensor's compute."""
    return lambda *args, **kwargs: load(*args, **kwargs).isel(time=slice(0, 0))


def _arrays(value: Any) -> Iterator[np.ndarray]:
    """The numpy arrays in a task's result (an array, or a dict/list/tuple of them)."""
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _arrays(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _arrays(v)


class Held(Callback):
    """What dask holds in memory at the peak of one compute, by layer: the results it keeps for later tasks.

    Every `every` tasks the held results are summed (each buffer once: a view counts as its base), grouped by
    the layer's name without its token; the grouping at the largest sum is kept.
    """

    def __init__(self, every: int = 20) -> None:
        super().__init__()
        self.every = every
        self.done = 0
        self.peak = 0
        self.layers: dict[str, int] = {}

    def _posttask(self, key: Any, result: Any, dsk: Any, state: dict[str, Any], worker_id: Any) -> None:
        self.done += 1
        if self.done % self.every:
            return
        seen: set[int] = set()
        layers: Counter[str] = Counter()
        for k, v in state["cache"].items():
            name = re.sub(r"-[0-9a-f]{32}.*$", "", str(k[0] if isinstance(k, tuple) else k))
            for a in _arrays(v):
                base = a
                while isinstance(base.base, np.ndarray):
                    base = base.base
                if id(base) not in seen:
                    seen.add(id(base))
                    layers[name] += base.nbytes
        total = sum(layers.values())
        if total > self.peak:
            self.peak, self.layers = total, dict(layers.most_common(5))

    def figures(self) -> dict[str, Any]:
        return {
            "peak_gb": round(self.peak / 1e9, 3),
            "layers_gb": {k: round(v / 1e9, 3) for k, v in self.layers.items()},
        }


def measure(
    side_km: float, hotspot: str, run_date: date, part: str = "all", held: bool = False
) -> dict[str, Any]:
    """Analyse one square in this process; the figures of this run (call it in a fresh process). held: also
    what dask holds at the peak of each of the area's computes (Held; it slows the run)."""
    spot = {h.id: h for h in load_hotspots()}[hotspot]
    settings = load_settings().model_copy(update={"memory_limit_gb": 1e6})
    # The hot spot's own square on its UTM grid, with another side (the daily run's AOIs are built this way).
    aoi = aoi_from_hotspot(spot.model_copy(update={"aoi_km": side_km}))
    seen: dict[str, int] = {}
    original = pipeline.check_fits

    def record(area_id: str, pixels: int, **kw: Any) -> None:
        seen.update(pixels=pixels, sar=kw["sar_scenes"], optical=kw["optical_scenes"])
        original(area_id, pixels, **kw)

    pipeline.check_fits = record  # type: ignore[assignment]
    source = pipeline.make_source(settings)
    if part == "optical":
        source.load_sar = _without(source.load_sar)  # type: ignore[method-assign]
    elif part == "radar":
        source.load_optical = _without(source.load_optical)  # type: ignore[method-assign]
    computes: list[dict[str, Any]] = []
    if held:
        compute = pipeline._compute

        def watched(lazy: dict[str, Any]) -> dict[str, np.ndarray]:
            with Held() as h:
                out = compute(lazy)
            computes.append(h.figures())
            return out

        pipeline._compute = watched  # type: ignore[assignment]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = pipeline.analyse_area(
            aoi,
            windows_for(run_date, settings.windows),
            source=source,
            settings=settings,
            run_dir=Path(tmp),
        )
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    estimate = memory.peak_bytes(seen["pixels"], seen["sar"], seen["optical"])
    return {
        "part": part,
        "side_km": side_km,
        "km2": round(aoi.area_km2, 1),
        "mpx": round(seen["pixels"] / 1e6, 2),
        "sar_scenes": seen["sar"],
        "optical_scenes": seen["optical"],
        "seconds": round(seconds, 1),
        "peak_gb": round(peak / 1e9, 2),
        "estimate_gb": round(estimate / 1e9, 2),
        "alerts": len(result.alerts),
        **({"held": computes} if held else {}),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sides", default="3,10,20", help="square sides in km, comma-separated")
    ap.add_argument("--hotspot", default="chong-chom")
    ap.add_argument("--date", default="2025-12-22", type=date.fromisoformat)
    ap.add_argument(
        "--part",
        choices=PARTS,
        default="all",
        help="the whole analysis, or its optical or radar compute alone",
    )
    ap.add_argument(
        "--held", action="store_true", help="also print what dask holds at the peak of each compute, by layer"
    )
    ap.add_argument("--json", type=Path, help="write the figures here")
    ap.add_argument(
        "--one", type=float, help=argparse.SUPPRESS
    )  # the child process: one side, JSON to stdout
    args = ap.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.one, args.hotspot, args.date, args.part, args.held)))
        return 0
    rows = []
    free = memory.available_bytes()
    print(f"available memory now: {free / 1e9:.1f} GB" if free else "available memory: unknown")
    if args.part != "all":
        print(f"the {args.part} compute alone: the other sensor's scenes are dropped")
    print(
        f"{'side':>5} {'km²':>7} {'Mpx':>6} {'S1':>4} {'S2':>4} {'s':>7} {'peak GB':>8} {'model GB':>9} alerts"
    )
    for side in (float(s) for s in args.sides.split(",")):
        cmd = [
            sys.executable,
            __file__,
            "--one",
            str(side),
            "--hotspot",
            args.hotspot,
            "--date",
            str(args.date),
            "--part",
            args.part,
            *(["--held"] if args.held else []),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        rows.append(r)
        print(
            f"{r['side_km']:>5g} {r['km2']:>7.1f} {r['mpx']:>6.2f} {r['sar_scenes']:>4} {r['optical_scenes']:>4} "
            f"{r['seconds']:>7.1f} {r['peak_gb']:>8.2f} {r['estimate_gb']:>9.2f} {r['alerts']:>6}",
            flush=True,
        )
        for i, c in enumerate(r.get("held", []), start=1):
            layers = ", ".join(f"{k} {v:.2f}" for k, v in c["layers_gb"].items())
            print(f"      compute {i}: dask holds {c['peak_gb']:.2f} GB at its peak ({layers})", flush=True)
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        slope = (b["peak_gb"] - a["peak_gb"]) / (b["km2"] - a["km2"]) * 100
        print(f"memory grows {slope:.2f} GB per 100 km² (first to last area)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"available_gb": free and round(free / 1e9, 1), "part": args.part, "areas": rows}, indent=2
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
