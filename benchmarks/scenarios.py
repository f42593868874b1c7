"""Evaluate: run the simulator scenarios through the pipeline and score them against the issue's targets.

    python benchmarks/scenarios.py [--json FILE] [--all-hotspots] [SCENARIO ...]

SCENARIO is a file name under config/scenarios/ (with or without .yaml) or a path; without any, the scenarios
listed in DEFAULT_SCENARIOS run. Each scenario runs monitoring.evaluate.evaluate_scenario on its own run date at
the hot spots that have events plus its quiet hot spots (the ones that must stay silent), not at all sixteen, to
keep the run short. The run date and the quiet hot spots come from two comment lines at the top of the scenario
file (``# run-date: YYYY-MM-DD`` and ``# quiet-hotspots: a, b``), else from FALLBACK below.

Per scenario it prints, per event type, events / found / alerts / precision / recall / F1, then false alerts per
100 km² of unchanged land and the largest false alert, then what evaluate_scenario does not itemise: every alert
that is not true (type, size, confidence, sensors, land cover under it, and whether it lies on stubble burnt by
farmers or on paddy flooded in the analysis windows), the false-alert rate of high/highest-confidence alerts alone,
every missed event with what the sensors saw of it (clear share of each Sentinel-2 look after it, clear baseline,
Sentinel-1 passes after it), recall over the events a sensor saw at all, and per-area coverage. A summary table
against the issue's targets ends the output.

The details come from temporarily wrapping two functions evaluate_scenario calls (monitoring.evaluate.score_area and
monitoring.pipeline.analyse_area) and from the simulator itself (land cover, farm burns, flooded paddy; the
observation diagnostics render the area's Sentinel-2 scenes a second time, ~10-20% more run time). The scores are
evaluate_scenario's own. Simulation only: the figures measure the pipeline on simulated imagery, not real damage.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

import numpy as np  # noqa: E402

import monitoring.evaluate as ev_mod  # noqa: E402
import monitoring.pipeline as pipe_mod  # noqa: E402
from monitoring.aoi import aoi_from_hotspot, windows_for  # noqa: E402
from monitoring.config import HotSpot, Settings, hotspot_by_id, load_hotspots, load_settings  # noqa: E402
from monitoring.results import UNTYPED_AS, Alert, ChangeType, Confidence  # noqa: E402
from monitoring.sources.simulator import SimulatorSource, load_scenario  # noqa: E402
from monitoring.sources.simulator.events import scenario_anchors  # noqa: E402
from monitoring.sources.simulator.landcover import CLASS_NAMES, PADDY, render_ground  # noqa: E402
from monitoring.sources.simulator.scenario import Scenario  # noqa: E402
from monitoring.sources.simulator.spectra import PADDY_STATES, paddy_weights  # noqa: E402
from monitoring.sources.simulator.world import Window, grid_axes, world_for  # noqa: E402

SCENARIO_DIR = ROOT / "config" / "scenarios"
DEFAULT_SCENARIOS = (
    "monsoon-jul-2025",
    "monsoon-jul-2025-climatology",
    "full-cloud",
    "small-events",
    "farm-burning",
    "farm-burning-dec-2025",
    "land-cover",
)
FALLBACK: dict[str, dict[str, Any]] = {
    # Scenarios without the comment lines (the default scenario is not edited here).
    "dec-2025": {"run_date": "2025-12-22", "quiet": ["chong-bok", "ban-kruat"]},
}
TARGETS = {
    "f1_per_type": 0.90,
    "false_alerts_per_100km2_at_40pct_cloud": 1.0,
    "sar_only_structural_recall": 0.85,
    "sar_only_structural_precision": 0.80,
    "high_confidence_alerts_on_farm_burns_or_flooded_paddy": 0,
}
ON_SHARE = 0.10
"""An alert counts as lying on farm burns (flooded paddy) when at least this share of it does (as TRUE_SHARE)."""
HIGH = (Confidence.HIGH, Confidence.HIGHEST)
MAX_LISTED = 6
"""Alerts that are not true listed per area (highest confidence and largest first); the rest are counted."""
OBSERVED_SHARE = 0.5
"""An event counts as observed when a sensor saw at least this share of it after it happened."""
FLOOD, CHAR = PADDY_STATES.index("flooded"), PADDY_STATES.index("char")


# -- scenario files -------------------------------------------------------------------------------------------


def scenario_path(name: str) -> Path:
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    q = SCENARIO_DIR / (name if name.endswith(".yaml") else f"{name}.yaml")
    if not q.exists():
        raise SystemExit(f"{name}: no such scenario (looked for {p} and {q}).")
    return q


def header_settings(path: Path) -> dict[str, Any]:
    """run_date and quiet hot spots from the file's leading comment lines, else FALLBACK[stem]."""
    out: dict[str, Any] = dict(FALLBACK.get(path.stem, {}))
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            if line.strip():
                break
            continue
        m = re.match(r"#\s*run-date:\s*(\d{4}-\d{2}-\d{2})", line)
        if m:
            out["run_date"] = m.group(1)
        m = re.match(r"#\s*quiet-hotspots:\s*(.*)$", line)
        if m:
            out["quiet"] = [s.strip() for s in m.group(1).split(",") if s.strip()]
    if "run_date" not in out:
        raise SystemExit(f"{path}: no '# run-date: YYYY-MM-DD' comment at the top and no fallback for it.")
    return out


def hotspots_for(
    scenario: Scenario, quiet: Sequence[str], spots: list[HotSpot], every: bool
) -> list[HotSpot]:
    if every:
        return spots
    ids = {e.hotspot for e in scenario.events if e.hotspot} | set(quiet)
    return [h for h in spots if h.id in ids]


# -- what the simulator knows that the scores do not: land cover, farm burns, flooded paddy --------------------


def background_layers(
    scenario: Scenario, h: HotSpot, seed: int, run_date: date, settings: Settings
) -> dict[str, np.ndarray]:
    """Per-pixel layers on the AOI grid: internal land-cover class, farm-burnt stubble with char visible in the
    after window, and paddy that lay flooded on some day of the SAR baseline or the after window."""
    aoi = aoi_from_hotspot(h)
    world = world_for(aoi.geobox, seed)
    xs, ys = grid_axes(aoi.geobox)
    ground = render_ground(world, Window(xs, ys), scenario_anchors(world, scenario))
    paddy = ground.cls == PADDY
    farm_burn = np.zeros(ground.shape, bool)
    flooded = np.zeros(ground.shape, bool)
    if paddy.any():
        win = windows_for(run_date, settings.windows)
        bg = scenario.background
        args = (ground.harvest_doy[paddy], ground.transplant_doy[paddy], ground.field_u[paddy])
        char_max = np.zeros(int(paddy.sum()), np.float32)
        flood_max = np.zeros(int(paddy.sum()), np.float32)
        day = win.sar_before[0]
        while day <= win.after[1]:
            w = paddy_weights(
                *args,
                float(day.timetuple().tm_yday),
                burn_fraction=bg.farm_burning_fraction,
                burn_days=bg.farm_burning_days,
            )
            flood_max = np.maximum(flood_max, w[FLOOD])
            if day >= win.after[0]:
                char_max = np.maximum(char_max, w[CHAR])
            day += timedelta(days=3)
        farm_burn[paddy] = char_max >= 0.3
        flooded[paddy] = flood_max >= 0.5
    return {"cls": ground.cls, "farm_burn": farm_burn, "flooded_paddy": flooded}


def _cover(share: Counter[str]) -> str:
    top = [f"{k} {v:.0%}" for k, v in share.most_common(2) if v >= 0.15]
    return ", ".join(top) or "mixed"


def alert_details(
    alerts: Sequence[Alert], truth: Sequence[Any], geobox: Any, layers: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    """Every alert with its verdict (as score_area decides it) and what lies under it."""
    from scipy import ndimage

    near_type: dict[ChangeType, np.ndarray] = {}
    near_any = np.zeros(geobox.shape, bool)
    for t in truth:
        grown = ndimage.binary_dilation(t.mask, iterations=ev_mod.TOLERANCE_PX)
        near_type[t.change_type] = near_type.get(t.change_type, np.zeros(geobox.shape, bool)) | grown
        near_any |= grown
    for u, may_be in UNTYPED_AS.items():  # an untyped alert is true on what it may be, as in score_area
        near_type[u] = np.logical_or.reduce([near_type.get(t, np.zeros(geobox.shape, bool)) for t in may_be])
    out = []
    for a, px in ev_mod.rasterise_alerts(alerts, geobox):
        n = max(int(px.sum()), 1)
        own = near_type.get(a.change_type)
        if own is not None and own[px].sum() / n >= ev_mod.TRUE_SHARE:
            verdict = "true"
        elif near_any[px].sum() / n >= ev_mod.TRUE_SHARE:
            verdict = "wrong type"
        else:
            verdict = "false"
        cls = layers["cls"][px]
        counts = Counter(CLASS_NAMES.get(int(c), "?") for c in cls)
        share = Counter({k: v / n for k, v in counts.items()})
        out.append(
            {
                "id": a.id,
                "type": a.change_type.value,
                "area_ha": a.area_ha,
                "confidence": a.confidence.value,
                "sensors": a.sensors,
                "methods": a.methods,
                "observations": a.observations,
                "verdict": verdict,
                "cover": _cover(share),
                "paddy_share": round(share.get("paddy", 0.0), 3),
                "farm_burn_share": round(float(layers["farm_burn"][px].sum() / n), 3),
                "flooded_paddy_share": round(float(layers["flooded_paddy"][px].sum() / n), 3),
            }
        )
    return out


def event_diagnostics(
    source: Any,
    aoi: Any,
    truth: Sequence[Any],
    alerts: Sequence[Alert],
    missed: set[str],
    windows: Any,
    min_event_ha: float,
) -> dict[str, dict[str, Any]]:
    """For each scored event: found or not, how much of it alerts of its own / any type cover, and what the
    sensors saw of it after it happened (share of its pixels clear in each Sentinel-2 scene of the after window,
    as the pipeline's cloud mask decides; share with at least one clear look in the optical baseline; Sentinel-1
    passes after it and the share Sentinel-1 sees outside layover and shadow). `observed`: optical types need
    half of the event clear in the baseline and half clear in one look after the event; structural damage (a
    Sentinel-1 detection) needs a pass after the event and half of it outside layover and shadow."""
    from monitoring.preprocess.cloudmask import clear_mask

    todo = [t for t in truth if t.area_ha >= min_event_ha]
    if not todo:
        return {}
    rasters = ev_mod.rasterise_alerts(alerts, aoi.geobox)
    opt = source.load_optical(aoi, *windows.after)
    clear = np.asarray(clear_mask(opt).values, bool)
    days = [date.fromisoformat(str(np.datetime64(t, "D"))) for t in opt["time"].values]
    base_clear = np.asarray(
        np.any(clear_mask(source.load_optical(aoi, *windows.before)).values, axis=0), bool
    )
    sar = source.load_sar(aoi, *windows.after)
    sar_valid = np.asarray(np.any(sar["valid"].values, axis=0), bool)
    sar_days = [date.fromisoformat(str(np.datetime64(t, "D"))) for t in sar["time"].values]
    out = {}
    for t in todo:
        m = t.mask
        n = max(int(m.sum()), 1)
        by_type: dict[str, float] = {}
        for a, px in rasters:
            share = float((px & m).sum() / n)
            if share > 0:
                by_type[a.change_type.value] = by_type.get(a.change_type.value, 0.0) + share
        looks = [
            (d.isoformat()[5:], round(float(clear[i][m].mean()), 2)) for i, d in enumerate(days) if d > t.date
        ]
        base_share = round(float(base_clear[m].mean()), 2)
        sar_after = sum(d > t.date for d in sar_days)
        if t.change_type == ChangeType.STRUCTURAL_DAMAGE:
            observed = sar_after > 0 and float(sar_valid[m].mean()) >= OBSERVED_SHARE
        else:
            observed = base_share >= OBSERVED_SHARE and any(sh >= OBSERVED_SHARE for _, sh in looks)
        out[t.id] = {
            "found": t.id not in missed,
            "observed": observed,
            "type": t.change_type.value,
            "area_ha": round(t.area_ha, 2),
            "covered_by": {k: round(v, 2) for k, v in by_type.items()},
            "clear_looks_after_event": looks,
            "baseline_clear_share": base_share,
            "sar_passes_after_event": sar_after,
            "sar_valid_share": round(float(sar_valid[m].mean()), 2),
        }
    return out


# -- one scenario ---------------------------------------------------------------------------------------------


def run_scenario(
    path: Path, *, settings: Settings, spots: list[HotSpot], every: bool, log: Callable[[str], None]
) -> dict[str, Any]:
    scenario = load_scenario(path)
    hdr = header_settings(path)
    run_date = date.fromisoformat(hdr["run_date"])
    quiet = hdr.get("quiet", [])
    for q in quiet:
        hotspot_by_id(spots, q)  # a typo in the header is an error, not a silently skipped area
    chosen = hotspots_for(scenario, quiet, spots, every)
    captured: dict[str, dict[str, Any]] = {}
    real_score, real_analyse = ev_mod.score_area, pipe_mod.analyse_area

    def analyse(aoi: Any, windows: Any, **kw: Any) -> Any:
        res = real_analyse(aoi, windows, **kw)
        cov = res.coverage
        captured.setdefault(aoi.id, {})["coverage"] = cov.model_dump(mode="json") if cov else None
        captured[aoi.id]["warnings"] = res.warnings
        captured[aoi.id]["seconds"] = res.seconds
        return res

    def score(alerts: Sequence[Alert], truth: Sequence[Any], geobox: Any, **kw: Any) -> Any:
        area = current[0]
        h = hotspot_by_id(spots, area)
        layers = background_layers(scenario, h, settings.simulator.seed, run_date, settings)
        captured.setdefault(area, {})["alerts"] = alert_details(alerts, truth, geobox, layers)
        captured[area]["truth"] = [
            {"id": t.id, "type": t.change_type.value, "area_ha": round(t.area_ha, 2)} for t in truth
        ]
        captured[area]["farm_burn_ha"] = round(float(layers["farm_burn"].sum()) / 100, 1)
        sc = real_score(alerts, truth, geobox, **kw)
        missed = {i for ts in sc.by_type.values() for i in ts.missed}
        src = SimulatorSource(scenario, seed=settings.simulator.seed, chunk_size=settings.chunk_size)
        captured[area]["events"] = event_diagnostics(
            src,
            aoi_from_hotspot(h),
            truth,
            alerts,
            missed,
            windows_for(run_date, settings.windows),
            kw.get("min_event_ha", 0.5),
        )
        return sc

    current = [""]

    def progress(area: str) -> None:
        current[0] = area
        log(f"  {path.stem}: {area}")

    ev_mod.score_area, pipe_mod.analyse_area = score, analyse  # type: ignore[assignment]
    t0 = time.perf_counter()
    try:
        res = ev_mod.evaluate_scenario(
            path, settings=settings, hotspots=chosen, run_date=run_date, min_event_ha=0.2, progress=progress
        )
    finally:
        ev_mod.score_area, pipe_mod.analyse_area = real_score, real_analyse  # type: ignore[assignment]
    res["seconds"] = round(time.perf_counter() - t0, 1)
    res["hotspots"] = [h.id for h in chosen]
    res["quiet_hotspots"] = quiet
    res["clouds"] = scenario.clouds.model_dump()
    res["background"] = scenario.background.model_dump()
    for area, extra in captured.items():
        res["areas"].setdefault(area, {}).update(extra)
    res["summary"] = summarise(res)
    return res


def summarise(res: dict[str, Any]) -> dict[str, Any]:
    alerts = [a | {"area": k} for k, v in res["areas"].items() for a in v.get("alerts", [])]
    not_true = [a for a in alerts if a["verdict"] != "true"]
    on_burn = [a for a in not_true if a["farm_burn_share"] >= ON_SHARE]
    on_flood = [a for a in not_true if a["flooded_paddy_share"] >= ON_SHARE]
    on_paddy = [a for a in not_true if a["paddy_share"] >= ON_SHARE]
    seen: dict[str, dict[str, set[str]]] = {}
    for v in res["areas"].values():
        for eid, d in v.get("events", {}).items():
            st = seen.setdefault(d["type"], {"events": set(), "observed": set(), "found": set()})
            st["events"].add(eid)
            if d["observed"]:
                st["observed"].add(eid)
            if d["found"]:
                st["found"].add(eid)
    observed_recall = {}
    for t, st in seen.items():
        # An event in two overlapping areas is scored in both by evaluate_scenario; here once, found if found in
        # either and observed if observed in either.
        obs = st["observed"]
        observed_recall[t] = {
            "events": len(st["events"]),
            "observed": len(obs),
            "found_observed": len(obs & st["found"]),
            "recall_observed": round(len(obs & st["found"]) / len(obs), 3) if obs else None,
            "unobserved": sorted(st["events"] - obs),
        }
    false_high = [a for a in alerts if a["verdict"] == "false" and a["confidence"] in HIGH]
    km2 = res["unchanged_km2"]
    return {
        "false_alerts_high": len(false_high),
        "false_alerts_high_per_100km2": round(100.0 * len(false_high) / km2, 3) if km2 else None,
        "observed_recall": observed_recall,
        "alerts": len(alerts),
        "alerts_by_confidence": dict(Counter(a["confidence"] for a in alerts)),
        "not_true_by_confidence": dict(Counter(a["confidence"] for a in not_true)),
        "farm_burn_alerts": len(on_burn),
        "farm_burn_alerts_high": sum(a["confidence"] in HIGH for a in on_burn),
        "flooded_paddy_alerts": len(on_flood),
        "flooded_paddy_alerts_high": sum(a["confidence"] in HIGH for a in on_flood),
        "paddy_alerts": len(on_paddy),
        "paddy_alerts_high": sum(a["confidence"] in HIGH for a in on_paddy),
        "farm_burn_ha": round(sum(v.get("farm_burn_ha", 0.0) for v in res["areas"].values()), 1),
    }


# -- printing ---------------------------------------------------------------------------------------------------


def _f(v: Any, spec: str = ".3f") -> str:
    return "—" if v is None else format(v, spec)


def print_scenario(res: dict[str, Any]) -> None:
    cl = res["clouds"]
    cloud = f"fixed {cl['fraction']:.0%}" if cl["fraction"] is not None else f"climatology x {cl['scale']}"
    bg = res["background"]
    burn = (
        f"farm burning {bg['farm_burning_fraction']:.0%} of fields within {bg['farm_burning_days']} d"
        if bg["farm_burning_fraction"]
        else "no farm burning"
    )
    print(
        f"\n=== {Path(res['scenario']).stem}  run date {res['run_date']}  clouds {cloud}, {burn}  "
        f"({res['seconds']} s, {len(res['hotspots'])} hot spots, quiet: {', '.join(res['quiet_hotspots']) or '-'})"
    )
    head = f"{'type':<19}{'events':>7}{'found':>6}{'alerts':>7}{'true':>5}{'prec':>7}{'recall':>7}{'F1':>7}  missed"
    print(head)
    print("-" * len(head))
    for t, m in res["by_type"].items():
        print(
            f"{t:<19}{m['events']:>7}{m['found']:>6}{m['alerts']:>7}{m['true_alerts']:>5}{_f(m['precision']):>7}"
            f"{_f(m['recall']):>7}{_f(m['f1']):>7}  "
            + ", ".join(
                i + (" (located, untyped)" if i in m.get("located_untyped", ()) else "") for i in m["missed"]
            )
        )
    s = res["summary"]
    print(
        f"false alerts {res['false_alerts']} = {_f(res['false_alerts_per_100km2'], '.2f')} per 100 km² of "
        f"unchanged land ({res['unchanged_km2']} km²); largest {res['largest_false_alert_ha']} ha; wrong type "
        f"{res['wrong_type']}; high/highest-confidence false alerts {s['false_alerts_high']} = "
        f"{_f(s['false_alerts_high_per_100km2'], '.2f')} per 100 km²"
    )
    print(f"alerts by confidence: {s['alerts_by_confidence']}; not true: {s['not_true_by_confidence']}")
    print(
        f"set aside as farm burning (not alerts): {res.get('set_aside_as_farm_burning', 0)}; events among them: "
        f"{', '.join(res.get('events_set_aside', [])) or 'none'}"
    )
    print(
        f"on farm burns: {s['farm_burn_alerts']} ({s['farm_burn_alerts_high']} high/highest; "
        f"{s['farm_burn_ha']} ha of burnt stubble visible in the after window) | on flooded paddy: "
        f"{s['flooded_paddy_alerts']} ({s['flooded_paddy_alerts_high']} high/highest) | touching paddy: "
        f"{s['paddy_alerts']} ({s['paddy_alerts_high']} high/highest)"
    )
    orc = s["observed_recall"]
    if any(v["unobserved"] for v in orc.values()):
        print(
            "events no sensor saw after they happened (optical: no look with half of it clear): "
            + "; ".join(f"{t} {', '.join(v['unobserved'])}" for t, v in orc.items() if v["unobserved"])
        )
        print(
            "recall over observed events (each event once): "
            + ", ".join(f"{t} {v['found_observed']}/{v['observed']}" for t, v in orc.items())
        )
    print("per area: optical observed share | SAR observed share | truth | alerts not true")
    for area, a in res["areas"].items():
        cov = a.get("coverage") or {}
        bad = [x for x in a.get("alerts", []) if x["verdict"] != "true"]
        truth = ", ".join(f"{t['id']} {t['area_ha']}" for t in a.get("truth", [])) or "-"
        print(
            f"  {area:<16} opt {_f(cov.get('optical_observed_fraction'), '.2f')} sar "
            f"{_f(cov.get('sar_observed_fraction'), '.2f')}  truth: {truth}"
        )
        for mid, d in a.get("events", {}).items():
            if d["found"]:
                continue
            looks = ", ".join(f"{day} {sh:.0%}" for day, sh in d["clear_looks_after_event"]) or "none"
            cov = ", ".join(f"{k} {v:.0%}" for k, v in d["covered_by"].items()) or "nothing"
            print(
                f"      missed     {d['type']:<18} {d['area_ha']:>5} ha {mid}: covered by {cov}; S2 clear: baseline "
                f"{d['baseline_clear_share']:.0%}, looks after it {looks}; S1: {d['sar_passes_after_event']} passes "
                f"after it, sees {d['sar_valid_share']:.0%}"
            )
        rank = {"highest": 0, "high": 1, "low": 2}
        bad.sort(key=lambda x: (rank[x["confidence"]], -x["area_ha"]))
        if len(bad) > MAX_LISTED:
            rest = Counter(f"{x['verdict']} {x['type']} {x['confidence']}" for x in bad[MAX_LISTED:])
            burnt = sum(x["farm_burn_share"] >= ON_SHARE for x in bad[MAX_LISTED:])
            more = (
                f"      ... and {len(bad) - MAX_LISTED} more: "
                + ", ".join(f"{n} {k}" for k, n in rest.most_common())
                + f" ({burnt} of them on farm burns)"
            )
            bad = bad[:MAX_LISTED]
        else:
            more = ""
        for x in bad:
            print(
                f"      {x['verdict']:<10} {x['type']:<18} {x['area_ha']:>5} ha {x['confidence']:<7} "
                f"{'+'.join(x['sensors']):<22} obs {x['observations']}  on {x['cover']}; farm burn "
                f"{x['farm_burn_share']:.0%}, flooded paddy {x['flooded_paddy_share']:.0%}"
            )
        if more:
            print(more)


def print_targets(results: dict[str, dict[str, Any]]) -> None:
    types = [t.value for t in ChangeType if t is not ChangeType.VEGETATION_LOSS]
    print(
        "\n=== Against the issue's targets (F1 >= 0.90 per type; <= 1 false alert per 100 km² under 40% cloud;"
    )
    print(
        "    SAR-only structural damage recall >= 0.85 at precision >= 0.80; no high-confidence alert on farm burns"
    )
    print(
        "    or flooded paddy). F1 cells: F1 over all events (recall over observed events); n/o = no event of the"
    )
    print("    type was observed at all; - = no event of the type.")
    head = (
        f"{'scenario':<30}"
        + "".join(f"{t[:12]:>19}" for t in types)
        + f"{'false/100km²':>14}{'high-conf':>10}"
        f"{'farm burn hi':>13}{'flood hi':>9}"
    )
    print(head)
    print("-" * len(head))
    for name, r in results.items():
        orc = r["summary"]["observed_recall"]
        cells = []
        for t in types:
            m, o = r["by_type"].get(t), orc.get(t)
            if not m or not m["events"]:
                cells.append("-")
            elif o and o["observed"] == 0:
                cells.append("n/o")
            else:
                ro = f"{o['found_observed']}/{o['observed']}" if o else "?"
                cells.append(f"{_f(m['f1'], '.2f')} ({ro})")
        s = r["summary"]
        print(
            f"{name:<30}"
            + "".join(f"{c:>19}" for c in cells)
            + f"{_f(r['false_alerts_per_100km2'], '.2f'):>14}"
            f"{_f(s['false_alerts_high_per_100km2'], '.2f'):>10}{s['farm_burn_alerts_high']:>13}"
            f"{s['flooded_paddy_alerts_high']:>9}"
        )
    fc = results.get("full-cloud")
    if fc and "structural_damage" in fc["by_type"]:
        m = fc["by_type"]["structural_damage"]
        print(
            f"full-cloud structural damage (SAR only): recall {_f(m['recall'])} (target >= 0.85), "
            f"precision {_f(m['precision'])} (target >= 0.80)"
        )


def code_version() -> str:
    """The checkout's commit, and whether detection code differs from it (others edit while benchmarks run)."""
    import subprocess

    def git(*a: str) -> str:
        try:
            return subprocess.run(
                ["git", *a], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "monitoring")
    return head + (" + uncommitted changes in monitoring/" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="names under config/scenarios/ or paths")
    ap.add_argument("--json", type=Path, help="write every figure to this JSON file")
    ap.add_argument(
        "--all-hotspots", action="store_true", help="run at all 16 hot spots, not only the relevant"
    )
    args = ap.parse_args(argv)

    settings = load_settings()
    spots = load_hotspots()
    names = args.scenarios or list(DEFAULT_SCENARIOS)
    paths = [scenario_path(n) for n in names]
    for p in paths:
        load_scenario(p)  # fail on a bad file before the long runs
        header_settings(p)
    results: dict[str, dict[str, Any]] = {}
    version = code_version()
    print(
        f"code {version}; settings: mmu_ha {settings.thresholds.mmu_ha}, after window "
        f"{settings.windows.after_days} d, optical baseline {settings.windows.before_days} d, SAR baseline "
        f"{settings.windows.sar_baseline_days} d, seed {settings.simulator.seed}"
    )
    t0 = time.perf_counter()
    for p in paths:
        res = run_scenario(
            p,
            settings=settings,
            spots=spots,
            every=args.all_hotspots,
            log=lambda s: print(s, file=sys.stderr, flush=True),
        )
        results[p.stem] = res
        print_scenario(res)
        sys.stdout.flush()
    wall = round(time.perf_counter() - t0, 1)
    print_targets(results)
    print(f"\ntotal {wall} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"code": version, "targets": TARGETS, "seconds": wall, "scenarios": results}
        args.json.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
