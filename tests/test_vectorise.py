from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pyproj import Geod, Transformer
from scipy import ndimage
from shapely.geometry import shape

from monitoring.detect.multivariate import region_p_value
from monitoring.fuse import BURN, NONE, SOIL, STRUCTURE, Fires
from monitoring.results import ChangeType, Confidence
from monitoring.sources.base import LC_BARE, LC_CROP, LC_WATER
from monitoring.vectorise import (
    CALM_RING_SHARE,
    CRATER_MIN_SOLIDITY,
    EDGE_REACH_PX,
    MIN_RING_PX,
    OPTICAL_P_LAYER,
    P_CITED_FLOOR,
    RING_PX,
    Evidence,
    _crop_rise,
    coverage_gaps,
    grow_edges,
    soil_regions,
    solidity,
    vectorise_alerts,
)
from tests.synthetic import tiny_aoi

GEOD = Geod(ellps="WGS84")


def _craters(shape_: tuple[int, int], box: tuple[slice, slice], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = np.zeros(shape_, bool)
    n = 120  # ~20% of the field's pixels disturbed, as 25-40% crater cover shows at 10 m
    ys = rng.integers(box[0].start, box[0].stop, n)
    xs = rng.integers(box[1].start, box[1].stop, n)
    m[ys, xs] = True  # single-pixel craters, scattered
    return m


def test_scattered_small_blobs_are_a_crater_field_and_lines_are_earthworks() -> None:
    m = _craters((80, 80), (slice(5, 30), slice(5, 30)))
    m[60, 10:70] = True  # a trench, one pixel wide
    m[61, 10:70] = True
    labels, kinds = soil_regions(m)
    crater_px = np.isin(labels, [k for k, v in kinds.items() if v is ChangeType.CRATER_FIELD])
    works_px = np.isin(labels, [k for k, v in kinds.items() if v is ChangeType.EARTHWORKS])
    assert crater_px[5:30, 5:30].mean() > 0.6  # the field's extent, not just the crater pixels
    assert not crater_px[50:, :].any()
    assert works_px[60:62, 10:70].all()  # the trench's own pixels...
    assert works_px[50:, :].sum() == 120  # ...and nothing around it


def _evidence(codes: np.ndarray, *, sar_share: float = 0.0, count: int = 1) -> Evidence:
    times = pd.to_datetime(["2025-12-01", "2025-12-06", "2025-12-11"]).values
    shape_ = codes.shape
    layers: dict[str, np.ndarray] = {}
    for method in ("dnbr", "soil-exposure", "s1-welch-t", "cva"):
        layers[f"{method}.first"] = np.full(shape_, 1, "int32")
        layers[f"{method}.last"] = np.full(shape_, 2, "int32")
        layers[f"{method}.before"] = np.full(shape_, 0, "int32")
        layers[f"{method}.count"] = np.full(shape_, count, "int16")
        layers[f"{method}.score"] = np.full(shape_, 0.5, "float32")
        layers[f"{method}.mask"] = np.zeros(shape_, bool)
    sar = layers["s1-welch-t.mask"]
    sar.ravel()[: int(sar_share * sar.size)] = True
    layers["s1-welch-t.mask"] = sar | (codes == STRUCTURE)
    layers["s1-welch-t.p_value"] = np.where(layers["s1-welch-t.mask"], 1e-8, 1.0).astype("float32")
    return Evidence(
        codes=codes,
        layers=layers,
        times={m: times for m in ("dnbr", "soil-exposure", "s1-welch-t", "cva")},
        sensors={
            "dnbr": "sentinel-2",
            "soil-exposure": "sentinel-2",
            "cva": "sentinel-2",
            "s1-welch-t": "sentinel-1",
        },
        scene_ids={m: ("a", "b", "c") for m in ("dnbr", "soil-exposure", "s1-welch-t", "cva")},
    )


def _burn_and_structure(shape_: tuple[int, int]) -> np.ndarray:
    """Change codes of a 1 ha burn (optics) and a 0.5 ha structure (radar) far apart."""
    codes = np.zeros(shape_, "uint8")
    codes[5:15, 5:15] = BURN
    codes[40:50, 40:45] = STRUCTURE
    return codes


def test_alerts_are_made_of_the_areas_pixels_only() -> None:
    # A drawn area that leaves out the grid's east half (x >= 30): the burn wholly outside makes no alert, the
    # one across the edge is cut there as at the grid's own edge, and the one inside is as without the mask.
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[5:15, 5:15] = BURN  # inside, 1 ha
    codes[20:30, 20:40] = BURN  # across the edge, 1 ha inside and 1 ha outside
    codes[40:50, 40:50] = BURN  # outside
    inside = np.zeros(aoi.shape, bool)
    inside[:, :30] = True
    whole = vectorise_alerts(_evidence(codes), geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    ev = _evidence(codes)
    cut = vectorise_alerts(
        Evidence(**{**ev.__dict__, "inside": inside}), geobox=aoi.geobox, area_id="x", mmu_ha=0.2
    )
    assert sorted(a.area_ha for a in whole) == pytest.approx([1.0, 1.0, 2.0])
    assert sorted(a.area_ha for a in cut) == pytest.approx([1.0, 1.0])
    east = aoi.geobox.affine * (30, 0)
    for a in cut:
        utm = shapely.ops.transform(
            Transformer.from_crs("EPSG:4326", str(aoi.crs), always_xy=True).transform, shape(a.geometry)
        )
        assert utm.bounds[2] <= east[0] + 1e-6
    # Every pixel inside (the default, None) is the same as no mask.
    everywhere = Evidence(**{**ev.__dict__, "inside": np.ones(aoi.shape, bool)})
    same = vectorise_alerts(everywhere, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert [a.model_dump() for a in same] == [a.model_dump() for a in whole]


def test_alerts_carry_type_area_dates_and_tiers() -> None:
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[5:15, 5:15] = BURN  # 1 ha
    codes[30:34, 30:34] = STRUCTURE  # 0.16 ha, under the MMU
    codes[40:50, 40:45] = STRUCTURE  # 0.5 ha
    alerts = vectorise_alerts(_evidence(codes), geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert [a.change_type for a in alerts] == [ChangeType.BURN_SCAR, ChangeType.STRUCTURAL_DAMAGE]
    burn, struct = alerts
    assert burn.area_ha == pytest.approx(1.0)
    assert str(burn.first_observed) == "2025-12-06" and str(burn.last_clear_before) == "2025-12-01"
    assert burn.confidence is Confidence.LOW and burn.sensors == ["sentinel-2"] and burn.p_value is None
    # Radar's p-value is its test's region p-value, adjusted for the area's regions of the alert's size.
    radar_p = np.full(50, 1e-8)
    assert struct.sensors == ["sentinel-1"]
    assert struct.p_value == pytest.approx(region_p_value(radar_p, regions=codes.size / 50), rel=1e-6)
    # Geodesic area of the WGS84 polygon agrees with the pixel count.
    area = abs(GEOD.geometry_area_perimeter(shape(burn.geometry))[0]) / 1e4
    assert area == pytest.approx(1.0, rel=0.01)


def test_alerts_optics_saw_cite_the_region_p_value_of_the_optical_test() -> None:
    aoi = tiny_aoi()
    codes = _burn_and_structure(aoi.shape)
    burn_px = codes == BURN
    ev = _evidence(codes)
    q = np.ones(aoi.shape, "float32")
    q[5:15, 5:15] = 1e-9  # the burn changed throughout
    q[45, 42] = 1e-12  # under the radar-only structure: not cited, optics did not see it
    q[60:62, 60:62] = np.nan  # not tested (cloud): not counted among the area's pixels
    ev.layers[OPTICAL_P_LAYER] = q
    burn, struct = vectorise_alerts(ev, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    regions = np.isfinite(q).sum() / burn_px.sum()
    assert burn.optical_p_value == pytest.approx(region_p_value(q[burn_px], regions=regions), rel=1e-6)
    assert burn.optical_p_value < 1e-6 and burn.p_value is None
    assert struct.sensors == ["sentinel-1"] and struct.optical_p_value is None
    # One odd pixel does not make the burn significant (the smallest pixel p-value would have).
    odd = np.ones(aoi.shape, "float32")
    odd[7, 8] = 1e-12
    ev.layers[OPTICAL_P_LAYER] = odd
    (burn, _) = vectorise_alerts(ev, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert burn.optical_p_value is not None and burn.optical_p_value > 0.05
    # Without the layer (no optical test ran) nothing is cited.
    (plain, _) = vectorise_alerts(_evidence(codes), geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert plain.optical_p_value is None
    # A p-value that underflowed to 0 (float32 layers, a very strong change) is cited at the floor, never as 0.
    ev.layers[OPTICAL_P_LAYER] = np.where(burn_px, 0.0, 1.0).astype("float32")
    ev.layers["s1-welch-t.p_value"] = np.zeros(aoi.shape, "float32")
    burn, struct = vectorise_alerts(ev, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert burn.optical_p_value == P_CITED_FLOOR and struct.p_value == P_CITED_FLOOR


def test_optical_change_on_built_up_land_completes_a_radar_structure() -> None:
    """A damaged compound whose radar flags alone are under half the MMU becomes an alert where a clear optical look
    saw the same block change; optical change off built-up land, beyond the reach, or without radar adds nothing."""
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[20:23, 20:23] = STRUCTURE  # 9 radar pixels: 0.09 ha, under half of a 0.2 ha MMU
    cva = np.zeros(aoi.shape, bool)
    cva[18:25, 18:25] = True  # the compound as optics saw it: 49 pixels, 0.49 ha
    cva[18:25, 40:47] = (
        True  # optical change with no radar change (a new roof, haze): never structural damage
    )
    cva[5:8, 20:23] = True  # beyond EDGE_REACH_PX of the radar flags
    builtup = np.zeros(aoi.shape, bool)
    builtup[:, :60] = True
    builtup[18, 18:25] = False  # a road along the compound: not built-up to radar
    ev = _evidence(codes)
    completed = Evidence(**{**ev.__dict__, "layers": {**ev.layers, "cva.support": cva}, "builtup": builtup})
    (a,) = vectorise_alerts(completed, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert a.change_type is ChangeType.STRUCTURAL_DAMAGE
    assert a.area_ha == pytest.approx(0.42)  # 7 x 7 less the road's row; nothing from the far patches
    assert a.sensors == ["sentinel-1", "sentinel-2"] and a.confidence is Confidence.HIGHEST
    # Without the built-up layer (no radar) or without the optical test, the radar flags stay under the MMU.
    assert (
        vectorise_alerts(
            Evidence(**{**completed.__dict__, "builtup": None}), geobox=aoi.geobox, area_id="x", mmu_ha=0.2
        )
        == []
    )
    assert (
        vectorise_alerts(
            Evidence(**{**ev.__dict__, "builtup": builtup}), geobox=aoi.geobox, area_id="x", mmu_ha=0.2
        )
        == []
    )


def test_radar_structural_damage_takes_in_its_weaker_edge_on_built_up_land() -> None:
    """Hysteresis for structures: built-up pixels within two pixels whose own corrected p-value is under 5% and
    that changed the same way complete a region whose strict pixels fall under the MMU."""
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[20:24, 20:24] = STRUCTURE  # 16 px: a core over half the 0.2 ha MMU, under the MMU
    ev = _evidence(codes)  # radar score +0.5 dB everywhere
    p = ev.layers["s1-welch-t.p_value"].copy()
    p[18:26, 18:26] = np.minimum(p[18:26, 18:26], 0.01)
    p[30:40, 30:40] = 0.01  # weak evidence beyond the reach: another place
    builtup = np.zeros(aoi.shape, bool)
    builtup[:, :60] = True
    builtup[18:26, 24:26] = False  # a yard beside the block: not built-up to radar
    layers = {**ev.layers, "s1-welch-t.p_value": p}
    grown = Evidence(**{**ev.__dict__, "layers": layers, "builtup": builtup})
    (a,) = vectorise_alerts(grown, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert a.change_type is ChangeType.STRUCTURAL_DAMAGE and a.area_ha == pytest.approx(0.48)  # 8 x 6 px
    grown_p = p[18:26, 18:24]  # the region with its edge: 16 strict pixels at 1e-8, 32 weaker at 0.01
    assert a.sensors == ["sentinel-1"]
    assert a.p_value == pytest.approx(region_p_value(grown_p, regions=p.size / grown_p.size), rel=1e-6)
    # Whether optics agree is judged on the strict pixels: 6 of 16 is agreement, though only 6 of the grown 48.
    cva = np.zeros(aoi.shape, bool)
    cva[20:22, 20:23] = True
    seen = Evidence(**{**grown.__dict__, "layers": {**layers, "cva.support": cva}})
    (b,) = vectorise_alerts(seen, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert b.area_ha == pytest.approx(0.48) and b.sensors == ["sentinel-1", "sentinel-2"]
    # Without the built-up layer, or where the edge changed the other way, the region stays under the MMU.
    fell = np.where(codes == STRUCTURE, 0.5, -0.5).astype("float32")
    for other in (
        {"builtup": None},
        {"builtup": builtup, "layers": {**layers, "s1-welch-t.score": fell}},
    ):
        assert (
            vectorise_alerts(
                Evidence(**{**grown.__dict__, **other}), geobox=aoi.geobox, area_id="x", mmu_ha=0.2
            )
            == []
        )


def test_two_sensors_make_highest_and_repeat_makes_high() -> None:
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[5:15, 5:15] = BURN
    ev = _evidence(codes, sar_share=1.0)
    (a,) = vectorise_alerts(ev, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert a.confidence is Confidence.HIGHEST and a.sensors == ["sentinel-1", "sentinel-2"]
    (b,) = vectorise_alerts(_evidence(codes, count=2), geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert b.confidence is Confidence.HIGH


def test_the_last_clear_look_before_never_follows_the_first_observation() -> None:
    # Most pixels changed by the first look after the baseline (no clear look before it in the window: -1), a few
    # were seen changed later: the median first date is the first look; their later 'before' must not be used.
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[5:15, 5:15] = BURN
    ev = _evidence(codes)
    first = np.full(aoi.shape, 0, "int32")
    before = np.full(aoi.shape, -1, "int32")
    first[5:8, 5:15], before[5:8, 5:15] = 2, 1  # 30 of the 100 pixels
    ev = Evidence(**{**ev.__dict__, "layers": {**ev.layers, "dnbr.first": first, "dnbr.before": before}})
    (a,) = vectorise_alerts(ev, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert str(a.first_observed) == "2025-12-01"
    assert a.last_clear_before is None or a.last_clear_before <= a.first_observed


def test_ids_are_stable_and_differ_by_place() -> None:
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[5:15, 5:15] = BURN
    codes[40:50, 40:50] = BURN
    a1 = vectorise_alerts(_evidence(codes), geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    a2 = vectorise_alerts(_evidence(codes), geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert [a.id for a in a1] == [a.id for a in a2]
    assert len({a.id for a in a1}) == 2


@settings(max_examples=25, deadline=None)
@given(arrays(np.bool_, (24, 24), elements=st.booleans()))
def test_vectorise_then_rasterise_keeps_the_area(mask: np.ndarray) -> None:
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[:24, :24] = np.where(mask, BURN, 0)
    alerts = vectorise_alerts(_evidence(codes), geobox=aoi.geobox, area_id="x", mmu_ha=0.01)
    # The closing may add enclosed pixels, never drop any; polygon area equals the reported pixel area.
    total = sum(a.area_ha for a in alerts)
    assert total >= mask.sum() * 0.01 - 1e-9 or mask.sum() == 0
    for a in alerts:
        area = abs(GEOD.geometry_area_perimeter(shape(a.geometry))[0]) / 1e4
        assert area == pytest.approx(a.area_ha, rel=0.02, abs=0.002)
        assert shapely.is_valid(shape(a.geometry))


def test_a_burn_on_cropland_stays_low_however_often_it_is_seen() -> None:
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[5:15, 5:15] = BURN
    codes[30:40, 30:40] = BURN
    ev = _evidence(codes, count=3)
    lc = np.full(aoi.shape, 10, "uint8")
    lc[0:20, 0:20] = 40  # the first burn lies on cropland
    ev = Evidence(**{**ev.__dict__, "landcover": lc})
    alerts = {a.land_cover: a for a in vectorise_alerts(ev, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)}
    assert alerts["cropland"].confidence is Confidence.LOW and alerts["cropland"].seasonal
    assert alerts["tree cover"].confidence is Confidence.HIGH and not alerts["tree cover"].seasonal


def test_burn_severity_classes() -> None:
    from monitoring.vectorise import burn_severity

    assert [burn_severity(v) for v in (0.05, 0.2, 0.3, 0.5, 0.8)] == [
        "unburned",
        "low",
        "moderate-low",
        "moderate-high",
        "high",
    ]


# -- crater field or earthworks: what the images show ------------------------------------------------------------

FOREST, GRASS = 10, 30


def _typed(labels: np.ndarray, kinds: dict[int, ChangeType], where: tuple[slice, slice]) -> set[ChangeType]:
    return {kinds[k] for k in np.unique(labels[where]) if k}


def _radar(shape_: tuple[int, int], box: tuple[slice, slice], inside_db: float, seed: int = 0) -> np.ndarray:
    """Signed dB change: speckle-like noise (0.7 dB) everywhere, `inside_db` more over the box."""
    sar = np.random.default_rng(seed).normal(0.0, 0.7, shape_).astype("float32")
    sar[box] += inside_db
    return sar


@pytest.mark.parametrize(
    ("inside_db", "expected"), [(2.0, ChangeType.CRATER_FIELD), (-1.5, ChangeType.EARTHWORKS)]
)
def test_radar_roughening_types_a_solid_compact_patch(inside_db: float, expected: ChangeType) -> None:
    # At 10 m a small crater field's dust and craters can flag every pixel of it: shape and fill then look like a
    # cleared pad. Cratered ground is rough (backscatter up), a graded pad is not.
    box = (slice(20, 25), slice(20, 25))
    soil = np.zeros((50, 50), bool)
    soil[box] = True
    labels, kinds = soil_regions(soil, sar_score=_radar(soil.shape, box, inside_db))
    assert _typed(labels, kinds, box) == {expected}
    # Without radar the solid patch reads as earthworks, as before.
    labels, kinds = soil_regions(soil)
    assert _typed(labels, kinds, box) == {ChangeType.EARTHWORKS}


def test_radar_overrides_mottling_but_not_on_cropland() -> None:
    # A mottled compact patch (fill < 0.8) whose radar shows no roughening: a pad with gaps in its soil signal.
    box = (slice(20, 28), slice(20, 28))
    soil = np.zeros((50, 50), bool)
    yy, xx = np.mgrid[0:50, 0:50]
    soil[box] = (yy + xx)[box] % 3 > 0  # a third of the pixels show no soil: fill 0.67
    smooth = _radar(soil.shape, box, -1.0)
    labels, kinds = soil_regions(soil, sar_score=smooth)
    assert _typed(labels, kinds, box) == {ChangeType.EARTHWORKS}
    labels, kinds = soil_regions(soil)
    assert _typed(labels, kinds, box) == {ChangeType.CRATER_FIELD}
    # On cropland the rice cycle moves backscatter by several dB: radar does not decide, the mottling does.
    crop = np.full(soil.shape, LC_CROP, "uint8")
    labels, kinds = soil_regions(soil, sar_score=smooth, landcover=crop)
    assert _typed(labels, kinds, box) == {ChangeType.CRATER_FIELD}


def _paddy_case(*, field_db: float, line_only: bool, p: float) -> dict[str, np.ndarray]:
    """Dry paddy in which the strict optical test flagged a diagonal string of bare specks (a line, as a trench
    would be). The optical soil score and radar (dB against the season, with corrected p-value p) rise over the
    whole 13 x 13 px field (a cratered field) or only along the string (a trench, line_only)."""
    shape_ = (60, 60)
    soil = np.zeros(shape_, bool)
    for i in range(9):
        soil[21 + i, 21 + i] = soil[21 + i, min(22 + i, 29)] = True
    where = soil if line_only else np.zeros(shape_, bool)
    if not line_only:
        where[19:32, 19:32] = True
    rng = np.random.default_rng(3)
    sar = rng.normal(0.0, 0.5, shape_).astype("float32") + np.where(where, field_db, 0.0).astype("float32")
    optical = rng.normal(0.05, 0.02, shape_).astype("float32") + np.where(where, 0.2, 0.0).astype("float32")
    return {
        "soil": soil,
        "s1-welch-t.score": sar,
        "s1-welch-t.p_value": np.where(where, p, 1.0).astype("float32"),
        "optical": optical,
        "crop": np.full(shape_, LC_CROP, "uint8"),
    }


@pytest.mark.parametrize(
    ("field_db", "p", "line_only", "season", "expected"),
    [
        (2.5, 1e-3, False, True, ChangeType.CRATER_FIELD),
        (2.5, 1e-3, False, False, ChangeType.EARTHWORKS),
        (0.0, 1.0, False, True, ChangeType.EARTHWORKS),
        (2.5, 0.3, False, True, ChangeType.EARTHWORKS),
        (2.5, 1e-3, True, True, ChangeType.EARTHWORKS),
    ],
    ids=[
        "both sensors: a cratered field",
        "radar against the whole year (the rice cycle): not used on cropland",
        "optics alone (the harvest): the string's shape decides",
        "a rise that speckle could make (p 0.3): not used",
        "a trench whose spoil roughened: still a line",
    ],
)
def test_on_paddy_radar_against_the_season_can_say_crater_field(
    field_db: float, p: float, line_only: bool, season: bool, expected: ChangeType
) -> None:
    c = _paddy_case(field_db=field_db, line_only=line_only, p=p)
    layers = {**c, "s1-welch-t.season_baseline": np.full(c["soil"].shape, season)}
    labels, kinds = soil_regions(
        c["soil"],
        sar_score=c["s1-welch-t.score"],
        landcover=c["crop"],
        crop_rise=_crop_rise(layers),
        soil_score=c["optical"],
    )
    assert _typed(labels, kinds, (slice(21, 30), slice(21, 30))) == {expected}
    if expected is ChangeType.CRATER_FIELD:
        assert (labels > 0).sum() >= 0.6 * 13 * 13  # the field's extent, not the string's


def test_radar_compares_a_region_with_surroundings_of_its_own_land_cover() -> None:
    # A pad on grass whose backscatter stayed as it was, beside forest that darkened 1.5 dB (leaf fall, drying):
    # against the forest the pad would look roughened; against the grass around it, it did not change.
    box = (slice(20, 25), slice(20, 25))
    soil = np.zeros((50, 50), bool)
    soil[box] = True
    lc = np.full(soil.shape, FOREST, "uint8")
    lc[16:29, 16:29] = GRASS  # the pad and a 40 m grass strip round it; forest beyond
    sar = np.where(lc == FOREST, -1.5, 0.0).astype("float32")
    sar += np.random.default_rng(1).normal(0.0, 0.3, soil.shape).astype("float32")
    labels, kinds = soil_regions(soil, sar_score=sar, landcover=lc)
    assert _typed(labels, kinds, box) == {ChangeType.EARTHWORKS}
    labels, kinds = soil_regions(soil, sar_score=sar)  # no land cover: every surrounding pixel counts
    assert _typed(labels, kinds, box) == {ChangeType.CRATER_FIELD}


def test_radar_that_tested_nothing_leaves_the_decision_to_shape() -> None:
    box = (slice(20, 25), slice(20, 25))
    soil = np.zeros((50, 50), bool)
    soil[box] = True
    untested = np.zeros(soil.shape, "float32")  # layover / shadow everywhere: score exactly 0
    untested[box] = 3.0  # ...but the region itself looks rough: no surroundings to compare it with
    labels, kinds = soil_regions(soil, sar_score=untested)
    assert _typed(labels, kinds, box) == {ChangeType.EARTHWORKS}


def test_crater_specks_make_a_field_whatever_its_outline() -> None:
    # Single-pixel craters 20 m apart along an L-shaped strip: no compact ellipse, but the specks are craters.
    soil = np.zeros((60, 60), bool)
    soil[10:16:2, 10:50:2] = True
    soil[10:50:2, 10:16:2] = True
    labels, kinds = soil_regions(soil, sar_score=_radar(soil.shape, (slice(0, 0), slice(0, 0)), 0.0))
    region = labels > 0
    assert solidity(region) < CRATER_MIN_SOLIDITY  # the outline alone would say earthworks
    assert _typed(labels, kinds, (slice(None), slice(None))) == {ChangeType.CRATER_FIELD}


def test_a_broken_trench_stays_earthworks() -> None:
    # A trench whose soil signal breaks into pieces of 8 pixels: pieces, but not crater-sized specks.
    soil = np.zeros((40, 80), bool)
    for x0 in range(5, 70, 10):
        soil[20:22, x0 : x0 + 4] = True
    labels, kinds = soil_regions(soil)
    assert _typed(labels, kinds, (slice(None), slice(None))) == {ChangeType.EARTHWORKS}


# -- weaker edges: hysteresis and the minimum mapping unit ------------------------------------------------------


def _soil_evidence(
    codes: np.ndarray, dndvi: np.ndarray, *, landcover: int = FOREST, sar_db: float = 0.0
) -> Evidence:
    ev = _evidence(codes)
    layers = {**ev.layers, "soil-exposure.score": dndvi.astype("float32")}
    layers["s1-welch-t.score"] = np.where(codes == SOIL, sar_db, 0.1).astype("float32")
    return Evidence(
        **{**ev.__dict__, "layers": layers, "landcover": np.full(codes.shape, landcover, "uint8")}
    )


def _small_field(shape_: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A 0.21 ha event: 13 confident pixels and 8 edge pixels whose NDVI fell less (dust, mixed pixels)."""
    codes = np.zeros(shape_, "uint8")
    dndvi = np.zeros(shape_, "float32")
    field_ = np.zeros(shape_, bool)
    field_[20:25, 20:25] = True
    field_[20, 20] = field_[20, 24] = field_[24, 20] = field_[24, 24] = False  # 21 pixels
    core = np.zeros(shape_, bool)
    core[21:24, 21:24] = True
    core[20, 22] = core[24, 22] = core[22, 20] = core[22, 24] = True  # 13 pixels
    codes[core] = SOIL
    dndvi[field_] = 0.15
    dndvi[core] = 0.4
    return codes, dndvi


def test_hysteresis_keeps_a_small_object_whose_edge_fell_short() -> None:
    aoi = tiny_aoi()
    codes, dndvi = _small_field(aoi.shape)
    (a,) = vectorise_alerts(_soil_evidence(codes, dndvi), geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert a.area_ha == pytest.approx(0.21, abs=0.015)
    # The edge pixels are what lifts it over the MMU: without them (no weaker evidence) it is dropped...
    flat = np.where(codes == SOIL, dndvi, 0.0)
    assert vectorise_alerts(_soil_evidence(codes, flat), geobox=aoi.geobox, area_id="x", mmu_ha=0.2) == []
    # ...and on cropland whose fields did not change around it, the edge is taken too (where a neighbouring field
    # was harvested, it is not: test_on_cropland_a_region_takes_in_its_edge_only_where_the_fields_around_...).
    crop = _soil_evidence(codes, dndvi, landcover=LC_CROP)
    (on_crop,) = vectorise_alerts(crop, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert on_crop.area_ha == pytest.approx(a.area_ha)


def test_hysteresis_measures_the_edge_against_the_surroundings() -> None:
    # The whole landscape's NDVI fell by 0.15 (the dry season): the edge pixels are no different from it.
    aoi = tiny_aoi()
    codes, dndvi = _small_field(aoi.shape)
    dry = np.where(codes == SOIL, dndvi, 0.15)
    assert vectorise_alerts(_soil_evidence(codes, dry), geobox=aoi.geobox, area_id="x", mmu_ha=0.2) == []


def test_weaker_evidence_does_not_make_an_alert_from_a_speck() -> None:
    # One soil pixel in a 6 x 6 patch of haze (NDVI down 0.15 over clear surroundings): the speck would grow to
    # 25 pixels, over the MMU, but its confident core is far below half of it.
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    dndvi = np.zeros(aoi.shape, "float32")
    dndvi[20:26, 20:26] = 0.15
    codes[22, 22] = SOIL
    dndvi[22, 22] = 0.3
    assert vectorise_alerts(_soil_evidence(codes, dndvi), geobox=aoi.geobox, area_id="x", mmu_ha=0.2) == []


def test_a_burn_takes_in_its_low_severity_rim() -> None:
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[20:24, 20:24] = BURN  # 0.16 ha of moderate severity...
    ev = _evidence(codes)
    dnbr = np.zeros(aoi.shape, "float32")
    dnbr[19:25, 19:25] = 0.2  # ...and a rim that burnt less (dNBR 0.2, under the 0.27 of the test)
    dnbr[20:24, 20:24] = 0.5
    ev = Evidence(**{**ev.__dict__, "layers": {**ev.layers, "dnbr.score": dnbr}})
    (a,) = vectorise_alerts(ev, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert a.change_type is ChangeType.BURN_SCAR and a.area_ha == pytest.approx(0.36, abs=0.02)


@settings(max_examples=30, deadline=None)
@given(
    arrays(np.bool_, (30, 30), elements=st.booleans()),
    arrays(np.float32, (30, 30), elements=st.floats(-0.25, 0.5, width=32)),
    arrays(np.bool_, (30, 30), elements=st.booleans()),
)
def test_growing_edges_only_adds_nearby_unflagged_pixels(
    soil: np.ndarray, dndvi: np.ndarray, crop: np.ndarray
) -> None:
    codes = np.where(soil, SOIL, NONE).astype("uint8")
    codes[0:3, :] = np.where(codes[0:3, :] == SOIL, STRUCTURE, codes[0:3, :])
    ev = _evidence(codes)
    lc = np.where(crop, LC_CROP, FOREST).astype("uint8")
    ev = Evidence(**{**ev.__dict__, "layers": {**ev.layers, "soil-exposure.score": dndvi}, "landcover": lc})
    from monitoring.vectorise import change_regions

    labels, kinds = change_regions(codes, ev.layers, lc)
    grown = grow_edges(labels, kinds, ev)
    assert (grown[labels > 0] == labels[labels > 0]).all()  # nothing taken away or relabelled
    new = (grown > 0) & (labels == 0)
    assert not (new & (codes != NONE)).any()  # only into unflagged pixels
    eight = np.ones((3, 3), bool)
    unchanged = ~ndimage.binary_dilation(codes != NONE, structure=eight, iterations=EDGE_REACH_PX)
    for k in np.unique(grown[new]):
        near = ndimage.binary_dilation(labels == k, structure=eight, iterations=EDGE_REACH_PX)
        assert (near[grown == k]).all()
        if (new & crop & (grown == k)).any():  # onto cropland only where the fields around did not change
            inner, outer = (
                ndimage.binary_dilation(labels == k, structure=eight, iterations=r) for r in RING_PX
            )
            fields = outer & ~inner & unchanged & crop
            edge_cut = dndvi[new & (grown == k)].min()  # every pixel taken in passed the edge test
            assert fields.sum() >= MIN_RING_PX and (dndvi[fields] >= edge_cut).mean() <= CALM_RING_SHARE


def _paddy_crater_edge(harvested_beside: bool) -> list[ChangeType]:
    """Alert types from a 0.16 ha crater core on paddy (under the 0.2 ha unit) whose mixed edge fell short of the
    strict test; the field around it dried by 0.19 NDVI this season, and perhaps a neighbouring field was cut."""
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[20:24, 20:24] = SOIL
    score = np.full(aoi.shape, 0.19, "float32")  # the season's own change, alike over these fields
    score[19:25, 19:25] = 0.32  # the event's edge, partly disturbed
    score[20:24, 20:24] = 0.45
    if harvested_beside:
        score[:, 27:] = 0.45  # harvested, a third of the surroundings 30-60 m out
    ev = _evidence(codes)
    crop = np.full(aoi.shape, LC_CROP, "uint8")
    ev = Evidence(**{**ev.__dict__, "layers": {**ev.layers, "soil-exposure.score": score}, "landcover": crop})
    alerts = vectorise_alerts(ev, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert all(a.area_ha == pytest.approx(0.36, abs=0.02) for a in alerts)  # the core and its edge
    return [a.change_type for a in alerts]


def test_on_cropland_a_region_takes_in_its_edge_only_where_the_fields_around_changed_alike() -> None:
    assert len(_paddy_crater_edge(harvested_beside=False)) == 1  # its edge brings it to the unit
    # A harvest next to it: edges are not evidence there.
    assert _paddy_crater_edge(harvested_beside=True) == []


@pytest.mark.parametrize(
    "around, post, expected",
    [
        (0.45, 0.28, ChangeType.CRATER_FIELD),  # stubble
        (0.45, 0.15, ChangeType.EARTHWORKS),
        (0.26, 0.20, ChangeType.CRATER_FIELD),  # dry-season fallow, itself half bare
        (0.26, 0.13, ChangeType.EARTHWORKS),
    ],
)
def test_on_cropland_how_bare_a_solid_patch_ended_decides_its_type(
    around: float, post: float, expected: ChangeType
) -> None:
    # A solid 10 x 10 px patch on paddy: radar cannot tell there (the rice cycle), the fill test says earthworks;
    # a crater field's sub-pixel craters leave cover between them, an earthwork strips the patch bare; measured
    # against the fields around it, so that fallow paddy, already half bare, does not pass for earthworks.
    soil = np.zeros((40, 40), bool)
    soil[15:25, 15:25] = True
    crop = np.full(soil.shape, LC_CROP, dtype="uint8")
    ndvi = np.where(soil, post, around).astype("float32")
    radar = np.where(soil, 2.5, 0.0).astype("float32")  # roughened, but on cropland that is not evidence
    labels, kinds = soil_regions(soil, sar_score=radar, landcover=crop, post_ndvi=ndvi)
    assert list(kinds.values()) == [expected]
    assert labels[20, 20] > 0


def test_rbr_severity_classes_follow_parks_2014() -> None:
    from monitoring.vectorise import rbr_severity

    assert [rbr_severity(v) for v in (0.01, 0.05, 0.2, 0.5)] == ["unburned", "low", "moderate", "high"]


def test_a_change_at_the_first_look_after_the_baseline_names_each_sensors_own_last_look() -> None:
    from datetime import date

    aoi = tiny_aoi()
    codes = _burn_and_structure(aoi.shape)
    ev = _evidence(codes)
    first_look = {f"{m}.first": np.zeros(aoi.shape, "int32") for m in ("dnbr", "s1-welch-t")}
    no_before = {f"{m}.before": np.full(aoi.shape, -1, "int32") for m in ("dnbr", "s1-welch-t")}
    ev = Evidence(
        **{
            **ev.__dict__,
            "layers": {**ev.layers, **first_look, **no_before},
            "baseline_last_clear": date(2025, 11, 20),  # the optical baseline's last clear look
            "baseline_last": {"s1-welch-t": date(2025, 11, 29)},  # radar's last pass before the window
        }
    )
    alerts = {a.change_type: a for a in vectorise_alerts(ev, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)}
    assert str(alerts[ChangeType.BURN_SCAR].last_clear_before) == "2025-11-20"
    assert str(alerts[ChangeType.STRUCTURAL_DAMAGE].last_clear_before) == "2025-11-29"


def test_radar_alerts_carry_the_last_change_point_the_omnibus_test_dated() -> None:
    aoi = tiny_aoi()
    codes = _burn_and_structure(aoi.shape)
    ev = _evidence(codes)
    (_, struct) = vectorise_alerts(ev, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert struct.radar_last_change is None  # no omnibus layer: nothing claimed
    change_last = np.full(aoi.shape, -1, "int32")
    change_last[40:50, 40:45] = 2
    ev = Evidence(**{**ev.__dict__, "layers": {**ev.layers, "s1-welch-t.change_last": change_last}})
    burn, struct = vectorise_alerts(ev, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert str(struct.radar_last_change) == "2025-12-11"
    assert burn.radar_last_change is None  # radar did not see the burn
    # A few speckled pixels dated earlier or later do not move a region's date; a quarter of it does.
    for share, expected in ((0.1, "2025-12-06"), (0.3, "2025-12-11")):
        change_last = np.full(aoi.shape, -1, "int32")
        change_last[40:50, 40:45] = 1
        change_last[40 : 40 + round(10 * share), 40:45] = 2
        ev2 = Evidence(**{**ev.__dict__, "layers": {**ev.layers, "s1-welch-t.change_last": change_last}})
        _, struct = vectorise_alerts(ev2, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
        assert str(struct.radar_last_change) == expected, share


def _radar_evidence(
    *, db: float, ring_db: float = 0.1, seen_day: int = -1, landcover: int = FOREST
) -> Evidence:
    """A 10 x 10 px patch radar flagged, changed by db; its unchanged surroundings by ring_db."""
    aoi = tiny_aoi()
    ev = _evidence(np.zeros(aoi.shape, "uint8"))
    patch = np.zeros(aoi.shape, bool)
    patch[20:30, 20:30] = True
    rng = np.random.default_rng(0)
    score = np.where(patch, db, ring_db + rng.normal(0, 0.2, aoi.shape)).astype("float32")
    layers = {**ev.layers, "s1-welch-t.score": score, "s1-welch-t.mask": patch, "s1-welch-t.support": patch}
    return Evidence(
        **{
            **ev.__dict__,
            "layers": layers,
            "landcover": np.full(aoi.shape, landcover, "uint8"),
            "optical_last_clear": np.full(aoi.shape, seen_day, "int32"),
        }
    )


def _day_number(iso: str) -> int:
    return int(np.datetime64(iso, "D").astype("int64"))


def test_a_rise_only_radar_saw_under_cloud_is_a_crater_field() -> None:
    aoi = tiny_aoi()
    (a,) = vectorise_alerts(_radar_evidence(db=3.0), geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert a.change_type is ChangeType.CRATER_FIELD and a.sensors == ["sentinel-1"]
    assert "s1-welch-t" in a.methods and a.p_value is not None
    assert a.first_observed.isoformat() == "2025-12-06" and a.area_ha == pytest.approx(1.0, abs=0.05)
    # An optical look before radar's change (its first change is 6 Dec) does not count as seeing it.
    before = _radar_evidence(db=3.0, seen_day=_day_number("2025-12-01"))
    assert len(vectorise_alerts(before, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)) == 1


def test_radar_alone_claims_no_crater_field_where_optics_looked_unless_they_are_blind() -> None:
    aoi = tiny_aoi()
    seen = _day_number("2025-12-11")  # a clear look after radar's change, and the optical tests found nothing
    assert (
        vectorise_alerts(_radar_evidence(db=3.0, seen_day=seen), geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
        == []
    )
    rock = _radar_evidence(
        db=3.0, seen_day=seen, landcover=LC_BARE
    )  # no vegetation to lose: optics are blind
    (a,) = vectorise_alerts(rock, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert a.change_type is ChangeType.CRATER_FIELD


@pytest.mark.parametrize(
    ("db", "ring_db", "landcover"),
    [(3.0, 2.8, FOREST), (-3.0, -2.8, FOREST), (-3.0, 0.1, LC_CROP), (-3.0, 0.1, LC_WATER)],
    ids=[
        "the surroundings rose as much (soil moisture)",
        "the surroundings fell as much (drying)",
        "a drop on cropland (flooding, harvest)",
        "a drop on water (wind)",
    ],
)
def test_radar_only_change_that_stands_out_from_nothing_is_not_claimed(
    db: float, ring_db: float, landcover: int
) -> None:
    aoi = tiny_aoi()
    ev = _radar_evidence(db=db, ring_db=ring_db, landcover=landcover)
    assert vectorise_alerts(ev, geobox=aoi.geobox, area_id="x", mmu_ha=0.2) == []


def test_a_drop_only_radar_saw_is_untyped_vegetation_loss() -> None:
    aoi = tiny_aoi()
    (a,) = vectorise_alerts(_radar_evidence(db=-3.0), geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert a.change_type is ChangeType.VEGETATION_LOSS and a.sensors == ["sentinel-1"]
    assert a.methods == ["s1-welch-t"] and a.p_value is not None and a.severity is None
    assert a.first_observed.isoformat() == "2025-12-06" and a.last_clear_before.isoformat() == "2025-12-01"
    assert a.area_ha == pytest.approx(1.0, abs=0.05)
    # Where optics looked after radar's change and saw nothing, radar's drop is not claimed.
    seen = _radar_evidence(db=-3.0, seen_day=_day_number("2025-12-11"))
    assert vectorise_alerts(seen, geobox=aoi.geobox, area_id="x", mmu_ha=0.2) == []


def test_a_drop_only_radar_saw_takes_in_its_weaker_edge() -> None:
    """Hysteresis: pixels whose own corrected p-value is under 5% and fell, connected to a region and within two
    pixels of it, complete it; not beyond that reach, not a rise, not cropland, not where optics looked after."""
    aoi = tiny_aoi()
    ev = _radar_evidence(db=-3.0)  # strict 10 x 10 px at [20:30, 20:30]
    p = np.where(ev.layers["s1-welch-t.mask"], 1e-8, 1.0).astype("float32")
    score = ev.layers["s1-welch-t.score"].copy()
    p[16:34, 16:34] = np.where(ev.layers["s1-welch-t.mask"][16:34, 16:34], 1e-8, 0.01)  # a weak 4 px frame
    score[16:34, 16:34] = np.minimum(score[16:34, 16:34], -1.0)
    score[18, 16:34] = 1.0  # one row of the frame rose: not a drop
    layers = {**ev.layers, "s1-welch-t.p_value": p, "s1-welch-t.score": score}
    (a,) = vectorise_alerts(
        Evidence(**{**ev.__dict__, "layers": layers}), geobox=aoi.geobox, area_id="x", mmu_ha=0.2
    )
    # Two pixels of reach on three sides, one above (row 19; row 18 rose): 14 wide x 13 high, not the 4 px frame.
    assert a.change_type is ChangeType.VEGETATION_LOSS and a.area_ha == pytest.approx(1.82, abs=0.05)
    assert a.first_observed.isoformat() == "2025-12-06"  # the edge does not move its date
    # Cropland and a clear optical look after radar's change (6 Dec) keep the edge out.
    crop = ev.landcover.copy()
    crop[16:34, 30:34] = LC_CROP
    seen = np.full(aoi.shape, -1, "int32")
    seen[16:34, 30:34] = _day_number("2025-12-08")
    for where in ({"landcover": crop}, {"optical_last_clear": seen}):
        (b,) = vectorise_alerts(
            Evidence(**{**ev.__dict__, "layers": layers, **where}), geobox=aoi.geobox, area_id="x", mmu_ha=0.2
        )
        assert b.area_ha == pytest.approx(1.82 - 0.26, abs=0.05)
    # A region alone it cannot make: without the strict pixels there is no alert.
    weak_only = {
        **layers,
        "s1-welch-t.mask": np.zeros(aoi.shape, bool),
        "s1-welch-t.support": np.zeros(aoi.shape, bool),
    }
    assert (
        vectorise_alerts(
            Evidence(**{**ev.__dict__, "layers": weak_only}), geobox=aoi.geobox, area_id="x", mmu_ha=0.2
        )
        == []
    )


def _fires_at(aoi_geobox: object, row: float, col: float, day: str) -> Fires:
    """One VIIRS detection centred on pixel (row, col) of the grid, at 06:30 UTC that day."""
    x, y = aoi_geobox.affine * (col + 0.5, row + 0.5)  # type: ignore[attr-defined]
    return Fires(
        x=np.array([x]),
        y=np.array([y]),
        time=np.array([f"{day}T06:30:00"], dtype="datetime64[s]"),
        reach_m=np.array([375.0]),
        sensor=np.array(["viirs"], dtype=object),
        frp=np.array([4.2]),
    )


def test_a_drop_only_radar_saw_is_a_burn_scar_where_a_fire_burnt_in_its_interval() -> None:
    aoi = tiny_aoi()
    ev = _radar_evidence(db=-3.0)  # radar's first change on 6 Dec, its look before on 1 Dec
    burning = Evidence(**{**ev.__dict__, "fires": _fires_at(aoi.geobox, 25, 45, "2025-12-04")})  # 160 m off
    (a,) = vectorise_alerts(burning, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert a.change_type is ChangeType.BURN_SCAR and a.area_ha == pytest.approx(1.0, abs=0.05)
    assert a.sensors == ["sentinel-1", "viirs"] and a.methods == ["active-fire", "s1-welch-t"]
    assert a.confidence is Confidence.HIGHEST and a.severity is None  # no dNBR: no dNBR class
    assert a.thermal_detections == 1 and a.thermal_frp_max == pytest.approx(4.2)
    assert a.thermal_first is not None and a.thermal_first.isoformat().startswith("2025-12-04T06:30")
    for fires in (
        _fires_at(aoi.geobox, 25, 25, "2025-11-28"),  # before radar's last look before the change
        _fires_at(aoi.geobox, 25, 25, "2025-12-07"),  # after radar had already seen it
        _fires_at(aoi.geobox, 25, 70, "2025-12-04"),  # 400 m from its edge: another place
    ):
        (other,) = vectorise_alerts(
            Evidence(**{**ev.__dict__, "fires": fires}), geobox=aoi.geobox, area_id="x", mmu_ha=0.2
        )
        assert other.change_type is ChangeType.VEGETATION_LOSS and other.sensors == ["sentinel-1"]
    # Where optics looked after radar's change and saw no burn, a fire nearby does not make one.
    seen = _radar_evidence(db=-3.0, seen_day=_day_number("2025-12-11"))
    assert (
        vectorise_alerts(
            Evidence(**{**seen.__dict__, "fires": _fires_at(aoi.geobox, 25, 25, "2025-12-04")}),
            geobox=aoi.geobox,
            area_id="x",
            mmu_ha=0.2,
        )
        == []
    )


def test_a_fire_in_a_burns_interval_makes_it_highest_and_is_reported() -> None:
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[5:15, 5:15] = BURN
    codes[40:50, 40:50] = SOIL
    ev = _evidence(codes)  # optical: last clear look 1 Dec, first seen 6 Dec
    (burn, soil) = vectorise_alerts(ev, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert burn.thermal_detections is None and soil.thermal_detections is None  # thermal not checked
    fires = _fires_at(aoi.geobox, 10, 10, "2025-12-03")
    fires = Fires(
        **{
            k: np.concatenate([v, _fires_at(aoi.geobox, 45, 45, "2025-12-03").__dict__[k]])
            for k, v in fires.__dict__.items()
        }
    )
    burn, soil = vectorise_alerts(
        Evidence(**{**ev.__dict__, "fires": fires}), geobox=aoi.geobox, area_id="x", mmu_ha=0.2
    )
    assert burn.confidence is Confidence.HIGHEST and burn.sensors == ["sentinel-2", "viirs"]
    assert "active-fire" in burn.methods and burn.thermal_detections == 1
    # A fire by a crater field or earthworks is reported, but is not the same claim: no second sensor.
    assert soil.thermal_detections == 1 and soil.sensors == ["sentinel-2"]
    empty = Fires(**{k: v[:0] for k, v in fires.__dict__.items()})
    burn, _ = vectorise_alerts(
        Evidence(**{**ev.__dict__, "fires": empty}), geobox=aoi.geobox, area_id="x", mmu_ha=0.2
    )
    assert burn.thermal_detections == 0 and burn.confidence is Confidence.LOW  # looked, saw no fire


def test_coverage_gaps_say_which_sensor_missed_where() -> None:
    aoi = tiny_aoi()
    shape_ = aoi.shape
    optical = np.ones(shape_, bool)
    radar = np.ones(shape_, bool)
    optical[:, :21] = False  # a cloud over the west third...
    radar[:9, :] = False  # ...radar's shadow along the north edge
    inside = aoi.inside()
    footprint = aoi.footprint_in_grid().geom
    gaps = {tuple(g.not_seen_by): g for g in coverage_gaps(optical, radar, inside, aoi.geobox, footprint)}
    assert set(gaps) == {("sentinel-2",), ("sentinel-1",), ("sentinel-1", "sentinel-2")}
    px_ha = 0.01
    for sensors, mask in (
        (("sentinel-2",), ~optical & radar),
        (("sentinel-1",), optical & ~radar),
        (("sentinel-1", "sentinel-2"), ~optical & ~radar),
    ):
        gap = gaps[sensors]
        assert gap.area_ha == pytest.approx((mask & inside).sum() * px_ha)
        utm = shapely.ops.transform(
            Transformer.from_crs("EPSG:4326", str(aoi.crs), always_xy=True).transform, shape(gap.geometry)
        )
        assert utm.is_valid and footprint.buffer(0.01).contains(utm)
        # Outlined on 30 m cells (these edges fall on cell lines), clipped to the box's lon/lat outline.
        assert utm.area / 1e4 == pytest.approx(gap.area_ha, abs=0.6)
    # The three are disjoint, and say what was and was not assessed.
    outlines = [shape(g.geometry) for g in gaps.values()]
    assert all(a.intersection(b).area < 1e-12 for i, a in enumerate(outlines) for b in outlines[i + 1 :])
    assert "nothing was assessed" in gaps[("sentinel-1", "sentinel-2")].statement
    # All seen: no gap.
    seen = np.ones(shape_, bool)
    assert coverage_gaps(seen, seen, inside, aoi.geobox, footprint) == []
