"""Results: the small, serialisable records that pass between the pipeline, the flows and the report."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ChangeType(StrEnum):
    BURN_SCAR = "burn_scar"
    CRATER_FIELD = "crater_field"
    STRUCTURAL_DAMAGE = "structural_damage"
    EARTHWORKS = "earthworks"
    VEGETATION_LOSS = "vegetation_loss"


UNTYPED_AS: dict[ChangeType, tuple[ChangeType, ...]] = {
    ChangeType.VEGETATION_LOSS: (ChangeType.BURN_SCAR, ChangeType.EARTHWORKS),
}
"""The types an untyped change may be: radar's vegetation loss is vegetation burnt, or cleared and dug up."""


CHANGE_LABELS: dict[ChangeType, str] = {
    ChangeType.BURN_SCAR: "Burn scar",
    ChangeType.CRATER_FIELD: "Crater field",
    ChangeType.STRUCTURAL_DAMAGE: "Structural damage",
    ChangeType.EARTHWORKS: "New earthworks",
    ChangeType.VEGETATION_LOSS: "Vegetation loss",
}


class Confidence(StrEnum):
    """Tiers in the manner of the integrated forest alerts (GFW/RADD)."""

    LOW = "low"
    """One method, one observation."""
    HIGH = "high"
    """Seen again in a later independent observation, or two methods agree."""
    HIGHEST = "highest"
    """Two independent sensors agree."""


Lifecycle = Literal["new", "unconfirmed", "confirmed", "ongoing"]
"""new: first reported by this run; unconfirmed: reported by an earlier run, not seen again since (no later clear
look); confirmed: a later observation still shows it; ongoing: radar dated a change point after what the last
report had seen (repeated strikes)."""

LIFECYCLE_LABELS: dict[str, str] = {
    "new": "new",
    "unconfirmed": "not seen again yet",
    "confirmed": "seen again",
    "ongoing": "still changing",
}


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Alert(_Record):
    """One change polygon, as written to the GeoJSON (geometry in WGS84 lon/lat)."""

    id: str
    """Stable id: the same place and change type give the same id on every run."""
    hotspot_id: str
    change_type: ChangeType
    area_ha: float
    first_observed: date
    """First clear observation that showed the change."""
    last_observed: date
    """Latest observation that still showed it."""
    last_clear_before: date | None = None
    """Latest clear observation before the change: the change happened after this day."""
    confidence: Confidence
    sensors: list[str]
    """Independent sensors that saw it, e.g. ['sentinel-2', 'sentinel-1']."""
    methods: list[str]
    """Methods that flagged it, e.g. ['dnbr', 's1-welch-t']."""
    observations: int
    """Number of clear optical observations after the change that showed it (0 if SAR only)."""
    score_mean: float
    """Mean of the primary method's change score inside the polygon (dNBR, dNDVI or dB change)."""
    score_max: float
    p_value: float | None = None
    """For alerts radar saw: the SAR test's no-change p-value for the alert's region, from its pixels' corrected
    p-values as optical_p_value is; floored at 1e-30 (vectorise.P_CITED_FLOOR: 1e-30 reads "p < 1e-30"), as is
    optical_p_value."""
    optical_p_value: float | None = None
    """For alerts Sentinel-2 saw: the no-change p-value of the multivariate optical test (IR-MAD's
    inflation-corrected chi-square on six bands, the before composite against the after window's latest clear
    looks) for the alert's region: its pixels' p-values by adaptive quantile aggregation, Bonferroni-adjusted
    for the alert-sized regions of the area (detect.multivariate.region_p_value). Near 1: that generic test does
    not see the change the index tests typed. None = not computed (no Sentinel-2 look, or radar only)."""
    severity: str | None = None
    """Burn severity class of the mean dNBR (USGS / Key & Benson 2006), for burn scars."""
    rbr: float | None = None
    """Mean relativized burn ratio (Parks et al. 2014), for burn scars: comparable across land covers."""
    severity_rbr: str | None = None
    """Burn severity class of the mean RBR (Parks et al. 2014 thresholds for CBI 0.1 / 1.25 / 2.25)."""
    radar_last_change: date | None = None
    """Latest Sentinel-1 pass at which the omnibus test found a change point after the baseline, for alerts radar
    saw: with first_observed it brackets when the ground kept changing (e.g. repeated strikes)."""
    land_cover: str | None = None
    """Dominant land cover under the alert (ESA WorldCover class name), where the source has land cover."""
    seasonal: bool = False
    """A change the season makes there routinely: a burn scar mostly on cropland (stubble burning in the dry
    season). More looks of it do not make it conflict; it stays low confidence until another sensor agrees."""
    thermal_detections: int | None = None
    """Active-fire detections (VIIRS/MODIS) within a pixel of the outline between the last clear look before and
    the first observation; 0 = thermal data checked, no fire seen there (cloud hides fires too); None = thermal
    data not checked in this run."""
    thermal_first: datetime | None = None
    """Time (UTC) of the first of those detections: for a burn scar, when it was burning."""
    thermal_last: datetime | None = None
    thermal_frp_max: float | None = None
    """Largest fire radiative power among them, MW."""
    scene_ids: list[str]
    lifecycle: Lifecycle | None = None
    """What happened to it since earlier daily runs reported it (monitoring.track): new, unconfirmed, confirmed or
    ongoing; None = not tracked (an ad hoc check)."""
    first_reported: date | None = None
    """Run date of the first daily run that reported this alert; None = not tracked."""
    geometry: dict[str, Any]
    """GeoJSON Polygon/MultiPolygon in WGS84."""


class Coverage(_Record):
    """What we could and could not see at one hot spot in the after window."""

    optical_scenes_before: int
    optical_scenes_after: int
    optical_observed_fraction: float
    """Share of the AOI with at least one clear Sentinel-2 observation in the after window."""
    optical_last_clear: date | None
    """Latest date on which at least half of the AOI was clear."""
    sar_scenes_before: int
    sar_scenes_after: int
    sar_observed_fraction: float
    """Share of the AOI SAR saw in the after window (outside layover/shadow)."""
    sar_last: date | None
    not_observed_fraction: float
    """Share of the AOI that neither sensor observed in the after window."""
    status: Literal["observed", "partly observed", "not observed", "failed"]


SENSOR_S1, SENSOR_S2 = "sentinel-1", "sentinel-2"
DRAWN_SHARE = 0.95
"""A footprint under this share of its grid's box is a drawn shape: the check and the briefing say its own area
beside the box's (a bbox's lon/lat outline leaves out only slivers, 1-3 %)."""


class ObservationGap(_Record):
    """Part of an area that a sensor did not observe in the after window: no alert there is not 'no change'."""

    not_seen_by: list[str]
    """'sentinel-2' (no clear optical look, before and after: burn scars, earthworks and crater fields not assessed
    optically; radar saw it), 'sentinel-1' (layover, shadow or no pass: radar's change not assessed; optics saw
    it), or both (nothing assessed)."""
    area_ha: float
    """Its area, counted in 10 m pixels (the fractions of Coverage), not from the outline."""
    geometry: dict[str, Any]
    """GeoJSON (Multi)Polygon in WGS84, outlined on 30 m cells (each cell goes to the case most of its pixels
    are in)."""

    @property
    def statement(self) -> str:
        if self.not_seen_by == [SENSOR_S2]:
            return (
                "No clear Sentinel-2 view: burn scars, earthworks and crater fields not assessed optically here; "
                "Sentinel-1 observed it."
            )
        if self.not_seen_by == [SENSOR_S1]:
            return (
                "No Sentinel-1 view (layover, shadow or no pass): radar change not assessed here; "
                "Sentinel-2 observed it."
            )
        return "Observed by neither sensor: nothing was assessed here; no alert does not mean no change."


class FireDetection(_Record):
    """One active-fire pixel (VIIRS 375 m, MODIS 1 km) at one overpass, as NASA FIRMS gives it."""

    time: datetime
    """Acquisition time, UTC."""
    latitude: float
    longitude: float
    """The pixel's centre: the fire is somewhere in that pixel."""
    satellite: str
    instrument: str
    confidence: str
    """low, nominal or high (FIRMS)."""
    frp: float | None
    """Fire radiative power, MW."""
    daynight: str
    product: str
    """The FIRMS product (e.g. VIIRS_SNPP_NRT) or 'simulated'."""
    pixel_m: float | None = None
    """This detection's pixel size, m (FIRMS' scan/track: it grows off nadir); None in results written before it
    was kept: then the instrument's nominal size."""


class Windows(_Record):
    before: tuple[date, date]
    after: tuple[date, date]
    sar_before: tuple[date, date]


class HotspotResult(_Record):
    """Everything the report needs about one area; written as <run>/areas/<id>/result.json."""

    area_id: str
    name: str
    name_th: str | None = None
    name_km: str | None = None
    province_th: str | None = None
    province_kh: str | None = None
    priority: int = 2
    coordinates: str | None = None
    """'sourced' or 'estimated' for hot spots; None for ad hoc areas."""
    notes: str = ""
    footprint: dict[str, Any]
    """The AOI as a GeoJSON Polygon in WGS84."""
    crs: str
    """The AOI grid's CRS (EPSG code), for maps."""
    bounds: tuple[float, float, float, float]
    """The AOI grid's bounds in that CRS (left, bottom, right, top)."""
    windows: Windows
    source: str
    simulated: bool
    status: Literal["ok", "failed"]
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    """What limited the analysis without stopping it (e.g. no SAR after the baseline)."""
    coverage: Coverage | None = None
    alerts: list[Alert] = Field(default_factory=list)
    seasonal_burns: list[Alert] = Field(default_factory=list)
    """Burn scars on cropland set aside as the season's farm burning (fuse.set_aside_farm_burning): where many
    fields burnt in the same window, or many fires burnt on the area's cropland, single-sensor burns on cropland
    are shown as context, not counted as alerts. Same records as alerts, so a GIS analyst can still inspect each
    one."""
    cropland_fires: int | None = None
    """Active-fire detections on the area's cropland over the run's windows (before and after), away from its
    alerts (fuse.cropland_fires): the farm-burning season test weighs them. None = thermal data or land cover
    not available in this run."""
    tracked: bool = False
    """Whether the alerts were matched against earlier daily runs (monitoring.track); ad hoc checks are not."""
    previous_run: date | None = None
    """Tracked: the earlier daily run of this area the alerts were compared with; None = none stored (all new)."""
    withdrawn: list[Alert] = Field(default_factory=list)
    """Alerts earlier daily runs reported here, whose change began inside this run's after window, that this run
    no longer detects (monitoring.track): as last reported. Today's evidence no longer supports them."""
    thermal_source: str | None = None
    """Where active fires came from ('simulator', 'firms'); None = thermal data not checked in this run."""
    fires: list[FireDetection] = Field(default_factory=list)
    """Active-fire detections inside the area in the after window (all of them, on alerts or not: a fire that left
    no scar the images could see is still a fire). Thick cloud hides fires from VIIRS too: none is not proof."""
    gaps: list[ObservationGap] = Field(default_factory=list)
    """Where a sensor did not observe the area in the after window, by which sensor missed it (disjoint)."""
    scene_ids: list[str] = Field(default_factory=list)
    chips: str | None = None
    """File name (inside the area folder) of chips.npz: before_rgb, after_rgb (uint8 HxWx3), unobserved (bool: no
    clear Sentinel-2 view in both windows, so burn scars, craters and earthworks could not be assessed there)."""
    seconds: float = 0.0


class RunManifest(_Record):
    """manifest.json: what went in, so a run can be checked and repeated."""

    run_date: date
    kind: Literal["daily", "area-check"]
    created: datetime
    source: str
    simulated: bool
    settings: dict[str, Any]
    scenario: str | None = None
    areas: list[str]
    failed: list[str]
    versions: dict[str, str]
    scene_ids: dict[str, list[str]]
    outputs: list[str]


def area_dir(run_dir: Path, area_id: str) -> Path:
    return run_dir / "areas" / area_id
