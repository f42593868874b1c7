from __future__ import annotations

from datetime import date, timedelta

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box, mapping

from monitoring.results import Alert, ChangeType, Confidence
from monitoring.track import Track, compatible, overlap, track_alerts

DAY = date(2025, 12, 22)
AFTER_START = DAY - timedelta(days=15)
DEG = 1e-4  # ~11 m: outlines are in lon/lat


def _alert(
    x: float,
    *,
    size: float = 10,
    alert_id: str | None = None,
    change: ChangeType = ChangeType.STRUCTURAL_DAMAGE,
    first: date = date(2025, 12, 12),
    last: date = date(2025, 12, 18),
    radar_last: date | None = None,
    lifecycle: str | None = None,
    first_reported: date | None = None,
) -> Alert:
    """A square of size x size ~11 m cells with its west edge at x cells east of 103 E."""
    geom = box(103 + x * DEG, 14, 103 + (x + size) * DEG, 14 + size * DEG)
    return Alert(
        id=alert_id or f"a-{x:g}",
        hotspot_id="h",
        change_type=change,
        area_ha=round(size * size * 1.2 / 100, 2),
        first_observed=first,
        last_observed=last,
        confidence=Confidence.HIGH,
        sensors=["sentinel-1"],
        methods=["s1-welch-t"],
        observations=0,
        score_mean=3.0,
        score_max=5.0,
        radar_last_change=radar_last,
        scene_ids=[],
        lifecycle=lifecycle,  # type: ignore[arg-type]
        first_reported=first_reported,
        geometry=mapping(geom),
    )


def _track(
    alert: Alert, first: date = DAY - timedelta(days=3), last: date = DAY - timedelta(days=1)
) -> Track:
    return Track(alert.model_copy(update={"lifecycle": "new", "first_reported": first}), first, last)


def test_without_earlier_runs_every_alert_is_new_from_today() -> None:
    out = track_alerts([_alert(0), _alert(50)], [], run_date=DAY, after_start=AFTER_START)
    assert [a.lifecycle for a in out.alerts] == ["new", "new"]
    assert {a.first_reported for a in out.alerts} == {DAY}
    assert [a.id for a in out.alerts] == ["a-0", "a-50"]
    assert out.withdrawn == []


def test_a_shifted_outline_keeps_the_earlier_id_and_first_report() -> None:
    earlier = _track(_alert(0, alert_id="old-id"), first=DAY - timedelta(days=5))
    today = _alert(3, alert_id="centroid-moved")  # 70 % of the outline overlaps
    out = track_alerts([today], [earlier], run_date=DAY, after_start=AFTER_START)
    assert out.alerts[0].id == "old-id"
    assert out.alerts[0].first_reported == DAY - timedelta(days=5)


@pytest.mark.parametrize(
    ("today", "state"),
    [
        ({}, "unconfirmed"),  # the same looks as yesterday (cloud since): nothing new shows it
        ({"last": date(2025, 12, 21)}, "confirmed"),  # a later clear look still shows it
        # It grew by ~1 ha (96 %): the later look shows more of it, not that the ground changed again.
        ({"size": 14, "last": date(2025, 12, 21)}, "confirmed"),
        ({"radar_last": date(2025, 12, 20)}, "ongoing"),  # radar dated a change after the last report's looks
        # A change point after the last one reported but within what that report had seen is not news.
        ({"radar_last": date(2025, 12, 16)}, "unconfirmed"),
    ],
)
def test_lifecycle_says_what_happened_since_the_last_report(today: dict, state: str) -> None:
    earlier = _track(_alert(0, radar_last=date(2025, 12, 14)))
    out = track_alerts([_alert(0, **today)], [earlier], run_date=DAY, after_start=AFTER_START)
    assert out.alerts[0].lifecycle == state


def test_a_confirmed_alert_stays_confirmed_without_a_later_look() -> None:
    earlier = _track(_alert(0)).alert.model_copy(update={"lifecycle": "confirmed"})
    out = track_alerts([_alert(0)], [Track(earlier, DAY, DAY)], run_date=DAY, after_start=AFTER_START)
    assert out.alerts[0].lifecycle == "confirmed"


@pytest.mark.parametrize(
    ("radar_last", "state"), [(date(2025, 12, 12), "unconfirmed"), (date(2025, 12, 21), "ongoing")]
)
def test_an_earlier_report_without_radar_dates_is_compared_with_its_last_look(
    radar_last: date, state: str
) -> None:
    earlier = _track(_alert(0, change=ChangeType.BURN_SCAR, last=date(2025, 12, 18)))
    today = _alert(0, change=ChangeType.BURN_SCAR, radar_last=radar_last)
    out = track_alerts([today], [earlier], run_date=DAY, after_start=AFTER_START)
    assert out.alerts[0].lifecycle == state


def test_other_places_and_other_types_do_not_match() -> None:
    far = _track(_alert(30, alert_id="far"))
    burn = _track(_alert(0, alert_id="burn", change=ChangeType.BURN_SCAR))
    out = track_alerts([_alert(0, alert_id="today")], [far, burn], run_date=DAY, after_start=AFTER_START)
    assert out.alerts[0].id == "today" and out.alerts[0].lifecycle == "new"


def test_radar_vegetation_loss_typed_later_keeps_its_id() -> None:
    earlier = _track(_alert(0, alert_id="vl", change=ChangeType.VEGETATION_LOSS))
    out = track_alerts(
        [_alert(1, change=ChangeType.BURN_SCAR, last=date(2025, 12, 21))],
        [earlier],
        run_date=DAY,
        after_start=AFTER_START,
    )
    assert out.alerts[0].id == "vl" and out.alerts[0].change_type is ChangeType.BURN_SCAR
    assert out.alerts[0].lifecycle == "confirmed"


def test_matching_is_one_to_one_and_prefers_the_more_alike_outline() -> None:
    earlier = _track(_alert(0, alert_id="old"))
    a, b = _alert(1, alert_id="a"), _alert(6, alert_id="b")  # overlaps 90 % and 40 %
    out = track_alerts([b, a], [earlier], run_date=DAY, after_start=AFTER_START)
    assert [x.id for x in out.alerts] == ["b", "old"]
    # b overlaps the track too: a part of it, with its own id, reported since the track's first report.
    assert out.alerts[0].lifecycle != "new" and out.alerts[0].first_reported == earlier.first_reported
    # Far enough away, it is new.
    far = track_alerts([_alert(8, alert_id="c"), a], [earlier], run_date=DAY, after_start=AFTER_START)
    assert far.alerts[0].lifecycle == "new"


def test_a_new_alert_never_takes_an_id_a_track_holds() -> None:
    earlier = _track(_alert(100, alert_id="same"))  # elsewhere, still live
    out = track_alerts([_alert(0, alert_id="same")], [earlier], run_date=DAY, after_start=AFTER_START)
    assert out.alerts[0].id == "same-2"


def test_an_undetected_track_is_withdrawn_only_if_its_change_is_in_the_after_window() -> None:
    recent = _track(_alert(0, alert_id="recent", first=AFTER_START + timedelta(days=2)))
    aged = _track(_alert(40, alert_id="aged", first=AFTER_START - timedelta(days=1)))
    out = track_alerts([], [recent, aged], run_date=DAY, after_start=AFTER_START)
    assert [t.alert.id for t in out.withdrawn] == ["recent"]


def test_a_withdrawal_is_said_once_by_the_run_after_the_last_report() -> None:
    first = AFTER_START + timedelta(days=2)
    yesterday = _track(_alert(0, alert_id="yesterday", first=first))
    before = _track(_alert(40, alert_id="before", first=first), last=DAY - timedelta(days=2))
    out = track_alerts(
        [], [yesterday, before], run_date=DAY, after_start=AFTER_START, previous_run=DAY - timedelta(days=1)
    )
    assert [t.alert.id for t in out.withdrawn] == ["yesterday"]
    # Without the previous run's date, the latest report among the tracks stands for it.
    out = track_alerts([], [yesterday, before], run_date=DAY, after_start=AFTER_START)
    assert [t.alert.id for t in out.withdrawn] == ["yesterday"]
    # A withdrawn track seen again later gets its id back.
    back = track_alerts([_alert(41)], [before], run_date=DAY, after_start=AFTER_START, previous_run=DAY)
    assert back.alerts[0].id == "before" and back.withdrawn == []


def test_a_redrawn_outline_goes_to_the_track_it_resembles_most() -> None:
    # A small older report lies wholly inside today's outline; yesterday's report is nearly today's outline.
    small_old = _track(_alert(2, size=4, alert_id="small"), last=DAY - timedelta(days=5))
    yesterday = _track(_alert(0, size=11, alert_id="big"), first=DAY - timedelta(days=2))
    out = track_alerts([_alert(0, size=12)], [small_old, yesterday], run_date=DAY, after_start=AFTER_START)
    assert out.alerts[0].id == "big"


def test_merged_outlines_keep_the_earliest_report_and_withdraw_nothing() -> None:
    west = _track(_alert(0, size=10, alert_id="west"), first=DAY - timedelta(days=6))
    east = _track(_alert(12, size=10, alert_id="east"), first=DAY - timedelta(days=2))
    out = track_alerts([_alert(0, size=22)], [west, east], run_date=DAY, after_start=AFTER_START)
    (merged,) = out.alerts
    assert merged.id in {"west", "east"} and merged.first_reported == DAY - timedelta(days=6)
    assert out.withdrawn == []


def test_a_part_split_off_an_earlier_alert_has_its_own_id_but_is_not_new() -> None:
    whole = _track(_alert(0, size=22, alert_id="whole"), first=DAY - timedelta(days=4))
    out = track_alerts(
        [_alert(0, size=10, alert_id="p1"), _alert(12, size=10, alert_id="p2")],
        [whole],
        run_date=DAY,
        after_start=AFTER_START,
    )
    ids = sorted(a.id for a in out.alerts)
    assert "whole" in ids and len(set(ids)) == 2
    assert all(a.lifecycle != "new" and a.first_reported == DAY - timedelta(days=4) for a in out.alerts)


def test_seasonal_burns_are_tracked_with_the_alerts() -> None:
    earlier = _track(_alert(0, alert_id="burn", change=ChangeType.BURN_SCAR))
    out = track_alerts(
        [],
        [earlier],
        run_date=DAY,
        after_start=AFTER_START,
        seasonal_burns=[_alert(0, change=ChangeType.BURN_SCAR)],
    )
    assert out.alerts == [] and out.seasonal_burns[0].id == "burn" and out.withdrawn == []


def test_compatible_and_overlap() -> None:
    assert compatible(ChangeType.VEGETATION_LOSS, ChangeType.EARTHWORKS)
    assert compatible(ChangeType.EARTHWORKS, ChangeType.VEGETATION_LOSS)
    assert not compatible(ChangeType.BURN_SCAR, ChangeType.EARTHWORKS)
    assert overlap(box(0, 0, 1, 1), box(-1, -1, 5, 5)) == pytest.approx(1.0)  # the smaller one inside
    assert overlap(box(0, 0, 1, 1), box(0.5, 0, 5, 1)) == pytest.approx(0.5)
    assert overlap(box(0, 0, 1, 1), box(2, 2, 3, 3)) == 0.0


@settings(max_examples=60, deadline=None)
@given(
    xs=st.lists(st.integers(0, 200), min_size=0, max_size=6, unique=True),
    past=st.lists(st.integers(0, 200), min_size=0, max_size=6, unique=True),
)
def test_ids_stay_unique_and_tracking_is_repeatable(xs: list[int], past: list[int]) -> None:
    tracks = [_track(_alert(x, alert_id=f"t{x}")) for x in past]
    today = [_alert(x) for x in xs]
    first = track_alerts(today, tracks, run_date=DAY, after_start=AFTER_START)
    ids = [a.id for a in first.alerts]
    assert len(set(ids)) == len(ids)
    # Every track is matched today, merged into a matched alert, or withdrawn (all changes here began in the
    # after window), and only a track no alert of today overlaps is withdrawn.
    matched = {a.id for a in first.alerts} & {t.alert.id for t in tracks}
    withdrawn = {t.alert.id for t in first.withdrawn}
    assert not matched & withdrawn
    today_shapes = [shapely.geometry.shape(a.geometry) for a in first.alerts]
    for t in first.withdrawn:
        s = shapely.geometry.shape(t.alert.geometry)
        assert all(overlap(s, o) < 0.3 for o in today_shapes)
    # An alert is new only if it overlaps no track.
    for a, s in zip(first.alerts, today_shapes, strict=True):
        if a.lifecycle == "new":
            assert all(overlap(s, shapely.geometry.shape(t.alert.geometry)) < 0.3 for t in tracks)
    # Repeating a run (its alerts already tracked) gives the same ids and states.
    again = track_alerts(first.alerts, tracks, run_date=DAY, after_start=AFTER_START)
    assert [(a.id, a.lifecycle) for a in again.alerts] == [(a.id, a.lifecycle) for a in first.alerts]
    assert all(shapely.geometry.shape(a.geometry).is_valid for a in again.alerts)
