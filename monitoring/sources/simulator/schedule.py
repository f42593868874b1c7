"""Fetch (simulator): when Sentinel-2 and Sentinel-1 see a place: revisits, orbits, ids, sun and clouds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from scipy import special

from monitoring.preprocess.shadow import solar_position
from monitoring.sources.simulator.noise import key, rng
from monitoring.sources.simulator.scenario import CloudSettings

# Sentinel-2: two satellites 180 deg apart, 10-day repeat each, 5 days together. Sentinel-2C replaced 2A in
# the pair on 21 January 2025 (2A flies on in an extended campaign on another phase, not simulated).
S2C_FIRST_DAY = date(2025, 1, 21)
S2_REVISIT_DAYS = 5
S2_REGION_LATLON = (13.5, 104.0)
"""Where the sun and cloud-shadow geometry is computed: one point for the whole border, so that overlapping
AOIs see the same shadows (the sun moves < 2 deg over the region)."""


@dataclass(frozen=True)
class S2Orbit:
    relative_orbit: int
    lon_min: float
    lon_max: float
    s2b_day: date
    """A day on which Sentinel-2B images this orbit (fixes the phase)."""
    utc: time
    """Acquisition time over the border: 10:30 mean local solar time on the descending node."""


# Two plausible relative orbits split at 103.4 E; numbers and phases are realistic, not authoritative.
S2_ORBITS = (
    S2Orbit(75, -180.0, 103.4, date(2025, 12, 6), time(3, 41, 29)),
    S2Orbit(32, 103.4, 180.0, date(2025, 12, 8), time(3, 31, 39)),
)

# Sentinel-1: 12-day repeat per satellite, 175 relative orbits. Sentinel-1C (launched Dec 2024) flies 6 days
# from 1A, taking the place of 1B (lost Dec 2021); routine products from about May 2025.
S1_REPEAT_DAYS = 12
S1_ORBITS_PER_CYCLE = 175
S1C_FIRST_DAY = date(2025, 5, 20)
S1A_CYCLE_START = date(2025, 1, 4)
S1_IW_INCIDENCE = (29.1, 46.0)
"""Incidence angle across the 250 km IW swath (degrees)."""


@dataclass(frozen=True)
class S1Track:
    relative_orbit: int
    direction: str
    lon_centre: float
    """Longitude of mid-swath at 14 N."""
    utc: time
    look_azimuth: float
    """Degrees from north of the radar's look: right-looking, 90 deg from the ~-10.5 deg (ascending) or ~190.5
    deg (descending) ground track at 14 N."""


# Dusk ascending (~18:10 local) and dawn descending (~06:00 local) passes; plausible tracks for the border.
S1_TRACKS = (
    S1Track(26, "ascending", 102.7, time(11, 18, 42), 79.5),
    S1Track(99, "ascending", 104.6, time(11, 11, 8), 79.5),
    S1Track(91, "descending", 102.9, time(23, 7, 51), 280.5),
    S1Track(164, "descending", 104.8, time(22, 59, 56), 280.5),
)

# Mean fraction of the sky covered at the Sentinel-2 overpass, by month, for the Cambodia-Thailand border
# (MODIS Terra cloud fraction climatology, rounded): the monsoon (May-Oct) is cloudy most mornings.
CLOUD_CLIMATOLOGY = (0.10, 0.12, 0.18, 0.30, 0.55, 0.70, 0.75, 0.78, 0.75, 0.55, 0.28, 0.12)
CIRRUS_CHANCE = (0.15, 0.15, 0.25, 0.35, 0.50, 0.55, 0.55, 0.55, 0.50, 0.40, 0.25, 0.15)
CLOUD_DAY_CONCENTRATION = 3.0
"""Beta concentration of a day's cloud fraction around the monthly mean: some days clear, some overcast."""


@dataclass(frozen=True)
class OpticalScene:
    time: datetime
    platform: str
    scene_id: str
    relative_orbit: int
    cloud_fraction: float
    """Regional share of the sky covered by cloud (0-1): the tile's cloud cover."""
    cirrus: float
    """Peak opacity of thin cirrus (0 = none)."""
    sun_zenith: float
    sun_azimuth: float
    cloud_height_m: float
    key: int
    """Seed of this scene's random fields."""

    @property
    def day(self) -> date:
        return self.time.date()


@dataclass(frozen=True)
class SarScene:
    time: datetime
    platform: str
    scene_id: str
    orbit_direction: str
    relative_orbit: int
    incidence: float
    look_azimuth: float
    calibration_db: float
    """Per-scene radiometric offset (absolute calibration is ~0.2 dB)."""
    orbit_db: float
    """Per-track offset: ascending and descending geometry see slightly different brightness."""
    wind: float
    """Roughening of open water by wind (1 = calm)."""
    key: int

    @property
    def day(self) -> date:
        return self.time.date()


def mgrs_tile(lon: float, lat: float) -> str:
    """The Sentinel-2 (MGRS) tile name of a point, e.g. 48PVA for Preah Vihear."""
    from monitoring.aoi import utm_crs
    from monitoring.sources.simulator.world import World

    zone = int((lon + 180) // 6) + 1
    band = "CDEFGHJKLMNPQRSTUVWX"[min(max(int((lat + 80) // 8), 0), 19)]
    x, y = World(0, int(utm_crs(lon, lat).epsg or 32648)).to_xy(lon, lat)
    cols = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")[(zone - 1) % 3]
    rows = "ABCDEFGHJKLMNPQRSTUV"
    col = cols[int(x // 100_000) - 1]
    row = rows[(int(y // 100_000) + (5 if zone % 2 == 0 else 0)) % 20]
    return f"{zone:02d}{band}{col}{row}"


def _day_cloud(seed: int, day: date, clouds: CloudSettings) -> tuple[float, float, float]:
    """(cloud fraction, cirrus opacity, cloud height m) of a day over the region: the same for every AOI."""
    r = rng(seed, "weather", day.isoformat())
    u_frac, u_cirrus, u_amp, u_h = r.uniform(size=4)
    if clouds.fraction is not None:
        frac = clouds.fraction
    else:
        mean = min(max(CLOUD_CLIMATOLOGY[day.month - 1] * clouds.scale, 0.0), 0.98)
        if mean <= 0.0:
            frac = 0.0
        else:
            a, b = mean * CLOUD_DAY_CONCENTRATION, (1 - mean) * CLOUD_DAY_CONCENTRATION
            frac = float(special.betaincinv(a, b, u_frac))
    cirrus_p = CIRRUS_CHANCE[day.month - 1] * min(clouds.scale, 1.0) if clouds.fraction is None else 0.0
    cirrus = 0.1 + 0.2 * u_amp if u_cirrus < cirrus_p else 0.0
    # Trade-wind cumulus bases near 600-1000 m; the shadow comes from the thick body up to ~1.5 km.
    return frac, cirrus, 500.0 + 1000.0 * u_h


def _processing_baseline(day: date) -> str:
    # ESA's L2A processing baselines: 05.11 from 23 Jul 2024, 05.10 from Feb 2024, 05.09 before.
    return "N0511" if day >= date(2024, 7, 23) else "N0510" if day >= date(2024, 2, 6) else "N0509"


def _s2_platform(day: date, orbit: S2Orbit) -> str | None:
    offset = (day - orbit.s2b_day).days
    if offset % S2_REVISIT_DAYS:
        return None
    if (offset // S2_REVISIT_DAYS) % 2 == 0:
        return "sentinel-2b"
    return "sentinel-2c" if day >= S2C_FIRST_DAY else "sentinel-2a"


def optical_scenes(
    lon: float, lat: float, start: date, end: date, *, seed: int, clouds: CloudSettings
) -> list[OpticalScene]:
    """Sentinel-2 L2A acquisitions over a point between start and end (inclusive), oldest first."""
    orbit = next(o for o in S2_ORBITS if o.lon_min <= lon < o.lon_max)
    tile = mgrs_tile(lon, lat)
    out = []
    day = start
    while day <= end:
        platform = _s2_platform(day, orbit)
        if platform is not None:
            when = datetime.combine(day, orbit.utc)
            frac, cirrus, height = _day_cloud(seed, day, clouds)
            lat, lon = S2_REGION_LATLON
            hours = when.hour + when.minute / 60 + when.second / 3600
            az, zen = solar_position(when, lat, hours, lon=lon)
            proc = when + timedelta(hours=2, minutes=15 + key(seed, "proc", day.isoformat()) % 60)
            scene_id = (
                f"S2{platform[-1].upper()}_MSIL2A_{when:%Y%m%dT%H%M%S}_{_processing_baseline(day)}"
                f"_R{orbit.relative_orbit:03d}_T{tile}_{proc:%Y%m%dT%H%M%S}"
            )
            out.append(
                OpticalScene(
                    time=when,
                    platform=platform,
                    scene_id=scene_id,
                    relative_orbit=orbit.relative_orbit,
                    cloud_fraction=frac,
                    cirrus=cirrus,
                    sun_zenith=zen,
                    sun_azimuth=az,
                    cloud_height_m=height,
                    key=key(seed, "s2", day.isoformat()),
                )
            )
        day += timedelta(days=1)
    return out


def _nearest_track(lon: float, direction: str) -> S1Track:
    return min((t for t in S1_TRACKS if t.direction == direction), key=lambda t: abs(t.lon_centre - lon))


def _s1_absolute_orbit(platform: str, when: datetime, relative_orbit: int) -> int:
    # Orbits since launch at 175 per 12 days, snapped to the absolute orbit that has this relative orbit.
    period = S1_REPEAT_DAYS * 86400 / S1_ORBITS_PER_CYCLE
    if platform == "sentinel-1a":
        approx, offset = 57_250 + (when - datetime(2025, 1, 1)).total_seconds() / period, 73
    else:
        approx, offset = (when - datetime(2024, 12, 5)).total_seconds() / period, 172
    approx = int(approx)
    delta = ((relative_orbit - 1) - (approx - offset)) % S1_ORBITS_PER_CYCLE
    return approx + delta - (S1_ORBITS_PER_CYCLE if delta > S1_ORBITS_PER_CYCLE // 2 else 0)


def sar_scenes(lon: float, lat: float, start: date, end: date, *, seed: int) -> list[SarScene]:
    """Sentinel-1 IW GRD acquisitions over a point (one ascending, one descending track), oldest first."""
    out = []
    for direction in ("ascending", "descending"):
        track = _nearest_track(lon, direction)
        phase = (track.relative_orbit - 1) * S1_REPEAT_DAYS // S1_ORBITS_PER_CYCLE
        # The point's place across the swath: far range (steeper incidence) is away from the ground track.
        across = (lon - track.lon_centre) / 1.15 * (1 if direction == "ascending" else -1)
        lo, hi = S1_IW_INCIDENCE
        incidence = (lo + hi) / 2 + (hi - lo) / 2 * max(-1.0, min(1.0, across))
        orbit_db = float(rng(seed, "s1-track", track.relative_orbit).normal(0.0, 0.3))
        day = start
        while day <= end:
            cycle_day = ((day - S1A_CYCLE_START).days - phase) % S1_REPEAT_DAYS
            platform = "sentinel-1a" if cycle_day == 0 else None
            if cycle_day == S1_REPEAT_DAYS // 2 and day >= S1C_FIRST_DAY:
                platform = "sentinel-1c"
            if platform is not None:
                when = datetime.combine(day, track.utc)
                r = rng(seed, "s1", day.isoformat(), track.relative_orbit)
                abs_orbit = _s1_absolute_orbit(platform, when, track.relative_orbit)
                k = key(seed, "s1", day.isoformat(), track.relative_orbit)
                stop = when + timedelta(seconds=25)  # an IW GRD slice is ~25 s of along-track data
                scene_id = (
                    f"S1{platform[-1].upper()}_IW_GRDH_1SDV_{when:%Y%m%dT%H%M%S}_{stop:%Y%m%dT%H%M%S}"
                    f"_{abs_orbit:06d}_{k & 0xFFFFFF:06X}_{k >> 16:04X}"
                )
                out.append(
                    SarScene(
                        time=when,
                        platform=platform,
                        scene_id=scene_id,
                        orbit_direction=direction,
                        relative_orbit=track.relative_orbit,
                        incidence=incidence,
                        look_azimuth=track.look_azimuth,
                        calibration_db=float(r.normal(0.0, 0.15)),
                        orbit_db=orbit_db,
                        wind=float(1.0 + 2.0 * r.uniform() ** 3),
                        key=k,
                    )
                )
            day += timedelta(days=1)
    return sorted(out, key=lambda s: (s.time, s.relative_orbit))
