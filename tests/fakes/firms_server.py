"""Test fake (fetch): NASA FIRMS' area and data-availability APIs on 127.0.0.1, serving an in-memory table.

Follows the published API where a client can tell the difference:

- ``/api/area/csv/{MAP_KEY}/{SOURCE}/{west,south,east,north | world}/{DAY_RANGE}[/{YYYY-MM-DD}]``: the
  detections of SOURCE acquired on DATE .. DATE + DAY_RANGE - 1 (without a date: the last DAY_RANGE days up to
  ``today``) inside the box, edges included, as CSV with FIRMS' header of the product family (VIIRS:
  bright_ti4/bright_ti5, MODIS: brightness/bright_t31) and acq_time written as FIRMS writes it, without leading
  zeros (523 = 05:23); scan and track (km) are the detection's, near-nadir values unless it sets them (within
  SCAN_TRACK_RANGE, as FIRMS' rows are). A source only answers the days its data-availability row holds (the
  archive and near real time of one satellite do not overlap). No detection: the header alone.
- ``/api/data_availability/csv/{MAP_KEY}/{ALL | SOURCE}``: ``data_id,min_date,max_date``.
- Errors as FIRMS gives them, as plain text instead of CSV: ``Invalid MAP_KEY.`` for a wrong key (HTTP 400 by
  default; ``bad_key_status`` makes it 401 or even 200, as FIRMS has answered), ``Invalid day range. Expects
  [1..5].``, ``Invalid area coordinates.``, ``Invalid source.``, ``Invalid date.``; ``Exceeding allowed
  transaction limit.`` once the key has spent ``transaction_limit`` transactions (an area request costs one per
  day of its range, an availability request one; FIRMS allows 5000 per 10 minutes). Unknown paths get an HTML
  404 page.

Fault injection: ``fail(status, times=..., match=..., retry_after=...)`` answers the next matching requests
with that status (500/503 with an error page, 429 with ``Retry-After``); ``stall(seconds, times=...)`` delays
answers (for read timeouts). Every request is logged (``log``, ``area_requests()``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote, urlparse

from tests.fakes.loopback import LoopbackServer, QuietHandler

MAP_KEY = "0123456789abcdef0123456789abcdef"
"""The key the fake accepts (32 hex characters, as FIRMS' keys)."""

VIIRS_HEADER = (
    "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,"
    "bright_ti5,frp,daynight"
)
MODIS_HEADER = (
    "latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,"
    "bright_t31,frp,daynight"
)
DEFAULT_SATELLITE = {"VIIRS_SNPP": "N", "VIIRS_NOAA20": "N20", "VIIRS_NOAA21": "N21", "MODIS": "T"}
"""FIRMS' satellite code of each family's rows unless a detection says otherwise (MODIS: T or A)."""

TODAY = date(2025, 12, 22)
"""The fake's 'today': the last day near real time holds."""
DEFAULT_AVAILABILITY: dict[str, tuple[date, date]] = {
    "LANDSAT_NRT": (date(2022, 6, 20), TODAY),
    "MODIS_NRT": (date(2025, 10, 1), TODAY),
    "MODIS_SP": (date(2000, 11, 1), date(2025, 9, 30)),
    "VIIRS_NOAA20_NRT": (date(2025, 10, 1), TODAY),
    "VIIRS_NOAA20_SP": (date(2018, 4, 1), date(2025, 9, 30)),
    "VIIRS_NOAA21_NRT": (date(2024, 1, 17), TODAY),
    "VIIRS_SNPP_NRT": (date(2025, 10, 1), TODAY),
    "VIIRS_SNPP_SP": (date(2012, 1, 20), date(2025, 9, 30)),
}
"""A plausible table for late December 2025: archives up to the end of September, NRT since; NOAA-21 has no
archive yet and starts in January 2024."""
MAX_DAY_RANGE = 5
NADIR_SCAN_TRACK: dict[str, tuple[float, float]] = {"VIIRS": (0.39, 0.36), "MODIS": (1.0, 1.0)}
"""scan, track (km) of a detection near nadir, as FIRMS' CSVs give them."""
SCAN_TRACK_RANGE: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "VIIRS": ((0.32, 0.8), (0.36, 0.78)),
    "MODIS": ((1.0, 4.8), (1.0, 2.0)),
}
"""(scan, track) ranges in km that FIRMS' rows keep: the pixel grows off nadir, mostly across the scan."""

_TEXT = "text/plain;charset=UTF-8"
_CSV = "text/csv;charset=UTF-8"


@dataclass(frozen=True)
class Detection:
    """One fire pixel in the fake's table, as FIRMS stores it."""

    source: str
    """The FIRMS source holding it, e.g. 'VIIRS_SNPP_NRT' or 'MODIS_SP'."""
    latitude: float
    longitude: float
    acq_date: date
    acq_time: int | str = 600
    """HHMM UTC; an int is written without leading zeros (as FIRMS does), a str as given."""
    satellite: str | None = None
    """FIRMS' code (N, N20, N21, T, A, Terra, Aqua ...); None = the family's usual one."""
    confidence: str | int = "n"
    """VIIRS: l / n / h; MODIS: 0-100."""
    frp: float | None = 5.0
    daynight: str = "D"
    scan: float | str | None = None
    """Pixel size along scan, km; None = near nadir (NADIR_SCAN_TRACK). A float must lie in SCAN_TRACK_RANGE; a
    str is written as given (e.g. '' for a row without it)."""
    track: float | str | None = None
    """Pixel size along track, km; as scan."""

    def __post_init__(self) -> None:
        ranges = SCAN_TRACK_RANGE[self.instrument]
        for name, value, (lo, hi) in zip(("scan", "track"), (self.scan, self.track), ranges, strict=True):
            if isinstance(value, float | int) and not lo <= value <= hi:
                raise ValueError(f"{self.instrument} {name} {value} km is outside FIRMS' {lo}-{hi} km")

    @property
    def family(self) -> str:
        return self.source.removesuffix("_NRT").removesuffix("_SP")

    @property
    def instrument(self) -> str:
        return "MODIS" if self.family == "MODIS" else "VIIRS"

    def csv_row(self) -> str:
        modis = self.family == "MODIS"
        nrt = self.source.endswith("_NRT")
        version = ("6.1" if modis else "2.0") + ("NRT" if nrt else "")
        nadir_scan, nadir_track = NADIR_SCAN_TRACK[self.instrument]
        scan = nadir_scan if self.scan is None else self.scan
        track = nadir_track if self.track is None else self.track
        sat = self.satellite if self.satellite is not None else DEFAULT_SATELLITE[self.family]
        frp = "" if self.frp is None else f"{self.frp:.2f}"
        return (
            f"{self.latitude:.5f},{self.longitude:.5f},331.20,{scan},{track},{self.acq_date:%Y-%m-%d},"
            f"{self.acq_time},{sat},{self.instrument},{self.confidence},{version},293.40,{frp},"
            f"{self.daynight}"
        )


@dataclass
class Fault:
    """Answer the next `times` requests whose path contains `match` with `status`."""

    status: int
    times: int
    match: str = ""
    retry_after: int | None = None
    """Seconds, sent as Retry-After (HTTP allows whole seconds or a date)."""


@dataclass(frozen=True)
class RequestLog:
    path: str
    status: int
    nbytes: int


@dataclass(frozen=True)
class AreaCall:
    """A parsed area request the fake received."""

    key: str
    source: str
    area: str
    days: int
    start: date | None


class _Reject(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


@dataclass
class FakeFirmsServer:
    """The table served on 127.0.0.1 in a thread; use as a context manager or call close()."""

    detections: Iterable[Detection] = ()
    availability: dict[str, tuple[date, date]] = field(default_factory=lambda: dict(DEFAULT_AVAILABILITY))
    map_key: str = MAP_KEY
    transaction_limit: int = 5000
    bad_key_status: int = 400
    limit_status: int = 403
    today: date = TODAY

    def __post_init__(self) -> None:
        self.table: list[Detection] = list(self.detections)
        self.log: list[RequestLog] = []
        self.transactions = 0
        self.faults: list[Fault] = []
        self._stalls: list[list[float]] = []
        self._lock = threading.Lock()
        self._server = LoopbackServer(self._handler(), name="fake-firms")
        self.url = self._server.url

    def __enter__(self) -> FakeFirmsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.close()

    # -- test controls ---------------------------------------------------------------------------------------

    def fail(self, status: int, *, times: int = 1, match: str = "", retry_after: int | None = None) -> Fault:
        f = Fault(status, times, match, retry_after)
        with self._lock:
            self.faults.append(f)
        return f

    def stall(self, seconds: float, *, times: int = 1) -> None:
        """Hold the next `times` answers for `seconds` (then answer normally, to a client that may be gone)."""
        with self._lock:
            self._stalls.append([seconds, times])

    def area_requests(self) -> list[AreaCall]:
        """The area requests received, in order (faulted ones included)."""
        out = []
        for r in self.log:
            parts = r.path.strip("/").split("/")
            if parts[:3] == ["api", "area", "csv"] and len(parts) >= 7:
                start = date.fromisoformat(parts[7]) if len(parts) > 7 else None
                out.append(AreaCall(parts[3], parts[4], parts[5], int(parts[6]), start))
        return out

    def availability_requests(self) -> int:
        return sum("/api/data_availability/" in r.path for r in self.log)

    def _record(self, path: str, status: int, nbytes: int) -> None:
        with self._lock:
            self.log.append(RequestLog(path, status, nbytes))

    def _fault_for(self, path: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if f.match in path and f.times > 0:
                    f.times -= 1
                    return f
        return None

    def _stall_for(self) -> float:
        with self._lock:
            for s in self._stalls:
                if s[1] > 0:
                    s[1] -= 1
                    return float(s[0])
        return 0.0

    # -- API -------------------------------------------------------------------------------------------------

    def _spend(self, key: str, cost: int) -> None:
        if key != self.map_key:
            raise _Reject(self.bad_key_status, "Invalid MAP_KEY.")
        with self._lock:
            if self.transactions + cost > self.transaction_limit:
                raise _Reject(self.limit_status, "Exceeding allowed transaction limit.")
            self.transactions += cost

    def area_csv(self, key: str, source: str, area: str, day_range: str, day: str | None) -> str:
        """The CSV of one area request, or _Reject with FIRMS' error text."""
        if key != self.map_key:
            raise _Reject(self.bad_key_status, "Invalid MAP_KEY.")
        if source not in self.availability or source.startswith("LANDSAT"):
            raise _Reject(400, "Invalid source.")
        try:
            if area.lower() == "world":
                w, s, e, n = -180.0, -90.0, 180.0, 90.0
            else:
                w, s, e, n = (float(v) for v in area.split(","))
        except ValueError:
            raise _Reject(400, "Invalid area coordinates.") from None
        if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
            raise _Reject(400, "Invalid area coordinates.")
        if not day_range.isdigit() or not 1 <= int(day_range) <= MAX_DAY_RANGE:
            raise _Reject(400, f"Invalid day range. Expects [1..{MAX_DAY_RANGE}].")
        days = int(day_range)
        try:
            first = date.fromisoformat(day) if day else self.today - timedelta(days=days - 1)
        except ValueError:
            raise _Reject(400, "Invalid date.") from None
        self._spend(key, days)
        last = first + timedelta(days=days - 1)
        held_lo, held_hi = self.availability[source]
        rows = [
            d.csv_row()
            for d in self.table
            if d.source == source
            and first <= d.acq_date <= last
            and held_lo <= d.acq_date <= held_hi
            and w <= d.longitude <= e
            and s <= d.latitude <= n
        ]
        header = MODIS_HEADER if source.startswith("MODIS") else VIIRS_HEADER
        return "\n".join([header, *rows]) + "\n"

    def availability_csv(self, key: str, sensor: str) -> str:
        if key != self.map_key:
            raise _Reject(self.bad_key_status, "Invalid MAP_KEY.")
        wanted = sorted(self.availability) if sensor.upper() == "ALL" else [sensor.upper()]
        if any(s not in self.availability for s in wanted):
            raise _Reject(400, "Invalid sensor.")
        self._spend(key, 1)
        lines = ["data_id,min_date,max_date"]
        lines += [f"{s},{self.availability[s][0]},{self.availability[s][1]}" for s in wanted]
        return "\n".join(lines) + "\n"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            disable_nagle_algorithm = True

            def _send(
                self, status: int, body: str, ctype: str, headers: dict[str, str] | None = None
            ) -> None:
                data = body.encode()
                self.start_response(status, ctype, len(data), headers)
                # Recorded before the body goes out, so a test reading the log right after its call sees it.
                server._record(self.path, status, len(data))
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # a client that timed out and left
                    pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = unquote(urlparse(self.path).path)
                delay = server._stall_for()
                if delay:
                    time.sleep(delay)
                fault = server._fault_for(path)
                if fault is not None:
                    headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                    page = f"<html><body><h1>{fault.status} injected fault</h1></body></html>"
                    self._send(fault.status, page, "text/html", headers)
                    return
                parts = path.strip("/").split("/")
                try:
                    if parts[:3] == ["api", "area", "csv"] and len(parts) in (7, 8):
                        day = parts[7] if len(parts) == 8 else None
                        self._send(200, server.area_csv(parts[3], parts[4], parts[5], parts[6], day), _CSV)
                    elif parts[:3] == ["api", "data_availability", "csv"] and len(parts) == 5:
                        self._send(200, server.availability_csv(parts[3], parts[4]), _CSV)
                    else:
                        self._send(404, "<html><body><h1>404 Not Found</h1></body></html>", "text/html")
                except _Reject as r:
                    self._send(r.status, r.text, _TEXT)

        return Handler
