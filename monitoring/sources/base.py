"""Fetch: the one contract every imagery source keeps (simulator, Sentinel Hub, CDSE, STAC, local files)."""

from __future__ import annotations

from datetime import date
from typing import Protocol, runtime_checkable

import numpy as np
import xarray as xr

from monitoring.aoi import AOI
from monitoring.errors import SourceError

OPTICAL_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08", "B11", "B12")
"""Sentinel-2 L2A bands every optical source delivers, as surface reflectance 0-1 (float32, NaN = no data)."""
SAR_BANDS: tuple[str, ...] = ("VV", "VH")
"""Sentinel-1 GRD polarisations, as linear terrain-flattened backscatter gamma0 (float32, NaN = no data)."""

# Sentinel-2 L2A scene classification (SCL) codes.
SCL_NO_DATA = 0
SCL_SATURATED = 1
SCL_DARK = 2
SCL_CLOUD_SHADOW = 3
SCL_VEGETATION = 4
SCL_NOT_VEGETATED = 5
SCL_WATER = 6
SCL_UNCLASSIFIED = 7
SCL_CLOUD_MEDIUM = 8
SCL_CLOUD_HIGH = 9
SCL_CIRRUS = 10
SCL_SNOW = 11

# ESA WorldCover classes, the land-cover vocabulary sources speak.
LC_TREE = 10
LC_SHRUB = 20
LC_GRASS = 30
LC_CROP = 40
LC_BUILT = 50
LC_BARE = 60
LC_WATER = 80

OPTICAL_TIME_COORDS = ("scene_id", "platform", "cloud_cover")
OPTICAL_CLOUD_PROBABILITY: dict[str, float] = {"cloud_prob": 1.0, "CLP": 255.0}
"""Optional optical variables: a ready cloud probability (float32, NaN = unknown) and its full scale: Sentinel
Hub's CLP (s2cloudless at 160 m, 0-255) or a 0-1 `cloud_prob`. Where one is given, preprocess.clear_mask uses
it (and its shadow projection) instead of SCL alone."""
SUN_TIME_COORDS = ("sun_azimuth", "sun_zenith")
"""Optional per-time optical coordinates: the sun at sensing (degrees; azimuth clockwise from north, zenith from
the vertical), for the cloud-shadow test. Without them preprocess.shadow.sun_angles assumes a Sentinel-2
overpass at the image's latitude, a few degrees off the real sun."""
SAR_TIME_COORDS = ("scene_id", "platform", "orbit_direction", "relative_orbit")


@runtime_checkable
class ImagerySource(Protocol):
    """What the pipeline needs from a source. Every method returns lazy (dask-backed) data on aoi.geobox.

    load_optical: Dataset with dims (time, y, x); variables OPTICAL_BANDS (float32 reflectance) and SCL
      (uint8); per-time coords scene_id (str), platform (str), cloud_cover (float, %; NaN = unknown). One scene per solar day.
      Optional: a cloud probability variable (OPTICAL_CLOUD_PROBABILITY: Sentinel Hub gives CLP) and per-time
      coords sun_azimuth, sun_zenith (SUN_TIME_COORDS: Sentinel Hub and STAC give them).
    load_sar: Dataset with dims (time, y, x); variables VV, VH (float32 linear gamma0) and valid (bool: False in
      layover, radar shadow or no data); per-time coords scene_id, platform, orbit_direction ('ascending' or
      'descending'), relative_orbit (int). One scene per solar day per relative orbit. multilook_px > 0: VV and
      VH multilooked over (2 multilook_px + 1)^2 valid pixels as each tile is read with that margin
      (monitoring.preprocess.multilook), attrs["multilook_px"] says which.
    load_landcover: DataArray (y, x) of ESA WorldCover codes (uint8), or None where the source has none.
    Times are sorted, in UTC, and fall within [start, end] inclusive.
    """

    name: str
    simulated: bool

    def load_optical(self, aoi: AOI, start: date, end: date) -> xr.Dataset: ...

    def load_sar(self, aoi: AOI, start: date, end: date, *, multilook_px: int = 0) -> xr.Dataset: ...

    def load_landcover(self, aoi: AOI) -> xr.DataArray | None: ...


def _check_grid(ds: xr.Dataset | xr.DataArray, aoi: AOI, what: str) -> None:
    gb = ds.odc.geobox
    if gb is None or gb != aoi.geobox:
        raise SourceError(
            f"{what} for {aoi.id!r} is not on the AOI grid ({gb!r} != {aoi.geobox!r}); "
            "a source must load onto aoi.geobox (odc-geo), never its own grid."
        )


def _check_times(
    ds: xr.Dataset, aoi: AOI, what: str, coords: tuple[str, ...], start: date, end: date
) -> None:
    for c in coords:
        if c not in ds.coords or ds[c].dims != ("time",):
            raise SourceError(f"{what} for {aoi.id!r} lacks the per-time coordinate {c!r}.")
    t = ds["time"].values
    if t.size:
        if not np.all(t[1:] >= t[:-1]):
            raise SourceError(f"{what} for {aoi.id!r}: times are not sorted.")
        days = t.astype("datetime64[D]")
        if days.min() < np.datetime64(start) or days.max() > np.datetime64(end):
            raise SourceError(f"{what} for {aoi.id!r}: scenes outside the requested window {start}..{end}.")


def check_optical(ds: xr.Dataset, aoi: AOI, start: date, end: date) -> xr.Dataset:
    """Raise SourceError unless ds keeps the optical contract; returns ds for chaining."""
    what = "optical imagery"
    missing = [b for b in (*OPTICAL_BANDS, "SCL") if b not in ds.data_vars]
    if missing:
        raise SourceError(f"{what} for {aoi.id!r} lacks variables {missing}.")
    _check_grid(ds, aoi, what)
    _check_times(ds, aoi, what, OPTICAL_TIME_COORDS, start, end)
    # One scene per solar day: duplicates would be counted twice as independent observations.
    days = ds["time"].values.astype("datetime64[D]")
    if len(np.unique(days)) != len(days):
        raise SourceError(f"{what} for {aoi.id!r}: more than one scene on a day; group by solar day.")
    for b in OPTICAL_BANDS:
        if ds[b].dtype != np.float32:
            raise SourceError(
                f"{what} for {aoi.id!r}: band {b} is {ds[b].dtype}, expected float32 reflectance."
            )
    return ds


def check_sar(ds: xr.Dataset, aoi: AOI, start: date, end: date) -> xr.Dataset:
    """Raise SourceError unless ds keeps the SAR contract; returns ds for chaining."""
    what = "SAR imagery"
    missing = [b for b in (*SAR_BANDS, "valid") if b not in ds.data_vars]
    if missing:
        raise SourceError(f"{what} for {aoi.id!r} lacks variables {missing}.")
    _check_grid(ds, aoi, what)
    _check_times(ds, aoi, what, SAR_TIME_COORDS, start, end)
    keys = list(
        zip(
            ds["time"].values.astype("datetime64[D]").tolist(),
            ds["relative_orbit"].values.tolist(),
            strict=True,
        )
    )
    if len(set(keys)) != len(keys):
        raise SourceError(f"{what} for {aoi.id!r}: more than one scene per day and relative orbit.")
    return ds
