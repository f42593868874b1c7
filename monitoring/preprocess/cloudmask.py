"""Preprocess: clear-sky masks from the Sentinel-2 scene classification (SCL), dilated against missed edges."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import ndimage

from monitoring.sources.base import (
    OPTICAL_BANDS,
    SCL_CIRRUS,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_CLOUD_SHADOW,
    SCL_DARK,
    SCL_NO_DATA,
    SCL_SATURATED,
    SCL_SNOW,
)

CLOUDY_SCL = (SCL_CLOUD_SHADOW, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS)
"""Classes grown by the dilation: SCL misses the thin edges of clouds and their shadows."""
INVALID_SCL = (SCL_NO_DATA, SCL_SATURATED, SCL_DARK, SCL_SNOW)
"""Classes dropped as they are (dark areas are mostly terrain shadow here; no snow on the border)."""


def _dilate_2d(block: np.ndarray, radius: int) -> np.ndarray:
    """Dilate a (time, y, x) boolean block in y/x only, by a disk of the given radius."""
    if radius <= 0:
        return block
    yy, xx = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    disk = (xx**2 + yy**2) <= radius**2
    return ndimage.binary_dilation(block, structure=disk[None, :, :])


def clear_mask(ds: xr.Dataset, *, dilate_px: int = 2) -> xr.DataArray:
    """True where a pixel is clear: not cloud, cirrus, shadow, no data; cloud/shadow grown by dilate_px pixels."""
    scl = ds["SCL"]
    cloudy = scl.isin(CLOUDY_SCL)
    if dilate_px > 0:
        if cloudy.chunks is not None:
            data = cloudy.data.map_overlap(
                _dilate_2d,
                depth={0: 0, 1: dilate_px, 2: dilate_px},
                boundary="none",
                radius=dilate_px,
                dtype=bool,
            )
            cloudy = cloudy.copy(data=data)
        else:
            cloudy = cloudy.copy(data=_dilate_2d(cloudy.values, dilate_px))
    valid = ~scl.isin(INVALID_SCL)
    for b in OPTICAL_BANDS:
        valid = valid & ds[b].notnull()
    return (valid & ~cloudy).rename("clear")


def mask_clouds(ds: xr.Dataset, *, dilate_px: int = 2) -> xr.Dataset:
    """The optical bands with every unclear pixel set to NaN, plus the boolean `clear` layer."""
    clear = clear_mask(ds, dilate_px=dilate_px)
    out = xr.Dataset({b: ds[b].where(clear) for b in OPTICAL_BANDS}, attrs=ds.attrs)
    out["clear"] = clear
    return out
