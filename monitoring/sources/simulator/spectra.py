"""Fetch (simulator): what each surface looks like to Sentinel-2 and Sentinel-1, through the seasons.

Reflectances are Sentinel-2 L2A surface reflectance for bands B02 B03 B04 B08 B11 B12; backscatter is linear
terrain-flattened gamma0 (VV, VH) at C band, mid-swath incidence. Values are typical of the literature for the
Mekong lowlands (rice backscatter cycle: Bouvet & Le Toan 2011, Nguyen et al. 2016; burn spectra and NBR: Key
& Benson 2006; forest, soil, roofs and water: common Sentinel-1/-2 class signatures), rounded.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from monitoring.sources.simulator.landcover import (
    BARE,
    BUILDING,
    FOREST,
    GRASS,
    N_CLASSES,
    ORCHARD,
    PADDY,
    ROAD,
    SHRUB,
    WATER,
    Ground,
)
from monitoring.sources.simulator.noise import F32
from monitoring.sources.simulator.scenario import BackgroundSettings


def _B(values: list[float]) -> F32:
    return np.asarray(values, np.float32)


# fmt: off
#                     B02    B03    B04    B08    B11    B12
FOREST_WET = _B([0.020, 0.045, 0.025, 0.300, 0.150, 0.070])  # closed canopy, leaf-on
FOREST_DRY = _B([0.035, 0.060, 0.050, 0.250, 0.200, 0.110])  # deciduous dipterocarp, leaf-off (Feb-Apr)
ORCHARD_S = _B([0.030, 0.060, 0.040, 0.320, 0.170, 0.080])   # homestead fruit trees and palms
SHRUB_S = _B([0.035, 0.060, 0.055, 0.260, 0.210, 0.120])
GRASS_WET = _B([0.035, 0.070, 0.045, 0.320, 0.200, 0.100])
GRASS_DRY = _B([0.060, 0.085, 0.100, 0.230, 0.280, 0.190])   # senescent grass, Dec-Apr
ROAD_S = _B([0.080, 0.110, 0.160, 0.210, 0.280, 0.240])      # laterite and worn asphalt
BARE_S = _B([0.100, 0.140, 0.200, 0.260, 0.320, 0.260])      # sandstone, dry laterite
WATER_S = _B([0.060, 0.070, 0.045, 0.020, 0.010, 0.006])     # turbid river / pond
ROOFS = np.array([
    [0.150, 0.160, 0.170, 0.210, 0.250, 0.220],  # concrete, pale paint
    [0.080, 0.100, 0.170, 0.250, 0.300, 0.240],  # terracotta tile
    [0.130, 0.140, 0.150, 0.190, 0.220, 0.200],  # zinc/steel sheet, weathered
], np.float32)

# Paddy states (rows), in the order of paddy_weights().
PADDY_STATES = ("fallow", "flooded", "green", "ripe", "stubble", "char")
PADDY_OPTICAL = np.array([
    [0.080, 0.110, 0.130, 0.220, 0.290, 0.220],  # dry-season fallow: weathered stubble, soil; NDVI .26, NBR 0
    [0.060, 0.070, 0.060, 0.080, 0.050, 0.030],  # flooded / transplanting: water over soil
    [0.030, 0.060, 0.040, 0.350, 0.180, 0.090],  # green canopy, NDVI ~0.8
    [0.050, 0.080, 0.080, 0.290, 0.240, 0.140],  # ripening, yellowing panicles
    [0.060, 0.080, 0.090, 0.230, 0.260, 0.190],  # fresh stubble: NDVI ~0.44, NBR ~0.1
    [0.030, 0.040, 0.050, 0.120, 0.180, 0.160],  # burnt stubble (char and ash), NBR ~ -0.14
], np.float32)
PADDY_SAR = np.array([
    [0.045, 0.010],  # dry fallow: smooth dry soil
    [0.020, 0.004],  # flooded: specular water surface
    [0.090, 0.025],  # growing: double bounce stem-water and volume
    [0.100, 0.030],  # ripening
    [0.050, 0.012],  # stubble
    [0.040, 0.009],  # burnt stubble
], np.float32)

# Conflict and background change.
CHAR = _B([0.030, 0.040, 0.045, 0.105, 0.180, 0.160])          # char and ash: NBR ~ -0.2
FRESH_SOIL = _B([0.110, 0.150, 0.210, 0.270, 0.340, 0.280])    # freshly turned laterite/sandy soil
CRATER_FLOOR = _B([0.080, 0.100, 0.140, 0.180, 0.260, 0.230])  # crater floor and wall, partly self-shadowed
BLAST_DUST = _B([0.100, 0.130, 0.170, 0.220, 0.300, 0.250])    # ejecta dust over shredded vegetation
RUBBLE = _B([0.100, 0.110, 0.120, 0.160, 0.220, 0.190])        # concrete and roof debris
RUBBLE_BURNT = _B([0.050, 0.055, 0.060, 0.090, 0.140, 0.130])  # burnt-out buildings

CLOUD = _B([0.50, 0.49, 0.48, 0.50, 0.36, 0.24])    # water cloud: flat in the visible, absorbing in the SWIR
CIRRUS = _B([0.22, 0.21, 0.20, 0.19, 0.10, 0.06])   # thin ice cloud
# fmt: on

# Linear gamma0 (VV, VH) per class.
SAR_CLASS = np.zeros((N_CLASSES, 2), np.float32)
SAR_CLASS[FOREST] = (0.12, 0.030)  # -9.2 / -15.2 dB, volume scattering
SAR_CLASS[ORCHARD] = (0.14, 0.032)
SAR_CLASS[SHRUB] = (0.09, 0.022)
SAR_CLASS[GRASS] = (0.07, 0.016)
SAR_CLASS[ROAD] = (0.04, 0.008)  # smooth: specular away from the radar
SAR_CLASS[BARE] = (0.07, 0.015)
SAR_CLASS[WATER] = (0.005, 0.001)  # near the noise floor (NESZ ~ -22 dB)
# Building and paddy values depend on the pixel; see sar.py.
BUILDING_VH = 0.08
"""Mean VH of a roof pixel; VV comes from the double bounce (0.4-0.8)."""
RUBBLE_SAR = (0.12, 0.03)
"""Collapsed buildings: the wall-ground dihedral is gone (VV ~ -9 dB)."""
SOIL_SAR = (0.08, 0.017)
"""Freshly moved soil: rough, dry (bare-soil values, slightly rougher)."""

TEX_OPTICAL = np.zeros(N_CLASSES, np.float32)
TEX_OPTICAL[[FOREST, ORCHARD, SHRUB, GRASS, PADDY, BUILDING, ROAD, BARE, WATER]] = (
    0.08, 0.10, 0.10, 0.08, 0.04, 0.15, 0.08, 0.10, 0.05,
)  # fmt: skip
"""Relative per-pixel brightness spread by class (canopy gaps, soil patches, roofs)."""
TEX_SAR_DB = np.zeros(N_CLASSES, np.float32)
TEX_SAR_DB[[FOREST, ORCHARD, SHRUB, GRASS, PADDY, BUILDING, ROAD, BARE, WATER]] = (
    1.0, 1.2, 1.0, 0.8, 0.6, 2.0, 1.0, 1.0, 0.5,
)  # fmt: skip
"""Static per-pixel backscatter spread by class, dB (not speckle: it stays the same from scene to scene)."""


def greenness(doy: float) -> float:
    """Greenness of rain-fed vegetation: 1 in September (late monsoon), 0 in early March (late dry season)."""
    return float(0.5 + 0.5 * np.cos(2.0 * np.pi * (doy - 250.0) / 365.0))


def class_spectra(doy: float) -> NDArray[np.float32]:
    """(N_CLASSES, 6) reflectance of the static classes on a day of year (paddy and roofs: per pixel)."""
    g = np.float32(greenness(doy))
    out = np.zeros((N_CLASSES, 6), np.float32)
    # Only about a third of the canopy sheds its leaves in the dry season (mixed evergreen/deciduous forest).
    out[FOREST] = FOREST_WET + np.float32(0.35) * (1 - g) * (FOREST_DRY - FOREST_WET)
    out[ORCHARD] = ORCHARD_S
    out[SHRUB] = SHRUB_S + np.float32(0.3) * (1 - g) * (GRASS_DRY - SHRUB_S)
    out[GRASS] = GRASS_DRY + g * (GRASS_WET - GRASS_DRY)
    out[ROAD] = ROAD_S
    out[BARE] = BARE_S
    out[WATER] = WATER_S
    out[BUILDING] = ROOFS.mean(axis=0)
    out[PADDY] = PADDY_OPTICAL[0]
    return out


def paddy_weights(
    harvest: F32,
    transplant: F32,
    field_u: F32,
    doy: float,
    *,
    burn_fraction: float = 0.0,
    burn_days: int = 25,
) -> F32:
    """(6, n) weights of PADDY_STATES for n paddy pixels on a day of year: the wet-season rice cycle.

    Transplanting Jun-Jul into flooded fields, green canopy Aug-Oct, ripening in the last ~25 days, harvest on
    the field's day (10 Nov - 25 Dec) leaving stubble for about a month, which then weathers to dry fallow
    over three more (Jan-Mar: straw grazed and bleached); the fields are ploughed and flooded again in late
    May-June. With burn_fraction > 0 that share of fields burns its stubble within burn_days after harvest,
    the char fading over ~40 days.
    """
    n = harvest.shape[0]
    w = np.zeros((6, n), np.float32)
    s = np.mod(np.float32(doy) - transplant, np.float32(365.0))  # days since transplanting
    season = harvest - transplant
    fallow, flooded, green, ripe, stubble, char = range(6)

    def seg(lo: F32 | float, hi: F32 | float) -> tuple[NDArray[np.bool_], F32]:
        m = (s >= lo) & (s < hi)
        t = np.clip((s - lo) / np.maximum(np.asarray(hi, np.float32) - lo, 1e-3), 0, 1)
        return m, t.astype(np.float32)

    m, _ = seg(0.0, 20.0)
    w[flooded, m] = 1
    m, t = seg(20.0, 60.0)
    w[flooded, m], w[green, m] = 1 - t[m], t[m]
    m, _ = seg(60.0, season - 25.0)
    w[green, m] = 1
    m, t = seg(season - 25.0, season)
    w[green, m], w[ripe, m] = 1 - t[m], t[m]
    m, _ = seg(season, season + 30.0)
    w[stubble, m] = 1
    m, t = seg(season + 30.0, season + 120.0)
    w[stubble, m], w[fallow, m] = 1 - t[m], t[m]
    m, _ = seg(season + 120.0, 340.0)
    w[fallow, m] = 1
    m, t = seg(340.0, 365.0)
    w[fallow, m], w[flooded, m] = 1 - t[m], t[m]
    if burn_fraction > 0:
        burnt = field_u < burn_fraction
        # Given that it burns, field_u / burn_fraction is again uniform: reuse it for the day of the fire.
        day = season + 2.0 + (field_u / max(burn_fraction, 1e-6)) * max(burn_days - 2, 0)
        since = s - day
        c = np.where(burnt & (since >= 0) & (since < 40), 0.85 * (1 - since / 40.0), 0).astype(np.float32)
        w *= 1 - c
        w[char] += c
    return w


def ground_paddy_weights(
    ground: Ground, paddy: NDArray[np.bool_], doy: float, background: BackgroundSettings
) -> F32:
    """paddy_weights for the paddy pixels of a block, with the scenario's farm burning: one rice cycle for both
    the optical and the radar rendering."""
    return paddy_weights(
        ground.harvest_doy[paddy],
        ground.transplant_doy[paddy],
        ground.field_u[paddy],
        doy,
        burn_fraction=background.farm_burning_fraction,
        burn_days=background.farm_burning_days,
    )


def roof_spectra(plot_u: F32) -> NDArray[np.float32]:
    """(6, n) reflectance of roof pixels from their plot's material."""
    kind = np.minimum((plot_u * 3).astype(np.int64), 2)
    return ROOFS[kind].T  # type: ignore[no-any-return]
