"""Preprocess: cloud masks, spectral indices and composites (pure functions on numpy- or dask-backed xarray)."""

from monitoring.preprocess.cloudmask import clear_mask, mask_clouds
from monitoring.preprocess.composite import composite, latest_clear, nanmedian_time
from monitoring.preprocess.indices import add_indices, nbr, ndvi

__all__ = [
    "add_indices",
    "clear_mask",
    "composite",
    "latest_clear",
    "mask_clouds",
    "nanmedian_time",
    "nbr",
    "ndvi",
]
