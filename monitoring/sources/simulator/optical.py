"""Fetch (simulator): one block of a Sentinel-2 L2A scene: surface, events, cloud, shadow, noise and SCL."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from monitoring.sources.base import (
    SCL_CIRRUS,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_CLOUD_SHADOW,
    SCL_DARK,
    SCL_NOT_VEGETATED,
    SCL_VEGETATION,
    SCL_WATER,
)
from monitoring.sources.simulator.events import EventRaster, events_before
from monitoring.sources.simulator.landcover import BUILDING, PADDY, Ground
from monitoring.sources.simulator.noise import (
    F32,
    key,
    normal_grid,
    rng,
    threshold_for_fraction,
    uniform_grid,
    value_noise,
)
from monitoring.sources.simulator.scenario import BackgroundSettings
from monitoring.sources.simulator.schedule import OpticalScene
from monitoring.sources.simulator.spectra import (
    BLAST_DUST,
    CHAR,
    CIRRUS,
    CLOUD,
    CRATER_FLOOR,
    FRESH_SOIL,
    PADDY_OPTICAL,
    RUBBLE,
    RUBBLE_BURNT,
    TEX_OPTICAL,
    class_spectra,
    ground_paddy_weights,
    roof_spectra,
)
from monitoring.sources.simulator.world import Window, World

N_BANDS = 6
CLOUD_SCALE_M = 3000.0
"""Lattice of the coarsest cloud octave: cumulus fields organise in cells of a few km."""
CLOUD_OCTAVES, CLOUD_GAIN = 6, 0.55
CLOUD_SOFT = 0.05
"""Noise units over which opacity ramps from clear to opaque: the thin, semi-transparent cloud edges."""
SCL_CLOUD_MIN_OPACITY = 0.15
"""Sen2Cor's cloud probability misses the thinnest edges: below this opacity a cloud goes unflagged."""
SCL_THICK_OPACITY = 0.6
SCL_SHADOW_MISSED = 0.10
"""Share of cloud shadow Sen2Cor leaves unflagged (in patches of 50 m)."""
NOISE_FLOOR, NOISE_GAIN = 0.003, 0.012
"""Sensor noise sigma = sqrt(floor^2 + (gain * reflectance)^2): ~0.003 over dark water, ~0.005 over soil."""
CRATER_MIX = (0.6 * FRESH_SOIL + 0.4 * CRATER_FLOOR).astype(np.float32)
"""Inside a crater: bright ejecta and fresh soil on the rim, darker self-shadowed floor."""


def surface_reflectance(ground: Ground, doy: float, background: BackgroundSettings) -> F32:
    """(6, rows, cols) cloud-free surface reflectance of the ground on a day of year."""
    surf = np.ascontiguousarray(class_spectra(doy).T[:, ground.cls])
    roofs = ground.cls == BUILDING
    if roofs.any():
        surf[:, roofs] = roof_spectra(ground.plot_u[roofs])
    paddy = ground.cls == PADDY
    if paddy.any():
        w = ground_paddy_weights(ground, paddy, doy, background)
        # Fields differ by soil, variety and management: +-7% brightness per field.
        surf[:, paddy] = (PADDY_OPTICAL.T @ w) * (np.float32(0.93) + np.float32(0.14) * ground.field_u[paddy])
    surf *= 1.0 + TEX_OPTICAL[ground.cls] * ground.tex
    return surf


def _event_target(er: EventRaster, sub: F32, strength: F32, aux: F32) -> F32:
    """Reflectance of the event's pixels after it, from their reflectance before (sub: 6 x n)."""
    t = er.event.type
    if t == "burn_scar":
        # Severity sets the burnt share of the pixel: low severity leaves scorched but green canopy mixed in.
        material = CHAR[:, None]
    elif t == "crater_field":
        # Blast dust settles over the whole field; the craters themselves are fresh soil and shadowed floors.
        sub = sub * (1 - aux) + BLAST_DUST[:, None] * aux
        material = CRATER_MIX[:, None]
    elif t == "structural_damage":
        material = RUBBLE[:, None] * (1 - aux) + RUBBLE_BURNT[:, None] * aux
    else:
        material = FRESH_SOIL[:, None]
    return np.asarray(sub * (1 - strength) + material * strength, np.float32)


def apply_events(
    surf: F32, events: tuple[EventRaster, ...], win: Window, ground: Ground, day_ordinal: int
) -> None:
    """Paint, in place, every event that happened before the scene's day."""
    for px in events_before(events, win, day_ordinal):
        er, r2, c2, strength, aux = px.raster, px.rows, px.cols, px.strength, px.aux
        before = surf[:, r2, c2]
        after = _event_target(er, before, strength, aux)
        if er.event.type != "burn_scar":
            # New materials keep the pixel's own texture (soil patches, debris piles).
            after *= 1.0 + np.float32(0.08) * ground.tex[r2, c2]
        surf[:, r2, c2] = after


def cloud_opacity(world: World, xs: NDArray[np.float64], ys: NDArray[np.float64], scene: OpticalScene) -> F32:
    """Opacity 0-1 of the day's cloud field: value noise in (x, y, day), thresholded to the day's fraction."""
    if scene.cloud_fraction <= 0.0:
        return np.zeros((len(ys), len(xs)), np.float32)
    if scene.cloud_fraction >= 1.0:
        return np.ones((len(ys), len(xs)), np.float32)
    k = key(world.key, "cloud", scene.day.isoformat())
    n = value_noise(k, xs, ys, CLOUD_SCALE_M, octaves=CLOUD_OCTAVES, gain=CLOUD_GAIN)
    thr = threshold_for_fraction(scene.cloud_fraction, CLOUD_SCALE_M, CLOUD_OCTAVES, CLOUD_GAIN)
    return np.clip(0.5 + (n - np.float32(thr)) / np.float32(2 * CLOUD_SOFT), 0.0, 1.0)


def cloud_fields(world: World, win: Window, scene: OpticalScene) -> tuple[F32, F32, F32]:
    """(cloud opacity, shadow strength, cirrus opacity) on a window.

    A ground point is shadowed by the cloud that lies between it and the sun: the cloud field at the point
    moved h * tan(zenith) towards the sun's azimuth (morning sun in the south-east in December: shadows fall
    north-west).
    """
    alpha = cloud_opacity(world, win.xs, win.ys, scene)
    shift = scene.cloud_height_m * np.tan(np.radians(scene.sun_zenith))
    az = np.radians(scene.sun_azimuth)
    caster = cloud_opacity(world, win.xs + shift * np.sin(az), win.ys + shift * np.cos(az), scene)
    shadow = caster * (1.0 - alpha)
    if scene.cirrus > 0:
        # Cirrus streaks: the noise runs four times faster north-south than east-west.
        cn = value_noise(
            key(world.key, "cirrus", scene.day.isoformat()), win.xs, win.ys * 4.0, 8000.0, octaves=3
        )
        cirrus = np.float32(scene.cirrus) * np.clip(0.5 + 2.5 * cn, 0.0, 1.0)
    else:
        cirrus = np.zeros(win.shape, np.float32)
    return alpha, shadow, cirrus


def scene_classification(
    toa: F32, alpha: F32, shadow: F32, cirrus: F32, win: Window, scene: OpticalScene
) -> NDArray[np.uint8]:
    """A Sen2Cor-like SCL: surface classes from the observed reflectance, then shadow, cirrus and cloud flags,
    imperfect the way Sen2Cor is (thin cloud edges and some shadow missed)."""
    b03, b04, b08, b11 = toa[1], toa[2], toa[3], toa[4]
    ndvi = (b08 - b04) / np.maximum(b08 + b04, 1e-6)
    ndwi = (b03 - b08) / np.maximum(b03 + b08, 1e-6)
    scl = np.where(ndvi > 0.35, SCL_VEGETATION, SCL_NOT_VEGETATED).astype(np.uint8)
    scl[(ndwi > 0.2) & (b08 < 0.08)] = SCL_WATER
    scl[(b08 + b11 < 0.06) & (scl != SCL_WATER)] = SCL_DARK
    c50, r50 = np.floor(win.xs / 50.0).astype(np.int64), np.floor(win.ys / 50.0).astype(np.int64)
    cells = uniform_grid(key(scene.key, "shadow-miss"), c50, r50)
    scl[(shadow > 0.3) & (cells >= SCL_SHADOW_MISSED)] = SCL_CLOUD_SHADOW
    scl[cirrus > 0.1] = SCL_CIRRUS
    scl[alpha >= SCL_CLOUD_MIN_OPACITY] = SCL_CLOUD_MEDIUM
    scl[alpha >= SCL_THICK_OPACITY] = SCL_CLOUD_HIGH
    return scl


def render_optical_block(
    ground: Ground,
    events: tuple[EventRaster, ...],
    scene: OpticalScene,
    world: World,
    win: Window,
    background: BackgroundSettings,
) -> F32:
    """(7, rows, cols): B02 B03 B04 B08 B11 B12 reflectance and SCL (as float) of one scene on one block."""
    doy = scene.day.timetuple().tm_yday
    surf = surface_reflectance(ground, doy, background)
    apply_events(surf, events, win, ground, scene.day.toordinal())
    alpha, shadow, cirrus = cloud_fields(world, win, scene)
    r = rng(scene.key, "atmosphere")
    # Shadowed ground is lit by the sky alone: 30-45% of full light, relatively more in the blue.
    dim = np.float32(r.uniform(0.55, 0.7))
    shade = np.array([0.85, 0.95, 1.0, 1.0, 1.0, 1.0], np.float32)[:, None, None] * dim
    toa = surf * (1.0 - shade * shadow)
    tops = value_noise(key(world.key, "cloud-top", scene.day.isoformat()), win.xs, win.ys, 400.0, octaves=2)
    bright = np.float32(0.8) + np.float32(0.3) * tops
    toa = toa * (1.0 - alpha) + CLOUD[:, None, None] * (alpha * bright)
    toa = toa * (1.0 - 0.5 * cirrus) + CIRRUS[:, None, None] * cirrus
    # Residual of the atmospheric correction: scene-wide offsets (largest in the blue) and gain errors of ~1%.
    offset = r.normal(0.0, [0.003, 0.002, 0.0015, 0.001, 0.001, 0.001]).astype(np.float32)
    gain = r.normal(1.0, 0.01, N_BANDS).astype(np.float32)
    toa = toa * gain[:, None, None] + offset[:, None, None]
    for b in range(N_BANDS):
        sigma = np.sqrt(np.float32(NOISE_FLOOR**2) + (np.float32(NOISE_GAIN) * toa[b]) ** 2)
        toa[b] += sigma * normal_grid(key(scene.key, "noise", b), win.cols, win.rows)
    np.clip(toa, 1e-4, 1.0, out=toa)
    scl = scene_classification(toa, alpha, shadow, cirrus, win, scene)
    return np.concatenate([toa, scl[None].astype(np.float32)]).astype(np.float32, copy=False)
