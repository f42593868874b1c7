from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path

import pytest

from monitoring import pipeline
from monitoring.config import Settings
from monitoring.errors import StoreError
from monitoring.report.load import load_results
from monitoring.report.samples import write_sample_run
from monitoring.results import Alert
from monitoring.store import AlertStore
from tests.test_track import _alert

DAY = date(2025, 12, 22)


def _tracked(a: Alert, first: date) -> Alert:
    return a.model_copy(update={"lifecycle": "new", "first_reported": first})


def test_tracks_are_the_latest_earlier_report_of_each_alert(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "t.sqlite")
    d1, d2 = DAY - timedelta(days=2), DAY - timedelta(days=1)
    store.record(
        "h", d1, [_tracked(_alert(0, alert_id="a", size=10), d1), _tracked(_alert(50, alert_id="b"), d1)]
    )
    store.record("h", d2, [_tracked(_alert(0, alert_id="a", size=12), d1)])
    store.record("h", DAY, [_tracked(_alert(90, alert_id="today"), DAY)])  # not earlier: never a track of DAY
    store.record("other", d2, [_tracked(_alert(0, alert_id="elsewhere"), d2)])
    tracks = {t.alert.id: t for t in store.tracks("h", before=DAY, max_gap_days=30)}
    assert set(tracks) == {"a", "b"}
    assert tracks["a"].last_reported == d2 and tracks["a"].first_reported == d1
    assert tracks["a"].alert.area_ha == _alert(0, size=12).area_ha
    assert tracks["b"].last_reported == d1
    # Tracks not reported within max_gap_days are no longer followed.
    assert [t.alert.id for t in store.tracks("h", before=DAY, max_gap_days=1)] == ["a"]
    assert store.runs("h") == [d1, d2, DAY]
    assert store.previous_run("h", before=DAY) == d2 and store.previous_run("h", before=d1) is None


def test_recording_a_run_again_replaces_it(tmp_path: Path) -> None:
    store = AlertStore(tmp_path / "t.sqlite")
    d1 = DAY - timedelta(days=1)
    store.record("h", d1, [_tracked(_alert(0, alert_id="a"), d1), _tracked(_alert(50, alert_id="b"), d1)])
    store.record("h", d1, [_tracked(_alert(0, alert_id="a"), d1)])
    assert [t.alert.id for t in store.tracks("h", before=DAY, max_gap_days=30)] == ["a"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a database, just text" * 100, "not a readable alert store"),
        ("sqlite-foreign", "not a Borderwatch alert store"),
        ("sqlite-v99", "schema version 99"),
    ],
)
def test_a_file_that_is_not_our_store_is_refused_and_left_alone(
    tmp_path: Path, content: bytes | str, message: str
) -> None:
    path = tmp_path / "t.sqlite"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        with sqlite3.connect(path) as conn:
            if content == "sqlite-foreign":
                conn.execute("CREATE TABLE notes (x TEXT)")
            else:
                conn.execute("PRAGMA user_version = 99")
        conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=message) as e:
        AlertStore(path).check()
    assert str(path) in str(e.value) and "move it aside" in str(e.value)
    assert "\n" not in str(e.value)
    assert path.read_bytes() == before


def test_daily_runs_keep_ids_and_say_what_happened(tmp_path: Path) -> None:
    settings = Settings()
    store = AlertStore(tmp_path / "tracks.sqlite")
    d1, d2 = DAY - timedelta(days=1), DAY
    write_sample_run(tmp_path / "d1", run_date=d1)
    counts = pipeline.track_run(tmp_path / "d1", run_date=d1, settings=settings, store=store)
    first = {r.area_id: r for r in load_results(tmp_path / "d1")}
    alerts1 = [a for r in first.values() for a in r.alerts]
    assert alerts1 and counts == {"new": len(alerts1)}
    assert all(r.tracked and r.previous_run is None for r in first.values() if r.status == "ok")
    assert all(a.lifecycle == "new" and a.first_reported == d1 for a in alerts1)

    # The next day sees the same changes one day later in its window: same places, later last look.
    write_sample_run(tmp_path / "d2", run_date=d2)
    pipeline.track_run(tmp_path / "d2", run_date=d2, settings=settings, store=store)
    second = [a for r in load_results(tmp_path / "d2") for a in r.alerts]
    pv = next(r for r in load_results(tmp_path / "d2") if r.area_id == "preah-vihear")
    assert pv.previous_run == d1
    assert sorted(a.id for a in second) == sorted(a.id for a in alerts1)
    assert {a.lifecycle for a in second} == {"confirmed"}
    assert {a.first_reported for a in second} == {d1}

    # Repeating day 2 changes nothing; day 1's report stays as it was.
    again = pipeline.track_run(tmp_path / "d2", run_date=d2, settings=settings, store=store)
    assert again == {"confirmed": len(second)}
    day1 = store.tracks("preah-vihear", before=d2, max_gap_days=5)
    assert day1 and {(t.last_reported, t.alert.lifecycle) for t in day1} == {(d1, "new")}


def test_a_run_that_no_longer_sees_an_alert_withdraws_it(tmp_path: Path) -> None:
    settings = Settings()
    store = AlertStore(tmp_path / "tracks.sqlite")
    d1, d2 = DAY - timedelta(days=1), DAY
    write_sample_run(tmp_path / "d1", run_date=d1)
    pipeline.track_run(tmp_path / "d1", run_date=d1, settings=settings, store=store)
    write_sample_run(tmp_path / "d2", run_date=d2)
    path = tmp_path / "d2" / "areas" / "preah-vihear" / "result.json"
    result = load_results(tmp_path / "d2")
    pv = next(r for r in result if r.area_id == "preah-vihear")
    gone, kept = pv.alerts[0], pv.alerts[1:]
    path.write_text(pv.model_copy(update={"alerts": kept}).model_dump_json(), encoding="utf-8")
    pipeline.track_run(tmp_path / "d2", run_date=d2, settings=settings, store=store)
    pv2 = next(r for r in load_results(tmp_path / "d2") if r.area_id == "preah-vihear")
    assert [a.id for a in pv2.withdrawn] == [gone.id]


def test_withdrawn_once_and_a_run_that_did_not_look_is_not_stored(tmp_path: Path) -> None:
    settings = Settings()
    store = AlertStore(tmp_path / "tracks.sqlite")
    days = [DAY - timedelta(days=2), DAY - timedelta(days=1), DAY]
    for d in days:
        write_sample_run(tmp_path / d.isoformat(), run_date=d)
    pipeline.track_run(tmp_path / days[0].isoformat(), run_date=days[0], settings=settings, store=store)

    def drop_first_alert(d: date) -> str:
        path = tmp_path / d.isoformat() / "areas" / "preah-vihear" / "result.json"
        pv = next(r for r in load_results(tmp_path / d.isoformat()) if r.area_id == "preah-vihear")
        path.write_text(pv.model_copy(update={"alerts": pv.alerts[1:]}).model_dump_json(), encoding="utf-8")
        return pv.alerts[0].id

    gone = drop_first_alert(days[1])
    drop_first_alert(days[2])
    for d, expected in ((days[1], [gone]), (days[2], [])):
        pipeline.track_run(tmp_path / d.isoformat(), run_date=d, settings=settings, store=store)
        pv = next(r for r in load_results(tmp_path / d.isoformat()) if r.area_id == "preah-vihear")
        assert [a.id for a in pv.withdrawn] == expected, d
    # Areas the sample run did not observe are tracked (no alerts) but not stored as runs that looked.
    unseen = [
        r.area_id
        for r in load_results(tmp_path / days[0].isoformat())
        if r.coverage is not None and r.coverage.status == "not observed"
    ]
    assert unseen and all(store.runs(a) == [] for a in unseen)
    assert store.runs("preah-vihear") == days
