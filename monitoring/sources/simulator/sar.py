"""Fetch (simulator): one block of a Sentinel-1 IW GRD scene: gamma0 VV/VH, events, geometry and speckle."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from monitoring.sources.simulator.events import EventRaster, events_before
from monitoring.sources.simulator.landcover import BUILDING, FOREST, ORCHARD, PADDY, SHRUB, WATER, Ground
from monitoring.sources.simulator.noise import F32, gamma_grid, key
from monitoring.sources.simulator.scenario import BackgroundSettings
from monitoring.sources.simulator.schedule import SarScene
from monitoring.sources.simulator.spectra import (
    BUILDING_VH,
    PADDY_SAR,
    RUBBLE_SAR,
    SAR_CLASS,
    SOIL_SAR,
    TEX_SAR_DB,
    ground_paddy_weights,
)
from monitoring.sources.simulator.world import Window

ENL = 4.4
"""Equivalent number of looks of Sentinel-1 IW GRDH (ESA product specification: 4.4)."""
WOODY = (FOREST, ORCHARD, SHRUB)


def _db(x: F32 | float) -> F32:
    return np.power(np.float32(10.0), np.asarray(x, np.float32) / np.float32(10.0))


def backscatter(
    ground: Ground, doy: float, look_azimuth: float, background: BackgroundSettings
) -> tuple[F32, F32]:
    """Speckle-free gamma0 (VV, VH) of the ground on a day of year."""
    vv = SAR_CLASS[ground.cls, 0].copy()
    vh = SAR_CLASS[ground.cls, 1].copy()
    roofs = ground.cls == BUILDING
    if roofs.any():
        # Wall-ground double bounce is strongest when walls face the radar: 0.4-0.8 (-4 to -1 dB) in VV.
        wall = ground.plot_u[roofs] * np.float32(np.pi)
        facing = np.abs(np.cos(2.0 * (wall - np.float32(np.radians(look_azimuth)))))
        vv[roofs] = 0.4 + 0.4 * facing
        vh[roofs] = np.float32(BUILDING_VH) * (0.75 + 0.5 * facing)
    paddy = ground.cls == PADDY
    if paddy.any():
        w = ground_paddy_weights(ground, paddy, doy, background)
        both = PADDY_SAR.T @ w * _db((ground.field_u[paddy] - 0.5) * 1.0)
        vv[paddy], vh[paddy] = both[0], both[1]
    texture = _db(TEX_SAR_DB[ground.cls] * ground.tex)
    return vv * texture, vh * texture


def apply_events(
    vv: F32, vh: F32, events: tuple[EventRaster, ...], win: Window, ground: Ground, day_ordinal: int
) -> None:
    """Change, in place, the backscatter of every event that happened before the scene's day."""
    for px in events_before(events, win, day_ordinal):
        er, r2, c2, st = px.raster, px.rows, px.cols, px.strength
        t = er.event.type
        if t == "burn_scar":
            # Fire removes leaves and twigs, the volume scatterers: VH drops ~1.75 dB in woody cover, ~1 dB in
            # grass and stubble.
            woody = np.isin(ground.cls[r2, c2], WOODY)
            vh[r2, c2] *= _db(-np.where(woody, 1.75, 1.0) * st)
            vv[r2, c2] *= _db(-np.where(woody, 0.8, 0.5) * st)
        elif t == "crater_field":
            # Cratered, churned ground is rough at C band's 5.6 cm: VV +1.5 to +3 dB at full crater cover.
            gain = (1.5 + 1.5 * er.event.severity) * np.minimum(st / 0.3, 1.0)
            vv[r2, c2] *= _db(gain)
            vh[r2, c2] *= _db(0.7 * gain)
        elif t == "structural_damage":
            vv[r2, c2] = vv[r2, c2] * (1 - st) + np.float32(RUBBLE_SAR[0]) * st * _db(ground.tex[r2, c2])
            vh[r2, c2] = vh[r2, c2] * (1 - st) + np.float32(RUBBLE_SAR[1]) * st * _db(ground.tex[r2, c2])
        else:
            vv[r2, c2] = vv[r2, c2] * (1 - st) + np.float32(SOIL_SAR[0]) * st
            vh[r2, c2] = vh[r2, c2] * (1 - st) + np.float32(SOIL_SAR[1]) * st


def geometry_mask(
    ground: Ground, look_azimuth: float, incidence: float
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """(layover, shadow): slopes facing the radar steeper than the incidence angle fold over; slopes facing
    away steeper than its complement are not lit."""
    az = np.radians(look_azimuth)
    # Terrain slope along the look direction: positive where the ground rises away from the radar (facing it).
    s = ground.dzdx * np.float32(np.sin(az)) + ground.dzdy * np.float32(np.cos(az))
    layover = s > np.tan(np.radians(incidence))
    shadow = -s > np.tan(np.radians(90.0 - incidence))
    return layover, shadow


def render_sar_block(
    ground: Ground,
    events: tuple[EventRaster, ...],
    scene: SarScene,
    win: Window,
    background: BackgroundSettings,
) -> F32:
    """(3, rows, cols): VV, VH (linear gamma0) and valid (1/0) of one scene on one block."""
    vv, vh = backscatter(ground, scene.day.timetuple().tm_yday, scene.look_azimuth, background)
    apply_events(vv, vh, events, win, ground, scene.day.toordinal())
    water = ground.cls == WATER
    vv[water] *= np.float32(scene.wind)
    vh[water] *= np.float32(scene.wind)
    cal = _db(scene.calibration_db + scene.orbit_db)
    vv *= cal
    vh *= cal
    layover, shadow = geometry_mask(ground, scene.look_azimuth, scene.incidence)
    # Layover folds several slopes into one bright pixel; radar shadow returns only the noise floor (NESZ).
    vv[layover] *= np.float32(4.0)
    vh[layover] *= np.float32(4.0)
    vv[shadow], vh[shadow] = np.float32(0.003), np.float32(0.0008)
    vv *= gamma_grid(key(scene.key, "speckle-vv"), win.cols, win.rows, ENL)
    vh *= gamma_grid(key(scene.key, "speckle-vh"), win.cols, win.rows, ENL)
    valid = ~(layover | shadow)
    return np.stack([vv, vh, valid.astype(np.float32)]).astype(np.float32, copy=False)
