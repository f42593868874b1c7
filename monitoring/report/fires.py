"""Report: which active-fire detections lie on which alert, and their times in UTC and in local time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import shape

from monitoring.fuse import Fires, attribute_fires
from monitoring.results import Alert, ChangeType, FireDetection, HotspotResult
from monitoring.sources.thermal import INSTRUMENT_PIXEL_M

DEFAULT_PIXEL_M = 375.0
"""For a detection without its own pixel size of an instrument not in INSTRUMENT_PIXEL_M: the smaller reach, so
an unknown sensor never claims a far-off alert."""

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
    """The detection's own pixel size, else its instrument's nominal one: a detection is a fire somewhere in a
    pixel this wide around its centre, so it counts for an alert when its centre lies within this distance of the
    outline (as monitoring.fuse.Fires.reach_m)."""
    if fire.pixel_m is not None:
        return fire.pixel_m
    return INSTRUMENT_PIXEL_M.get(fire.instrument.upper(), DEFAULT_PIXEL_M)


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


def _projector(crs: str) -> Callable[[np.ndarray], np.ndarray]:
    to_grid = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    return lambda xy: np.column_stack(to_grid.transform(xy[:, 0], xy[:, 1]))


def _on_grid(fires: list[FireDetection], crs: str) -> Fires:
    """The detections as fuse.Fires on the grid `crs`, so that the pipeline's own rule (Fires.near) matches them."""
    xy = _projector(crs)(np.array([[f.longitude, f.latitude] for f in fires], dtype="float64").reshape(-1, 2))
    return Fires(
        x=xy[:, 0],
        y=xy[:, 1],
        time=np.array([as_utc(f.time).replace(tzinfo=None) for f in fires], dtype="datetime64[s]"),
        reach_m=np.array([pixel_m(f) for f in fires], dtype="float64"),
        sensor=np.array([f.instrument for f in fires], dtype=object),
        frp=np.array([np.nan if f.frp is None else f.frp for f in fires], dtype="float64"),
    )


def _outline(alert: Alert, crs: str) -> shapely.Geometry:
    return shapely.transform(shape(alert.geometry), _projector(crs))


def fires_near(alert: Alert, fires: list[FireDetection], crs: str) -> list[FireDetection]:
    """Every detection within its pixel size of the alert's outline between the alert's last clear look before and
    its first observation: what alert.thermal_detections counts for an alert with no other alert near (where
    several are within reach, the pipeline counts each detection for the nearest: fuse.attribute_fires)."""
    if not fires:
        return []
    idx = _on_grid(fires, crs).near(_outline(alert, crs), alert.last_clear_before, alert.first_observed)
    return [fires[i] for i in sorted(idx)]


def match_fires(result: HotspotResult) -> list[FireOnAlert]:
    """The area's detections in time order, each with the alert or farm burn it lies on.

    A detection lies on an alert when its centre is within its pixel size (pixel_m) of the alert's outline and it
    was acquired between the alert's last clear look before and its first observation (UTC days, inclusive).
    Where several qualify, the nearest wins (alerts before farm burns, then the order of the lists). Distances are
    measured on the area's grid (its UTM zone), in metres.
    """
    fires = sorted(result.fires, key=lambda f: as_utc(f.time))
    candidates = [(a, False) for a in result.alerts] + [(a, True) for a in result.seasonal_burns]
    if not fires or not candidates:
        return [FireOnAlert(f, None) for f in fires]
    # The pipeline's own rule (fuse.attribute_fires): the nearest qualifying outline; ties go to the first in the
    # list, so alerts before farm burns.
    owned = attribute_fires(
        _on_grid(fires, result.crs),
        [(_outline(a, result.crs), a.last_clear_before, a.first_observed) for a, _ in candidates],
    )
    on: dict[int, tuple[Alert, bool]] = {int(k): candidates[i] for i, idx in enumerate(owned) for k in idx}
    return [FireOnAlert(f, *on[k]) if k in on else FireOnAlert(f, None) for k, f in enumerate(fires)]
