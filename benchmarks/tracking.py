"""Tracking: run the daily pipeline on consecutive days and measure how alerts are followed from day to day.

    python benchmarks/tracking.py [--start YYYY-MM-DD] [--days N] [--scenario NAME] [--json FILE] [HOTSPOT ...]

Each day runs what the daily flow runs for the listed hot spots (default: the four with the most events in the
scenario), without Prefect: pipeline.analyse_area per area into <tmp>/<day>/, then pipeline.track_run against
one tracking store. Per day it prints the alerts, how many kept an earlier run's id, how many had the same
place-based id the day before anyway (what ids were without tracking), the lifecycle states and the withdrawn
alerts. A place-based id that changes from one day to the next while the change is the same is what tracking is
for; the figures say how often that happens on the simulator and how often tracking repairs it.

Simulation only: the figures measure the matching on simulated imagery, where outlines move from day to day only
as new looks enter and old ones leave the 16-day after window.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from shapely.geometry import shape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

from scenarios import scenario_path  # noqa: E402  (benchmarks/scenarios.py: a name under config/scenarios/ or a path)

from monitoring import pipeline  # noqa: E402
from monitoring.aoi import aoi_from_hotspot, windows_for  # noqa: E402
from monitoring.config import load_hotspots, load_settings  # noqa: E402
from monitoring.report.load import load_results  # noqa: E402
from monitoring.results import Alert  # noqa: E402
from monitoring.store import AlertStore  # noqa: E402
from monitoring.track import overlap  # noqa: E402

DEFAULT_HOTSPOTS = ["preah-vihear", "ta-muen-thom", "chong-chom", "nong-chan"]


def run(hotspots: list[str], start: date, days: int, scenario: str | None, out: Path) -> dict[str, Any]:
    overrides: dict[str, Any] = {"source": "simulator"}
    if scenario:
        overrides["simulator"] = {"scenario": str(scenario_path(scenario).resolve())}
    settings = load_settings(**overrides)
    selected = [h for h in load_hotspots() if h.id in hotspots]
    missing = sorted(set(hotspots) - {h.id for h in selected})
    if missing:
        raise SystemExit(f"unknown hot spot id(s): {', '.join(missing)}; see config/hotspots.yaml")
    store = AlertStore(out / "tracks.sqlite")
    source = pipeline.make_source(settings)
    raw_before: set[str] = set()
    per_day: list[dict[str, Any]] = []
    for k in range(days):
        day = start + timedelta(days=k)
        run_dir = out / day.isoformat()
        windows = windows_for(day, settings.windows)
        t0 = time.perf_counter()
        for h in selected:
            pipeline.analyse_area(
                aoi_from_hotspot(h), windows, source=source, settings=settings, run_dir=run_dir
            )
        raw = {a.id for r in load_results(run_dir) for a in [*r.alerts, *r.seasonal_burns]}
        counts = pipeline.track_run(run_dir, run_date=day, settings=settings, store=store)
        results = load_results(run_dir)
        alerts = [a for r in results for a in r.alerts]
        ids = {a.id for r in results for a in [*r.alerts, *r.seasonal_burns]}
        shapes = [(a, shape(a.geometry)) for r in results for a in [*r.alerts, *r.seasonal_burns]]

        row = {
            "day": day.isoformat(),
            "alerts": len(alerts),
            "seasonal_burns": sum(len(r.seasonal_burns) for r in results),
            "lifecycle": dict(sorted(counts.items())),
            "kept_id_tracked": sum(1 for a in alerts if a.lifecycle != "new"),
            "same_place_id_as_day_before": len(raw & raw_before),
            "withdrawn": sum(len(r.withdrawn) for r in results),
            "ids_unique": len(ids) == sum(len(r.alerts) + len(r.seasonal_burns) for r in results),
            "seconds": round(time.perf_counter() - t0, 1),
            "new": [_describe(a) for a in alerts if a.lifecycle == "new"],
            "ongoing": [_describe(a) for a in alerts if a.lifecycle == "ongoing"],
            "withdrawn_detail": [
                f"{_describe(g)}; {_nearest(g, shapes)}" for r in results for g in r.withdrawn
            ],
        }
        per_day.append(row)
        raw_before = raw
        print(
            f"{row['day']}: {row['alerts']:3d} alerts; kept an earlier id {row['kept_id_tracked']:3d}; "
            f"same place-based id as the day before {row['same_place_id_as_day_before']:3d}; "
            f"withdrawn {row['withdrawn']}; states {row['lifecycle']}; {row['seconds']} s",
            flush=True,
        )
        if k:
            for kind in ("new", "ongoing"):
                for line in row[kind]:
                    print(f"    {kind}: {line}")
        for line in row["withdrawn_detail"]:
            print(f"    withdrawn: {line}")
    later = per_day[1:]
    total = sum(r["alerts"] for r in later)
    summary = {
        "alerts_after_day_1": total,
        "kept_id_tracked": sum(r["kept_id_tracked"] for r in later),
        "same_place_id_untracked": sum(r["same_place_id_as_day_before"] for r in later),
        "withdrawn": sum(r["withdrawn"] for r in later),
        "lifecycle": dict(sum((Counter(r["lifecycle"]) for r in later), Counter())),
        "ids_unique_every_day": all(r["ids_unique"] for r in per_day),
    }
    return {
        "hotspots": [h.id for h in selected],
        "scenario": settings.simulator.scenario,
        "start": start.isoformat(),
        "days": days,
        "per_day": per_day,
        "summary": summary,
    }


def _nearest(gone: Alert, shapes: list[tuple[Alert, Any]]) -> str:
    """Today's outline that overlaps a withdrawn alert most, whatever its type: why it did not match."""
    gs = shape(gone.geometry)
    share, best = max(((overlap(gs, s), a) for a, s in shapes), key=lambda x: x[0], default=(0.0, None))
    if best is None or share == 0:
        return "nothing there today"
    return f"today {best.id} {best.change_type.value} {best.area_ha} ha overlaps {share:.2f}"


def _describe(a: Alert) -> str:
    return (
        f"{a.id} {a.change_type.value} {a.area_ha} ha {a.confidence.value} "
        f"first observed {a.first_observed} last {a.last_observed}"
        + (f" radar last change {a.radar_last_change}" if a.radar_last_change else "")
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("hotspots", nargs="*", default=DEFAULT_HOTSPOTS)
    ap.add_argument("--start", type=date.fromisoformat, default=date(2025, 12, 16))
    ap.add_argument("--days", type=int, default=6)
    ap.add_argument(
        "--scenario",
        help="simulator scenario: a name under config/scenarios/ or a path (default: the settings' one)",
    )
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bw-tracking-") as tmp:
        res = run(args.hotspots, args.start, args.days, args.scenario, Path(tmp))
    s = res["summary"]
    n = s["alerts_after_day_1"] or 1
    print(
        f"after day 1: {s['alerts_after_day_1']} alerts; kept an earlier id with tracking "
        f"{s['kept_id_tracked']} ({s['kept_id_tracked'] / n:.0%}), same place-based id without tracking "
        f"{s['same_place_id_untracked']} ({s['same_place_id_untracked'] / n:.0%}); withdrawn {s['withdrawn']}; "
        f"states {s['lifecycle']}; ids unique every day: {s['ids_unique_every_day']}"
    )
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
