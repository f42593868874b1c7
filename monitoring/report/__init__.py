"""Report: turn a run folder's area results into the briefing (GeoJSON for analysts, PDF for delegations)."""

from __future__ import annotations

from monitoring.report.briefing import write_briefing
from monitoring.report.geojson import write_geojson
from monitoring.report.load import load_results
from monitoring.report.manifest import write_manifest
from monitoring.report.pdf import write_pdf

__all__ = ["load_results", "write_briefing", "write_geojson", "write_manifest", "write_pdf"]
