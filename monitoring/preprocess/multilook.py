"""Preprocess: multilook Sentinel-1 backscatter, a boxcar mean over the valid pixels around each pixel.

Sources apply it as they read each tile (ImagerySource.load_sar(..., multilook_px=...)), on the tile read with
a margin of multilook_px pixels, so that no tile needs its neighbours: dask's map_overlap, which a multilook
over a chunked stack needs otherwise, keeps every tile's whole stack in memory until its neighbours are done
(dask issue 3671). Measured on a 400 km² area with 102 scenes: the radar detection peaked at 6.2 GB with
map_overlap and 2.5 GB without it (benchmarks/scale.py has the whole-area figures).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import numpy as np
from scipy import ndimage

from monitoring.sources.base import SAR_BANDS

MULTILOOK_PX = 1
"""Radius of the multilook: 3x3 pixels, which cuts speckle from ENL ~4.4 to ~40 (PWTT's 30 m look)."""
MIN_WEIGHT = 0.34
"""A multilooked pixel needs valid data over more than a third of its window (3 of 9 pixels at 3x3)."""


def boxcar_mean(values: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """Mean over a size x size window in the last two axes of the valid (weights) values; NaN where valid
    data covers no more than MIN_WEIGHT of the window. Edges repeat the outermost pixels."""
    window = (1,) * (values.ndim - 2) + (size, size)
    # float32 is plenty for a 3x3 mean of backscatter and halves the memory traffic.
    num = ndimage.uniform_filter(
        np.where(weights, values, 0.0).astype("float32"), size=window, mode="nearest"
    )
    den = ndimage.uniform_filter(weights.astype("float32"), size=window, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    return np.where(den > MIN_WEIGHT, out, np.nan).astype("float32")


def multilook_tile(bands: Mapping[str, np.ndarray], radius: int) -> dict[str, np.ndarray]:
    """VV and VH of one scene's tile (y, x) multilooked over (2 radius + 1)^2 pixels, counting only pixels that
    are valid (not layover, shadow or no data) and not NaN; `valid` and any other band are kept as read."""
    out = dict(bands)
    if radius <= 0:
        return out
    for pol in SAR_BANDS:
        v = np.asarray(bands[pol])
        out[pol] = boxcar_mean(v, np.asarray(bands["valid"], bool) & ~np.isnan(v), 2 * radius + 1)
    return out


def read_margin(radius: int) -> tuple[int, partial[dict[str, np.ndarray]] | None]:
    """What a source reading tiles needs for a multilook of `radius` px: the margin to read around each tile
    and the work on it (monitoring.sources.cache.lazy_scenes's halo and finish); (0, None) for none."""
    return (radius, partial(multilook_tile, radius=radius)) if radius > 0 else (0, None)
