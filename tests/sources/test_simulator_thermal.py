"""Tests for the simulator's VIIRS active fires: thermal contract, determinism, passes, burn scars, farm
burning, clouds and the stray-fire background."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from monitoring.aoi import AOI, aoi_from_bbox, aoi_from_hotspot
from monitoring.config import HotSpot
from monitoring.sources.simulator import Scenario, ScenarioEvent, SimulatorSource
from monitoring.sources.simulator.events import render_event, scenario_anchors
from monitoring.sources.simulator.landcover import PADDY, render_ground
from monitoring.sources.simulator.scenario import BackgroundSettings, CloudSettings
from monitoring.sources.simulator.spectra import PADDY_STATES, paddy_weights
from monitoring.sources.simulator.thermal import (
    CHAR_PROBE_DAYS,
    DETECT_SPREAD,
    F50_MW,
    FRP_ERROR,
    ORBIT_MIN,
    REGION_LAT,
    REGION_LON,
    STRUCTURE_FIRE_HOURS,
    STRUCTURE_MIN_RESIDENCE_S,
    detection_probability,
    event_fire,
    fire_pixels,
    nadir_lmst_h,
    pixel_centres,
    viirs_looks,
)
from monitoring.sources.simulator.world import Window, world_for
from monitoring.sources.thermal import FIRE_COLUMNS, ThermalSource, check_fires, search_bbox

PV = (14.3931, 104.6803)  # Preah Vihear temple: forest on the Dangrek
NONG_CHAN = (13.83, 102.73)  # paddy plain
CLEAR = CloudSettings(fraction=0.0)
OVERCAST = CloudSettings(fraction=1.0)
QUIET = BackgroundSettings(stray_fire_rate=0.0)
DECEMBER = (date(2025, 12, 1), date(2025, 12, 31))
REACH_M = 650.0
"""A detection is reported at its pixel's centre: at most half a pixel diagonal (~570 m at the swath edge)
from the fire."""


def _aoi(lat: float, lon: float, km: float, hid: str = "test-area") -> AOI:
    return aoi_from_hotspot(HotSpot(id=hid, name=hid, lat=lat, lon=lon, coordinates="sourced", aoi_km=km))


def _burns() -> tuple[ScenarioEvent, ...]:
    """Burn scars of 2-20 ha around Preah Vihear, 2 km or more apart, on different days."""
    lat, lon = PV
    spec = [
        (-0.020, -0.020, 20.0, 5),
        (-0.020, 0.000, 3.0, 6),
        (-0.020, 0.020, 8.0, 8),
        (0.000, -0.020, 12.0, 9),
        (0.000, 0.020, 2.0, 11),
        (0.020, -0.020, 6.0, 12),
        (0.020, 0.000, 15.0, 14),
        (0.020, 0.020, 4.0, 16),
        (-0.030, -0.032, 10.0, 18),
        (0.030, 0.032, 25.0, 19),
    ]
    return tuple(
        ScenarioEvent(
            id=f"t-burn-{k}", type="burn_scar", date=date(2025, 12, d), lat=lat + dy, lon=lon + dx, size_ha=s
        )
        for k, (dy, dx, s, d) in enumerate(spec)
    )


def _others() -> tuple[ScenarioEvent, ...]:
    lat, lon = PV
    spec = [
        ("t-craters", "crater_field", lat + 0.004, lon - 0.005, 3.0),
        ("t-works", "earthworks", lat + 0.004, lon + 0.005, 1.2),
        ("t-houses", "structural_damage", lat - 0.001, lon + 0.004, 1.5),
    ]
    day = date(2025, 12, 8)
    return tuple(
        ScenarioEvent(id=i, type=t, date=day, lat=la, lon=lo, size_ha=s)  # type: ignore[arg-type]
        for i, t, la, lo, s in spec
    )


@pytest.fixture(scope="module")
def pv_aoi() -> AOI:
    return _aoi(*PV, km=8.0)


@pytest.fixture(scope="module")
def burns_clear(pv_aoi: AOI) -> tuple[SimulatorSource, gpd.GeoDataFrame]:
    src = SimulatorSource(Scenario(name="burns", clouds=CLEAR, background=QUIET, events=_burns()), seed=2025)
    return src, src.load_fires(pv_aoi, *DECEMBER)


def _farm(share: float, clouds: CloudSettings = CLEAR, stray: float = 0.0, seed: int = 7) -> SimulatorSource:
    bg = BackgroundSettings(farm_burning_fraction=share, stray_fire_rate=stray)
    return SimulatorSource(Scenario(name="farm", clouds=clouds, background=bg), seed=seed)


# -- contract ----------------------------------------------------------------------------------------------


def test_keeps_the_thermal_contract() -> None:
    aoi = _aoi(*NONG_CHAN, km=4.0)
    src = _farm(0.4, clouds=CloudSettings(), stray=0.5)
    assert isinstance(src, ThermalSource)
    fires = check_fires(src.load_fires(aoi, *DECEMBER), aoi, *DECEMBER)
    assert len(fires) > 10
    assert set(FIRE_COLUMNS) <= set(fires.columns) and fires.geometry.geom_type.eq("Point").all()
    assert str(fires["time"].dtype) == "datetime64[ns, UTC]" and fires["time"].is_monotonic_increasing
    assert fires["frp"].dtype == np.float64 and (fires["frp"] > 0).all()
    assert set(fires["satellite"]) == {"Suomi NPP", "NOAA-20", "NOAA-21"}
    assert set(fires["instrument"]) == {"VIIRS"} and set(fires["product"]) == {"simulated"}
    assert set(fires["daynight"]) <= {"D", "N"}
    # Each detection's own pixel, as FIRMS' scan/track give it: 375 m at nadir to ~800 m at the swath's edge.
    assert fires["pixel_m"].between(375.0, 800.0).all() and fires["pixel_m"].nunique() > 1
    assert set(fires["confidence"]) <= {"low", "nominal", "high"}
    w, s, e, n = search_bbox(aoi)
    assert fires["longitude"].between(w, e).all() and fires["latitude"].between(s, n).all()
    assert np.allclose(fires.geometry.x, fires["longitude"]) and np.allclose(
        fires.geometry.y, fires["latitude"]
    )
    lo = pd.Timestamp(datetime(2025, 12, 1, tzinfo=UTC))
    assert fires["time"].min() >= lo and fires["time"].max() < lo + pd.Timedelta(days=31)
    # FIRMS gives the minute of the scan.
    assert (fires["time"].dt.second == 0).all()


def test_empty_results_keep_the_columns() -> None:
    aoi = _aoi(*NONG_CHAN, km=3.0)
    for fires in (
        _farm(0.4).load_fires(aoi, date(2025, 12, 10), date(2025, 12, 1)),
        _farm(0.0).load_fires(aoi, *DECEMBER),
        _farm(0.8, clouds=OVERCAST, stray=5.0).load_fires(aoi, *DECEMBER),
    ):
        assert len(fires) == 0 and set(FIRE_COLUMNS) <= set(fires.columns) and fires.crs.to_epsg() == 4326


# -- determinism -------------------------------------------------------------------------------------------


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    aoi = _aoi(*NONG_CHAN, km=3.0)
    a = _farm(0.4, clouds=CloudSettings(), stray=1.0).load_fires(aoi, *DECEMBER)
    b = _farm(0.4, clouds=CloudSettings(), stray=1.0).load_fires(aoi, *DECEMBER)
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b))
    c = _farm(0.4, clouds=CloudSettings(), stray=1.0, seed=8).load_fires(aoi, *DECEMBER)
    where = ["time", "latitude", "longitude"]
    assert len(a) and len(c) and not a[where].equals(c[where])


def _inside(fires: gpd.GeoDataFrame, box: tuple[float, float, float, float]) -> pd.DataFrame:
    w, s, e, n = box
    sel = fires["longitude"].between(w, e) & fires["latitude"].between(s, n)
    return pd.DataFrame(fires.loc[sel, list(FIRE_COLUMNS)]).reset_index(drop=True)


def test_overlapping_aois_see_the_same_fires_at_the_same_places() -> None:
    lat, lon = NONG_CHAN
    burn = ScenarioEvent(
        id="t-burn", type="burn_scar", date=date(2025, 12, 12), lat=lat, lon=lon, size_ha=10.0
    )
    bg = BackgroundSettings(farm_burning_fraction=0.4, stray_fire_rate=2.0)
    src = SimulatorSource(Scenario(clouds=CloudSettings(), background=bg, events=(burn,)), seed=3)
    a = _aoi(lat, lon - 0.01, km=4.0, hid="west")
    b = _aoi(lat + 0.008, lon + 0.01, km=4.0, hid="east")
    fa, fb = src.load_fires(a, *DECEMBER), src.load_fires(b, *DECEMBER)
    (aw, as_, ae, an), (bw, bs, be, bn) = search_bbox(a), search_bbox(b)
    both = (max(aw, bw), max(as_, bs), min(ae, be), min(an, bn))
    shared_a, shared_b = _inside(fa, both), _inside(fb, both)
    assert len(shared_a) > 10
    pd.testing.assert_frame_equal(shared_a, shared_b)


# -- passes ------------------------------------------------------------------------------------------------


def test_three_viirs_satellites_look_by_day_and_by_night() -> None:
    looks = viirs_looks(date(2025, 12, 1), date(2025, 12, 16), seed=1)
    assert len(looks) == 16 * 3 * 2
    for lk in looks:
        lmst = (lk.utc_s / 3600.0 + REGION_LON / 15.0) % 24.0
        nominal = nadir_lmst_h(lk.node, REGION_LAT)  # 13:30 / 01:30 at the node, ~13:21 / ~01:39 at 13.5 N
        assert abs(lmst - nominal) <= ORBIT_MIN / 120.0 + 0.01, (lk.satellite, lk.day, lmst)
        assert lk.daynight == ("D" if lk.node == "ascending" else "N")
    asc = {(lk.satellite, lk.day): lk.utc_s for lk in looks if lk.node == "ascending"}
    npp = [asc["Suomi NPP", d] - datetime.combine(d, datetime.min.time(), UTC).timestamp() for _, d in asc]
    # The 16-day repeat cycle walks the pass across the swath: 16 different times over ~100 minutes.
    assert len({round(t) for t in npp}) == 16 and (max(npp) - min(npp)) / 60 > 90
    for (sat, day), t in asc.items():
        ahead = (asc["Suomi NPP", day] - t) / 60.0 % ORBIT_MIN
        if sat == "NOAA-21":
            assert ahead == pytest.approx(ORBIT_MIN / 4, abs=0.5), "NOAA-21 flies a quarter orbit ahead"
        if sat == "NOAA-20":
            assert ahead == pytest.approx(3 * ORBIT_MIN / 4, abs=0.5), "NOAA-20 a quarter orbit behind"
    sats = {
        d: {lk.satellite for lk in viirs_looks(d, d, seed=1)} for d in (date(2023, 6, 1), date(2024, 3, 25))
    }
    assert sats[date(2023, 6, 1)] == {"Suomi NPP", "NOAA-20"}, "NOAA-21 operational from 8 Nov 2023"
    assert sats[date(2024, 3, 25)] == {"Suomi NPP", "NOAA-21"}, "NOAA-20 data withheld while rephasing"
    day_pass = datetime.fromtimestamp(asc["Suomi NPP", date(2025, 12, 5)], UTC)
    assert 5 <= day_pass.hour <= 7  # 13:30 at UTC+7
    assert nadir_lmst_h("ascending", 14.0) == pytest.approx(13.5 - 8.8 / 60, abs=0.02)


def test_detection_rises_with_fire_power() -> None:
    f = np.array([0.1, 1 / DETECT_SPREAD, 0.7, 1.0, 1.5, DETECT_SPREAD, 10.0])
    p = detection_probability(f)
    assert p[0] == 0 and p[1] == pytest.approx(0, abs=1e-12), "below F50 / 2.5: never"
    assert p[3] == pytest.approx(0.5) and p[5] == 1 and p[6] == 1, "half at F50, always from 2.5 F50"
    assert np.all(np.diff(p) >= 0)


# -- burn scars --------------------------------------------------------------------------------------------


def _utm(aoi: AOI) -> Transformer:
    return Transformer.from_crs("EPSG:4326", aoi.crs.to_wkt(), always_xy=True)


def test_burn_scars_are_seen_burning_near_their_outline_on_their_day(
    burns_clear: tuple[SimulatorSource, gpd.GeoDataFrame], pv_aoi: AOI
) -> None:
    src, fires = burns_clear
    truth = {g.id: g for g in src.ground_truth(pv_aoi, DECEMBER[1])}
    assert len(truth) == len(_burns())
    to_utm = _utm(pv_aoi)
    outlines = {
        k: shapely.transform(g.footprint, lambda c: np.c_[to_utm.transform(c[:, 0], c[:, 1])])
        for k, g in truth.items()
    }
    x, y = to_utm.transform(fires["longitude"].to_numpy(), fires["latitude"].to_numpy())
    seen = set()
    for xi, yi, t in zip(x, y, fires["time"], strict=True):
        dist = {k: shapely.distance(shapely.Point(xi, yi), o) for k, o in outlines.items()}
        k = min(dist, key=dist.__getitem__)
        assert dist[k] <= REACH_M, f"detection {dist[k]:.0f} m from the nearest burn"
        day = truth[k].date
        # The fire starts after that day's Sentinel-2 pass and is out by the next morning.
        assert datetime.combine(day, datetime.min.time(), UTC) <= t.to_pydatetime()
        assert t.to_pydatetime() < datetime.combine(day + timedelta(days=2), datetime.min.time(), UTC)
        seen.add(k)
    # VIIRS misses fires that burn only between its passes; most of these sizes are caught.
    assert len(seen) >= len(truth) // 2, f"only {sorted(seen)} seen"
    assert (fires["confidence"] != "low").mean() > 0.6


def test_clear_passes_always_see_large_fires_and_never_faint_ones(
    burns_clear: tuple[SimulatorSource, gpd.GeoDataFrame], pv_aoi: AOI
) -> None:
    src, fires = burns_clear
    world = world_for(pv_aoi.geobox, src.seed)
    anchors = scenario_anchors(world, src.scenario)
    reported = set(zip(fires["time"], fires["longitude"].round(5), fires["latitude"].round(5), strict=True))
    # Beyond the retrieval error (2 sigma), a pixel at 2.5x its F50 is sure to be detected, at 1/2.5 never.
    error = np.exp(2.0 * FRP_ERROR + FRP_ERROR**2 / 2.0)
    sure_by_day, never = 0, 0
    for ev in src.scenario.events:
        fire = event_fire(world, ev, anchors)
        assert fire is not None
        for look in viirs_looks(ev.date, ev.date + timedelta(days=1), seed=src.seed):
            t = float(look.time_at(np.array([ev.lat]))[0])
            if not fire.start_s <= t < fire.end_s:
                continue
            px = fire_pixels(look, fire.burning(t))
            assert px is not None
            lon, lat, growth = pixel_centres(look, px.i, px.j)
            strength = px.frp / (F50_MW[look.daynight] * growth**2)
            when = pd.Timestamp(np.floor(t / 60) * 60, unit="s", tz="UTC")
            for s, lo, la in zip(strength, lon, lat, strict=True):
                found = (when, round(float(lo), 5), round(float(la), 5)) in reported
                if s >= DETECT_SPREAD * error:
                    assert found, f"{ev.id}: a fire of {s:.1f}x F50 missed under a clear sky"
                    sure_by_day += look.daynight == "D"
                if s * error <= 1 / DETECT_SPREAD:
                    assert not found, f"{ev.id}: a fire of {s:.2f}x F50 detected"
                    never += 1
    assert sure_by_day >= 1 and never >= 1, "the scenario should hold strong fires by day, and faint ones"


def test_no_fire_is_seen_through_overcast(pv_aoi: AOI) -> None:
    src = SimulatorSource(Scenario(clouds=OVERCAST, events=_burns()), seed=2025)
    assert len(src.load_fires(pv_aoi, *DECEMBER)) == 0


def test_craters_and_earthworks_do_not_burn_struck_houses_burn_where_burnt_out(pv_aoi: AOI) -> None:
    scenario = Scenario(clouds=CLEAR, background=QUIET, events=_others())
    src = SimulatorSource(scenario, seed=2025)
    assert len(src.ground_truth(pv_aoi, DECEMBER[1])) == 3
    world = world_for(pv_aoi.geobox, 2025)
    anchors = scenario_anchors(world, scenario)
    craters, works, houses = _others()
    assert event_fire(world, craters, anchors) is None and event_fire(world, works, anchors) is None
    fire = event_fire(world, houses, anchors)
    er = render_event(world, houses, anchors)
    burnt = er.mask & (er.aux > 0)
    # The blocks the optical scenes show burnt out, and only those (about a third of the houses).
    assert fire is not None and 0 < fire.x.size == burnt.sum() < er.mask.sum()
    rows, cols = np.nonzero(burnt)
    assert set(zip(fire.x, fire.y, strict=True)) == set(
        zip(er.window.xs[cols], er.window.ys[rows], strict=True)
    )
    hours = (fire.end_s - fire.start_s) / 3600.0
    assert STRUCTURE_FIRE_HOURS[0] <= hours <= STRUCTURE_FIRE_HOURS[1] + STRUCTURE_MIN_RESIDENCE_S / 3600.0
    # Lit after the day's Sentinel-2 pass: the scene of the strike's day shows neither the ruins nor the fire.
    start = datetime.fromtimestamp(fire.start_s, UTC) + timedelta(hours=houses.lon / 15.0)
    assert start.date() == houses.date and start.hour >= 11
    # Detections, where a pass caught the fire, lie within a VIIRS pixel of the houses and after the strike.
    fires = src.load_fires(pv_aoi, *DECEMBER)
    to_utm = _utm(pv_aoi)
    for lon, lat, t in zip(fires["longitude"], fires["latitude"], fires["time"], strict=True):
        x, y = to_utm.transform(lon, lat)
        assert np.hypot(fire.x - x, fire.y - y).min() <= REACH_M
        assert t.timestamp() >= fire.start_s


# -- farm burning ------------------------------------------------------------------------------------------


def test_farm_burning_fires_on_paddy_in_the_afternoon_in_proportion_to_its_share() -> None:
    aoi = _aoi(*NONG_CHAN, km=5.0)
    fires = {share: _farm(share).load_fires(aoi, *DECEMBER) for share in (0.0, 0.2, 0.4, 0.8)}
    counts = {share: len(f) for share, f in fires.items()}
    assert counts[0.0] == 0
    assert counts[0.2] > 20 and counts[0.2] < counts[0.4] < counts[0.8]
    assert 1.4 < counts[0.8] / counts[0.4] < 2.6 and 1.4 < counts[0.4] / counts[0.2] < 2.6
    # Stubble is lit between noon and 17:00: the day passes see some of it, the night passes none.
    keep = fires[0.4]
    assert (keep["daynight"] == "D").all()
    world = world_for(aoi.geobox, 7)
    to_utm = _utm(aoi)
    for lon, lat in zip(keep["longitude"], keep["latitude"], strict=True):
        x, y = to_utm.transform(lon, lat)
        xs = x + np.arange(-REACH_M, REACH_M + 1, 50.0)
        ys = y + np.arange(REACH_M, -REACH_M - 1, -50.0)
        assert (render_ground(world, Window(xs, ys)).cls == PADDY).any(), "a stubble fire with no paddy near"


def test_a_burnt_field_stays_charred_longer_than_the_probe_step() -> None:
    # field_fires finds burnt fields by looking for char every CHAR_PROBE_DAYS: it must last that long.
    harvest = np.array([330.0], np.float32)
    transplant, field_u = harvest - np.float32(150.0), np.array([0.05], np.float32)
    char = PADDY_STATES.index("char")
    w = [
        paddy_weights(harvest, transplant, field_u, doy, burn_fraction=0.5, burn_days=25)[char, 0]
        for doy in range(330, 380)
    ]
    charred = np.flatnonzero(np.array(w) > 0)
    assert charred.size > CHAR_PROBE_DAYS and np.all(np.diff(charred) == 1)


# -- background --------------------------------------------------------------------------------------------


def test_stray_fires_come_at_the_documented_rate_mostly_weak() -> None:
    aoi = aoi_from_bbox((103.0, 13.6, 103.4, 14.0), aoi_id="wide")
    start, end = date(2025, 1, 1), date(2025, 5, 31)
    src = SimulatorSource(Scenario(clouds=CLEAR), seed=11)
    fires = src.load_fires(aoi, start, end)
    w, s, e, n = search_bbox(aoi)
    km2 = (e - w) * (n - s) * 111.32**2 * np.cos(np.radians((s + n) / 2))
    days = (end - start).days + 1
    expected = BackgroundSettings().stray_fire_rate / 100.0 * km2 * days
    assert expected > 100
    assert abs(len(fires) - expected) < 0.25 * expected, (len(fires), expected)
    assert (fires["confidence"] == "low").mean() > 0.6
    assert 0.3 < (fires["daynight"] == "D").mean() < 0.7
