"""Test fake (fetch): a static STAC API on 127.0.0.1 serving real COGs over HTTP with Range requests.

``build_catalog(folder)`` writes Sentinel-2 L2A (Earth Search layout), Sentinel-1 RTC (Planetary Computer
layout) and ESA WorldCover COGs with rasterio (driver COG) for a small patch of ground near Preah Vihear (UTM
48N); ``FakeStacServer(catalog)`` serves them: ``/`` landing page, ``/conformance``,
``/collections[/id[/items]]``, ``/search`` (GET and POST: collections, bbox, intersects, datetime, ids, query
and CQL2-JSON filter on any property, ``next`` links for pages) and ``/data/...`` files with HTTP Range
support, so GDAL reads them through /vsicurl/ exactly as it reads remote COGs. It counts requests and bytes,
can fail chosen paths (``fail``), and rejects Sentinel-1 hrefs without the token ``sign_href`` adds (as
Planetary Computer rejects unsigned blob URLs).

Ground: the land cover of the project simulator's world (SimulatorSource.load_landcover, so the fake shows the
same villages, paddies and rivers), with reflectance and backscatter per class and per-pixel noise from an
integer hash of world coordinates, so overlapping granules agree pixel for pixel; clouds per day. Dates,
baselines and clouds are the fake's own: the tests need exact control (identical ground on two dates under two
processing baselines), which the simulator's own acquisition schedule does not give.
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin
from shapely.geometry import box, mapping, shape

from tests.fakes.loopback import LoopbackServer, QuietHandler

EPSG = 32648
CENTRE_LONLAT = (104.68, 14.39)
TOKEN = "fake-sas-token"
"""The query token sign_href adds; the server rejects Sentinel-1 data requests without it."""

LC_TREE, LC_SHRUB, LC_GRASS, LC_CROP, LC_BUILT, LC_BARE, LC_WATER = 10, 20, 30, 40, 50, 60, 80
EXTENT = (3500.0, 2000.0)
"""Half width and half height (m) of the ground the fake covers, around its centre."""
# Surface reflectance of each land cover in B02, B03, B04, B08, B11, B12.
_REFL = {
    LC_TREE: (0.025, 0.05, 0.03, 0.32, 0.16, 0.07),
    LC_SHRUB: (0.035, 0.06, 0.05, 0.27, 0.2, 0.1),
    LC_GRASS: (0.04, 0.07, 0.06, 0.3, 0.24, 0.13),
    LC_CROP: (0.04, 0.07, 0.06, 0.28, 0.22, 0.12),
    LC_BUILT: (0.09, 0.11, 0.13, 0.22, 0.26, 0.22),
    LC_BARE: (0.08, 0.11, 0.15, 0.23, 0.32, 0.27),
    LC_WATER: (0.04, 0.05, 0.03, 0.02, 0.01, 0.005),
}
_SCL_OF = {LC_TREE: 4, LC_SHRUB: 4, LC_GRASS: 4, LC_CROP: 4, LC_BUILT: 5, LC_BARE: 5, LC_WATER: 6}
# Linear gamma0 (VV, VH) of each land cover.
_GAMMA0 = {
    LC_TREE: (0.12, 0.03),
    LC_SHRUB: (0.09, 0.02),
    LC_GRASS: (0.06, 0.012),
    LC_CROP: (0.05, 0.008),
    LC_BUILT: (0.5, 0.06),
    LC_BARE: (0.07, 0.012),
    LC_WATER: (0.004, 0.001),
}
S2_BANDS = (
    ("blue", "B02", 10),
    ("green", "B03", 10),
    ("red", "B04", 10),
    ("nir", "B08", 10),
    ("swir16", "B11", 20),
    ("swir22", "B12", 20),
)
S2_ASSET_NAMES = tuple(a for a, _, _ in S2_BANDS) + ("scl",)


def sign_href(href: str) -> str:
    """The fake's URL signer (what planetary_computer.sign does for Azure blobs): appends the token."""
    return href + ("&" if "?" in href else "?") + f"token={TOKEN}"


# -- the ground ----------------------------------------------------------------------------------------------


def _centre_xy() -> tuple[float, float]:
    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{EPSG}", always_xy=True).transform(*CENTRE_LONLAT)
    return round(x / 20) * 20.0, round(y / 20) * 20.0


def _hash01(ix: np.ndarray, iy: np.ndarray, salt: int) -> np.ndarray:
    """A uniform [0, 1) value per integer position (splitmix64), the same for any tile that covers it."""
    with np.errstate(over="ignore"):
        h = (ix.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (
            iy.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        )
        h ^= np.uint64(salt * 0x165667B19E3779F9 & 0xFFFFFFFFFFFFFFFF)
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _pattern_land_cover(x: np.ndarray, y: np.ndarray, cx: float, cy: float) -> np.ndarray:
    """A fallback world when the simulator cannot be imported: smooth patterns, a village lattice, a river."""
    u, v = x - cx, y - cy
    f = np.sin(u / 650.0) + np.cos(v / 830.0) + 0.6 * np.sin((u - v) / 410.0)
    lc = np.where(f > 0.7, LC_TREE, np.where(f > -0.8, LC_CROP, LC_BARE)).astype(np.uint8)
    village = ((np.floor(u / 250) % 6) == 0) & ((np.floor(v / 250) % 5) == 0)
    lc[village] = LC_BUILT
    lc[np.abs(v - 900.0 * np.sin(u / 1500.0)) < 30.0] = LC_WATER
    return lc


@dataclass(frozen=True)
class Ground:
    """WorldCover codes on a 10 m UTM grid covering the fake's extent (from the project simulator's world)."""

    codes: np.ndarray
    x0: float
    y1: float

    @classmethod
    def render(cls, cx: float, cy: float) -> Ground:
        x0, y0, x1, y1 = (
            cx - EXTENT[0] - 200,
            cy - EXTENT[1] - 200,
            cx + EXTENT[0] + 200,
            cy + EXTENT[1] + 200,
        )
        try:
            from odc.geo.geobox import GeoBox

            from monitoring.aoi import AOI
            from monitoring.sources.simulator import SimulatorSource

            gb = GeoBox.from_bbox((x0, y0, x1, y1), crs=f"EPSG:{EPSG}", resolution=10)
            aoi = AOI(
                id="fake-ground", name="fake ground", footprint=box(*_bbox_lonlat(x0, y0, x1, y1)), geobox=gb
            )
            codes = np.asarray(SimulatorSource(None, seed=2025).load_landcover(aoi).values, dtype=np.uint8)
        except ImportError:
            xs, ys = _grid(x0, y1, 10.0, int((x1 - x0) / 10), int((y1 - y0) / 10))
            codes = _pattern_land_cover(xs, ys, cx, cy)
        return cls(codes, x0, y1)

    def at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Code of the 10 m cell holding each UTM point."""
        ix = np.clip(np.floor((x - self.x0) / 10).astype(np.int64), 0, self.codes.shape[1] - 1)
        iy = np.clip(np.floor((self.y1 - y) / 10).astype(np.int64), 0, self.codes.shape[0] - 1)
        return self.codes[iy, ix]


def reflectance(lc: np.ndarray, x: np.ndarray, y: np.ndarray, band: int) -> np.ndarray:
    """Cloud-free surface reflectance of band index 0..5 (B02..B12) of land cover lc at UTM points (x, y)."""
    table = np.zeros(256, np.float64)
    for code, refl in _REFL.items():
        table[code] = refl[band]
    noise = _hash01(*_cell(x, y), 17 + band)
    return table[lc] * (0.9 + 0.2 * noise)


def clouds(
    x: np.ndarray, y: np.ndarray, day: date, fraction: float, cx: float, cy: float
) -> tuple[np.ndarray, np.ndarray]:
    """(cloud, shadow) masks of a day: smooth blobs covering about `fraction` of the fake's extent."""
    if fraction <= 0:
        z = np.zeros(x.shape, bool)
        return z, z
    ph = day.toordinal() * 0.77

    def field_at(xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
        return np.sin((xx - cx) / 420.0 + ph) * np.cos((yy - cy) / 510.0 - 1.3 * ph) + 0.3 * np.sin(
            (xx + yy) / 230.0 + ph
        )

    # Threshold from the field's own distribution so the fraction holds over the whole extent.
    gx, gy = np.meshgrid(
        np.linspace(cx - EXTENT[0], cx + EXTENT[0], 141), np.linspace(cy - EXTENT[1], cy + EXTENT[1], 81)
    )
    thr = np.quantile(field_at(gx, gy), 1.0 - fraction)
    cloud = field_at(x, y) > thr
    shadow = (field_at(x - 200.0, y + 200.0) > thr) & ~cloud
    return cloud, shadow


# -- the catalogue -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S2Spec:
    """One Sentinel-2 L2A granule."""

    day: date
    tile: str
    """'A' (west) or 'B' (east); they overlap by 1 km."""
    baseline: str = "05.00"
    offset_in_metadata: bool = True
    """raster:bands carries offset -0.1 (newer items); False for baseline >= 04.00 items without it."""
    boa_applied: bool | None = None
    """earthsearch:boa_offset_applied: True = the pixels were harmonised (no +1000 DN)."""
    cloud: float = 0.0
    version: int = 0
    """The _0_/_1_ of Earth Search ids: 1 is a reprocessed copy of the same granule."""
    hole: bool = False
    """Leave a nodata hole (a datastrip edge) in the overlap with the other tile."""
    sun: str = "view"
    """Sun angles in the item: "view" (Earth Search: view:sun_azimuth, view:sun_elevation), "s2" (Planetary
    Computer: s2:mean_solar_azimuth, s2:mean_solar_zenith) or "none"."""

    @property
    def sun_angles(self) -> tuple[float, float]:
        """(azimuth, zenith) of the granule: plausible for 10:35 local time in December at 14 N (not computed),
        a little different per day and tile so that a test can tell metadata from a computed sun."""
        return 150.0 + 0.3 * (self.day.day - 10) + (
            0.4 if self.tile == "B" else 0.0
        ), 40.0 + 0.1 * self.day.day

    @property
    def id(self) -> str:
        return f"S2B_48PV{self.tile}_{self.day:%Y%m%d}_{self.version}_L2A"

    @property
    def dn_offset(self) -> int:
        return 1000 if float(self.baseline) >= 4.0 and not self.boa_applied else 0


@dataclass(frozen=True)
class S1Spec:
    """One Sentinel-1 RTC slice."""

    day: date
    orbit: int
    direction: str
    part: str = "full"
    """'full', 'north' or 'south' (two slices of one pass along track)."""

    @property
    def time(self) -> datetime:
        hh, mm = (11, 10) if self.direction == "ascending" else (23, 5)
        extra = 25 if self.part == "south" else 0
        return datetime(self.day.year, self.day.month, self.day.day, hh, mm, extra, tzinfo=UTC)

    @property
    def id(self) -> str:
        return f"S1A_IW_GRDH_1SDV_{self.time:%Y%m%dT%H%M%S}_R{self.orbit:03d}_{self.part}_rtc"


def small_specs() -> tuple[list[S2Spec], list[S1Spec]]:
    """The catalogue most tests use: December 2025, a few granules of every kind the source must handle."""
    d = date
    s2 = [
        S2Spec(d(2025, 12, 3), "A", baseline="02.14", offset_in_metadata=False, sun="none"),
        S2Spec(d(2025, 12, 3), "B", baseline="02.14", offset_in_metadata=False, hole=True, sun="none"),
        S2Spec(d(2025, 12, 8), "A"),
        S2Spec(d(2025, 12, 8), "B"),
        S2Spec(d(2025, 12, 10), "A", cloud=0.96),
        S2Spec(d(2025, 12, 10), "B", cloud=0.96),
        S2Spec(d(2025, 12, 13), "A", baseline="04.00", offset_in_metadata=False, cloud=0.3, sun="s2"),
        S2Spec(d(2025, 12, 13), "B", baseline="04.00", boa_applied=True, cloud=0.3),
        S2Spec(d(2025, 12, 18), "A", baseline="02.14", offset_in_metadata=False, cloud=0.1),
        S2Spec(d(2025, 12, 18), "A", baseline="05.00", version=1, cloud=0.1),
        S2Spec(d(2025, 12, 18), "B", cloud=0.1),
    ]
    s1 = [
        S1Spec(d(2025, 12, 2), 128, "ascending"),
        S1Spec(d(2025, 12, 5), 26, "descending"),
        S1Spec(d(2025, 12, 14), 128, "ascending"),
        S1Spec(d(2025, 12, 17), 26, "descending", "north"),
        S1Spec(d(2025, 12, 17), 26, "descending", "south"),
    ]
    return s2, s1


def dense_specs(start: date, end: date) -> tuple[list[S2Spec], list[S1Spec]]:
    """A realistic revisit: Sentinel-2 every 5 days (two granules), Sentinel-1 every 6 days on two orbits."""
    s2: list[S2Spec] = []
    day, i = start, 0
    while day <= end:
        cloud = (0.0, 0.2, 0.6, 0.05, 0.95)[i % 5]
        s2 += [S2Spec(day, "A", cloud=cloud), S2Spec(day, "B", cloud=cloud)]
        day, i = day + timedelta(days=5), i + 1
    s1: list[S1Spec] = []
    day = start
    while day <= end:
        s1.append(S1Spec(day, 128, "ascending"))
        if day + timedelta(days=3) <= end:
            s1.append(S1Spec(day + timedelta(days=3), 26, "descending"))
        day += timedelta(days=6)
    return s2, s1


@dataclass
class Catalog:
    """COGs on disk and the STAC items describing them (hrefs relative to the server's base URL)."""

    root: Path
    centre: tuple[float, float]
    ground: Ground
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """collection id -> item dicts whose asset hrefs start with '{base}'."""


_COG = {"driver": "COG", "BLOCKSIZE": 256, "COMPRESS": "DEFLATE", "LEVEL": 1, "OVERVIEWS": "AUTO"}


def _write_cog(
    path: Path, data: np.ndarray, transform: Any, *, nodata: float, crs: str = f"EPSG:{EPSG}"
) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    predictor = 3 if data.dtype.kind == "f" else 2
    profile = {"width": data.shape[1], "height": data.shape[0], "count": 1, "dtype": data.dtype, "crs": crs}
    with rasterio.open(
        path, "w", transform=transform, nodata=nodata, PREDICTOR=predictor, **profile, **_COG
    ) as dst:
        dst.write(data, 1)
    return path.stat().st_size


def _grid(x0: float, y1: float, res: float, nx: int, ny: int) -> tuple[np.ndarray, np.ndarray]:
    xs = x0 + res * (np.arange(nx) + 0.5)
    ys = y1 - res * (np.arange(ny) + 0.5)
    gx, gy = np.meshgrid(xs, ys)
    return gx, gy


def _bbox_lonlat(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    t = Transformer.from_crs(f"EPSG:{EPSG}", "EPSG:4326", always_xy=True)
    lo, la = t.transform([x0, x1, x0, x1], [y0, y0, y1, y1])
    return [min(lo), min(la), max(lo), max(la)]


def _cell(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.floor(x / 10).astype(np.int64), np.floor(y / 10).astype(np.int64)


def _s2_item(spec: S2Spec, cat: Catalog) -> dict[str, Any]:
    cx, cy = cat.centre
    x0 = cx - EXTENT[0] if spec.tile == "A" else cx - 500.0
    x1, y0, y1 = x0 + 4000.0, cy - EXTENT[1], cy + EXTENT[1]
    rel = f"s2/{spec.id}"
    assets: dict[str, Any] = {}
    cloud_frac = 0.0
    # Earth Search keeps -0.1 in raster:bands even where it harmonised the pixels (boa_offset_applied).
    offset = (-0.1 if float(spec.baseline) >= 4.0 else 0.0) if spec.offset_in_metadata else None
    for res in (10, 20):
        n = int(4000 / res)
        x, y = _grid(x0, y1, res, n, n)
        cloud, shadow = clouds(x, y, spec.day, spec.cloud, cx, cy)
        hole = (x < cx) & (y < cy - 500.0) if spec.hole else np.zeros(x.shape, bool)
        lc = cat.ground.at(x, y)
        tr = from_origin(x0, y1, res, res)
        if res == 20:
            cloud_frac = float(cloud.mean())
            scl_of = np.zeros(256, np.uint8)
            for code, c in _SCL_OF.items():
                scl_of[code] = c
            scl = scl_of[lc]
            scl[shadow], scl[cloud], scl[hole] = 3, 9, 0
            _write_cog(cat.root / rel / "SCL.tif", scl, tr, nodata=0)
            assets["scl"] = _asset(f"{rel}/SCL.tif", "SCL", None, tr, (n, n), "uint8")
        for bi, (key, name, bres) in enumerate(S2_BANDS):
            if bres != res:
                continue
            refl = reflectance(lc, x, y, bi)
            refl = np.where(shadow, refl * 0.35, refl)
            refl = np.where(cloud, 0.45 + 0.1 * _hash01(*_cell(x, y), 99), refl)
            dn = np.clip(np.round(refl * 10000.0) + spec.dn_offset, 1, 65535).astype(np.uint16)
            dn[hole] = 0
            _write_cog(cat.root / rel / f"{name}.tif", dn, tr, nodata=0)
            assets[key] = _asset(
                f"{rel}/{name}.tif", name, key, tr, (n, n), "uint16", scale=1e-4, offset=offset
            )
    stamp = f"2025-12-{20 + spec.version:02d}T00:00:00Z"
    props: dict[str, Any] = {
        "datetime": f"{spec.day.isoformat()}T03:35:12.024000Z",
        "platform": "sentinel-2b",
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": round(100.0 * cloud_frac, 3),
        "proj:epsg": EPSG,
        "grid:code": f"MGRS-48PV{spec.tile}",
        "mgrs:utm_zone": 48,
        "mgrs:latitude_band": "P",
        "mgrs:grid_square": f"V{spec.tile}",
        "s2:processing_baseline": spec.baseline,
        "created": stamp,
        "updated": stamp,
    }
    if spec.boa_applied is not None:
        props["earthsearch:boa_offset_applied"] = spec.boa_applied
    az, zen = spec.sun_angles
    if spec.sun == "view":
        props.update({"view:sun_azimuth": az, "view:sun_elevation": 90.0 - zen})
    elif spec.sun == "s2":
        props.update({"s2:mean_solar_azimuth": az, "s2:mean_solar_zenith": zen})
    return _item(spec.id, "sentinel-2-l2a", props, _bbox_lonlat(x0, y0, x1, y1), assets)


def _asset(
    href: str,
    name: str,
    common: str | None,
    transform: Any,
    shape: tuple[int, int],
    dtype: str,
    *,
    scale: float | None = None,
    offset: float | None = None,
    nodata: float = 0,
) -> dict[str, Any]:
    rb: dict[str, Any] = {"nodata": nodata, "data_type": dtype, "spatial_resolution": transform.a}
    if scale is not None:
        rb["scale"] = scale
    if offset is not None:
        rb["offset"] = offset
    a: dict[str, Any] = {
        "href": "{base}/data/" + href,
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "roles": ["data"],
        "proj:shape": list(shape),
        "proj:transform": list(transform)[:6],
        "raster:bands": [rb],
    }
    if name.startswith("B"):
        a["eo:bands"] = [{"name": name, **({"common_name": common} if common else {})}]
    return a


def _item(
    item_id: str, collection: str, props: dict[str, Any], bbox: list[float], assets: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
            "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
            "https://stac-extensions.github.io/view/v1.0.0/schema.json",
        ],
        "id": item_id,
        "collection": collection,
        "bbox": bbox,
        "geometry": mapping(box(*bbox)),
        "properties": props,
        "assets": assets,
        "links": [],
    }


def _s1_item(spec: S1Spec, cat: Catalog, seed: int) -> dict[str, Any]:
    cx, cy = cat.centre
    x0, x1 = cx - EXTENT[0], cx + EXTENT[0]
    halves = {"full": (-EXTENT[1], EXTENT[1]), "north": (-100.0, EXTENT[1]), "south": (-EXTENT[1], 100.0)}
    y0, y1 = (cy + d for d in halves[spec.part])
    nx, ny = int((x1 - x0) / 10), int((y1 - y0) / 10)
    x, y = _grid(x0, y1, 10.0, nx, ny)
    lc = cat.ground.at(x, y)
    rng = np.random.default_rng(seed)
    rel = f"s1/{spec.id}"
    assets: dict[str, Any] = {}
    layover = np.zeros(x.shape, bool)
    if spec.orbit == 26:
        layover = (x > cx - 1200) & (x < cx - 900) & (y > cy + 300) & (y < cy + 600)
    tr = from_origin(x0, y1, 10, 10)
    for pi, pol in enumerate(("vv", "vh")):
        table = np.zeros(256, np.float64)
        for code, g in _GAMMA0.items():
            table[code] = g[pi]
        # Speckle: gamma-distributed intensity with ENL 4.4, as in Sentinel-1 GRD.
        g0 = (table[lc] * rng.gamma(4.4, 1 / 4.4, size=x.shape)).astype(np.float32)
        g0[layover] = -32768.0
        _write_cog(cat.root / rel / f"{pol}.tif", g0, tr, nodata=-32768.0)
        assets[pol] = _asset(f"{rel}/{pol}.tif", pol.upper(), None, tr, (ny, nx), "float32", nodata=-32768)
    props = {
        "datetime": spec.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": "SENTINEL-1A",
        "constellation": "Sentinel-1",
        "sat:orbit_state": spec.direction,
        "sat:relative_orbit": spec.orbit,
        "sar:polarizations": ["VV", "VH"],
        "sar:instrument_mode": "IW",
        "proj:epsg": EPSG,
    }
    return _item(spec.id, "sentinel-1-rtc", props, _bbox_lonlat(x0, y0, x1, y1), assets)


def _worldcover_item(cat: Catalog) -> dict[str, Any]:
    cx, cy = cat.centre
    lo0, la0, lo1, la1 = _bbox_lonlat(
        cx - EXTENT[0] - 100, cy - EXTENT[1] - 100, cx + EXTENT[0] + 100, cy + EXTENT[1] + 100
    )
    res = 1 / 12000.0  # WorldCover's own grid: 3 arc-seconds / 9, in EPSG:4326
    lo0, la1 = math.floor(lo0 / res) * res, math.ceil(la1 / res) * res
    nx, ny = int(math.ceil((lo1 - lo0) / res)), int(math.ceil((la1 - la0) / res))
    lon, lat = _grid(lo0, la1, res, nx, ny)
    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{EPSG}", always_xy=True).transform(lon, lat)
    lc = cat.ground.at(np.asarray(x), np.asarray(y))
    item_id = "ESA_WorldCover_10m_2021_v200_N12E102"
    rel = f"worldcover/{item_id}/map.tif"
    tr = from_origin(lo0, la1, res, res)
    _write_cog(cat.root / rel, lc, tr, nodata=0, crs="EPSG:4326")
    asset = _asset(rel, "map", None, tr, (ny, nx), "uint8", nodata=0)
    props = {"datetime": "2021-01-01T00:00:00Z", "esa_worldcover:product_version": "2.0.0", "proj:epsg": 4326}
    return _item(item_id, "esa-worldcover", props, [lo0, la1 - ny * res, lo0 + nx * res, la1], {"map": asset})


def build_catalog(root: Path, specs: tuple[list[S2Spec], list[S1Spec]] | None = None) -> Catalog:
    """Write the COGs under root and return the catalogue (small_specs() unless specs are given)."""
    s2, s1 = specs or small_specs()
    cx, cy = _centre_xy()
    cat = Catalog(root=Path(root), centre=(cx, cy), ground=Ground.render(cx, cy))
    # GDAL's DEFLATE and numpy release the GIL: two threads halve the time on two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        opt = pool.map(lambda sp: _s2_item(sp, cat), s2)
        sar = pool.map(lambda a: _s1_item(a[1], cat, seed=a[0]), enumerate(s1))
        wc = pool.submit(_worldcover_item, cat)
        cat.items["sentinel-2-l2a"] = list(opt)
        cat.items["sentinel-1-rtc"] = list(sar)
        cat.items["esa-worldcover"] = [wc.result()]
    return cat


# -- the server ----------------------------------------------------------------------------------------------

_CONFORMS = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/item-search#query",
    "https://api.stacspec.org/v1.0.0/item-search#filter",
    "https://api.stacspec.org/v1.0.0/item-search#sort",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
]


@dataclass
class Fault:
    """Answer requests whose path contains `match` with `status`, `times` times (None = always)."""

    match: str
    status: int = 500
    times: int | None = None


@dataclass
class RequestLog:
    method: str
    path: str
    status: int
    nbytes: int

    @property
    def is_data(self) -> bool:
        return self.path.startswith("/data/")


class _BadRequest(Exception):
    pass


def _parse_time(s: str) -> datetime | None:
    if s in ("", ".."):
        return None
    return datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(UTC)


def _item_time(item: dict[str, Any]) -> datetime:
    return _parse_time(item["properties"]["datetime"])  # type: ignore[return-value]


def _cmp(op: str, a: Any, b: Any) -> bool:
    if a is None:
        return False
    return {
        "eq": a == b,
        "=": a == b,
        "neq": a != b,
        "<>": a != b,
        "lt": a < b,
        "<": a < b,
        "lte": a <= b,
        "<=": a <= b,
        "gt": a > b,
        ">": a > b,
        "gte": a >= b,
        ">=": a >= b,
        "in": a in b if isinstance(b, list) else False,
    }[op]


def _cql2(expr: Any, props: dict[str, Any]) -> Any:
    if isinstance(expr, dict) and "property" in expr:
        return props.get(expr["property"])
    if isinstance(expr, dict) and "op" in expr:
        op, args = expr["op"], expr.get("args", [])
        if op == "and":
            return all(_cql2(a, props) for a in args)
        if op == "or":
            return any(_cql2(a, props) for a in args)
        if op == "not":
            return not _cql2(args[0], props)
        if op in ("=", "<>", "<", "<=", ">", ">="):
            return _cmp(op, _cql2(args[0], props), _cql2(args[1], props))
        raise _BadRequest(f"unsupported CQL2 operator {op!r}")
    return expr


class FakeStacServer:
    """The catalogue served on 127.0.0.1 in a thread; use as a context manager or call close()."""

    def __init__(self, catalog: Catalog, *, require_token_for: tuple[str, ...] = ("/data/s1/",)) -> None:
        self.catalog = catalog
        self.require_token_for = require_token_for
        self.faults: list[Fault] = []
        self.log: list[RequestLog] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._handler(), name="fake-stac")
        self.url = self._server.url
        self._items = {
            coll: [json.loads(json.dumps(it).replace("{base}", self.url)) for it in items]
            for coll, items in catalog.items.items()
        }
        for coll, items in self._items.items():
            for it in items:
                it["links"] = [
                    {
                        "rel": "self",
                        "href": f"{self.url}/collections/{coll}/items/{it['id']}",
                        "type": "application/geo+json",
                    },
                    {
                        "rel": "collection",
                        "href": f"{self.url}/collections/{coll}",
                        "type": "application/json",
                    },
                    {"rel": "parent", "href": f"{self.url}/collections/{coll}", "type": "application/json"},
                    {"rel": "root", "href": f"{self.url}/", "type": "application/json"},
                ]

    def __enter__(self) -> FakeStacServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.close()

    # -- test controls ---------------------------------------------------------------------------------------

    def fail(self, match: str, status: int = 500, times: int | None = None) -> Fault:
        f = Fault(match, status, times)
        with self._lock:
            self.faults.append(f)
        return f

    def reset(self) -> None:
        with self._lock:
            self.log.clear()
            self.faults.clear()

    def stats(self) -> dict[str, int]:
        with self._lock:
            log = list(self.log)
        return {
            "requests": len(log),
            "bytes": sum(r.nbytes for r in log),
            "api_requests": sum(not r.is_data for r in log),
            "api_bytes": sum(r.nbytes for r in log if not r.is_data),
            "data_requests": sum(r.is_data for r in log),
            "data_bytes": sum(r.nbytes for r in log if r.is_data),
            "errors": sum(r.status >= 400 for r in log),
        }

    def href(self, item_id: str, asset: str) -> str:
        for items in self._items.values():
            for it in items:
                if it["id"] == item_id:
                    return str(it["assets"][asset]["href"])
        raise KeyError(item_id)

    def items(self, collection: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self._items[collection])

    def _record(self, method: str, path: str, status: int, nbytes: int) -> None:
        with self._lock:
            self.log.append(RequestLog(method, path, status, nbytes))

    def _fault_for(self, path: str) -> int | None:
        with self._lock:
            for f in self.faults:
                if f.match in path and (f.times is None or f.times > 0):
                    if f.times is not None:
                        f.times -= 1
                    return f.status
        return None

    # -- API -------------------------------------------------------------------------------------------------

    def _landing(self) -> dict[str, Any]:
        u = self.url
        return {
            "type": "Catalog",
            "id": "fake-stac",
            "stac_version": "1.0.0",
            "description": "Borderwatch test fake",
            "conformsTo": _CONFORMS,
            "links": [
                {"rel": "self", "href": f"{u}/", "type": "application/json"},
                {"rel": "root", "href": f"{u}/", "type": "application/json"},
                {"rel": "conformance", "href": f"{u}/conformance", "type": "application/json"},
                {"rel": "data", "href": f"{u}/collections", "type": "application/json"},
                {"rel": "search", "href": f"{u}/search", "type": "application/geo+json", "method": "GET"},
                {"rel": "search", "href": f"{u}/search", "type": "application/geo+json", "method": "POST"},
            ]
            + [
                {"rel": "child", "href": f"{u}/collections/{c}", "type": "application/json"}
                for c in self._items
            ],
        }

    def _collection(self, cid: str) -> dict[str, Any]:
        u = self.url
        return {
            "type": "Collection",
            "id": cid,
            "stac_version": "1.0.0",
            "description": f"fake {cid}",
            "license": "proprietary",
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
            "links": [
                {"rel": "self", "href": f"{u}/collections/{cid}", "type": "application/json"},
                {"rel": "root", "href": f"{u}/", "type": "application/json"},
                {"rel": "items", "href": f"{u}/collections/{cid}/items", "type": "application/geo+json"},
            ],
        }

    def search(self, params: dict[str, Any], *, method: str, path: str = "/search") -> dict[str, Any]:
        """The ItemCollection page for STAC search parameters (as parsed from GET or POST)."""
        colls = params.get("collections") or list(self._items)
        if isinstance(colls, str):
            colls = colls.split(",")
        pool = [it for c in colls for it in self._items.get(c, [])]
        if (bbox := params.get("bbox")) is not None:
            bb = [float(v) for v in (bbox.split(",") if isinstance(bbox, str) else bbox)]
            q = box(*bb)
            pool = [it for it in pool if shape(it["geometry"]).intersects(q)]
        if (geom := params.get("intersects")) is not None:
            g = shape(json.loads(geom) if isinstance(geom, str) else geom)
            pool = [it for it in pool if shape(it["geometry"]).intersects(g)]
        if (ids := params.get("ids")) is not None:
            want = set(ids.split(",") if isinstance(ids, str) else ids)
            pool = [it for it in pool if it["id"] in want]
        if dt := params.get("datetime"):
            a, _, b = dt.partition("/")
            lo, hi = _parse_time(a), (_parse_time(b) if b else _parse_time(a))
            pool = [
                it
                for it in pool
                if (lo is None or _item_time(it) >= lo) and (hi is None or _item_time(it) <= hi)
            ]
        if (query := params.get("query")) is not None:
            query = json.loads(query) if isinstance(query, str) else query
            for prop, conds in query.items():
                pool = [
                    it
                    for it in pool
                    if all(_cmp(op, it["properties"].get(prop), v) for op, v in conds.items())
                ]
        if (flt := params.get("filter")) is not None:
            flt = json.loads(flt) if isinstance(flt, str) else flt
            pool = [it for it in pool if _cql2(flt, it["properties"])]
        pool.sort(key=lambda it: (_item_time(it), it["id"]))
        limit = min(int(params.get("limit") or 10), 1000)
        token = params.get("token") or "0"
        offset = int(str(token).removeprefix("next:"))
        page = pool[offset : offset + limit]
        links = [{"rel": "root", "href": f"{self.url}/", "type": "application/json"}]
        if offset + limit < len(pool):
            nxt = {**params, "token": f"next:{offset + limit}"}
            if method == "POST":
                links.append(
                    {
                        "rel": "next",
                        "href": f"{self.url}{path}",
                        "method": "POST",
                        "body": nxt,
                        "merge": False,
                        "type": "application/geo+json",
                    }
                )
            else:
                flat = {k: (json.dumps(v) if isinstance(v, dict | list) else v) for k, v in nxt.items()}
                links.append(
                    {
                        "rel": "next",
                        "href": f"{self.url}{path}?{urlencode(flat)}",
                        "method": "GET",
                        "type": "application/geo+json",
                    }
                )
        return {
            "type": "FeatureCollection",
            "features": page,
            "links": links,
            "numberMatched": len(pool),
            "numberReturned": len(page),
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            # Headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms per request.
            disable_nagle_algorithm = True

            def _send(
                self,
                status: int,
                body: bytes,
                ctype: str = "application/json",
                headers: dict[str, str] | None = None,
                *,
                head: bool = False,
                length: int | None = None,
            ) -> None:
                self.start_response(status, ctype, len(body) if length is None else length, headers)
                # Recorded before the body goes out: once the client has the answer, the log already holds it
                # (recording afterwards raced with tests that read the log as soon as their call returned).
                server._record(self.command, urlparse(self.path).path, status, 0 if head else len(body))
                if not head:
                    self.wfile.write(body)

            def _json(self, obj: Any, status: int = 200) -> None:
                ctype = (
                    "application/geo+json"
                    if obj.get("type") in ("Feature", "FeatureCollection")
                    else "application/json"
                )
                self._send(status, json.dumps(obj).encode(), ctype)

            def _error(self, status: int, msg: str, *, head: bool = False) -> None:
                self._send(
                    status,
                    json.dumps({"code": HTTPStatus(status).phrase, "description": msg}).encode(),
                    head=head,
                )

            def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
                self._route(head=True)

            def do_GET(self) -> None:  # noqa: N802
                self._route()

            def do_POST(self) -> None:  # noqa: N802
                self._route(post=True)

            def _route(self, *, head: bool = False, post: bool = False) -> None:
                url = urlparse(self.path)
                path = url.path.rstrip("/") or "/"
                status = server._fault_for(path)
                if status is not None:
                    if post:
                        self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    self._error(status, f"injected fault for {path}", head=head)
                    return
                try:
                    if path.startswith("/data/"):
                        self._file(path, parse_qs(url.query), head=head)
                    elif path == "/":
                        self._json(server._landing())
                    elif path == "/conformance":
                        self._json({"conformsTo": _CONFORMS})
                    elif path == "/collections":
                        self._json(
                            {"collections": [server._collection(c) for c in server._items], "links": []}
                        )
                    elif path.startswith("/collections/"):
                        self._collections(path)
                    elif path == "/search":
                        if post:
                            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                            self._json(server.search(json.loads(body or b"{}"), method="POST"))
                        else:
                            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
                            self._json(server.search(params, method="GET"))
                    else:
                        self._error(404, f"no route {path}", head=head)
                except _BadRequest as e:
                    self._error(400, str(e))
                except (ValueError, KeyError, TypeError) as e:
                    self._error(400, f"bad request: {e}")

            def _collections(self, path: str) -> None:
                parts = path.split("/")[2:]
                cid = parts[0]
                if cid not in server._items:
                    self._error(404, f"no collection {cid}")
                elif len(parts) == 1:
                    self._json(server._collection(cid))
                elif len(parts) == 2 and parts[1] == "items":
                    params = {k: v[-1] for k, v in parse_qs(urlparse(self.path).query).items()}
                    self._json(
                        server.search(
                            {**params, "collections": [cid]}, method="GET", path=f"/collections/{cid}/items"
                        )
                    )
                elif len(parts) == 3 and parts[1] == "items":
                    for it in server._items[cid]:
                        if it["id"] == parts[2]:
                            self._json(it)
                            return
                    self._error(404, f"no item {parts[2]}")
                else:
                    self._error(404, f"no route {path}")

            def _file(self, path: str, query: dict[str, list[str]], *, head: bool) -> None:
                if (
                    any(path.startswith(p) for p in server.require_token_for)
                    and query.get("token", [""])[-1] != TOKEN
                ):
                    self._error(403, "Server failed to authenticate the request: sign the URL", head=head)
                    return
                rel = path.removeprefix("/data/")
                f = (server.catalog.root / rel).resolve()
                if server.catalog.root.resolve() not in f.parents or not f.is_file():
                    self._error(404, f"no file {rel}", head=head)
                    return
                size = f.stat().st_size
                rng = self.headers.get("Range")
                if rng is None or "," in rng:
                    # Multi-range requests get the whole file, which HTTP allows and GDAL handles.
                    self._send(
                        200,
                        b"" if head else f.read_bytes(),
                        "image/tiff",
                        {"Accept-Ranges": "bytes"},
                        head=head,
                        length=size,
                    )
                    return
                unit, _, spec = rng.partition("=")
                a, _, b = spec.strip().partition("-")
                if unit.strip() != "bytes":
                    self._error(416, "only byte ranges")
                    return
                if a == "":
                    start, end = max(0, size - int(b)), size - 1
                else:
                    start, end = int(a), min(int(b) if b else size - 1, size - 1)
                if start >= size or start > end:
                    self._send(416, b"", "image/tiff", {"Content-Range": f"bytes */{size}"})
                    return
                with open(f, "rb") as fh:
                    fh.seek(start)
                    body = fh.read(end - start + 1)
                self._send(
                    206,
                    body,
                    "image/tiff",
                    {"Accept-Ranges": "bytes", "Content-Range": f"bytes {start}-{end}/{size}"},
                    head=head,
                )

        return Handler


if __name__ == "__main__":  # pragma: no cover - manual use: serve the small catalogue until interrupted
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        cat = build_catalog(Path(d))
        with FakeStacServer(cat) as srv:
            print(
                srv.url,
                "serving",
                {k: len(v) for k, v in cat.items.items()},
                "items; Ctrl-C to stop",
                flush=True,
            )
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
