"""Benchmark: requests and bytes per hot spot per day for each real source, measured on the local fakes.

For every source (Sentinel Hub, CDSE, STAC, local folder) on its fake (tests/test_sources_end_to_end.py starts
them), one hot spot at the fakes' centre, the default daily windows (16 days after, 60 before, 90 SAR baseline)
and pipeline.analyse_area without Prefect, three runs share one scene cache:

- cold: an empty cache (the first run ever);
- warm: the same day again (an analyst re-runs the morning's briefing): should make no request;
- next day: the following day's run: new catalogue searches (the windows moved) and only the new scenes.

Each run builds its source afresh with pipeline.make_source, as every run of the flow does. A daily run is
one run per hot spot per day, so a row's figures are per hot spot per day. 'requests' and 'MB' are what the
fake answered (every endpoint: token, catalogue, Process API, COG byte ranges); for 'local' there is no server,
and they are the scene reads from the folder and the size of the files read. 'local+cache' is the local
source with the scene cache, which pipeline.make_source does not give it (yet).

    .venv/bin/python benchmarks/sources.py [--aoi-km 3] [--sources sentinelhub,cdse,stac,local,local+cache]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from a checkout

from monitoring.aoi import aoi_from_hotspot, windows_for  # noqa: E402
from monitoring.config import HotSpot, load_settings  # noqa: E402
from monitoring.pipeline import analyse_area, make_source  # noqa: E402
from monitoring.sources.cache import SceneCache  # noqa: E402
from tests.test_sources_end_to_end import RUN_DATE, catalogue_span, fake_source, hotspot  # noqa: E402

SOURCES = ("sentinelhub", "cdse", "stac", "local", "local+cache")


def runs(days_later: int) -> list[tuple[str, int]]:
    """(label, days after RUN_DATE) of the runs to make, in order."""
    later = [("next day" if d == 1 else f"+{d} days", d) for d in range(1, days_later + 1)]
    return [("cold", 0), ("warm", 0), *later]


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _breakdown(fake: Any) -> dict[str, int]:
    """Requests per kind, where the fake tells them apart."""
    srv = fake.info.get("server")
    if srv is None:
        return {}
    if hasattr(srv, "stats") and isinstance(srv.stats, dict):  # Sentinel Hub: per endpoint
        return {k: v.requests for k, v in srv.stats.items()}
    st = srv.stats()  # STAC: API (search, landing page) vs data (COG byte ranges)
    return {"api": st["api_requests"], "data": st["data_requests"]}


def measure(name: str, aoi_km: float, workdir: Path, *, days_later: int = 1) -> list[dict[str, Any]]:
    source = name.removesuffix("+cache")
    hs = HotSpot(**hotspot(aoi_km))
    aoi = aoi_from_hotspot(hs)
    rows: list[dict[str, Any]] = []
    base = load_settings()
    span = catalogue_span(RUN_DATE, base.windows, days_after=days_later)
    t_setup = time.perf_counter()
    with fake_source(source, workdir, span, local_half_m=aoi_km * 500 + 500) as fake:
        setup_s = time.perf_counter() - t_setup
        with environment(fake.env):
            settings = load_settings(source=source)
            for label, days in runs(days_later):
                day = RUN_DATE + timedelta(days=days)
                src: Any = make_source(settings)
                if name == "local+cache":
                    src.cache = SceneCache.from_settings(settings.cache)
                windows = windows_for(day, settings.windows)
                r0, b0, k0 = fake.requests(), fake.bytes(), _breakdown(fake)
                t0 = time.perf_counter()
                result = analyse_area(
                    aoi, windows, source=src, settings=settings, run_dir=workdir / "runs" / day.isoformat()
                )
                wall = time.perf_counter() - t0
                time.sleep(0.2)  # the Sentinel Hub fake counts response bytes once they are written
                k1 = _breakdown(fake)
                cov = result.coverage
                sh_stats: Any = getattr(src, "stats", None)
                rows.append(
                    {
                        "source": name,
                        "run": label,
                        "date": day.isoformat(),
                        "requests": fake.requests() - r0,
                        "bytes": fake.bytes() - b0,
                        "by_kind": {k: k1[k] - k0.get(k, 0) for k in k1},
                        "seconds": round(wall, 2),
                        "setup_seconds": round(setup_s, 1),
                        "status": result.status,
                        "scenes": len(result.scene_ids),
                        "optical_scenes": (cov.optical_scenes_before, cov.optical_scenes_after)
                        if cov
                        else None,
                        "sar_scenes": (cov.sar_scenes_before, cov.sar_scenes_after) if cov else None,
                        "coverage": cov.status if cov else None,
                        "alerts": len(result.alerts),
                        "processing_units": round(sh_stats.total.processing_units, 3)
                        if hasattr(sh_stats, "total")
                        else None,
                        "cache": src.cache.stats.as_dict() if getattr(src, "cache", None) else None,
                    }
                )
                print(_line(rows[-1]), flush=True)
    return rows


def _line(r: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in r["by_kind"].items() if v) or "-"
    pu = f"  PU {r['processing_units']:.2f}" if r["processing_units"] is not None else ""
    return (
        f"{r['source']:12s} {r['run']:9s} {r['date']}  requests {r['requests']:4d} ({kinds})  "
        f"{r['bytes'] / 1e6:7.2f} MB  {r['seconds']:6.2f} s  scenes {r['scenes']:3d}  "
        f"{r['coverage']}, {r['alerts']} alert(s){pu}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--aoi-km", type=float, default=3.0, help="side of the hot spot square (default 3 km)")
    ap.add_argument(
        "--sources", default=",".join(SOURCES), help="comma-separated, from " + ", ".join(SOURCES)
    )
    ap.add_argument(
        "--days-later",
        type=int,
        default=1,
        help="daily runs after the first day (default 1); with more, the table also gives their mean, the "
        "steady state of a daily run",
    )
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore", module="rasterio")
    names = [s.strip() for s in args.sources.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SOURCES))
    if unknown:
        ap.error(f"unknown source(s) {unknown}; choose from {', '.join(SOURCES)}")
    print(
        f"one hot spot ({args.aoi_km:g} km square at the fakes' centre), run date {RUN_DATE}, default windows; "
        "figures per hot spot per day"
    )
    rows: list[dict[str, Any]] = []
    # The project's settings (default windows, cache size), whatever the working directory.
    os.environ.setdefault("BORDERWATCH_CONFIG_DIR", str(Path(__file__).resolve().parents[1] / "config"))
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"bw-bench-{name.replace('+', '-')}-") as d:
            rows += measure(name, args.aoi_km, Path(d), days_later=args.days_later)
    print()
    print(f"{'source':12s} {'run':14s} {'requests':>8s} {'MB':>8s} {'seconds':>8s}")
    for name in names:
        mine = [r for r in rows if r["source"] == name]
        for r in mine:
            print(f"{name:12s} {r['run']:14s} {r['requests']:8d} {r['bytes'] / 1e6:8.2f} {r['seconds']:8.2f}")
        later = mine[2:]
        if len(later) > 1:
            n = len(later)
            req, mb = sum(r["requests"] for r in later) / n, sum(r["bytes"] for r in later) / n / 1e6
            sec = sum(r["seconds"] for r in later) / n
            print(f"{name:12s} {f'mean of {n} days':14s} {req:8.1f} {mb:8.2f} {sec:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
