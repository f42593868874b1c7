"""Report: which active-fire detections lie on which alert, and their times in UTC and in local time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import shape

from monitoring.results import Alert, ChangeType, FireDetection, HotspotResult
from monitoring.sources.thermal import INSTRUMENT_PIXEL_M

PIXEL_M = INSTRUMENT_PIXEL_M
"""A detection is a fire somewhere in a pixel this wide around its centre, so it counts for an alert when its
centre lies within this distance of the outline (as in monitoring.fuse.Fires.reach_m)."""
DEFAULT_PIXEL_M = 375.0
"""For an instrument not in PIXEL_M: the smaller reach, so an unknown sensor never claims a far-off alert."""

LOCAL_TZ = timezone(timedelta(hours=7), "UTC+7")
"""Local time on both sides of the border (Asia/Bangkok and Asia/Phnom_Penh: UTC+7, no daylight saving)."""
LOCAL_LABEL = "local time, UTC+7"
"""Said after a local time, inside parentheses: "(first 2025-12-09 13:41 local time, UTC+7)"."""


def as_utc(t: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already (the pipeline's times all are)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def iso_utc(t: datetime) -> str:
    """'2025-12-09T06:41:00Z': RFC 3339 in UTC, which GDAL reads as a DateTime field."""
    return as_utc(t).isoformat(timespec="seconds").replace("+00:00", "Z")


def local_text(t: datetime) -> str:
    """'2025-12-09 13:41' in local time; say LOCAL_LABEL next to it."""
    return as_utc(t).astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def pixel_m(fire: FireDetection) -> float:
    return PIXEL_M.get(fire.instrument.upper(), DEFAULT_PIXEL_M)


@dataclass(frozen=True)
class FireOnAlert:
    """One after-window detection of an area and the alert (or farm burn) it was matched to, if any."""

    fire: FireDetection
    alert: Alert | None
    seasonal: bool = False
    """The alert is a burn set aside as the season's farm burning."""

    @property
    def on_burn_alert(self) -> bool:
        return self.alert is not None and not self.seasonal and self.alert.change_type is ChangeType.BURN_SCAR


def _in_interval(fire: FireDetection, alert: Alert) -> bool:
    # Whole UTC days, inclusive, as the pipeline matches them: the last clear look and the first observation are
    # days, and the fire that made the change burnt somewhere between them.
    day = as_utc(fire.time).date()
    return (alert.last_clear_before is None or alert.last_clear_before <= day) and day <= alert.first_observed


def _projector(crs: str) -> Callable[[np.ndarray], np.ndarray]:
    to_grid = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    return lambda xy: np.column_stack(to_grid.transform(xy[:, 0], xy[:, 1]))


def _distances(fires: list[FireDetection], alerts: list[Alert], crs: str) -> np.ndarray:
    """Metres from each fire's pixel centre to each alert's outline (fires x alerts), on the grid `crs`."""
    project = _projector(crs)
    outlines = np.array([shapely.transform(shape(a.geometry), project) for a in alerts], dtype=object)
    xy = project(np.array([[f.longitude, f.latitude] for f in fires], dtype="float64").reshape(-1, 2))
    return np.asarray(shapely.distance(shapely.points(xy)[:, None], outlines[None, :]), dtype="float64")


def fires_near(alert: Alert, fires: list[FireDetection], crs: str) -> list[FireDetection]:
    """Every detection within its pixel size of the alert's outline between the alert's last clear look before and
    its first observation: what alert.thermal_detections counts (for the fires given)."""
    if not fires:
        return []
    d = _distances(fires, [alert], crs)[:, 0]
    return [f for f, di in zip(fires, d, strict=True) if di <= pixel_m(f) and _in_interval(f, alert)]


def match_fires(result: HotspotResult) -> list[FireOnAlert]:
    """The area's detections in time order, each with the alert or farm burn it lies on.

    A detection lies on an alert when its centre is within its pixel size (PIXEL_M) of the alert's outline and it
    was acquired between the alert's last clear look before and its first observation (UTC days, inclusive).
    Where several qualify, the nearest wins (alerts before farm burns, then the order of the lists). Distances are
    measured on the area's grid (its UTM zone), in metres.
    """
    fires = sorted(result.fires, key=lambda f: as_utc(f.time))
    candidates = [(a, False) for a in result.alerts] + [(a, True) for a in result.seasonal_burns]
    if not fires or not candidates:
        return [FireOnAlert(f, None) for f in fires]
    d = _distances(fires, [a for a, _ in candidates], result.crs)
    out: list[FireOnAlert] = []
    for k, fire in enumerate(fires):
        ok = [i for i, (a, _) in enumerate(candidates) if d[k, i] <= pixel_m(fire) and _in_interval(fire, a)]
        if not ok:
            out.append(FireOnAlert(fire, None))
            continue
        # min() keeps the first of equals: alerts before farm burns, then list order.
        alert, seasonal = candidates[min(ok, key=lambda i: d[k, i])]
        out.append(FireOnAlert(fire, alert, seasonal))
    return out
