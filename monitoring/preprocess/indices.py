"""Preprocess: spectral indices used by the detectors (NBR, NDVI, BSI)."""

from __future__ import annotations

import xarray as xr


def _norm_diff(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    s = a + b
    return ((a - b) / s.where(s != 0)).astype("float32")


def nbr(ds: xr.Dataset) -> xr.DataArray:
    """Normalised burn ratio (B08 - B12) / (B08 + B12): char lowers NIR and raises SWIR."""
    return _norm_diff(ds["B08"], ds["B12"]).rename("NBR")


def ndvi(ds: xr.Dataset) -> xr.DataArray:
    """Normalised difference vegetation index (B08 - B04) / (B08 + B04)."""
    return _norm_diff(ds["B08"], ds["B04"]).rename("NDVI")


def bsi(ds: xr.Dataset) -> xr.DataArray:
    """Bare soil index ((B11 + B04) - (B08 + B02)) / ((B11 + B04) + (B08 + B02))."""
    return _norm_diff(ds["B11"] + ds["B04"], ds["B08"] + ds["B02"]).rename("BSI")


def add_indices(ds: xr.Dataset) -> xr.Dataset:
    """ds with NBR, NDVI and BSI added."""
    return ds.assign(NBR=nbr(ds), NDVI=ndvi(ds), BSI=bsi(ds))
