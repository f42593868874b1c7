from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pyproj import Geod
from shapely.geometry import shape

from monitoring.fuse import BURN, STRUCTURE
from monitoring.results import ChangeType, Confidence
from monitoring.vectorise import Evidence, soil_regions, vectorise_alerts
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
    assert struct.sensors == ["sentinel-1"] and struct.p_value == pytest.approx(1e-8)
    # Geodesic area of the WGS84 polygon agrees with the pixel count.
    area = abs(GEOD.geometry_area_perimeter(shape(burn.geometry))[0]) / 1e4
    assert area == pytest.approx(1.0, rel=0.01)


def test_two_sensors_make_highest_and_repeat_makes_high() -> None:
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[5:15, 5:15] = BURN
    ev = _evidence(codes, sar_share=1.0)
    (a,) = vectorise_alerts(ev, geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert a.confidence is Confidence.HIGHEST and a.sensors == ["sentinel-1", "sentinel-2"]
    (b,) = vectorise_alerts(_evidence(codes, count=2), geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    assert b.confidence is Confidence.HIGH


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
    assert alerts["cropland"].confidence is Confidence.LOW
    assert alerts["tree cover"].confidence is Confidence.HIGH


def test_burn_severity_classes() -> None:
    from monitoring.vectorise import burn_severity

    assert [burn_severity(v) for v in (0.05, 0.2, 0.3, 0.5, 0.8)] == [
        "unburned",
        "low",
        "moderate-low",
        "moderate-high",
        "high",
    ]
