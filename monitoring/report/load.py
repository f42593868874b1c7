"""Report: read a run folder's per-area results and image chips back from disk."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from monitoring.errors import ReportError
from monitoring.results import HotspotResult, area_dir


@dataclass(frozen=True)
class Chips:
    """True-colour chips of one area on its grid (row 0 = north edge of result.bounds)."""

    before_rgb: np.ndarray
    """uint8 H x W x 3, already stretched for display."""
    after_rgb: np.ndarray
    """uint8 H x W x 3, already stretched for display."""
    unobserved: np.ndarray
    """bool H x W: no sensor saw this pixel clear in the after window."""


def sort_results(results: list[HotspotResult]) -> list[HotspotResult]:
    """Briefing order: priority 1 first, then by id so that every run lists areas the same way."""
    return sorted(results, key=lambda r: (r.priority, r.area_id))


def load_results(run_dir: Path | str) -> list[HotspotResult]:
    """Every areas/<id>/result.json of a run, sorted by priority then id."""
    run_dir = Path(run_dir)
    areas = run_dir / "areas"
    if not areas.is_dir():
        raise ReportError(
            f"{areas}: no areas folder, so there is nothing to report; run the analysis for {run_dir} first."
        )
    results: list[HotspotResult] = []
    for path in sorted(areas.glob("*/result.json")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ReportError(f"{path}: cannot be read ({e}); re-run the analysis for this area.") from e
        try:
            result = HotspotResult.model_validate_json(text)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(file)"
            raise ReportError(
                f"{path}: not a valid area result (field '{where}': {first['msg']}); "
                "re-run the analysis for this area or delete its folder."
            ) from e
        if result.area_id != path.parent.name:
            raise ReportError(
                f"{path}: holds area {result.area_id!r} but lies in the folder of {path.parent.name!r}; "
                "move it to the matching folder or re-run the analysis."
            )
        results.append(result)
    return sort_results(results)


def chips_path(run_dir: Path, result: HotspotResult) -> Path | None:
    return area_dir(run_dir, result.area_id) / result.chips if result.chips else None


def load_chips(path: Path) -> Chips:
    """Read chips.npz and check that its three arrays fit together."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = {"before_rgb", "after_rgb", "unobserved"} - set(npz.files)
            if missing:
                raise ReportError(
                    f"{path}: lacks the arrays {sorted(missing)}; the chips file must hold before_rgb, "
                    "after_rgb and unobserved. Re-run the analysis for this area."
                )
            before, after, unobserved = npz["before_rgb"], npz["after_rgb"], npz["unobserved"]
    except ReportError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ReportError(f"{path}: cannot be read as .npz ({e}); re-run the analysis for this area.") from e
    for label, arr in (("before_rgb", before), ("after_rgb", after)):
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ReportError(f"{path}: {label} has shape {arr.shape}, expected H x W x 3.")
    if before.shape != after.shape or unobserved.shape != after.shape[:2]:
        raise ReportError(
            f"{path}: chip shapes disagree (before {before.shape}, after {after.shape}, "
            f"unobserved {unobserved.shape}); all must share one H x W grid."
        )
    return Chips(
        before_rgb=_as_uint8(before),
        after_rgb=_as_uint8(after),
        unobserved=np.asarray(unobserved, dtype=bool),
    )


def _as_uint8(a: np.ndarray) -> np.ndarray:
    # Chips should be uint8 already; floats in 0..1 are accepted so a caller's slip does not blank the map.
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.floating):
        return (np.clip(np.nan_to_num(a), 0.0, 1.0) * 255).round().astype(np.uint8)
    return np.clip(a, 0, 255).astype(np.uint8)
