"""Orchestration: the briefing flow — rebuild the PDF, GeoJSON and manifest of a past run from its results."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypedDict

from prefect import flow

from flows.daily import run_settings, write_briefing
from monitoring.config import parse_date
from monitoring.errors import ConfigError

_RUN_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:-(.+))?$")


Kind = Literal["daily", "area-check"]


class RunInfo(TypedDict):
    kind: Kind
    run_date: date
    source_name: str
    simulated: bool
    settings: dict[str, Any]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read as JSON ({e}).") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object.")
    return data


def _kind(value: object, path: Path) -> Kind:
    if value == "daily" or value == "area-check":
        return value
    raise ConfigError(
        f"{path}: kind {value!r} is neither 'daily' nor 'area-check'; fix it or delete the file."
    )


def run_info(run_dir: Path) -> RunInfo:
    """What a past run was: from its manifest.json if there is one, else from its folder name and results."""
    results = sorted(run_dir.glob("areas/*/result.json"))
    if not results:
        raise ConfigError(
            f"{run_dir}: no areas/*/result.json here; give a run folder such as out/2025-12-22 "
            "or out/checks/2025-12-22-<area>."
        )
    manifest_path = run_dir / "manifest.json"
    if manifest_path.exists():
        m = _read_json(manifest_path)
        try:
            return RunInfo(
                kind=_kind(m["kind"], manifest_path),
                run_date=parse_date(str(m["run_date"]), what=f"{manifest_path} run_date"),
                source_name=str(m["source"]),
                simulated=bool(m["simulated"]),
                settings=dict(m.get("settings") or run_settings().model_dump(mode="json")),
            )
        except KeyError as e:
            raise ConfigError(
                f"{manifest_path}: field {e.args[0]!r} is missing; delete the file to rebuild "
                "from the folder name."
            ) from e
    match = _RUN_NAME.match(run_dir.name)
    if not match:
        raise ConfigError(
            f"{run_dir}: no manifest.json and the folder name is not YYYY-MM-DD[-<area>], so the run date is "
            "unknown; rename the folder or restore its manifest.json."
        )
    first = _read_json(results[0])
    source_name = str(first.get("source", "unknown"))
    return RunInfo(
        # Area checks live in <out>/checks/<date>-<area id>; daily runs in <out>/<date>.
        kind="area-check" if match.group(2) or run_dir.parent.name == "checks" else "daily",
        run_date=parse_date(match.group(1), what=f"{run_dir} date"),
        source_name=source_name,
        simulated=bool(first.get("simulated", True)),
        settings=run_settings().model_dump(mode="json"),
    )


@flow(name="briefing")
def briefing(run_dir: str) -> dict[str, str]:
    """Rebuild briefing.pdf, briefing.geojson and manifest.json of a past run from its areas/*/result.json.

    Returns the written files by kind. The settings recorded in the old manifest are kept; without a manifest
    the current settings are recorded.
    """
    info = run_info(Path(run_dir))
    return write_briefing(
        run_dir, info["run_date"], info["kind"], info["source_name"], info["simulated"], info["settings"]
    )
