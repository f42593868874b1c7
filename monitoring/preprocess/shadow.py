"""Preprocess: cloud shadows by projection along the sun direction, and the sun angles that need."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pandas as pd
import xarray as xr

SHADOW_HEIGHTS_M: tuple[float, float] = (200.0, 4000.0)
"""Cloud-base heights searched for a cloud's shadow: low cumulus to the top of the usual mid-level layer.
Fmask searches 200 m to 12 km by matching each cloud object; a plain band over the low and middle layers keeps
the search short, so that the darkness test only meets the near surroundings of each cloud. Shadows of high
cirrus are faint and fall outside it."""
SHADOW_DARK = 0.5
"""A shadow pixel is darker than this share of the scene's median over clear land in both NIR (B08) and SWIR
(B11). Cloud shadow removes the direct sun, and beyond 800 nm the diffuse sky light is a small part of the
irradiance under a clear sky, so a shaded surface reads several times darker than in sunlight; surfaces dark
in their own right (water, fresh asphalt) pass too, which is why only the projection band is tested."""
S2_LTDN_HOURS = 10.5
"""Sentinel-2's local time at the descending node, 10:30 (ESA mission guide)."""
S2_INCLINATION_DEG = 98.62
"""Sentinel-2's orbit inclination (sun-synchronous, 786 km)."""

SunAngles = tuple[float, float]
"""(azimuth, zenith) in degrees: azimuth clockwise from north, zenith from the vertical."""


def sentinel2_solar_time(lat: float) -> float:
    """Local mean solar time (hours) at which Sentinel-2 passes over a latitude on its descending pass.

    The orbit is fixed relative to the sun, so the local solar time of a point on it depends only on where the
    point lies on the orbit: at latitude phi the ground track is asin(tan phi / tan(180 deg - i)) of longitude
    east of the node (before the node on the north side, after it on the south side). OSCD's newer file names
    carry the datatake start time: this model lands 4 to 22 min after it, as a tile is imaged after its
    datatake starts.
    """
    ratio = math.tan(math.radians(lat)) / math.tan(math.radians(180.0 - S2_INCLINATION_DEG))
    return S2_LTDN_HOURS + math.degrees(math.asin(max(-1.0, min(1.0, ratio)))) / 15.0


def solar_position(
    day: datetime | np.datetime64 | str, lat: float, solar_hours: float, *, lon: float = 0.0
) -> SunAngles:
    """Sun (azimuth, zenith) in degrees at a latitude and time of day (NOAA's general formulas).

    `solar_hours` is local mean solar time, or, with `lon` (degrees east) given, UTC hours at that longitude.
    Declination and the equation of time are Spencer's (1971) Fourier series, good to a few arc minutes, which
    is far finer than the range of cloud heights a shadow search spans.
    """
    doy = pd.Timestamp(day).day_of_year
    g = 2.0 * math.pi / 365.0 * (doy - 1 + (solar_hours - 12.0) / 24.0)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    ha = math.radians((solar_hours * 60.0 + eqtime + 4.0 * lon) / 4.0 - 180.0)
    phi = math.radians(lat)
    cos_zen = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    zenith = math.degrees(math.acos(max(-1.0, min(1.0, cos_zen))))
    azimuth = math.degrees(
        math.atan2(math.sin(ha), math.cos(ha) * math.sin(phi) - math.tan(decl) * math.cos(phi))
    )
    return (azimuth + 180.0) % 360.0, zenith


def sun_at(when: datetime | np.datetime64 | str, *, lat: float, lon: float) -> SunAngles:
    """Sun (azimuth, zenith) in degrees at a UTC time (naive = UTC) and place: `solar_position` in UTC hours."""
    t = pd.Timestamp(when)
    t = t.tz_convert("UTC") if t.tzinfo is not None else t
    return solar_position(t, lat, t.hour + t.minute / 60 + (t.second + t.microsecond / 1e6) / 3600, lon=lon)


def sentinel2_sun_angles(day: datetime | np.datetime64 | str, lat: float) -> SunAngles:
    """Sun (azimuth, zenith) at a Sentinel-2 overpass on `day` at latitude `lat` (longitude drops out)."""
    return solar_position(day, lat, sentinel2_solar_time(lat))


def _scalar(v: object) -> float | None:
    if v is None:
        return None
    arr = np.asarray(v.values if isinstance(v, xr.DataArray) else v, dtype="float64")
    return float(arr) if arr.size == 1 and np.isfinite(arr) else None


def sun_angles(ds: xr.Dataset) -> SunAngles | None:
    """The sun angles of a single-date image: its metadata, else a Sentinel-2 overpass where it lies, else None.

    Metadata is a `sun_azimuth` and a `sun_zenith` (or `sun_elevation`) coordinate or attribute, in degrees.
    Without them, an image with a `time` and a georeference (odc-geo) gets the sun of a Sentinel-2 overpass
    that day at its centre (`sentinel2_sun_angles`).
    """
    found: dict[str, float | None] = {}
    for key in ("sun_azimuth", "sun_zenith", "sun_elevation"):
        v = ds.coords[key] if key in ds.coords else ds.attrs.get(key)
        found[key] = _scalar(v)
    az, zen, elev = found["sun_azimuth"], found["sun_zenith"], found["sun_elevation"]
    if zen is None and elev is not None:
        zen = 90.0 - elev
    if az is not None and zen is not None:
        return az, zen
    if "time" in ds.coords and ds["time"].size == 1:
        try:
            geobox = ds.odc.geobox
        except Exception:  # noqa: BLE001 (no georeference is an expected case, not an error)
            geobox = None
        if geobox is not None and geobox.crs is not None:
            lat = float(geobox.extent.centroid.to_crs("EPSG:4326").coords[0][1])
            return sentinel2_sun_angles(pd.Timestamp(ds["time"].values.item()), lat)
    return None


def pixel_size_m(ds: xr.Dataset | xr.DataArray, default: float = 10.0) -> tuple[float, float]:
    """(row, column) pixel size in metres: the `pixel_size_m` attribute, a projected odc-geo grid, or default."""
    attr = ds.attrs.get("pixel_size_m")
    if attr is not None:
        vals = np.atleast_1d(np.asarray(attr, dtype="float64"))
        return (float(vals[0]), float(vals[-1]))
    try:
        geobox = ds.odc.geobox
    except Exception:  # noqa: BLE001
        geobox = None
    if geobox is not None and geobox.crs is not None and geobox.crs.projected:
        return (abs(float(geobox.resolution.y)), abs(float(geobox.resolution.x)))
    return (default, default)


def shadow_offsets(
    angles: SunAngles,
    cell_m: tuple[float, float],
    *,
    heights_m: tuple[float, float] = SHADOW_HEIGHTS_M,
) -> np.ndarray:
    """(n, 2) integer (row, column) offsets from a cloud to its shadow for cloud heights across heights_m.

    A cloud at height h casts its shadow h·tan(zenith) away from the sun, along azimuth + 180 deg; rows grow
    southward and columns eastward. Heights are sampled finely enough that consecutive offsets touch.
    """
    az, zen = (math.radians(a) for a in angles)
    if not 0.0 <= zen < math.radians(89.0):
        return np.zeros((0, 2), dtype="int64")
    reach_m = math.tan(zen)
    d_row = math.cos(az) * reach_m / cell_m[0]  # anti-solar: north component -cos(az), rows grow southward
    d_col = -math.sin(az) * reach_m / cell_m[1]
    lo, hi = heights_m
    steps = max(2, int(math.ceil(2.0 * (hi - lo) * max(abs(d_row), abs(d_col)))) + 1)
    h = np.linspace(lo, hi, steps)
    offs = np.round(np.stack([h * d_row, h * d_col], axis=1)).astype("int64")
    return np.unique(offs, axis=0)


def project_along_sun(cloud: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Where the shadow of any True pixel of a 2-D `cloud` mask falls, for every (row, column) offset."""
    out = np.zeros_like(cloud, dtype=bool)
    ny, nx = cloud.shape
    for dr, dc in offsets.tolist():
        if abs(dr) >= ny or abs(dc) >= nx:
            continue
        src = cloud[max(0, -dr) : ny - max(0, dr), max(0, -dc) : nx - max(0, dc)]
        out[max(0, dr) : ny - max(0, -dr), max(0, dc) : nx - max(0, -dc)] |= src
    return out
