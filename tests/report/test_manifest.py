"""Tests of the report stage's manifest.json: it round-trips and records versions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from monitoring.report import write_manifest
from monitoring.report.manifest import installed_versions
from monitoring.results import RunManifest


def test_manifest_round_trips(tmp_path: Path) -> None:
    manifest = RunManifest(
        run_date=date(2025, 12, 22),
        kind="daily",
        created=datetime(2025, 12, 22, 6, 5, tzinfo=UTC),
        source="simulator",
        simulated=True,
        settings={"windows": {"after_days": 16}, "thresholds": {"dnbr": 0.27}},
        scenario="scenarios/dec-2025.yaml",
        areas=["preah-vihear", "poipet"],
        failed=["poipet"],
        versions={"borderwatch": "0.1.0"},
        scene_ids={"preah-vihear": ["S2B_MSIL2A_20251210"], "poipet": []},
        outputs=["briefing.geojson", "briefing.pdf", "manifest.json"],
    )
    path = write_manifest(tmp_path / "manifest.json", manifest)
    assert path == tmp_path / "manifest.json"
    assert RunManifest.model_validate_json(path.read_text(encoding="utf-8")) == manifest
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"], "no temporary file may be left behind"


def test_installed_versions_names_the_key_libraries() -> None:
    v = installed_versions()
    for name in ("python", "borderwatch", "numpy", "reportlab", "matplotlib", "shapely"):
        assert v[name] and v[name] != "not installed"
    assert installed_versions(("surely-not-a-package-xyz",))["surely-not-a-package-xyz"] == "not installed"
