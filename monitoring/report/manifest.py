"""Report: manifest.json, the record of what went into a run so that it can be checked and repeated."""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

from monitoring.atomic import write_text_atomic
from monitoring.results import RunManifest

VERSIONED = (
    "borderwatch",
    "numpy",
    "scipy",
    "xarray",
    "dask",
    "rasterio",
    "odc-geo",
    "odc-stac",
    "pystac-client",
    "prefect",
    "sentinelhub",
    "shapely",
    "pyproj",
    "geopandas",
    "pyogrio",
    "matplotlib",
    "reportlab",
    "pydantic",
    "pillow",
)


def installed_versions(packages: tuple[str, ...] = VERSIONED) -> dict[str, str]:
    """Versions of Python and the libraries that shape the numbers; 'not installed' where one is missing."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_manifest(path: Path | str, manifest: RunManifest) -> Path:
    """Write manifest.json atomically; read it back with RunManifest.model_validate_json."""
    return write_text_atomic(Path(path), manifest.model_dump_json(indent=2) + "\n")
