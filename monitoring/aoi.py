"""AOI and time windows: turn a hot spot, bbox or GeoJSON polygon into one UTM 10 m grid and before/after dates."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from odc.geo import CRS
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry
from odc.geo.xr import rasterize
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon, box, mapping, shape

from monitoring.config import HotSpot, WindowSettings
from monitoring.errors import AOIError

RESOLUTION_M = 10.0
MAX_AOI_KM2 = 2500.0
"""Ad hoc checks larger than this are refused: split them (the daily run uses a few km² per hot spot)."""


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS84 / UTM zone CRS that contains a point."""
    zone = int((lon + 180) // 6) + 1
    return CRS(f"EPSG:{(32600 if lat >= 0 else 32700) + zone}")


@dataclass(frozen=True)
class AOI:
    """An area of interest: an id, a WGS84 footprint, and the one grid every source must deliver on."""

    id: str
    name: str
    footprint: Polygon | MultiPolygon
    """The area in WGS84 (lon/lat), as asked for."""
    geobox: GeoBox
    """UTM grid at 10 m covering the footprint's bounding box; every source returns data on exactly this grid.
    Only the pixels inside() the footprint are the area: coverage, alerts and fires count there alone."""
    hotspot: HotSpot | None = None

    @property
    def crs(self) -> CRS:
        crs = self.geobox.crs
        if crs is None:  # aoi_* always build the grid with a CRS; a hand-made AOI might not
            raise AOIError(f"area {self.id!r} has a grid without a CRS; build it with aoi_from_* helpers.")
        return crs

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.geobox.shape)  # type: ignore[return-value]

    @property
    def area_km2(self) -> float:
        ny, nx = self.shape
        return ny * nx * RESOLUTION_M**2 / 1e6

    def bbox_wgs84(self) -> tuple[float, float, float, float]:
        return tuple(self.footprint.bounds)  # type: ignore[return-value]

    def footprint_in_grid(self) -> Geometry:
        """The footprint in the grid's CRS (its edges followed to within a pixel)."""
        return Geometry(self.footprint, "EPSG:4326").to_crs(self.crs, resolution=RESOLUTION_M)

    def inside(self) -> np.ndarray:
        """(y, x) bool: the grid's pixels whose centre lies in the footprint (all of a hot spot's square; a
        drawn polygon leaves out the rest of its bounding box)."""
        return np.asarray(rasterize(self.footprint_in_grid(), self.geobox).values, dtype=bool)


def _geobox_for(footprint: Polygon | MultiPolygon, resolution: float = RESOLUTION_M) -> GeoBox:
    c = footprint.centroid
    crs = utm_crs(c.x, c.y)
    geom = Geometry(footprint, "EPSG:4326").to_crs(crs)
    return GeoBox.from_geopolygon(geom, resolution=resolution, crs=crs, tight=False)


def _check_size(aoi_id: str, footprint: Polygon | MultiPolygon) -> None:
    """The grid covers the footprint's bounding box: that is what must fit (an L-shaped or two-part area costs
    its whole box); the footprint itself must hold some pixels."""
    c = footprint.centroid
    t = Transformer.from_crs("EPSG:4326", utm_crs(c.x, c.y).to_wkt(), always_xy=True)
    utm = shapely.ops.transform(t.transform, footprint)
    grid, area = box(*utm.bounds).area / 1e6, utm.area / 1e6
    if grid > MAX_AOI_KM2:
        of = (
            ""
            if grid < 1.01 * area
            else f" (its bounding box, which the analysis covers; the area is {area:.0f})"
        )
        raise AOIError(
            f"area {aoi_id!r} is {grid:.0f} km²{of}, larger than the {MAX_AOI_KM2:.0f} km² one check may cover; "
            "split it into smaller boxes."
        )
    if area < 0.01:
        raise AOIError(
            f"area {aoi_id!r} is {area * 1e6:.0f} m², too small to analyse at 10 m; give at least 100 m x 100 m."
        )


def aoi_from_hotspot(h: HotSpot) -> AOI:
    """A square of side h.aoi_km centred on the hot spot, on its UTM 10 m grid."""
    crs = utm_crs(h.lon, h.lat)
    to_utm = Transformer.from_crs("EPSG:4326", crs.to_wkt(), always_xy=True)
    to_ll = Transformer.from_crs(crs.to_wkt(), "EPSG:4326", always_xy=True)
    x, y = to_utm.transform(h.lon, h.lat)
    half = h.aoi_km * 500.0
    # Snap to the 10 m grid so the same hot spot always gets the same pixels.
    x0, y0 = round((x - half) / RESOLUTION_M) * RESOLUTION_M, round((y - half) / RESOLUTION_M) * RESOLUTION_M
    side = round(h.aoi_km * 1000 / RESOLUTION_M) * RESOLUTION_M
    sq = box(x0, y0, x0 + side, y0 + side)
    geobox = GeoBox.from_bbox((x0, y0, x0 + side, y0 + side), crs=crs, resolution=RESOLUTION_M)
    footprint = shapely.ops.transform(to_ll.transform, sq)
    return AOI(id=h.id, name=h.name, footprint=footprint, geobox=geobox, hotspot=h)


def _adhoc_id(footprint: Polygon | MultiPolygon) -> str:
    digest = hashlib.sha1(footprint.wkb).hexdigest()[:8]
    return f"area-{digest}"


def aoi_from_bbox(
    bbox: tuple[float, float, float, float], *, aoi_id: str | None = None, name: str | None = None
) -> AOI:
    """An AOI from a lon/lat bounding box (min_lon, min_lat, max_lon, max_lat)."""
    minx, miny, maxx, maxy = bbox
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise AOIError(
            f"bbox {bbox} is not min_lon,min_lat,max_lon,max_lat in degrees with min < max; "
            "e.g. --bbox 104.66,14.38,104.70,14.41"
        )
    fp = box(minx, miny, maxx, maxy)
    aid = aoi_id or _adhoc_id(fp)
    _check_size(aid, fp)
    return AOI(id=aid, name=name or f"Area {bbox}", footprint=fp, geobox=_geobox_for(fp))


def _polygons(obj: Any, label: str) -> list[dict[str, Any]]:
    """The (Multi)Polygon geometries of a GeoJSON geometry, Feature or FeatureCollection (AOIError naming the
    first part that is not one)."""
    expected = "give a Polygon or MultiPolygon (or Features of them) in lon/lat"
    kind = obj.get("type") if isinstance(obj, dict) else type(obj).__name__
    if kind == "FeatureCollection":
        features = obj.get("features") or []
        if not features:
            raise AOIError(f"{label}: the FeatureCollection has no features; {expected}.")
    elif kind == "Feature":
        features = [obj]
    elif kind in ("Polygon", "MultiPolygon"):
        return [obj]
    else:
        raise AOIError(f"{label}: the GeoJSON is a {kind!r}; {expected}.")
    geoms: list[dict[str, Any]] = []
    for i, f in enumerate(features, start=1):
        g = f.get("geometry") if isinstance(f, dict) else None
        found = g.get("type") if isinstance(g, dict) else None
        if not isinstance(g, dict) or found not in ("Polygon", "MultiPolygon"):
            what = f"a {found!r}" if found else "no geometry"
            raise AOIError(f"{label}: feature {i} of {len(features)} has {what}; {expected}.")
        geoms.append(g)
    return geoms


def aoi_from_geojson(
    source: str | Path | dict[str, Any], *, aoi_id: str | None = None, name: str | None = None
) -> AOI:
    """An AOI from a GeoJSON Polygon/MultiPolygon (geometry, Feature or FeatureCollection; file or dict)."""
    label = str(source) if not isinstance(source, dict) else "GeoJSON"
    if isinstance(source, dict):
        obj = source
    else:
        p = Path(source)
        try:
            obj = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise AOIError(f"{p}: GeoJSON file not found.") from e
        except json.JSONDecodeError as e:
            raise AOIError(f"{p}: not valid JSON ({e.msg} at line {e.lineno}).") from e
    geoms = _polygons(obj, label)
    try:
        geom = shapely.union_all([shape(g) for g in geoms])
    except Exception as e:  # shapely raises several types for broken rings
        raise AOIError(f"{label}: geometry cannot be read ({e}).") from e
    if not geom.is_valid:  # e.g. a ring that crosses itself: its polygonal parts (lines and points dropped)
        geom = shapely.union_all([g for g in shapely.get_parts(shapely.make_valid(geom)) if g.area > 0])
    if not isinstance(geom, (Polygon, MultiPolygon)) or geom.is_empty:
        raise AOIError(
            f"{label}: the polygon encloses no area; draw it with at least three distinct corners."
        )
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise AOIError(
            f"{label}: coordinates are not lon/lat degrees (bounds {geom.bounds}); GeoJSON must be WGS84."
        )
    aid = aoi_id or _adhoc_id(geom)
    _check_size(aid, geom)
    # Never without pixels: at least 100 m² (_check_size), and rasterising keeps a thin shape's line of pixels.
    return AOI(id=aid, name=name or "Ad hoc area", footprint=geom, geobox=_geobox_for(geom))


def footprint_geojson(aoi: AOI) -> dict[str, Any]:
    return mapping(aoi.footprint)


@dataclass(frozen=True)
class TimeWindows:
    """Inclusive date ranges. The optical baseline ends the day before the after window starts."""

    before: tuple[date, date]
    after: tuple[date, date]
    sar_before: tuple[date, date]
    sar_season: tuple[date, date] | None = None
    """The after window one year earlier, widened by windows.sar_season_days: the Sentinel-1 baseline on
    cropland, whose backscatter follows the rice cycle (None: no seasonal baseline)."""

    def as_dict(self) -> dict[str, list[str]]:
        return {k: [d.isoformat() for d in getattr(self, k)] for k in ("before", "after", "sar_before")}

    def sar_ranges(self) -> list[tuple[date, date]]:
        """The date ranges of Sentinel-1 scenes to load, oldest first: the seasonal window and the baseline
        through the after window, merged into one where they touch (as they do with a 12-month baseline)."""
        main = (self.sar_before[0], self.after[1])
        if self.sar_season is None:
            return [main]
        season = self.sar_season
        if season[1] + timedelta(days=1) >= main[0]:
            return [(min(season[0], main[0]), main[1])]
        return [season, main]


def season_window(after: tuple[date, date], half_width_days: int) -> tuple[date, date] | None:
    """The after window 365 days earlier, widened by half_width_days on each side (None when 0)."""
    if half_width_days <= 0:
        return None
    year, pad = timedelta(days=365), timedelta(days=half_width_days)
    return (after[0] - year - pad, after[1] - year + pad)


def windows_for(run_date: date, settings: WindowSettings) -> TimeWindows:
    """The windows of a daily run on run_date."""
    after_start = run_date - timedelta(days=settings.after_days - 1)
    before_end = after_start - timedelta(days=1)
    return TimeWindows(
        before=(before_end - timedelta(days=settings.before_days - 1), before_end),
        after=(after_start, run_date),
        sar_before=(before_end - timedelta(days=settings.sar_baseline_days - 1), before_end),
        sar_season=season_window((after_start, run_date), settings.sar_season_days),
    )


def explicit_windows(
    before: tuple[date, date],
    after: tuple[date, date],
    *,
    sar_baseline_days: int,
    sar_season_days: int = 0,
) -> TimeWindows:
    """Windows given by an analyst; the SAR baseline is at least as long as sar_baseline_days, and with
    sar_season_days > 0 cropland gets the same-season baseline a year earlier."""
    for label, (a, b) in (("before", before), ("after", after)):
        if a > b:
            raise AOIError(
                f"the {label} window {a}..{b} ends before it starts; give START..END with START <= END."
            )
    if before[1] >= after[0]:
        raise AOIError(
            f"the before window {before[0]}..{before[1]} overlaps the after window {after[0]}..{after[1]}; "
            "the before window must end before the after window starts."
        )
    sar_start = min(before[0], before[1] - timedelta(days=sar_baseline_days - 1))
    return TimeWindows(
        before=before,
        after=after,
        sar_before=(sar_start, before[1]),
        sar_season=season_window(after, sar_season_days),
    )
