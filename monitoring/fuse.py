"""Fuse: combine per-sensor detections into one change-type map and confidence tiers with their evidence."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import geopandas as gpd
import numpy as np
import shapely
import xarray as xr
from affine import Affine

from monitoring.detect.result import Detection
from monitoring.results import Alert, ChangeType, Confidence

NONE, BURN, SOIL, STRUCTURE = 0, 1, 2, 3
"""Pixel codes of the fused map. SOIL becomes earthworks or crater field per region (vectorise)."""


def fuse_change_types(
    *,
    burn: Detection | None,
    soil: Detection | None,
    sar: Detection | None,
    builtup: xr.DataArray | None,
) -> xr.DataArray:
    """One uint8 code per pixel. SAR change on built-up land is structural damage and wins (the optical
    signal of a collapsed roof is weak and ambiguous); then burn scars; then soil exposure."""
    layers = [d.mask for d in (burn, soil, sar) if d is not None]
    if not layers:
        raise ValueError("fuse_change_types needs at least one detection")
    codes = xr.zeros_like(layers[0], dtype="uint8")
    if soil is not None:
        codes = xr.where(soil.mask, SOIL, codes)
    if burn is not None:
        codes = xr.where(burn.mask, BURN, codes)
    if sar is not None and builtup is not None:
        codes = xr.where(sar.mask & builtup, STRUCTURE, codes)
    return codes.astype("uint8").rename("change_code")


def confidence_tier(
    *,
    sensors: Iterable[str],
    methods: Iterable[str],
    observations: int,
    seasonal: bool = False,
) -> Confidence:
    """Tiers as the integrated forest alerts define them.

    highest: two independent sensors agree; high: seen again in a later independent observation, or two
    independent methods agree; low: one method, one observation. `seasonal`: the change is one the season makes
    routinely there (a burn on cropland in the stubble-burning season), so more looks of the same thing do not
    make it more likely to be conflict: it stays low until another imaging sensor agrees. An active-fire detection
    does not lift it: stubble fires are hot too, so thermal confirms a fire, not a conflict.
    """
    seen = set(sensors)
    if seasonal and len(seen - set(THERMAL_SENSORS.values())) < 2:
        return Confidence.LOW
    if len(seen) >= 2:
        return Confidence.HIGHEST
    if observations >= 2 or len(set(methods)) >= 2:
        return Confidence.HIGH
    return Confidence.LOW


def set_aside_farm_burning(
    alerts: Sequence[Alert], *, min_fields: int, farm_fires: int = 0, min_fires: int | None = None
) -> tuple[list[Alert], list[Alert]]:
    """(alerts, seasonal burns): where farmers are burning, burns on cropland are context, not alerts.

    In the dry season the rice plains burn their stubble field by field, and one sensor cannot tell those fires
    from a field set alight by shelling. Like the war-fire model's test against the season's normal fire activity,
    the area's own record decides: the season is under way with at least `min_fields` single-sensor burn scars on
    cropland (`seasonal` alerts) in the window, or with at least `min_fires` active-fire detections on cropland
    that no alert accounts for (`farm_fires`, from `cropland_fires`) over the run's windows, and then every
    seasonal burn is set aside (kept for the map and the GeoJSON, not counted or listed as an alert). Otherwise
    they stay alerts at low confidence: one or two field fires is not a season. Burns that radar corroborates
    (an active fire does not: farmers' fires are hot too), burns off cropland and every other change type are
    never set aside.
    """
    thermal = set(THERMAL_SENSORS.values())
    seasonal = [
        a
        for a in alerts
        if a.seasonal and a.change_type is ChangeType.BURN_SCAR and len(set(a.sensors) - thermal) < 2
    ]
    burning = len(seasonal) >= min_fields or (min_fires is not None and farm_fires >= min_fires)
    if not (seasonal and burning):
        return list(alerts), []
    aside = {a.id for a in seasonal}
    return [a for a in alerts if a.id not in aside], seasonal


# --- Active fires (thermal anomalies) -------------------------------------------------------------------------

THERMAL_SENSORS: dict[str, str] = {"VIIRS": "viirs", "MODIS": "modis"}
"""Sensor names of active-fire detections by instrument, as they appear in an alert's sensors."""
FIRE_METHOD = "active-fire"
"""The method name of an active-fire detection among an alert's methods."""


@dataclass(frozen=True)
class Fires:
    """An area's active-fire detections (monitoring.sources.thermal) as points on its grid.

    A detection is a fire somewhere in a VIIRS (375 m) or MODIS (1 km) pixel around its centre point; off nadir the
    pixel grows to about twice that across the scan. `reach_m` is therefore the pixel size: a detection counts
    for a change when its point lies within that distance of the change's outline.
    """

    x: np.ndarray
    y: np.ndarray
    """Pixel centres in the grid's CRS (metres)."""
    time: np.ndarray
    """Acquisition times, datetime64[s] in UTC."""
    reach_m: np.ndarray
    sensor: np.ndarray
    """'viirs' or 'modis' (THERMAL_SENSORS)."""
    frp: np.ndarray
    """Fire radiative power, MW (NaN where not given)."""

    @classmethod
    def from_frame(cls, fires: gpd.GeoDataFrame, crs: str) -> Fires:
        """From a fire table keeping monitoring.sources.thermal's contract, projected to `crs`."""
        pts = fires.to_crs(crs).geometry
        when = fires["time"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[s]")
        return cls(
            x=np.asarray(pts.x, dtype="float64"),
            y=np.asarray(pts.y, dtype="float64"),
            time=when,
            reach_m=fires["pixel_m"].to_numpy(dtype="float64"),
            sensor=np.array(
                [THERMAL_SENSORS.get(str(i), str(i).lower()) for i in fires["instrument"]], dtype=object
            ),
            frp=fires["frp"].to_numpy(dtype="float64"),
        )

    def __len__(self) -> int:
        return int(self.x.size)

    def near(
        self, geom: shapely.Geometry, first_day: date | None, last_day: date, *, pad_m: float = 0.0
    ) -> np.ndarray:
        """Indices of the detections within reach (+ pad_m) of `geom` (grid CRS) acquired on days
        first_day..last_day (UTC, inclusive; no lower bound without first_day)."""
        if not len(self):
            return np.zeros(0, dtype="int64")
        hi = np.datetime64(datetime.combine(last_day + timedelta(days=1), datetime.min.time()), "s")
        when = self.time < hi
        if first_day is not None:
            when &= self.time >= np.datetime64(datetime.combine(first_day, datetime.min.time()), "s")
        idx = np.flatnonzero(when)
        if not idx.size:
            return idx
        d = shapely.distance(shapely.points(self.x[idx], self.y[idx]), geom)
        return idx[d <= self.reach_m[idx] + pad_m]


@dataclass(frozen=True)
class FireMatch:
    """The active fires that agree with one change: how many, when, how hot, which sensors."""

    count: int
    first: datetime | None
    last: datetime | None
    frp_max: float | None
    sensors: tuple[str, ...]


def attribute_fires(
    fires: Fires, changes: Sequence[tuple[shapely.Geometry, date | None, date]]
) -> list[np.ndarray]:
    """Per change (outline in grid CRS, last look before, first look after), the detections that lie on it: within
    reach of its outline in its interval (Fires.near) and nearer to it than to any other change they also qualify
    for (ties: the earlier change in the list). A detection is one fire in one pixel: where a burning village and a
    burn scar share a VIIRS pixel's reach, the fire counts for the nearer, not for both."""
    points = shapely.points(fires.x, fires.y)
    best_d = np.full(len(fires), np.inf)
    owner = np.full(len(fires), -1)
    for i, (geom, first_day, last_day) in enumerate(changes):
        idx = fires.near(geom, first_day, last_day)
        d = shapely.distance(points[idx], geom)
        closer = d < best_d[idx]
        best_d[idx[closer]], owner[idx[closer]] = d[closer], i
    return [np.flatnonzero(owner == i) for i in range(len(changes))]


def summarise_fires(fires: Fires, idx: np.ndarray) -> FireMatch:
    """What the detections `idx` say of one change: its share from attribute_fires, or all within its reach and
    interval (Fires.near)."""
    if not idx.size:
        return FireMatch(0, None, None, None, ())
    t = fires.time[idx]
    frp = fires.frp[idx]
    return FireMatch(
        count=int(idx.size),
        first=t.min().astype(datetime),
        last=t.max().astype(datetime),
        frp_max=round(float(np.nanmax(frp)), 2) if np.isfinite(frp).any() else None,
        sensors=tuple(sorted(set(fires.sensor[idx]))),
    )


def cropland_fires(
    fires: Fires,
    landcover: np.ndarray,
    affine: Affine,
    *,
    crop: int,
    accounted: Sequence[shapely.Geometry] = (),
) -> int:
    """Active-fire detections whose point lies on a `crop` pixel of `landcover` (on the grid of `affine`, the
    grid's CRS being the fires'), leaving out those within reach of an `accounted` outline (the run's alerts,
    grid CRS): the area's background of field fires, which set_aside_farm_burning weighs."""
    if not len(fires):
        return 0
    cols, rows = ~affine * (fires.x, fires.y)
    rows, cols = np.floor(rows).astype("int64"), np.floor(cols).astype("int64")
    inside = (rows >= 0) & (rows < landcover.shape[0]) & (cols >= 0) & (cols < landcover.shape[1])
    on_crop = np.zeros(len(fires), dtype=bool)
    on_crop[inside] = landcover[rows[inside], cols[inside]] == crop
    if accounted and on_crop.any():
        points = shapely.points(fires.x[on_crop], fires.y[on_crop])
        near = np.zeros(points.size, dtype=bool)
        for geom in accounted:
            near |= shapely.distance(points, geom) <= fires.reach_m[on_crop]
        return int(on_crop.sum() - near.sum())
    return int(on_crop.sum())
