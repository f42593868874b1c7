from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from monitoring.cli import app
from tests.test_oscd import make_oscd

runner = CliRunner()


def test_evaluate_oscd_prints_and_writes_pooled_figures(tmp_path: Path) -> None:
    make_oscd(tmp_path / "oscd")
    out = tmp_path / "oscd.json"
    res = runner.invoke(app, ["evaluate", "oscd", str(tmp_path / "oscd"), "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert set(data["pooled"]) >= {"precision", "recall", "f1", "iou"}
    assert set(data["cities"]) == {"alpha", "beta"}
    assert "pooled" in res.output
    # The fixture's smooth scene with one big change gives no trustworthy shift: reported as not measured.
    assert data["cities"]["alpha"]["misregistration_px"] is None and data["coregister"] is False
    assert "not measured" in res.output


def test_evaluate_oscd_bad_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["evaluate", "oscd", str(tmp_path / "nope")])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and "not a folder" in res.output


def test_evaluate_scenario_reports_per_type_figures(tmp_path: Path) -> None:
    out = tmp_path / "scenario.json"
    res = runner.invoke(
        app,
        [
            "evaluate",
            "scenario",
            "config/scenarios/dec-2025.yaml",
            "--hotspot",
            "chong-an-ma",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert set(data["by_type"]) == {"crater_field", "structural_damage", "earthworks"}
    for figures in data["by_type"].values():
        assert figures["recall"] == 1.0 and figures["precision"] == 1.0
    assert data["false_alerts_per_100km2"] is not None


@pytest.mark.parametrize("command", ["oscd", "scenario"])
def test_evaluate_refuses_an_unwritable_json_before_evaluating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    import monitoring.evaluate
    import monitoring.oscd

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluated although --json could not be written")

    monkeypatch.setattr(monitoring.oscd, "evaluate_oscd", never)
    monkeypatch.setattr(monitoring.evaluate, "evaluate_scenario", never)
    make_oscd(tmp_path / "oscd")
    (tmp_path / "notes.txt").write_text("a file where the JSON's folder would go\n")
    target = str(tmp_path / "oscd") if command == "oscd" else "config/scenarios/dec-2025.yaml"
    for json_path, expected in (
        (tmp_path / "notes.txt" / "figures.json", "notes.txt is a file, not a folder"),
        (tmp_path, "is a folder; give a file name"),
    ):
        res = runner.invoke(app, ["evaluate", command, target, "--json", str(json_path)])
        assert res.exit_code == 2, res.output
        assert res.stderr.strip().count("\n") == 0 and "--json" in res.stderr and expected in res.stderr
