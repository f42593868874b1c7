"""Pipeline resources: the memory one area's compute needs, and a refusal, before it starts, when it won't fit."""

from __future__ import annotations

import os
from pathlib import Path

from monitoring.errors import AOIError

BASE_BYTES = 0.5e9
"""Python, numba, GDAL and the libraries loaded, before any pixel (measured: 0.42-0.49 GB)."""
SAR_BYTES_PER_SCENE_PX = 17.0
"""Peak bytes per pixel per Sentinel-1 scene in the radar compute, the optical layers' results held beside it.
Up to about 100 km² that compute holds every tile's stack (alone, benchmarks/scale.py --part radar: 11.5-12.4
bytes per pixel per scene on 1 Mpx with 102 scenes, and the whole area peaks at 1.99-2.09 GB there); beyond, it
streams the tiles and grows more slowly (alone: 5.1-5.5 on 4 Mpx, 4.9-5.0 on 9 Mpx), so the model errs on the
safe side there."""
OPTICAL_BYTES_PER_SCENE_PX = 56.0
"""Peak bytes per pixel per Sentinel-2 scene in the optical compute (six bands, SCL, masks and indices): measured
alone (benchmarks/scale.py --part optical) 39-48 / 46-48 / 49-54 on 1 / 4 / 9 Mpx with 15 scenes. It holds the
masked stack (README, Limits), so it grows with the area; with a short radar baseline it is the larger of the two
computes."""
HEADROOM = 0.85
"""Share of the available memory an area may plan to use: the estimate is a fit, and the OS needs some."""
PIXEL_KM2 = 1e-4
"""One 10 m pixel."""


def peak_bytes(pixels: int, sar_scenes: int, optical_scenes: int) -> float:
    """The peak memory one area's analysis is expected to reach (bytes): that of the larger of its two computes
    (monitoring.pipeline.analyse_area: optical, then radar), each linear in pixels x scenes.

    Against benchmarks/scale.py (102 Sentinel-1 and 15 Sentinel-2 scenes): 9 / 100 / 400 / 900 km² measured
    0.54-0.55 / 1.99-2.09 / 3.6-4.0 / 7.9-8.4 GB, modelled 0.66 / 2.25 / 7.4 / 16.1. With --part optical (no
    radar scenes): 100 / 400 / 900 km² measured 1.0-1.2 / 3.2-3.3 / 7.0-7.7 GB, modelled 1.3 / 3.9 / 8.1.
    """
    return BASE_BYTES + pixels * max(_per_px(sar_scenes, optical_scenes))


def _per_px(sar_scenes: int, optical_scenes: int) -> tuple[float, float]:
    """Bytes per pixel of the radar compute and of the optical compute."""
    return SAR_BYTES_PER_SCENE_PX * sar_scenes, OPTICAL_BYTES_PER_SCENE_PX * optical_scenes


def _cgroup_free(root: Path) -> int | None:
    try:
        limit = (root / "memory.max").read_text().strip()
        used = int((root / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(int(limit) - used, 0)


def available_bytes(
    meminfo: Path = Path("/proc/meminfo"), cgroup: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """Memory this process can still take: MemAvailable, or a container's (cgroup v2) limit if lower; None when
    neither can be read (then nothing is refused)."""
    free: list[int] = []
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    if not free and hasattr(os, "sysconf"):
        try:
            free.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
        except (OSError, ValueError):
            pass
    group = _cgroup_free(cgroup)
    if group is not None:
        free.append(group)
    return min(free) if free else None


def check_fits(
    area_id: str, pixels: int, *, sar_scenes: int, optical_scenes: int, limit_gb: float | None = None
) -> None:
    """Refuse an area whose compute would not fit in memory (AOIError), before it starts, instead of letting the
    operating system kill the run half-way. limit_gb: the budget (settings.memory_limit_gb); None: HEADROOM of
    what this machine has available now."""
    if limit_gb is not None:
        budget = limit_gb * 1e9
    else:
        free = available_bytes()
        if free is None:
            return
        budget = HEADROOM * free
    need = peak_bytes(pixels, sar_scenes, optical_scenes)
    if need <= budget:
        return
    per_px = (need - BASE_BYTES) / max(pixels, 1)
    radar, optical = _per_px(sar_scenes, optical_scenes)
    # The larger compute sets the peak: fewer of its scenes is what helps.
    shorten = (
        "windows.sar_baseline_days"
        if radar >= optical
        else "the optical baseline (check's --before; windows.before_days for daily runs)"
    )
    fits_km2 = max(budget - BASE_BYTES, 0.0) / per_px * PIXEL_KM2 if per_px > 0 else 0.0
    raise AOIError(
        f"area {area_id!r} needs about {need / 1e9:.1f} GB of memory ({pixels / 1e6:.1f} Mpx with "
        f"{sar_scenes} Sentinel-1 and {optical_scenes} Sentinel-2 scenes) but {budget / 1e9:.1f} GB is "
        f"available; split it into areas of at most about {fits_km2:.0f} km², or shorten "
        f"{shorten}; memory_limit_gb in settings.yaml sets the budget."
    )
