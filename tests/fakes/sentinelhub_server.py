"""Test fake: a local Sentinel Hub (OAuth token, Catalog and Process APIs) on 127.0.0.1 over HTTPS.

Faithful to the published contracts where the client can tell the difference:

- OAuth2 client credentials (Keycloak style): form-encoded ``grant_type=client_credentials``, JSON token with
  ``access_token``/``expires_in``; 401 ``invalid_client`` on a wrong secret. The token is a JWT-shaped string
  with an ``azp`` claim, as sentinelhub-py decodes it.
- Catalog API ``/api/v1/catalog/1.0.0/search``: STAC item search (POST) with ``collections``, ``bbox`` or
  ``intersects``, ``datetime``, CQL2 ``filter`` (text or JSON; comparisons joined by AND/OR), ``fields``,
  ``limit`` (at most 100) and ``next`` token pagination in ``context``; items carry the properties Sentinel
  Hub returns (``eo:cloud_cover``, ``platform``, ``sat:orbit_state``, ``sat:relative_orbit``, ``s1:*`` ...).
- Process API ``/api/v1/process``: validates the body as the service does (bounds bbox + CRS, data type,
  ``dataFilter.timeRange``, S1 ``processing`` options, output size at most 2500 px, evalscript, response
  identifiers and formats) and answers 400 with the service's error JSON otherwise. A valid request gets a
  GeoTIFF (``image/tiff``) or, for several responses, a TAR of ``<identifier>.tif`` files, on exactly the
  requested grid, with ``x-processingunits-spent`` and rate-limit headers.

The pixels come from a deterministic scene model: a land-cover field, seasonal Sentinel-2 reflectance, clouds
and their shadows marked in SCL, the clouds' probability in CLP and CLM at 160 m (CLM 255 and CLP 0 on the days
in ``clp_missing_days``, as the service answers for a tile without them), gamma-distributed Sentinel-1 speckle, radar shadow, all functions of the 10 m
world pixel and the acquisition, so a tiled request reproduces an untiled one exactly. Acquisitions follow a
plausible plan: Sentinel-2 every 5 days on 1-degree tiles that overlap by 0.05 degree (an area on a tile edge
gets two granules per day), Sentinel-1 on an ascending and a descending track every 6 days in slices that
overlap at their ends. (The project's simulator is not used: the fake must answer any bbox, CRS and time
range a client asks for, and must stay stable while the simulator evolves.)

Fault injection per endpoint ("token", "catalog", "process"): ``inject`` queues one-shot faults (429 with
Retry-After in milliseconds as the service sends it, 5xx, slow responses); ``fail_always`` sets a persistent
one.
Counters of requests, bytes and statuses per endpoint are kept in ``stats``.
"""

from __future__ import annotations

import atexit
import base64
import datetime as dt
import io
import ipaddress
import json
import math
import re
import secrets
import shutil
import ssl
import tarfile
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from pyproj import Transformer
from rasterio.io import MemoryFile

from tests.fakes.loopback import LoopbackServer, QuietHandler

MAX_SIZE = 2500
"""Largest output width/height of one Process API request."""
MAX_LIMIT = 100
"""Largest Catalog API page size."""
EPOCH = dt.date(2024, 1, 1)
"""Day 0 of the acquisition plan."""
S2_TILE_DEG = 1.0
S2_TILE_OVERLAP = 0.05
S1_SLICE_DEG = 1.6
S1_SLICE_OVERLAP = 0.02
S1_SLICE_S = 25
S1_SWATH_LON = (100.0, 108.0)
"""One swath covers the whole border region in this model (the real one is 250 km wide)."""
S1_TRACKS = (
    # orbit state, relative orbit, UTC time of the southernmost slice, day phase in the 6-day plan
    ("ascending", 26, dt.time(11, 21, 40), 1),
    ("descending", 91, dt.time(22, 52, 10), 4),
)
S2_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
CLP_CELL_PX = 16
"""Sentinel Hub computes CLP/CLM at a fixed 160 m (16 world pixels) and resamples them to the request."""
CLM_NO_DATA = 255
S1_BANDS = ("VV", "VH")
COLLECTION_ALIASES = {
    "sentinel-2-l2a": "sentinel-2-l2a",
    "S2L2A": "sentinel-2-l2a",
    "sentinel-1-grd": "sentinel-1-grd",
    "S1GRD": "sentinel-1-grd",
}
BACK_COEFFS = {"BETA0", "SIGMA0_ELLIPSOID", "GAMMA0_ELLIPSOID", "GAMMA0_TERRAIN"}
DEM_INSTANCES = {"MAPZEN", "COPERNICUS", "COPERNICUS_30", "COPERNICUS_90"}
SAMPLE_TYPES = {"AUTO": np.uint8, "UINT8": np.uint8, "UINT16": np.uint16, "FLOAT32": np.float32}
FORMATS = {"image/tiff", "image/png", "image/jpeg", "application/json"}
ENDPOINTS = ("token", "catalog", "process")


# -- faults and counters -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """What the next request to an endpoint gets instead of (or before) its normal answer."""

    status: int | None = None
    """HTTP status to answer with (429, 500, 503, ...); None = answer normally after the delay."""
    retry_after_ms: int | None = None
    """Retry-After header in milliseconds, as Sentinel Hub sends it (429 only)."""
    delay_s: float = 0.0
    """Sleep this long before answering (longer than the client's timeout = a timeout)."""


@dataclass
class EndpointStats:
    """Counters of one endpoint."""

    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    times: list[float] = field(default_factory=list)
    """time.monotonic() at the arrival of each request."""


class _Reject(Exception):
    """Answer with an error status and the service's error JSON."""

    def __init__(self, status: int, message: str, code: str = "COMMON_BAD_PAYLOAD") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "status": self.status,
                "reason": HTTPStatus(self.status).phrase,
                "message": self.message,
                "code": self.code,
            }
        }


# -- TLS: a throwaway self-signed certificate for 127.0.0.1 --------------------------------------------------


_CERT_LOCK = threading.Lock()
_CERT: tuple[Path, Path] | None = None


def certificate() -> tuple[Path, Path]:
    """(certificate, key) PEM files shared by all fakes of this process: one REQUESTS_CA_BUNDLE trusts all."""
    global _CERT
    with _CERT_LOCK:
        if _CERT is None:
            folder = Path(tempfile.mkdtemp(prefix="fake-sh-tls-"))
            atexit.register(shutil.rmtree, folder, True)
            _CERT = _make_certificate(folder)
        return _CERT


def _make_certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-sentinel-hub")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, False, False, False), True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(ski, False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fake-sh.pem", folder / "fake-sh.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


# -- deterministic fields ------------------------------------------------------------------------------------

_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _u64(a: Any) -> NDArray[np.uint64]:
    return np.asarray(a, dtype=np.int64).view(np.uint64)


def _hash(seed: int, *parts: Any) -> NDArray[np.uint64]:
    """splitmix64 over the parts (broadcast): a counter-based generator, so a pixel's value is independent of
    the request it falls in."""
    with np.errstate(over="ignore"):
        h = _u64(np.int64(seed & 0x7FFFFFFFFFFFFFFF))
        for p in parts:
            x = (h ^ _u64(p)) + _G
            x = (x ^ (x >> np.uint64(30))) * _M1
            x = (x ^ (x >> np.uint64(27))) * _M2
            h = x ^ (x >> np.uint64(31))
    return h


def _u01(seed: int, *parts: Any) -> NDArray[np.float64]:
    return (_hash(seed, *parts) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _noise(cols: NDArray[np.int64], rows: NDArray[np.int64], scale: int, seed: int) -> NDArray[np.float64]:
    """Smooth value noise in [0, 1] with a feature size of `scale` pixels."""
    cx, fx = np.divmod(cols, scale)
    cy, fy = np.divmod(rows, scale)
    tx, ty = fx / scale, fy / scale
    tx, ty = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)
    c00, c10 = _u01(seed, cx, cy), _u01(seed, cx + 1, cy)
    c01, c11 = _u01(seed, cx, cy + 1), _u01(seed, cx + 1, cy + 1)
    return (c00 * (1 - tx) + c10 * tx) * (1 - ty) + (c01 * (1 - tx) + c11 * tx) * ty


# Land-cover classes of the model and their Sentinel-2 reflectance (B02 B03 B04 B08 B11 B12).
WATER, PADDY, FOREST, BARE, BUILT = range(5)
_REFL = np.array(
    [
        [0.060, 0.070, 0.045, 0.020, 0.010, 0.006],  # water
        [0.080, 0.110, 0.140, 0.210, 0.300, 0.230],  # paddy, fallow (dry season)
        [0.020, 0.045, 0.025, 0.300, 0.150, 0.070],  # forest
        [0.100, 0.140, 0.200, 0.260, 0.320, 0.260],  # bare soil, laterite
        [0.150, 0.160, 0.170, 0.210, 0.250, 0.220],  # built
    ]
)
_PADDY_GREEN = np.array([0.030, 0.060, 0.040, 0.350, 0.180, 0.090])
_CLOUD = np.array([0.350, 0.360, 0.380, 0.420, 0.330, 0.240])
# Linear gamma0 (VV, VH) per class.
_SAR = np.array([[0.010, 0.002], [0.045, 0.010], [0.120, 0.030], [0.050, 0.010], [0.600, 0.080]])
_PADDY_SAR_GROWING = np.array([0.090, 0.025])
ENL = 4.4


def _season(day: dt.date) -> float:
    """0 in the dry season (fallow paddy), 1 at the height of the wet-season crop (October)."""
    doy = day.timetuple().tm_yday
    return 0.5 + 0.5 * math.cos(2 * math.pi * (doy - 285) / 365)


def _landcover(cols: NDArray[np.int64], rows: NDArray[np.int64], seed: int) -> NDArray[np.int64]:
    n = 0.65 * _noise(cols, rows, 48, seed + 1) + 0.35 * _noise(cols, rows, 12, seed + 2)
    return np.digitize(n, [0.30, 0.47, 0.66, 0.72]).astype(np.int64)


def _gamma_speckle(seed: int, *parts: Any) -> NDArray[np.float64]:
    """Unit-mean gamma(ENL) multiplicative speckle (Wilson-Hilferty from a Box-Muller normal)."""
    u1 = np.maximum(_u01(seed, *parts, 1), 1e-12)
    u2 = _u01(seed, *parts, 2)
    z = np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)
    c = 1 / (9 * ENL)
    return np.maximum(1 - c + z * math.sqrt(c), 0.05) ** 3


# -- the acquisition plan ------------------------------------------------------------------------------------


def _day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def _days(t0: dt.datetime, t1: dt.datetime) -> Iterable[dt.date]:
    d = t0.date() - dt.timedelta(days=1)
    while d <= t1.date():
        yield d
        d += dt.timedelta(days=1)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(s: str, what: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(s)
    except (TypeError, ValueError) as e:
        raise _Reject(400, f"Invalid {what}: {s!r} is not an ISO-8601 date-time.") from e
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _intersects(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _footprint(b: tuple[float, float, float, float]) -> dict[str, Any]:
    x0, y0, x1, y1 = b
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def _cloud_fraction(day: dt.date, seed: int) -> float:
    """Scene-wide cloud fraction of a day: often clear in the dry season, mostly cloudy in the monsoon."""
    wet = 0.5 + 0.5 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 230) / 365)  # monsoon peaks Jul-Sep
    u = float(_u01(seed + 77, _day_number(day)))
    return float(np.clip(u ** (2.5 - 1.8 * wet), 0.0, 1.0))


@dataclass(frozen=True)
class Granule:
    """A catalog item and what the renderer needs to know about it."""

    item: dict[str, Any]
    collection: str
    when: dt.datetime
    bbox: tuple[float, float, float, float]

    @property
    def props(self) -> dict[str, Any]:
        return self.item["properties"]  # type: ignore[no-any-return]


def _s2_granules(bbox: tuple[float, ...], t0: dt.datetime, t1: dt.datetime, seed: int) -> list[Granule]:
    out = []
    ov = S2_TILE_OVERLAP
    for i in range(math.floor(bbox[0] - ov), math.floor(bbox[2] + ov) + 1):
        for j in range(math.floor(bbox[1] - ov), math.floor(bbox[3] + ov) + 1):
            tb = (i - ov, j - ov, i + S2_TILE_DEG + ov, j + S2_TILE_DEG + ov)
            if not _intersects(tb, bbox):
                continue
            tile = f"48P{chr(65 + i % 26)}{chr(65 + j % 26)}"
            for day in _days(t0, t1):
                n = _day_number(day)
                if n % 5:
                    continue
                # Tiles further north are sensed a few seconds later in the same datatake.
                when = dt.datetime.combine(day, dt.time(3, 35, 21), dt.UTC) + dt.timedelta(
                    seconds=4 * (j - 10)
                )
                if not t0 <= when <= t1:
                    continue
                platform = "sentinel-2a" if (n // 5) % 2 == 0 else "sentinel-2c"
                cc = 100 * _cloud_fraction(day, seed) + 6 * (float(_u01(seed + 5, n, i, j)) - 0.5)
                cc = round(float(np.clip(cc, 0, 100)), 2)
                p = platform[-2:].upper().replace("-", "")
                item_id = f"S2{p[-1]}_MSIL2A_{when:%Y%m%dT%H%M%S}_N0511_R104_T{tile}_{when:%Y%m%d}T061512"
                zone = 32600 + int((i + 0.5 + 180) // 6) + 1
                out.append(
                    Granule(
                        item={
                            "type": "Feature",
                            "stac_version": "1.0.0",
                            "id": item_id,
                            "bbox": list(tb),
                            "geometry": _footprint(tb),
                            "properties": {
                                "datetime": _iso(when),
                                "platform": platform,
                                "constellation": "sentinel-2",
                                "instruments": ["msi"],
                                "gsd": 10,
                                "eo:cloud_cover": cc,
                                "proj:epsg": zone,
                            },
                            "assets": {},
                            "links": [],
                        },
                        collection="sentinel-2-l2a",
                        when=when,
                        bbox=tb,
                    )
                )
    return out


def _s1_granules(
    bbox: tuple[float, ...], t0: dt.datetime, t1: dt.datetime, seed: int, relative_orbit_property: bool
) -> list[Granule]:
    out = []
    lon0, lon1 = S1_SWATH_LON
    if not (bbox[0] <= lon1 and lon0 <= bbox[2]):
        return out
    ov = S1_SLICE_OVERLAP / 2
    k0 = math.floor((bbox[1] - ov - 8.0) / S1_SLICE_DEG)
    k1 = math.floor((bbox[3] + ov - 8.0) / S1_SLICE_DEG)
    for state, rel, t_south, phase in S1_TRACKS:
        for day in _days(t0, t1):
            n = _day_number(day)
            if n % 6 != phase:
                continue
            platform = "sentinel-1a" if (n // 6) % 2 == 0 else "sentinel-1c"
            for k in range(max(k0, 0), max(k1, 0) + 1):
                sb = (lon0, 8.0 + k * S1_SLICE_DEG - ov, lon1, 8.0 + (k + 1) * S1_SLICE_DEG + ov)
                if not _intersects(sb, bbox):
                    continue
                # Ascending passes fly north (later slices further north), descending south.
                step = k if state == "ascending" else 10 - k
                when = dt.datetime.combine(day, t_south, dt.UTC) + dt.timedelta(seconds=S1_SLICE_S * step)
                if not t0 <= when <= t1:
                    continue
                cycle = 300 + n // 12
                absolute = rel + 72 + 175 * cycle if platform == "sentinel-1a" else rel + 1000 + 175 * cycle
                take = int(_hash(seed + 3, n, rel) % np.uint64(0xFFFFFF))
                crc = int(_hash(seed + 4, n, rel, k) % np.uint64(0xFFFF))
                end = when + dt.timedelta(seconds=S1_SLICE_S)
                item_id = (
                    f"S1{platform[-1].upper()}_IW_GRDH_1SDV_{when:%Y%m%dT%H%M%S}_{end:%Y%m%dT%H%M%S}_"
                    f"{absolute:06d}_{take:06X}_{crc:04X}"
                )
                props = {
                    "datetime": _iso(when),
                    "platform": platform,
                    "constellation": "sentinel-1",
                    "instruments": ["c-sar"],
                    "sar:instrument_mode": "IW",
                    "sar:frequency_band": "C",
                    "sar:polarizations": ["VV", "VH"],
                    "sar:product_type": "GRD",
                    "s1:polarization": "DV",
                    "s1:resolution": "HIGH",
                    "s1:timeliness": "Fast24h",
                    "sat:orbit_state": state,
                    "sat:absolute_orbit": absolute,
                }
                if relative_orbit_property:
                    props["sat:relative_orbit"] = rel
                out.append(
                    Granule(
                        item={
                            "type": "Feature",
                            "stac_version": "1.0.0",
                            "id": item_id,
                            "bbox": list(sb),
                            "geometry": _footprint(sb),
                            "properties": props,
                            "assets": {},
                            "links": [],
                        },
                        collection="sentinel-1-grd",
                        when=when,
                        bbox=sb,
                    )
                )
    return out


# -- CQL2 ----------------------------------------------------------------------------------------------------

_CMP = re.compile(
    r"^\s*\(?\s*\"?([A-Za-z_][\w:.\-]*)\"?\s*(<=|>=|<>|!=|=|<|>)\s*('([^']*)'|[-+0-9.eE]+)\s*\)?\s*$"
)
_OPS = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_QUERYABLE = {
    "sentinel-2-l2a": {"eo:cloud_cover", "platform", "datetime", "id"},
    "sentinel-1-grd": {
        "sar:instrument_mode",
        "s1:polarization",
        "s1:resolution",
        "s1:timeliness",
        "sat:orbit_state",
        "sat:relative_orbit",
        "sat:absolute_orbit",
        "platform",
        "datetime",
        "id",
    },
}


def _cql2_text(expr: str, collection: str) -> list[list[tuple[str, str, Any]]]:
    """Disjunctive form [[(prop, op, value), ...AND...], ...OR...] of a flat CQL2-text filter."""
    out = []
    for disjunct in re.split(r"\s+OR\s+", expr.strip(), flags=re.I):
        conj = []
        for clause in re.split(r"\s+AND\s+", disjunct, flags=re.I):
            m = _CMP.match(clause)
            if not m:
                raise _Reject(400, f"Invalid filter: cannot parse CQL2 expression {clause.strip()!r}.")
            prop, op, lit, text = m.groups()
            value: Any = text if text is not None else float(lit)
            conj.append((prop, op, value))
        out.append(conj)
    _check_queryables(out, collection)
    return out


def _cql2_json(node: Any, collection: str) -> list[list[tuple[str, str, Any]]]:
    def comparison(n: Any) -> tuple[str, str, Any]:
        args = n.get("args", [])
        if len(args) != 2 or not isinstance(args[0], dict) or "property" not in args[0]:
            raise _Reject(400, f"Invalid filter: unsupported CQL2-JSON node {n!r}.")
        return args[0]["property"], n["op"], args[1]

    if not isinstance(node, dict) or "op" not in node:
        raise _Reject(400, "Invalid filter: CQL2-JSON must be an object with 'op' and 'args'.")
    op = node["op"].lower()
    if op == "and":
        out = [[c for a in node["args"] for c in _cql2_json(a, collection)[0]]]
    elif op == "or":
        out = [conj for a in node["args"] for conj in _cql2_json(a, collection)]
    elif op in _OPS:
        out = [[comparison(node)]]
    else:
        raise _Reject(400, f"Invalid filter: operator {node['op']!r} is not supported.")
    _check_queryables(out, collection)
    return out


def _check_queryables(dnf: list[list[tuple[str, str, Any]]], collection: str) -> None:
    for conj in dnf:
        for prop, _, _ in conj:
            if prop not in _QUERYABLE[collection]:
                raise _Reject(
                    400, f"Invalid filter: property {prop!r} is not queryable in collection {collection}."
                )


def _matches(props: dict[str, Any], dnf: list[list[tuple[str, str, Any]]]) -> bool:
    def ok(prop: str, op: str, value: Any) -> bool:
        have = props.get(prop)
        if have is None:
            return False
        try:
            return bool(_OPS[op](have, value))
        except TypeError:
            return False

    return any(all(ok(*c) for c in conj) for conj in dnf)


def _select_fields(item: dict[str, Any], fields: dict[str, Any] | None) -> dict[str, Any]:
    """The STAC fields extension: include/exclude dotted paths."""
    if not fields:
        return item
    include, exclude = fields.get("include") or [], fields.get("exclude") or []
    if include:
        out: dict[str, Any] = {"type": item["type"], "id": item["id"]}
        for path in include:
            head, _, rest = path.partition(".")
            if head not in item:
                continue
            if rest and isinstance(item[head], dict):
                if rest in item[head]:
                    out.setdefault(head, {})[rest] = item[head][rest]
            else:
                out[head] = item[head]
    else:
        out = json.loads(json.dumps(item))
    for path in exclude:
        head, _, rest = path.partition(".")
        if rest and isinstance(out.get(head), dict):
            out[head].pop(rest, None)
        elif not rest:
            out.pop(head, None)
    return out


# -- evalscripts ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Evalscript:
    input_bands: tuple[str, ...]
    units: tuple[str, ...]
    outputs: dict[str, tuple[int, str]]
    """Output id -> (number of bands, sampleType)."""
    returns: dict[str, tuple[str, ...]]
    """Output id -> the input bands evaluatePixel returns for it, in order."""


def _parse_evalscript(src: str) -> _Evalscript:
    """Read an evalscript V3 whose evaluatePixel returns input samples (the form the fake can evaluate)."""
    if not src.lstrip().startswith("//VERSION=3"):
        raise _Reject(400, "The fake Process API evaluates evalscript V3 only (first line //VERSION=3).")
    setup = re.search(r"function\s+setup\s*\(\s*\)\s*\{(.*?)\n\}", src, re.S)
    evaluate = re.search(r"function\s+evaluatePixel\s*\(\s*(\w+)[^)]*\)\s*\{(.*?)\n\}", src, re.S)
    if not setup:
        raise _Reject(
            400, "Failed to evaluate script! ReferenceError: setup is not defined", "RENDERER_EXCEPTION"
        )
    if not evaluate:
        raise _Reject(
            400,
            "Failed to evaluate script! ReferenceError: evaluatePixel is not defined",
            "RENDERER_EXCEPTION",
        )
    body = setup.group(1)
    inp = re.search(r"input\s*:\s*\[(.*?)\]\s*,\s*output", body, re.S)
    if not inp:
        raise _Reject(
            400,
            "Failed to evaluate script! setup() must return {input: [...], output: ...}.",
            "RENDERER_EXCEPTION",
        )
    bands_m = re.search(r"bands\s*:\s*\[([^\]]*)\]", inp.group(1))
    if not bands_m:
        raise _Reject(400, "Failed to evaluate script! input has no bands.", "RENDERER_EXCEPTION")
    bands = tuple(re.findall(r"[\"'](\w+)[\"']", bands_m.group(1)))
    units_m = re.search(r"units\s*:\s*(\[[^\]]*\]|[\"']\w+[\"'])", inp.group(1))
    units: tuple[str, ...] = ()
    if units_m:
        units = tuple(re.findall(r"[\"'](\w+)[\"']", units_m.group(1)))
        if len(units) == 1:
            units = units * len(bands)
        if len(units) != len(bands):
            raise _Reject(
                400,
                f"Failed to evaluate script! {len(units)} units given for {len(bands)} bands.",
                "RENDERER_EXCEPTION",
            )
    out_m = re.search(r"\boutput\s*:\s*(\[.*\]|\{.*?\})", body, re.S)
    outputs: dict[str, tuple[int, str]] = {}
    for obj in re.findall(r"\{([^{}]*)\}", out_m.group(1) if out_m else ""):
        oid = re.search(r"id\s*:\s*[\"'](\w+)[\"']", obj)
        nb = re.search(r"bands\s*:\s*(\d+)", obj)
        st = re.search(r"sampleType\s*:\s*(?:SampleType\.)?[\"']?(\w+)[\"']?", obj)
        if not nb:
            raise _Reject(
                400, "Failed to evaluate script! every output needs a number of bands.", "RENDERER_EXCEPTION"
            )
        stype = (st.group(1) if st else "AUTO").upper()
        if stype not in SAMPLE_TYPES:
            raise _Reject(
                400, f"Failed to evaluate script! unknown sampleType {stype}.", "RENDERER_EXCEPTION"
            )
        outputs[oid.group(1) if oid else "default"] = (int(nb.group(1)), stype)
    if not outputs:
        raise _Reject(400, "Failed to evaluate script! setup() declares no output.", "RENDERER_EXCEPTION")
    var, ev = evaluate.group(1), evaluate.group(2)
    ret = re.search(r"return\s*(\{.*\}|\[.*?\])\s*;?\s*$", ev.strip(), re.S)
    if not ret:
        raise _Reject(400, "Failed to evaluate script! evaluatePixel returns nothing.", "RENDERER_EXCEPTION")

    def samples(listing: str) -> tuple[str, ...]:
        names = []
        for el in [e.strip() for e in listing.split(",") if e.strip()]:
            m = re.fullmatch(rf"{var}\.(\w+)", el)
            if not m:
                raise _Reject(
                    400,
                    f"Failed to evaluate script! the fake evaluates only returns of input samples, "
                    f"not {el!r}.",
                    "RENDERER_EXCEPTION",
                )
            if m.group(1) not in bands:
                raise _Reject(
                    400,
                    f"Failed to evaluate script! {el} is undefined: band {m.group(1)!r} is not "
                    "in setup() input.",
                    "RENDERER_EXCEPTION",
                )
            names.append(m.group(1))
        return tuple(names)

    text = ret.group(1)
    if text.startswith("["):
        if len(outputs) != 1:
            raise _Reject(
                400,
                "Failed to evaluate script! an array return needs exactly one output.",
                "RENDERER_EXCEPTION",
            )
        returns = {next(iter(outputs)): samples(text[1:-1])}
    else:
        returns = {k: samples(v) for k, v in re.findall(r"(\w+)\s*:\s*\[([^\]]*)\]", text)}
    for oid, (nb, _) in outputs.items():
        if oid not in returns:
            raise _Reject(
                400,
                f"Failed to evaluate script! evaluatePixel returns no value for output {oid!r}.",
                "RENDERER_EXCEPTION",
            )
        if len(returns[oid]) != nb:
            raise _Reject(
                400,
                f"Failed to evaluate script! output {oid!r} declares {nb} bands but "
                f"evaluatePixel returns {len(returns[oid])}.",
                "RENDERER_EXCEPTION",
            )
    return _Evalscript(bands, units, outputs, returns)


# -- the server ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _transformer(src: int, dst: int) -> Transformer:
    return Transformer.from_crs(f"EPSG:{src}", f"EPSG:{dst}", always_xy=True)


def _crs_from_url(url: Any) -> int:
    if url in (None, "http://www.opengis.net/def/crs/OGC/1.3/CRS84"):
        return 4326
    m = re.fullmatch(r"https?://www\.opengis\.net/def/crs/EPSG/0/(\d+)", str(url))
    if not m:
        raise _Reject(
            400,
            f"Invalid request: CRS {url!r} is not supported; use "
            "http://www.opengis.net/def/crs/EPSG/0/<code> or .../OGC/1.3/CRS84.",
        )
    return int(m.group(1))


class FakeSentinelHub:
    """The fake service; use as a context manager (or start()/stop()). Thread-safe."""

    def __init__(
        self,
        *,
        client_id: str = "borderwatch-fake-client",
        client_secret: str = "fake-secret",
        realm: str = "main",
        seed: int = 2025,
        page_size: int = MAX_LIMIT,
        token_lifetime_s: int = 3600,
        relative_orbit_property: bool = True,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.realm = realm
        self.seed = seed
        self.page_size = page_size
        """Largest page the server returns, whatever the client's limit (a server may return fewer items)."""
        self.token_lifetime_s = token_lifetime_s
        self.relative_orbit_property = relative_orbit_property
        self.extra_items: list[dict[str, Any]] = []
        """Catalog items added by a test (e.g. a reprocessed duplicate granule); searched and rendered."""
        self.clp_missing_days: set[dt.date] = set()
        """Sentinel-2 days whose tiles lack CLM/CLP, as happens after processing errors: the service then
        returns CLM 255 (no data) and CLP 0."""
        self.stats: dict[str, EndpointStats] = {e: EndpointStats() for e in ENDPOINTS}
        self.process_bodies: list[dict[str, Any]] = []
        """Every Process API body that passed validation, in order."""
        self._faults: dict[str, deque[Fault]] = {e: deque() for e in ENDPOINTS}
        self._always: dict[str, Fault | None] = dict.fromkeys(ENDPOINTS)
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None
        self.ca_file = ""
        """PEM of the server certificate: point REQUESTS_CA_BUNDLE at it so clients verify TLS as usual."""

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> FakeSentinelHub:
        cert, key = certificate()
        self.ca_file = str(cert)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = LoopbackServer(handler, name="fake-sentinel-hub", ssl_context=ctx, poll_interval=0.05)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def __enter__(self) -> FakeSentinelHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Sentinel Hub is not running; call start() first")
        return self._server.url

    @property
    def token_url(self) -> str:
        return f"{self.url}/auth/realms/{self.realm}/protocol/openid-connect/token"

    # -- test controls ---------------------------------------------------------------------------------------

    def inject(self, endpoint: str, *faults: Fault) -> None:
        """Queue one-shot faults for the next requests to endpoint ('token', 'catalog' or 'process')."""
        with self._lock:
            self._faults[endpoint].extend(faults)

    def fail_always(self, endpoint: str, fault: Fault | None) -> None:
        """Answer every request to endpoint with fault (None clears it)."""
        with self._lock:
            self._always[endpoint] = fault

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = {e: EndpointStats() for e in ENDPOINTS}
            self.process_bodies.clear()

    def reset(self) -> None:
        """Counters, faults, extra items and page size back to a fresh server (tokens stay valid)."""
        self.reset_stats()
        with self._lock:
            for q in self._faults.values():
                q.clear()
            self._always = dict.fromkeys(ENDPOINTS)
            self.extra_items.clear()
            self.clp_missing_days.clear()
            self.page_size = MAX_LIMIT

    def _next_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            if self._faults[endpoint]:
                return self._faults[endpoint].popleft()
            return self._always[endpoint]

    def _count(
        self,
        endpoint: str,
        *,
        bytes_in: int = 0,
        bytes_out: int = 0,
        status: int | None = None,
        arrived: float | None = None,
    ) -> None:
        with self._lock:
            s = self.stats[endpoint]
            if arrived is not None:
                s.requests += 1
                s.times.append(arrived)
            s.bytes_in += bytes_in
            s.bytes_out += bytes_out
            if status is not None:
                s.statuses[status] += 1

    # -- OAuth -----------------------------------------------------------------------------------------------

    def issue_token(self, form: dict[str, list[str]], basic: tuple[str, str] | None) -> dict[str, Any]:
        grant = (form.get("grant_type") or [""])[0]
        if grant != "client_credentials":
            raise _Reject(400, "unsupported_grant_type")
        cid, secret = basic or ((form.get("client_id") or [""])[0], (form.get("client_secret") or [""])[0])
        if cid != self.client_id or secret != self.client_secret:
            raise _Reject(401, "invalid_client")
        now = int(time.time())
        claims = {
            "exp": now + self.token_lifetime_s,
            "iat": now,
            "azp": cid,
            "sub": "fake-user",
            "jti": secrets.token_hex(8),
            "iss": self.token_url.rsplit("/protocol", 1)[0],
        }
        seg = [
            base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=").decode()
            for p in ({"alg": "RS256", "typ": "JWT"}, claims)
        ]
        token = ".".join([*seg, secrets.token_urlsafe(32)])
        with self._lock:
            self._tokens[token] = now + self.token_lifetime_s
        return {
            "access_token": token,
            "expires_in": self.token_lifetime_s,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "email profile",
        }

    def check_token(self, header: str | None) -> None:
        token = header[7:] if header and header.startswith("Bearer ") else None
        with self._lock:
            expiry = self._tokens.get(token or "")
        if expiry is None or expiry < time.time():
            raise _Reject(
                401,
                "You are not authorized! Please provide a valid access token within the header "
                "[Authorization: Bearer <accessToken>] of your request.",
                "COMMON_UNAUTHORIZED",
            )

    # -- Catalog ---------------------------------------------------------------------------------------------

    def granules(
        self, collection: str, bbox: tuple[float, ...], t0: dt.datetime, t1: dt.datetime
    ) -> list[Granule]:
        """Every granule of collection intersecting bbox (lon/lat) sensed in [t0, t1], in time order."""
        if collection == "sentinel-2-l2a":
            found = _s2_granules(bbox, t0, t1, self.seed)
        else:
            found = _s1_granules(bbox, t0, t1, self.seed, self.relative_orbit_property)
        for item in self.extra_items:
            when = _parse_time(item["properties"]["datetime"], "datetime")
            ib = tuple(item["bbox"])
            if item.get("collection") == collection and t0 <= when <= t1 and _intersects(ib, bbox):
                found.append(Granule(item=item, collection=collection, when=when, bbox=ib))  # type: ignore[arg-type]
        return sorted(found, key=lambda g: (g.when, g.item["id"]))

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        collections = body.get("collections")
        if not isinstance(collections, list) or len(collections) != 1:
            raise _Reject(400, "Invalid request: 'collections' must list exactly one collection.")
        collection = COLLECTION_ALIASES.get(collections[0])
        if collection is None:
            raise _Reject(404, f"Collection {collections[0]!r} not found.", "COMMON_NOT_FOUND")
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise _Reject(
                400, f"Invalid request: limit must be an integer between 1 and {MAX_LIMIT}, got {limit!r}."
            )
        if "bbox" in body:
            bbox = body["bbox"]
            if not (isinstance(bbox, list) and len(bbox) == 4 and bbox[0] <= bbox[2] and bbox[1] <= bbox[3]):
                raise _Reject(400, f"Invalid request: bbox {bbox!r} is not [minx, miny, maxx, maxy].")
        elif "intersects" in body:
            coords = np.asarray(body["intersects"]["coordinates"], dtype=float).reshape(-1, 2)
            bbox = [coords[:, 0].min(), coords[:, 1].min(), coords[:, 0].max(), coords[:, 1].max()]
        else:
            bbox = [-180.0, -90.0, 180.0, 90.0]
        t0, t1 = dt.datetime(2014, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
        if "datetime" in body:
            a, sep, b = str(body["datetime"]).partition("/")
            if not sep:
                a = b = a
            t0 = t0 if a in ("", "..") else _parse_time(a, "datetime")
            t1 = t1 if b in ("", "..") else _parse_time(b, "datetime")
        dnf = None
        if body.get("filter") is not None:
            lang = body.get("filter-lang", "cql2-text")
            if lang == "cql2-text":
                dnf = _cql2_text(str(body["filter"]), collection)
            elif lang == "cql2-json":
                dnf = _cql2_json(body["filter"], collection)
            else:
                raise _Reject(400, f"Invalid request: filter-lang {lang!r} is not supported.")
        items = [g.item for g in self.granules(collection, tuple(bbox), t0, t1)]
        if dnf is not None:
            items = [it for it in items if _matches({**it["properties"], "id": it["id"]}, dnf)]
        start = body.get("next", 0)
        if not isinstance(start, int) or start < 0:
            raise _Reject(400, f"Invalid request: next token {start!r} is not valid.")
        page = items[start : start + min(limit, self.page_size)]
        nxt = start + len(page) if start + len(page) < len(items) else None
        context: dict[str, Any] = {"limit": limit, "returned": len(page)}
        links = [
            {"href": f"{self.url}/api/v1/catalog/1.0.0/search", "rel": "self", "type": "application/geo+json"}
        ]
        if nxt is not None:
            context["next"] = nxt
            links.append(
                {
                    "href": f"{self.url}/api/v1/catalog/1.0.0/search",
                    "rel": "next",
                    "type": "application/geo+json",
                    "method": "POST",
                    "body": {"next": nxt},
                    "merge": True,
                }
            )
        return {
            "type": "FeatureCollection",
            "features": [_select_fields(it, body.get("fields")) for it in page],
            "links": links,
            "context": context,
        }

    # -- Process ---------------------------------------------------------------------------------------------

    def process(self, body: Any, accept: str) -> tuple[bytes, str, float]:
        """Validate a Process API body and render it: (content, content type, processing units)."""
        if not isinstance(body, dict):
            raise _Reject(400, "Invalid request: the body must be a JSON object.")
        inp = body.get("input")
        if not isinstance(inp, dict):
            raise _Reject(400, "Invalid request: 'input' is required.")
        bounds = inp.get("bounds")
        if not isinstance(bounds, dict) or ("bbox" not in bounds and "geometry" not in bounds):
            raise _Reject(400, "Invalid request: input.bounds must have a bbox or a geometry.")
        epsg = _crs_from_url((bounds.get("properties") or {}).get("crs"))
        if "bbox" in bounds:
            bb = bounds["bbox"]
            if not (isinstance(bb, list) and len(bb) == 4 and all(isinstance(v, int | float) for v in bb)):
                raise _Reject(400, f"Invalid request: input.bounds.bbox {bb!r} must be four numbers.")
            if not (bb[0] < bb[2] and bb[1] < bb[3]):
                raise _Reject(400, f"Invalid request: input.bounds.bbox {bb!r} has min >= max.")
        else:
            coords = np.asarray(bounds["geometry"]["coordinates"], dtype=float).reshape(-1, 2)
            bb = [coords[:, 0].min(), coords[:, 1].min(), coords[:, 0].max(), coords[:, 1].max()]
        data = inp.get("data")
        if not isinstance(data, list) or not data:
            raise _Reject(400, "Invalid request: input.data must list at least one data source.")
        if len(data) > 1:
            raise _Reject(400, "The fake Process API renders one data source per request (no data fusion).")
        src = data[0]
        collection = COLLECTION_ALIASES.get(src.get("type") if isinstance(src, dict) else None)
        if collection is None:
            raise _Reject(
                400,
                f"Invalid request: unknown data type {src.get('type') if isinstance(src, dict) else src!r}.",
            )
        flt = src.get("dataFilter") or {}
        tr = flt.get("timeRange")
        t0, t1 = dt.datetime(2014, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
        if tr is not None:
            if not isinstance(tr, dict) or "from" not in tr or "to" not in tr:
                raise _Reject(400, "Invalid request: dataFilter.timeRange needs 'from' and 'to'.")
            t0, t1 = _parse_time(tr["from"], "timeRange.from"), _parse_time(tr["to"], "timeRange.to")
            if t0 > t1:
                raise _Reject(400, f"Invalid request: timeRange from {tr['from']} is after to {tr['to']}.")
        processing = src.get("processing") or {}
        ortho = False
        if collection == "sentinel-1-grd":
            bc = processing.get("backCoeff", "GAMMA0_ELLIPSOID")
            if bc not in BACK_COEFFS:
                raise _Reject(400, f"Invalid request: backCoeff {bc!r} is not one of {sorted(BACK_COEFFS)}.")
            ortho = processing.get("orthorectify", False) in (True, "true", "TRUE")
            dem = processing.get("demInstance", "MAPZEN")
            if dem not in DEM_INSTANCES:
                raise _Reject(
                    400, f"Invalid request: demInstance {dem!r} is not one of {sorted(DEM_INSTANCES)}."
                )
            if bc == "GAMMA0_TERRAIN" and not ortho:
                raise _Reject(400, "Invalid request: backCoeff GAMMA0_TERRAIN requires orthorectify: true.")
        script = body.get("evalscript")
        if not isinstance(script, str) or not script.strip():
            raise _Reject(400, "Invalid request: evalscript is missing.")
        es = _parse_evalscript(script)
        out = body.get("output") or {}
        width, height = out.get("width"), out.get("height")
        if width is None and "resx" in out:
            width = round((bb[2] - bb[0]) / float(out["resx"]))
            height = round((bb[3] - bb[1]) / float(out["resy"]))
        width = 256 if width is None else width
        height = 256 if height is None else height
        for name, v, how in (("width", width, ""), ("height", height, "")):
            if not isinstance(v, int) or v < 1:
                raise _Reject(400, f"Invalid request: `{name} = {v}`{how} must be a positive integer.")
            if v > MAX_SIZE:
                raise _Reject(400, f"Invalid request: `{name} = {v}`{how} is larger than allowed {MAX_SIZE}.")
        responses = out.get("responses") or [{"identifier": "default", "format": {"type": "image/png"}}]
        ids = []
        for r in responses:
            rid, fmt = r.get("identifier"), (r.get("format") or {}).get("type")
            if fmt not in FORMATS:
                raise _Reject(
                    400, f"Invalid request: output format {fmt!r} of response {rid!r} is not supported."
                )
            if fmt != "image/tiff":
                raise _Reject(400, f"The fake Process API writes image/tiff only, not {fmt!r}.")
            if rid not in es.outputs:
                raise _Reject(
                    400, f"Output {rid} requested but missing from function setup()", "RENDERER_EXCEPTION"
                )
            ids.append(rid)
        if len(ids) > 1 and not any(a in accept for a in ("application/x-tar", "application/tar", "*/*")):
            raise _Reject(
                400, "Invalid request: several responses need the header Accept: application/x-tar."
            )
        with self._lock:
            self.process_bodies.append(body)

        values = self._render(collection, flt, t0, t1, epsg, tuple(bb), width, height, es)
        files = {}
        transform = Affine((bb[2] - bb[0]) / width, 0, bb[0], 0, -(bb[3] - bb[1]) / height, bb[3])
        for rid in ids:
            nb, stype = es.outputs[rid]
            stack = np.stack([values[b] for b in es.returns[rid]])
            files[f"{rid}.tif"] = _geotiff(_to_sample_type(stack, stype), epsg, transform)
        n_bands = len([b for b in es.input_bands if b != "dataMask"])
        pu = (width * height / 512**2) * max(1.0, n_bands / 3)
        pu *= 2 if any(st == "FLOAT32" for _, st in es.outputs.values()) else 1
        pu *= 2 if ortho else 1
        pu = max(pu, 0.005)
        if len(ids) == 1:
            return files[f"{ids[0]}.tif"], "image/tiff", pu
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, content in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(content)
                info.mtime = 0
                tar.addfile(info, io.BytesIO(content))
        return buf.getvalue(), "application/x-tar", pu

    def _render(
        self,
        collection: str,
        flt: dict[str, Any],
        t0: dt.datetime,
        t1: dt.datetime,
        epsg: int,
        bb: tuple[float, ...],
        width: int,
        height: int,
        es: _Evalscript,
    ) -> dict[str, NDArray[np.float64]]:
        """Per-band float arrays (height, width) of the mosaic of the granules the request selects."""
        rx, ry = (bb[2] - bb[0]) / width, (bb[3] - bb[1]) / height
        xs = bb[0] + (np.arange(width) + 0.5) * rx
        ys = bb[3] - (np.arange(height) + 0.5) * ry
        model = epsg if 32601 <= epsg <= 32660 or 32701 <= epsg <= 32760 else 32648
        if model == epsg:
            cols = np.floor(xs / 10).astype(np.int64)[None, :]
            rows = np.floor(ys / 10).astype(np.int64)[:, None]
            gx, gy = np.meshgrid(xs, ys)
        else:
            gx, gy = np.meshgrid(xs, ys)
            mx, my = _transformer(epsg, model).transform(gx, gy)
            cols, rows = np.floor(mx / 10).astype(np.int64), np.floor(my / 10).astype(np.int64)
        lon, lat = (gx, gy) if epsg == 4326 else _transformer(epsg, 4326).transform(gx, gy)
        lon_lat_bbox = (float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat)))
        granules = self.granules(collection, lon_lat_bbox, t0, t1)
        granules = [g for g in granules if _passes(g, flt)]
        order = flt.get("mosaickingOrder", "mostRecent")
        if order == "leastCC":
            granules.sort(key=lambda g: g.props.get("eo:cloud_cover", 0))
        elif order == "mostRecent":
            granules.reverse()
        shape = (height, width)
        units = dict(zip(es.input_bands, es.units or ("",) * len(es.input_bands), strict=True))
        values = {b: np.zeros(shape) for b in es.input_bands}
        filled = np.zeros(shape, bool)
        rendered: dict[tuple[Any, ...], dict[str, NDArray[np.float64]]] = {}
        lc = _landcover(cols, rows, self.seed) * np.ones(shape, np.int64) if granules else None
        for g in granules:
            covered = (
                (lon >= g.bbox[0]) & (lon <= g.bbox[2]) & (lat >= g.bbox[1]) & (lat <= g.bbox[3]) & ~filled
            )
            if not covered.any():
                continue
            key = (g.when.date(), g.props.get("sat:orbit_state"), g.props.get("platform"))
            if key not in rendered:
                if collection == "sentinel-2-l2a":
                    rendered[key] = self._s2(cols, rows, lc, g.when.date())  # type: ignore[arg-type]
                else:
                    rendered[key] = self._s1(cols, rows, lc, g)  # type: ignore[arg-type]
            for b in es.input_bands:
                if b == "dataMask":
                    continue
                if b not in rendered[key]:
                    raise _Reject(
                        400,
                        f"Failed to evaluate script! band {b!r} is not available in {collection} "
                        "(or not modelled by the fake).",
                        "RENDERER_EXCEPTION",
                    )
                v = rendered[key][b]
                if units.get(b) == "DN" and b in S2_BANDS:
                    v = v * 10000
                elif units.get(b) == "DB" and b in S1_BANDS:
                    v = 10 * np.log10(np.maximum(v, 1e-6))
                values[b] = np.where(covered, v, values[b])
            filled |= covered
        if "dataMask" in values:
            values["dataMask"] = filled.astype(float)
        return values

    def _s2(
        self, cols: NDArray[np.int64], rows: NDArray[np.int64], lc: NDArray[np.int64], day: dt.date
    ) -> dict[str, NDArray[np.float64]]:
        n = _day_number(day)
        table = _REFL.copy()
        table[PADDY] = table[PADDY] + _season(day) * (_PADDY_GREEN - table[PADDY])
        refl = table[lc]  # (h, w, 6)
        refl = refl * (1 + 0.08 * (_u01(self.seed + 11, cols, rows, n)[..., None] - 0.5))
        q = _cloud_fraction(day, self.seed)
        cn = _noise(cols, rows, 40, self.seed + 1000 + n) * np.ones(lc.shape)
        shade = _noise(cols - 25, rows + 20, 40, self.seed + 1000 + n) * np.ones(lc.shape)
        cloud = cn < q
        shadow = (shade < q) & ~cloud
        alpha = np.clip((q - cn) / 0.08, 0.3, 1.0)
        refl = np.where(cloud[..., None], refl * (1 - alpha[..., None]) + _CLOUD * alpha[..., None], refl)
        refl = np.where(shadow[..., None], refl * 0.4, refl)
        ndvi = (refl[..., 3] - refl[..., 2]) / (refl[..., 3] + refl[..., 2])
        scl = np.where(lc == WATER, 6, np.where(ndvi > 0.4, 4, 5))
        scl = np.where(shadow, 3, scl)
        scl = np.where(cloud, np.where(alpha > 0.7, 9, 8), scl)
        out = {b: refl[..., i] for i, b in enumerate(S2_BANDS)}
        out["SCL"] = scl.astype(float)
        # CLP/CLM: the cloud field sampled at the centres of 160 m cells of the world grid (CLP_CELL_PX), so a
        # tiled request reproduces an untiled one; 0.5 at the cloud's edge, saturating 0.05 of noise inside.
        half = CLP_CELL_PX // 2
        cc = (cols // CLP_CELL_PX) * CLP_CELL_PX + half
        rc = (rows // CLP_CELL_PX) * CLP_CELL_PX + half
        coarse = _noise(cc, rc, 40, self.seed + 1000 + n) * np.ones(lc.shape)
        prob = np.clip(0.5 + (q - coarse) / 0.1, 0.0, 1.0)
        if day in self.clp_missing_days:
            out["CLP"], out["CLM"] = np.zeros(lc.shape), np.full(lc.shape, float(CLM_NO_DATA))
        else:
            out["CLP"], out["CLM"] = np.round(255 * prob), (prob > 0.4).astype(float)
        return out

    def _s1(
        self, cols: NDArray[np.int64], rows: NDArray[np.int64], lc: NDArray[np.int64], g: Granule
    ) -> dict[str, NDArray[np.float64]]:
        day = g.when.date()
        n = _day_number(day)
        asc = g.props.get("sat:orbit_state") == "ascending"
        table = _SAR.copy()
        wet = 0.5 + 0.5 * math.cos(2 * math.pi * (day.timetuple().tm_yday - 250) / 365)
        table[PADDY] = table[PADDY] + wet * (_PADDY_SAR_GROWING - table[PADDY])
        base = table[lc] * (1.08 if asc else 0.93)
        terrain = _noise(cols, rows, 16, self.seed + (21 if asc else 22)) * np.ones(lc.shape)
        shadow = terrain > 0.86
        out = {}
        for i, b in enumerate(S1_BANDS):
            v = base[..., i] * _gamma_speckle(self.seed + 31 + i, cols, rows, n, int(asc))
            out[b] = np.where(shadow, v * 0.1, v)
        out["shadowMask"] = shadow.astype(float)
        out["localIncidenceAngle"] = np.where(asc, 38.0, 41.0) * np.ones(lc.shape)
        return out


def _passes(g: Granule, flt: dict[str, Any]) -> bool:
    p = g.props
    if "maxCloudCoverage" in flt and p.get("eo:cloud_cover", 0) > flt["maxCloudCoverage"]:
        return False
    for key, prop in (
        ("orbitDirection", "sat:orbit_state"),
        ("acquisitionMode", "sar:instrument_mode"),
        ("polarization", "s1:polarization"),
        ("resolution", "s1:resolution"),
    ):
        if key in flt and str(p.get(prop, "")).upper() != str(flt[key]).upper():
            return False
    return True


def _to_sample_type(stack: NDArray[np.float64], stype: str) -> NDArray[Any]:
    """What the service does with evaluatePixel values for each sampleType (clamp and round integers)."""
    if stype == "FLOAT32":
        return stack.astype(np.float32)
    if stype == "AUTO":
        return np.clip(np.round(stack * 255), 0, 255).astype(np.uint8)
    info = np.iinfo(SAMPLE_TYPES[stype])
    return np.clip(np.round(stack), info.min, info.max).astype(SAMPLE_TYPES[stype])


def _geotiff(stack: NDArray[Any], epsg: int, transform: Affine) -> bytes:
    with MemoryFile() as mem:
        with mem.open(
            driver="GTiff",
            width=stack.shape[2],
            height=stack.shape[1],
            count=stack.shape[0],
            dtype=stack.dtype,
            crs=rasterio.crs.CRS.from_epsg(epsg),
            transform=transform,
        ) as dst:
            dst.write(stack)
        return bytes(mem.read())


class _Handler(QuietHandler):
    fake: FakeSentinelHub
    server_version = "FakeSentinelHub/1.0"

    def _endpoint(self) -> str | None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.endswith("/protocol/openid-connect/token") or path.endswith("/oauth/token"):
            return "token"
        if path.startswith("/api/v1/catalog/1.0.0"):
            return "catalog"
        if path == "/api/v1/process":
            return "process"
        return None

    def _send(
        self,
        endpoint: str | None,
        status: int,
        content: bytes,
        ctype: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        try:
            self.start_response(status, ctype, len(content), headers)
            self.wfile.write(content)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return  # the client gave up (timeout); nothing to answer
        if endpoint:
            self.fake._count(endpoint, bytes_out=len(content), status=status)

    def _json(
        self, endpoint: str | None, status: int, obj: Any, headers: dict[str, str] | None = None
    ) -> None:
        self._send(endpoint, status, json.dumps(obj).encode(), "application/json", headers)

    def do_GET(self) -> None:
        endpoint = self._endpoint()
        if endpoint:
            self.fake._count(endpoint, arrived=time.monotonic())
        if endpoint == "catalog":
            self._json(
                endpoint,
                200,
                {
                    "type": "Catalog",
                    "id": "sentinel-hub",
                    "stac_version": "1.0.0",
                    "conformsTo": ["https://api.stacspec.org/v1.0.0/item-search"],
                },
            )
            return
        self._json(endpoint, 404, _Reject(404, f"No such resource {self.path}", "COMMON_NOT_FOUND").body())

    def do_POST(self) -> None:
        arrived = time.monotonic()
        endpoint = self._endpoint()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if endpoint is None:
            self._json(None, 404, _Reject(404, f"No such resource {self.path}", "COMMON_NOT_FOUND").body())
            return
        self.fake._count(endpoint, bytes_in=len(raw), arrived=arrived)
        fault = self.fake._next_fault(endpoint)
        if fault is not None:
            if fault.delay_s:
                time.sleep(fault.delay_s)
            if fault.status is not None:
                headers = {"X-RateLimit-Remaining": "0"}
                if fault.status == 429:
                    headers["Retry-After"] = str(
                        fault.retry_after_ms if fault.retry_after_ms is not None else 1000
                    )
                    headers["X-RateLimit-ViolatedPolicy"] = json.dumps(
                        {"samplingPeriod": "PT1M", "limit": 300}
                    )
                    msg = "You have exceeded your rate limit"
                else:
                    msg = "Temporary problem on the server; please try again."
                self._json(
                    endpoint, fault.status, _Reject(fault.status, msg, "COMMON_EXCEPTION").body(), headers
                )
                return
        try:
            if endpoint == "token":
                self._token(raw)
            elif endpoint == "catalog":
                self.fake.check_token(self.headers.get("Authorization"))
                body = self._body(raw)
                self._send(
                    endpoint,
                    200,
                    json.dumps(self.fake.search(body)).encode(),
                    "application/geo+json",
                    {"X-RateLimit-Remaining": "299"},
                )
            else:
                self.fake.check_token(self.headers.get("Authorization"))
                content, ctype, pu = self.fake.process(self._body(raw), self.headers.get("Accept", ""))
                self._send(
                    endpoint,
                    200,
                    content,
                    ctype,
                    {"x-processingunits-spent": f"{pu:.4f}", "X-RateLimit-Remaining": "299"},
                )
        except _Reject as r:
            if endpoint == "token":
                desc = {
                    "invalid_client": "Invalid client or Invalid client credentials",
                    "unsupported_grant_type": "Unsupported grant_type",
                }.get(r.message, r.message)
                self._json(endpoint, r.status, {"error": r.message, "error_description": desc})
            else:
                self._json(endpoint, r.status, r.body())
        except Exception as e:  # a bug in the fake: answer 500 so the test sees it, with the cause
            self._json(endpoint, 500, _Reject(500, f"fake server error: {e!r}", "FAKE_BUG").body())

    def _body(self, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except json.JSONDecodeError as e:
            raise _Reject(400, f"Invalid request: the body is not JSON ({e.msg}).") from e

    def _token(self, raw: bytes) -> None:
        ctype = self.headers.get("Content-Type", "")
        if "application/x-www-form-urlencoded" not in ctype:
            raise _Reject(400, "unsupported_grant_type")
        form = parse_qs(raw.decode())
        basic = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            basic = (cid, secret)
        self._json("token", 200, self.fake.issue_token(form, basic), {"Cache-Control": "no-store"})
