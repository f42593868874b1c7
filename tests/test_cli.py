"""Tests for the command line: help everywhere, the hot spot table, one-line errors, exit 2 on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from monitoring.cli import Source, app, summary_line
from monitoring.config import SourceName, load_hotspots
from monitoring.results import HotspotResult

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "hotspots"),
        (["run"], "--hotspot"),
        (["check"], "--bbox"),
        (["hotspots"], "--details"),
        (["report"], "RUN_DIR"),
        (["serve"], "Asia/Bangkok"),
    ],
)
def test_help_everywhere(args: list[str], expected: str) -> None:
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout and expected in result.stdout


def test_no_command_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "Usage" in result.output


def test_source_choices_match_settings() -> None:
    from typing import get_args

    assert [s.value for s in Source] == list(get_args(SourceName))


def test_hotspots_lists_all_16() -> None:
    result = runner.invoke(app, ["hotspots"])
    assert result.exit_code == 0, result.output
    for h in load_hotspots():
        assert h.id in result.stdout
    assert "16 hot spots; config OK" in result.stdout


def _assert_one_line_error(result_stderr: str, *parts: str) -> None:
    lines = result_stderr.strip().splitlines()
    assert len(lines) == 1, result_stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result_stderr
    for part in parts:
        assert part in lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["hotspots"],
        ["run", "--date", "2025-12-22"],
        [
            "check",
            "--hotspot",
            "poipet",
            "--before",
            "2025-11-01..2025-12-06",
            "--after",
            "2025-12-07..2025-12-22",
        ],
    ],
    ids=["hotspots", "run", "check"],
)
def test_bad_config_exit_2_one_line_nothing_written(
    config_copy: Path, tmp_path: Path, args: list[str]
) -> None:
    data = yaml.safe_load((config_copy / "hotspots.yaml").read_text(encoding="utf-8"))
    data["hotspots"][0]["lat"] = 95.0
    (config_copy / "hotspots.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(app, [*args, "--out", str(out)] if args[0] != "hotspots" else args)
    assert result.exit_code == 2
    _assert_one_line_error(result.stderr, "hotspots.yaml", "preah-vihear", "'lat'")
    assert not out.exists()


CHECK = ["check", "--before", "2025-11-01..2025-12-06", "--after", "2025-12-07..2025-12-22"]


@pytest.mark.parametrize(
    ("args", "parts"),
    [
        ([*CHECK, "--bbox", "104.66,14.38,104.70"], ["--bbox", "four numbers"]),
        ([*CHECK, "--bbox", "a,b,c,d"], ["four numbers"]),
        ([*CHECK, "--bbox", "104.70,14.38,104.66,14.41"], ["min < max"]),
        ([*CHECK, "--bbox", "100,10,106,15"], ["larger than"]),
        ([*CHECK], ["exactly one area"]),
        ([*CHECK, "--hotspot", "poipet", "--bbox", "104.66,14.38,104.70,14.41"], ["exactly one area"]),
        ([*CHECK, "--hotspot", "atlantis"], ["unknown hot spot 'atlantis'"]),
        ([*CHECK, "--geojson", "/nonexistent/area.geojson"], ["not found"]),
        (
            ["check", "--hotspot", "poipet", "--before", "2025-12-01", "--after", "2025-12-07..2025-12-22"],
            ["--before", "START..END"],
        ),
        (
            [
                "check",
                "--hotspot",
                "poipet",
                "--before",
                "2025-11-01..2025-12-10",
                "--after",
                "2025-12-07..2025-12-22",
            ],
            ["overlaps"],
        ),
        (
            [
                "check",
                "--hotspot",
                "poipet",
                "--before",
                "2025-11-01..6 Dec",
                "--after",
                "2025-12-07..2025-12-22",
            ],
            ["--before end", "YYYY-MM-DD"],
        ),
        (["run", "--date", "22/12/2025"], ["--date", "YYYY-MM-DD"]),
        (["run", "--date", "2099-01-01"], ["--date 2099-01-01 is after today"]),
        (
            [
                "check",
                "--hotspot",
                "poipet",
                "--before",
                "2098-11-01..2098-12-31",
                "--after",
                "2099-01-01..2099-01-16",
            ],
            ["--after window end 2099-01-16 is after today"],
        ),
        (
            [
                "check",
                "--hotspot",
                "poipet",
                "--before",
                "2025-10-01..2025-12-06",
                "--after",
                "2025-12-07..2099-01-16",
            ],
            ["--after window end 2099-01-16 is after today", "give a date up to"],
        ),
        (["run", "--hotspot", "atlantis"], ["unknown hot spot 'atlantis'"]),
        (["report", "/nonexistent/run"], ["no such run folder"]),
        (["report", "out/2025-12-22", "--date", "2025-12-22"], ["not both"]),
    ],
)
def test_bad_input_exit_2_one_line(tmp_path: Path, args: list[str], parts: list[str]) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    _assert_one_line_error(result.stderr, *parts)
    assert not out.exists()


@pytest.mark.parametrize("command", [["run", "--date", "2025-12-22"], [*CHECK, "--hotspot", "poipet"]])
def test_an_output_folder_under_a_file_exit_2_nothing_written(tmp_path: Path, command: list[str]) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where the output folder would go\n")
    result = runner.invoke(app, [*command, "--out", str(blocker / "out")])
    assert result.exit_code == 2, result.output
    _assert_one_line_error(result.stderr, "--out", "notes.txt is a file, not a folder")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_unknown_source_is_a_usage_error() -> None:
    result = runner.invoke(app, ["run", "--source", "drone"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_summary_line() -> None:
    base = {
        "name": "x",
        "footprint": {},
        "crs": "EPSG:32648",
        "bounds": (0, 0, 1, 1),
        "windows": {
            "before": ("2025-11-01", "2025-12-06"),
            "after": ("2025-12-07", "2025-12-22"),
            "sar_before": ("2025-09-08", "2025-12-06"),
        },
        "source": "simulator",
        "simulated": True,
    }
    results = [
        HotspotResult(area_id="a", status="ok", **base),  # type: ignore[arg-type]
        HotspotResult(area_id="b", status="failed", error="SourceError: down", **base),  # type: ignore[arg-type]
    ]
    line = summary_line(results)
    assert line == "2 area(s); alerts: none; not observed: none; partly observed: none; failed: b [SIMULATED]"
