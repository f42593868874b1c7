"""Fetch: active fires from NASA FIRMS (VIIRS 375 m and MODIS 1 km detections), as a ThermalSource.

FIRMS' area API answers, per request, one FIRMS source (e.g. VIIRS_SNPP_NRT), one bounding box and 1-5 days from
a date, as CSV. This module adds what the pipeline needs on top:

- FIRMS' data availability is read once per source; each configured product (a satellite family) is read, day by
  day, from its standard-processing archive (_SP) where that holds the day, else from near real time (_NRT).
  Days neither holds are not asked for: they are recorded as gaps (``source.gaps``, ``ProductGap.describe``) so
  that a caller can say e.g. "NOAA-21 had no data before 2024-01-17";
- each product's days are cut into runs of at most MAX_DAY_RANGE days, one request each;
- FIRMS' rows become the thermal contract's (monitoring.sources.thermal): UTC time from acq_date + acq_time,
  satellite names, confidence classes, each detection's pixel size from its scan/track (pixel_size_m), the
  FIRMS source as product; only the requested days and box are kept, and rows repeated across requests are
  dropped;
- FIRMS' error texts (a refused MAP_KEY, a spent transaction limit, a rejected parameter) become FirmsError
  subclasses whose one-line message names the product, the days, the area and the fix. The MAP_KEY never
  appears in a message or a log line, urllib3's included.

Retries of 5xx, 429 (honouring Retry-After), timeouts and dropped connections are urllib3's Retry on a requests
session. The parsing and planning functions (parse_availability, plan_requests, parse_fires_csv, select_fires)
do no IO.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import quote

import geopandas as gpd
import numpy as np
import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from urllib3 import BaseHTTPResponse
from urllib3.connectionpool import ConnectionPool
from urllib3.util.retry import Retry

from monitoring.aoi import AOI
from monitoring.config import FirmsSettings, Settings
from monitoring.errors import SourceError
from monitoring.sources.thermal import (
    FIRE_COLUMNS,
    check_fires,
    empty_fires,
    fires_frame,
    search_bbox,
    utc_day_bounds,
)

log = logging.getLogger(__name__)

ENV_MAP_KEY = "FIRMS_MAP_KEY"
MAP_KEY_PAGE = "https://firms.modaps.eosdis.nasa.gov/api/map_key/"
"""Where a MAP_KEY is requested (free, by e-mail)."""
MAX_DAY_RANGE = 5
"""Most days one area request may span: FIRMS answers 'Invalid day range. Expects [1..5].' beyond."""
TRANSACTION_LIMIT = "5000 transactions per 10 minutes"
"""FIRMS' budget per MAP_KEY; a request of several days costs several transactions."""
RETRY_AFTER_MAX_S = 600
"""Longest Retry-After wait honoured: FIRMS' transaction window is 10 minutes, longer waits help nothing."""
MASK = "***"
"""What the MAP_KEY is replaced by in URLs, messages and log lines."""

VIIRS_COLUMNS: tuple[str, ...] = (
    "latitude",
    "longitude",
    "bright_ti4",
    "scan",
    "track",
    "acq_date",
    "acq_time",
    "satellite",
    "instrument",
    "confidence",
    "version",
    "bright_ti5",
    "frp",
    "daynight",
)
"""Columns of FIRMS' VIIRS 375 m CSV (VIIRS_SNPP_*, VIIRS_NOAA20_*, VIIRS_NOAA21_*)."""
MODIS_COLUMNS: tuple[str, ...] = (
    "latitude",
    "longitude",
    "brightness",
    "scan",
    "track",
    "acq_date",
    "acq_time",
    "satellite",
    "instrument",
    "confidence",
    "version",
    "bright_t31",
    "frp",
    "daynight",
)
"""Columns of FIRMS' MODIS 1 km CSV (MODIS_NRT, MODIS_SP)."""
REQUIRED_COLUMNS: tuple[str, ...] = (
    "latitude",
    "longitude",
    "acq_date",
    "acq_time",
    "satellite",
    "confidence",
    "frp",
    "daynight",
)
"""The columns the contract is built from; scan/track give pixel_m where a row has them (pixel_size_m), the others
(brightness temperatures, version) are not kept."""
PIXEL_SIZE_COLUMNS: tuple[str, ...] = ("scan", "track")
"""FIRMS' pixel size of each detection in km, along scan and along track: it grows off nadir (VIIRS 0.375 km at
nadir to about 0.8 km at the swath's edge, MODIS 1 km to about 4.8 km along scan and 2 km along track)."""
AVAILABILITY_COLUMNS: tuple[str, ...] = ("data_id", "min_date", "max_date")

DEDUP_KEY = ["time", "latitude", "longitude", "satellite", "instrument"]
"""One fire pixel of one overpass: rows equal in these are one detection."""


@dataclass(frozen=True)
class ProductFamily:
    """What a FIRMS product (satellite family) is: its sensor, platform and pixel size."""

    instrument: Literal["VIIRS", "MODIS"]
    satellite: str
    """The platform as the contract spells it; MODIS flies on two ('Terra/Aqua', for messages only)."""
    pixel_m: float
    """Nominal pixel size at nadir: pixel_m of a row without a usable scan/track."""
    columns: tuple[str, ...]


FAMILIES: dict[str, ProductFamily] = {
    "VIIRS_SNPP": ProductFamily("VIIRS", "Suomi NPP", 375.0, VIIRS_COLUMNS),
    "VIIRS_NOAA20": ProductFamily("VIIRS", "NOAA-20", 375.0, VIIRS_COLUMNS),
    "VIIRS_NOAA21": ProductFamily("VIIRS", "NOAA-21", 375.0, VIIRS_COLUMNS),
    "MODIS": ProductFamily("MODIS", "Terra/Aqua", 1000.0, MODIS_COLUMNS),
}
SATELLITES: dict[str, str] = {
    "N": "Suomi NPP",
    "NPP": "Suomi NPP",
    "SUOMI NPP": "Suomi NPP",
    "SUOMI-NPP": "Suomi NPP",
    "N20": "NOAA-20",
    "NOAA-20": "NOAA-20",
    "J1": "NOAA-20",
    "1": "NOAA-20",  # older VIIRS_NOAA20 rows
    "N21": "NOAA-21",
    "NOAA-21": "NOAA-21",
    "J2": "NOAA-21",
    "T": "Terra",
    "TERRA": "Terra",
    "A": "Aqua",
    "AQUA": "Aqua",
}
"""FIRMS' satellite codes (upper case) -> the contract's names."""
CONFIDENCE_LETTERS: dict[str, str] = {
    "l": "low",
    "n": "nominal",
    "h": "high",
    "low": "low",
    "nominal": "nominal",
    "high": "high",
}


def product_family(source: str) -> str:
    """The satellite family of a FIRMS source or configured product: VIIRS_SNPP_NRT -> VIIRS_SNPP."""
    return source.removesuffix("_NRT").removesuffix("_SP")


# -- errors --------------------------------------------------------------------------------------------------


class FirmsError(SourceError):
    """FIRMS could not be read, or its answer cannot be; the message names product, days, area and fix."""


class FirmsKeyError(FirmsError):
    """No MAP_KEY, or FIRMS refused it ('Invalid MAP_KEY.')."""


class FirmsLimitError(FirmsError):
    """The MAP_KEY's transaction limit is spent, or FIRMS still answered 429 after the retries."""


class FirmsRequestError(FirmsError):
    """FIRMS rejected a parameter (source, area, day range, date) with an error text instead of CSV."""


class FirmsUnavailableError(FirmsError):
    """No usable answer after the retries: 5xx, timeouts, refused or dropped connections."""


# -- the MAP_KEY ---------------------------------------------------------------------------------------------


def _load_secret_block(block: str) -> Any:
    """The value of a Prefect Secret block (imported here: the library runs without Prefect)."""
    from prefect.blocks.system import Secret

    return Secret.load(block).get()  # type: ignore[union-attr]  # sync call: a Secret, not a coroutine


def firms_map_key(settings: Settings | FirmsSettings) -> str | None:
    """The FIRMS MAP_KEY: FIRMS_MAP_KEY from the environment, else the Prefect Secret block named in
    firms.map_key_block (a string, or {"map_key": ...}); None when neither is set.

    Raises FirmsKeyError when the block is named but cannot be read.
    """
    firms = settings.firms if isinstance(settings, Settings) else settings
    key = os.environ.get(ENV_MAP_KEY, "").strip()
    if key:
        return key
    block = firms.map_key_block
    if not block:
        return None
    try:
        value = _load_secret_block(block)
        # Only a JSON object is decoded: a bare key such as "123e4567..." would otherwise become a float.
        if isinstance(value, str) and value.lstrip().startswith("{"):
            value = json.loads(value)
        if isinstance(value, dict):
            value = value["map_key"]
        key = str(value).strip()
        if not key:
            raise ValueError("the block holds an empty value")
        return key
    except Exception as e:  # Prefect, JSON and key errors all mean the same thing to the user
        raise FirmsKeyError(
            f"FIRMS MAP_KEY: cannot read it from the Prefect Secret block {block!r} (firms.map_key_block) "
            f'({type(e).__name__}: {_one_line(str(e))}); store the key (or {{"map_key": ...}}) in it, or set '
            f"{ENV_MAP_KEY}."
        ) from e


def choose_thermal_source(settings: Settings) -> Literal["firms", "simulator", "none"]:
    """Which thermal source settings.thermal.source means: 'auto' is the simulator's fires with the simulator's
    imagery, FIRMS with real imagery when a MAP_KEY is available, else none."""
    choice = settings.thermal.source
    if choice != "auto":
        return choice
    if settings.source == "simulator":
        return "simulator"
    try:
        key = firms_map_key(settings)
    except FirmsKeyError as e:
        log.warning("thermal.source auto: no active fires this run: %s", e)
        return "none"
    return "firms" if key else "none"


def firms_source(settings: Settings) -> FirmsSource:
    """The FIRMS thermal source of settings.firms; FirmsKeyError when no MAP_KEY is available."""
    return FirmsSource(settings.firms)


class _MaskSecrets(logging.Filter):
    """Replaces MAP_KEYs in log records: urllib3 logs request URLs (the key is in the path) on retries."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        masked = _mask(text, self.secrets)
        if masked != text:
            record.msg, record.args = masked, ()
        return True


_LOG_MASK = _MaskSecrets()
_URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry")


def _mask_in_logs(secret: str) -> None:
    _LOG_MASK.secrets.update({secret, quote(secret, safe="")})
    for name in (*_URLLIB3_LOGGERS, __name__):
        logger = logging.getLogger(name)
        if _LOG_MASK not in logger.filters:
            logger.addFilter(_LOG_MASK)


def _mask(text: str, secrets: Iterable[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, MASK)
    return text


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


# -- data availability and the request plan (pure) ------------------------------------------------------------


def parse_availability(text: str) -> dict[str, tuple[date, date]]:
    """FIRMS' data availability CSV (data_id,min_date,max_date) -> {data_id: (first day, last day)}.

    Raises ValueError for anything else (an error text, another table). Rows without dates are left out.
    """
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in AVAILABILITY_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"expected columns {list(AVAILABILITY_COLUMNS)}, got {list(frame.columns)[:6]}")
    out: dict[str, tuple[date, date]] = {}
    for data_id, lo, hi in zip(frame["data_id"], frame["min_date"], frame["max_date"], strict=True):
        if not str(lo).strip() or not str(hi).strip():
            continue
        out[str(data_id).strip().upper()] = (
            date.fromisoformat(str(lo).strip()),
            date.fromisoformat(str(hi).strip()),
        )
    return out


@dataclass(frozen=True)
class AreaRequest:
    """One area API request: one FIRMS source, `days` days from `start`."""

    source: str
    """FIRMS source name, e.g. 'VIIRS_SNPP_NRT'."""
    start: date
    days: int

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.days - 1)

    def __str__(self) -> str:
        return f"{self.source} {self.start}..{self.end}"


@dataclass(frozen=True)
class ProductGap:
    """Days of a window that a configured product has no FIRMS data for (neither _SP nor _NRT holds them)."""

    product: str
    """The configured product, e.g. 'VIIRS_NOAA21'."""
    satellite: str
    """Its platform as people say it, e.g. 'NOAA-21'."""
    days: tuple[date, ...]
    held: tuple[date, date] | None
    """First and last day FIRMS holds for the product (any of its sources), None if it lists none."""
    skipped: bool
    """No day of the window is held: the product was not asked at all."""

    def describe(self) -> str:
        """One line, e.g. 'NOAA-21 (VIIRS_NOAA21): no FIRMS data for 2023-12-01..2023-12-05 (FIRMS holds
        2024-01-17..2025-12-22)'."""
        spans = ", ".join(f"{a}..{b}" if a != b else f"{a}" for a, b in _spans(self.days))
        held = f"FIRMS holds {self.held[0]}..{self.held[1]}" if self.held else "FIRMS lists no data for it"
        return f"{self.satellite} ({self.product}): no FIRMS data for {spans} ({held})"


def _spans(days: Sequence[date]) -> list[tuple[date, date]]:
    out: list[tuple[date, date]] = []
    for d in sorted(days):
        if out and d == out[-1][1] + timedelta(days=1):
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def _candidates(product: str) -> tuple[str, ...]:
    """FIRMS sources of a configured product, preferred first: its archive, then near real time."""
    if product.endswith(("_NRT", "_SP")):
        return (product,)
    return (f"{product}_SP", f"{product}_NRT")


def pick_sources(
    product: str, availability: dict[str, tuple[date, date]], days: Sequence[date]
) -> dict[date, str | None]:
    """Per day, the FIRMS source to read `product` from: its _SP where that holds the day, else its _NRT, else
    None (a pinned source: that one where it holds the day)."""
    cands = [(c, availability[c]) for c in _candidates(product) if c in availability]
    return {d: next((c for c, (lo, hi) in cands if lo <= d <= hi), None) for d in days}


def split_days(start: date, days: int, max_days: int = MAX_DAY_RANGE) -> list[tuple[date, int]]:
    """(first day, number of days) runs of at most max_days covering `days` days from `start`."""
    return [(start + timedelta(days=i), min(max_days, days - i)) for i in range(0, days, max_days)]


def plan_requests(
    products: Sequence[str], availability: dict[str, tuple[date, date]], start: date, end: date
) -> tuple[list[AreaRequest], list[ProductGap]]:
    """The area requests that read `products` for days start..end, and the days no source holds."""
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    requests_: list[AreaRequest] = []
    gaps: list[ProductGap] = []
    for product in products:
        chosen = pick_sources(product, availability, days)
        missing = tuple(d for d in days if chosen[d] is None)
        if missing:
            held = [availability[c] for c in _candidates(product) if c in availability]
            gaps.append(
                ProductGap(
                    product=product,
                    satellite=FAMILIES[product_family(product)].satellite,
                    days=missing,
                    held=(min(h[0] for h in held), max(h[1] for h in held)) if held else None,
                    skipped=len(missing) == len(days),
                )
            )
        # Days are consecutive, so groupby yields runs of consecutive days read from one source.
        for source, run in itertools.groupby(days, key=lambda d: chosen[d]):
            if source is None:
                continue
            run_days = list(run)
            for first, n in split_days(run_days[0], len(run_days)):
                requests_.append(AreaRequest(source, first, n))
    return requests_, gaps


def area_param(bbox: tuple[float, float, float, float]) -> str:
    """FIRMS' area parameter 'west,south,east,north', rounded outwards to 1e-4 degree (~11 m)."""
    w, s, e, n = bbox
    q = 1e4
    vals = (
        max(-180.0, math.floor(w * q) / q),
        max(-90.0, math.floor(s * q) / q),
        min(180.0, math.ceil(e * q) / q),
        min(90.0, math.ceil(n * q) / q),
    )
    return ",".join(_num(v) for v in vals)


def _num(v: float) -> str:
    t = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if t in ("", "-0") else t


# -- FIRMS rows -> the contract (pure) ------------------------------------------------------------------------


def parse_acq_time(acq_date: pd.Series, acq_time: pd.Series) -> pd.Series:
    """UTC times from FIRMS' acq_date (YYYY-MM-DD) and acq_time (HHMM in UTC, leading zeros optional: 5 is
    00:05, 523 is 05:23, 1341 is 13:41). Raises ValueError naming the first bad value."""
    text = acq_time.astype(str).str.strip().str.replace(":", "", regex=False)
    hhmm = pd.to_numeric(text, errors="coerce")
    bad = hhmm.isna() | (hhmm % 1 != 0) | (hhmm < 0) | (hhmm // 100 > 23) | (hhmm % 100 > 59)
    if bad.any():
        raise ValueError(f"acq_time {acq_time[bad].iloc[0]!r} is not a UTC time HHMM")
    try:
        day = pd.to_datetime(acq_date.astype(str).str.strip(), format="%Y-%m-%d", utc=True)
    except (ValueError, TypeError) as e:
        raise ValueError(f"acq_date is not YYYY-MM-DD ({_one_line(str(e), 120)})") from e
    minutes = (hhmm // 100) * 60 + hhmm % 100
    return (day + pd.to_timedelta(minutes.astype("int64"), unit="min")).astype("datetime64[ns, UTC]")


def confidence_class(values: pd.Series) -> pd.Series:
    """'low' / 'nominal' / 'high' from VIIRS l/n/h (or spelled out) and MODIS 0-100 (< 30, 30-79, >= 80, as FIRMS
    bins it). Raises ValueError naming the first value that is neither."""
    text = values.astype(str).str.strip().str.lower()
    out = text.map(CONFIDENCE_LETTERS)
    num = pd.to_numeric(text, errors="coerce")
    numeric = num.notna() & (num >= 0) & (num <= 100)
    binned = pd.Series(np.where(num < 30, "low", np.where(num < 80, "nominal", "high")), index=values.index)
    out = out.where(out.notna(), binned.where(numeric))
    if out.isna().any():
        raise ValueError(f"confidence {values[out.isna()].iloc[0]!r} is neither l/n/h nor 0-100")
    return out.astype(object)


def satellite_names(codes: pd.Series, source: str) -> pd.Series:
    """FIRMS' satellite codes (N, N20, N21, T/Terra, A/Aqua, ...) spelled out. A VIIRS source is one platform,
    so an unknown code there is that platform; MODIS rows must say Terra or Aqua."""
    family = FAMILIES[product_family(source)]
    names = codes.astype(str).str.strip().str.upper().map(SATELLITES)
    if family.instrument == "VIIRS":
        return names.fillna(family.satellite).astype(object)
    if names.isna().any():
        raise ValueError(f"satellite {codes[names.isna()].iloc[0]!r} is neither Terra (T) nor Aqua (A)")
    return names.astype(object)


def pixel_size_m(raw: pd.DataFrame, nominal_m: float) -> pd.Series:
    """Each detection's pixel size in metres: the larger of FIRMS' scan and track (km), which grow off nadir.

    A value that is missing, not a number, not finite or not positive does not count; a row with neither counts
    as `nominal_m` (the family's size at nadir), as does every row of a CSV without the columns."""
    sizes = [
        pd.to_numeric(raw[c].astype(str).str.strip(), errors="coerce").astype("float64")
        for c in PIXEL_SIZE_COLUMNS
        if c in raw.columns
    ]
    km = pd.concat(sizes, axis=1) if sizes else pd.DataFrame(index=raw.index)
    km = km.where(np.isfinite(km) & (km > 0))
    return (km.max(axis=1, skipna=True) * 1000.0).round(1).fillna(nominal_m).astype("float64")


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(empty_fires().drop(columns="geometry"))


def parse_fires_csv(text: str, source: str) -> pd.DataFrame:
    """One area API answer (FIRMS CSV of `source`) -> rows in the contract's columns (not yet filtered to the
    requested days and box). An empty answer or a header alone is no detection. Raises ValueError for anything
    that is not such a CSV."""
    family = FAMILIES[product_family(source)]
    if not text.strip():
        return _empty_frame()
    raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(
            f"columns {missing} missing from a {family.instrument} CSV (got {list(raw.columns)[:8]})"
        )
    if raw.empty:
        return _empty_frame()
    lat = pd.to_numeric(raw["latitude"], errors="coerce")
    lon = pd.to_numeric(raw["longitude"], errors="coerce")
    bad = lat.isna() | lon.isna() | (lat.abs() > 90) | (lon.abs() > 180)
    if bad.any():
        i = bad.to_numpy().nonzero()[0][0]
        raise ValueError(
            f"row {i + 1}: latitude {raw['latitude'].iloc[i]!r} / longitude {raw['longitude'].iloc[i]!r}"
        )
    daynight = raw["daynight"].astype(str).str.strip().str.upper()
    if not daynight.isin(["D", "N"]).all():
        raise ValueError(f"daynight {daynight[~daynight.isin(['D', 'N'])].iloc[0]!r} is neither D nor N")
    frame = pd.DataFrame(
        {
            "time": parse_acq_time(raw["acq_date"], raw["acq_time"]),
            "latitude": lat.astype("float64"),
            "longitude": lon.astype("float64"),
            "satellite": satellite_names(raw["satellite"], source),
            "instrument": family.instrument,
            "confidence": confidence_class(raw["confidence"]),
            "frp": pd.to_numeric(raw["frp"], errors="coerce").astype("float64"),
            "daynight": daynight.astype(object),
            "pixel_m": pixel_size_m(raw, family.pixel_m),
            "product": source,
        }
    )
    for c in ("instrument", "product"):
        frame[c] = frame[c].astype(object)
    return frame.loc[:, list(FIRE_COLUMNS)]


def select_fires(frames: Sequence[pd.DataFrame], aoi: AOI, start: date, end: date) -> gpd.GeoDataFrame:
    """Parsed answers -> the contract's table: rows of days start..end inside search_bbox(aoi), each detection
    once (requests can repeat rows), sorted by time."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_fires()
    df = pd.concat(frames, ignore_index=True)
    lo, hi = utc_day_bounds(start, end)
    w, s, e, n = search_bbox(aoi)
    keep = (
        (df["time"] >= lo) & (df["time"] < hi) & df["longitude"].between(w, e) & df["latitude"].between(s, n)
    )
    df = df[keep].drop_duplicates(subset=DEDUP_KEY)
    if df.empty:
        return empty_fires()
    # Stable order within one overpass too, so that reruns give identical tables.
    df = df.sort_values(["time", "product", "latitude", "longitude"], kind="stable")
    return fires_frame(df)


# -- HTTP ----------------------------------------------------------------------------------------------------


@dataclass
class FirmsStats:
    """What a FIRMS source moved (all its calls); thread-safe through the source's lock."""

    requests: int = 0
    """HTTP requests sent, retries included."""
    bytes: int = 0
    """Response bytes received (final answers)."""
    retries: int = 0
    """Requests repeated after a 5xx, a 429, a timeout or a dropped connection."""
    failed: int = 0
    """Calls that ended in an error (after their retries)."""


class _Retry(Retry):
    """urllib3's Retry, telling the source about each retry it is about to make (to count and log it)."""

    def __init__(self, *args: Any, on_retry: Callable[[str], None] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_retry = on_retry

    def new(self, **kw: Any) -> Self:
        out = super().new(**kw)
        out.on_retry = self.on_retry
        return out

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        out = super().increment(method, url, response, error, _pool, _stacktrace)  # raises when exhausted
        if self.on_retry is not None:
            self.on_retry(f"HTTP {response.status}" if response is not None else type(error).__name__)
        return out


def _retry_after_cap() -> dict[str, int]:
    # retry_after_max is recent in urllib3; older versions wait whatever Retry-After says.
    try:
        Retry(retry_after_max=RETRY_AFTER_MAX_S)
    except TypeError:
        return {}
    return {"retry_after_max": RETRY_AFTER_MAX_S}


class FirmsSource:
    """NASA FIRMS active fires (VIIRS and MODIS), keeping the thermal contract (monitoring.sources.thermal).

    settings: endpoint, products, retries, timeout. map_key: the MAP_KEY (default: FIRMS_MAP_KEY or the Prefect
    Secret block of settings.map_key_block); a missing key fails here, before any request. FIRMS' data
    availability is read once per source instance. ``gaps`` holds the ProductGaps of the last load_fires call;
    ``stats`` counts requests, bytes, retries and failed calls.
    """

    name = "firms"
    simulated = False

    def __init__(self, settings: FirmsSettings, *, map_key: str | None = None) -> None:
        self.settings = settings
        self.products: tuple[str, ...] = tuple(settings.products)
        unknown = [p for p in self.products if product_family(p) not in FAMILIES]
        if unknown:
            raise FirmsRequestError(
                f"FIRMS: products {unknown} are not supported; use {sorted(FAMILIES)} (a _NRT or _SP suffix "
                "pins one source) in firms.products."
            )
        key = map_key if map_key is not None else firms_map_key(settings)
        if not key:
            raise FirmsKeyError(
                f"FIRMS: no MAP_KEY: set {ENV_MAP_KEY} to a key from the FIRMS MAP_KEY page ({MAP_KEY_PAGE}), or "
                "name a Prefect Secret block holding it in firms.map_key_block (BORDERWATCH_FIRMS__MAP_KEY_BLOCK)."
            )
        self._key = key.strip()
        _mask_in_logs(self._key)
        self.base_url = settings.base_url.rstrip("/")
        self.stats = FirmsStats()
        self.gaps: list[ProductGap] = []
        self._availability: dict[str, tuple[date, date]] | None = None
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self._session_obj: requests.Session | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for dask workers: each process opens its own session; counters stay per process.
        state = self.__dict__.copy()
        for k in ("_lock", "_local", "_session_obj"):
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        _mask_in_logs(self._key)
        self._init_runtime()

    def __repr__(self) -> str:
        return f"FirmsSource(base_url={self.base_url!r}, products={list(self.products)!r})"

    # -- the thermal contract ----------------------------------------------------------------------------------

    def load_fires(self, aoi: AOI, start: date, end: date) -> gpd.GeoDataFrame:
        """Fire detections of the configured products over search_bbox(aoi) on days start..end (UTC)."""
        if start > end:
            raise FirmsRequestError(
                f"FIRMS: window {start}..{end} for area {aoi.id!r} ends before it starts; pass start <= end."
            )
        availability = self._data_availability(aoi, start, end)
        plan, gaps = plan_requests(self.products, availability, start, end)
        self.gaps = gaps
        for g in gaps:
            log.log(
                logging.WARNING if g.skipped else logging.INFO,
                "%s for area %s: %s",
                self.name,
                aoi.id,
                g.describe(),
            )
        frames = [self.fetch_area(req, aoi) for req in plan]
        fires = select_fires(frames, aoi, start, end)
        log.info(
            "%s: %d fire detections for area %s in %s..%s from %d requests (%s)",
            self.name,
            len(fires),
            aoi.id,
            start,
            end,
            len(plan),
            ", ".join(sorted({r.source for r in plan})) or "no product holds these days",
        )
        return check_fires(fires, aoi, start, end)

    def data_availability(self) -> dict[str, tuple[date, date]]:
        """{FIRMS source: (first day, last day)} from FIRMS' data availability, read once per instance."""
        return self._data_availability(None, None, None)

    def fetch_area(self, request: AreaRequest, aoi: AOI) -> pd.DataFrame:
        """One area request over search_bbox(aoi), parsed (parse_fires_csv), not yet filtered."""
        area = area_param(search_bbox(aoi))
        key = quote(self._key, safe="")
        path = f"/api/area/csv/{key}/{request.source}/{area}/{request.days}/{request.start:%Y-%m-%d}"
        what = self._what(request.source, request.start, request.end, aoi)
        text = self._get(path, what, expect="latitude")
        try:
            return parse_fires_csv(text, request.source)
        except (ValueError, KeyError, pd.errors.ParserError) as e:
            self._count_failure()
            raise FirmsError(
                f"{what}: the answer of GET {self._masked_url(path)} cannot be read "
                f"({type(e).__name__}: {_one_line(str(e))}); if it repeats, report it with this message."
            ) from e

    # -- IO ------------------------------------------------------------------------------------------------------

    def _data_availability(
        self, aoi: AOI | None, start: date | None, end: date | None
    ) -> dict[str, tuple[date, date]]:
        with self._lock:
            if self._availability is not None:
                return self._availability
        path = f"/api/data_availability/csv/{quote(self._key, safe='')}/ALL"
        what = self._what("data availability", start, end, aoi)
        text = self._get(path, what, expect="data_id")
        try:
            table = parse_availability(text)
        except (ValueError, pd.errors.ParserError) as e:
            self._count_failure()
            raise FirmsError(
                f"{what}: the answer of GET {self._masked_url(path)} cannot be read "
                f"({type(e).__name__}: {_one_line(str(e))}); if it repeats, report it with this message."
            ) from e
        log.debug("%s data availability: %s", self.name, {k: f"{a}..{b}" for k, (a, b) in table.items()})
        with self._lock:
            self._availability = table
        return table

    def _what(self, product: str, start: date | None, end: date | None, aoi: AOI | None) -> str:
        days = f" {start}..{end}" if start is not None else ""
        if aoi is None:
            return f"FIRMS {product}{days}"
        w, s, e, n = search_bbox(aoi)
        return f"FIRMS {product}{days} for area {aoi.id!r} (bbox {w:.4f},{s:.4f},{e:.4f},{n:.4f})"

    def _masked_url(self, path: str) -> str:
        return _mask(f"{self.base_url}{path}", (self._key, quote(self._key, safe="")))

    def _session(self) -> requests.Session:
        with self._lock:
            if self._session_obj is None:
                s = self.settings
                retry = _Retry(
                    total=s.max_retries,
                    connect=s.max_retries,
                    read=s.max_retries,
                    status=s.max_retries,
                    other=0,
                    backoff_factor=s.backoff_s,
                    status_forcelist=(429, *range(500, 600)),
                    allowed_methods=frozenset({"GET"}),
                    respect_retry_after_header=True,
                    raise_on_status=False,  # the last answer comes back, to be reported with its text
                    on_retry=self._on_retry,
                    **_retry_after_cap(),
                )
                session = requests.Session()
                adapter = HTTPAdapter(max_retries=retry)
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                session.headers["User-Agent"] = "borderwatch-firms"
                self._session_obj = session
            return self._session_obj

    def _on_retry(self, why: str) -> None:
        self._local.retries = getattr(self._local, "retries", 0) + 1
        with self._lock:
            self.stats.requests += 1
            self.stats.retries += 1
        log.warning(
            "%s: %s on %s; retry %d of %d",
            self.name,
            why,
            getattr(self._local, "what", "a request"),
            self._local.retries,
            self.settings.max_retries,
        )

    def _count_failure(self) -> None:
        with self._lock:
            self.stats.failed += 1

    def _get(self, path: str, what: str, *, expect: str) -> str:
        """The body of GET base_url + path if it is the CSV expected (its header starts with `expect`), or an
        empty string; a FirmsError subclass for every other answer."""
        url = f"{self.base_url}{path}"
        s = self.settings
        self._local.retries, self._local.what = 0, what
        with self._lock:
            self.stats.requests += 1
        try:
            response = self._session().get(url, timeout=(min(10.0, s.timeout_s), s.timeout_s))
        except requests.RequestException as e:
            self._count_failure()
            attempts = self._local.retries + 1
            reason = _one_line(_mask(f"{type(e).__name__}: {e}", (self._key, quote(self._key, safe=""))))
            raise FirmsUnavailableError(
                f"{what}: no answer from {self.base_url} after {attempts} attempt(s) ({reason}); check the network "
                f"and firms.base_url, try again later, or raise firms.max_retries / firms.timeout_s "
                f"({s.max_retries} / {s.timeout_s:g} s)."
            ) from _masked_cause(e, self._key)
        body = response.text
        with self._lock:
            self.stats.bytes += len(response.content)
        status = response.status_code
        head = _one_line(_mask(body, (self._key,)), 200)
        low = head.lower()
        lead = body.lstrip()[: len(expect)].lower()
        if status == 200 and (lead == expect or not body.strip()):
            log.debug("%s: GET %s: %d bytes", self.name, self._masked_url(path), len(response.content))
            return body
        self._count_failure()
        attempts = self._local.retries + 1
        answer = f"HTTP {status} {head!r}"
        if "invalid map_key" in low or status == 401:
            raise FirmsKeyError(
                f"{what}: FIRMS refused the MAP_KEY ({answer}); set {ENV_MAP_KEY} to a valid key from the FIRMS "
                f"MAP_KEY page ({MAP_KEY_PAGE}), or fix the Prefect Secret block named in firms.map_key_block."
            )
        if "transaction limit" in low or "exceeding allowed" in low:
            raise FirmsLimitError(
                f"{what}: the MAP_KEY's FIRMS transaction limit is spent ({answer}); FIRMS allows "
                f"{TRANSACTION_LIMIT} per key and a request of several days costs several: wait 10 minutes and "
                "run again, run fewer areas at once, or list fewer firms.products."
            )
        if status == 429:
            raise FirmsLimitError(
                f"{what}: FIRMS still rate-limited the requests after {attempts} attempt(s) ({answer}); wait 10 "
                f"minutes and run again, run fewer areas at once, or raise firms.max_retries ({s.max_retries})."
            )
        if status >= 500:
            raise FirmsUnavailableError(
                f"{what}: FIRMS failed {attempts} time(s) ({answer}); try again later, or raise firms.max_retries "
                f"/ firms.timeout_s ({s.max_retries} / {s.timeout_s:g} s)."
            )
        if status == 404:
            raise FirmsRequestError(
                f"{what}: no such endpoint GET {self._masked_url(path)} ({answer}); check firms.base_url "
                f"({self.base_url})."
            )
        raise FirmsRequestError(
            f"{what}: FIRMS rejected GET {self._masked_url(path)} ({answer}); check firms.products "
            f"({list(self.products)}) and firms.base_url; if they are right, report it with this message."
        )


def _masked_cause(e: BaseException, key: str) -> BaseException:
    """e, or a copy of it without the MAP_KEY in its text (requests' errors quote the URL, key included)."""
    text = str(e)
    masked = _mask(text, (key, quote(key, safe="")))
    if masked == text:
        return e
    try:
        return type(e)(masked)
    except Exception:
        return requests.RequestException(masked)
