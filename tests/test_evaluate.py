from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from monitoring.evaluate import pool, score_area
from monitoring.fuse import BURN, STRUCTURE
from monitoring.results import ChangeType
from monitoring.vectorise import vectorise_alerts
from tests.synthetic import tiny_aoi
from tests.test_vectorise import _evidence


@dataclass
class _Truth:
    id: str
    change_type: ChangeType
    area_ha: float
    mask: np.ndarray


def test_found_missed_false_and_wrong_type() -> None:
    aoi = tiny_aoi()
    shape = aoi.shape
    codes = np.zeros(shape, "uint8")
    codes[5:15, 5:15] = BURN  # on the burn event: true
    codes[40:50, 40:50] = BURN  # on the structure event: wrong type
    codes[5:10, 40:60] = STRUCTURE  # on nothing: false
    alerts = vectorise_alerts(_evidence(codes), geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    m1 = np.zeros(shape, bool)
    m1[5:15, 5:15] = True
    m2 = np.zeros(shape, bool)
    m2[40:50, 40:50] = True
    m3 = np.zeros(shape, bool)
    m3[25:28, 25:28] = True  # 0.09 ha: below the size that must be found
    truth = [
        _Truth("burn", ChangeType.BURN_SCAR, 1.0, m1),
        _Truth("struct", ChangeType.STRUCTURAL_DAMAGE, 1.0, m2),
        _Truth("tiny", ChangeType.EARTHWORKS, 0.09, m3),
    ]
    sc = score_area(alerts, truth, aoi.geobox, min_event_ha=0.5)
    burn = sc.by_type[ChangeType.BURN_SCAR]
    struct = sc.by_type[ChangeType.STRUCTURAL_DAMAGE]
    assert (burn.events, burn.found, burn.alerts, burn.true_alerts) == (1, 1, 2, 1)
    assert burn.precision == pytest.approx(0.5) and burn.recall == 1.0
    assert (struct.events, struct.found, struct.missed) == (1, 0, ["struct"])
    assert len(sc.false_alerts) == 1 and len(sc.wrong_type) == 1
    assert ChangeType.EARTHWORKS not in sc.by_type
    total = pool([sc, sc])
    assert total.by_type[ChangeType.BURN_SCAR].events == 1  # the same event, seen twice, counts once
    assert total.as_dict()["false_alerts"] == 2
    assert pd.notna(total.unchanged_km2)


def test_an_event_seen_from_two_areas_counts_once() -> None:
    from monitoring.evaluate import AreaScore, TypeScore

    a = AreaScore({ChangeType.BURN_SCAR: TypeScore(events=1, found=1, found_ids=["e1"])}, [], [], 1.0)
    b = AreaScore(
        {ChangeType.BURN_SCAR: TypeScore(events=2, found=1, found_ids=["e2"], missed=["e1"])}, [], [], 1.0
    )
    s = pool([a, b]).by_type[ChangeType.BURN_SCAR]
    assert (s.events, s.found, s.missed) == (2, 2, [])


def test_events_among_the_burns_set_aside_are_named() -> None:
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[5:15, 5:15] = BURN
    codes[30:40, 30:40] = BURN
    burns = vectorise_alerts(_evidence(codes), geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    mask = np.zeros(aoi.shape, bool)
    mask[5:15, 5:15] = True
    truth = [_Truth("fire", ChangeType.BURN_SCAR, 1.0, mask)]
    # Both burns set aside: the event is missed, and named as lying among them; neither burn is a false alert.
    sc = score_area([], truth, aoi.geobox, min_event_ha=0.5, set_aside=burns)
    assert sc.by_type[ChangeType.BURN_SCAR].missed == ["fire"]
    assert sc.events_set_aside == ["fire"] and sc.set_aside == 2 and sc.false_alerts == []
    total = pool([sc, score_area([], [], aoi.geobox, set_aside=burns[:1])])
    assert total.set_aside == 3 and total.events_set_aside == ["fire"]


def test_untyped_vegetation_loss_is_true_on_what_it_may_be_and_locates_without_finding() -> None:
    aoi = tiny_aoi()
    codes = np.zeros(aoi.shape, "uint8")
    codes[5:15, 5:15] = BURN
    codes[40:50, 40:50] = BURN
    codes[5:10, 40:60] = BURN
    as_loss = [
        a.model_copy(update={"change_type": ChangeType.VEGETATION_LOSS})
        for a in vectorise_alerts(_evidence(codes), geobox=aoi.geobox, area_id="x", mmu_ha=0.2)
    ]
    burn, struct = np.zeros(aoi.shape, bool), np.zeros(aoi.shape, bool)
    burn[5:15, 5:15] = True
    struct[40:50, 40:50] = True
    truth = [
        _Truth("burn", ChangeType.BURN_SCAR, 1.0, burn),
        _Truth("struct", ChangeType.STRUCTURAL_DAMAGE, 1.0, struct),
    ]
    sc = score_area(as_loss, truth, aoi.geobox, min_event_ha=0.5)
    loss = sc.by_type[ChangeType.VEGETATION_LOSS]
    assert (loss.alerts, loss.true_alerts, loss.events, loss.recall) == (3, 1, 0, None)
    assert len(sc.wrong_type) == 1 and len(sc.false_alerts) == 1  # on the ruins; on nothing
    b = sc.by_type[ChangeType.BURN_SCAR]
    assert (b.found, b.missed, b.located) == (0, ["burn"], ["burn"])  # located, but not found as a burn scar
    assert sc.by_type[ChangeType.STRUCTURAL_DAMAGE].located == []  # vegetation loss is never a ruin
    assert pool([sc]).as_dict()["by_type"]["burn_scar"]["located_untyped"] == ["burn"]
