"""Tests for the built-in simulator: source contract, determinism, sensors, weather, speckle and events."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from shapely.geometry import Point

from monitoring.aoi import AOI, aoi_from_bbox, aoi_from_hotspot
from monitoring.config import HotSpot, load_hotspots
from monitoring.errors import ConfigError
from monitoring.preprocess.multilook import boxcar_mean
from monitoring.results import ChangeType
from monitoring.sources.base import (
    LC_BUILT,
    LC_TREE,
    SAR_BANDS,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_CLOUD_SHADOW,
)
from monitoring.sources.simulator import (
    GroundTruthEvent,
    Scenario,
    ScenarioEvent,
    SimulatorSource,
    load_scenario,
)
from monitoring.sources.simulator import source as source_module
from monitoring.sources.simulator.events import render_event, scenario_anchors
from monitoring.sources.simulator.landcover import BUILDING
from monitoring.sources.simulator.noise import gamma_grid
from monitoring.sources.simulator.optical import cloud_fields
from monitoring.sources.simulator.scenario import BackgroundSettings, CloudSettings
from monitoring.sources.simulator.schedule import optical_scenes
from monitoring.sources.simulator.world import Window, World, grid_axes, world_for
from tests.sources.conformance import check_source

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SCENARIO = PROJECT_ROOT / "config" / "scenarios" / "dec-2025.yaml"
PV = (14.3931, 104.6803)  # Preah Vihear temple
CLEAR = CloudSettings(fraction=0.0)


def _aoi(lat: float, lon: float, km: float = 2.0, hid: str = "test-area") -> AOI:
    return aoi_from_hotspot(HotSpot(id=hid, name=hid, lat=lat, lon=lon, coordinates="sourced", aoi_km=km))


def _events(day: date) -> tuple[ScenarioEvent, ...]:
    """One event of each type around Preah Vihear, all on `day`."""
    lat, lon = PV
    spec = [
        ("t-burn", "burn_scar", lat - 0.005, lon - 0.003, 3.0),
        ("t-craters", "crater_field", lat + 0.004, lon - 0.005, 2.0),
        ("t-works", "earthworks", lat + 0.004, lon + 0.005, 0.8),
        ("t-houses", "structural_damage", lat - 0.001, lon + 0.004, 1.0),
    ]
    return tuple(
        ScenarioEvent(id=i, type=t, date=day, lat=la, lon=lo, size_ha=s)  # type: ignore[arg-type]
        for i, t, la, lo, s in spec
    )


@pytest.fixture(scope="module")
def aoi() -> AOI:
    return _aoi(*PV)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario(name="test", clouds=CLEAR, events=_events(date(2025, 12, 8)))


@pytest.fixture(scope="module")
def postponed() -> Scenario:
    """The same world (same strike sites) with every event moved past the test windows."""
    return Scenario(name="test", clouds=CLEAR, events=_events(date(2030, 1, 1)))


@pytest.fixture(scope="module")
def src(scenario: Scenario) -> SimulatorSource:
    return SimulatorSource(scenario, seed=2025, chunk_size=128)


# -- contract ----------------------------------------------------------------------------------------------


def test_keeps_the_source_contract(src: SimulatorSource, aoi: AOI) -> None:
    check_source(src, aoi, date(2025, 12, 1), date(2025, 12, 20))
    assert src.name == "simulator" and src.simulated is True
    opt = src.load_optical(aoi, date(2025, 12, 1), date(2025, 12, 20))
    assert opt["B04"].dims == ("time", "y", "x") and opt.odc.geobox == aoi.geobox
    assert opt["B04"].chunks is not None and set(opt["B04"].chunks[0]) == {1}
    assert max(opt["B04"].chunks[1]) == 128 and opt["SCL"].dtype == np.uint8
    sar = src.load_sar(aoi, date(2025, 12, 1), date(2025, 12, 20))
    assert sar["VV"].dtype == np.float32 and sar["valid"].dtype == bool
    assert set(np.unique(sar["orbit_direction"].values)) == {"ascending", "descending"}
    lc = src.load_landcover(aoi).values
    assert set(np.unique(lc)) <= {10, 20, 30, 40, 50, 60, 80}


def test_empty_window_gives_no_scenes(src: SimulatorSource, aoi: AOI) -> None:
    # 2025-12-04 falls between two Sentinel-2 passes (3 and 8 Dec) and between Sentinel-1 passes.
    ds = src.load_optical(aoi, date(2025, 12, 4), date(2025, 12, 4))
    assert ds.sizes["time"] == 0 and ds["B04"].shape == (0, *aoi.shape)


def test_nothing_is_rendered_at_load_time(
    src: SimulatorSource, aoi: AOI, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = source_module.render_ground

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(source_module, "render_ground", counting)
    ds = src.load_optical(aoi, date(2025, 12, 1), date(2025, 12, 20))
    assert isinstance(ds["B08"].data, da.Array) and calls == []
    ds["B08"].isel(time=0).compute()
    assert calls, "computing a scene renders its ground"


# -- determinism -------------------------------------------------------------------------------------------


def _load(source: SimulatorSource, aoi: AOI) -> xr.Dataset:
    opt = source.load_optical(aoi, date(2025, 12, 5), date(2025, 12, 15))
    sar = source.load_sar(aoi, date(2025, 12, 5), date(2025, 12, 15)).rename({"time": "time_sar"})
    sar = sar.drop_vars(["scene_id", "platform", "orbit_direction", "relative_orbit"])
    return xr.merge(
        [opt.drop_vars(["scene_id", "platform", "cloud_cover"]), sar], compat="no_conflicts"
    ).compute()


def test_same_seed_same_pixels_and_chunking_does_not_matter(scenario: Scenario) -> None:
    aoi = _aoi(*PV, km=1.5)
    a = _load(SimulatorSource(scenario, seed=7, chunk_size=512), aoi)
    b = _load(SimulatorSource(scenario, seed=7, chunk_size=64), aoi)
    c = _load(SimulatorSource(scenario, seed=8, chunk_size=512), aoi)
    xr.testing.assert_identical(a, b)
    assert not np.array_equal(a["B08"].values, c["B08"].values)
    assert not np.array_equal(a["VV"].values, c["VV"].values)


def test_multilooked_as_rendered_whatever_the_chunks_and_across_the_edge(scenario: Scenario) -> None:
    # Each block is rendered with a 1 px margin of the world and multilooked: blocks of 64 or 512 px give the
    # same pixels, and the area's edge pixels are the inner pixels of an area 1 px larger on every side.
    aoi = _aoi(*PV, km=1.5)
    days = (date(2025, 12, 5), date(2025, 12, 15))
    a = SimulatorSource(scenario, seed=7, chunk_size=512).load_sar(aoi, *days, multilook_px=1).compute()
    b = SimulatorSource(scenario, seed=7, chunk_size=64).load_sar(aoi, *days, multilook_px=1).compute()
    xr.testing.assert_identical(a, b)
    big = AOI(id="bigger", name="bigger", footprint=aoi.footprint, geobox=aoi.geobox.pad(1))
    raw = SimulatorSource(scenario, seed=7, chunk_size=512).load_sar(big, *days).isel(time=0).compute()
    for pol in SAR_BANDS:
        v = raw[pol].values
        whole = boxcar_mean(v, raw["valid"].values & ~np.isnan(v), 3)[1:-1, 1:-1]
        np.testing.assert_allclose(a[pol].isel(time=0).values, whole, rtol=1e-6)


def test_overlapping_aois_see_the_same_ground_and_clouds() -> None:
    src = SimulatorSource(Scenario(clouds=CloudSettings(fraction=0.5)), seed=3)
    a = aoi_from_bbox((104.660, 14.380, 104.680, 14.398))
    b = aoi_from_bbox((104.670, 14.388, 104.690, 14.405))
    la, lb = xr.align(src.load_landcover(a), src.load_landcover(b), join="inner")
    assert la.size > 5000
    np.testing.assert_array_equal(la.values, lb.values)
    window = (date(2025, 12, 1), date(2025, 12, 10))
    oa, ob = (src.load_optical(x, *window)["B04"] for x in (a, b))
    oa, ob = xr.align(oa, ob, join="inner")
    np.testing.assert_array_equal(oa.values, ob.values)


# -- sensors -----------------------------------------------------------------------------------------------

S2_ID = re.compile(r"^S2[ABC]_MSIL2A_\d{8}T\d{6}_N\d{4}_R\d{3}_T\d{2}[A-Z]{3}_\d{8}T\d{6}$")
S1_ID = re.compile(r"^S1[AC]_IW_GRDH_1SDV_\d{8}T\d{6}_\d{8}T\d{6}_\d{6}_[0-9A-F]{6}_[0-9A-F]{4}$")


def test_sentinel2_revisits_every_five_days_alternating_platforms(src: SimulatorSource, aoi: AOI) -> None:
    ds = src.load_optical(aoi, date(2025, 10, 1), date(2025, 12, 31))
    t = ds["time"].values
    assert np.all(np.diff(t).astype("timedelta64[D]") == np.timedelta64(5, "D"))
    plats = ds["platform"].values.tolist()
    assert set(plats) == {"sentinel-2b", "sentinel-2c"}
    assert all(p != q for p, q in zip(plats, plats[1:], strict=False))
    assert all(S2_ID.match(s) for s in ds["scene_id"].values) and "T48PVA" in ds["scene_id"].values[0]
    hours = (t - t.astype("datetime64[D]")).astype("timedelta64[m]").astype(int) / 60
    assert np.all((hours > 3) & (hours < 4)), "Sentinel-2 passes the border at ~03:30 UTC"


def test_sentinel1_six_day_repeat_per_orbit_with_1a_and_1c(src: SimulatorSource, aoi: AOI) -> None:
    ds = src.load_sar(aoi, date(2025, 9, 1), date(2025, 12, 31))
    assert all(S1_ID.match(s) for s in ds["scene_id"].values)
    assert set(ds["platform"].values.tolist()) == {"sentinel-1a", "sentinel-1c"}
    orbits = {}
    for orbit in np.unique(ds["relative_orbit"].values):
        sub = ds.sel(time=ds["relative_orbit"] == orbit)
        days = sub["time"].values.astype("datetime64[D]")
        assert np.all(np.diff(days) == np.timedelta64(6, "D"))
        orbits[int(orbit)] = set(sub["orbit_direction"].values.tolist())
    assert len(orbits) == 2 and sorted(next(iter(v)) for v in orbits.values()) == ["ascending", "descending"]
    # Before Sentinel-1C flew, each orbit was seen every 12 days.
    early = src.load_sar(aoi, date(2025, 1, 1), date(2025, 3, 31))
    one = early.sel(time=early["relative_orbit"] == early["relative_orbit"].values[0])
    assert np.all(np.diff(one["time"].values.astype("datetime64[D]")) == np.timedelta64(12, "D"))


def test_december_is_far_less_cloudy_than_august() -> None:
    world = World(2025, 32648)
    aoi = _aoi(*PV, km=2.0)
    win = Window(*grid_axes(aoi.geobox))
    cover: dict[int, list[float]] = {8: [], 12: []}
    pixels: dict[int, list[float]] = {8: [], 12: []}
    for year in (2023, 2024, 2025):
        for month in (8, 12):
            start = date(year, month, 1)
            for s in optical_scenes(
                PV[1], PV[0], start, start + timedelta(days=30), seed=2025, clouds=CloudSettings()
            ):
                cover[month].append(s.cloud_fraction)
                alpha, _shadow, _cirrus = cloud_fields(world, win, s)
                pixels[month].append(float((alpha >= 0.5).mean()))
    assert np.mean(cover[8]) > 3 * np.mean(cover[12])
    assert np.mean(pixels[8]) > 2 * np.mean(pixels[12])
    assert 0.6 < np.mean(cover[8]) < 0.9 and np.mean(cover[12]) < 0.25


def test_scl_flags_most_cloud_but_misses_thin_edges_and_some_shadow() -> None:
    aoi = _aoi(13.65, 102.567, km=3.0)
    src = SimulatorSource(Scenario(clouds=CloudSettings(fraction=0.4)), seed=11)
    ds = src.load_optical(aoi, date(2025, 12, 1), date(2025, 12, 31)).compute()
    world = world_for(aoi.geobox, 11)
    win = Window(*grid_axes(aoi.geobox))
    scenes = optical_scenes(
        102.567, 13.65, date(2025, 12, 1), date(2025, 12, 31), seed=11, clouds=src.scenario.clouds
    )
    thick = thick_flagged = thin = thin_flagged = shade = shade_flagged = 0
    for t, scene in enumerate(scenes):
        alpha, shadow, cirrus = cloud_fields(world, win, scene)
        scl = ds["SCL"].isel(time=t).values
        cloudy = np.isin(scl, (SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH))
        thick += int((alpha >= 0.5).sum())
        thick_flagged += int(cloudy[alpha >= 0.5].sum())
        edge = (alpha > 0) & (alpha < 0.15)
        thin += int(edge.sum())
        thin_flagged += int(cloudy[edge].sum())
        dark = (shadow > 0.3) & (alpha == 0) & (cirrus < 0.1)
        shade += int(dark.sum())
        shade_flagged += int((scl[dark] == SCL_CLOUD_SHADOW).sum())
        # Cloud is bright and flat in the visible.
        if (alpha >= 0.9).any():
            assert float(ds["B02"].isel(time=t).values[alpha >= 0.9].mean()) > 0.3
    assert thick > 10_000 and thick_flagged / thick > 0.97
    assert thin > 0 and thin_flagged == 0, "the thinnest cloud edges go unflagged, as in Sen2Cor"
    assert shade > 1000 and 0.8 < shade_flagged / shade < 0.97


def test_overcast_scenario_is_all_cloud(aoi: AOI) -> None:
    src = SimulatorSource(Scenario(clouds=CloudSettings(fraction=1.0)), seed=1)
    ds = src.load_optical(aoi, date(2025, 12, 1), date(2025, 12, 10)).compute()
    assert np.all(ds["cloud_cover"].values == 100.0)
    assert np.all(ds["SCL"].values == SCL_CLOUD_HIGH)


def test_speckle_is_gamma_with_enl_4_4() -> None:
    cols, rows = np.arange(300, dtype=np.int64), np.arange(300, dtype=np.int64)
    g = gamma_grid(123, cols, rows, 4.4)
    assert abs(g.mean() - 1) < 0.01 and abs(1 / g.var() - 4.4) < 0.15


def test_speckle_statistics_on_forest(aoi: AOI) -> None:
    """Temporal ENL on stable forest: mean^2 / variance across one orbit's scenes is ~4.4."""
    src = SimulatorSource(Scenario(), seed=5, chunk_size=512)
    ds = src.load_sar(aoi, date(2025, 8, 1), date(2025, 11, 18))
    asc = ds.sel(time=ds["orbit_direction"] == "ascending")
    assert 15 <= asc.sizes["time"] <= 20
    vv = asc["VV"].values
    lc = src.load_landcover(aoi).values
    forest = (lc == LC_TREE) & asc["valid"].values.all(axis=0)
    assert forest.mean() > 0.3
    stack = vv[:, forest]
    mean, var = stack.mean(axis=0), stack.var(axis=0, ddof=1)
    enl = float((mean**2).sum() / var.sum())
    assert 3.9 < enl < 4.9, enl
    # Speckle-free forest gamma0 is ~0.12 (-9.2 dB); the mean keeps that level.
    assert 0.09 < float(np.median(mean)) < 0.16
    ratio = stack / mean
    assert abs(float(ratio.mean()) - 1) < 0.01


# -- events and ground truth -------------------------------------------------------------------------------


def _change_mask(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ~np.isclose(a, b, rtol=0, atol=0) & ~(np.isnan(a) & np.isnan(b))


def test_events_change_pixels_only_after_their_date_and_inside_their_mask(
    src: SimulatorSource, postponed: Scenario, aoi: AOI
) -> None:
    base = SimulatorSource(postponed, seed=2025, chunk_size=128)
    truth = src.ground_truth(aoi, date(2025, 12, 31))
    assert {g.id for g in truth} == {"t-burn", "t-craters", "t-works", "t-houses"}
    inside = np.any([g.mask for g in truth], axis=0)
    window = (date(2025, 12, 1), date(2025, 12, 20))
    for load, bands in (
        (SimulatorSource.load_optical, ("B04", "B08", "B12")),
        (SimulatorSource.load_sar, ("VV", "VH")),
    ):
        after, before = load(src, aoi, *window).compute(), load(base, aoi, *window).compute()
        for t in range(after.sizes["time"]):
            day = after["time"].values[t].astype("datetime64[D]").astype(object)
            for b in bands:
                changed = _change_mask(after[b].values[t], before[b].values[t])
                if day <= date(2025, 12, 8):
                    assert not changed.any(), f"{b} changed on {day}, before the events"
                else:
                    assert changed.any() and not (changed & ~inside).any(), (
                        f"{b} changed outside the masks on {day}"
                    )


def _db(x: np.ndarray) -> np.ndarray:
    return 10 * np.log10(x)


def test_each_event_type_leaves_its_signature(src: SimulatorSource, postponed: Scenario, aoi: AOI) -> None:
    base = SimulatorSource(postponed, seed=2025, chunk_size=128)
    truth = {g.id: g.mask for g in src.ground_truth(aoi, date(2025, 12, 31))}
    day = (date(2025, 12, 13), date(2025, 12, 13))
    o1, o0 = (
        src.load_optical(aoi, *day).isel(time=0).compute(),
        base.load_optical(aoi, *day).isel(time=0).compute(),
    )

    def nbr(o: xr.Dataset) -> np.ndarray:
        return ((o.B08 - o.B12) / (o.B08 + o.B12)).values

    def ndvi(o: xr.Dataset) -> np.ndarray:
        return ((o.B08 - o.B04) / (o.B08 + o.B04)).values

    burn = truth["t-burn"]
    assert (nbr(o0) - nbr(o1))[burn].mean() > 0.4 and nbr(o1)[burn].mean() < 0.0
    works = truth["t-works"]
    assert ndvi(o1)[works].mean() < 0.3 and o1.B04.values[works].mean() > o0.B04.values[works].mean() + 0.05
    craters = truth["t-craters"]
    assert (ndvi(o0) - ndvi(o1))[craters].mean() > 0.15
    window = (date(2025, 12, 9), date(2025, 12, 31))
    s1, s0 = src.load_sar(aoi, *window).compute(), base.load_sar(aoi, *window).compute()
    houses = truth["t-houses"]
    vv_drop = _db(s0.VV.values[:, houses].mean(axis=0)) - _db(s1.VV.values[:, houses].mean(axis=0))
    assert np.median(vv_drop) > 4, "destroyed buildings lose their double bounce"
    vv_rise = _db(s1.VV.values[:, craters].mean(axis=0)) - _db(s0.VV.values[:, craters].mean(axis=0))
    assert 0.5 < np.median(vv_rise) < 4, "cratered ground is rougher"
    vh_drop = _db(s0.VH.values[:, burn].mean(axis=0)) - _db(s1.VH.values[:, burn].mean(axis=0))
    assert 0.5 < np.median(vh_drop) < 2.5


def test_ground_truth_masks_areas_and_footprints(src: SimulatorSource, aoi: AOI) -> None:
    truth = src.ground_truth(aoi, date(2025, 12, 31))
    lc = src.load_landcover(aoi).values
    for g in truth:
        assert isinstance(g, GroundTruthEvent) and isinstance(g.change_type, ChangeType)
        assert g.mask.shape == aoi.shape and g.mask.dtype == bool
        ev = next(e for e in src.scenario.events if e.id == g.id)
        assert abs(g.area_ha - ev.size_ha) <= 0.25 * ev.size_ha, (g.id, g.area_ha, ev.size_ha)
        assert g.area_ha == pytest.approx(g.mask.sum() * 0.01)
        assert g.footprint.distance(Point(ev.lon, ev.lat)) < 0.003, "footprint is in lon/lat around the event"
        if g.change_type == ChangeType.STRUCTURAL_DAMAGE:
            assert np.all(lc[g.mask] == LC_BUILT), "structural damage only on built-up pixels"
    assert src.ground_truth(aoi, date(2025, 12, 7)) == []
    far = _aoi(13.65, 102.567)
    assert src.ground_truth(far, date(2025, 12, 31)) == []


def test_harvest_is_real_change_and_farm_burning_is_background_not_truth() -> None:
    """Harvested paddy looks like stubble (NBR ~0.1, NDVI ~0.4); the optional stubble burning chars some
    fields without entering the ground truth."""
    aoi = _aoi(13.83, 102.73, km=1.5)  # Nong Chan: paddy plain
    window = (date(2025, 12, 20), date(2025, 12, 31))
    out = {}
    for share in (0.0, 0.5):
        background = BackgroundSettings(farm_burning_fraction=share)
        src = SimulatorSource(Scenario(clouds=CLEAR, background=background), seed=4)
        o = src.load_optical(aoi, *window).isel(time=-1).compute()
        paddy = src.load_landcover(aoi).values == 40
        out[share] = ((o.B08 - o.B12) / (o.B08 + o.B12)).values[paddy]
        ndvi = ((o.B08 - o.B04) / (o.B08 + o.B04)).values[paddy]
        assert src.ground_truth(aoi, date(2025, 12, 31)) == []
    assert 0.0 < float(np.median(out[0.0])) < 0.15 and 0.3 < float(np.median(ndvi)) < 0.5
    assert (out[0.0] < -0.05).mean() == 0 and (out[0.5] < -0.05).mean() > 0.02


# -- scenario files ----------------------------------------------------------------------------------------

GOOD_EVENT = "{id: ok-1, type: burn_scar, date: 2025-12-08, lat: 14.39, lon: 104.68, size_ha: 2}"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ("{id: bad-1, type: burn_scar, date: 2025-12-08, lat: 14.39, lon: 104.68, size_ha: -2}", "size_ha"),
        ("{id: bad-1, type: artillery, date: 2025-12-08, lat: 14.39, lon: 104.68, size_ha: 2}", "type"),
        ("{id: bad-1, type: burn_scar, date: 2025-13-08, lat: 14.39, lon: 104.68, size_ha: 2}", "date"),
        ("{id: bad-1, type: burn_scar, date: 2025-12-08, lat: 14.39, lon: 104.68}", "size_ha"),
        (
            "{id: bad-1, type: burn_scar, date: 2025-12-08, lat: 14.39, lon: 104.68, size_ha: 2, hue: red}",
            "hue",
        ),
        ("{id: ok-1, type: crater_field, date: 2025-12-09, lat: 14.39, lon: 104.68, size_ha: 1}", "id"),
    ],
)
def test_bad_scenario_is_one_line_naming_event_and_field(tmp_path: Path, event: str, field: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nevents:\n  - {GOOD_EVENT}\n  - {event}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_scenario(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and f"field '{field}'" in msg
    assert re.search(r"event '(bad-1|ok-1)' \(entry 2\)", msg) and "run again" in msg


def test_unreadable_scenario_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_scenario(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("events: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_scenario(tmp_path / "broken.yaml")
    # The usual slip: an unquoted description with ': ' in it. The error says where.
    (tmp_path / "colon.yaml").write_text(
        "name: x\nevents:\n  - id: a\n    description: one strike: not repeated\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"colon\.yaml: not valid YAML at line 4, column \d+ .*quote") as e:
        load_scenario(tmp_path / "colon.yaml")
    assert "\n" not in str(e.value)


# -- the default scenario ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default() -> Scenario:
    return load_scenario(DEFAULT_SCENARIO)


def test_default_scenario_plays_the_december_escalation(default: Scenario) -> None:
    events = default.events
    assert 25 <= len(events) <= 35
    assert {e.type for e in events} == {"burn_scar", "crater_field", "structural_damage", "earthworks"}
    assert all(date(2025, 12, 7) <= e.date <= date(2025, 12, 19) for e in events)
    sizes = np.array([e.size_ha for e in events])
    assert sizes.min() >= 0.3 and sizes.max() <= 12 and np.mean((sizes >= 0.5) & (sizes <= 5)) > 0.6
    assert (sizes < 0.5).sum() >= 2
    assert all(e.description and e.hotspot for e in events)
    assert default.background.farm_burning_fraction == 0
    assert "not a record of real damage" in DEFAULT_SCENARIO.read_text(encoding="utf-8").lower()


def test_default_events_sit_inside_their_hot_spots(default: Scenario) -> None:
    hotspots = {h.id: h for h in load_hotspots(PROJECT_ROOT / "config" / "hotspots.yaml")}
    used = {e.hotspot for e in default.events}
    assert used <= set(hotspots)
    quiet = set(hotspots) - used
    assert 2 <= len(quiet) <= 3
    src = SimulatorSource(default, seed=2025)
    for hid, h in hotspots.items():
        aoi = aoi_from_hotspot(h)
        truth = src.ground_truth(aoi, date(2025, 12, 31))
        if hid in quiet:
            assert truth == [], f"quiet hot spot {hid} has events"
            continue
        own = {e.id for e in default.events if e.hotspot == hid}
        found = {g.id: g for g in truth}
        assert own <= set(found), f"{hid}: events outside the AOI: {own - set(found)}"
        for i in own:
            m = found[i].mask
            rows, cols = np.nonzero(m)
            assert rows.min() > 0 and cols.min() > 0, f"{i} touches the edge of {hid}'s AOI"
            assert rows.max() < m.shape[0] - 1 and cols.max() < m.shape[1] - 1, (
                f"{i} touches the edge of {hid}'s AOI"
            )


def test_default_events_have_their_size_and_strikes_hit_buildings(default: Scenario) -> None:
    world = World(2025, 32648)
    anchors = scenario_anchors(world, default)
    for ev in default.events:
        er = render_event(world, ev, anchors)
        area = er.mask.sum() * 0.01
        assert abs(area - ev.size_ha) <= 0.25 * ev.size_ha, (ev.id, area, ev.size_ha)
        if ev.type == "structural_damage":
            assert np.all(er.land[er.mask] == BUILDING), ev.id


@pytest.mark.parametrize(
    "path", sorted((PROJECT_ROOT / "config" / "scenarios").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_shipped_scenario_loads_and_places_its_events_in_their_hot_spots(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name == path.stem
    assert "not a record of real damage" in path.read_text(encoding="utf-8").lower()
    hotspots = {h.id: h for h in load_hotspots(PROJECT_ROOT / "config" / "hotspots.yaml")}
    assert {e.hotspot for e in scenario.events} <= set(hotspots)
    src = SimulatorSource(scenario, seed=2025)
    for hid in sorted({e.hotspot for e in scenario.events}):
        found = {g.id for g in src.ground_truth(aoi_from_hotspot(hotspots[hid]), date(2026, 12, 31))}
        own = {e.id for e in scenario.events if e.hotspot == hid}
        assert own <= found, f"{path.name}: {hid}: events outside the area: {sorted(own - found)}"
