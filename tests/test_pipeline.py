"""Pipeline: one area analysed end to end on the simulator (detection, fusion, vectorising, the season test,
the optical test's p-values)."""

from __future__ import annotations

import dataclasses
import os
import stat
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box, shape

from monitoring import pipeline
from monitoring.aoi import aoi_from_hotspot, windows_for
from monitoring.config import hotspot_by_id, load_hotspots, load_settings, resolve_config_path
from monitoring.errors import AOIError, OutputError
from monitoring.evaluate import score_area
from monitoring.pipeline import analyse_area, record_failure, save_result
from monitoring.results import ChangeType, HotspotResult, area_dir
from monitoring.sources.simulator import SimulatorSource, load_scenario
from monitoring.sources.simulator.scenario import CloudSettings


@pytest.mark.slow
def test_fires_on_the_areas_cropland_set_its_few_field_burns_aside(tmp_path: Path) -> None:
    # February at Kantharalak in the farm-burning scenario: farmers burn stubble on most days, but the after
    # window shows only two fields that burnt in it, fewer than farm_burning_min_fields. The area's active
    # fires on cropland say the season is under way, so those two are set aside; the conflict burn (off
    # cropland) and the struck homes stay alerts.
    settings = load_settings()
    scenario = load_scenario(resolve_config_path("scenarios/farm-burning.yaml"))
    source = SimulatorSource(scenario, seed=settings.simulator.seed)
    aoi = aoi_from_hotspot(hotspot_by_id(load_hotspots(), "kantharalak"))
    run_date = date(2026, 2, 20)
    result = analyse_area(
        aoi, windows_for(run_date, settings.windows), source=source, settings=settings, run_dir=tmp_path
    )
    th = settings.thresholds
    assert result.status == "ok" and result.cropland_fires is not None
    assert result.cropland_fires >= th.farm_burning_min_fires
    assert 0 < len(result.seasonal_burns) < th.farm_burning_min_fields
    assert all(a.seasonal and a.change_type is ChangeType.BURN_SCAR for a in result.seasonal_burns)
    assert not any(a.seasonal for a in result.alerts)
    score = score_area(
        result.alerts, source.ground_truth(aoi, run_date), aoi.geobox, set_aside=result.seasonal_burns
    )
    assert not score.false_alerts and not score.events_set_aside
    assert {t.value for t in score.by_type} >= {"burn_scar", "structural_damage"}
    assert all(s.found == s.events for s in score.by_type.values())
    # Every alert optics saw cites the optical test's p-value (the struck homes changed plainly); the burn that
    # only radar and VIIRS saw under cloud cites none.
    for a in result.alerts + result.seasonal_burns:
        assert (a.optical_p_value is not None) == ("sentinel-2" in a.sensors)
    seen = [a.optical_p_value for a in result.alerts if a.optical_p_value is not None]
    assert seen and max(seen) < 1e-6


def test_an_area_too_large_for_the_memory_budget_is_refused_before_anything_is_computed_or_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings().model_copy(update={"memory_limit_gb": 0.5})
    source = SimulatorSource(load_scenario(resolve_config_path(settings.simulator.scenario)))
    aoi = aoi_from_hotspot(hotspot_by_id(load_hotspots(), "preah-vihear"))
    computed: list[object] = []
    monkeypatch.setattr("monitoring.pipeline.dask.compute", lambda *a, **k: computed.append(a))
    with pytest.raises(
        AOIError, match=r"^area 'preah-vihear' needs about 0\.\d GB of memory .* 0\.5 GB is available"
    ):
        analyse_area(
            aoi,
            windows_for(date(2025, 12, 22), settings.windows),
            source=source,
            settings=settings,
            run_dir=tmp_path,
        )
    assert not computed and not any(tmp_path.iterdir())


def test_an_areas_result_is_written_with_the_usual_mode_or_fails_naming_its_path(tmp_path: Path) -> None:
    aoi = aoi_from_hotspot(hotspot_by_id(load_hotspots(), "preah-vihear"))
    windows = windows_for(date(2025, 12, 22), load_settings().windows)
    error = RuntimeError("lost")
    result = record_failure(aoi, windows, source_name="sim", simulated=True, run_dir=tmp_path, error=error)
    written = area_dir(tmp_path, aoi.id) / "result.json"
    assert HotspotResult.model_validate_json(written.read_text(encoding="utf-8")) == result
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(written.stat().st_mode) == 0o666 & ~umask  # shared outputs, not owner-only
    blocked = tmp_path / "blocked"
    blocked.write_text("", encoding="utf-8")
    with pytest.raises(OutputError, match=r"blocked/areas/preah-vihear: cannot write in the output folder"):
        save_result(result, blocked)


def test_the_optical_and_radar_layers_are_computed_apart_and_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings()
    source = SimulatorSource(load_scenario(resolve_config_path(settings.simulator.scenario)))
    spot = hotspot_by_id(load_hotspots(), "chong-chom")
    aoi = aoi_from_hotspot(spot.model_copy(update={"aoi_km": 2.0}))
    graphs: list[set[str]] = []
    real = pipeline._compute

    def spy(layers: dict[str, Any]) -> dict[str, np.ndarray]:
        keys = (k for v in layers.values() for k in dict(getattr(v, "data", v).__dask_graph__() or {}))
        graphs.append({str(k[0] if isinstance(k, tuple) else k) for k in keys})
        return real(layers)

    monkeypatch.setattr(pipeline, "_compute", spy)
    result = analyse_area(
        aoi,
        windows_for(date(2025, 12, 22), settings.windows),
        source=source,
        settings=settings,
        run_dir=tmp_path,
    )
    assert result.status == "ok" and result.alerts
    optical, radar = graphs
    assert any(k.startswith("sim-s2-") for k in optical) and not any(k.startswith("sim-s1") for k in optical)
    # The radar compute reads radar scenes only: the optical masks it fuses with are the first compute's.
    assert any(k.startswith("sim-s1") for k in radar) and not any(k.startswith("sim-s2-") for k in radar)
    assert any(k.startswith("worldcover") for k in optical) and not any(
        k.startswith("worldcover") for k in radar
    )


def test_a_drawn_area_reports_its_own_pixels_only(tmp_path: Path) -> None:
    # Chong Chom on 22 Dec 2025 asked for as the west half of its square (same grid): the struck compounds
    # east of the line are not alerts of that area, the one west of it is, and nothing crosses the line.
    settings = load_settings()
    source = SimulatorSource(load_scenario(resolve_config_path(settings.simulator.scenario)))
    square = aoi_from_hotspot(hotspot_by_id(load_hotspots(), "chong-chom"))
    w, s, e, n = square.footprint.bounds
    mid = (w + e) / 2
    half = dataclasses.replace(square, footprint=box(w, s, mid, n))
    windows = windows_for(date(2025, 12, 22), settings.windows)
    runs = {
        aoi.footprint.bounds: analyse_area(
            aoi, windows, source=source, settings=settings, run_dir=tmp_path / k
        )
        for k, aoi in (("square", square), ("half", half))
    }
    whole, west = runs[square.footprint.bounds], runs[half.footprint.bounds]
    to_utm = Transformer.from_crs("EPSG:4326", str(square.crs), always_xy=True).transform
    area = shapely.ops.transform(to_utm, half.footprint)

    def utm(a: Any) -> Any:
        return shapely.ops.transform(to_utm, shape(a.geometry))

    assert any(not utm(a).intersects(area) for a in whole.alerts)  # there is something east of the line
    # A pixel belongs to the area by its centre: an outline may pass the line by half a pixel, no more.
    assert west.alerts and all(utm(a).difference(area.buffer(5.01)).is_empty for a in west.alerts)
    inner = [a for a in whole.alerts if area.buffer(-50).contains(utm(a))]
    assert inner and sorted((a.change_type, a.area_ha) for a in inner) == sorted(
        (a.change_type, a.area_ha) for a in west.alerts if area.buffer(-50).contains(utm(a))
    )
    # Coverage is the share of the area's own pixels; the chips hatch nothing outside it.
    assert west.coverage is not None and west.coverage.optical_observed_fraction == 1.0
    chips = np.load(area_dir(tmp_path / "half", half.id) / "chips.npz")
    assert not chips["unobserved"].any()


def test_what_neither_sensor_saw_is_outlined_and_adds_up_to_the_coverage(tmp_path: Path) -> None:
    # 70% of every Sentinel-2 scene clouded: some of the area never had a clear look in the after window.
    settings = load_settings()
    scenario = load_scenario(resolve_config_path(settings.simulator.scenario))
    cloudy = scenario.model_copy(update={"clouds": CloudSettings(fraction=0.7)})
    spot = hotspot_by_id(load_hotspots(), "chong-chom")
    aoi = aoi_from_hotspot(spot.model_copy(update={"aoi_km": 2.0}))
    result = analyse_area(
        aoi,
        windows_for(date(2025, 12, 22), settings.windows),
        source=SimulatorSource(cloudy, seed=settings.simulator.seed),
        settings=settings,
        run_dir=tmp_path,
    )
    cov = result.coverage
    assert cov is not None and 0 < cov.optical_observed_fraction < 1
    gaps = {tuple(g.not_seen_by): g for g in result.gaps}
    optical_gap = sum(g.area_ha for s, g in gaps.items() if "sentinel-2" in s)
    assert optical_gap == pytest.approx((1 - cov.optical_observed_fraction) * aoi.area_km2 * 100, abs=0.03)
    neither = gaps.get(("sentinel-1", "sentinel-2"))
    assert (neither.area_ha if neither else 0.0) == pytest.approx(
        cov.not_observed_fraction * aoi.area_km2 * 100, abs=0.02
    )
