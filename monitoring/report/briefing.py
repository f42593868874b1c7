"""Report: write a run's whole briefing (GeoJSON, PDF, manifest) into its run folder, all or nothing."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from monitoring.errors import ReportError
from monitoring.report.geojson import write_geojson
from monitoring.report.load import load_results
from monitoring.report.manifest import installed_versions, write_manifest
from monitoring.report.pdf import write_pdf
from monitoring.report.text import DEFAULT_TITLE, observation_status
from monitoring.results import RunManifest

GEOJSON_NAME = "briefing.geojson"
PDF_NAME = "briefing.pdf"
MANIFEST_NAME = "manifest.json"


def write_briefing(
    run_dir: Path | str,
    *,
    run_date: date,
    kind: Literal["daily", "area-check"],
    source: str,
    simulated: bool,
    settings: dict[str, Any],
    scenario: str | None,
    versions: dict[str, str] | None = None,
    title: str = DEFAULT_TITLE,
) -> dict[str, Path]:
    """Load the run's area results and write briefing.geojson, briefing.pdf and manifest.json into run_dir.

    All three are rendered into a staging folder inside run_dir first and moved into place only when all
    succeeded, so a failure leaves the previous briefing (if any) untouched; the manifest is moved last.
    """
    run_dir = Path(run_dir)
    results = load_results(run_dir)
    if not results:
        raise ReportError(
            f"{run_dir / 'areas'}: holds no area results (areas/<id>/result.json); "
            "run the analysis before writing the briefing."
        )
    simulated = simulated or any(r.simulated for r in results)
    names = {"geojson": GEOJSON_NAME, "pdf": PDF_NAME, "manifest": MANIFEST_NAME}
    try:
        staging = Path(tempfile.mkdtemp(prefix=".briefing-", dir=run_dir))
    except OSError as e:
        raise ReportError(
            f"{run_dir}: cannot write there ({e.strerror}); check the folder's permissions."
        ) from e
    try:
        write_geojson(results, staging / GEOJSON_NAME, run_date=run_date, source=source, simulated=simulated)
        write_pdf(
            results,
            staging / PDF_NAME,
            run_date=run_date,
            source=source,
            simulated=simulated,
            title=title,
            kind=kind,
            run_dir=run_dir,
        )
        manifest = RunManifest(
            run_date=run_date,
            kind=kind,
            created=datetime.now(UTC),
            source=source,
            simulated=simulated,
            settings=settings,
            scenario=scenario,
            areas=[r.area_id for r in results],
            failed=[r.area_id for r in results if observation_status(r) == "failed"],
            versions=versions if versions is not None else installed_versions(),
            scene_ids={r.area_id: list(r.scene_ids) for r in results},
            outputs=[GEOJSON_NAME, PDF_NAME, MANIFEST_NAME],
        )
        write_manifest(staging / MANIFEST_NAME, manifest)
        out: dict[str, Path] = {}
        for key, name in names.items():  # dict order puts the manifest last: it marks a complete briefing
            os.replace(staging / name, run_dir / name)
            out[key] = run_dir / name
        return out
    except OSError as e:
        raise ReportError(
            f"{run_dir}: the briefing could not be moved into place ({e}); re-run the report."
        ) from e
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
