"""Fetch (simulator): the static ground: terrain, land cover, paddy fields, villages, roads and rivers.

Every field is evaluated pointwise from world coordinates (no neighbourhood operations), so any window of the
world, an AOI chunk or the few hundred metres around an event, gets exactly the same pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from monitoring.sources.base import LC_BARE, LC_BUILT, LC_CROP, LC_GRASS, LC_SHRUB, LC_TREE, LC_WATER
from monitoring.sources.simulator.noise import (
    F32,
    hash_pairs,
    key,
    normal_grid,
    rehash,
    to_unit,
    uniform_grid,
    value_noise,
)
from monitoring.sources.simulator.world import Window, World

# Internal classes: finer than WorldCover where the physics differs (a roof and a road are both 'built-up').
FOREST, ORCHARD, SHRUB, GRASS, PADDY, BUILDING, ROAD, BARE, WATER = range(1, 10)
CLASS_NAMES = {
    FOREST: "forest",
    ORCHARD: "homestead trees",
    SHRUB: "shrub",
    GRASS: "grass",
    PADDY: "paddy",
    BUILDING: "building",
    ROAD: "road",
    BARE: "bare rock/soil",
    WATER: "water",
}
N_CLASSES = 10

WORLDCOVER = np.zeros(N_CLASSES, np.uint8)
WORLDCOVER[[FOREST, ORCHARD, SHRUB, GRASS, PADDY, BUILDING, ROAD, BARE, WATER]] = [
    LC_TREE, LC_TREE, LC_SHRUB, LC_GRASS, LC_CROP, LC_BUILT, LC_BUILT, LC_BARE, LC_WATER,
]  # fmt: skip
"""Internal class -> ESA WorldCover code (WorldCover maps roads, like roofs, as built-up)."""

BURNABLE = (FOREST, ORCHARD, SHRUB, GRASS, PADDY)

HARVEST_FIRST_DOY = 314
"""10 November: the earliest wet-season rice harvest in the border provinces."""
HARVEST_SPREAD_DAYS = 45
"""Harvests run to about 25 December (photoperiod-sensitive lowland rice)."""

# Regional setting of the border (lon, lat, plain elevation m, hill amplitude m, forest bias): the Poipet and
# Sa Kaeo plains are flat paddy, the Khorat plateau rim (Kantharalak, Ban Kruat) farmland at 150-200 m, the
# Cambodian side below the Dangrek and the Emerald Triangle forested, the Cardamoms (Thmor Da) steep and
# densely forested, the Koh Kong coast hilly.
_REGIONS = np.array(
    [
        (102.57, 13.65, 45.0, 10.0, -0.45),  # Poipet / Aranyaprathet plain
        (102.73, 13.83, 50.0, 15.0, -0.35),  # Nong Chan, Sa Kaeo
        (103.52, 14.18, 55.0, 15.0, -0.05),  # Samraong, Oddar Meanchey
        (103.30, 14.30, 70.0, 40.0, 0.20),  # forest below the Dangrek, Oddar Meanchey
        (103.13, 14.42, 175.0, 30.0, -0.20),  # Ban Kruat, Khorat rim
        (103.30, 14.45, 170.0, 25.0, -0.20),  # Phanom Dong Rak
        (104.65, 14.64, 140.0, 20.0, -0.40),  # Kantharalak, Sisaket farmland
        (104.70, 14.30, 90.0, 40.0, 0.30),  # Preah Vihear lowland forest
        (105.19, 14.37, 150.0, 120.0, 0.35),  # Chong Bok / Emerald Triangle hills
        (102.70, 12.22, 220.0, 350.0, 0.60),  # Cardamom mountains, Veal Veng
        (102.91, 11.66, 15.0, 180.0, 0.20),  # Koh Kong coast hills
    ]
)
_REGION_DEFAULT = (80.0, 60.0, 0.0)
_REGION_SIGMA_M = 22_000.0
RUGGEDNESS = 0.3
"""Relief-proportional small-scale roughness: gives 10 m slopes like a 10-30 m DEM's (steep faces, some over
40 degrees in the hills), which is where Sentinel-1 lays over or is shadowed."""

# The Dangrek escarpment crest (lon, lat, height above the Cambodian plain in m): sandstone cliffs facing
# south, 525 m at Preah Vihear over a plain near 100 m, lower to the west; the Thai side slopes gently north.
_DANGREK = np.array(
    [
        (102.95, 14.335, 170.0),
        (103.27, 14.347, 210.0),
        (103.70, 14.402, 250.0),
        (104.20, 14.386, 300.0),
        (104.68, 14.3925, 420.0),
        (104.97, 14.388, 300.0),
        (105.20, 14.368, 330.0),
        (105.45, 14.330, 220.0),
    ]
)


@dataclass(frozen=True)
class Anchor:
    """A built-up cluster the land cover must contain: a town from the scenario, or the site of a strike."""

    x: float
    y: float
    radius: float
    """Metres; buildings thin out over the outer 30%."""
    density: float
    """Share of built-up pixels in the core."""


@dataclass(frozen=True, eq=False)
class Ground:
    """The static ground of one window. Arrays are (rows, cols) of the window."""

    cls: NDArray[np.uint8]
    """Internal land-cover class (FOREST ... WATER)."""
    elev: F32
    """Elevation, m."""
    dzdx: F32
    """Terrain slope eastwards (dz/dx)."""
    dzdy: F32
    """Terrain slope northwards (dz/dy)."""
    tex: F32
    """Static per-pixel texture, about N(0, 1): canopy gaps, soil patches, roof materials."""
    harvest_doy: F32
    """Paddy field's harvest day of year."""
    transplant_doy: F32
    """Paddy field's transplanting day of year."""
    field_u: F32
    """Uniform [0, 1) per paddy field: vigour, and the lottery for stubble burning."""
    plot_u: F32
    """Uniform [0, 1) per building plot: roof material and wall orientation."""

    @property
    def shape(self) -> tuple[int, int]:
        return self.cls.shape  # type: ignore[return-value]


def _smoothstep(t: F32) -> F32:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@lru_cache(maxsize=16)
def _regions_xy(epsg: int) -> NDArray[np.float64]:
    world = World(0, epsg)
    out = _REGIONS.copy()
    for i, (lon, lat, *_rest) in enumerate(_REGIONS):
        out[i, 0], out[i, 1] = world.to_xy(lon, lat)
    return out


@lru_cache(maxsize=16)
def _dangrek_xy(epsg: int) -> NDArray[np.float64]:
    world = World(0, epsg)
    out = _DANGREK.copy()
    for i, (lon, lat, _h) in enumerate(_DANGREK):
        out[i, 0], out[i, 1] = world.to_xy(lon, lat)
    return out


def _regional(world: World, win: Window) -> tuple[F32, F32, F32]:
    """Plain elevation, hill amplitude and forest bias: Gaussian-weighted blend of the regional settings."""
    pts = _regions_xy(world.epsg)
    wsum = np.full(win.shape, 0.02, np.float32)  # the default setting's weight, far from every region
    acc = [np.full(win.shape, 0.02 * v, np.float32) for v in _REGION_DEFAULT]
    inv = 1.0 / (2.0 * _REGION_SIGMA_M**2)
    for x, y, *params in pts:
        w = np.exp(-((win.ys - y) ** 2) * inv).astype(np.float32)[:, None] * np.exp(
            -((win.xs - x) ** 2) * inv
        ).astype(np.float32)
        wsum += w
        for a, p in zip(acc, params, strict=True):
            a += w * np.float32(p)
    return acc[0] / wsum, acc[1] / wsum, acc[2] / wsum


def _hills_shape(world: World, xs: NDArray[np.float64], ys: NDArray[np.float64]) -> F32:
    h = value_noise(key(world.key, "hills"), xs, ys, 2500.0, octaves=5, gain=0.5)
    return np.maximum(h + np.float32(0.05), 0.0) ** 1.4 * np.float32(2.5)


def _escarpment(world: World, xs: NDArray[np.float64], ys: NDArray[np.float64]) -> tuple[F32, F32]:
    """Height the Dangrek escarpment adds: a south-facing cliff ~700 m wide, a gentle dip slope northwards.

    Returns (plateau, relief): the plateau is a raised plain (farmed, like the Khorat rim), the relief the
    cliff and the crest above it (forest and rock). Every term has compact support, so a window far from the
    line returns exact zeros, as a pointwise evaluation would.
    """
    zero = np.zeros((len(ys), len(xs)), np.float32)
    line = _dangrek_xy(world.epsg)
    lx, ly, lh = line[:, 0], line[:, 1], line[:, 2]
    y_edge = np.interp(xs, lx, ly)
    beyond = np.maximum(lx[0] - xs, 0.0) + np.maximum(xs - lx[-1], 0.0)
    height = (np.interp(xs, lx, lh) * np.clip(1.0 - beyond / 20_000.0, 0.0, 1.0) ** 2).astype(np.float32)
    north = ys[:, None] - y_edge[None, :]
    if not np.any(height > 0) or north.min() > 80_000 + 450 or north.max() < -700 - 450:
        return zero, zero
    meander = np.float32(450.0) * value_noise(key(world.key, "dangrek"), xs, ys, 2000.0, octaves=3)
    d = north.astype(np.float32) + meander  # metres north of the cliff line
    cliff_w = np.float32(700.0)
    rise = _smoothstep((d + cliff_w) / cliff_w)  # 0 on the plain below, 1 from the crest northwards
    dn = np.maximum(d, 0.0)
    plateau = np.float32(0.4) * np.clip(1.0 - dn / np.float32(80_000.0), 0.0, 1.0) ** 2
    crest = (1.0 - plateau) * np.exp(-dn / np.float32(2500.0)) * (dn < 30_000)
    rough = 1.0 + np.float32(0.12) * value_noise(key(world.key, "dangrek-rough"), xs, ys, 400.0, octaves=3)
    h = height[None, :]
    return h * plateau * rise, h * crest * rise * rough


def _relief(world: World, xs: NDArray[np.float64], ys: NDArray[np.float64], hill_amp: F32) -> tuple[F32, F32]:
    """(height above the regional plain, relief above the local plain); they differ on the Dangrek plateau."""
    plateau, cliff = _escarpment(world, xs, ys)
    relief = hill_amp * _hills_shape(world, xs, ys) + cliff
    # High ground is rugged (gullies, crags, boulder fields): roughness grows with relief, none on the plains.
    relief += (
        np.float32(RUGGEDNESS) * relief * value_noise(key(world.key, "rugged"), xs, ys, 150.0, octaves=3)
    )
    return plateau + relief, relief


def _isoline_distance(k: int, win: Window, scale: float, octaves: int) -> F32:
    """Approximate distance (m) to the zero line of a noise field: |f| / |grad f|. Zero lines meander like
    rivers and country roads."""
    f = value_noise(k, win.xs, win.ys, scale, octaves=octaves)
    fx = value_noise(k, win.xs + 5.0, win.ys, scale, octaves=octaves)
    fy = value_noise(k, win.xs, win.ys + 5.0, scale, octaves=octaves)
    grad = np.hypot(fx - f, fy - f) / np.float32(5.0)
    return np.abs(f) / np.maximum(grad, np.float32(1e-7))


def _anchor_density(k: int, win: Window, anchors: tuple[Anchor, ...]) -> F32:
    """Wanted built-up share at each pixel from the anchors (0 outside every anchor)."""
    out = np.zeros(win.shape, np.float32)
    x0, y0, x1, y1 = win.bounds()
    edge = None
    for a in anchors:
        reach = 1.25 * a.radius
        if a.x + reach < x0 or a.x - reach > x1 or a.y + reach < y0 or a.y - reach > y1:
            continue
        if edge is None:
            # Towns are not round: their edge wanders by +-25% of the radius.
            edge = 1.0 + np.float32(0.25) * value_noise(key(k, "town-edge"), win.xs, win.ys, 250.0, octaves=2)
        r = np.sqrt(((win.ys - a.y) ** 2)[:, None] + ((win.xs - a.x) ** 2)[None, :]).astype(np.float32)
        ramp = np.clip((a.radius * edge - r) / (0.3 * a.radius), 0.0, 1.0)
        out = np.maximum(out, np.float32(a.density) * ramp)
    return out


def _paddy_fields(world: World, win: Window) -> tuple[F32, F32, F32]:
    """Harvest and transplanting days and a uniform per field. Fields are 45-90 m by 70 m bunded plots in
    offset rows, the size of lowland paddy in the border provinces."""
    k = key(world.key, "fields")
    band_h, cell_w = 70.0, 90.0
    band = np.floor(win.ys / band_h).astype(np.int64)
    offset = to_unit(hash_pairs(k, np.zeros(1, np.int64), band)).astype(np.float64) * cell_w
    gx = (win.xs[None, :] + offset[:, None]) / cell_w
    cell = np.floor(gx).astype(np.int64)
    h = hash_pairs(k, cell, band[:, None])
    split = to_unit(h) < 0.5
    sub = np.where(split, np.floor((gx - cell) * 2.0).astype(np.int64), 0)
    fk = hash_pairs(k ^ 0x1234567, cell * 2 + sub, band[:, None])
    field_u = to_unit(fk)
    u2, u3 = to_unit(rehash(fk, 1)), to_unit(rehash(fk, 2))
    # Harvest dates follow a regional gradient (planting follows the rains) plus a per-farmer spread.
    trend = value_noise(key(world.key, "harvest"), win.xs, win.ys, 6000.0, octaves=2)
    frac = np.clip(0.5 + 0.9 * trend + 0.7 * (u2 - 0.5), 0.0, 1.0)
    harvest = np.float32(HARVEST_FIRST_DOY) + np.float32(HARVEST_SPREAD_DAYS) * frac
    transplant = harvest - (np.float32(140.0) + np.float32(20.0) * u3)
    return harvest, transplant, field_u


def _terrain(world: World, win: Window) -> tuple[F32, F32, F32, F32, F32]:
    """(elevation m, relief above the local plain m, dz/dx, dz/dy, forest bias)."""
    xs, ys = win.xs, win.ys
    base, hill_amp, forest_bias = _regional(world, win)
    height, relief = _relief(world, xs, ys, hill_amp)
    elev = base + height + np.float32(3.0) * value_noise(key(world.key, "micro"), xs, ys, 200.0, octaves=2)
    # Slopes from centred differences of the pointwise height (5 m either side), not from neighbouring pixels.
    east = _relief(world, xs + 5.0, ys, hill_amp)[0] - _relief(world, xs - 5.0, ys, hill_amp)[0]
    north = _relief(world, xs, ys + 5.0, hill_amp)[0] - _relief(world, xs, ys - 5.0, hill_amp)[0]
    return elev, relief, east / np.float32(10.0), north / np.float32(10.0), forest_bias


def _natural_cover(k: int, win: Window, relief: F32, grad: F32, forest_bias: F32) -> NDArray[np.uint8]:
    """Paddy on the plains, grass patches, forest on hills and where the region keeps it, shrub at its edges,
    rock where too steep to hold soil."""
    xs, ys = win.xs, win.ys
    lowland = relief < 25.0
    cls = np.full(win.shape, PADDY, np.uint8)
    cls[lowland & (value_noise(key(k, "grass"), xs, ys, 400.0, octaves=3) > 0.35)] = GRASS
    fscore = value_noise(key(k, "forest"), xs, ys, 1500.0, octaves=4) + forest_bias
    fscore += np.float32(0.8) * np.clip(relief / 150.0, 0.0, 1.0)
    forest = fscore > 0.3
    cls[~forest & ((relief >= 25.0) | (fscore > 0.18))] = SHRUB
    cls[forest] = FOREST
    rock = value_noise(key(k, "rock"), xs, ys, 300.0, octaves=3)
    # Sandstone outcrops where it is too steep to hold soil (> ~35 deg) and on the high crest.
    cls[((grad > 0.7) & (rock > -0.3)) | ((relief > 200.0) & (rock > 0.55))] = BARE
    return cls


def _ponds(k: int, win: Window) -> NDArray[np.bool_]:
    """Farm ponds (trapeang): one in ~16 of the 100 m cells, 8-16 m radius."""
    pc, pr = np.floor(win.xs / 100.0).astype(np.int64), np.floor(win.ys / 100.0).astype(np.int64)
    hp = hash_pairs(key(k, "pond"), pc[None, :], pr[:, None])
    cx = (pc[None, :] + 0.25 + 0.5 * to_unit(rehash(hp, 1))) * 100.0
    cy = (pr[:, None] + 0.25 + 0.5 * to_unit(rehash(hp, 2))) * 100.0
    radius = 8.0 + 8.0 * to_unit(rehash(hp, 3))
    return (to_unit(hp) < 0.06) & (np.hypot(win.xs[None, :] - cx, win.ys[:, None] - cy) < radius)


def _plots(k: int, win: Window, size_m: float, what: str) -> F32:
    return uniform_grid(
        key(k, what), np.floor(win.xs / size_m).astype(np.int64), np.floor(win.ys / size_m).astype(np.int64)
    )


def _settle(k: int, win: Window, cls: NDArray[np.uint8], relief: F32, grad: F32) -> F32:
    """Roads, and villages strung along them on flat land, drawn into cls; returns each pixel's plot uniform.

    Roads are two families of meandering one-pixel lines, none up cliffs. Villages are 20 m house plots with
    roofs of 1-2 pixels and gardens between: about a quarter of a village is roof (8-12 m houses).
    """
    road_d = np.minimum(
        _isoline_distance(key(k, "road-a"), win, 3500.0, 2),
        _isoline_distance(key(k, "road-b"), win, 5000.0, 2),
    )
    vnoise = value_noise(key(k, "village"), win.xs, win.ys, 800.0, octaves=2)
    village = (road_d < 120.0) & (vnoise > 0.2) & (relief < 25.0) & (grad < 0.14)
    px = uniform_grid(key(k, "px"), win.cols, win.rows)
    px2 = uniform_grid(key(k, "px2"), win.cols, win.rows)
    cls[village] = np.where(px2[village] < 0.55, ORCHARD, GRASS)
    cls[village & (_plots(k, win, 20.0, "plot20") < 0.35 + 0.25 * vnoise) & (px < 0.62)] = BUILDING
    cls[(road_d < 5.5) & (grad < 0.27) & (relief < 80.0)] = ROAD
    return _plots(k, win, 20.0, "plot20u")


def _build_towns(k: int, win: Window, cls: NDArray[np.uint8], density: F32, plot_u: F32) -> F32:
    """Towns and strike sites: 30 m blocks of 2-3 pixel roofs with streets and yards between. They override
    the terrain (temples sit on the Dangrek crest). Returns the updated plot uniforms."""
    town = density > 0
    if not town.any():
        return plot_u
    px = uniform_grid(key(k, "px"), win.cols, win.rows)
    px2 = uniform_grid(key(k, "px2"), win.cols, win.rows)
    yard = np.where(px2 < 0.45, ROAD, np.where(px2 < 0.7, GRASS, ORCHARD)).astype(np.uint8)
    built = town & (_plots(k, win, 30.0, "plot30") < np.minimum(density / 0.88, 1.0)) & (px < 0.88)
    cls[town] = yard[town]
    cls[built] = BUILDING
    return np.where(town, _plots(k, win, 30.0, "plot30u"), plot_u)


def render_ground(world: World, win: Window, anchors: tuple[Anchor, ...] = ()) -> Ground:
    """The static ground of a window of the world."""
    k = world.key
    elev, relief, dzdx, dzdy, forest_bias = _terrain(world, win)
    grad = np.hypot(dzdx, dzdy)
    cls = _natural_cover(k, win, relief, grad, forest_bias)
    cls[_ponds(k, win) & (cls == PADDY)] = WATER
    plot_u = _settle(k, win, cls, relief, grad)
    river_d = _isoline_distance(key(k, "river"), win, 6000.0, 3)
    river_w = 21.0 + 9.0 * value_noise(key(k, "river-w"), win.xs, win.ys, 3000.0, octaves=1)
    density = _anchor_density(k, win, anchors)
    cls[(river_d < river_w / 2.0) & (relief < 30.0) & (density == 0)] = WATER
    plot_u = _build_towns(k, win, cls, density, plot_u)
    tex = np.float32(0.75) * normal_grid(key(k, "tex-white"), win.cols, win.rows)
    tex += np.float32(2.0) * value_noise(key(k, "tex"), win.xs, win.ys, 40.0, octaves=2)
    harvest, transplant, field_u = _paddy_fields(world, win)
    return Ground(
        cls=cls,
        elev=elev.astype(np.float32),
        dzdx=dzdx.astype(np.float32),
        dzdy=dzdy.astype(np.float32),
        tex=tex.astype(np.float32),
        harvest_doy=harvest,
        transplant_doy=transplant,
        field_u=field_u,
        plot_u=plot_u.astype(np.float32),
    )


def worldcover(ground: Ground) -> NDArray[np.uint8]:
    return WORLDCOVER[ground.cls]
