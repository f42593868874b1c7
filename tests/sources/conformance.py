"""The source conformance suite: the same checks for every imagery source (simulator, Sentinel Hub, CDSE, STAC,
local). A source's test module calls `check_source(source, aoi, start, end)` with its own fixtures."""

from __future__ import annotations

from datetime import date

import numpy as np
import xarray as xr

from monitoring.aoi import AOI
from monitoring.preprocess.multilook import boxcar_mean
from monitoring.sources.base import (
    OPTICAL_BANDS,
    OPTICAL_CLOUD_PROBABILITY,
    SAR_BANDS,
    SUN_TIME_COORDS,
    ImagerySource,
    check_optical,
    check_sar,
)


def _is_lazy(ds: xr.Dataset) -> bool:
    return all(v.chunks is not None for v in ds.data_vars.values())


def check_optical_source(
    source: ImagerySource, aoi: AOI, start: date, end: date, *, expect_scenes: bool = True
) -> xr.Dataset:
    ds = check_optical(source.load_optical(aoi, start, end), aoi, start, end)
    assert _is_lazy(ds), "optical data must be dask-backed until the pipeline's compute"
    if expect_scenes:
        assert ds.sizes["time"] > 0, "expected at least one scene in the window"
    if ds.sizes["time"]:
        sample = ds.isel(time=0).compute()
        for b in OPTICAL_BANDS:
            v = sample[b].values
            finite = v[np.isfinite(v)]
            assert finite.size, f"band {b} is all no-data"
            assert finite.min() >= -0.2 and finite.max() <= 2.0, (
                f"band {b} is not reflectance 0-1 ({finite.min()}..{finite.max()})"
            )
        scl = sample["SCL"].values
        assert scl.dtype == np.uint8 and scl.max() <= 11
        assert all(str(s) for s in ds["scene_id"].values), "every scene needs an id"
        cc = ds["cloud_cover"].values.astype(float)
        cc = cc[np.isfinite(cc)]  # NaN = unknown (a local image without SCL or sidecar value)
        assert np.all((cc >= 0) & (cc <= 100)), "cloud_cover is a percentage"
        for name, scale in OPTICAL_CLOUD_PROBABILITY.items():  # optional
            if name in ds.data_vars:
                p = sample[name].values
                assert p.dtype == np.float32, f"{name} is float32 (NaN = no probability)"
                assert np.all((p[np.isfinite(p)] >= 0) & (p[np.isfinite(p)] <= scale)), (
                    f"{name} is 0-{scale:g}"
                )
    present = [c for c in SUN_TIME_COORDS if c in ds.coords]
    if present:  # optional, but both or neither, per time, in degrees
        assert present == list(SUN_TIME_COORDS), f"sun angles come in pairs {SUN_TIME_COORDS}, got {present}"
        az, zen = ds["sun_azimuth"], ds["sun_zenith"]
        assert az.dims == zen.dims == ("time",), "sun angles are per-time coordinates"
        assert np.all((az.values >= 0) & (az.values < 360)), "sun_azimuth is degrees clockwise from north"
        assert np.all((zen.values >= 0) & (zen.values < 90)), "sun_zenith is degrees from the vertical"
    return ds


def check_sar_source(
    source: ImagerySource, aoi: AOI, start: date, end: date, *, expect_scenes: bool = True
) -> xr.Dataset:
    ds = check_sar(source.load_sar(aoi, start, end), aoi, start, end)
    assert _is_lazy(ds), "SAR data must be dask-backed until the pipeline's compute"
    if expect_scenes:
        assert ds.sizes["time"] > 0, "expected at least one scene in the window"
    if ds.sizes["time"]:
        sample = ds.isel(time=0).compute()
        for b in SAR_BANDS:
            v = sample[b].values
            finite = v[np.isfinite(v)]
            assert finite.size and finite.min() >= 0 and np.median(finite) < 2.0, f"{b} is not linear gamma0"
        assert sample["valid"].dtype == bool
        assert set(ds["orbit_direction"].values.tolist()) <= {"ascending", "descending"}
        assert np.issubdtype(ds["relative_orbit"].dtype, np.integer)
    return ds


def check_sar_multilook(source: ImagerySource, aoi: AOI, start: date, end: date) -> None:
    """load_sar(..., multilook_px=1) gives the same scenes, multilooked as read: inside the area exactly the
    multilook of the plain load (monitoring.preprocess.multilook); on its edge it also uses the pixels beyond."""
    raw = check_sar(source.load_sar(aoi, start, end), aoi, start, end)
    ml = check_sar(source.load_sar(aoi, start, end, multilook_px=1), aoi, start, end)
    assert _is_lazy(ml) and ml.attrs["multilook_px"] == 1 and raw.attrs.get("multilook_px", 0) == 0
    assert np.array_equal(ml["time"].values, raw["time"].values)
    assert list(ml["scene_id"].values) == list(raw["scene_id"].values)
    if not raw.sizes["time"]:
        return
    a, b = raw.isel(time=0).compute(), ml.isel(time=0).compute()
    np.testing.assert_array_equal(b["valid"].values, a["valid"].values)
    for pol in SAR_BANDS:
        v = a[pol].values
        expected = boxcar_mean(v, a["valid"].values & ~np.isnan(v), 3)
        np.testing.assert_allclose(b[pol].values[1:-1, 1:-1], expected[1:-1, 1:-1], rtol=1e-6, equal_nan=True)
        assert np.isfinite(b[pol].values).any(), f"multilooked {pol} is all no-data"


def check_source(source: ImagerySource, aoi: AOI, start: date, end: date, *, sar: bool = True) -> None:
    """Every check of the contract in monitoring.sources.base, on one window."""
    assert isinstance(source, ImagerySource)
    assert isinstance(source.name, str) and isinstance(source.simulated, bool)
    check_optical_source(source, aoi, start, end)
    if sar:
        check_sar_source(source, aoi, start, end)
        check_sar_multilook(source, aoi, start, end)
    lc = source.load_landcover(aoi)
    if lc is not None:
        assert lc.odc.geobox == aoi.geobox and lc.dtype == np.uint8
