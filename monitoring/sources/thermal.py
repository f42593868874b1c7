"""Fetch: active-fire detections (thermal anomalies): the one contract every thermal source keeps.

Thermal sources are the simulator (simulated VIIRS/MODIS overpasses over the scenario's fires) and NASA FIRMS
(monitoring.sources.firms). Unlike imagery they deliver points, not rasters: each row is one fire pixel's centre
(VIIRS 375 m, MODIS 1 km) at one overpass.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol, runtime_checkable

import geopandas as gpd
import numpy as np
import pandas as pd

from monitoring.aoi import AOI
from monitoring.errors import SourceError

FIRE_COLUMNS: tuple[str, ...] = (
    "time",
    "latitude",
    "longitude",
    "satellite",
    "instrument",
    "confidence",
    "frp",
    "daynight",
    "pixel_m",
    "product",
)
"""Columns of a fire table, besides geometry (Point, EPSG:4326):

time        acquisition time, pandas datetime64 in UTC (FIRMS acq_date + acq_time HHMM)
latitude    pixel centre, degrees (float64)
longitude   pixel centre, degrees (float64)
satellite   'Suomi NPP', 'NOAA-20', 'NOAA-21', 'Terra' or 'Aqua' (FIRMS' N / N20 / N21 / T / A spelled out)
instrument  'VIIRS' or 'MODIS'
confidence  'low', 'nominal' or 'high' (VIIRS l/n/h; MODIS 0-100 as FIRMS bins it: < 30, 30-79, >= 80)
frp         fire radiative power, MW (float64; NaN where not given)
daynight    'D' or 'N'
pixel_m     this detection's pixel size in metres (float64): the larger of its along-scan and along-track sizes,
            which grow off nadir (FIRMS' scan/track: VIIRS 375 m at nadir to ~800 m, MODIS 1000 m to ~4800 m);
            the nominal INSTRUMENT_PIXEL_M where a source does not know it. Within PIXEL_M_RANGE of the instrument.
product     where the row came from: the FIRMS source name (e.g. 'VIIRS_SNPP_NRT') or 'simulated'
"""
CONFIDENCES: tuple[str, ...] = ("low", "nominal", "high")
INSTRUMENT_PIXEL_M: dict[str, float] = {"VIIRS": 375.0, "MODIS": 1000.0}
"""Nominal pixel size at nadir by instrument (the pixel_m column): VIIRS I-band 375 m, MODIS 1 km."""
INSTRUMENTS: tuple[str, ...] = tuple(INSTRUMENT_PIXEL_M)
PIXEL_M_RANGE: dict[str, tuple[float, float]] = {"VIIRS": (200.0, 2000.0), "MODIS": (500.0, 6000.0)}
"""Bounds (inclusive) of a detection's pixel_m by instrument: generous around what the sensors give (VIIRS
0.32-0.8 km, MODIS 1-4.8 km), so that only a unit or parsing error falls outside."""
MARGIN_DEG = 0.05
"""Detections are returned for the AOI's WGS84 bounding box widened by this much (~5.4 km in longitude at the
border's 14.5 N, 5.6 km in latitude): more than the largest pixel a detection counts within (MODIS at the swath
edge, ~4.8 km along scan), so a pixel centred outside the area that still reaches an alert at its edge is
fetched. Only detections inside the footprint are listed and counted for the area."""


@runtime_checkable
class ThermalSource(Protocol):
    """What the pipeline needs from a thermal source.

    load_fires: a GeoDataFrame with FIRE_COLUMNS and Point geometry in EPSG:4326, one row per fire pixel per
      overpass, for the AOI's bounding box widened by MARGIN_DEG, acquired on days start..end (UTC, inclusive),
      sorted by time. An empty table (with the columns) means the sensors looked and saw no fire; a source that
      could not look raises SourceError instead.
    """

    name: str
    simulated: bool

    def load_fires(self, aoi: AOI, start: date, end: date) -> gpd.GeoDataFrame: ...


def search_bbox(aoi: AOI) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees: the AOI's footprint bounds widened by MARGIN_DEG."""
    w, s, e, n = aoi.bbox_wgs84()
    return (w - MARGIN_DEG, s - MARGIN_DEG, e + MARGIN_DEG, n + MARGIN_DEG)


def utc_day_bounds(start: date, end: date) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start 00:00 UTC, end+1 00:00 UTC): the half-open time range of the days start..end."""
    lo = datetime.combine(start, time(0), tzinfo=UTC)
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo=UTC)
    return pd.Timestamp(lo), pd.Timestamp(hi)


def empty_fires() -> gpd.GeoDataFrame:
    """A fire table with no rows and the contract's columns and dtypes."""
    frame = pd.DataFrame(
        {
            "time": pd.Series([], dtype="datetime64[ns, UTC]"),
            "latitude": pd.Series([], dtype="float64"),
            "longitude": pd.Series([], dtype="float64"),
            "satellite": pd.Series([], dtype="object"),
            "instrument": pd.Series([], dtype="object"),
            "confidence": pd.Series([], dtype="object"),
            "frp": pd.Series([], dtype="float64"),
            "daynight": pd.Series([], dtype="object"),
            "pixel_m": pd.Series([], dtype="float64"),
            "product": pd.Series([], dtype="object"),
        }
    )
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy([], []), crs="EPSG:4326")


_TEXT_COLUMNS = ("satellite", "instrument", "confidence", "daynight", "product")
_FLOAT_COLUMNS = ("latitude", "longitude", "frp", "pixel_m")


def fires_frame(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    """A GeoDataFrame with Point geometry from the latitude/longitude columns, sorted by time, with the dtypes of
    empty_fires (text as object, numbers as float64), so that every source's tables look alike."""
    frame = frame.loc[:, list(FIRE_COLUMNS)].reset_index(drop=True)
    frame = frame.astype({**dict.fromkeys(_TEXT_COLUMNS, object), **dict.fromkeys(_FLOAT_COLUMNS, "float64")})
    out = gpd.GeoDataFrame(
        frame,
        geometry=gpd.points_from_xy(frame["longitude"], frame["latitude"]),
        crs="EPSG:4326",
    )
    return out.sort_values("time", kind="stable").reset_index(drop=True)


def check_fires(fires: gpd.GeoDataFrame, aoi: AOI, start: date, end: date) -> gpd.GeoDataFrame:
    """Raise SourceError unless the table keeps the thermal contract; returns it for chaining."""
    what = f"fire detections for {aoi.id!r}"
    if not isinstance(fires, gpd.GeoDataFrame):
        raise SourceError(f"{what} are a {type(fires).__name__}, expected a GeoDataFrame.")
    missing = [c for c in FIRE_COLUMNS if c not in fires.columns]
    if missing:
        raise SourceError(f"{what} lack columns {missing}.")
    if fires.crs is None or fires.crs.to_epsg() != 4326:
        raise SourceError(f"{what} are in {fires.crs}, expected EPSG:4326.")
    if len(fires) == 0:
        return fires
    t = fires["time"]
    if not isinstance(t.dtype, pd.DatetimeTZDtype) or str(t.dt.tz) != "UTC":
        raise SourceError(f"{what}: column 'time' is {t.dtype}, expected datetime64 in UTC.")
    if not t.is_monotonic_increasing:
        raise SourceError(f"{what}: rows are not sorted by time.")
    lo, hi = utc_day_bounds(start, end)
    if t.iloc[0] < lo or t.iloc[-1] >= hi:
        raise SourceError(f"{what}: detections outside the requested days {start}..{end}.")
    for column, allowed in (
        ("confidence", CONFIDENCES),
        ("instrument", INSTRUMENTS),
        ("daynight", ("D", "N")),
    ):
        bad = sorted(set(fires[column]) - set(allowed))
        if bad:
            raise SourceError(f"{what}: {column} values {bad}, expected {list(allowed)}.")
    pixel = fires["pixel_m"].to_numpy(dtype="float64")
    lo_m = fires["instrument"].map(lambda i: PIXEL_M_RANGE[i][0]).to_numpy(dtype="float64")
    hi_m = fires["instrument"].map(lambda i: PIXEL_M_RANGE[i][1]).to_numpy(dtype="float64")
    bad_pixel = ~((pixel >= lo_m) & (pixel <= hi_m))  # NaN is outside too
    if bad_pixel.any():
        raise SourceError(
            f"{what}: pixel_m values {sorted(set(pixel[bad_pixel].tolist()))[:5]}, expected metres within "
            f"{PIXEL_M_RANGE} by instrument."
        )
    w, s, e, n = search_bbox(aoi)
    lon, lat = fires["longitude"].to_numpy(), fires["latitude"].to_numpy()
    if not (np.all((lon >= w) & (lon <= e)) and np.all((lat >= s) & (lat <= n))):
        raise SourceError(
            f"{what}: detections outside the area's bounding box {w:.4f},{s:.4f},{e:.4f},{n:.4f}."
        )
    return fires
