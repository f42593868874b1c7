"""Vectorise: turn the fused change map into alert polygons with area, dates, evidence and confidence."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import rasterio.features
import shapely
from odc.geo.geobox import GeoBox
from pyproj import Transformer
from scipy import ndimage
from shapely.geometry import mapping, shape
from shapely.geometry.polygon import orient

from monitoring.fuse import BURN, NONE, SOIL, STRUCTURE, confidence_tier
from monitoring.results import Alert, ChangeType
from monitoring.sources.base import LC_CROP

EIGHT = np.ones((3, 3), dtype=bool)
CORROBORATION_SHARE = 0.2
"""Share of an alert's pixels another sensor must flag for it to count as agreeing."""
CRATER_MAX_FILL = 0.8
"""A crater field is mottled: within its outline many pixels keep vegetation between the craters (5-12 m
across, 1-3 pixels at 10 m), while a pad or berm fills its own outline."""
CRATER_MIN_SOLIDITY = 0.7
"""A crater field is a compact area (an impact ellipse); trenches and new tracks are lines, whose outline fills
little of its convex hull."""
DENSITY_WINDOW_PX = 5
DENSITY_MIN = 0.16
"""Soil-exposure pixels within 50 m x 50 m that join scattered craters into one field (4 of 25 pixels)."""


@dataclass(frozen=True)
class Evidence:
    """Computed (numpy) per-pixel layers of one area, as the detectors and fuse produced them."""

    codes: np.ndarray
    """uint8 fused change codes (monitoring.fuse)."""
    layers: dict[str, np.ndarray]
    """'<method>.<name>' -> array, from Detection.layers()."""
    times: dict[str, np.ndarray]
    """method -> datetime64 of the observations its first/last/before indices refer to."""
    sensors: dict[str, str]
    """method -> sensor name."""
    scene_ids: dict[str, tuple[str, ...]] = field(default_factory=dict)
    baseline_last_clear: date | None = None
    """Latest baseline date before the after window (used when the change was there from the first look)."""
    landcover: np.ndarray | None = None
    """ESA WorldCover codes on the grid, where the source has them."""


def _day(t: np.datetime64) -> date:
    return date.fromisoformat(str(t)[:10])


def _outline(region: np.ndarray, radius: int = 2) -> np.ndarray:
    """A field's outline as a mapper draws it: gaps between craters closed, holes filled (no border erosion)."""
    padded = np.pad(region, radius + 1)
    closed = ndimage.binary_closing(padded, structure=np.ones((2 * radius + 1,) * 2, bool))
    filled = ndimage.binary_fill_holes(closed)
    return filled[radius + 1 : -(radius + 1), radius + 1 : -(radius + 1)] | region


def solidity(mask: np.ndarray) -> float:
    """Area of a pixel mask over the area of its convex hull (pixel corners), 0-1."""
    yy, xx = np.nonzero(mask)
    if yy.size == 0:
        return 0.0
    corners = np.concatenate([np.c_[xx + dx, yy + dy] for dx in (0, 1) for dy in (0, 1)])
    hull = shapely.MultiPoint(corners).convex_hull
    return float(yy.size / hull.area) if hull.area > 0 else 1.0


def soil_regions(soil: np.ndarray) -> tuple[np.ndarray, dict[int, ChangeType]]:
    """Group soil-exposure pixels into regions and say which are crater fields and which earthworks.

    Returns a label raster (0 = none) and the type of each label. A crater field's region is its extent (the
    density-joined area, as a mapper would outline the field); an earthwork's region is its own pixels.
    """
    density = ndimage.uniform_filter(soil.astype("float32"), size=DENSITY_WINDOW_PX, mode="constant")
    joined = (density >= DENSITY_MIN - 1e-6) | soil
    regions, n = ndimage.label(joined, structure=EIGHT)
    out = np.zeros_like(regions)
    kinds: dict[int, ChangeType] = {}
    next_id = 1
    for r, sl in enumerate(ndimage.find_objects(regions), start=1):
        if sl is None:
            continue
        in_region = regions[sl] == r
        disturbed = in_region & soil[sl]
        if not disturbed.any():
            continue
        outline = _outline(disturbed)
        fill = disturbed.sum() / outline.sum()
        if fill < CRATER_MAX_FILL and solidity(outline) >= CRATER_MIN_SOLIDITY:
            out[sl][outline & (out[sl] == 0)] = next_id
            kinds[next_id] = ChangeType.CRATER_FIELD
        else:
            out[sl][disturbed] = next_id
            kinds[next_id] = ChangeType.EARTHWORKS
        next_id += 1
    return out, kinds


def change_regions(codes: np.ndarray) -> tuple[np.ndarray, dict[int, ChangeType]]:
    """One label raster over all change types (regions never overlap: codes are exclusive)."""
    labels = np.zeros(codes.shape, dtype="int32")
    kinds: dict[int, ChangeType] = {}
    offset = 0
    for code, ctype in ((BURN, ChangeType.BURN_SCAR), (STRUCTURE, ChangeType.STRUCTURAL_DAMAGE)):
        # Closing bridges the one-pixel gaps that noise leaves inside a scar or a damaged block.
        own = codes == code
        # (`| own`: scipy's closing erodes at the array border; a closing must never drop a pixel.)
        m = (ndimage.binary_closing(own, structure=EIGHT) & (own | (codes == NONE))) | own
        lab, n = ndimage.label(m, structure=EIGHT)
        sel = lab > 0
        labels[sel] = lab[sel] + offset
        kinds.update({offset + i: ctype for i in range(1, n + 1)})
        offset += n
    soil_lab, soil_kinds = soil_regions(codes == SOIL)
    sel = (soil_lab > 0) & (labels == 0)
    labels[sel] = soil_lab[sel] + offset
    kinds.update({offset + k: v for k, v in soil_kinds.items()})
    return labels, kinds


PRIMARY = {
    ChangeType.BURN_SCAR: "dnbr",
    ChangeType.CRATER_FIELD: "soil-exposure",
    ChangeType.EARTHWORKS: "soil-exposure",
    ChangeType.STRUCTURAL_DAMAGE: "s1-welch-t",
}
CORROBORATORS = {
    "sentinel-2": ("s1-welch-t",),
    "sentinel-1": ("cva", "dnbr", "soil-exposure"),
}


def _median_index(idx: np.ndarray) -> int:
    v = idx[idx >= 0]
    return int(np.median(v)) if v.size else -1


def _stable_id(area_id: str, ctype: ChangeType, x: float, y: float) -> str:
    # Same place (to ~100 m) and type give the same id on every run, so analysts can follow an alert.
    key = f"{area_id}|{ctype.value}|{round(x / 100)}|{round(y / 100)}"
    return f"{area_id}-{ctype.value.replace('_', '')[:6]}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def _polygons(labels: np.ndarray, geobox: GeoBox) -> dict[int, Any]:
    shapes: dict[int, list[Any]] = {}
    for geom, value in rasterio.features.shapes(
        labels.astype("int32"), mask=labels > 0, transform=geobox.affine, connectivity=4
    ):
        shapes.setdefault(int(value), []).append(shape(geom))
    # 4-connected pieces touch only at corners; their union is one valid (Multi)Polygon per region.
    return {k: shapely.make_valid(shapely.union_all(v)) for k, v in shapes.items()}


def vectorise_alerts(
    evidence: Evidence,
    *,
    geobox: GeoBox,
    area_id: str,
    mmu_ha: float,
) -> list[Alert]:
    """Alert polygons (WGS84) for every change region of at least mmu_ha, largest first."""
    labels, kinds = change_regions(evidence.codes)
    if not kinds:
        return []
    px_ha = abs(geobox.resolution.x * geobox.resolution.y) / 1e4
    counts = np.bincount(labels.ravel(), minlength=max(kinds) + 1)
    keep = {k for k in kinds if counts[k] * px_ha >= mmu_ha}
    if not keep:
        return []
    labels = np.where(np.isin(labels, list(keep)), labels, 0)
    polys = _polygons(labels, geobox)
    to_ll = Transformer.from_crs(str(geobox.crs), "EPSG:4326", always_xy=True)
    L = evidence.layers
    alerts: list[Alert] = []
    for k in sorted(keep):
        ctype = kinds[k]
        pix = labels == k
        method = PRIMARY[ctype]
        sensor = evidence.sensors[method]
        times = evidence.times[method]
        sensors = {sensor}
        methods = {method}
        for other in CORROBORATORS[sensor]:
            mask = L.get(f"{other}.support", L.get(f"{other}.mask"))
            if mask is not None and mask[pix].mean() >= CORROBORATION_SHARE:
                sensors.add(evidence.sensors[other])
                methods.add(other)
        first_i = _median_index(L[f"{method}.first"][pix])
        if first_i < 0:
            continue
        last_v = L[f"{method}.last"][pix]
        last_i = int(last_v.max()) if (last_v >= 0).any() else first_i
        before_i = _median_index(L[f"{method}.before"][pix])
        obs = int(np.median(L[f"{method}.count"][pix][L[f"{method}.count"][pix] > 0]))
        score = L[f"{method}.score"][pix]
        score = score[np.isfinite(score)]
        p = L.get(f"{'s1-welch-t'}.p_value")
        p_value = float(np.nanmin(p[pix])) if p is not None and "sentinel-1" in sensors else None
        scene_ids = [
            s for m in sorted(methods) for s in _scenes_between(evidence, m, before_i if m == method else -1)
        ]
        lc_name, crop_share = _land_cover(evidence.landcover, pix)
        geom = polys[k]
        c = geom.centroid
        ll = (
            orient(shapely.ops.transform(to_ll.transform, geom))
            if geom.geom_type == "Polygon"
            else shapely.ops.transform(to_ll.transform, geom)
        )
        alerts.append(
            Alert(
                id=_stable_id(area_id, ctype, c.x, c.y),
                hotspot_id=area_id,
                change_type=ctype,
                area_ha=round(float(pix.sum() * px_ha), 2),
                first_observed=_day(times[first_i]),
                last_observed=_day(times[last_i]),
                last_clear_before=_day(times[before_i]) if before_i >= 0 else evidence.baseline_last_clear,
                confidence=confidence_tier(
                    sensors=sensors,
                    methods=methods - {"cva"},
                    observations=obs,
                    seasonal=ctype is ChangeType.BURN_SCAR and crop_share >= 0.5,
                ),
                land_cover=lc_name,
                severity=burn_severity(float(score.mean()))
                if ctype is ChangeType.BURN_SCAR and score.size
                else None,
                sensors=sorted(sensors),
                methods=sorted(methods),
                observations=obs,
                score_mean=round(float(score.mean()), 4) if score.size else 0.0,
                score_max=round(float(score[np.argmax(np.abs(score))]), 4) if score.size else 0.0,
                p_value=p_value,
                scene_ids=list(dict.fromkeys(scene_ids)),
                geometry=mapping(ll),
            )
        )
    alerts.sort(key=lambda a: -a.area_ha)
    return alerts


DNBR_SEVERITY = ((0.66, "high"), (0.44, "moderate-high"), (0.27, "moderate-low"), (0.1, "low"))
"""USGS FIREMON burn severity classes of dNBR (Key & Benson 2006)."""


def burn_severity(dnbr: float) -> str:
    for lower, name in DNBR_SEVERITY:
        if dnbr >= lower:
            return name
    return "unburned"


WORLDCOVER_NAMES = {
    10: "tree cover",
    20: "shrubland",
    30: "grassland",
    40: "cropland",
    50: "built-up",
    60: "bare / sparse",
    70: "snow and ice",
    80: "water",
    90: "herbaceous wetland",
    95: "mangroves",
    100: "moss and lichen",
}


def _land_cover(landcover: np.ndarray | None, pix: np.ndarray) -> tuple[str | None, float]:
    """The dominant WorldCover class under an alert and the share of cropland."""
    if landcover is None:
        return None, 0.0
    codes, counts = np.unique(landcover[pix], return_counts=True)
    dominant = int(codes[np.argmax(counts)])
    return WORLDCOVER_NAMES.get(dominant, f"class {dominant}"), float((landcover[pix] == LC_CROP).mean())


def _scenes_between(evidence: Evidence, method: str, start: int) -> list[str]:
    """Scene ids of the method's observations from `start` (the last clear look before) onwards."""
    ids = evidence.scene_ids.get(method, ())
    return list(ids[max(start, 0) :])
