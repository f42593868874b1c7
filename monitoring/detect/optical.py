"""Detect: optical change from Sentinel-2 — burn scars (dNBR), soil exposure (earthworks, craters), CVA."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import dask.array
import numpy as np
import xarray as xr

from monitoring.config import ThresholdSettings
from monitoring.detect.result import Detection
from monitoring.results import SENSOR_S2, ChangeType
from monitoring.sources.base import LC_CROP, OPTICAL_BANDS

SENSOR = SENSOR_S2
NIR_DROP_BURN = 0.04
"""Char lowers NIR reflectance; harvest and haze barely do. Burnt forest drops by ~0.15 (Key & Benson 2006)."""
SWIR_RISE_SOIL = 0.03
"""Fresh soil raises SWIR-1 (B11) well above vegetation; a missed thin cloud raises it far less than blue."""
CVA_MIN = 0.08
"""Change-vector magnitude over six bands that counts as optical change (several times the sensor noise)."""
CROP_OUTLIER_Z = 4.0
"""On cropland, soil exposure must stand this many robust standard deviations below the NDVI of the other fields
the season changed the same way on the same date (a normal tail reaches z = -4 once in ~30,000 pixels)."""
CROP_NDVI_SIGMA_MIN = 0.02
"""Floor of that spread: S2 NDVI noise plus field-to-field differences never vanish, even when a scene's stubble
looks uniform."""
CROP_MIN_PIXELS = 400
"""Clear, season-changed cropland pixels (4 ha) a date needs before its own distribution is trusted."""
REDNESS_MIN = 0.01
"""How much redder (B04 - B02) than that day's season-changed fields exposed soil must be: ~1.5 sigma of the
difference of two bands' noise at these reflectances (sigma ~0.005 each)."""
BINS = np.linspace(-1.0, 1.0, 801)
"""Histogram bins (0.0025) for the per-date cropland quantiles of NDVI and redness."""


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
    at_latest: dict[str, xr.DataArray] | None = None,
) -> Detection:
    """A detection from a per-date flag: changed if the latest clear look shows it; score at that look.

    at_latest: per-date values also taken at that look, carried as extra layers (float32).
    """
    tl = _timeline(flags, after["clear"])
    extra = {
        k: _at_latest(v, after["clear"], tl["latest"]).astype("float32") for k, v in (at_latest or {}).items()
    }
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
        extra=extra,
    )


def _burnt(base: xr.Dataset, after: xr.Dataset, thresholds: ThresholdSettings) -> xr.DataArray:
    """Per date: NBR fell by more than `dnbr` and ended below `post_nbr_max`, and NIR dropped to char level."""
    return (
        (base["NBR"] - after["NBR"] > thresholds.dnbr)
        & (after["NBR"] < thresholds.post_nbr_max)
        & ((base["B08"] - after["B08"]) > NIR_DROP_BURN)
        & (after["B08"] < thresholds.char_nir_max)
    )


def detect_burn_scars(base: xr.Dataset, after: xr.Dataset, *, thresholds: ThresholdSettings) -> Detection:
    """Burn scars: NBR fell by more than `dnbr`, ended below `post_nbr_max`, and NIR dropped to char level.

    The NIR conditions keep harvested paddy (NBR falls by 0.3-0.5 to ~0.1 but NIR stays > 0.2) and fresh soil
    out: both raise SWIR like a fire does, neither darkens NIR like char.

    base: the before composite with indices; after: masked after-window scenes with indices and `clear`.
    The relativised forms RdNBR (Miller & Thode 2007) and RBR (Parks et al. 2014) are carried as extra layers
    for severity.
    """
    dnbr_t = base["NBR"] - after["NBR"]
    d = _per_date_detection("dnbr", ChangeType.BURN_SCAR, _burnt(base, after, thresholds), dnbr_t, after)
    rdnbr = (d.score / np.sqrt(np.abs(base["NBR"]).clip(min=1e-3))).astype("float32")
    # RBR (Parks et al. 2014): dNBR relative to the pre-fire NBR without RdNBR's blow-up where NBR is near 0
    # (sparse vegetation, stubble), so its severity classes hold across land covers.
    rbr = (d.score / (base["NBR"] + 1.001)).astype("float32")
    return replace(d, extra={"rdnbr": rdnbr, "rbr": rbr})


def _histogram(values: xr.DataArray, keep: xr.DataArray) -> Any:
    """Counts of `values` where `keep`, in BINS; numpy or dask, as the input is."""
    data = values.where(keep, -10.0).data  # outside the bins' range: not counted
    if isinstance(data, dask.array.Array):
        counts, _ = dask.array.histogram(data, bins=BINS)
    else:
        counts, _ = np.histogram(data, bins=BINS)
    return counts


def _quantile(counts: Any, q: float) -> Any:
    """The q-quantile of a histogram (centre of its bin), lazily for dask counts."""
    cum = counts.cumsum(axis=0)
    width = BINS[1] - BINS[0]
    return BINS[0] + ((cum >= q * cum[-1]).argmax() + 0.5) * width


def _per_date(cuts: list[Any], like: xr.Dataset | xr.DataArray) -> xr.DataArray:
    stack = dask.array.stack(cuts) if isinstance(cuts[0], dask.array.Array) else np.stack(cuts)
    return xr.DataArray(stack, dims="time", coords={"time": like["time"]})


def unusual_for_season(after: xr.Dataset, population: xr.DataArray) -> xr.DataArray:
    """Per date: soil standing out from `population`, the pixels the season changed the same way that day.

    Two tests against that day's population, from one histogram each (a reduction dask can do):
    - NDVI below median - CROP_OUTLIER_Z * sigma, sigma = IQR / 1.349 (at least CROP_NDVI_SIGMA_MIN);
    - redder than the population by more than REDNESS_MIN (B04 - B02 above its median): exposed soil is red
      (iron oxides), while missed haze or thin cloud, which also lowers NDVI, brightens blue at least as much.
    A date with fewer than CROP_MIN_PIXELS population pixels flags nothing.
    """
    if after.sizes["time"] == 0:
        return xr.zeros_like(after["NDVI"], dtype=bool)
    redness = after["B04"] - after["B02"]
    ndvi_cuts, red_cuts = [], []
    for t in range(after.sizes["time"]):
        keep = population.isel(time=t)
        counts = _histogram(after["NDVI"].isel(time=t), keep)
        q1, q2, q3 = (_quantile(counts, q) for q in (0.25, 0.5, 0.75))
        sigma = np.maximum((q3 - q1) / 1.349, CROP_NDVI_SIGMA_MIN)
        enough = counts.sum() >= CROP_MIN_PIXELS
        ndvi_cuts.append(np.where(enough, q2 - CROP_OUTLIER_Z * sigma, -np.inf))
        red_median = _quantile(_histogram(redness.isel(time=t), keep), 0.5)
        red_cuts.append(np.where(enough, red_median + REDNESS_MIN, np.inf))
    return (after["NDVI"] < _per_date(ndvi_cuts, after)) & (redness > _per_date(red_cuts, after))


def detect_soil_exposure(
    base: xr.Dataset,
    after: xr.Dataset,
    *,
    thresholds: ThresholdSettings,
    landcover: xr.DataArray | None = None,
) -> Detection:
    """Vegetation replaced by fresh soil (earthworks, craters): NDVI fell, red and SWIR rose, not burnt.

    On cropland the harvest changes the spectrum the same way (NDVI down, red and SWIR up), so there the pixel
    must also end as bare soil (NDVI below `bare_ndvi_max`) or stand out from what the season did to the other
    fields that day: NDVI far below that of the cropland that changed the same way (`unusual_for_season`) —
    craters and their ejecta over stubble, which a fixed bare-soil threshold misses. Without a land-cover layer
    only the bare-soil rule holds. Whether a patch is a crater field or earthworks is decided per region by
    vectorise.
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
    # The burn-scar test itself: fresh soil's NBR (~ -0.02) sits at post_nbr_max, so the NBR conditions alone
    # would drop half of the barest pixels; char is dark in NIR, soil is not.
    burnt = _burnt(base, after, thresholds)
    if landcover is None:
        strict = bare
    else:
        crop = landcover == LC_CROP
        season = soil_like & crop & after["clear"] & ~burnt
        strict = bare | ~crop | unusual_for_season(after, season)
    flags = soil_like & strict & ~burnt
    # post_ndvi, how bare the latest look left the pixel: a compact patch stripped bare throughout is earthworks,
    # one only partly bared (craters between the remaining cover, below the 10 m pixel) a crater field (vectorise).
    return _per_date_detection(
        "soil-exposure", None, flags, dndvi_t, after, at_latest={"post_ndvi": after["NDVI"]}
    )


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
