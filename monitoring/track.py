"""Track: follow alerts from one daily run to the next (same id, lifecycle state); pure, the store does the IO.

A daily run looks at a 16-day after window, so an event is reported on many consecutive days; each run also redraws
the outlines from its own evidence, so a centroid-based id changes whenever an outline shifts across a 100 m cell.
Tracking matches today's alerts to the ones earlier runs reported at the same place (outlines overlapping, same or
compatible change type; one to one, most alike first), gives them the earlier id, and says what happened since.
Outlines merge and split as looks enter and leave the window: an earlier alert that today's outline swallowed
with another is merged (not withdrawn; the earliest first report counts), and a part that split off an earlier
alert gets its own id but is not new. The states:

- ``new``: no earlier run reported it;
- ``unconfirmed``: an earlier run reported it, and nothing seen since shows it again (no later clear look: cloud);
- ``confirmed``: an earlier run reported it, and a later observation (optical or radar) still shows it;
- ``ongoing``: as confirmed, and the ground kept changing since the last report: radar dated a change point
  after it (repeated strikes). An outline that grew is not enough: a new clear look, or a second sensor, shows
  more of the same change, and nothing in one run's alert tells that from a change that spread.

Alerts the previous run reported whose change began inside today's after window but that today's run no longer
detects are listed as withdrawn, once: today's evidence no longer supports them (e.g. what looked like change was
flood water that receded). They stay tracks for a while, so if a later run sees the change again it gets its old
id back. Tracks whose change is older than the after window have aged into the baseline and are not news.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import shapely
from shapely.geometry import shape

from monitoring.results import UNTYPED_AS, Alert, ChangeType

MIN_OVERLAP = 0.3
"""Share of the smaller outline that must lie inside the other for two alerts to be the same change."""


@dataclass(frozen=True)
class Track:
    """An alert as the latest earlier run reported it."""

    alert: Alert
    first_reported: date
    """Run date of the first daily run that reported it."""
    last_reported: date
    """Run date of the latest earlier run that reported it."""


@dataclass(frozen=True)
class Tracked:
    """Today's alerts with tracked ids and lifecycle states, and what earlier runs reported that is gone."""

    alerts: list[Alert]
    seasonal_burns: list[Alert]
    withdrawn: list[Track] = field(default_factory=list)
    """Tracks the previous run reported, whose change began inside today's after window, that today's run no
    longer detects."""


def compatible(a: ChangeType, b: ChangeType) -> bool:
    """Whether two change types can name the same change (radar's untyped vegetation loss may be typed later)."""
    return a == b or b in UNTYPED_AS.get(a, ()) or a in UNTYPED_AS.get(b, ())


def overlap(a: shapely.Geometry, b: shapely.Geometry) -> float:
    """Area of the intersection over the smaller area (0..1); outlines in lon/lat, so only the ratio is used."""
    small = min(a.area, b.area)
    if small <= 0 or not a.intersects(b):
        return 0.0
    return float(a.intersection(b).area / small)


def _iou(a: shapely.Geometry, b: shapely.Geometry) -> float:
    if not a.intersects(b):
        return 0.0
    union = a.union(b).area
    return float(a.intersection(b).area / union) if union > 0 else 0.0


def _lifecycle(alert: Alert, prev: Alert) -> str:
    # A change point radar dated after everything the last report had seen: the ground changed again since.
    known = max(d for d in (prev.radar_last_change, prev.last_observed) if d is not None)
    if alert.radar_last_change is not None and alert.radar_last_change > known:
        return "ongoing"
    if alert.last_observed > prev.last_observed or prev.lifecycle in ("confirmed", "ongoing"):
        return "confirmed"
    return "unconfirmed"


def track_alerts(
    alerts: list[Alert],
    tracks: list[Track],
    *,
    run_date: date,
    after_start: date,
    seasonal_burns: list[Alert] | None = None,
    previous_run: date | None = None,
) -> Tracked:
    """Match today's alerts (and set-aside seasonal burns) of one area to the earlier runs' tracks.

    tracks: the live tracks of this area, each the latest earlier report of one alert id (store.tracks).
    after_start: first day of today's after window; a track not matched today is withdrawn only if its change
    was first observed on or after it (older changes have aged into the baseline) and previous_run (the area's
    latest earlier run that looked: store.previous_run; None = the latest report among the tracks) reported it,
    so a withdrawal is said once, not again on every later day.
    Matching is one-to-one, greedy by intersection over union among the pairs that share MIN_OVERLAP of the
    smaller outline; an alert that matches no track keeps its own (place-based) id, made unique against the
    tracks' ids.
    """
    seasonal_burns = list(seasonal_burns or [])
    today = [*alerts, *seasonal_burns]
    shapes = [shape(a.geometry) for a in today]
    past = [shape(t.alert.geometry) for t in tracks]
    # Candidate pairs: compatible types, a third of the smaller outline shared. Best first by intersection over
    # union, so a redrawn outline goes to the track it resembles most, not to a small older one inside it.
    pairs = sorted(
        (
            (_iou(s, p), i, j)
            for i, (a, s) in enumerate(zip(today, shapes, strict=True))
            for j, (t, p) in enumerate(zip(tracks, past, strict=True))
            if compatible(a.change_type, t.alert.change_type) and overlap(s, p) >= MIN_OVERLAP
        ),
        key=lambda x: (-x[0], x[1], x[2]),
    )
    match: dict[int, int] = {}
    used: set[int] = set()
    for _, i, j in pairs:
        if i in match or j in used:
            continue
        match[i] = j
        used.add(j)
    # Outlines merge and split as evidence comes in: a track left over that overlaps an alert matched to another
    # track merged into it (it is not withdrawn, and its first report counts); an alert left over that overlaps
    # a matched track split off it (its own id, but not new).
    merged: dict[int, list[int]] = {}
    split: dict[int, int] = {}
    for _, i, j in pairs:
        if j not in used and i in match:
            merged.setdefault(i, []).append(j)
            used.add(j)
        elif i not in match and i not in split and j in used:
            split[i] = j
    taken = {t.alert.id for t in tracks}
    out: list[Alert] = []
    for i, a in enumerate(today):
        if i in match:
            t = tracks[match[i]]
            update = {
                "id": t.alert.id,
                "first_reported": min(tracks[j].first_reported for j in [match[i], *merged.get(i, [])]),
                "lifecycle": _lifecycle(a, t.alert),
            }
        elif i in split:
            t = tracks[split[i]]
            update = {
                "id": _unique(a.id, taken),
                "first_reported": t.first_reported,
                "lifecycle": _lifecycle(a, t.alert),
            }
        else:
            update = {"id": _unique(a.id, taken), "first_reported": run_date, "lifecycle": "new"}
        taken.add(update["id"])  # type: ignore[arg-type]
        out.append(a.model_copy(update=update))
    if previous_run is None and tracks:
        previous_run = max(t.last_reported for t in tracks)
    withdrawn = [
        t
        for j, t in enumerate(tracks)
        if j not in used and t.last_reported == previous_run and t.alert.first_observed >= after_start
    ]
    return Tracked(alerts=out[: len(alerts)], seasonal_burns=out[len(alerts) :], withdrawn=withdrawn)


def _unique(alert_id: str, taken: set[str]) -> str:
    # A new change at a place an earlier, different alert was reported keeps the place-based id with a suffix.
    if alert_id not in taken:
        return alert_id
    n = 2
    while f"{alert_id}-{n}" in taken:
        n += 1
    return f"{alert_id}-{n}"
