"""Fetch (simulator): VIIRS active fires as NASA FIRMS delivers them, from the fires the simulated world has.

Three kinds of fire burn in the simulated world: the scenario's burn scars (on their date, after that day's
Sentinel-2 pass, so the scene of the next day is the first to show the scar), the stubble fires of the farm
burning that spectra.paddy_weights chars into the paddy (the same fields on the same days), and a sparse
background of small fires that change nothing a satellite image shows (household and rubbish fires, charcoal
kilns). Struck buildings burn too: the blocks of a structural-damage event that the optical scenes show burnt
out (about a third) catch fire after the strike, hotter and shorter than a surface fire. Craters and earthworks
burn nothing here.

Suomi NPP, NOAA-20 and NOAA-21 look at each place once by day (~13:30 local solar time, ascending) and once by
night (~01:30, descending). A fire burning at a look, under a sky the day's cloud field leaves clear there, is
detected with a chance that rises with its fire radiative power in the VIIRS pixel; the detection is reported
at the centre of that 375 m pixel (larger off nadir), so up to half a pixel from the fire.

Everything is a function of world position, time and seed (hashes, no global state): two AOIs that overlap see
the same detections where their search boxes overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import special, stats

from monitoring.sources.simulator.events import event_reach, render_event
from monitoring.sources.simulator.landcover import (
    FOREST,
    GRASS,
    N_CLASSES,
    ORCHARD,
    PADDY,
    SHRUB,
    Anchor,
    Ground,
    render_ground,
)
from monitoring.sources.simulator.noise import F32, F64, I64, hash_pairs, key, rehash, rng, to_unit
from monitoring.sources.simulator.optical import cloud_opacity
from monitoring.sources.simulator.scenario import BackgroundSettings, CloudSettings, Scenario, ScenarioEvent
from monitoring.sources.simulator.schedule import S2_REGION_LATLON, OpticalScene, _day_cloud
from monitoring.sources.simulator.spectra import PADDY_STATES, ground_paddy_weights
from monitoring.sources.simulator.world import PIXEL_M, Window, World
from monitoring.sources.thermal import FIRE_COLUMNS

# -- orbits --------------------------------------------------------------------------------------------------

ORBIT_MIN = 16 * 1440 / 227
"""Orbit period, minutes (101.5): Suomi NPP, NOAA-20 and NOAA-21 share one orbit, 227 turns in 16 days."""
TRACK_SPACING_DEG = 360.0 * 16 / 227
"""Longitude between successive tracks (25.4 deg, 2,740 km at 14 N): a place one spacing east of a track sees
the satellite one orbit period later in its local time."""
CYCLE_SHIFT = 3 / 16
"""227 = 16 x 14 + 3: each day's tracks lie 3/16 of a spacing beside the day before's, so over the 16-day
cycle a place is seen from every position across the swath and its overpass moves by up to +-50 min (half a
period)."""
CYCLE_PHASE = {"ascending": 0.31, "descending": 0.77}
"""Where the Suomi NPP tracks lie on day ordinal 0, in spacings (plausible, not authoritative)."""
NODE_LMST_H = {"ascending": 13.5, "descending": 1.5}
"""Mean local solar time of the equator crossings: 13:30 northbound by day, 01:30 southbound by night."""
INCLINATION_DEG = 98.7
TRACK_SLOPE = 0.236
"""Degrees of longitude the ground track drifts west per degree of latitude travelled (heading ~13 deg off
north at 14 N, Earth's rotation included)."""
SWATH_HALF_KM = 1520.0
"""Half the 3,040 km VIIRS swath: a place farther from the track is not seen on that pass."""
KM_PER_DEG = 111.32
REGION_LAT, REGION_LON = S2_REGION_LATLON
"""Where a pass's track and time are fixed for the whole border, so that every AOI sees the same passes."""


@dataclass(frozen=True)
class ViirsSatellite:
    name: str
    """As FIRMS spells it out: 'Suomi NPP', 'NOAA-20', 'NOAA-21'."""
    phases: tuple[tuple[date, float | None], ...]
    """(from this day, orbits ahead of Suomi NPP) in date order; None = no data, as before the first day."""

    def phase(self, day: date) -> float | None:
        out = None
        for since, phase in self.phases:
            if day >= since:
                out = phase
        return out


# NOAA-20 flew half an orbit (~50 min) from Suomi NPP; NOAA-21 (operational 8 Nov 2023) a quarter orbit ahead
# of Suomi NPP. NOAA-20 was rephased 20 Mar - 4 Apr 2024 to fly opposite NOAA-21 (its data of the drift
# withheld), so since then NOAA-21 passes ~25 min before Suomi NPP and NOAA-20 ~25 min after (or 76 min on the
# next track).
VIIRS_SATELLITES = (
    ViirsSatellite("Suomi NPP", ((date(2012, 1, 20), 0.0),)),
    ViirsSatellite(
        "NOAA-20", ((date(2018, 4, 1), 0.5), (date(2024, 3, 20), None), (date(2024, 4, 5), -0.25))
    ),
    ViirsSatellite("NOAA-21", ((date(2023, 11, 8), 0.25),)),
)

# -- VIIRS I-band pixels and detection -------------------------------------------------------------------

VIIRS_PIXEL_M = 375.0
PIXEL_GROWTH, PIXEL_GROWTH_KM = 1.13, 1500.0
"""I-band pixels grow from 375 m at nadir to ~800 m at the swath edge along scan and along track (onboard
aggregation keeps it to ~2x): size = 375 m x (1 + 1.13 (d / 1500 km)^2) at d km from the track."""
F50_MW = {"D": 1.5, "N": 0.5}
"""Fire radiative power (MW) in a nadir pixel detected half the time by day and by night (the night background
is cool; Schroeder et al. 2014). It scales with the pixel's area off nadir."""
DETECT_SPREAD = 2.5
"""Detection rises smoothly (in log FRP) from never at F50 / 2.5 to always at F50 x 2.5."""
FRP_ERROR = 0.3
"""Log-normal sigma of the retrieved FRP of a sub-pixel fire (clipped at 2 sigma: +-80%)."""
CLOUD_HIDES_FIRE = 0.5
"""Cloud opacity at which the active-fire algorithm masks the pixel; thinner cloud only dims the fire."""
HIGH_STRENGTH = 10.0
NOMINAL_STRENGTH = {"D": 0.8, "N": 1.5}
"""Confidence from the pixel's FRP over its F50: 'high' from 10x (near-saturated), 'nominal' from 0.8x by day
and 1.5x by night, else 'low' (the weak anomalies FIRMS flags so; more of them at night)."""

# -- fires on the ground -------------------------------------------------------------------------------------

COMBUSTION_KG_PER_MJ = 0.368
"""Dry fuel burnt per MJ radiated (Wooster et al. 2005): FRP (MW) = burning rate (kg/s) / 0.368."""
FUEL_KG_M2 = np.zeros(N_CLASSES, np.float64)
FUEL_KG_M2[[FOREST, ORCHARD, SHRUB, GRASS, PADDY]] = (0.8, 0.6, 0.8, 0.5, 0.3)
"""Fuel a dry-season surface fire consumes, kg/m² (litter, grass and understory; rice straw and stubble),
times the pixel's burn severity."""
FIRE_HOURS_PER_SQRT_HA = 2.0
"""A fire spreading at a steady rate grows its area as t², so it burns for 2 h x sqrt(area in ha) (x0.7-1.5
per fire): 2 h for 1 ha, 5 h for 6 ha, 7 h for 12 ha (a ~0.5 m/min surface fire), at most FIRE_MAX_HOURS."""
FIRE_MAX_HOURS = 20.0
FIRE_FIRST_HOUR, FIRE_LAST_END_HOUR = 11.0, 34.0
"""A burn-scar fire starts after the day's Sentinel-2 pass (10:30), no later than 22:00, and is out by 10:00
next morning: that day's scene does not show the scar yet and the next day's shows all of it."""
FIRE_MIN_RESIDENCE_S = 600.0
"""A 10 m pixel burns for at least 10 min (flaming, then glowing litter and wood)."""
FIRE_EVENTS = ("burn_scar", "structural_damage")
"""Scenario event types that burn (event_fire); craters and earthworks do not."""
STRUCTURE_FUEL_KG_M2 = 30.0
"""Fuel a burnt-out house consumes per m² of roof, kg (timber, thatch and contents: dwellings hold a fire load
of ~500-800 MJ/m², 17.5 MJ/kg), times the block's damage degree."""
STRUCTURE_FIRE_HOURS = (1.0, 4.0)
"""A struck block burns out in 1-4 h (most of the fuel in the first), from a start after the day's pass."""
STRUCTURE_MIN_RESIDENCE_S = 1800.0
"""A burning building pixel radiates for at least 30 min (roof, walls and contents)."""
FIELD_SAMPLE_M = 50.0
"""Paddy fields (45-90 m x 70 m) are found by sampling the field functions on a 50 m lattice of the world;
each sample stands for 50 m x 50 m of its field."""
FIELD_FIRST_HOUR, FIELD_SPAN_HOURS = 12.0, 5.0
"""Stubble is lit between 12:00 and 17:00 local time, most often mid-afternoon (after the dew and with the
day's wind): the 13:30 passes see only part of the day's field fires."""
FIELD_HOURS = (1.0, 3.0)
FIELD_FLAMING = (0.25, 0.85)
"""A field burns for 1-3 h: the flaming front crosses it in the first quarter (15-45 min, 85% of the fuel),
straw piles and bunds smoulder on for the rest."""
CHAR_PROBE_DAYS = 10
"""Burnt fields are first found by looking for char every 10 days, then dated day by day: char stays in the
scenes for weeks (40 days in spectra.paddy_weights), so no burn slips between two probes."""
STRAY_CELL_DEG = 0.05
"""Background fires are drawn per 0.05 deg cell and day (positions uniform in the cell)."""
STRAY_STRENGTH = (0.6, 0.5)
"""Median and log-sigma of a background detection's FRP over its pixel's F50: mostly weak, mostly 'low'."""
MARGIN_DEG = 0.01
"""Fires are simulated this far beyond the search box (more than half the largest pixel), so that every pixel
whose centre lies in the box gets all of its fires, whichever AOI asked."""

_EPOCH = date(1970, 1, 1).toordinal()
_CHAR = PADDY_STATES.index("char")


def _day_s(day: date) -> float:
    """Seconds since the Unix epoch of 00:00 UTC on a day."""
    return float((day.toordinal() - _EPOCH) * 86400)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


# -- looks ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ViirsLook:
    """One pass of one satellite over the border region."""

    satellite: str
    node: str
    """'ascending' (day) or 'descending' (night)."""
    day: date
    """Local solar day of the pass (a night pass at 01:30 local is at ~18:40 UTC the day before)."""
    utc_s: float
    """Time at REGION_LAT, seconds since the Unix epoch (UTC)."""
    track_lon: float
    """Ground-track longitude at REGION_LAT."""
    scan_offset: float
    track_offset: float
    """Phase of the pixel grid across and along the track (0-1 pixel)."""
    key: int

    @property
    def daynight(self) -> str:
        return "D" if self.node == "ascending" else "N"

    def time_at(self, lat: F64) -> F64:
        """UTC seconds when the pass sees latitude lat (it covers ~3.5 deg of latitude a minute)."""
        rate = 360.0 / (ORBIT_MIN * 60.0) * np.sin(np.radians(INCLINATION_DEG))
        sign = 1.0 if self.node == "ascending" else -1.0
        return np.asarray(self.utc_s + sign * (np.asarray(lat, np.float64) - REGION_LAT) / rate, np.float64)


def nadir_lmst_h(node: str, lat: float) -> float:
    """Local solar time (h) under the satellite at latitude lat: the track leans west of the node northwards,
    so at 14 N the day pass is ~13:21 and the night pass ~01:39."""
    incl = np.radians(INCLINATION_DEG)
    sin_u = np.sin(np.radians(lat)) / np.sin(incl)
    d_alpha = float(np.degrees(np.arctan2(np.cos(incl) * sin_u, np.sqrt(1.0 - sin_u**2))))
    sign = 1.0 if node == "ascending" else -1.0
    return NODE_LMST_H[node] + sign * d_alpha / 15.0


def viirs_looks(first: date, last: date, *, seed: int) -> list[ViirsLook]:
    """Every VIIRS pass over the region on local days first..last, in time order: one by day and one by night
    per satellite in service, each at its place in the 16-day cycle."""
    out = []
    for day in _days(first, last):
        for node in ("ascending", "descending"):
            u_npp = (CYCLE_PHASE[node] + CYCLE_SHIFT * day.toordinal()) % 1.0
            for sat in VIIRS_SATELLITES:
                phase = sat.phase(day)
                if phase is None:
                    continue
                # A satellite ahead in the orbit crosses the region earlier, on a track farther east.
                u = (u_npp - phase + 0.5) % 1.0 - 0.5
                lmst = nadir_lmst_h(node, REGION_LAT) + u * ORBIT_MIN / 60.0
                k = key(seed, "viirs", sat.name, node, day.isoformat())
                offsets = rng(k, "grid").uniform(size=2)
                out.append(
                    ViirsLook(
                        satellite=sat.name,
                        node=node,
                        day=day,
                        utc_s=_day_s(day) + (lmst - REGION_LON / 15.0) * 3600.0,
                        track_lon=REGION_LON - u * TRACK_SPACING_DEG,
                        scan_offset=float(offsets[0]),
                        track_offset=float(offsets[1]),
                        key=k,
                    )
                )
    return sorted(out, key=lambda lk: (lk.utc_s, lk.satellite))


# -- pixels --------------------------------------------------------------------------------------------------

_P_KM = VIIRS_PIXEL_M / 1000.0
_SQRT_G = float(np.sqrt(PIXEL_GROWTH))


def pixel_growth(d_km: F64) -> F64:
    """Size of a pixel d km from the track, in nadir pixels (along scan and along track alike)."""
    return 1.0 + PIXEL_GROWTH * (np.asarray(d_km) / PIXEL_GROWTH_KM) ** 2  # type: ignore[no-any-return]


def _scan_coord(d_km: F64) -> F64:
    # Pixels counted from the track: the integral of 1 / pixel size, so pixels widen off nadir.
    q = PIXEL_GROWTH_KM / (_P_KM * _SQRT_G) * np.arctan(_SQRT_G * d_km / PIXEL_GROWTH_KM)
    return np.asarray(q, np.float64)


def _scan_distance(q: F64) -> F64:
    return np.asarray(PIXEL_GROWTH_KM / _SQRT_G * np.tan(q * _P_KM * _SQRT_G / PIXEL_GROWTH_KM), np.float64)


def _track_lon(look: ViirsLook, lat: F64) -> F64:
    slope = -TRACK_SLOPE if look.node == "ascending" else TRACK_SLOPE
    return look.track_lon + slope * (lat - REGION_LAT)  # type: ignore[no-any-return]


def viirs_pixels(look: ViirsLook, lon: F64, lat: F64) -> tuple[I64, I64, NDArray[np.bool_]]:
    """(scan index, track index, seen) of the pixel of this pass that holds each point."""
    lon, lat = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
    d = (lon - _track_lon(look, lat)) * KM_PER_DEG * np.cos(np.radians(REGION_LAT))
    seen = np.abs(d) <= SWATH_HALF_KM
    i = np.floor(_scan_coord(d) + look.scan_offset).astype(np.int64)
    size = _P_KM * pixel_growth(_scan_distance(np.asarray(i + 0.5 - look.scan_offset, np.float64)))
    j = np.floor((lat - REGION_LAT) * KM_PER_DEG / size + look.track_offset).astype(np.int64)
    return i, j, seen


def pixel_centres(look: ViirsLook, i: I64, j: I64) -> tuple[F64, F64, F64]:
    """(lon, lat, growth) of pixel centres (where FIRMS puts a detection) and pixel sizes in nadir pixels."""
    d = _scan_distance(np.asarray(i + 0.5 - look.scan_offset, np.float64))
    growth = pixel_growth(d)
    lat = REGION_LAT + (j + 0.5 - look.track_offset) * _P_KM * growth / KM_PER_DEG
    lon = _track_lon(look, lat) + d / (KM_PER_DEG * np.cos(np.radians(REGION_LAT)))
    return lon, lat, growth


def detection_probability(strength: F64) -> F64:
    """Chance that a pixel whose FRP is `strength` times its F50 is detected (0 below 1/2.5, 1 above 2.5)."""
    w = np.log(DETECT_SPREAD)
    t = np.clip((np.log(np.maximum(strength, 1e-12)) + w) / (2.0 * w), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)  # type: ignore[no-any-return]


def confidence(strength: F64, daynight: str) -> NDArray[np.object_]:
    """FIRMS' VIIRS confidence of detections whose FRP is `strength` times their pixel's F50."""
    s = np.asarray(strength)
    out = np.where(s >= NOMINAL_STRENGTH[daynight], "nominal", "low").astype(object)
    out[s >= HIGH_STRENGTH] = "high"
    return out


# -- clouds --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _cloud_day(seed: int, day: date, clouds: CloudSettings) -> tuple[OpticalScene, float, float]:
    """The day's cloud field (an OpticalScene: cloud_opacity reads only its day and fraction) and wind."""
    frac = _day_cloud(seed, day, clouds)[0]
    scene = OpticalScene(
        time=datetime.combine(day, time(3, 30)),
        platform="viirs",
        scene_id="",
        relative_orbit=0,
        cloud_fraction=frac,
        cirrus=0.0,
        sun_zenith=0.0,
        sun_azimuth=0.0,
        cloud_height_m=0.0,
        key=0,
    )
    r = rng(seed, "viirs-wind", day.isoformat())
    speed, heading = r.uniform(3.0, 8.0), r.uniform(0.0, 2.0 * np.pi)
    return scene, float(speed * np.sin(heading)), float(speed * np.cos(heading))


def cloud_positions(world: World, look: ViirsLook, x: F64, y: F64, clouds: CloudSettings) -> tuple[F64, F64]:
    """Where in the day's cloud field (as Sentinel-2 saw it at 10:30) to look for the cloud over points (world
    metres) at a pass: upwind by the day's wind times the hours since. At 3-8 m/s the field moves 30-90 km by
    the day pass, tens of its 3 km cells: the afternoon's cumulus are not the morning's, but there are as
    many."""
    _, u, v = _cloud_day(world.seed, look.day, clouds)
    dt = look.utc_s - (_day_s(look.day) + (10.5 - REGION_LON / 15.0) * 3600.0)
    return np.asarray(x, np.float64) - u * dt, np.asarray(y, np.float64) - v * dt


def cloud_opacity_at(world: World, day: date, xs: F64, ys: F64, clouds: CloudSettings) -> F64:
    """optical.cloud_opacity of the day at scattered points (not a grid)."""
    scene = _cloud_day(world.seed, day, clouds)[0]
    out = np.empty(xs.size, np.float64)
    for s in range(0, xs.size, 128):
        # cloud_opacity works on grids: take the diagonal of a small one per chunk of points.
        out[s : s + 128] = np.diagonal(cloud_opacity(world, xs[s : s + 128], ys[s : s + 128], scene))
    return out


# -- fires ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Burning:
    """Points of fire burning at one pass: world metres, degrees and radiative power (MW)."""

    x: F64
    y: F64
    lon: F64
    lat: F64
    frp: F64

    @classmethod
    def empty(cls) -> Burning:
        z = np.zeros(0, np.float64)
        return cls(z, z, z, z, z)

    @classmethod
    def concat(cls, parts: Sequence[Burning]) -> Burning:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("x", "y", "lon", "lat", "frp")))


@dataclass(frozen=True, eq=False)
class EventFire:
    """A burn-scar (or burnt-out structures) event as a fire: its burnt 10 m pixels catch fire as the front
    spreads from ignition."""

    event: ScenarioEvent
    x: F64
    y: F64
    lon: F64
    lat: F64
    ignite_s: F64
    """UTC seconds each pixel catches fire."""
    residence_s: float
    frp: F64
    """Radiative power of each pixel while it burns, MW."""
    start_s: float
    end_s: float

    def burning(self, t_s: float) -> Burning:
        on = (self.ignite_s <= t_s) & (t_s < self.ignite_s + self.residence_s)
        return Burning(self.x[on], self.y[on], self.lon[on], self.lat[on], self.frp[on])


@lru_cache(maxsize=256)
def event_fire(world: World, ev: ScenarioEvent, anchors: tuple[Anchor, ...]) -> EventFire | None:
    """The fire that made a burn scar, or burnt out struck buildings, over exactly the pixels the scene shows
    burnt (None if none burnt; craters and earthworks burn nothing).

    A burn scar burns for FIRE_HOURS_PER_SQRT_HA x sqrt(area), buildings for STRUCTURE_FIRE_HOURS, from a start
    between 11:00 and 22:00 local solar time on the event's day (most often early in the afternoon); the front
    reaches each pixel in proportion to its distance from the ignition point, and each pixel radiates its
    consumed fuel over its residence time (the time the front takes to cross it).
    """
    if ev.type not in FIRE_EVENTS:
        return None
    er = render_event(world, ev, anchors)
    structures = ev.type == "structural_damage"
    # Buildings: only the blocks the optical scenes show burnt out (events._structures' aux).
    rows, cols = np.nonzero(er.mask & (er.aux > 0) if structures else er.mask)
    if not rows.size:
        return None
    x, y = er.window.xs[cols], er.window.ys[rows]
    lon, lat = (np.asarray(a, np.float64) for a in world.to_lonlat(x, y))
    r = rng(world.key, "fire", ev.id, ev.date.isoformat())
    area_ha = rows.size * PIXEL_M**2 / 1e4
    if structures:
        hours = float(r.uniform(*STRUCTURE_FIRE_HOURS))
        fuel_kg_m2, min_residence = np.full(rows.size, STRUCTURE_FUEL_KG_M2), STRUCTURE_MIN_RESIDENCE_S
    else:
        hours = float(
            np.clip(FIRE_HOURS_PER_SQRT_HA * np.sqrt(area_ha) * r.uniform(0.7, 1.5), 1.0, FIRE_MAX_HOURS)
        )
        fuel_kg_m2, min_residence = FUEL_KG_M2[er.land[rows, cols]], FIRE_MIN_RESIDENCE_S
    latest = min(22.0, FIRE_LAST_END_HOUR - hours)
    # Skewed to the early afternoon, the driest and windiest hours, when fires take hold.
    start_h = FIRE_FIRST_HOUR + r.uniform() ** 2 * max(latest - FIRE_FIRST_HOUR, 0.0)
    start_s = _day_s(ev.date) + (start_h - ev.lon / 15.0) * 3600.0
    origin = int(r.integers(rows.size))
    dist = np.hypot(x - x[origin], y - y[origin])
    reach = max(float(dist.max()), PIXEL_M)
    ignite = start_s + hours * 3600.0 * dist / reach
    residence = max(hours * 3600.0 * PIXEL_M / reach, min_residence)
    fuel = fuel_kg_m2 * PIXEL_M**2 * er.strength[rows, cols]
    frp = fuel / residence / COMBUSTION_KG_PER_MJ
    return EventFire(ev, x, y, lon, lat, ignite, residence, frp, start_s, float(ignite.max() + residence))


@dataclass(frozen=True, eq=False)
class FieldFires:
    """Paddy samples whose stubble burns in the window: when, and how hot."""

    x: F64
    y: F64
    lon: F64
    lat: F64
    start_s: F64
    flaming_end_s: F64
    end_s: F64
    frp_flaming: F64
    frp_smouldering: F64

    def burning(self, t_s: F64) -> Burning:
        on = (self.start_s <= t_s) & (t_s < self.end_s)
        frp = np.where(t_s < self.flaming_end_s, self.frp_flaming, self.frp_smouldering)
        return Burning(self.x[on], self.y[on], self.lon[on], self.lat[on], frp[on])


def _lattice(x0: float, x1: float, step: float) -> F64:
    return (np.arange(np.floor(x0 / step), np.ceil(x1 / step), dtype=np.float64) + 0.5) * step


def _burn_days(
    ground: Ground, paddy: NDArray[np.bool_], first: date, last: date, bg: BackgroundSettings
) -> I64:
    """Ordinal of the local day each paddy sample's stubble burns on, if on days first..last, else -1: the
    afternoon before the first scene that shows it charred (spectra.ground_paddy_weights' own decision and
    day)."""

    def only(idx: I64) -> Ground:
        # The samples as a one-row ground: the weights then cost nothing for the samples left out.
        return replace(
            ground,
            harvest_doy=ground.harvest_doy[paddy][None, idx],
            transplant_doy=ground.transplant_doy[paddy][None, idx],
            field_u=ground.field_u[paddy][None, idx],
        )

    def char(g: Ground, day: date) -> F32:
        every = np.ones(g.field_u.shape, bool)
        return ground_paddy_weights(g, every, day.timetuple().tm_yday, bg)[_CHAR]

    out = np.full(int(paddy.sum()), -1, np.int64)
    days = _days(first, last + timedelta(days=1))
    probes = days[::CHAR_PROBE_DAYS] + [days[-1]]
    everything = only(np.arange(out.size))
    burnt = np.zeros(out.size, bool)
    for day in probes:
        burnt |= char(everything, day) > 0
    cand = np.flatnonzero(burnt)
    if not cand.size:
        return out
    some = only(cand)
    before = char(some, days[0])
    for day in days[1:]:
        now = char(some, day)
        new = (now > 0) & (before <= 0) & (out[cand] < 0)
        out[cand[new]] = day.toordinal() - 1
        before = now
    return out


def field_fires(
    world: World,
    bounds: tuple[float, float, float, float],
    first: date,
    last: date,
    background: BackgroundSettings,
    anchors: tuple[Anchor, ...],
) -> FieldFires | None:
    """The stubble fires of local days first..last within world bounds (x0, y0, x1, y1): the paddy fields the
    optical scenes show charred, sampled every FIELD_SAMPLE_M, each burning FIELD_HOURS in the afternoon."""
    if background.farm_burning_fraction <= 0:
        return None
    x0, y0, x1, y1 = bounds
    win = Window(_lattice(x0, x1, FIELD_SAMPLE_M), _lattice(y0, y1, FIELD_SAMPLE_M)[::-1])
    ground = render_ground(world, win, anchors)
    paddy = ground.cls == PADDY
    fire_day = _burn_days(ground, paddy, first, last, background)
    burns = fire_day >= 0
    if not burns.any():
        return None
    rows, cols = np.nonzero(paddy)
    rows, cols, fire_day = rows[burns], cols[burns], fire_day[burns]
    x, y = win.xs[cols], win.ys[rows]
    lon, lat = (np.asarray(a, np.float64) for a in world.to_lonlat(x, y))
    # Each field's hour and duration from its own uniform: all samples of a field burn together.
    h = ground.field_u[rows, cols].view(np.uint32)
    u1, u2, u3 = (to_unit(rehash(h, salt)).astype(np.float64) for salt in (0xF1, 0xF2, 0xF3))
    start_h = FIELD_FIRST_HOUR + FIELD_SPAN_HOURS * (u1 + u2) / 2.0
    hours = FIELD_HOURS[0] + (FIELD_HOURS[1] - FIELD_HOURS[0]) * u3
    start = (fire_day - _EPOCH) * 86400.0 + (start_h - lon / 15.0) * 3600.0
    fuel = FUEL_KG_M2[PADDY] * FIELD_SAMPLE_M**2
    share, flaming_fuel = FIELD_FLAMING
    flaming = share * hours * 3600.0
    return FieldFires(
        x=x,
        y=y,
        lon=lon,
        lat=lat,
        start_s=start,
        flaming_end_s=start + flaming,
        end_s=start + hours * 3600.0,
        frp_flaming=flaming_fuel * fuel / flaming / COMBUSTION_KG_PER_MJ,
        frp_smouldering=(1.0 - flaming_fuel) * fuel / (hours * 3600.0 - flaming) / COMBUSTION_KG_PER_MJ,
    )


# -- detection -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Candidates:
    """Pixels of one pass with fire in them, before cloud and chance decide which are detected."""

    look: ViirsLook
    i: I64
    j: I64
    x: F64
    y: F64
    """Where the fire is in the pixel (FRP-weighted, world metres): the cloud that hides it is there."""
    frp: F64
    """Radiative power of the fire in the pixel, MW."""
    stray: bool = False
    """Background detections: detected whenever clear, their FRP as drawn."""


def fire_pixels(look: ViirsLook, burning: Burning) -> Candidates | None:
    """The pixels of a pass that hold burning points, with their FRP summed."""
    i, j, seen = viirs_pixels(look, burning.lon, burning.lat)
    if not seen.any():
        return None
    pix, inv = np.unique(np.c_[i[seen], j[seen]], axis=0, return_inverse=True)
    inv = inv.ravel()
    frp = burning.frp[seen]
    total = np.bincount(inv, weights=frp).astype(np.float64)
    weight = np.maximum(total, 1e-12)
    fx = np.bincount(inv, weights=frp * burning.x[seen]) / weight
    fy = np.bincount(inv, weights=frp * burning.y[seen]) / weight
    return Candidates(look, pix[:, 0], pix[:, 1], fx, fy, total)


def stray_pixels(
    world: World, looks: Sequence[ViirsLook], bbox: tuple[float, float, float, float], rate: float
) -> list[Candidates]:
    """Background fires: Poisson in space and time at `rate` per 100 km² per day, each seen by one of its
    day's passes, weak (mostly 'low' confidence)."""
    if rate <= 0 or not looks:
        return []
    w, s, e, n = bbox
    ci = np.arange(np.floor(w / STRAY_CELL_DEG), np.ceil(e / STRAY_CELL_DEG)).astype(np.int64)
    cj = np.arange(np.floor(s / STRAY_CELL_DEG), np.ceil(n / STRAY_CELL_DEG)).astype(np.int64)
    cell_km2 = (STRAY_CELL_DEG * KM_PER_DEG) ** 2 * np.cos(np.radians((cj + 0.5) * STRAY_CELL_DEG))
    mean = np.broadcast_to(rate / 100.0 * cell_km2[:, None], (cj.size, ci.size))
    by_day: dict[date, list[ViirsLook]] = {}
    for lk in looks:
        by_day.setdefault(lk.day, []).append(lk)
    out = []
    for day, day_looks in sorted(by_day.items()):
        day_looks = sorted(day_looks, key=lambda lk: (lk.node, lk.satellite))
        u = to_unit(hash_pairs(key(world.seed, "stray-count", day.isoformat()), ci[None, :], cj[:, None]))
        count = np.maximum(stats.poisson.ppf(u.astype(np.float64), mean), 0).astype(np.int64)
        for r_idx, c_idx in zip(*np.nonzero(count), strict=True):
            a, b = int(ci[c_idx]), int(cj[r_idx])
            r = rng(world.seed, "stray-fire", day.isoformat(), a, b)
            for _ in range(int(count[r_idx, c_idx])):
                lon = np.array([(a + r.uniform()) * STRAY_CELL_DEG])
                lat = np.array([(b + r.uniform()) * STRAY_CELL_DEG])
                look = day_looks[int(r.integers(len(day_looks)))]
                strength = STRAY_STRENGTH[0] * np.exp(STRAY_STRENGTH[1] * r.normal())
                i, j, seen = viirs_pixels(look, lon, lat)
                if seen[0]:
                    x, y = world.to_xy(float(lon[0]), float(lat[0]))
                    growth = pixel_centres(look, i, j)[2]
                    frp = np.asarray(strength * F50_MW[look.daynight] * growth**2, np.float64)
                    out.append(Candidates(look, i, j, np.array([x]), np.array([y]), frp, stray=True))
    return out


@dataclass(frozen=True, eq=False)
class Detections:
    """Detections of one pass: pixel indices and what FIRMS reports."""

    look: ViirsLook
    i: I64
    j: I64
    lon: F64
    lat: F64
    frp: F64
    confidence: NDArray[np.object_]


def detect(world: World, candidates: Sequence[Candidates], clouds: CloudSettings) -> list[Detections]:
    """The candidate pixels that are detected: hidden under thick cloud, dimmed under thin, then detected with
    detection_probability of their retrieved FRP (hashed draws per pass and pixel)."""
    out = []
    pending: dict[tuple[date, str], list[tuple[Candidates, NDArray[np.bool_], F64, F64, F64]]] = {}
    for c in candidates:
        look = c.look
        f50 = F50_MW[look.daynight] * pixel_centres(look, c.i, c.j)[2] ** 2
        if c.stray:
            frp, u = c.frp, np.zeros(c.i.size)
        else:
            u = to_unit(hash_pairs(key(look.key, "detect"), c.i, c.j)).astype(np.float64)
            q = to_unit(hash_pairs(key(look.key, "frp"), c.i, c.j)).astype(np.float64) + 2.0**-25
            z = np.clip(special.ndtri(q), -2.0, 2.0)
            frp = c.frp * np.exp(FRP_ERROR * z - FRP_ERROR**2 / 2.0)
        # Cloud only dims: a pixel the draw misses under a clear sky is missed anyway, and needs no cloud.
        maybe = np.full(c.i.size, c.stray) | (u < detection_probability(frp / f50))
        if maybe.any():
            pending.setdefault((look.day, look.node), []).append((c, maybe, frp, f50, u))
    for (day, _node), group in sorted(pending.items()):
        # One cloud evaluation per day and node: the passes of the three satellites lie close in the field.
        pos = [cloud_positions(world, c.look, c.x[m], c.y[m], clouds) for c, m, *_ in group]
        xs, ys = np.concatenate([p[0] for p in pos]), np.concatenate([p[1] for p in pos])
        alpha = cloud_opacity_at(world, day, xs, ys, clouds)
        edges = np.cumsum([0] + [int(m.sum()) for _, m, *_ in group])
        for (c, m, frp, f50, u), a in zip(group, np.split(alpha, edges[1:-1]), strict=True):
            seen_frp, f50, u = frp[m] * (1.0 - a), f50[m], u[m]
            hit = (a < CLOUD_HIDES_FIRE) & (c.stray | (u < detection_probability(seen_frp / f50)))
            if hit.any():
                idx = np.flatnonzero(m)[hit]
                lon, lat, _ = pixel_centres(c.look, c.i[idx], c.j[idx])
                conf = confidence(seen_frp[hit] / f50[hit], c.look.daynight)
                out.append(Detections(c.look, c.i[idx], c.j[idx], lon, lat, seen_frp[hit], conf))
    return out


# -- the table -----------------------------------------------------------------------------------------------


def _xy_bounds(world: World, bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    w, s, e, n = bbox
    lons, lats = np.linspace(w, e, 5), np.linspace(s, n, 5)
    pts = [world.to_xy(float(lo), float(la)) for lo in lons for la in lats]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def simulate_fires(
    world: World,
    scenario: Scenario,
    bbox: tuple[float, float, float, float],
    start: date,
    end: date,
    *,
    anchors: tuple[Anchor, ...] = (),
) -> pd.DataFrame:
    """FIRMS-like rows (monitoring.sources.thermal.FIRE_COLUMNS, no geometry) of the VIIRS detections whose
    pixel centre lies in bbox (west, south, east, north) and whose time is on UTC days start..end."""
    wide = (bbox[0] - MARGIN_DEG, bbox[1] - MARGIN_DEG, bbox[2] + MARGIN_DEG, bbox[3] + MARGIN_DEG)
    bounds = _xy_bounds(world, wide)
    # Local days whose passes or fires can fall on UTC days start..end (UTC+7 here: a night pass is the
    # evening before in UTC, a fire may burn past midnight).
    first, last = start - timedelta(days=1), end + timedelta(days=1)
    looks = viirs_looks(first, last, seed=world.seed)
    fires = []
    for ev in scenario.events:
        if ev.type not in FIRE_EVENTS or not first - timedelta(days=1) <= ev.date <= last:
            continue
        ex0, ey0, ex1, ey1 = event_reach(world, ev)
        if ex0 <= bounds[2] and ex1 >= bounds[0] and ey0 <= bounds[3] and ey1 >= bounds[1]:
            fire = event_fire(world, ev, anchors)
            if fire is not None:
                fires.append(fire)
    fields = field_fires(world, bounds, first, last, scenario.background, anchors)
    candidates = []
    for look in looks:
        parts = []
        for fire in fires:
            t = float(look.time_at(np.array([fire.event.lat]))[0])
            if fire.start_s <= t < fire.end_s:
                parts.append(fire.burning(t))
        if fields is not None:
            parts.append(fields.burning(look.time_at(fields.lat)))
        burning = Burning.concat(parts)
        if burning.frp.size:
            c = fire_pixels(look, burning)
            if c is not None:
                candidates.append(c)
    # Fires first: where a background fire shares a pixel and pass with one, the pixel is reported once.
    candidates += stray_pixels(world, looks, wide, scenario.background.stray_fire_rate)
    return _table(detect(world, candidates, scenario.clouds), bbox, start, end)


def _table(
    found: list[Detections], bbox: tuple[float, float, float, float], start: date, end: date
) -> pd.DataFrame:
    rows: dict[str, list[object]] = {c: [] for c in FIRE_COLUMNS if c != "product"}
    seen: set[tuple[int, int, int]] = set()
    for det in sorted(found, key=lambda d: (d.look.utc_s, d.look.satellite)):
        # FIRMS reports the minute of the scan (acq_time HHMM); a pixel is reported once per pass.
        t = np.floor(det.look.time_at(det.lat) / 60.0) * 60.0
        # ... and its pixel's size (scan/track, which grow off nadir alike here): how far the detection reaches.
        size_m = VIIRS_PIXEL_M * pixel_centres(det.look, det.i, det.j)[2]
        for k in range(det.i.size):
            ident = (det.look.key, int(det.i[k]), int(det.j[k]))
            if ident in seen:
                continue
            seen.add(ident)
            rows["time"].append(float(t[k]))
            rows["latitude"].append(round(float(det.lat[k]), 5))
            rows["longitude"].append(round(float(det.lon[k]), 5))
            rows["satellite"].append(det.look.satellite)
            rows["instrument"].append("VIIRS")
            rows["confidence"].append(str(det.confidence[k]))
            rows["frp"].append(round(float(det.frp[k]), 2))
            rows["daynight"].append(det.look.daynight)
            rows["pixel_m"].append(round(float(size_m[k]), 1))
    frame = pd.DataFrame(rows)
    w, s, e, n = bbox
    lo, hi = _day_s(start), _day_s(end + timedelta(days=1))
    if len(frame):
        keep = (
            (frame["time"] >= lo)
            & (frame["time"] < hi)
            & frame["longitude"].between(w, e)
            & frame["latitude"].between(s, n)
        )
        frame = frame[keep]
    frame = frame.sort_values(["time", "longitude", "latitude", "satellite"], kind="stable")
    frame["time"] = pd.to_datetime(frame["time"].astype("float64"), unit="s", utc=True).astype(
        "datetime64[ns, UTC]"
    )
    for c in ("latitude", "longitude", "frp", "pixel_m"):
        frame[c] = frame[c].astype("float64")
    frame["product"] = "simulated"
    return frame.reset_index(drop=True)
