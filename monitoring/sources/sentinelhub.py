"""Fetch: Sentinel-2 L2A and Sentinel-1 GRD from Sentinel Hub (commercial or Copernicus Data Space).

One code path serves both deployments; only SentinelHubSettings (base_url, token_url) differ.
sentinelhub-py does the protocol work: OAuth (SentinelHubSession), Catalog search with pagination
(SentinelHubCatalog), Process API requests (SentinelHubRequest) and their download with retries of
5xx/timeouts and waits on 429 Retry-After (SentinelHubDownloadClient, configured through SHConfig). This
module adds what the pipeline needs on top:

- catalog items grouped into acquisitions: one per solar day for Sentinel-2 (adjacent tiles and reprocessed
  duplicates of one day become one mosaic), one per solar day and relative orbit for Sentinel-1;
- one Process request per acquisition and grid tile, with the time range of that acquisition only, so dates
  are never blended; requests are made on the AOI grid itself (UTM CRS, geobox bbox and shape), in tiles no
  larger than settings.max_pixels, so the answer lands on aoi.geobox without reprojection;
- a lazy dask graph (monitoring.sources.cache.lazy_scenes: one task per acquisition and tile, read through the
  shared scene cache when one is given);
- errors that name the scene, the date, the area and the request; counters of requests, bytes and processing
  units per endpoint and per area (``source.stats``).
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import io
import json
import logging
import math
import os
import re
import tarfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import PurePosixPath
from typing import Any, Literal, TypeVar

import numpy as np
import requests
import xarray as xr
from odc.geo.geobox import GeoBox
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile
from sentinelhub import CRS as SHCRS
from sentinelhub import (
    BBox,
    DataCollection,
    MimeType,
    SentinelHubCatalog,
    SentinelHubDownloadClient,
    SentinelHubRequest,
    SHConfig,
)
from sentinelhub.decoding import decode_sentinelhub_err_msg
from sentinelhub.download.models import DownloadRequest
from sentinelhub.download.session import SentinelHubSession
from sentinelhub.exceptions import DownloadFailedException, OutOfRequestsException

from monitoring.aoi import AOI
from monitoring.config import SentinelHubSettings
from monitoring.errors import SceneLoadError, SourceError
from monitoring.preprocess.multilook import read_margin
from monitoring.preprocess.shadow import sun_at
from monitoring.sources.base import OPTICAL_BANDS, SAR_BANDS
from monitoring.sources.cache import BandSpec, SceneCache, lazy_scenes, scene_dataset

log = logging.getLogger(__name__)

T = TypeVar("T")

ENV_CLIENT_ID = "SH_CLIENT_ID"
ENV_CLIENT_SECRET = "SH_CLIENT_SECRET"

PASS_MARGIN = timedelta(minutes=30)
"""Process time range = the acquisition's sensing times +- this. Tiles of one datatake are seconds apart; the
next pass over the same place on another solar day is >= ~12 h away (the other orbit direction), so no other
day can be mosaicked in."""
CATALOG_PAGE = 100
"""Catalog API page size (its maximum)."""
SEARCH_TTL_S = 3600.0
"""How long a catalog search cached in the SceneCache is reused (as StacSource's ReadSettings.search_ttl_s):
long enough for reruns on one morning, short enough to see a scene published since. Scene pixels are cached
for good (until evicted)."""
EVALSCRIPT_VERSION = "bw2"
"""Part of every cache key: bump when an evalscript or the decoding changes what a scene's pixels are.
bw2: Sentinel-2 scenes carry CLP (Sentinel Hub's s2cloudless probability)."""
CLM_NO_DATA = 255
"""Sentinel Hub's CLM value where a tile has no CLM/CLP (its CLP then reads 0)."""
_S2_TILE = re.compile(r"_T(\d{2}[A-Z]{3})_")
"""The MGRS tile in a Sentinel-2 product id."""
_S1_REL_ORBIT_OFFSET = {"sentinel-1a": 73, "sentinel-1b": 27}
"""relative = (absolute - offset) % 175 + 1 (ESA): used only when a catalog item lacks sat:relative_orbit."""

EVALSCRIPT_S2 = """//VERSION=3
function setup() {
  return {
    input: [{
      bands: ["B02", "B03", "B04", "B08", "B11", "B12", "SCL", "CLP", "CLM", "dataMask"],
      units: ["REFLECTANCE", "REFLECTANCE", "REFLECTANCE", "REFLECTANCE", "REFLECTANCE", "REFLECTANCE",
              "DN", "DN", "DN", "DN"]
    }],
    output: [
      {id: "bands", bands: 6, sampleType: "FLOAT32"},
      {id: "scl", bands: 4, sampleType: "UINT8"}
    ]
  };
}
function evaluatePixel(s) {
  return {bands: [s.B02, s.B03, s.B04, s.B08, s.B11, s.B12], scl: [s.SCL, s.dataMask, s.CLP, s.CLM]};
}
"""
"""Sentinel-2 L2A: six bands as surface reflectance (float32); SCL, dataMask, CLP and CLM (uint8); two TIFFs in
a TAR. CLP is Sentinel Hub's s2cloudless cloud probability (0-255, computed at 160 m); CLM its cloud mask, read
only for its no-data value 255, where CLP is 0 for want of a probability, not for a clear sky."""

EVALSCRIPT_S1 = """//VERSION=3
function setup() {
  return {
    input: [{bands: ["VV", "VH", "dataMask", "shadowMask"]}],
    output: [
      {id: "bands", bands: 2, sampleType: "FLOAT32"},
      {id: "mask", bands: 2, sampleType: "UINT8"}
    ]
  };
}
function evaluatePixel(s) {
  return {bands: [s.VV, s.VH], mask: [s.dataMask, s.shadowMask]};
}
"""
"""Sentinel-1 GRD: VV, VH linear gamma0 (float32) and dataMask + shadowMask (layover/radar shadow, uint8)."""

S1_PROCESSING = {"backCoeff": "GAMMA0_TERRAIN", "orthorectify": True, "demInstance": "COPERNICUS_30"}
"""Terrain-flattened gamma0 on the Copernicus 30 m DEM: backscatter comparable across orbits and slopes."""

_AREA: contextvars.ContextVar[str | None] = contextvars.ContextVar("sentinelhub_area", default=None)
"""The area a catalog search runs for (searches run in the caller's thread), for the per-area counters."""


# -- credentials ---------------------------------------------------------------------------------------------


def _load_secret_block(block: str) -> Any:
    """The value of a Prefect Secret block (imported here: the library runs without Prefect)."""
    from prefect.blocks.system import Secret

    return Secret.load(block).get()  # type: ignore[union-attr]  # sync call: a Secret, not a coroutine


def resolve_credentials(settings: SentinelHubSettings, name: str) -> tuple[str, str]:
    """(client_id, client_secret) from SH_CLIENT_ID/SH_CLIENT_SECRET, else from settings' Secret block."""
    cid, secret = os.environ.get(ENV_CLIENT_ID, ""), os.environ.get(ENV_CLIENT_SECRET, "")
    if cid and secret:
        return cid, secret
    block_setting = f"{name}.credentials_block (BORDERWATCH_{name.upper()}__CREDENTIALS_BLOCK)"
    if settings.credentials_block:
        block = settings.credentials_block
        try:
            value = _load_secret_block(block)
            if isinstance(value, str):
                value = json.loads(value)
            return str(value["client_id"]), str(value["client_secret"])
        except Exception as e:  # Prefect, JSON and key errors all mean the same thing to the user
            raise SourceError(
                f"Sentinel Hub credentials for {name!r}: cannot read client_id/client_secret from the "
                f"Prefect Secret block {block!r} ({type(e).__name__}: {e}); store "
                f'{{"client_id": ..., "client_secret": ...}} in it, or set {ENV_CLIENT_ID} and '
                f"{ENV_CLIENT_SECRET}."
            ) from e
    missing = [v for v, val in ((ENV_CLIENT_ID, cid), (ENV_CLIENT_SECRET, secret)) if not val]
    raise SourceError(
        f"Sentinel Hub credentials for {name!r} are missing ({' and '.join(missing)} not set): set "
        f"{ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} in the environment, or set {block_setting} to a Prefect "
        'Secret block holding {"client_id": ..., "client_secret": ...}.'
    )


# -- counters ------------------------------------------------------------------------------------------------


@dataclass
class Counts:
    """Traffic of one endpoint or one area."""

    requests: int = 0
    """HTTP requests sent, retries included (cache hits are not requests)."""
    bytes: int = 0
    """Response bytes received."""
    processing_units: float = 0.0
    """Sum of x-processingunits-spent."""
    rate_limited: int = 0
    """429 answers."""
    server_errors: int = 0
    """5xx answers."""
    failed: int = 0
    """Requests that got no answer (timeout, connection error)."""


@dataclass
class TransferStats:
    """What a source moved, per endpoint ('token', 'catalog', 'process') and per area; thread-safe."""

    by_endpoint: dict[str, Counts] = field(default_factory=dict)
    by_area: dict[str, Counts] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, endpoint: str, area: str | None, *, status: int | None, nbytes: int, pu: float) -> None:
        with self._lock:
            counts = [self.by_endpoint.setdefault(endpoint, Counts())]
            if area is not None:  # tokens serve every area
                counts.append(self.by_area.setdefault(area, Counts()))
            for c in counts:
                c.requests += 1
                c.bytes += nbytes
                c.processing_units += pu
                c.rate_limited += status == 429
                c.server_errors += status is not None and status >= 500
                c.failed += status is None

    @property
    def total(self) -> Counts:
        with self._lock:
            out = Counts()
            for c in self.by_endpoint.values():
                for k in ("requests", "bytes", "processing_units", "rate_limited", "server_errors", "failed"):
                    setattr(out, k, getattr(out, k) + getattr(c, k))
            return out

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "by_endpoint": {k: vars(v).copy() for k, v in self.by_endpoint.items()},
                "by_area": {k: vars(v).copy() for k, v in self.by_area.items()},
            }


def _endpoint_of(url: str | None) -> str:
    path = (url or "").split("?", 1)[0]
    if "/api/v1/process" in path:
        return "process"
    if "/catalog/" in path:
        return "catalog"
    if path.endswith("/token"):
        return "token"
    return "other"


class _MeteredClient(SentinelHubDownloadClient):
    """sentinelhub-py's download client, unchanged in what it does (retries, 429 waits, rate limiting),
    counting and logging every HTTP attempt with its processing units and rate-limit headers."""

    def __init__(
        self, *, stats: TransferStats, source_name: str, lock: threading.Lock, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._stats = stats
        self._source_name = source_name
        self._shared_lock = lock

    def _execute_thread_safe(self, thread_unsafe_function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # One client serves every dask thread, so that a 429 seen by one thread delays all of them; the base
        # class swaps self.lock per download() call, which does not hold across concurrent calls.
        with self._shared_lock:
            return thread_unsafe_function(*args, **kwargs)

    def _do_download(self, request: DownloadRequest) -> requests.Response:
        endpoint = _endpoint_of(request.url)
        area = request.extra_params.get("area") or _AREA.get()
        try:
            response = super()._do_download(request)
        except requests.RequestException as e:
            self._stats.record(endpoint, area, status=None, nbytes=0, pu=0.0)
            log.warning(
                "%s %s for %s: no answer (%s: %s)", self._source_name, endpoint, area, type(e).__name__, e
            )
            raise
        h = response.headers
        pu = _float(h.get("x-processingunits-spent"))
        self._stats.record(endpoint, area, status=response.status_code, nbytes=len(response.content), pu=pu)
        limits = {
            k: v for k, v in h.items() if k.lower().startswith("x-ratelimit") or k.lower() == "retry-after"
        }
        if response.status_code == 429:
            log.warning(
                "%s %s for %s: 429 rate limited, Retry-After %s ms %s",
                self._source_name,
                endpoint,
                area,
                h.get("Retry-After", "?"),
                limits,
            )
        elif response.status_code >= 400:
            log.warning("%s %s for %s: HTTP %d", self._source_name, endpoint, area, response.status_code)
        else:
            log.log(
                logging.INFO if endpoint == "process" else logging.DEBUG,
                "%s %s for %s: %d bytes, %.4f processing units, %s",
                self._source_name,
                endpoint,
                area,
                len(response.content),
                pu,
                limits or "no rate-limit headers",
            )
        return response


class _CountingSession(SentinelHubSession):
    """sentinelhub-py's OAuth session, counting the tokens it fetches (first one and refreshes)."""

    def __init__(self, *, stats: TransferStats, **kwargs: Any) -> None:
        self._bw_stats = stats  # before super().__init__, which fetches the first token
        super().__init__(**kwargs)

    def _collect_new_token(self) -> dict[str, Any]:
        token = super()._collect_new_token()
        self._bw_stats.record("token", None, status=200, nbytes=0, pu=0.0)
        return token


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


# -- catalog items -> acquisitions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Acquisition:
    """One acquisition: the catalog items of one solar day (and, for Sentinel-1, one relative orbit) that are
    fetched together as one mosaic."""

    sensor: Literal["optical", "sar"]
    time: datetime
    """Earliest sensing time of the items (UTC, timezone-aware): the time coordinate."""
    start: datetime
    end: datetime
    """Sensing times of the first and the last item."""
    item_ids: tuple[str, ...]
    platform: str
    cloud_cover: float = math.nan
    """Mean eo:cloud_cover of the items (%), optical only."""
    orbit_direction: str | None = None
    relative_orbit: int | None = None

    @property
    def scene_id(self) -> str:
        return "+".join(self.item_ids)

    @property
    def day(self) -> date:
        return self.time.date()


def _parse_datetime(s: str) -> datetime:
    t = datetime.fromisoformat(s)
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def _relative_orbit(item: Mapping[str, Any]) -> int | None:
    props = item["properties"]
    if props.get("sat:relative_orbit") is not None:
        return int(props["sat:relative_orbit"])
    absolute, platform = props.get("sat:absolute_orbit"), str(props.get("platform", "")).lower()
    if absolute is not None and platform in _S1_REL_ORBIT_OFFSET:
        return (int(absolute) - _S1_REL_ORBIT_OFFSET[platform]) % 175 + 1
    return None


def group_acquisitions(
    items: Iterable[Mapping[str, Any]], *, sensor: Literal["optical", "sar"], lon: float
) -> list[Acquisition]:
    """Catalog items -> acquisitions in time order: one per solar day at longitude lon (and orbit for SAR).

    Tiles of one day and reprocessed copies of a granule are one acquisition: counting them apart would make
    the same observation count twice downstream.
    """
    offset = timedelta(hours=lon / 15.0)
    groups: dict[tuple[Any, ...], list[tuple[datetime, Mapping[str, Any]]]] = {}
    for it in items:
        props = it["properties"]
        when = _parse_datetime(props["datetime"])
        key: tuple[Any, ...] = ((when + offset).date(),)
        if sensor == "sar":
            direction = str(props.get("sat:orbit_state", "")).lower()
            rel = _relative_orbit(it)
            if direction not in ("ascending", "descending") or rel is None:
                log.warning(
                    "Sentinel-1 item %s has no usable sat:orbit_state/sat:relative_orbit (%r, %r); skipped: "
                    "passes cannot be grouped by orbit without them",
                    it.get("id"),
                    direction,
                    rel,
                )
                continue
            key += (rel, direction)
        groups.setdefault(key, []).append((when, it))
    out = []
    for key, members in groups.items():
        members.sort(key=lambda m: (m[0], m[1]["id"]))
        times = [m[0] for m in members]
        ids = tuple(sorted({str(m[1]["id"]) for m in members}))
        platforms = sorted({str(m[1]["properties"].get("platform", "unknown")) for m in members})
        if len(ids) > 1:
            log.debug(
                "%s acquisition of %s: %d items mosaicked as one scene: %s", sensor, key[0], len(ids), ids
            )
            tiles = [m.group(1) for i in ids if (m := _S2_TILE.search(i))]
            if len(tiles) != len(set(tiles)):
                # Reprocessed copies of a granule (another processing baseline): kept as one observation.
                log.info(
                    "%s acquisition of %s holds duplicate granules of one tile %s; counted once",
                    sensor,
                    key[0],
                    ids,
                )
        cc = [
            float(m[1]["properties"]["eo:cloud_cover"])
            for m in members
            if m[1]["properties"].get("eo:cloud_cover") is not None
        ]
        out.append(
            Acquisition(
                sensor=sensor,
                time=times[0],
                start=times[0],
                end=times[-1],
                item_ids=ids,
                platform="+".join(platforms),
                cloud_cover=float(np.mean(cc)) if cc else (0.0 if sensor == "optical" else math.nan),
                orbit_direction=key[2] if sensor == "sar" else None,
                relative_orbit=key[1] if sensor == "sar" else None,
            )
        )
    return sorted(out, key=lambda a: (a.time, a.scene_id))


# -- the source ----------------------------------------------------------------------------------------------

_DEFINE_LOCK = threading.Lock()


def _collections(base_url: str) -> dict[str, DataCollection]:
    """The collections bound to base_url. sentinelhub-py sends a Process request to its collection's
    service_url before SHConfig.sh_base_url, and the built-in ones point at services.sentinel-hub.com: CDSE
    (or a test server) needs its own definitions."""
    suffix = hashlib.sha1(base_url.encode()).hexdigest()[:12]
    with _DEFINE_LOCK:
        return {
            "s2": DataCollection.SENTINEL2_L2A.define_from(f"BW_S2L2A_{suffix}", service_url=base_url),
            "s1": DataCollection.SENTINEL1_IW.define_from(f"BW_S1IW_{suffix}", service_url=base_url),
            "s1-ascending": DataCollection.SENTINEL1_IW_ASC.define_from(
                f"BW_S1IWASC_{suffix}", service_url=base_url
            ),
            "s1-descending": DataCollection.SENTINEL1_IW_DES.define_from(
                f"BW_S1IWDES_{suffix}", service_url=base_url
            ),
        }


OPTICAL_SPECS = (
    *(BandSpec(b, "float32") for b in OPTICAL_BANDS),
    BandSpec("SCL", "uint8"),
    BandSpec("CLP", "float32"),
)
"""CLP as float32, to carry NaN where Sentinel Hub has no probability (CLM no-data, or no data at all)."""
SAR_SPECS = (*(BandSpec(b, "float32") for b in SAR_BANDS), BandSpec("valid", "bool"))


class SentinelHubSource:
    """Sentinel-2 L2A and Sentinel-1 GRD from one Sentinel Hub deployment ('sentinelhub' or 'cdse').

    settings: the deployment (endpoints, max_pixels, retries, timeout). max_cloud_cover: scene-level cloud
    limit (%) for Sentinel-2. chunk_size: dask chunk edge (px). cache: the shared scene cache (None = always
    download). retry_sleep_s: first wait before retrying a 5xx or timeout (then x3 each time, sentinelhub-py's
    backoff). orbit_direction: Sentinel-1 passes to use. search_ttl_s: how long a catalog search cached in
    ``cache`` is reused. Credentials come from SH_CLIENT_ID/SH_CLIENT_SECRET or the Prefect Secret block named
    in settings.credentials_block; a missing pair fails here, before any work. The token is fetched with the
    first request really sent: a rerun served from the cache makes no request at all.
    """

    simulated = False

    def __init__(
        self,
        settings: SentinelHubSettings,
        *,
        name: str = "sentinelhub",
        max_cloud_cover: float = 90.0,
        chunk_size: int = 512,
        cache: SceneCache | None = None,
        retry_sleep_s: float = 5.0,
        orbit_direction: Literal["both", "ascending", "descending"] = "both",
        search_ttl_s: float = SEARCH_TTL_S,
    ) -> None:
        self.name = name
        self.settings = settings
        self.max_cloud_cover = float(max_cloud_cover)
        self.chunk_size = int(chunk_size)
        self.cache = cache
        self.orbit_direction = orbit_direction
        self.search_ttl_s = float(search_ttl_s)
        self.stats = TransferStats()
        client_id, client_secret = resolve_credentials(settings, name)
        base_url = settings.base_url.rstrip("/")
        self._config = SHConfig(
            use_defaults=True,  # never read or write ~/.config/sentinelhub: settings and environment decide
            sh_client_id=client_id,
            sh_client_secret=client_secret,
            sh_base_url=base_url,
            sh_token_url=settings.token_url,
            download_timeout_seconds=settings.timeout_s,
            max_download_attempts=settings.max_retries + 1,
            download_sleep_time=retry_sleep_s,
            # sentinelhub-py counts 429s apart from 5xx; without a limit it would wait on them forever.
            max_retries=settings.max_retries + 1,
        )
        self._collections = _collections(base_url)
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._client_lock = threading.Lock()
        self._client_obj: _MeteredClient | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for dask.distributed: each worker opens its own session; counters stay per process.
        # Collections defined at run time are unknown to a fresh process: they are defined again there.
        state = self.__dict__.copy()
        for k in ("_lock", "_client_lock", "_client_obj", "stats", "_collections"):
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.stats = TransferStats()
        self._collections = _collections(self._config.sh_base_url)
        self._init_runtime()

    def __repr__(self) -> str:
        return f"SentinelHubSource(name={self.name!r}, base_url={self._config.sh_base_url!r})"

    # -- connection ------------------------------------------------------------------------------------------

    def _client(self) -> _MeteredClient:
        with self._lock:
            if self._client_obj is None:
                self._client_obj = _MeteredClient(
                    session=self._open_session(),
                    config=self._config,
                    stats=self.stats,
                    source_name=self.name,
                    lock=self._client_lock,
                )
            return self._client_obj

    def _open_session(self) -> SentinelHubSession:
        from oauthlib.oauth2.rfc6749.errors import OAuth2Error

        url = self._config.sh_token_url
        try:
            session = _CountingSession(config=self._config, stats=self.stats)
        except OAuth2Error as e:
            raise SourceError(
                f"{self.name}: the token endpoint {url} refused the credentials ({e.error}: "
                f"{e.description}); check {ENV_CLIENT_ID}/{ENV_CLIENT_SECRET} (or "
                f"{self.name}.credentials_block) and that they belong to this deployment "
                f"({self._config.sh_base_url})."
            ) from e
        except (DownloadFailedException, requests.RequestException) as e:
            raise SourceError(
                f"{self.name}: cannot get a token from {url} ({_reason(e)}); check {self.name}.token_url and "
                "the network, or try again later."
            ) from e
        return session

    # -- search ----------------------------------------------------------------------------------------------

    def _search(
        self,
        aoi: AOI,
        start: date,
        end: date,
        collection: DataCollection,
        *,
        filter_text: str | None,
        fields: list[str],
    ) -> list[dict[str, Any]]:
        if start > end:
            raise SourceError(
                f"{self.name}: window {start}..{end} for area {aoi.id!r} ends before it starts."
            )
        when = (datetime.combine(start, time.min, UTC), datetime.combine(end, time(23, 59, 59), UTC))
        bbox = aoi.bbox_wgs84()
        include = ["id", *fields]

        def run() -> list[dict[str, Any]]:
            catalog = SentinelHubCatalog(config=self._config)
            # The token is fetched here, for the first request really sent: a cached search needs none.
            catalog.client = self._client()
            token = _AREA.set(aoi.id)
            try:
                results = catalog.search(
                    collection,
                    time=when,
                    bbox=BBox(bbox, crs=SHCRS.WGS84),
                    filter=filter_text,
                    fields={"include": include, "exclude": []},
                    limit=CATALOG_PAGE,
                )
                return list(results)  # the iterator follows the `next` tokens
            except (DownloadFailedException, requests.RequestException) as e:
                raise SourceError(
                    f"{self.name}: catalog search for area {aoi.id!r} ({collection.catalog_id}, {start}..{end}) "
                    f"failed at {catalog.service_url}/search: {_reason(e)}. {_hint(e, self.name, self.settings)}"
                ) from e
            finally:
                _AREA.reset(token)

        if self.cache is None:
            return run()
        # Everything that decides the answer: the deployment, the collection (its name carries the orbit
        # direction filter of the S1 variants), the time range, the area, the filter and the fields.
        key = {
            "kind": "sentinelhub-catalog",
            "base_url": self._config.sh_base_url,
            "collection": collection.name,
            "catalog_id": collection.catalog_id,
            "datetime": [t.isoformat() for t in when],
            "bbox": [round(v, 6) for v in bbox],
            "filter": filter_text,
            "fields": include,
            "limit": CATALOG_PAGE,
        }
        found: list[dict[str, Any]] = self.cache.get_or_load_json(key, run, max_age_s=self.search_ttl_s)
        return found

    def search_optical(self, aoi: AOI, start: date, end: date) -> list[Acquisition]:
        """Sentinel-2 L2A acquisitions over aoi in [start, end] (UTC days) under max_cloud_cover."""
        items = self._search(
            aoi,
            start,
            end,
            self._collections["s2"],
            filter_text=f"eo:cloud_cover <= {self.max_cloud_cover:g}",
            fields=["properties.datetime", "properties.platform", "properties.eo:cloud_cover"],
        )
        return group_acquisitions(items, sensor="optical", lon=aoi.footprint.centroid.x)

    def search_sar(self, aoi: AOI, start: date, end: date) -> list[Acquisition]:
        """Sentinel-1 IW GRD dual-pol (VV+VH) acquisitions in [start, end], per solar day and orbit."""
        key = "s1" if self.orbit_direction == "both" else f"s1-{self.orbit_direction}"
        items = self._search(
            aoi,
            start,
            end,
            self._collections[key],
            filter_text=None,
            fields=[
                "properties.datetime",
                "properties.platform",
                "properties.sat:orbit_state",
                "properties.sat:relative_orbit",
                "properties.sat:absolute_orbit",
            ],
        )
        return group_acquisitions(items, sensor="sar", lon=aoi.footprint.centroid.x)

    # -- load ------------------------------------------------------------------------------------------------

    def load_optical(self, aoi: AOI, start: date, end: date) -> xr.Dataset:
        acqs = self.search_optical(aoi, start, end)
        log.info("%s: %d Sentinel-2 acquisitions for %s in %s..%s", self.name, len(acqs), aoi.id, start, end)
        ds = self._dataset(aoi, acqs, OPTICAL_SPECS, "sentinel-2-l2a")
        # The sun at the sensing time over the AOI's centre, for the cloud-shadow test (preprocess.shadow):
        # known from the catalog before any pixel is read, so the shadow search is planned without a download.
        c = aoi.footprint.centroid
        sun = np.array([sun_at(a.time, lat=c.y, lon=c.x) for a in acqs], dtype=float).reshape(-1, 2)
        ds = ds.assign_coords(
            cloud_cover=("time", np.array([a.cloud_cover for a in acqs], dtype=float)),
            sun_azimuth=("time", sun[:, 0]),
            sun_zenith=("time", sun[:, 1]),
        )
        for b in OPTICAL_BANDS:
            ds[b].attrs.update(units="1", long_name=f"{b} surface reflectance")
        ds["SCL"].attrs.update(long_name="Sentinel-2 L2A scene classification")
        ds["CLP"].attrs.update(
            units="1/255", long_name="s2cloudless cloud probability (Sentinel Hub CLP, 0-255)"
        )
        ds["sun_azimuth"].attrs.update(
            units="degree", long_name="sun azimuth at sensing, clockwise from north"
        )
        ds["sun_zenith"].attrs.update(units="degree", long_name="sun zenith angle at sensing")
        return ds

    def load_sar(self, aoi: AOI, start: date, end: date, *, multilook_px: int = 0) -> xr.Dataset:
        acqs = self.search_sar(aoi, start, end)
        log.info("%s: %d Sentinel-1 acquisitions for %s in %s..%s", self.name, len(acqs), aoi.id, start, end)
        ds = self._dataset(aoi, acqs, SAR_SPECS, "sentinel-1-grd", multilook_px=multilook_px)
        ds = ds.assign_coords(
            orbit_direction=("time", np.array([a.orbit_direction or "" for a in acqs], dtype=object)),
            relative_orbit=("time", np.array([a.relative_orbit or 0 for a in acqs], dtype=np.int64)),
        )
        for b in SAR_BANDS:
            ds[b].attrs.update(units="1", long_name=f"{b} terrain-flattened gamma0 (linear)")
        ds["valid"].attrs.update(long_name="data, not layover or radar shadow")
        ds.attrs["multilook_px"] = multilook_px
        return ds

    def load_landcover(self, aoi: AOI) -> xr.DataArray | None:
        return None  # ESA WorldCover is not a standard collection on either deployment

    def _tile_edge(self, halo: int = 0) -> int:
        # Request tiles as large as the service allows (with their halo), in whole dask chunks so that
        # rechunking only splits.
        cap = self.settings.max_pixels - 2 * halo
        return cap if self.chunk_size >= cap else (cap // self.chunk_size) * self.chunk_size

    def _dataset(
        self,
        aoi: AOI,
        acqs: list[Acquisition],
        specs: tuple[BandSpec, ...],
        collection: str,
        *,
        multilook_px: int = 0,
    ) -> xr.Dataset:
        halo, finish = read_margin(multilook_px)
        edge = self._tile_edge(halo)
        arrays = lazy_scenes(
            [(a.scene_id, a) for a in acqs],
            aoi.geobox,
            specs,
            read=functools.partial(self._read, area=aoi.id),
            chunk_size=edge,
            source=f"{self.name}+{self._config.sh_base_url}",
            collection=f"{collection}@{EVALSCRIPT_VERSION}",
            cache=self.cache,
            halo=halo,
            finish=finish,
        )
        if edge > self.chunk_size:
            arrays = {k: v.rechunk((1, self.chunk_size, self.chunk_size)) for k, v in arrays.items()}
        times = [np.datetime64(a.time.replace(tzinfo=None), "ns") for a in acqs]
        return scene_dataset(
            arrays,
            aoi.geobox,
            times,
            {
                "scene_id": np.array([a.scene_id for a in acqs], dtype=object),
                "platform": np.array([a.platform for a in acqs], dtype=object),
            },
            attrs={"source": self.name, "base_url": self._config.sh_base_url},
        )

    # -- one acquisition on one tile -------------------------------------------------------------------------

    def process_request(self, acq: Acquisition, tile: GeoBox) -> SentinelHubRequest:
        """The Process API request of one acquisition on one grid tile (CRS, bbox and size of the tile)."""
        if tile.crs is None or tile.crs.epsg is None:
            raise SourceError(
                f"{self.name}: grid tile {tile!r} has no EPSG code; AOI grids are UTM (monitoring.aoi)."
            )
        bb = tile.extent.boundingbox
        interval = (acq.start - PASS_MARGIN, acq.end + PASS_MARGIN)
        if acq.sensor == "optical":
            evalscript, second = EVALSCRIPT_S2, "scl"
            # The catalog's limit rounded up: sentinelhub-py truncates maxcc to a whole percent.
            data = SentinelHubRequest.input_data(
                self._collections["s2"], time_interval=interval, maxcc=math.ceil(self.max_cloud_cover) / 100.0
            )
        else:
            evalscript, second = EVALSCRIPT_S1, "mask"
            # Pin the orbit direction as well: the time range alone already excludes the other pass.
            data = SentinelHubRequest.input_data(
                self._collections[f"s1-{acq.orbit_direction}"],
                time_interval=interval,
                other_args={"processing": S1_PROCESSING},
            )
        return SentinelHubRequest(
            evalscript=evalscript,
            input_data=[data],
            responses=[
                SentinelHubRequest.output_response("bands", MimeType.TIFF),
                SentinelHubRequest.output_response(second, MimeType.TIFF),
            ],
            bbox=BBox((bb.left, bb.bottom, bb.right, bb.top), crs=SHCRS(int(tile.crs.epsg))),
            size=(int(tile.shape.x), int(tile.shape.y)),
            config=self._config,
        )

    def _read(self, acq: Acquisition, tile: GeoBox, *, area: str) -> dict[str, np.ndarray]:
        request = self.process_request(acq, tile)
        dl = request.download_list[0]
        dl.extra_params["area"] = area
        try:
            (response,) = self._client().download([dl], max_threads=1, decode_data=False)
        except (DownloadFailedException, requests.RequestException) as e:
            raise SceneLoadError(self._failure(acq, area, dl, e)) from e
        try:
            files = _untar(response.content)
            arrays = {name: _read_tiff(data, tile) for name, data in files.items()}
            return _to_variables(acq.sensor, arrays)
        except (tarfile.TarError, RasterioError, KeyError, ValueError, IndexError) as e:
            raise SceneLoadError(
                f"{self.name}: scene {acq.scene_id} of {acq.day} for area {area!r}: the answer of POST "
                f"{dl.url} ({_describe(dl.post_values)}) cannot be read ({type(e).__name__}: {e}); if it "
                "repeats, report it with this message."
            ) from e

    def _failure(self, acq: Acquisition, area: str, dl: DownloadRequest, e: Exception) -> str:
        cause = getattr(e, "request_exception", None) or e
        attempts = 1
        if isinstance(e, OutOfRequestsException) or _status(cause) is None or (_status(cause) or 0) >= 500:
            attempts = self.settings.max_retries + 1
        return (
            f"{self.name}: scene {acq.scene_id} of {acq.day} for area {area!r} could not be loaded after "
            f"{attempts} attempt(s): POST {dl.url} ({_describe(dl.post_values)}) failed: {_reason(e)}. "
            f"{_hint(e, self.name, self.settings)}"
        )


# -- decoding ------------------------------------------------------------------------------------------------


def _untar(content: bytes) -> dict[str, bytes]:
    """{identifier: tiff bytes} of a multi-response Process API answer (a TAR of <identifier>.tif)."""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(content)) as tar:
        for m in tar.getmembers():
            f = tar.extractfile(m) if m.isfile() else None
            if f is not None:
                out[PurePosixPath(m.name).stem] = f.read()
    return out


def _read_tiff(data: bytes, tile: GeoBox) -> np.ndarray:
    """The bands of a GeoTIFF, after checking it lies exactly on the requested tile (no resampling, ever)."""
    with MemoryFile(data) as mem, mem.open() as src:
        if (src.height, src.width) != tuple(tile.shape):
            raise ValueError(f"got {src.height}x{src.width} px, asked for {tile.shape.y}x{tile.shape.x}")
        if src.crs is not None and tile.crs is not None and src.crs.to_epsg() != tile.crs.epsg:
            raise ValueError(f"got CRS {src.crs}, asked for EPSG:{tile.crs.epsg}")
        if src.crs is not None and not src.transform.almost_equals(
            tile.affine, precision=1e-6 * abs(tile.affine.a)
        ):
            raise ValueError(f"got transform {tuple(src.transform)[:6]}, asked for {tuple(tile.affine)[:6]}")
        return src.read()


def _to_variables(sensor: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evalscript outputs -> the contract's variables, no-data as NaN (bands) or 0 (SCL) or False (valid)."""
    if sensor == "optical":
        bands, scl = arrays["bands"], arrays["scl"]  # scl: SCL, dataMask, CLP, CLM
        data = scl[1] == 1
        out = {b: np.where(data, bands[i], np.nan).astype(np.float32) for i, b in enumerate(OPTICAL_BANDS)}
        out["SCL"] = np.where(data, scl[0], 0).astype(np.uint8)
        out["CLP"] = np.where(data & (scl[3] != CLM_NO_DATA), scl[2], np.nan).astype(np.float32)
        return out
    bands, mask = arrays["bands"], arrays["mask"]
    data = mask[0] == 1
    out = {b: np.where(data, bands[i], np.nan).astype(np.float32) for i, b in enumerate(SAR_BANDS)}
    out["valid"] = data & (mask[1] == 0)
    return out


# -- messages ------------------------------------------------------------------------------------------------


def _status(e: BaseException | None) -> int | None:
    resp = getattr(e, "response", None)
    return getattr(resp, "status_code", None)


def _reason(e: BaseException) -> str:
    """One line: the HTTP status and the service's message, or the kind of network failure."""
    cause = getattr(e, "request_exception", None) or e
    status = _status(cause)
    if status is not None:
        resp = cause.response  # type: ignore[union-attr]
        msg = decode_sentinelhub_err_msg(resp)
        try:
            err = json.loads(msg)
            msg = err.get("message", msg) if isinstance(err, dict) else msg
        except (TypeError, ValueError):
            pass
        return f"HTTP {status} {' '.join(str(msg).split())[:300]}".strip()
    if isinstance(e, OutOfRequestsException):
        return "HTTP 429 rate limit still exceeded after the last attempt"
    return f"{type(cause).__name__}: {' '.join(str(cause).split())[:300]}"


def _hint(e: BaseException, name: str, settings: SentinelHubSettings) -> str:
    cause = getattr(e, "request_exception", None) or e
    status = 429 if isinstance(e, OutOfRequestsException) else _status(cause)
    if status == 400:
        return "The service rejected the request itself: a bug in Borderwatch; report it with this message."
    if status in (401, 403):
        return (
            f"The token was refused or the account has no processing units left (403 = quota); check the "
            f"credentials and the subscription of {settings.base_url}."
        )
    if status == 404:
        return f"No such endpoint: check {name}.base_url ({settings.base_url})."
    if status == 429:
        return (
            f"Still rate-limited after {settings.max_retries + 1} attempts: run fewer areas at once, or "
            f"raise {name}.max_retries."
        )
    return (
        f"The service failed or did not answer within {settings.timeout_s:g} s, {settings.max_retries + 1} "
        f"times: try again later, or raise {name}.max_retries / {name}.timeout_s."
    )


def _describe(body: Mapping[str, Any] | None) -> str:
    """The parts of a Process body that identify it: data type, time range, bbox + CRS, size."""
    if not body:
        return "no body"
    try:
        data = body["input"]["data"][0]
        tr = data.get("dataFilter", {}).get("timeRange", {})
        bounds = body["input"]["bounds"]
        crs = str(bounds["properties"]["crs"]).rsplit("/", 1)[-1]
        bbox = ",".join(f"{v:.0f}" for v in bounds["bbox"])
        out = body.get("output", {})
        return (
            f"{data['type']} {tr.get('from')}..{tr.get('to')}, bbox {bbox} EPSG:{crs}, "
            f"{out.get('width')}x{out.get('height')} px"
        )
    except (KeyError, IndexError, TypeError, ValueError):
        return json.dumps(body)[:300]
