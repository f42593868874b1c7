"""Fetch (simulator): the world frame: UTM metres of the AOI's zone, world-pixel indices, blocks of the grid.

Every simulated field is a function of position in this frame and of the seed, never of an AOI's origin: two
AOIs in the same UTM zone that overlap see the same ground, clouds and events. (AOIs in different zones see
different, equally plausible worlds; the whole border but its westernmost tip lies in zone 48N.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from numpy.typing import NDArray
from odc.geo.geobox import GeoBox
from pyproj import Transformer

from monitoring.sources.simulator.noise import key

PIXEL_M = 10.0
"""World pixel size: the Sentinel-2 10 m grid that AOI grids are snapped to."""


@lru_cache(maxsize=16)
def _to_xy(epsg: int) -> Transformer:
    return Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)


@lru_cache(maxsize=16)
def _to_lonlat(epsg: int) -> Transformer:
    return Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True)


@dataclass(frozen=True)
class World:
    """Seed and UTM zone: everything needed to evaluate a simulated field at a position."""

    seed: int
    epsg: int

    @property
    def key(self) -> int:
        return key("world", self.seed, self.epsg)

    def to_xy(self, lon: float, lat: float) -> tuple[float, float]:
        x, y = _to_xy(self.epsg).transform(lon, lat)
        return float(x), float(y)

    def to_lonlat(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.float64], ...]:
        return _to_lonlat(self.epsg).transform(x, y)  # type: ignore[no-any-return]


@dataclass(frozen=True, eq=False)
class Window:
    """A rectangular block of pixel centres: xs (columns, metres east) by ys (rows, metres north)."""

    xs: NDArray[np.float64]
    ys: NDArray[np.float64]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.ys), len(self.xs)

    @cached_property
    def cols(self) -> NDArray[np.int64]:
        """World pixel column of each column (floor of x / 10 m)."""
        return np.floor(self.xs / PIXEL_M).astype(np.int64)

    @cached_property
    def rows(self) -> NDArray[np.int64]:
        """World pixel row of each row (floor of y / 10 m; grows northwards)."""
        return np.floor(self.ys / PIXEL_M).astype(np.int64)

    def shifted(self, dx: float, dy: float) -> Window:
        return Window(self.xs + dx, self.ys + dy)

    def bounds(self) -> tuple[float, float, float, float]:
        h = PIXEL_M / 2
        return (
            float(self.xs.min() - h),
            float(self.ys.min() - h),
            float(self.xs.max() + h),
            float(self.ys.max() + h),
        )

    @classmethod
    def around(cls, x0: float, y0: float, x1: float, y1: float) -> Window:
        """The world-aligned window of whole 10 m pixels covering [x0, x1] x [y0, y1], rows north to south."""
        c0, c1 = int(np.floor(x0 / PIXEL_M)), int(np.floor(x1 / PIXEL_M))
        r0, r1 = int(np.floor(y0 / PIXEL_M)), int(np.floor(y1 / PIXEL_M))
        xs = ((np.arange(c0, c1 + 1) + 0.5) * PIXEL_M).astype(np.float64)
        ys = ((np.arange(r1, r0 - 1, -1) + 0.5) * PIXEL_M).astype(np.float64)
        return cls(xs, ys)


def world_for(geobox: GeoBox, seed: int) -> World:
    epsg = geobox.crs.epsg if geobox.crs is not None else None
    if epsg is None:
        # AOI grids are always UTM (monitoring.aoi); anything else is a caller's bug, not a user's input.
        raise ValueError(f"the simulator needs an EPSG-coded UTM grid, got {geobox.crs}")
    return World(seed=seed, epsg=int(epsg))


def grid_axes(geobox: GeoBox) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Pixel-centre coordinates (xs, ys) of an axis-aligned geobox."""
    coords = geobox.coords
    return np.asarray(coords["x"].values, np.float64), np.asarray(coords["y"].values, np.float64)


def block_slices(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]
