"""End to end: the daily flow on small AOIs of the default scenario, checked against its ground truth."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pyogrio
import pytest
import yaml
from pypdf import PdfReader
from shapely.geometry import shape

from monitoring.aoi import aoi_from_hotspot
from monitoring.config import load_hotspots, load_settings, resolve_config_path
from monitoring.evaluate import score_area
from monitoring.results import HotspotResult
from monitoring.sources.simulator import SimulatorSource, load_scenario

RUN_DATE = "2025-12-22"
# Three hot spots whose events cover all four change types, on 2.5 km squares (events lie within ~1 km).
AREAS = ["chong-an-ma", "nong-chan", "preah-vihear"]
AOI_KM = 2.5


@pytest.fixture
def small_config(config_copy: Path) -> Path:
    data = yaml.safe_load((config_copy / "hotspots.yaml").read_text())
    keep = []
    for h in data["hotspots"]:
        if h["id"] in AREAS:
            h["aoi_km"] = max(AOI_KM, 2 * h.get("uncertainty_km", 0))
            keep.append(h)
    (config_copy / "hotspots.yaml").write_text(yaml.safe_dump({"hotspots": keep}, allow_unicode=True))
    return config_copy


@pytest.mark.slow
def test_daily_flow_finds_the_scenario_events(
    prefect_server: None, small_config: Path, tmp_path: Path
) -> None:
    from flows.daily import daily_monitoring

    run_dir = Path(daily_monitoring(run_date=RUN_DATE, out_dir=str(tmp_path / "out")))
    assert run_dir.name == RUN_DATE

    # GeoJSON: RFC 7946 (WGS84 lon/lat, no crs member, CCW exterior rings), stamped SIMULATED.
    raw = json.loads((run_dir / "briefing.geojson").read_text())
    assert raw["type"] == "FeatureCollection" and "crs" not in raw and raw["simulated"] is True
    for f in raw["features"]:
        assert f["properties"]["simulated"] is True
        geom = shape(f["geometry"])
        assert (
            -180 <= geom.bounds[0] <= geom.bounds[2] <= 180 and -90 <= geom.bounds[1] <= geom.bounds[3] <= 90
        )
        if f["properties"]["feature_type"] == "fire_detection":
            assert geom.geom_type == "Point"
            continue
        for poly in getattr(geom, "geoms", [geom]):
            assert poly.exterior.is_ccw
    gdf = pyogrio.read_dataframe(run_dir / "briefing.geojson")
    assert gdf.crs.to_epsg() == 4326
    observed = gdf[gdf["feature_type"] == "observation"]
    assert sorted(observed["hotspot_id"]) == sorted(AREAS)

    # Every injected event of at least 0.5 ha is found with the right type; nothing large is invented.
    settings = load_settings()
    source = SimulatorSource(
        load_scenario(resolve_config_path(settings.simulator.scenario)), seed=settings.simulator.seed
    )
    hotspots = {h.id: h for h in load_hotspots()}
    n_events = 0
    for area in AREAS:
        result = HotspotResult.model_validate_json((run_dir / "areas" / area / "result.json").read_text())
        assert result.status == "ok", result.error
        aoi = aoi_from_hotspot(hotspots[area])
        truth = source.ground_truth(aoi, date.fromisoformat(RUN_DATE))
        score = score_area(result.alerts, truth, aoi.geobox, min_event_ha=0.5)
        for ctype, s in score.by_type.items():
            assert not s.missed, f"{area}: {ctype.value} events missed: {s.missed}"
            n_events += s.events
        assert not score.wrong_type, f"{area}: alerts of the wrong type: {[a.id for a in score.wrong_type]}"
        assert max((a.area_ha for a in score.false_alerts), default=0.0) < 1.0, f"{area}: a large false alert"
        for a in result.alerts:
            assert a.first_observed >= a.last_clear_before if a.last_clear_before else True
    assert n_events >= 6

    # The PDF: a cover and a page per hot spot, SIMULATED on every page.
    pdf = PdfReader(run_dir / "briefing.pdf")
    assert len(pdf.pages) == 1 + len(AREAS)
    for page in pdf.pages:
        assert "SIMULATED" in page.extract_text()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["simulated"] is True and sorted(manifest["areas"]) == sorted(AREAS)
