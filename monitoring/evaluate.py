"""Evaluate: score alerts against ground truth (simulator scenarios) per change type."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import rasterio.features
import shapely
from odc.geo.geobox import GeoBox
from pyproj import Transformer
from scipy import ndimage
from shapely.geometry import shape

from monitoring.config import HotSpot, Settings
from monitoring.results import UNTYPED_AS, Alert, ChangeType

FOUND_SHARE = 0.25
"""An event counts as found when alerts of its type cover at least this share of its mask."""
TRUE_SHARE = 0.10
"""An alert counts as true when at least this share of it lies on an event of its type (20 m tolerance)."""
TOLERANCE_PX = 2


class TruthEvent(Protocol):
    """What scoring needs of a ground-truth event (the simulator's GroundTruthEvent has it)."""

    @property
    def id(self) -> str: ...
    @property
    def change_type(self) -> ChangeType: ...
    @property
    def area_ha(self) -> float: ...
    @property
    def mask(self) -> np.ndarray: ...


@dataclass
class TypeScore:
    events: int = 0
    found: int = 0
    alerts: int = 0
    true_alerts: int = 0
    missed: list[str] = field(default_factory=list)
    found_ids: list[str] = field(default_factory=list)
    located: list[str] = field(default_factory=list)
    """Missed events (of `missed`) that untyped alerts (UNTYPED_AS, e.g. radar's vegetation loss) cover as
    FOUND_SHARE: where a change was seen but not what it was. Not counted as found."""

    @property
    def recall(self) -> float | None:
        return self.found / self.events if self.events else None

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None if p is None or r is None else 0.0
        return 2 * p * r / (p + r)


@dataclass
class AreaScore:
    by_type: dict[ChangeType, TypeScore]
    false_alerts: list[Alert]
    """Alerts that touch no event of any type."""
    wrong_type: list[Alert]
    """Alerts on an event of another type."""
    unchanged_km2: float
    set_aside: int = 0
    """Burns set aside as the season's farm burning (HotspotResult.seasonal_burns): not alerts, not scored."""
    events_set_aside: list[str] = field(default_factory=list)
    """Events missed as alerts that the set-aside burns cover (as FOUND_SHARE): what setting them aside cost."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "by_type": {
                t.value: {
                    "events": s.events,
                    "found": s.found,
                    "alerts": s.alerts,
                    "true_alerts": s.true_alerts,
                    "recall": s.recall,
                    "precision": s.precision,
                    "f1": s.f1,
                    "missed": s.missed,
                    "located_untyped": s.located,
                }
                for t, s in self.by_type.items()
            },
            "false_alerts": len(self.false_alerts),
            "largest_false_alert_ha": max((a.area_ha for a in self.false_alerts), default=0.0),
            "wrong_type": len(self.wrong_type),
            "unchanged_km2": self.unchanged_km2,
            "set_aside": self.set_aside,
            "events_set_aside": self.events_set_aside,
        }


def rasterise_alerts(alerts: Iterable[Alert], geobox: GeoBox) -> list[tuple[Alert, np.ndarray]]:
    """Each alert's pixels on the grid (vectorise then rasterise keeps the area)."""
    to_grid = Transformer.from_crs("EPSG:4326", str(geobox.crs), always_xy=True)
    out = []
    for a in alerts:
        geom = shapely.ops.transform(to_grid.transform, shape(a.geometry))
        px = rasterio.features.rasterize(
            [(geom, 1)], out_shape=geobox.shape, transform=geobox.affine, fill=0, dtype="uint8"
        ).astype(bool)
        out.append((a, px))
    return out


def score_area(
    alerts: Sequence[Alert],
    truth: Sequence[TruthEvent],
    geobox: GeoBox,
    *,
    min_event_ha: float = 0.5,
    set_aside: Sequence[Alert] = (),
) -> AreaScore:
    """Per-type recall (events >= min_event_ha found with the right type) and precision of the alerts.

    set_aside: the area's burns set aside as farm burning; they are not alerts and score nothing, but events
    they would have found are named (events_set_aside)."""
    types = list(ChangeType)
    by_type = {t: TypeScore() for t in types}
    rasters = rasterise_alerts(alerts, geobox)
    union_by_type = {t: np.zeros(geobox.shape, bool) for t in types}
    for a, px in rasters:
        union_by_type[a.change_type] |= px
    aside_by_type = {t: np.zeros(geobox.shape, bool) for t in types}
    for a, px in rasterise_alerts(set_aside, geobox):
        aside_by_type[a.change_type] |= px
    events_set_aside: list[str] = []
    near_any = np.zeros(geobox.shape, bool)
    near_by_type = {t: np.zeros(geobox.shape, bool) for t in types}
    for ev in truth:
        grown = ndimage.binary_dilation(ev.mask, iterations=TOLERANCE_PX)
        near_by_type[ev.change_type] |= grown
        near_any |= grown
        if ev.area_ha >= min_event_ha:
            s = by_type[ev.change_type]
            s.events += 1
            covered = union_by_type[ev.change_type][ev.mask].mean() if ev.mask.any() else 0.0
            if covered >= FOUND_SHARE:
                s.found += 1
                s.found_ids.append(ev.id)
            else:
                s.missed.append(ev.id)
                if ev.mask.any() and aside_by_type[ev.change_type][ev.mask].mean() >= FOUND_SHARE:
                    events_set_aside.append(ev.id)
                if ev.mask.any() and any(
                    union_by_type[u][ev.mask].mean() >= FOUND_SHARE
                    for u, may_be in UNTYPED_AS.items()
                    if ev.change_type in may_be
                ):
                    s.located.append(ev.id)
    # An untyped alert is true on an event of any type it may be.
    for u, may_be in UNTYPED_AS.items():
        near_by_type[u] = np.logical_or.reduce([near_by_type[t] for t in may_be])
    false_alerts, wrong_type = [], []
    for a, px in rasters:
        s = by_type[a.change_type]
        s.alerts += 1
        n = max(int(px.sum()), 1)
        if near_by_type[a.change_type][px].sum() / n >= TRUE_SHARE:
            s.true_alerts += 1
        elif near_any[px].sum() / n >= TRUE_SHARE:
            wrong_type.append(a)
        else:
            false_alerts.append(a)
    px_km2 = abs(geobox.resolution.x * geobox.resolution.y) / 1e6
    return AreaScore(
        by_type={t: s for t, s in by_type.items() if s.events or s.alerts},
        false_alerts=false_alerts,
        wrong_type=wrong_type,
        unchanged_km2=float((~near_any).sum() * px_km2),
        set_aside=len(set_aside),
        events_set_aside=events_set_aside,
    )


def pool(scores: Iterable[AreaScore]) -> AreaScore:
    """Add up area scores (counts, not averages of ratios). An event seen from two overlapping areas counts
    once, as found if either area found it; alerts count per area, as the briefing lists them."""
    total: dict[ChangeType, TypeScore] = {}
    false_alerts: list[Alert] = []
    wrong: list[Alert] = []
    km2 = 0.0
    aside = 0
    events_aside: set[str] = set()
    for sc in scores:
        aside += sc.set_aside
        events_aside |= set(sc.events_set_aside)
        for t, s in sc.by_type.items():
            p = total.setdefault(t, TypeScore())
            p.alerts += s.alerts
            p.true_alerts += s.true_alerts
            p.found_ids = sorted(set(p.found_ids) | set(s.found_ids))
            p.missed = sorted((set(p.missed) | set(s.missed)) - set(p.found_ids))
            p.located = sorted((set(p.located) | set(s.located)) & set(p.missed))
            p.found = len(p.found_ids)
            p.events = p.found + len(p.missed)
        false_alerts += sc.false_alerts
        wrong += sc.wrong_type
        km2 += sc.unchanged_km2
    found = {i for s in total.values() for i in s.found_ids}
    return AreaScore(
        by_type=total,
        false_alerts=false_alerts,
        wrong_type=wrong,
        unchanged_km2=km2,
        set_aside=aside,
        events_set_aside=sorted(events_aside - found),
    )


def evaluate_scenario(
    scenario_path: Path,
    *,
    settings: Settings,
    hotspots: Sequence[HotSpot],
    run_date: date,
    min_event_ha: float = 0.2,
    work_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the simulator on a scenario at every hot spot and score the alerts against its ground truth.

    Returns a JSON-able dict: per-type precision/recall/F1 (events >= min_event_ha), false alerts per 100 km² of
    unchanged land, the largest false alert, and the same per area.
    """
    import tempfile

    from monitoring.aoi import aoi_from_hotspot, windows_for
    from monitoring.pipeline import analyse_area
    from monitoring.sources.simulator import SimulatorSource, load_scenario

    scenario = load_scenario(scenario_path)
    source = SimulatorSource(scenario, seed=settings.simulator.seed, chunk_size=settings.chunk_size)
    windows = windows_for(run_date, settings.windows)
    scores: list[AreaScore] = []
    areas: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        for h in hotspots:
            if progress:
                progress(h.id)
            aoi = aoi_from_hotspot(h)
            result = analyse_area(aoi, windows, source=source, settings=settings, run_dir=Path(tmp))
            truth = source.ground_truth(aoi, run_date)
            sc = score_area(
                result.alerts, truth, aoi.geobox, min_event_ha=min_event_ha, set_aside=result.seasonal_burns
            )
            scores.append(sc)
            areas[h.id] = sc.as_dict() | {
                "optical_observed_fraction": result.coverage.optical_observed_fraction
                if result.coverage
                else 0.0
            }
    total = pool(scores)
    summary = total.as_dict()
    per_100 = 100.0 * len(total.false_alerts) / total.unchanged_km2 if total.unchanged_km2 else None
    return {
        "scenario": str(scenario_path),
        "run_date": run_date.isoformat(),
        "min_event_ha": min_event_ha,
        "by_type": summary["by_type"],
        "false_alerts": summary["false_alerts"],
        "false_alerts_per_100km2": per_100,
        "largest_false_alert_ha": summary["largest_false_alert_ha"],
        "wrong_type": summary["wrong_type"],
        "unchanged_km2": round(total.unchanged_km2, 2),
        "set_aside_as_farm_burning": summary["set_aside"],
        "events_set_aside": summary["events_set_aside"],
        "areas": areas,
    }
