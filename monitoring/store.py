"""Store: the alert tracking database (SQLite, embedded), the IO side of monitoring.track.

One row per alert per area per daily run: the alert as that run reported it (its JSON). A run's rows are replaced
as a whole when the run is repeated, and tracking reads only rows of earlier run dates, so re-running a day gives
the same ids and states, and runs can be made in any order. Ad hoc checks are not stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import date, timedelta
from pathlib import Path

from pydantic import ValidationError

from monitoring.errors import StoreError
from monitoring.results import Alert
from monitoring.track import Track

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    hotspot_id TEXT NOT NULL,
    run_date TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    first_reported TEXT NOT NULL,
    alert TEXT NOT NULL,
    PRIMARY KEY (hotspot_id, run_date, alert_id)
);
CREATE TABLE IF NOT EXISTS runs (
    hotspot_id TEXT NOT NULL,
    run_date TEXT NOT NULL,
    PRIMARY KEY (hotspot_id, run_date)
);
"""
_FIX = "move it aside (tracking then starts afresh) or set tracking.store to another file"


class AlertStore:
    """The tracking database at one path; created on first use."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"AlertStore({str(self.path)!r})"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(
                f"{self.path}: cannot open the alert store ({e}); check the path and permissions."
            ) from e
        with closing(conn):
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:
                    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                    if tables:
                        raise StoreError(
                            f"{self.path}: is an SQLite file but not a Borderwatch alert store; {_FIX}."
                        )
                    with conn:
                        conn.executescript(_SCHEMA)
                        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                elif version != SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.path}: alert store schema version {version}, this Borderwatch reads version "
                        f"{SCHEMA_VERSION}; {_FIX}."
                    )
                yield conn
            except sqlite3.DatabaseError as e:
                raise StoreError(f"{self.path}: not a readable alert store ({e}); {_FIX}.") from e

    def check(self) -> None:
        """Open (creating it if new) and check the schema, so a daily run fails before its analysis, not after."""
        with self._connect():
            pass

    def tracks(self, hotspot_id: str, *, before: date, max_gap_days: int) -> list[Track]:
        """The live tracks of an area: per alert id, its latest report in the max_gap_days before `before`."""
        since = before - timedelta(days=max_gap_days)
        with self._connect() as conn:
            rows = conn.execute(
                """
                SELECT r.alert, r.first_reported, r.run_date FROM reports r
                JOIN (SELECT alert_id, max(run_date) AS last FROM reports
                      WHERE hotspot_id = ? AND run_date < ? AND run_date >= ? GROUP BY alert_id) l
                  ON r.alert_id = l.alert_id AND r.run_date = l.last
                WHERE r.hotspot_id = ?
                ORDER BY r.alert_id
                """,
                (hotspot_id, before.isoformat(), since.isoformat(), hotspot_id),
            ).fetchall()
        out: list[Track] = []
        for text, first, last in rows:
            try:
                alert = Alert.model_validate_json(text)
            except ValidationError as e:
                raise StoreError(
                    f"{self.path}: the report of an alert of {hotspot_id!r} on {last} cannot be read "
                    f"({e.errors()[0]['msg']}); {_FIX}."
                ) from e
            out.append(Track(alert, date.fromisoformat(first), date.fromisoformat(last)))
        return out

    def record(self, hotspot_id: str, run_date: date, alerts: list[Alert]) -> None:
        """Replace what the run of run_date reported for the area by these (tracked) alerts, in one transaction."""
        day = run_date.isoformat()
        rows = [
            (hotspot_id, day, a.id, (a.first_reported or run_date).isoformat(), a.model_dump_json())
            for a in alerts
        ]
        with self._connect() as conn, conn:
            conn.execute("DELETE FROM reports WHERE hotspot_id = ? AND run_date = ?", (hotspot_id, day))
            conn.executemany("INSERT INTO reports VALUES (?, ?, ?, ?, ?)", rows)
            conn.execute("INSERT OR IGNORE INTO runs VALUES (?, ?)", (hotspot_id, day))

    def previous_run(self, hotspot_id: str, *, before: date) -> date | None:
        """The area's latest stored run before `before` (runs that did not look are not stored); None if none."""
        with self._connect() as conn:
            (last,) = conn.execute(
                "SELECT max(run_date) FROM runs WHERE hotspot_id = ? AND run_date < ?",
                (hotspot_id, before.isoformat()),
            ).fetchone()
        return date.fromisoformat(last) if last else None

    def runs(self, hotspot_id: str) -> list[date]:
        """Run dates stored for an area, oldest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT run_date FROM runs WHERE hotspot_id = ? ORDER BY run_date", (hotspot_id,)
            ).fetchall()
        return [date.fromisoformat(r[0]) for r in rows]
