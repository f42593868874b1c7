"""Fetch (simulator): conflict events as footprints and rasters on the world grid, and their ground truth."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely import affinity
from shapely.geometry import LineString, Polygon, box

from monitoring.results import ChangeType
from monitoring.sources.simulator.landcover import BUILDING, BURNABLE, WATER, Anchor, Ground, render_ground
from monitoring.sources.simulator.noise import F32, hash_pairs, key, rng, to_unit, uniform_grid, value_noise
from monitoring.sources.simulator.scenario import Scenario, ScenarioEvent
from monitoring.sources.simulator.world import PIXEL_M, Window, World

SUBPIXEL_M = 2.0
"""Craters and trenches are drawn at 2 m and averaged to 10 m, so edge pixels are mixed as in real imagery."""
_SUB = int(PIXEL_M / SUBPIXEL_M)
STRIKE_SITE_DENSITY = 0.6
"""Built-up share of the cluster placed at every structural-damage event (towns, casinos, temples)."""
CRATER_DIAMETER_M = (5.0, 12.0)
"""Artillery and rocket craters: 105/155 mm shells and 122 mm BM-21 rockets leave 2-6 m; bombs up to 12 m."""


@dataclass(frozen=True, eq=False)
class GroundTruthEvent:
    """What an event really changed inside one AOI (for scoring detections against)."""

    id: str
    change_type: ChangeType
    date: date
    area_ha: float
    """Area of the mask in this AOI."""
    mask: NDArray[np.bool_]
    """(aoi.shape) True on the pixels the event changed."""
    footprint: Polygon
    """The event's outline in WGS84 lon/lat (the whole event, not clipped to the AOI)."""
    hotspot: str | None = None
    description: str = ""


@dataclass(frozen=True, eq=False)
class EventRaster:
    """An event drawn on the world-aligned window around it."""

    event: ScenarioEvent
    window: Window
    mask: NDArray[np.bool_]
    """Pixels the event changes (the ground truth)."""
    strength: F32
    """0-1 per pixel: burn severity, crater cover, damage degree, or earthwork cover."""
    aux: F32
    """Crater fields: blast halo weight (ejecta dust, shredded vegetation); structures: 1 where burnt out."""
    land: NDArray[np.uint8]
    """The window's land-cover classes before the event."""
    footprint: Polygon
    """Outline in the world's UTM metres."""


def strike_anchor(world: World, ev: ScenarioEvent) -> Anchor:
    """The built-up cluster a structural-damage event needs: its core holds size_ha of roofs."""
    x, y = world.to_xy(ev.lon, ev.lat)
    needed_r = float(np.sqrt(ev.size_ha * 1e4 / (np.pi * STRIKE_SITE_DENSITY)))
    return Anchor(x=x, y=y, radius=1.8 * needed_r + 40.0, density=STRIKE_SITE_DENSITY)


def scenario_anchors(world: World, scenario: Scenario) -> tuple[Anchor, ...]:
    """Every built-up cluster the scenario needs: its towns and its strike sites."""
    out = []
    for s in scenario.settlements:
        x, y = world.to_xy(s.lon, s.lat)
        out.append(Anchor(x=x, y=y, radius=s.radius_m, density=s.density))
    out += [strike_anchor(world, ev) for ev in scenario.events if ev.type == "structural_damage"]
    return tuple(out)


def _unit_blob(r: np.random.Generator, irregularity: float, aspect: tuple[float, float]) -> Polygon:
    """A star-shaped, noise-perturbed ellipse of unit area centred on the origin."""
    theta = np.linspace(0.0, 2.0 * np.pi, 96, endpoint=False)
    radius = np.ones_like(theta)
    for k in range(2, 7):
        radius += irregularity / k * r.normal() * np.cos(k * theta + r.uniform(0, 2 * np.pi))
    radius = np.maximum(radius, 0.35)
    a = np.sqrt(r.uniform(*aspect))
    poly = Polygon(np.c_[radius * np.cos(theta) * a, radius * np.sin(theta) / a])
    poly = affinity.rotate(poly, r.uniform(0.0, 180.0), origin=(0, 0))
    return affinity.scale(poly, 1 / np.sqrt(poly.area), 1 / np.sqrt(poly.area), origin=(0, 0))


def _earthworks_shape(r: np.random.Generator, area_m2: float) -> Polygon:
    """A zig-zag fire trench (10-16 m wide with its spoil berm), a side berm, and 1-2 vehicle/gun pads 20-30 m
    wide, joined into one outline whose area is area_m2."""
    bearing = r.uniform(0.0, np.pi)
    n_seg = int(r.integers(4, 8))
    lengths = r.uniform(0.6, 1.4, n_seg)
    turns = np.deg2rad(r.uniform(30.0, 60.0, n_seg)) * np.where(np.arange(n_seg) % 2 == 0, 1.0, -1.0)
    headings = bearing + turns
    unit = np.vstack(
        [[0.0, 0.0], np.cumsum(np.c_[np.cos(headings), np.sin(headings)] * lengths[:, None], axis=0)]
    )
    trench_w = r.uniform(10.0, 16.0)
    pad_at = r.choice(np.arange(1, n_seg + 1), size=int(r.integers(1, 3)), replace=False)
    pad_dims = r.uniform((20.0, 1.0), (30.0, 2.0), size=(len(pad_at), 2))
    berm_at = int(r.integers(1, n_seg))
    # Big positions are several parallel lines joined by a communication trench, not one endless zig-zag:
    # about 0.9 ha per line keeps each line under ~700 m; lines clear each other by 40 m.
    n_lines = max(1, int(np.ceil(area_m2 / 9000.0)))
    perp = bearing + np.pi / 2
    across = np.array([np.cos(perp), np.sin(perp)])
    width = float(np.ptp(unit @ across))  # how far the zig-zag swings sideways, in unit lengths

    def shape(s: float) -> Polygon:
        pts = unit * s * 40.0
        step = (width * s * 40.0 + trench_w + 40.0) * across
        trench = LineString(pts).buffer(trench_w / 2, cap_style="flat", join_style="mitre")
        parts = [affinity.translate(trench, *(i * step)) for i in range(n_lines)]
        if n_lines > 1:
            parts.append(LineString([pts[0], pts[0] + (n_lines - 1) * step]).buffer(5.0, cap_style="square"))
        for i, (w, ln) in zip(pad_at, pad_dims, strict=True):
            length = min(ln * s * 40.0, 90.0)
            pad = box(-length / 2, -w / 2, length / 2, w / 2)
            pad = affinity.rotate(pad, bearing, origin=(0, 0), use_radians=True)
            parts.append(affinity.translate(pad, *pts[i]))
        tip = pts[berm_at] + 0.8 * s * 40.0 * np.array([np.cos(perp), np.sin(perp)])
        parts.append(LineString([pts[berm_at], tip]).buffer(5.0, cap_style="flat"))
        geom = shapely.union_all(parts)
        # Every part starts on the trench, so the union is one polygon; guard against slivers all the same.
        return geom if isinstance(geom, Polygon) else max(geom.geoms, key=lambda g: g.area)

    lo, hi = 1e-3, 200.0
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if shape(mid).area < area_m2 else (lo, mid)
    poly = shape(0.5 * (lo + hi))
    c = poly.centroid
    return affinity.translate(poly, -c.x, -c.y)


def _event_rng(world: World, ev: ScenarioEvent) -> np.random.Generator:
    return rng(world.key, "event", ev.id, ev.type, ev.lat, ev.lon, ev.size_ha, ev.severity)


def _blob_for(world: World, ev: ScenarioEvent) -> Polygon:
    r = _event_rng(world, ev)
    if ev.type == "burn_scar":
        return _unit_blob(r, 0.25, (1.0, 2.2))  # wind stretches fires
    if ev.type == "crater_field":
        return _unit_blob(r, 0.15, (1.0, 1.6))
    return _unit_blob(r, 0.1, (1.0, 1.4))


@lru_cache(maxsize=1024)
def event_outline(world: World, ev: ScenarioEvent) -> Polygon | None:
    """The footprint of crater fields and earthworks in UTM metres; None for burn scars and structural damage,
    whose outline follows what can burn or collapse on the ground (see render_event)."""
    x, y = world.to_xy(ev.lon, ev.lat)
    area = ev.size_ha * 1e4
    if ev.type == "crater_field":
        s = np.sqrt(area)
        return affinity.translate(affinity.scale(_blob_for(world, ev), s, s, origin=(0, 0)), x, y)
    if ev.type == "earthworks":
        return affinity.translate(_earthworks_shape(_event_rng(world, ev), area), x, y)
    return None


def event_reach(world: World, ev: ScenarioEvent) -> tuple[float, float, float, float]:
    """UTM bounds the event can touch: which events an AOI must draw, known without rendering pixels."""
    outline = event_outline(world, ev)
    if outline is not None:
        return tuple(np.asarray(outline.bounds) + np.array([-20.0, -20.0, 20.0, 20.0]))  # type: ignore[return-value]
    if ev.type == "structural_damage":
        a = strike_anchor(world, ev)
        x, y, reach = a.x, a.y, 1.25 * a.radius + 20.0  # town edges wander up to 25% beyond the radius
    else:
        # A burn grows around what cannot burn (rock, water, roofs): allow it twice its radius, times the
        # blob's elongation and lobes (< 1.9).
        x, y = world.to_xy(ev.lon, ev.lat)
        reach = 4.0 * np.sqrt(ev.size_ha * 1e4 / np.pi) + 30.0
    return x - reach, y - reach, x + reach, y + reach


def _grow_to_area(
    blob: Polygon, x: float, y: float, win: Window, eligible: NDArray[np.bool_], wanted: int
) -> Polygon:
    """Scale a unit blob about (x, y) until it holds `wanted` eligible pixel centres (or all there are)."""
    xx, yy = _centres(win)
    px, py = xx[eligible] - x, yy[eligible] - y
    verts = np.asarray(blob.exterior.coords)[:-1]
    ang = np.arctan2(verts[:, 1], verts[:, 0])
    order = np.argsort(ang)
    edge_r = np.interp(
        np.arctan2(py, px), ang[order], np.hypot(verts[:, 0], verts[:, 1])[order], period=2 * np.pi
    )
    # Scale at which each pixel enters the blob; the wanted-th smallest is the scale we need.
    rho = np.sort(np.hypot(px, py) / edge_r)
    scale = float(rho[min(wanted, len(rho)) - 1]) * 1.001 + 0.5 if len(rho) else 10.0
    return affinity.translate(affinity.scale(blob, scale, scale, origin=(0, 0)), x, y)


def _centres(win: Window) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    xx, yy = np.meshgrid(win.xs, win.ys)
    return xx, yy


def _subpixel_centres(win: Window) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    off = (np.arange(_SUB) + 0.5) * SUBPIXEL_M - PIXEL_M / 2
    sx = (win.xs[:, None] + off[None, :]).ravel()
    sy = (win.ys[:, None] - off[None, :]).ravel()
    return np.meshgrid(sx, sy)


def _block_mean(sub: NDArray[np.bool_], shape: tuple[int, int]) -> F32:
    ny, nx = shape
    return sub.reshape(ny, _SUB, nx, _SUB).mean(axis=(1, 3), dtype=np.float32)


def _wanted_px(ev: ScenarioEvent) -> int:
    return max(int(round(ev.size_ha * 1e4 / PIXEL_M**2)), 1)


def _burn(
    world: World, ev: ScenarioEvent, win: Window, ground: Ground
) -> tuple[Polygon, NDArray[np.bool_], F32, F32]:
    """A fire of size_ha of vegetation, its outline wrapped around rock, water and roofs; patchy severity."""
    burnable = np.isin(ground.cls, BURNABLE)
    fp = _grow_to_area(_blob_for(world, ev), *world.to_xy(ev.lon, ev.lat), win, burnable, _wanted_px(ev))
    xx, yy = _centres(win)
    mask = shapely.contains_xy(fp, xx, yy) & burnable
    patchy = value_noise(key(world.key, "burn", ev.id), win.xs, win.ys, 60.0, octaves=3)
    # Dry-season fires consume the litter and understory of most of a pixel (share = severity); patches and
    # the edges burn less completely.
    sev = np.clip(ev.severity + 0.2 + 0.25 * patchy + 0.05 * ground.tex, 0.35, 1.0)
    # Fires die out at their edges: lower severity within ~30 m of the perimeter.
    edge = np.zeros(win.shape, np.float32)
    if mask.any():
        edge[mask] = shapely.distance(fp.exterior, shapely.points(xx[mask], yy[mask]))
    sev *= 0.8 + 0.2 * np.clip(edge / 30.0, 0.0, 1.0)
    return fp, mask, np.where(mask, sev, 0).astype(np.float32), np.zeros(win.shape, np.float32)


def _craters(
    world: World, ev: ScenarioEvent, fp: Polygon, win: Window, ground: Ground
) -> tuple[NDArray[np.bool_], F32, F32]:
    xx, yy = _centres(win)
    mask = shapely.contains_xy(fp, xx, yy) & (ground.cls != WATER)
    r = _event_rng(world, ev)
    cover = 0.25 + 0.15 * ev.severity  # 25-40% of the field is crater
    d_lo, d_hi = CRATER_DIAMETER_M
    mean_area = np.pi / 4 * (d_hi**3 - d_lo**3) / (3 * (d_hi - d_lo))  # E[pi D^2 / 4], D uniform
    # Craters land independently (Poisson): to cover `cover` of the ground takes -ln(1 - cover) / mean_area
    # craters per m2.
    n = int(r.poisson(-np.log(1 - cover) / mean_area * fp.area))
    x0, y0, x1, y1 = fp.bounds
    cand = r.uniform((x0, y0), (x1, y1), size=(n * 3 + 10, 2))
    cand = cand[shapely.contains_xy(fp, cand[:, 0], cand[:, 1])][:n]
    radii = r.uniform(d_lo, d_hi, len(cand)) / 2
    sx, sy = _subpixel_centres(win)
    left, top = sx[0, 0], sy[0, 0]
    n_rows, n_cols = win.shape[0] * _SUB, win.shape[1] * _SUB
    sub = np.zeros((n_rows, n_cols), bool)
    for (cx, cy), rad in zip(cand, radii, strict=True):
        i0 = max(int((top - cy - rad) / SUBPIXEL_M), 0)
        i1 = min(int((top - cy + rad) / SUBPIXEL_M) + 2, n_rows)
        j0 = max(int((cx - rad - left) / SUBPIXEL_M), 0)
        j1 = min(int((cx + rad - left) / SUBPIXEL_M) + 2, n_cols)
        if i0 < i1 and j0 < j1:
            dx, dy = sx[i0:i1, j0:j1] - cx, sy[i0:i1, j0:j1] - cy
            sub[i0:i1, j0:j1] |= dx * dx + dy * dy <= rad * rad
    sub &= np.repeat(np.repeat(mask, _SUB, axis=0), _SUB, axis=1)
    frac = _block_mean(sub, win.shape)
    halo = 0.15 + 0.1 * value_noise(key(world.key, "halo", ev.id), win.xs, win.ys, 50.0, octaves=2)
    return mask, frac, np.where(mask, halo, 0).astype(np.float32)


def _structures(
    world: World, ev: ScenarioEvent, win: Window, ground: Ground
) -> tuple[Polygon, NDArray[np.bool_], F32, F32]:
    """The smallest scaled blob around the site holding size_ha of roofs; damage per 30 m block."""
    roofs = ground.cls == BUILDING
    fp = _grow_to_area(_blob_for(world, ev), *world.to_xy(ev.lon, ev.lat), win, roofs, _wanted_px(ev))
    xx, yy = _centres(win)
    mask = roofs & shapely.contains_xy(fp, xx, yy)
    c30, r30 = np.floor(win.xs / 30.0).astype(np.int64), np.floor(win.ys / 30.0).astype(np.int64)
    u = uniform_grid(key(world.key, "damage", ev.id), c30, r30)
    # `severity` of the buildings are destroyed, the rest heavily damaged; about a third burn out.
    degree = np.where(u < ev.severity, 1.0, 0.5).astype(np.float32)
    fire = to_unit(hash_pairs(key(world.key, "fire", ev.id), c30[None, :], r30[:, None]))
    burnt = (fire < 0.35).astype(np.float32)
    return fp, mask, np.where(mask, degree, 0).astype(np.float32), np.where(mask, burnt, 0).astype(np.float32)


def _earthworks(fp: Polygon, win: Window) -> tuple[NDArray[np.bool_], F32, F32]:
    sx, sy = _subpixel_centres(win)
    cover = _block_mean(shapely.contains_xy(fp, sx, sy), win.shape)
    # A pixel counts as changed when the works cover at least half of it (rasterising by pixel centre would do
    # the same on average); slivers below that are left as they were.
    mask = cover >= 0.5
    return mask, np.where(mask, cover, 0).astype(np.float32), np.zeros(win.shape, np.float32)


@lru_cache(maxsize=512)
def render_event(world: World, ev: ScenarioEvent, anchors: tuple[Anchor, ...]) -> EventRaster:
    """Draw one event on the world grid around it (cached: every chunk and the ground truth share it)."""
    x0, y0, x1, y1 = event_reach(world, ev)
    win = Window.around(x0, y0, x1, y1)
    ground = render_ground(world, win, anchors)
    outline = event_outline(world, ev)
    if ev.type == "burn_scar":
        outline, mask, strength, aux = _burn(world, ev, win, ground)
    elif ev.type == "crater_field" and outline is not None:
        mask, strength, aux = _craters(world, ev, outline, win, ground)
    elif ev.type == "earthworks" and outline is not None:
        mask, strength, aux = _earthworks(outline, win)
    else:
        outline, mask, strength, aux = _structures(world, ev, win, ground)
    return EventRaster(ev, win, mask, strength, aux, ground.cls, outline)


def overlap(ev: EventRaster, win: Window) -> tuple[NDArray[np.int64], ...] | None:
    """Index arrays (block rows, block cols, event rows, event cols) where an event window meets a block."""
    bc = win.cols - ev.window.cols[0]
    br = ev.window.rows[0] - win.rows
    selc = (bc >= 0) & (bc < len(ev.window.cols))
    selr = (br >= 0) & (br < len(ev.window.rows))
    if not selc.any() or not selr.any():
        return None
    return np.nonzero(selr)[0], np.nonzero(selc)[0], br[selr], bc[selc]


@dataclass(frozen=True)
class EventPixels:
    """The pixels of one block an event changed: block rows/cols with the event's strength and aux there."""

    raster: EventRaster
    rows: NDArray[np.int64]
    cols: NDArray[np.int64]
    strength: NDArray[np.float32]
    aux: NDArray[np.float32]


def events_before(events: tuple[EventRaster, ...], win: Window, day_ordinal: int) -> Iterator[EventPixels]:
    """Every event that happened before the scene's day and touches the block, oldest first (later paint wins)."""
    for er in sorted(events, key=lambda e: e.event.date):
        if er.event.date.toordinal() >= day_ordinal:
            continue
        ov = overlap(er, win)
        if ov is None:
            continue
        rows, cols, erows, ecols = ov
        emask = er.mask[np.ix_(erows, ecols)]
        if not emask.any():
            continue
        r2, c2 = np.meshgrid(rows, cols, indexing="ij")
        yield EventPixels(
            er,
            r2[emask],
            c2[emask],
            er.strength[np.ix_(erows, ecols)][emask],
            er.aux[np.ix_(erows, ecols)][emask],
        )


def ground_truth_for(
    world: World, ev: ScenarioEvent, anchors: tuple[Anchor, ...], win: Window
) -> GroundTruthEvent | None:
    """The event's ground truth on an AOI grid (win), or None if it changed nothing there."""
    er = render_event(world, ev, anchors)
    ov = overlap(er, win)
    if ov is None:
        return None
    rows, cols, erows, ecols = ov
    mask = np.zeros(win.shape, bool)
    mask[np.ix_(rows, cols)] = er.mask[np.ix_(erows, ecols)]
    if not mask.any():
        return None
    ring = np.asarray(er.footprint.exterior.coords)
    lon, lat = world.to_lonlat(ring[:, 0], ring[:, 1])
    return GroundTruthEvent(
        id=ev.id,
        change_type=ev.change_type,
        date=ev.date,
        area_ha=float(mask.sum()) * PIXEL_M**2 / 1e4,
        mask=mask,
        footprint=Polygon(np.c_[lon, lat]),
        hotspot=ev.hotspot,
        description=ev.description,
    )
