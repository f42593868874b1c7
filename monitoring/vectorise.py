"""Vectorise: turn the fused change map into alert polygons with area, dates, evidence and confidence."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import rasterio.features
import shapely
from affine import Affine
from odc.geo.geobox import GeoBox
from pyproj import Transformer
from scipy import ndimage
from shapely.geometry import mapping, shape
from shapely.geometry.polygon import orient

from monitoring.detect.multivariate import region_p_value
from monitoring.fuse import (
    BURN,
    FIRE_METHOD,
    NONE,
    SOIL,
    STRUCTURE,
    Fires,
    attribute_fires,
    confidence_tier,
    summarise_fires,
)
from monitoring.results import SENSOR_S1, SENSOR_S2, Alert, ChangeType, ObservationGap
from monitoring.sources.base import LC_BARE, LC_CROP, LC_WATER

EIGHT = np.ones((3, 3), dtype=bool)
CORROBORATION_SHARE = 0.2
"""Share of an alert's pixels another sensor must flag for it to count as agreeing."""
CRATER_MAX_FILL = 0.8
"""A crater field is mottled: within its outline many pixels keep vegetation between the craters (5-12 m
across, 1-3 pixels at 10 m), while a pad or berm fills its own outline. Decides only where radar cannot (on
cropland, or without a radar look): at 10 m a small field's dust and craters often flag every pixel of it."""
BARE_SOIL_NDVI = 0.2
"""NDVI below which land is bare soil (the usual cut-off of land-cover mapping): an earthwork strips its patch
to it; a crater field's craters, smaller than a 10 m pixel, leave cover between them and stay above it. Used when
a region has too few unchanged surroundings to measure against."""
FRESH_SOIL_NDVI = 0.12
"""NDVI of freshly turned laterite or sandy soil (0.10-0.15)."""
STRIPPED_SHARE = 0.75
"""Share of the way from its surroundings' NDVI down to fresh soil's that a compact patch went: an earthwork strips
nearly all of it (edge pixels keep a little), a crater field's 25-40 % crater cover and dust go about half way.
Relative, so that the same rule holds over forest, stubble and already half-bare fallow paddy."""
CRATER_MIN_SOLIDITY = 0.7
"""A crater field is a compact area (an impact ellipse); trenches and new tracks are lines, whose outline fills
little of its convex hull."""
CRATER_SPECK_PX = 3.0
CRATER_MIN_SPECKS = 3
"""Soil exposure in several specks (at least 3) no bigger than a crater or two on average (3 pixels, 300 m²; a
crater is 5-12 m) is a crater field whatever its outline: a trench or pad, even broken up, comes in pieces of many
pixels (8 or more in every simulated scenario)."""
CRATER_MIN_ROUGHENING_DB = 0.75
"""Cratered, churned ground is rough at C band's 5.6 cm: backscatter rises 1.5-3 dB where the craters are, and
over a field's outline (a quarter to 40% cratered, blurred by the 3x3 multilook) it stays above +1 dB of its
surroundings. Fresh soil replacing vegetation is no rougher: it loses the canopy's volume scattering (down on
forest and shrub) or about matches grass. Over unchanged land a 25-pixel region's mean stands -0.3 +- 0.5 dB from
its surroundings' median: the threshold is 2 sd above that (3% of such regions pass), below every simulated crater
field (+1.1 to +3.4 dB) and above every earthwork (-0.2 dB and less)."""
DENSITY_WINDOW_PX = 5
DENSITY_MIN = 0.16
"""Soil-exposure pixels within 50 m x 50 m that join scattered craters into one field (4 of 25 pixels)."""
RING_PX = (3, 6)
"""A region's surroundings, 30-60 m out: beyond its mixed edge pixels and the reach of the 3x3 radar multilook,
near enough to share its season and soil moisture."""
MIN_RING_PX = 8
"""Fewest surrounding pixels whose median stands for the background."""
EDGE_REACH_PX = 2
"""How far weaker evidence may extend a region beyond its confident pixels: the mixed pixels at its edge and the
blur of the 20 m SWIR bands (B11, B12) that the burn and soil tests use."""
EDGE_SCORES = {BURN: ("dnbr.score", 0.1), SOIL: ("soil-exposure.score", 0.1)}
"""Weaker evidence that completes a region (hysteresis): its score exceeds the median of the region's unchanged
surroundings by this much. That median is the dNBR 'offset' of Parks et al. (2014), and 0.1 is where low burn
severity starts (Key & Benson 2006); for the NDVI drop 0.1 is half the detection threshold (Canny's 2:1) and
beyond the 99th percentile of the season's own change on unchanged forest, shrub and grass (0.05-0.07 above its
median). On cropland, where the harvest lowers both by 0.2-0.5 field by field, only where the fields around the
region changed alike (CALM_RING_SHARE)."""
CALM_RING_SHARE = 0.1
"""On cropland a region's weaker edge is taken in only where at most this share of its surroundings pass the same
edge test (`_calm_cropland`): the fields around it changed alike or not at all (their median is the season's
change, which the test looks beyond), so what changed more right beside the region is its own mixed edge. Where a
neighbouring field was harvested or burnt and the others were not, that field's share of the surroundings passes
(a field is tens of metres across; the surroundings lie 30-60 m out), and the region does not grow there."""
MMU_CORE_SHARE = 0.5
"""Weaker edges complete objects, they do not make them: a region's confident pixels alone must reach half the
minimum mapping unit (an object of that size whose edge pixels, about half of its pixels, all fell short).
Without this, one-pixel specks in a patch of haze grow into alerts."""
SAR_METHOD = "s1-welch-t"
"""The radar change whose signed dB score tells roughened ground (crater fields) from smoothed (earthworks)."""
OPTICAL_P_LAYER = "irmad.p_value"
"""Evidence layer of the optical test's probability: IR-MAD's no-change p per pixel, unadjusted
(detect.multivariate.change_p_values); alerts Sentinel-2 saw cite the region p-value of their pixels
(detect.multivariate.region_p_value), adjusted for the alert-sized regions of the area."""
P_CITED_FLOOR = 1e-30
"""An alert cites a p-value below this as this (read "p < 1e-30"): the float32 evidence layers underflow to 0 near
1e-38, and no test's tail model is accurate that far out, so a bare 0 would claim a certainty nothing measured."""
RADAR_LAST_SHARE = 0.25
"""An alert's radar_last_change is the latest pass at which at least this share of its radar-dated pixels had a
change point (the omnibus test's last change interval), not the latest of any one pixel."""
RADAR_EDGE_P = 0.05
"""Weaker radar evidence that completes a region radar decides (hysteresis): the pixel's own p-value, already
corrected for its tests (sar_alpha's family: orbits x polarisations x onsets x scales), below 5%, without the
area-wide false-discovery control and the 2 dB minimum that a region's confident pixels pass (Canny's two
thresholds). Speckle leaves the strict test a sixth to a quarter of a burnt or cleared hectare; on the simulator's
monsoon burns and earthworks the weaker edge within EDGE_REACH_PX brought that to 52-87% and added no false alert."""
OPTICAL_CHANGE = "cva"
"""The optical change test (change vector over six bands) that completes a radar structural-damage region."""


OPTICALLY_BLIND = (LC_BARE,)
"""Land covers where the optical tests cannot see a crater field: bare rock and sparse ground have no vegetation
to lose, so the soil-exposure test has nothing to measure; there radar's roughening speaks even under a clear sky."""


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
    baseline_last: dict[str, date] = field(default_factory=dict)
    """method -> its own latest baseline look, where it differs from baseline_last_clear (radar: the last pass)."""
    landcover: np.ndarray | None = None
    """ESA WorldCover codes on the grid, where the source has them."""
    optical_last_clear: np.ndarray | None = None
    """Per pixel, the day (days since 1970-01-01) of the latest clear Sentinel-2 look in the after window that a
    clear baseline lets show change, -1 where there was none; None without optical data."""
    fires: Fires | None = None
    """Active-fire detections on the grid, from the before window's start to the after window's end; None where no
    thermal source was checked (then alerts say so: thermal_detections None)."""
    builtup: np.ndarray | None = None
    """Built-up land as the radar test restricts structural damage to it (detect.sar.builtup_mask); None without
    radar."""
    inside: np.ndarray | None = None
    """The pixels of the area (AOI.inside: a drawn polygon within the grid's box); None: the whole grid. Alerts
    are made of these pixels alone, as the grid's edge cuts an event that crosses it."""


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


def _window(sl: tuple[slice, ...], pad: int, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """A bounding box grown by pad pixels, clipped to the array."""
    return tuple(slice(max(s.start - pad, 0), min(s.stop + pad, n)) for s, n in zip(sl, shape, strict=True))


def _grow(region: np.ndarray, into: np.ndarray) -> np.ndarray:
    """The region with the `into` pixels connected to it (8-connected) up to EDGE_REACH_PX beyond it."""
    grown = region
    for _ in range(EDGE_REACH_PX):
        grown = grown | (ndimage.binary_dilation(grown, structure=EIGHT) & into)
    return grown


def _surroundings(region: np.ndarray, unchanged: np.ndarray) -> np.ndarray:
    """The unchanged pixels RING_PX away from a region (both arrays of one window)."""
    near = ndimage.binary_dilation(region, structure=EIGHT, iterations=RING_PX[0])
    far = ndimage.binary_dilation(region, structure=EIGHT, iterations=RING_PX[1])
    return far & ~near & unchanged


def _background(
    score: np.ndarray, region: np.ndarray, ring: np.ndarray, landcover: np.ndarray | None
) -> float | None:
    """Median score of a region's surroundings, on its own land cover where enough of them share it (the season
    and the weather move forest, grass and towns differently); None with too few."""
    if landcover is not None:
        same = ring & (landcover == np.bincount(landcover[region].astype("int64")).argmax())
        if np.isfinite(score[same]).sum() >= MIN_RING_PX:
            ring = same
    values = score[ring]
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size >= MIN_RING_PX else None


def _tested_db(score: np.ndarray) -> np.ndarray:
    """The radar's signed dB change with NaN where it tested nothing (its score is exactly 0 there)."""
    return np.where(score != 0, score, np.nan)


def _roughening(
    sar: np.ndarray,
    inside: np.ndarray,
    region: np.ndarray,
    unchanged: np.ndarray,
    landcover: np.ndarray | None,
) -> float | None:
    """How much more a region's backscatter rose (mean over `inside`, dB) than its unchanged surroundings'
    (median, on its own land cover where enough share it); None with under 3 tested pixels or too few
    surroundings. All arrays are one window."""
    values = sar[inside]
    bg = _background(sar, region, _surroundings(region, unchanged), landcover)
    if bg is None or np.isfinite(values).sum() < 3:
        return None
    return float(np.nanmean(values)) - bg


def _is_crater_field(
    disturbed: np.ndarray, outline: np.ndarray, roughening: float | None, bareness: float | None = None
) -> bool:
    """Crater field or earthworks, from what the images show of one soil-exposure region.

    Several crater-sized specks make a field; otherwise lines (low solidity) are earthworks; a compact area is a
    crater field if radar saw its ground roughen; where radar cannot tell (roughening None), if the optical look
    left it only partly bare (`bareness`: the share of the way from its surroundings' NDVI to fresh soil's its
    median post-event NDVI went, below STRIPPED_SHARE: the craters are smaller than a pixel, cover remains between
    them) or, without that layer, if it is mottled.
    """
    _, pieces = ndimage.label(disturbed, structure=EIGHT)
    if pieces >= CRATER_MIN_SPECKS and disturbed.sum() / pieces <= CRATER_SPECK_PX:
        return True
    if solidity(outline) < CRATER_MIN_SOLIDITY:
        return False
    if roughening is not None:
        return roughening >= CRATER_MIN_ROUGHENING_DB
    if bareness is not None and np.isfinite(bareness):
        return bareness < STRIPPED_SHARE
    return bool(disturbed.sum() / outline.sum() < CRATER_MAX_FILL)


def _crop_rise(layers: dict[str, np.ndarray]) -> np.ndarray | None:
    """Cropland where radar, measured against the same season a year earlier (the rice cycle repeats), rose with
    a corrected p-value under RADAR_EDGE_P: the radar half of `_roughened_crop`. None without those layers."""
    season, p, score = (layers.get(f"{SAR_METHOD}.{k}") for k in ("season_baseline", "p_value", "score"))
    if season is None or p is None or score is None:
        return None
    return season.astype(bool) & (p < RADAR_EDGE_P) & (score > 0)


def _roughened_crop(
    region: np.ndarray,
    ring: np.ndarray,
    landcover: np.ndarray,
    crop_rise: np.ndarray,
    sar: np.ndarray,
    soil_score: np.ndarray | None = None,
) -> np.ndarray:
    """Cropland pixels (of one window) where both sensors' weaker evidence says a region's soil was opened and
    roughened: radar rose against the season (`crop_rise`) by CRATER_MIN_ROUGHENING_DB above the median of the
    region's surroundings `ring` (`sar` in dB, NaN where untested), and the optical soil score exceeds theirs by
    EDGE_SCORES' margin (not tested without `soil_score`: grow_edges has tested it already). The harvest passes
    the optical test alone, a wetter field the radar test alone. All False where a background is missing."""
    sar_bg = _background(sar, region, ring, landcover)
    if sar_bg is None:
        return np.zeros(region.shape, bool)
    out = (landcover == LC_CROP) & crop_rise & (sar >= sar_bg + CRATER_MIN_ROUGHENING_DB)
    if soil_score is None:
        return out
    opt_bg = _background(soil_score, region, ring, landcover)
    if opt_bg is None:
        return np.zeros(region.shape, bool)
    return out & (soil_score >= opt_bg + EDGE_SCORES[SOIL][1])


def soil_regions(
    soil: np.ndarray,
    *,
    sar_score: np.ndarray | None = None,
    unchanged: np.ndarray | None = None,
    landcover: np.ndarray | None = None,
    post_ndvi: np.ndarray | None = None,
    crop_rise: np.ndarray | None = None,
    soil_score: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[int, ChangeType]]:
    """Group soil-exposure pixels into regions and say which are crater fields and which earthworks.

    Returns a label raster (0 = none) and the type of each label. A crater field's region is its extent (the
    density-joined area, as a mapper would outline the field); an earthwork's region is its own pixels.

    sar_score: the radar's signed dB change per pixel (exactly 0 where it tested nothing); compared with the
    region's surroundings it tells roughened ground. On cropland (landcover), where the rice cycle moves
    backscatter by several dB, only to say yes, and only where at least half the region rose significantly
    against the same season a year earlier (`crop_rise`): a rise there is unusual for the season (craters,
    spoil; the rice cycle repeats), but flooding or a crop can hide one. The shape is then judged on the region
    with its cropland edge where both sensors' weaker evidence agrees (`_roughened_crop`, `soil_score` being the
    optical soil score): the strict optical test sees only the barest specks of a cratered field, but a trench
    stays a line. unchanged: pixels no detector flagged, that surroundings are drawn from (default: every pixel
    that is not soil exposure). post_ndvi: NDVI of the latest clear look; where radar cannot tell,
    how bare the region ended up decides. Without either the type follows from shape and fill alone.
    """
    density = ndimage.uniform_filter(soil.astype("float32"), size=DENSITY_WINDOW_PX, mode="constant")
    joined = (density >= DENSITY_MIN - 1e-6) | soil
    regions, _ = ndimage.label(joined, structure=EIGHT)
    if unchanged is None:
        unchanged = ~soil
    sar = None if sar_score is None else _tested_db(sar_score)
    out = np.zeros_like(regions)
    kinds: dict[int, ChangeType] = {}
    next_id = 1
    for r, sl in enumerate(ndimage.find_objects(regions), start=1):
        if sl is None:
            continue
        win = _window(sl, RING_PX[1] + 1, soil.shape)
        disturbed = (regions[win] == r) & soil[win]
        if not disturbed.any():
            continue
        outline = _outline(disturbed)
        lc = None if landcover is None else landcover[win]
        roughening = None
        on_crop = lc is not None and (lc[outline] == LC_CROP).mean() >= 0.5
        if sar is not None and not on_crop:
            roughening = _roughening(sar[win], outline, outline, unchanged[win], lc)
        elif sar is not None and crop_rise is not None and crop_rise[win][outline].mean() >= 0.5:
            rise = _roughening(sar[win], outline, outline, unchanged[win], lc)
            if (
                rise is not None
                and rise >= CRATER_MIN_ROUGHENING_DB
                and soil_score is not None
                and lc is not None
            ):
                roughening = rise
                ring = _surroundings(outline, unchanged[win])
                edge = _roughened_crop(
                    outline, ring, lc, crop_rise[win], sar[win], soil_score[win]
                ) & np.isin(regions[win], (0, r))
                disturbed = _grow(disturbed, edge)
                outline = _outline(disturbed)
        bareness = None
        if post_ndvi is not None:
            values = post_ndvi[win][disturbed]
            if np.isfinite(values).any():
                level = float(np.nanmedian(values))
                bg = _background(post_ndvi[win], outline, _surroundings(outline, unchanged[win]), lc)
                if bg is not None and bg - FRESH_SOIL_NDVI > 0.05:
                    bareness = (bg - level) / (bg - FRESH_SOIL_NDVI)
                else:  # nothing to measure against: the absolute bare-soil cut-off
                    bareness = 1.0 if level < BARE_SOIL_NDVI else 0.0
        if _is_crater_field(disturbed, outline, roughening, bareness):
            out[win][outline & (out[win] == 0)] = next_id
            kinds[next_id] = ChangeType.CRATER_FIELD
        else:
            out[win][disturbed] = next_id
            kinds[next_id] = ChangeType.EARTHWORKS
        next_id += 1
    return out, kinds


def change_regions(
    codes: np.ndarray,
    layers: dict[str, np.ndarray] | None = None,
    landcover: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[int, ChangeType]]:
    """One label raster over all change types (regions never overlap: codes are exclusive).

    With the detectors' layers, radar helps tell crater fields from earthworks (soil_regions).
    """
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
    soil_lab, soil_kinds = soil_regions(
        codes == SOIL,
        sar_score=(layers or {}).get(f"{SAR_METHOD}.score"),
        unchanged=_unchanged(codes),
        landcover=landcover,
        post_ndvi=(layers or {}).get("soil-exposure.post_ndvi"),
        crop_rise=_crop_rise(layers or {}),
        soil_score=(layers or {}).get("soil-exposure.score"),
    )
    sel = (soil_lab > 0) & (labels == 0)
    labels[sel] = soil_lab[sel] + offset
    kinds.update({offset + k: v for k, v in soil_kinds.items()})
    return labels, kinds


def _radar_unseen(evidence: Evidence) -> tuple[np.ndarray, np.ndarray] | None:
    """(support, unseen): where radar may speak for the ground, and where optics could not look after its change.

    `support` is the radar test's own (off cropland, or unusual for the season on cropland) without pixels another
    detector claimed; `unseen` holds where no clear optical look came after radar's first change (monsoon cloud)
    or where optics are blind (OPTICALLY_BLIND). None without a radar test.
    """
    L = evidence.layers
    support, first = L.get(f"{SAR_METHOD}.support"), L.get(f"{SAR_METHOD}.first")
    times = evidence.times.get(SAR_METHOD)
    if support is None or first is None or times is None or not len(times):
        return None
    days = np.asarray(times).astype("datetime64[D]").astype("int64")
    first_day = np.where(first >= 0, days[np.clip(first, 0, len(days) - 1)], np.iinfo("int64").max)
    unseen = np.ones(first.shape, bool)
    if evidence.optical_last_clear is not None:
        unseen = evidence.optical_last_clear < first_day
    if evidence.landcover is not None:
        unseen |= np.isin(evidence.landcover, OPTICALLY_BLIND)
    return support.astype(bool) & (evidence.codes == NONE), unseen


def _regions(candidates: np.ndarray) -> np.ndarray:
    """8-connected groups of candidate pixels, one-pixel gaps closed."""
    regions, _ = ndimage.label(
        ndimage.binary_closing(candidates, structure=EIGHT) | candidates, structure=EIGHT
    )
    return regions


def radar_crater_regions(evidence: Evidence) -> np.ndarray:
    """Crater fields that only radar saw: a label raster (0 = none).

    Candidates are pixels the radar test flagged as a backscatter rise where radar may speak for the ground and
    optics could not look (`_radar_unseen`). A group of them is a crater field when it rose at least
    CRATER_MIN_ROUGHENING_DB above its unchanged surroundings of the same land cover: churned ground is rough at
    C band, while a change of soil moisture or of the season raises the surroundings too. A drop (burnt or cleared
    vegetation, or fresh soil) is not a crater field: radar_burn_regions claims it where a fire burnt there,
    radar_vegetation_loss_regions elsewhere.
    """
    score = evidence.layers.get(f"{SAR_METHOD}.score")
    seen = _radar_unseen(evidence)
    if score is None or seen is None:
        return np.zeros(evidence.codes.shape, dtype="int32")
    support, unseen = seen
    candidates = support & (score > 0) & unseen
    out = np.zeros(candidates.shape, dtype="int32")
    next_id = 1
    for win, region, rise in _radar_groups(evidence, candidates, min_px=1):
        if rise is not None and rise >= CRATER_MIN_ROUGHENING_DB:
            # The field's extent as a mapper outlines it (as for optical crater fields): the multilook and the
            # tests leave gaps between the roughest patches.
            out[win][_outline(region) & (out[win] == 0)] = next_id
            next_id += 1
    return out


def _radar_groups(
    evidence: Evidence, candidates: np.ndarray, *, min_px: int
) -> Iterator[tuple[tuple[slice, ...], np.ndarray, float | None]]:
    """Per group of candidate pixels (`_regions`) with at least min_px of them: its window, its mask in the window
    and how much more its radar score changed (dB, signed) than its unchanged surroundings of the same land cover
    (`_roughening`; None with too few)."""
    regions = _regions(candidates)
    unchanged = _unchanged(evidence.codes) & ~ndimage.binary_dilation(
        evidence.layers[f"{SAR_METHOD}.support"].astype(bool), structure=EIGHT, iterations=EDGE_REACH_PX
    )
    sar = _tested_db(evidence.layers[f"{SAR_METHOD}.score"])
    lc = evidence.landcover
    for r, sl in enumerate(ndimage.find_objects(regions), start=1):
        if sl is None:
            continue
        win = _window(sl, RING_PX[1] + 1, regions.shape)
        region = regions[win] == r
        if (region & candidates[win]).sum() < min_px:
            continue
        yield (
            win,
            region,
            _roughening(
                sar[win], region & candidates[win], region, unchanged[win], None if lc is None else lc[win]
            ),
        )


def radar_burn_regions(evidence: Evidence, geobox: GeoBox, *, min_px: int = 1) -> np.ndarray:
    """Burn scars that only radar and an active-fire sensor saw: a label raster (0 = none).

    Under monsoon cloud radar sees vegetation burnt or cleared as a drop in backscatter (lost volume scattering),
    but a drop alone does not say fire or bulldozer. Where a VIIRS/MODIS fire was detected within reach of the
    region (Fires.reach_m) between radar's last look before its change and its first look after (days, inclusive),
    the drop is a burn scar that two independent sensors agree on. Candidates are pixels the radar test flagged
    as a drop where radar may speak and optics could not look (`_radar_unseen`); groups under `min_px` pixels are
    not tested.
    """
    fires = evidence.fires
    L = evidence.layers
    score, first, before = (L.get(f"{SAR_METHOD}.{k}") for k in ("score", "first", "before"))
    seen = _radar_unseen(evidence)
    out = np.zeros(evidence.codes.shape, dtype="int32")
    if fires is None or not len(fires) or score is None or first is None or before is None or seen is None:
        return out
    support, unseen = seen
    regions = _regions(support & (score < 0) & unseen)
    times = evidence.times[SAR_METHOD]
    baseline = evidence.baseline_last.get(SAR_METHOD, evidence.baseline_last_clear)
    next_id = 1
    for r, sl in enumerate(ndimage.find_objects(regions), start=1):
        if sl is None:
            continue
        region = regions[sl] == r
        if region.sum() < min_px:
            continue
        first_i = _median_index(first[sl][region])
        if first_i < 0:
            continue
        before_i = _median_index(np.where(before[sl][region] < first_i, before[sl][region], -1))
        yy, xx = np.nonzero(region)
        xs, ys = geobox.affine * (xx + sl[1].start + 0.5, yy + sl[0].start + 0.5)
        since = _day(times[before_i]) if before_i >= 0 else baseline
        # The region's pixel centres stand for it, so half a pixel's diagonal is added to each fire's reach.
        pad = abs(geobox.resolution.x) / np.sqrt(2)
        if fires.near(shapely.MultiPoint(np.c_[xs, ys]), since, _day(times[first_i]), pad_m=pad).size:
            out[sl][region & (out[sl] == 0)] = next_id
            next_id += 1
    return out


def radar_vegetation_loss_regions(
    evidence: Evidence, *, exclude: np.ndarray | None = None, min_px: int = 1
) -> np.ndarray:
    """Vegetation loss that only radar saw: a label raster (0 = none).

    A drop in backscatter off cropland and water, where optics could not look (`_radar_unseen`), is vegetation
    burnt, cleared or dug up: the canopy's volume scattering is gone. Radar alone cannot say which (both lower VV
    and VH together, and we know of no C-band test that tells them apart reliably), so the region is not typed
    further; where an active fire agrees it is a burn scar instead (radar_burn_regions; pass its labels as
    `exclude`). A group of candidate pixels counts when it fell at least CRATER_MIN_ROUGHENING_DB below its
    unchanged surroundings of the same land cover (the crater test's threshold, mirrored: a change of soil
    moisture or of the season moves the surroundings too) and holds `min_px` pixels. Never on cropland, where
    flooding, planting and the harvest lower backscatter field by field, nor on water, where the wind does.
    """
    score = evidence.layers.get(f"{SAR_METHOD}.score")
    seen = _radar_unseen(evidence)
    out = np.zeros(evidence.codes.shape, dtype="int32")
    if score is None or seen is None:
        return out
    support, unseen = seen
    candidates = support & (score < 0) & unseen
    lc = evidence.landcover
    if lc is not None:
        candidates &= ~np.isin(lc, (LC_CROP, LC_WATER))
    if exclude is not None:
        candidates &= exclude == 0
    next_id = 1
    for win, region, change in _radar_groups(evidence, candidates, min_px=min_px):
        if change is not None and change <= -CRATER_MIN_ROUGHENING_DB:
            out[win][region & candidates[win] & (out[win] == 0)] = next_id
            next_id += 1
    return out


def complete_structures(labels: np.ndarray, kinds: dict[int, ChangeType], evidence: Evidence) -> np.ndarray:
    """Structural-damage regions take in the unflagged built-up pixels, up to EDGE_REACH_PX beyond them and
    connected to them, that the optical change test flagged (OPTICAL_CHANGE's support: a clear look after the
    change, off cropland). Radar decides that structures were damaged (the optical signal of a collapsed roof
    alone is weak and ambiguous); where the sky was clear, optics see the same block change and, at 10 m without
    the multilook's blur, its extent. Both are strict tests of independent sensors, so the pixels count towards
    the region's core (MMU_CORE_SHARE). Returns a new label raster."""
    cva = evidence.layers.get(f"{OPTICAL_CHANGE}.support")
    if cva is None or evidence.builtup is None:
        return labels
    out = labels.copy()
    weak = cva.astype(bool) & evidence.builtup & (evidence.codes == NONE)
    objects = ndimage.find_objects(labels)
    for k, kind in kinds.items():
        if kind is not ChangeType.STRUCTURAL_DAMAGE or k > len(objects) or objects[k - 1] is None:
            continue
        win = _window(objects[k - 1], EDGE_REACH_PX + 1, labels.shape)
        region = out[win] == k
        out[win][_grow(region, weak[win] & (out[win] == 0)) & ~region] = k
    return out


def _unchanged(codes: np.ndarray) -> np.ndarray:
    """Pixels no detector flagged, nor within EDGE_REACH_PX of one (edges of changes are mixed)."""
    return ~ndimage.binary_dilation(codes != NONE, structure=EIGHT, iterations=EDGE_REACH_PX)


def _calm_cropland(score: np.ndarray, ring: np.ndarray, landcover: np.ndarray, cut: float) -> np.ndarray:
    """Cropland a region may grow into: all of it (of one window) where the cropland among the region's
    surroundings `ring` (at least MIN_RING_PX pixels) did not change beyond the edge test, at most CALM_RING_SHARE
    of it at or above `cut`; none otherwise. A harvest or a stubble burn takes a whole field, tens of metres
    across, so a field changing next to the region shows in its surroundings 30-60 m out."""
    crop = landcover == LC_CROP
    fields = ring & crop & np.isfinite(score)
    if fields.sum() < MIN_RING_PX or (score[fields] >= cut).mean() > CALM_RING_SHARE:
        return np.zeros(crop.shape, bool)
    return crop


def grow_edges(
    labels: np.ndarray,
    kinds: dict[int, ChangeType],
    evidence: Evidence,
    *,
    only: set[int] | None = None,
) -> np.ndarray:
    """Hysteresis: burn and soil regions take in the connected pixels, up to EDGE_REACH_PX beyond them, whose
    score exceeds the median of the region's unchanged surroundings by EDGE_SCORES (seed pixels from the strict
    tests, grown into a looser one). Only into unflagged pixels; onto cropland, where the harvest alone passes the
    optical test, only where the fields around the region changed alike (`_calm_cropland`), or, for a crater
    field, where radar also rose, significantly against the same season a year earlier and by
    CRATER_MIN_ROUGHENING_DB above the region's surroundings (`_roughened_crop`).
    `only`: the labels to grow. Returns a new label raster; the regions' types do not change."""
    out = labels.copy()
    codes = evidence.codes
    unchanged = _unchanged(codes)
    allowed = codes == NONE
    lc = evidence.landcover
    if lc is not None:
        allowed &= lc != LC_CROP
    crop_rise = _crop_rise(evidence.layers)
    sar_score = evidence.layers.get(f"{SAR_METHOD}.score")
    sar = None if sar_score is None else _tested_db(sar_score)
    types = {
        BURN: (ChangeType.BURN_SCAR,),
        SOIL: (ChangeType.CRATER_FIELD, ChangeType.EARTHWORKS),
    }
    objects = ndimage.find_objects(labels)
    for code, (name, excess) in EDGE_SCORES.items():
        score = evidence.layers.get(name)
        if score is None:
            continue
        for k, kind in kinds.items():
            if kind not in types[code] or (only is not None and k not in only) or k > len(objects):
                continue
            sl = objects[k - 1]
            if sl is None:
                continue
            win = _window(sl, RING_PX[1] + EDGE_REACH_PX + 1, labels.shape)
            region = out[win] == k
            ring = _surroundings(region, unchanged[win])
            bg = _background(score[win], region, ring, None if lc is None else lc[win])
            if bg is None:
                continue
            ok = allowed[win]
            if lc is not None:
                crop_ok = _calm_cropland(score[win], ring, lc[win], bg + excess)
                if kind is ChangeType.CRATER_FIELD and crop_rise is not None and sar is not None:
                    # The optical half of _roughened_crop is the score test below, against the same surroundings.
                    crop_ok = crop_ok | _roughened_crop(region, ring, lc[win], crop_rise[win], sar[win])
                ok = ok | (crop_ok & (codes[win] == NONE))
            weak = (score[win] >= bg + excess) & ok & (out[win] == 0)
            out[win][_grow(region, weak) & ~region] = k
    return out


def grow_radar_edges(
    labels: np.ndarray, kinds: dict[int, ChangeType], evidence: Evidence, *, only: set[int]
) -> np.ndarray:
    """Hysteresis for the regions radar decides: the regions in `only` take in the connected pixels, up to
    EDGE_REACH_PX beyond them, where backscatter changed the same way as the region's (its median score's sign)
    with a corrected p-value under RADAR_EDGE_P, and that no detector claimed.

    Structural damage grows only over built-up land (where radar tells damaged structures). Drops only radar saw
    (radar_burn_regions, radar_vegetation_loss_regions) grow only off cropland and water (as the regions
    themselves) and where optics had no clear look after the region's first radar change, or are blind
    (OPTICALLY_BLIND): a clear look that saw nothing is not overruled by weak radar evidence. Other regions do
    not grow here. Returns a new label raster; the regions' types do not change."""
    L = evidence.layers
    p, score, first = (L.get(f"{SAR_METHOD}.{k}") for k in ("p_value", "score", "first"))
    times = evidence.times.get(SAR_METHOD)
    if p is None or score is None or first is None or times is None or not len(times):
        return labels
    out = labels.copy()
    days = np.asarray(times).astype("datetime64[D]").astype("int64")
    weak = (p < RADAR_EDGE_P) & (evidence.codes == NONE)
    lc = evidence.landcover
    drops_ok = weak & (score < 0)
    if lc is not None:
        drops_ok &= ~np.isin(lc, (LC_CROP, LC_WATER))
    objects = ndimage.find_objects(labels)
    for k in sorted(only):
        kind = kinds.get(k)
        if k > len(objects) or objects[k - 1] is None:
            continue
        win = _window(objects[k - 1], EDGE_REACH_PX + 1, labels.shape)
        region = out[win] == k
        if kind is ChangeType.STRUCTURAL_DAMAGE:
            if evidence.builtup is None:
                continue
            sign = np.sign(np.nanmedian(score[win][region]))
            ok = weak[win] & evidence.builtup[win] & (np.sign(score[win]) == sign)
        elif kind in (ChangeType.BURN_SCAR, ChangeType.VEGETATION_LOSS):
            first_i = _median_index(first[win][region])
            if first_i < 0:
                continue
            ok = drops_ok[win].copy()
            if evidence.optical_last_clear is not None:
                unseen = evidence.optical_last_clear[win] < days[first_i]
                if lc is not None:
                    unseen |= np.isin(lc[win], OPTICALLY_BLIND)
                ok &= unseen
        else:
            continue
        out[win][_grow(region, ok & (out[win] == 0)) & ~region] = k
    return out


PRIMARY = {
    ChangeType.BURN_SCAR: "dnbr",
    ChangeType.CRATER_FIELD: "soil-exposure",
    ChangeType.EARTHWORKS: "soil-exposure",
    ChangeType.STRUCTURAL_DAMAGE: "s1-welch-t",
}
CORROBORATORS = {
    SENSOR_S2: ("s1-welch-t",),
    SENSOR_S1: ("cva", "dnbr", "soil-exposure"),
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


def _region_p(p: np.ndarray, pix: np.ndarray, tested: int) -> float | None:
    """An alert's p-value from a per-pixel p-value layer `p`: the region p-value of its pixels
    (detect.multivariate.region_p_value: adaptive quantile aggregation, valid however neighbouring pixels
    depend on each other), Bonferroni-adjusted for as many regions of its size as the area's `tested` (finite)
    pixels hold, floored at P_CITED_FLOOR; None if none of its pixels was tested."""
    inside = p[pix]
    n = int(np.isfinite(inside).sum())
    if n == 0:
        return None
    return max(region_p_value(inside, regions=tested / n), P_CITED_FLOOR)


def _in_area(labels: np.ndarray, evidence: Evidence) -> np.ndarray:
    return labels if evidence.inside is None else np.where(evidence.inside, labels, 0)


def vectorise_alerts(
    evidence: Evidence,
    *,
    geobox: GeoBox,
    area_id: str,
    mmu_ha: float,
) -> list[Alert]:
    """Alert polygons (WGS84) for every change region of at least mmu_ha, largest first."""
    labels, kinds = change_regions(evidence.codes, evidence.layers, evidence.landcover)
    px_ha = abs(geobox.resolution.x * geobox.resolution.y) / 1e4
    # What only radar saw (under cloud, or on bare ground) joins with the radar test as its method: crater fields,
    # burn scars where an active fire agrees, and otherwise untyped vegetation loss.
    radar_only: set[int] = set()
    min_px = int(np.ceil(MMU_CORE_SHARE * mmu_ha / px_ha))
    burns = radar_burn_regions(evidence, geobox, min_px=min_px)
    for ctype, radar in (
        (ChangeType.CRATER_FIELD, radar_crater_regions(evidence)),
        (ChangeType.BURN_SCAR, burns),
        (ChangeType.VEGETATION_LOSS, radar_vegetation_loss_regions(evidence, exclude=burns, min_px=min_px)),
    ):
        free = (radar > 0) & (labels == 0)
        labels[free] = radar[free] + max(kinds, default=0)
        new = {int(k) for k in np.unique(labels[free])}
        kinds.update(dict.fromkeys(new, ctype))
        radar_only |= new
    if not kinds:
        return []
    labels = _in_area(complete_structures(labels, kinds, evidence), evidence)
    core = np.bincount(labels.ravel(), minlength=max(kinds) + 1)
    # The MMU applies to each region with its weaker edge (grow_edges), as long as its core is half of it.
    candidates = {k for k in kinds if core[k] * px_ha >= MMU_CORE_SHARE * mmu_ha}
    labels = grow_edges(labels, kinds, evidence, only=candidates - radar_only)
    structures = {k for k in candidates if kinds[k] is ChangeType.STRUCTURAL_DAMAGE}
    seeded = labels
    labels = _in_area(
        grow_radar_edges(labels, kinds, evidence, only=structures | (candidates & radar_only)), evidence
    )
    # Radar's weaker edge extends a region; whether another sensor agrees is judged without it.
    radar_edge = labels != seeded
    counts = np.bincount(labels.ravel(), minlength=max(kinds) + 1)
    keep = {k for k in candidates if counts[k] * px_ha >= mmu_ha}
    if not keep:
        return []
    labels = np.where(np.isin(labels, list(keep)), labels, 0)
    polys = _polygons(labels, geobox)
    to_ll = Transformer.from_crs(str(geobox.crs), "EPSG:4326", always_xy=True)
    L = evidence.layers
    # Each region's first observation and last clear look before it: the interval its fire must fall in.
    looks: dict[int, tuple[str, int, int]] = {}
    for k in sorted(keep):
        pix = labels == k
        method = SAR_METHOD if k in radar_only else PRIMARY[kinds[k]]
        first_i = _median_index(L[f"{method}.first"][pix])
        if first_i < 0:
            continue
        # The last clear look before the alert's first observation: each pixel's own look before its change, but
        # only those earlier than the alert's (median) first date, so that the two dates never contradict.
        before_v = L[f"{method}.before"][pix]
        looks[k] = (method, first_i, _median_index(np.where(before_v < first_i, before_v, -1)))

    def interval(k: int) -> tuple[date | None, date]:
        method, first_i, before_i = looks[k]
        times = evidence.times[method]
        before = (
            _day(times[before_i])
            if before_i >= 0
            else evidence.baseline_last.get(method, evidence.baseline_last_clear)
        )
        return before, _day(times[first_i])

    order = sorted(looks)
    owned = (
        dict(
            zip(
                order, attribute_fires(evidence.fires, [(polys[k], *interval(k)) for k in order]), strict=True
            )
        )
        if evidence.fires is not None
        else {}
    )
    # Per-pixel p-value layers alerts cite (radar's test, the optical test), with their tested pixel counts.
    p_layers = {
        sensor: (layer, int(np.isfinite(layer).sum()))
        for sensor, layer in (
            (SENSOR_S1, L.get(f"{SAR_METHOD}.p_value")),
            (SENSOR_S2, L.get(OPTICAL_P_LAYER)),
        )
        if layer is not None
    }
    alerts: list[Alert] = []
    for k in order:
        ctype = kinds[k]
        pix = labels == k
        method, first_i, before_i = looks[k]
        sensor = evidence.sensors[method]
        times = evidence.times[method]
        sensors = {sensor}
        methods = {method}
        judged = pix & ~radar_edge
        for other in CORROBORATORS[sensor]:
            mask = L.get(f"{other}.support", L.get(f"{other}.mask"))
            if mask is not None and mask[judged].mean() >= CORROBORATION_SHARE:
                sensors.add(evidence.sensors[other])
                methods.add(other)
        last_v = L[f"{method}.last"][pix]
        last_i = int(last_v.max()) if (last_v >= 0).any() else first_i
        obs = int(np.median(L[f"{method}.count"][pix][L[f"{method}.count"][pix] > 0]))
        score = L[f"{method}.score"][pix]
        score = score[np.isfinite(score)]
        rbr = None
        if ctype is ChangeType.BURN_SCAR and f"{method}.rbr" in L:
            rbr_v = L[f"{method}.rbr"][pix]
            rbr = round(float(np.nanmean(rbr_v)), 4) if np.isfinite(rbr_v).any() else None
        p_value, optical_p = (
            _region_p(p_layers[s][0], pix, p_layers[s][1]) if s in p_layers and s in sensors else None
            for s in (SENSOR_S1, SENSOR_S2)
        )
        radar_last_change = None
        change_last = L.get(f"{SAR_METHOD}.change_last")
        dated = change_last[pix][change_last[pix] >= 0] if change_last is not None else np.empty(0, "int32")
        if SENSOR_S1 in sensors and dated.size:
            # Not the maximum: over hundreds of pixels some speckle always makes a change point at the latest
            # pass. The latest pass by which a quarter of the dated pixels had still changed is a region's.
            last = int(np.quantile(dated, 1.0 - RADAR_LAST_SHARE, method="lower"))
            radar_last_change = _day(evidence.times[SAR_METHOD][last])
        scene_ids = [
            s for m in sorted(methods) for s in _scenes_between(evidence, m, before_i if m == method else -1)
        ]
        lc_name, crop_share = _land_cover(evidence.landcover, pix)
        seasonal = ctype is ChangeType.BURN_SCAR and crop_share >= 0.5
        geom = polys[k]
        before_day, first_day = interval(k)
        fire = summarise_fires(evidence.fires, owned[k]) if evidence.fires is not None else None
        if fire is not None and fire.count and ctype is ChangeType.BURN_SCAR:
            # A fire detected there in the interval is a second, independent sensor seeing the burn.
            sensors |= set(fire.sensors)
            methods.add(FIRE_METHOD)
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
                first_observed=first_day,
                last_observed=_day(times[last_i]),
                last_clear_before=before_day,
                confidence=confidence_tier(
                    sensors=sensors, methods=methods - {"cva"}, observations=obs, seasonal=seasonal
                ),
                land_cover=lc_name,
                seasonal=seasonal,
                severity=burn_severity(float(score.mean()))
                if ctype is ChangeType.BURN_SCAR and method == PRIMARY[ctype] and score.size
                else None,
                rbr=rbr,
                severity_rbr=rbr_severity(rbr) if rbr is not None else None,
                radar_last_change=radar_last_change,
                sensors=sorted(sensors),
                methods=sorted(methods),
                observations=obs,
                score_mean=round(float(score.mean()), 4) if score.size else 0.0,
                score_max=round(float(score[np.argmax(np.abs(score))]), 4) if score.size else 0.0,
                p_value=p_value,
                optical_p_value=optical_p,
                thermal_detections=fire.count if fire is not None else None,
                thermal_first=fire.first if fire is not None else None,
                thermal_last=fire.last if fire is not None else None,
                thermal_frp_max=fire.frp_max if fire is not None else None,
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


RBR_SEVERITY = ((0.298, "high"), (0.130, "moderate"), (0.035, "low"))
"""Burn severity classes of RBR (Parks et al. 2014, Remote Sensing 6: 1827-1844: the RBR of CBI 2.25, 1.25, 0.1)."""


def rbr_severity(rbr: float) -> str:
    for lower, name in RBR_SEVERITY:
        if rbr >= lower:
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


GAP_CELL_PX = 3
"""Coverage gaps are outlined on 30 m cells: cloud masks are grown by 120 m anyway, and a 10 m staircase would
swell the GeoJSON without saying more."""


def coverage_gaps(
    optical: np.ndarray,
    radar: np.ndarray,
    inside: np.ndarray,
    geobox: GeoBox,
    footprint: Any,
    *,
    cell_px: int = GAP_CELL_PX,
) -> list[ObservationGap]:
    """Outlines (WGS84) of the area's pixels each sensor did not observe, by which sensor missed them: optics
    alone, radar alone, or both (disjoint). optical, radar: (y, x) bool, observed in the after window; inside:
    the area's pixels (AOI.inside); footprint: the area in the grid's CRS, which clips the outlines."""
    px_ha = abs(geobox.resolution.x * geobox.resolution.y) / 1e4
    cases = {
        (SENSOR_S2,): inside & ~optical & radar,
        (SENSOR_S1,): inside & optical & ~radar,
        (SENSOR_S1, SENSOR_S2): inside & ~optical & ~radar,
    }
    # Each 30 m cell goes to the case most of its pixels are in (observed by both, or outside the area, count too).
    h, w = inside.shape
    pad = ((0, -h % cell_px), (0, -w % cell_px))
    stacks = [*cases.values(), inside & optical & radar, ~inside]
    counts = np.stack(
        [
            np.pad(m, pad).reshape(-(-h // cell_px), cell_px, -(-w // cell_px), cell_px).sum((1, 3))
            for m in stacks
        ]
    )
    winner = counts.argmax(axis=0)
    transform = geobox.affine * Affine.scale(cell_px)
    to_ll = Transformer.from_crs(str(geobox.crs), "EPSG:4326", always_xy=True)
    gaps = []
    for i, (sensors, mask) in enumerate(cases.items()):
        cells = winner == i
        if not mask.any() or not cells.any():
            continue
        pieces = [
            shape(g)
            for g, _ in rasterio.features.shapes(
                cells.astype("uint8"), mask=cells, transform=transform, connectivity=4
            )
        ]
        outline = shapely.make_valid(shapely.union_all(pieces)).intersection(footprint)
        polygons = [orient(p) for p in shapely.get_parts(outline) if p.geom_type == "Polygon" and p.area > 0]
        if not polygons:
            continue
        ll = shapely.ops.transform(to_ll.transform, shapely.MultiPolygon(polygons))
        gaps.append(
            ObservationGap(
                not_seen_by=list(sensors), area_ha=round(float(mask.sum()) * px_ha, 2), geometry=mapping(ll)
            )
        )
    return gaps
