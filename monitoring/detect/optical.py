"""Detect: optical change from Sentinel-2 — burn scars (dNBR), soil exposure (earthworks, craters), CVA."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import xarray as xr

from monitoring.config import ThresholdSettings
from monitoring.detect.result import Detection
from monitoring.results import ChangeType
from monitoring.sources.base import LC_CROP, OPTICAL_BANDS

SENSOR = "sentinel-2"
NIR_DROP_BURN = 0.04
"""Char lowers NIR reflectance; harvest and haze barely do. Burnt forest drops by ~0.15 (Key & Benson 2006)."""
SWIR_RISE_SOIL = 0.03
"""Fresh soil raises SWIR-1 (B11) well above vegetation; a missed thin cloud raises it far less than blue."""
CVA_MIN = 0.08
"""Change-vector magnitude over six bands that counts as optical change (several times the sensor noise)."""


def _time_index(ds: xr.Dataset) -> xr.DataArray:
    return xr.DataArray(np.arange(ds.sizes["time"], dtype="int32"), dims="time")


def _timeline(flags: xr.DataArray, clear: xr.DataArray) -> dict[str, xr.DataArray]:
    """Per-pixel history of a per-date flag: counts, first/last flagged date, latest state, last clear before."""
    idx = _time_index(flags.to_dataset(name="f"))
    flags = flags & clear
    n = flags.sizes["time"]
    count = flags.sum("time").astype("int16")
    first = idx.where(flags, n).min("time")
    first = first.where(count > 0, -1).astype("int32")
    last = idx.where(flags, -1).max("time").astype("int32")
    latest = idx.where(clear, -1).max("time")
    latest_flag = (flags & (idx == latest)).any("time")
    before = idx.where(clear & (idx < first), -1).max("time").astype("int32")
    return {
        "count": count,
        "first": first,
        "last": last,
        "latest_flag": latest_flag,
        "before": before,
        "latest": latest,
    }


def _at_latest(values: xr.DataArray, clear: xr.DataArray, latest: xr.DataArray) -> xr.DataArray:
    idx = _time_index(values.to_dataset(name="v"))
    # One look per pixel at most: a sum picks it without all-NaN reductions; NaN where there was none.
    return values.where(clear & (idx == latest), 0).sum("time", skipna=False).where(latest >= 0)


def _scene_ids(after: xr.Dataset) -> tuple[str, ...]:
    return tuple(str(s) for s in after["scene_id"].values) if "scene_id" in after.coords else ()


def _per_date_detection(
    method: str,
    change_type: ChangeType | None,
    flags: xr.DataArray,
    score_t: xr.DataArray,
    after: xr.Dataset,
) -> Detection:
    """A detection from a per-date flag: changed if the latest clear look shows it; score at that look."""
    tl = _timeline(flags, after["clear"])
    return Detection(
        method=method,
        sensor=SENSOR,
        change_type=change_type,
        mask=tl["latest_flag"] & (tl["count"] > 0),
        score=_at_latest(score_t, after["clear"], tl["latest"]).astype("float32"),
        count=tl["count"],
        first=tl["first"],
        last=tl["last"],
        before=tl["before"],
        times=after["time"].values,
        scene_ids=_scene_ids(after),
    )


def detect_burn_scars(base: xr.Dataset, after: xr.Dataset, *, thresholds: ThresholdSettings) -> Detection:
    """Burn scars: NBR fell by more than `dnbr`, ended below `post_nbr_max`, and NIR dropped to char level.

    The NIR conditions keep harvested paddy (NBR falls by 0.3-0.5 to ~0.1 but NIR stays > 0.2) and fresh soil
    out: both raise SWIR like a fire does, neither darkens NIR like char.

    base: the before composite with indices; after: masked after-window scenes with indices and `clear`.
    The relativised form (RdNBR, Miller & Thode 2007) is carried as an extra layer for severity.
    """
    dnbr_t = base["NBR"] - after["NBR"]
    flags = (
        (dnbr_t > thresholds.dnbr)
        & (after["NBR"] < thresholds.post_nbr_max)
        & ((base["B08"] - after["B08"]) > NIR_DROP_BURN)
        & (after["B08"] < thresholds.char_nir_max)
    )
    d = _per_date_detection("dnbr", ChangeType.BURN_SCAR, flags, dnbr_t, after)
    rdnbr = (d.score / np.sqrt(np.abs(base["NBR"]).clip(min=1e-3))).astype("float32")
    return replace(d, extra={"rdnbr": rdnbr})


def detect_soil_exposure(
    base: xr.Dataset,
    after: xr.Dataset,
    *,
    thresholds: ThresholdSettings,
    landcover: xr.DataArray | None = None,
) -> Detection:
    """Vegetation replaced by fresh soil (earthworks, craters): NDVI fell, red and SWIR rose, not burnt.

    On cropland the harvest also lowers NDVI, so there the pixel must end as bare soil (NDVI below
    `bare_ndvi_max`), which stubble does not reach. Without a land-cover layer that stricter rule holds
    everywhere. Whether a patch is a crater field or earthworks is decided per region by vectorise.
    """
    dndvi_t = base["NDVI"] - after["NDVI"]
    d_red = after["B04"] - base["B04"]
    d_blue = after["B02"] - base["B02"]
    soil_like = (
        (dndvi_t > thresholds.dndvi)
        & (d_red > 0.02)
        & (d_red > d_blue)
        & ((after["B11"] - base["B11"]) > SWIR_RISE_SOIL)
    )
    bare = after["NDVI"] < thresholds.bare_ndvi_max
    strict = bare if landcover is None else (bare | (landcover != LC_CROP))
    burnt = (base["NBR"] - after["NBR"] > thresholds.dnbr) & (after["NBR"] < thresholds.post_nbr_max)
    flags = soil_like & strict & ~burnt
    return _per_date_detection("soil-exposure", None, flags, dndvi_t, after)


def detect_optical_change(
    base: xr.Dataset, after: xr.Dataset, *, landcover: xr.DataArray | None = None
) -> Detection:
    """Change vector analysis: the Euclidean change over the six bands; generic, used to corroborate.

    Its `support` layer (where it may corroborate a radar alert) leaves out cropland, where the season itself
    changes every band.
    """
    sq = sum((after[b] - base[b]) ** 2 for b in OPTICAL_BANDS)
    mag_t = (sq**0.5).astype("float32")
    flags = mag_t > CVA_MIN
    d = _per_date_detection("cva", None, flags, mag_t, after)
    support = d.mask if landcover is None else d.mask & (landcover != LC_CROP)
    return replace(d, extra={"support": support})
