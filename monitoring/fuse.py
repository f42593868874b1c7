"""Fuse: combine per-sensor detections into one change-type map and confidence tiers with their evidence."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import xarray as xr

from monitoring.detect.result import Detection
from monitoring.results import Alert, ChangeType, Confidence

NONE, BURN, SOIL, STRUCTURE = 0, 1, 2, 3
"""Pixel codes of the fused map. SOIL becomes earthworks or crater field per region (vectorise)."""


def fuse_change_types(
    *,
    burn: Detection | None,
    soil: Detection | None,
    sar: Detection | None,
    builtup: xr.DataArray | None,
) -> xr.DataArray:
    """One uint8 code per pixel. SAR change on built-up land is structural damage and wins (the optical
    signal of a collapsed roof is weak and ambiguous); then burn scars; then soil exposure."""
    layers = [d.mask for d in (burn, soil, sar) if d is not None]
    if not layers:
        raise ValueError("fuse_change_types needs at least one detection")
    codes = xr.zeros_like(layers[0], dtype="uint8")
    if soil is not None:
        codes = xr.where(soil.mask, SOIL, codes)
    if burn is not None:
        codes = xr.where(burn.mask, BURN, codes)
    if sar is not None and builtup is not None:
        codes = xr.where(sar.mask & builtup, STRUCTURE, codes)
    return codes.astype("uint8").rename("change_code")


def confidence_tier(
    *,
    sensors: Iterable[str],
    methods: Iterable[str],
    observations: int,
    seasonal: bool = False,
) -> Confidence:
    """Tiers as the integrated forest alerts define them.

    highest: two independent sensors agree; high: seen again in a later independent observation, or two
    independent methods agree; low: one method, one observation. `seasonal`: the change is one the season makes
    routinely there (a burn on cropland in the stubble-burning season), so more looks of the same thing do not
    make it more likely to be conflict: it stays low until independent evidence (thermal, another sensor) agrees.
    """
    if seasonal and len(set(sensors)) < 2:
        return Confidence.LOW
    if len(set(sensors)) >= 2:
        return Confidence.HIGHEST
    if observations >= 2 or len(set(methods)) >= 2:
        return Confidence.HIGH
    return Confidence.LOW


def set_aside_farm_burning(alerts: Sequence[Alert], *, min_fields: int) -> tuple[list[Alert], list[Alert]]:
    """(alerts, seasonal burns): where farmers are burning, burns on cropland are context, not alerts.

    In the dry season the rice plains burn their stubble field by field, and one sensor cannot tell those fires
    from a field set alight by shelling. Like the war-fire model's test against the season's normal fire activity,
    the area's own window decides: with at least `min_fields` single-sensor burn scars on cropland (`seasonal`
    alerts) the season is under way, and every one of them is set aside (kept for the map and the GeoJSON, not
    counted or listed as an alert). Fewer stay alerts at low confidence. Burns that another sensor corroborates,
    burns off cropland and every other change type are never set aside.
    """
    seasonal = [
        a for a in alerts if a.seasonal and a.change_type is ChangeType.BURN_SCAR and len(set(a.sensors)) < 2
    ]
    if len(seasonal) < min_fields:
        return list(alerts), []
    aside = {a.id for a in seasonal}
    return [a for a in alerts if a.id not in aside], seasonal
