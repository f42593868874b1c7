"""Small synthetic imagery for unit tests: a few dates of Sentinel-2 / Sentinel-1 on a tiny AOI grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from odc.geo.xr import xr_coords

from monitoring.aoi import AOI, aoi_from_bbox
from monitoring.sources.base import OPTICAL_BANDS, SCL_VEGETATION

FOREST = {"B02": 0.02, "B03": 0.045, "B04": 0.025, "B08": 0.30, "B11": 0.15, "B12": 0.07}
CHAR = {"B02": 0.03, "B03": 0.04, "B04": 0.045, "B08": 0.11, "B11": 0.18, "B12": 0.16}
SOIL = {"B02": 0.10, "B03": 0.14, "B04": 0.20, "B08": 0.26, "B11": 0.33, "B12": 0.26}
MATURE_RICE = {"B02": 0.03, "B03": 0.06, "B04": 0.04, "B08": 0.33, "B11": 0.18, "B12": 0.09}
STUBBLE = {"B02": 0.06, "B03": 0.08, "B04": 0.09, "B08": 0.23, "B11": 0.26, "B12": 0.18}


def tiny_aoi(size_px: int = 64) -> AOI:
    deg = size_px * 10 / 111_000
    return aoi_from_bbox((104.0, 14.0, 104.0 + deg, 14.0 + deg), aoi_id="test")


def optical_stack(
    aoi: AOI,
    dates: list[str],
    cover: dict[str, float],
    *,
    seed: int = 0,
    noise: float = 0.004,
) -> xr.Dataset:
    """A (time, y, x) optical dataset with every pixel set to `cover` plus sensor noise; SCL = vegetation."""
    rng = np.random.default_rng(seed)
    ny, nx = aoi.shape
    coords = xr_coords(aoi.geobox)
    t = pd.to_datetime(dates) + pd.Timedelta(hours=3, minutes=30)
    data = {}
    for b in OPTICAL_BANDS:
        v = cover[b] + rng.normal(0, noise, (len(dates), ny, nx))
        data[b] = (("time", "y", "x"), v.astype("float32"))
    data["SCL"] = (("time", "y", "x"), np.full((len(dates), ny, nx), SCL_VEGETATION, "uint8"))
    ds = xr.Dataset(data, coords={**coords, "time": t})
    return ds.assign_coords(
        scene_id=("time", [f"S2X_TEST_{d}" for d in dates]),
        platform=("time", ["sentinel-2b"] * len(dates)),
        cloud_cover=("time", [0.0] * len(dates)),
    )


def paint(ds: xr.Dataset, t: int, sl: tuple[slice, slice], cover: dict[str, float]) -> None:
    """Overwrite pixels sl of date index t with a cover (in place, numpy-backed)."""
    for b in OPTICAL_BANDS:
        ds[b].values[t][sl] = cover[b]


def sar_stack(
    aoi: AOI,
    dates: list[str],
    *,
    vv: float = 0.12,
    vh: float = 0.03,
    enl: float = 4.4,
    seed: int = 0,
    orbit: int = 26,
    direction: str = "ascending",
) -> xr.Dataset:
    """A (time, y, x) SAR dataset of one relative orbit with gamma speckle of the given ENL."""
    rng = np.random.default_rng(seed)
    ny, nx = aoi.shape
    n = len(dates)
    sp = rng.gamma(enl, 1 / enl, (2, n, ny, nx)).astype("float32")
    t = pd.to_datetime(dates) + pd.Timedelta(hours=11, minutes=10)
    ds = xr.Dataset(
        {
            "VV": (("time", "y", "x"), vv * sp[0]),
            "VH": (("time", "y", "x"), vh * sp[1]),
            "valid": (("time", "y", "x"), np.ones((n, ny, nx), bool)),
        },
        coords={**xr_coords(aoi.geobox), "time": t},
    )
    return ds.assign_coords(
        scene_id=("time", [f"S1A_TEST_{d}_{orbit}" for d in dates]),
        platform=("time", ["sentinel-1a"] * n),
        orbit_direction=("time", [direction] * n),
        relative_orbit=("time", [orbit] * n),
    )


def maybe_dask(ds: xr.Dataset, use_dask: bool, chunk: int = 32) -> xr.Dataset:
    return ds.chunk({"time": 1, "y": chunk, "x": chunk}) if use_dask else ds
