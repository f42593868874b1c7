"""Fetch (STAC): Sentinel-2 L2A and Sentinel-1 RTC from STAC APIs via pystac-client search and odc-stac reads.

Optical: a Sentinel-2 L2A archive in the Earth Search layout (asset keys blue/green/red/nir/swir16/swir22/scl,
or B02.../SCL). Digital numbers become reflectance with each item's own scale and offset, so scenes from
before and after processing baseline 04.00 (which added a -1000 DN offset) agree: see ``s2_scale_offset``.
Reprocessed duplicates of one granule are dropped (the newest baseline wins), and the granules of one solar
day are mosaicked into one time step.

SAR: terrain-corrected gamma0 in the Planetary Computer ``sentinel-1-rtc`` layout (assets vv/vh, linear power;
properties sat:orbit_state, sat:relative_orbit), one time step per solar day and relative orbit. Catalogues
that hand out signed URLs are read through ``StacSettings.signer`` ("module:function", e.g.
"planetary_computer:sign"), applied to every asset href at read time (inside the dask task) so tokens are
fresh.

Every scene is read onto the AOI grid tile by tile inside dask tasks, through the SceneCache when one is
given; search results are cached too (for ``ReadSettings.search_ttl_s``), so a repeated load makes no network
request. A read that still fails after GDAL's retries raises SceneLoadError naming the asset href, the item
and the area.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import odc.stac
import pystac
import rasterio
import rasterio.env
import requests
import xarray as xr
from odc.geo.geobox import GeoBox
from pystac_client import Client
from pystac_client.errors import ClientTypeError
from pystac_client.exceptions import APIError, ParametersError
from pystac_client.stac_api_io import StacApiIO
from urllib3 import Retry

from monitoring.aoi import AOI
from monitoring.config import StacSettings
from monitoring.errors import ConfigError, SceneLoadError, SourceError
from monitoring.preprocess.multilook import read_margin
from monitoring.preprocess.shadow import SunAngles, sun_at
from monitoring.sources.base import OPTICAL_BANDS, SAR_BANDS, SCL_NO_DATA
from monitoring.sources.cache import BandSpec, SceneCache, lazy_scenes, scene_dataset

log = logging.getLogger(__name__)

OPTICAL_ASSETS: dict[str, tuple[str, ...]] = {
    "B02": ("blue", "B02"),
    "B03": ("green", "B03"),
    "B04": ("red", "B04"),
    "B08": ("nir", "B08"),
    "B11": ("swir16", "B11"),
    "B12": ("swir22", "B12"),
    "SCL": ("scl", "SCL"),
}
"""Our band -> asset keys to try: Earth Search v1 names, then ESA names (Planetary Computer, v0)."""
SAR_ASSETS: dict[str, tuple[str, ...]] = {"VV": ("vv", "VV"), "VH": ("vh", "VH")}
LANDCOVER_ASSETS: dict[str, tuple[str, ...]] = {"landcover": ("map", "Map")}

S2_DEFAULT_SCALE = 1e-4
"""Sentinel-2 L2A quantification value 10000."""
S2_BASELINE_OFFSET_DN = -1000.0
"""BOA_ADD_OFFSET of processing baseline >= 04.00 (every band so far)."""
S2_OFFSET_SINCE = date(2022, 1, 25)
"""Baseline 04.00 went live on this date: later products carry the offset even where the item does not say."""


@dataclass(frozen=True)
class ReadSettings:
    """How hard to try, and how much memory and time a read may take."""

    http_retries: int = 5
    """GDAL_HTTP_MAX_RETRY: retries of one COG request on transient HTTP errors (429 and 5xx in GDAL 3.10)."""
    retry_delay_s: float = 1.0
    """GDAL_HTTP_RETRY_DELAY: the first wait between retries; GDAL backs off from there."""
    http_timeout_s: float = 60.0
    """GDAL_HTTP_TIMEOUT of one COG request."""
    gdal_cachemax_mb: int = 64
    """GDAL_CACHEMAX: the block cache grew to 1.7 GB with many open files here; 64 MB kept memory flat. One
    process-wide setting, applied once (see limit_gdal_cache), unless the environment sets GDAL_CACHEMAX."""
    api_retries: int = 4
    """Retries of a STAC API request (search pages) on 429 and 5xx, honouring Retry-After."""
    api_backoff_s: float = 1.0
    """Backoff factor of the STAC API retries (1, 2, 4 ... seconds)."""
    search_ttl_s: float = 3600.0
    """How long a cached search result is reused: long enough for reruns on one morning, short enough to see a
    scene published since. Scene pixels are cached for good (until evicted)."""
    page_size: int = 100
    """Items per search page."""

    def gdal_env(self) -> dict[str, Any]:
        """GDAL options for reading remote COGs the way cloud deployments do."""
        return {
            "GDAL_HTTP_MAX_RETRY": str(self.http_retries),
            "GDAL_HTTP_RETRY_DELAY": str(self.retry_delay_s),
            "GDAL_HTTP_TIMEOUT": str(int(self.http_timeout_s)),
            "GDAL_HTTP_CONNECTTIMEOUT": "10",
            # COGs have no side-car files: listing the folder or probing for .aux.xml/.ovr costs requests.
            "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
            "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF",
            "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
        }


_cache_limited = False


def limit_gdal_cache(mb: int) -> None:
    """Cap GDAL's block cache once per process, unless GDAL_CACHEMAX is set in the environment.

    Not per read: rasterio applies GDAL_CACHEMAX with GDALSetCacheMax64, which resizes the one process-wide
    cache (and restores it when an Env exits), so setting it inside every dask task would resize it under the
    other threads' reads. The value is in bytes there: rasterio hands an integer to GDALSetCacheMax64, so
    "64" would mean 64 bytes, not GDAL's usual 64 MB.
    """
    global _cache_limited
    if _cache_limited or "GDAL_CACHEMAX" in os.environ:
        return
    rasterio.env.set_gdal_config("GDAL_CACHEMAX", int(mb) * 2**20)
    _cache_limited = True


# -- pure helpers (no IO) ---------------------------------------------------------------------------------


def solar_day(t: datetime, lon: float) -> date:
    """The local solar date of a UTC time at a longitude, in whole hours as odc-stac's groupby does."""
    return (t.replace(tzinfo=None) + timedelta(seconds=int(lon / 15) * 3600)).date()


def item_time(item: pystac.Item) -> datetime:
    """The item's acquisition time in UTC (naive), from datetime or start_datetime."""
    t = item.datetime or pystac.utils.str_to_datetime(item.properties["start_datetime"])
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t


def _prop(item: pystac.Item, *names: str) -> Any:
    for n in names:
        if n in item.properties:
            return item.properties[n]
    return None


def item_sun(item: pystac.Item) -> SunAngles | None:
    """The sun (azimuth, zenith) in degrees an item's metadata gives, or None: Earth Search's view:sun_azimuth
    and view:sun_elevation, or Planetary Computer's s2:mean_solar_azimuth and s2:mean_solar_zenith."""
    az = _prop(item, "view:sun_azimuth", "s2:mean_solar_azimuth")
    zen, elev = _prop(item, "s2:mean_solar_zenith"), _prop(item, "view:sun_elevation")
    if az is None or (zen is None and elev is None):
        return None
    try:
        zenith = float(zen) if zen is not None else 90.0 - float(elev)
        out = (float(az) % 360.0, zenith)
    except (TypeError, ValueError):
        return None  # a malformed value is as good as none: the sun is then worked out from the time
    return out if all(np.isfinite(out)) else None


def scene_sun(items: Sequence[pystac.Item], lon: float, lat: float) -> SunAngles:
    """The sun of one acquisition (its granules, seconds apart): the mean of the items' metadata (azimuths
    averaged on the circle), else worked out at the first item's sensing time over (lon, lat)."""
    found = [s for it in items if (s := item_sun(it)) is not None]
    if not found:
        return sun_at(item_time(items[0]), lat=lat, lon=lon)
    az = np.radians([f[0] for f in found])
    mean_az = float(np.degrees(np.arctan2(np.sin(az).mean(), np.cos(az).mean()))) % 360.0
    return mean_az, float(np.mean([f[1] for f in found]))


def processing_baseline(item: pystac.Item) -> float | None:
    """s2:processing_baseline (or Earth Search v0's sentinel: one) as a number, e.g. 5.0; None if absent."""
    v = _prop(item, "s2:processing_baseline", "sentinel:processing_baseline")
    try:
        return float(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _raster_band(item: pystac.Item, asset_key: str) -> dict[str, Any]:
    asset = item.assets.get(asset_key)
    bands = asset.extra_fields.get("raster:bands") if asset is not None else None
    return dict(bands[0]) if bands else {}


def s2_scale_offset(item: pystac.Item, asset_key: str) -> tuple[float, float]:
    """(scale, offset) turning a Sentinel-2 L2A asset's digital numbers into reflectance: DN * scale + offset.

    In order:
    1. ``earthsearch:boa_offset_applied`` true: Earth Search already removed the offset from the pixels -> 0.
    2. ``raster:bands`` gives an offset: use it (newer items, e.g. Collection-1 / baseline 05.00: -0.1).
    3. processing baseline >= 04.00, or no baseline on an item acquired since 2022-01-25: -1000 DN.
    4. otherwise (baseline < 04.00): no offset.
    The scale is raster:bands' scale, else 1/10000.
    """
    rb = _raster_band(item, asset_key)
    scale = float(rb["scale"]) if rb.get("scale") is not None else S2_DEFAULT_SCALE
    if _prop(item, "earthsearch:boa_offset_applied", "sentinel:boa_offset_applied") is True:
        return scale, 0.0
    if rb.get("offset") is not None:
        return scale, float(rb["offset"])
    baseline = processing_baseline(item)
    if baseline is None:
        newer = item_time(item).date() >= S2_OFFSET_SINCE
    else:
        newer = baseline >= 4.0
    return scale, (S2_BASELINE_OFFSET_DN * scale if newer else 0.0)


def _granule(item: pystac.Item) -> tuple[Any, ...] | None:
    tile = _prop(item, "grid:code", "s2:mgrs_tile", "sentinel:grid_square")
    if tile is None and "mgrs:grid_square" in item.properties:
        tile = (
            _prop(item, "mgrs:utm_zone"),
            _prop(item, "mgrs:latitude_band"),
            _prop(item, "mgrs:grid_square"),
        )
    if tile is None:
        return None
    return (str(tile), item_time(item).replace(microsecond=0))


def dedupe_granules(items: Iterable[pystac.Item]) -> list[pystac.Item]:
    """Drop reprocessed copies of one granule (same tile, same sensing time): the newest processing wins.

    Earth Search holds e.g. S2B_48PWA_20221210_0_L2A and ..._1_L2A for one acquisition, often with different
    processing baselines (so different offsets): mosaicking both would mix them, and they are one observation.
    """
    best: dict[Any, pystac.Item] = {}
    order: list[Any] = []

    def rank(it: pystac.Item) -> tuple[float, str, str]:
        return (processing_baseline(it) or -1.0, str(_prop(it, "updated", "created") or ""), it.id)

    for it in items:
        g = _granule(it) or ("id", it.id)
        if g not in best:
            order.append(g)
            best[g] = it
        elif rank(it) > rank(best[g]):
            log.info("dropping %s: %s is a newer processing of the same granule", best[g].id, it.id)
            best[g] = it
    return [best[g] for g in order]


def group_items(items: Iterable[pystac.Item], key: Callable[[pystac.Item], Any]) -> list[list[pystac.Item]]:
    """Items grouped by key, each group sorted by (time, id), groups in time order of their first item."""
    groups: dict[Any, list[pystac.Item]] = {}
    for it in items:
        groups.setdefault(key(it), []).append(it)
    out = [sorted(g, key=lambda i: (item_time(i), i.id)) for g in groups.values()]
    return sorted(out, key=lambda g: (item_time(g[0]), g[0].id))


def resolve_assets(
    items: Sequence[pystac.Item], wanted: Mapping[str, tuple[str, ...]], aoi_id: str
) -> dict[str, str]:
    """Our band name -> the asset key the items use for it; SourceError naming the item if one is missing."""
    out: dict[str, str] = {}
    first = items[0]
    for band, candidates in wanted.items():
        key = next((k for k in candidates if k in first.assets), None)
        if key is None:
            raise SourceError(
                f"item {first.id!r} (area {aoi_id!r}) has no asset for band {band} (tried "
                f"{list(candidates)}; it has {sorted(first.assets)}); point stac.url/collection at a "
                "Sentinel-2 L2A or Sentinel-1 RTC collection in Earth Search or Planetary Computer layout."
            )
        for it in items[1:]:
            if key not in it.assets:
                raise SourceError(
                    f"item {it.id!r} (area {aoi_id!r}) lacks asset {key!r} (band {band}) that {first.id!r} "
                    "has; "
                    "the catalogue mixes layouts in one collection, which this source cannot mosaic."
                )
        out[band] = key
    return out


_URL_QUERY = re.compile(r"(https?://[^\s'\"?]+)\?[^\s'\"]*")


def redact(text: str) -> str:
    """Text with URL query strings (signatures, tokens) replaced, so errors and logs never leak them."""
    return _URL_QUERY.sub(r"\1?<redacted>", text)


class _RedactUrls(logging.Filter):
    """Strips URL query strings from log records: odc-loader and GDAL log the failing (signed) URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


# A logger's filters see only records made on that logger: odc-loader's reader, and rasterio's GDAL error
# handler (which logs GDAL's "HTTP error code: 500 - <url>. Retrying" lines).
for _name in ("odc.loader._rio", "rasterio._env"):
    logging.getLogger(_name).addFilter(_RedactUrls())


def resolve_signer(spec: str | None) -> Callable[[str], str] | None:
    """The URL-signing callable named by 'module:function' (or 'module.function'), or None."""
    if not spec:
        return None
    module, sep, name = spec.partition(":")
    if not sep:
        module, _, name = spec.rpartition(".")
    if not module or not name:
        raise ConfigError(f"stac.signer {spec!r} is not 'module:function', e.g. 'planetary_computer:sign'.")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise ConfigError(
            f"stac.signer {spec!r} cannot be imported ({e}); install the package that provides it "
            "(e.g. pip install planetary-computer) or fix the setting."
        ) from e
    if not callable(fn):
        raise ConfigError(
            f"stac.signer {spec!r} is not callable; name a function that takes and returns an href."
        )
    return fn  # type: ignore[no-any-return]


# -- the source ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scene:
    """One time step to read: the items of one solar day (and relative orbit), and what to read from them."""

    aoi_id: str
    items: tuple[pystac.Item, ...] = field(compare=False)
    assets: tuple[tuple[str, str], ...]
    """(our band, asset key)."""


class StacSource:
    """Sentinel-2 L2A and Sentinel-1 RTC from STAC APIs, on the AOI grid, lazily. See the module docstring."""

    name = "stac"
    simulated = False

    def __init__(
        self,
        settings: StacSettings,
        *,
        max_cloud_cover: float = 90.0,
        chunk_size: int = 512,
        cache: SceneCache | None = None,
        read: ReadSettings | None = None,
    ) -> None:
        self.settings = settings
        self.max_cloud_cover = float(max_cloud_cover)
        self.chunk_size = int(chunk_size)
        self.cache = cache
        self.read = read or ReadSettings()
        self._sign = resolve_signer(settings.signer)
        self._clients: dict[str, Client] = {}
        limit_gdal_cache(self.read.gdal_cachemax_mb)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_clients"] = {}  # requests sessions do not travel to dask workers
        return state

    def __repr__(self) -> str:
        return (
            f"StacSource(url={self.settings.url!r}, sar_url={self.settings.sar_url!r}, cache={self.cache!r})"
        )

    # -- search --------------------------------------------------------------------------------------------

    def _client(self, url: str) -> Client:
        if url not in self._clients:
            retry = Retry(
                total=self.read.api_retries,
                backoff_factor=self.read.api_backoff_s,
                status_forcelist=(429, 500, 502, 503, 504),
                allowed_methods=None,  # searches are POSTs, and idempotent
                respect_retry_after_header=True,
                raise_on_status=False,
            )
            io = StacApiIO(max_retries=retry, timeout=self.read.http_timeout_s)
            self._clients[url] = Client.open(url, stac_io=io)
        return self._clients[url]

    def search(
        self,
        url: str,
        collection: str,
        aoi: AOI,
        *,
        start: date | None = None,
        end: date | None = None,
        query: dict[str, Any] | None = None,
    ) -> list[pystac.Item]:
        """Items of collection over the AOI (and the UTC dates start..end), through the search cache."""
        bbox = [round(v, 6) for v in aoi.geobox.extent.to_crs("EPSG:4326").boundingbox]
        when = f"{start.isoformat()}T00:00:00Z/{end.isoformat()}T23:59:59.999Z" if start and end else None

        def run() -> list[dict[str, Any]]:
            s = self._client(url).search(
                collections=[collection], bbox=bbox, datetime=when, query=query, limit=self.read.page_size
            )
            return [it.to_dict(transform_hrefs=False) for it in s.items()]

        key = {
            "kind": "stac-search",
            "url": url,
            "collection": collection,
            "bbox": bbox,
            "datetime": when,
            "query": query,
        }
        try:
            if self.cache is not None:
                found = self.cache.get_or_load_json(key, run, max_age_s=self.read.search_ttl_s)
            else:
                found = run()
        except (
            APIError,
            ParametersError,
            ClientTypeError,
            requests.RequestException,
            pystac.STACError,
            ValueError,
        ) as e:
            raise SourceError(
                f"STAC search of {collection!r} at {url} for area {aoi.id!r} ({when or 'any time'}) failed: "
                f"{redact(str(e))}. Check stac.url and the network, or run again later if the service is "
                "busy."
            ) from e
        items = [pystac.Item.from_dict(d) for d in found]
        if start and end:
            # Some APIs match on overlapping ranges; the contract wants scenes inside the window only.
            items = [it for it in items if start <= item_time(it).date() <= end]
        return items

    # -- the ImagerySource methods ---------------------------------------------------------------------------

    def load_optical(self, aoi: AOI, start: date, end: date) -> xr.Dataset:
        s = self.settings
        items = self.search(
            s.url,
            s.optical_collection,
            aoi,
            start=start,
            end=end,
            query={"eo:cloud_cover": {"lte": self.max_cloud_cover}},
        )
        items = dedupe_granules(items)
        centre = aoi.footprint.centroid
        lon = centre.x
        groups = group_items(items, lambda it: solar_day(item_time(it), lon))
        scenes, times, ids, platforms, clouds, suns = [], [], [], [], [], []
        for g in groups:
            assets = resolve_assets(g, OPTICAL_ASSETS, aoi.id)
            sid = ",".join(it.id for it in g)
            scenes.append((sid, _Scene(aoi.id, tuple(g), tuple(assets.items()))))
            times.append(np.datetime64(item_time(g[0]), "ns"))
            ids.append(sid)
            platforms.append(str(_prop(g[0], "platform") or "sentinel-2"))
            cc = [float(v) for it in g if (v := _prop(it, "eo:cloud_cover")) is not None]
            clouds.append(float(np.mean(cc)) if cc else np.nan)
            suns.append(scene_sun(g, centre.x, centre.y))
        bands = [BandSpec(b, "float32") for b in OPTICAL_BANDS] + [BandSpec("SCL", "uint8")]
        arrays = lazy_scenes(
            scenes,
            aoi.geobox,
            bands,
            read=self._read_optical,
            chunk_size=self.chunk_size,
            source=f"stac+{s.url}",
            collection=s.optical_collection,
            cache=self.cache,
        )
        coords = {
            "scene_id": np.array(ids, dtype=object),
            "platform": np.array(platforms, dtype=object),
            "cloud_cover": np.array(clouds, dtype=float),
            # For the cloud-shadow test (preprocess.shadow.sun_angles reads these per date).
            "sun_azimuth": np.array([a for a, _ in suns], dtype=float),
            "sun_zenith": np.array([z for _, z in suns], dtype=float),
        }
        return scene_dataset(
            arrays, aoi.geobox, times, coords, attrs={"source": self.name, "collection": s.optical_collection}
        )

    def load_sar(self, aoi: AOI, start: date, end: date, *, multilook_px: int = 0) -> xr.Dataset:
        s = self.settings
        groups: list[list[pystac.Item]] = []
        if s.sar_url:
            items = self.search(s.sar_url, s.sar_collection, aoi, start=start, end=end)
            lon = aoi.footprint.centroid.x
            groups = group_items(
                {it.id: it for it in items}.values(),
                lambda it: (solar_day(item_time(it), lon), _relative_orbit(it, aoi.id)),
            )
        else:
            log.info("no stac.sar_url set: no Sentinel-1 from STAC for %s", aoi.id)
        scenes, times, ids, platforms, directions, orbits = [], [], [], [], [], []
        for g in groups:
            assets = resolve_assets(g, SAR_ASSETS, aoi.id)
            sid = ",".join(it.id for it in g)
            scenes.append((sid, _Scene(aoi.id, tuple(g), tuple(assets.items()))))
            times.append(np.datetime64(item_time(g[0]), "ns"))
            ids.append(sid)
            platforms.append(str(_prop(g[0], "platform") or "sentinel-1"))
            directions.append(_orbit_direction(g[0], aoi.id))
            orbits.append(_relative_orbit(g[0], aoi.id))
        bands = [BandSpec(b, "float32") for b in SAR_BANDS] + [BandSpec("valid", "bool")]
        halo, finish = read_margin(multilook_px)
        arrays = lazy_scenes(
            scenes,
            aoi.geobox,
            bands,
            read=self._read_sar,
            chunk_size=self.chunk_size,
            source=f"stac+{s.sar_url}",
            collection=s.sar_collection,
            cache=self.cache,
            halo=halo,
            finish=finish,
        )
        coords = {
            "scene_id": np.array(ids, dtype=object),
            "platform": np.array(platforms, dtype=object),
            "orbit_direction": np.array(directions, dtype=object),
            "relative_orbit": np.array(orbits, dtype=np.int64),
        }
        attrs = {"source": self.name, "collection": s.sar_collection, "multilook_px": multilook_px}
        return scene_dataset(arrays, aoi.geobox, times, coords, attrs=attrs)

    def load_landcover(self, aoi: AOI) -> xr.DataArray | None:
        s = self.settings
        if not s.landcover_collection:
            return None
        items = self.search(s.url, s.landcover_collection, aoi)
        if not items:
            log.warning("no %s item covers %s; land cover unavailable", s.landcover_collection, aoi.id)
            return None
        # The newest map (e.g. WorldCover 2021 v200 over 2020 v100), all of its tiles that touch the area.
        latest = max(item_time(it) for it in items)
        items = sorted((it for it in items if item_time(it) == latest), key=lambda it: it.id)
        assets = resolve_assets(items, LANDCOVER_ASSETS, aoi.id)
        sid = ",".join(it.id for it in items)
        arrays = lazy_scenes(
            [(sid, _Scene(aoi.id, tuple(items), tuple(assets.items())))],
            aoi.geobox,
            [BandSpec("landcover", "uint8")],
            read=self._read_landcover,
            chunk_size=self.chunk_size,
            source=f"stac+{s.url}",
            collection=s.landcover_collection,
            cache=self.cache,
        )
        ds = scene_dataset(
            arrays, aoi.geobox, [np.datetime64(latest, "ns")], {"scene_id": np.array([sid], dtype=object)}
        )
        return ds["landcover"].isel(time=0, drop=True)

    # -- reading (inside dask tasks) ------------------------------------------------------------------------

    def _odc_load(
        self,
        scene: _Scene,
        items: Sequence[pystac.Item],
        assets: Sequence[str],
        tile: GeoBox,
        resampling: str | dict[str, str],
    ) -> xr.Dataset:
        with rasterio.Env(**self.read.gdal_env()):
            try:
                return odc.stac.load(
                    items,
                    bands=list(assets),
                    geobox=tile,
                    groupby="solar_day",
                    resampling=resampling,
                    chunks=None,
                    fail_on_error=True,
                    patch_url=self._sign,
                )
            except Exception as e:  # rasterio/GDAL raise several types (RasterioIOError, CPLE_*): one failure
                raise self._load_error(scene, items, assets, tile, resampling, e) from e

    def _load_error(
        self,
        scene: _Scene,
        items: Sequence[pystac.Item],
        assets: Sequence[str],
        tile: GeoBox,
        resampling: str | dict[str, str],
        err: Exception,
    ) -> SceneLoadError:
        """A SceneLoadError naming the failing href: the one GDAL names, else the first that fails alone."""
        reason = redact(str(err)).rstrip(". ") or type(err).__name__
        culprit: tuple[pystac.Item, str] | None = None
        for it in items:
            for a in assets:
                if it.assets[a].href in str(err):
                    culprit = (it, a)
        if culprit is None and (len(items) > 1 or len(assets) > 1):
            # GDAL's message often names no file (e.g. 'HTTP response code: 500'): probe each asset alone.
            for it in items:
                for a in assets:
                    try:
                        odc.stac.load(
                            [it],
                            bands=[a],
                            geobox=tile,
                            resampling=resampling,
                            chunks=None,
                            fail_on_error=True,
                            patch_url=self._sign,
                        )
                    except Exception as probe:  # same failure types as above
                        culprit = (it, a)
                        reason = redact(str(probe)).rstrip(". ") or reason
                        break
                if culprit:
                    break
        if culprit is None:
            culprit = (items[0], assets[0])
        it, a = culprit
        return SceneLoadError(
            f"could not read {it.assets[a].href} (asset {a!r} of item {it.id!r}) for area {scene.aoi_id!r}: "
            f"{reason}. Transient HTTP errors were retried {self.read.http_retries} times; if the file is "
            "missing or access is denied, check the catalogue (and stac.signer for signed URLs), else run "
            "again later."
        )

    def _partitions(
        self, items: Sequence[pystac.Item], assets: Sequence[tuple[str, str]]
    ) -> list[list[pystac.Item]]:
        """Items split by their (scale, offset) per band: odc-stac mosaics digital numbers, only right
        when all granules of a day share the same radiometry."""
        parts: dict[tuple[Any, ...], list[pystac.Item]] = {}
        for it in items:
            sig = tuple(s2_scale_offset(it, a) for b, a in assets if b != "SCL")
            parts.setdefault(sig, []).append(it)
        return list(parts.values())

    def _read_optical(self, scene: _Scene, tile: GeoBox) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {b: np.full(tile.shape, np.nan, np.float32) for b in OPTICAL_BANDS}
        out["SCL"] = np.full(tile.shape, SCL_NO_DATA, np.uint8)
        asset_of = dict(scene.assets)
        keys = [asset_of[b] for b in (*OPTICAL_BANDS, "SCL")]
        resampling = {"*": "bilinear", asset_of["SCL"]: "nearest"}
        for part in self._partitions(scene.items, scene.assets):
            raw = self._odc_load(scene, part, keys, tile, resampling)
            for b in OPTICAL_BANDS:
                a = asset_of[b]
                scale, offset = s2_scale_offset(part[0], a)
                dn = _first_valid(raw[a])
                nodata = raw[a].attrs.get("nodata")
                refl = (dn.astype(np.float64) * scale + offset).astype(np.float32)
                refl[_is_nodata(dn, nodata)] = np.nan
                fill = np.isnan(out[b])
                out[b][fill] = refl[fill]
            scl = _first_valid(raw[asset_of["SCL"]])
            fill = out["SCL"] == SCL_NO_DATA
            out["SCL"][fill] = np.clip(np.nan_to_num(scl[fill]), 0, 255).astype(np.uint8)
        return out

    def _read_sar(self, scene: _Scene, tile: GeoBox) -> dict[str, np.ndarray]:
        asset_of = dict(scene.assets)
        raw = self._odc_load(scene, scene.items, [asset_of[b] for b in SAR_BANDS], tile, "bilinear")
        out: dict[str, np.ndarray] = {}
        for b in SAR_BANDS:
            a = asset_of[b]
            rb = _raster_band(scene.items[0], a)
            v = _first_valid(raw[a])
            g = v.astype(np.float64) * float(rb.get("scale", 1.0) or 1.0) + float(
                rb.get("offset", 0.0) or 0.0
            )
            g = g.astype(np.float32)
            g[_is_nodata(v, raw[a].attrs.get("nodata"))] = np.nan
            out[b] = g
        # RTC marks layover and radar shadow as nodata; zero or negative gamma0 is no measurement either.
        with np.errstate(invalid="ignore"):
            out["valid"] = np.isfinite(out["VV"]) & np.isfinite(out["VH"]) & (out["VV"] > 0) & (out["VH"] > 0)
        return out

    def _read_landcover(self, scene: _Scene, tile: GeoBox) -> dict[str, np.ndarray]:
        a = dict(scene.assets)["landcover"]
        raw = self._odc_load(scene, scene.items, [a], tile, "nearest")
        v = _first_valid(raw[a])
        return {"landcover": np.clip(np.nan_to_num(v), 0, 255).astype(np.uint8)}


def _is_nodata(a: np.ndarray, nodata: Any) -> np.ndarray:
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        return bad | (a == nodata) if nodata is not None and np.isfinite(nodata) else bad
    return a == nodata if nodata is not None else np.zeros(a.shape, bool)


def _first_valid(da_: xr.DataArray) -> np.ndarray:
    """One (y, x) plane: the first valid pixel along time (odc-stac gives one step per solar day; a group that
    straddles odc's hour-snapped solar-day boundary could give two)."""
    v = np.asarray(da_.values)
    if v.ndim == 2:
        return v
    out = v[0].copy()
    nodata = da_.attrs.get("nodata")
    for plane in v[1:]:
        fill = _is_nodata(out, nodata)
        out[fill] = plane[fill]
    return out


def _orbit_direction(item: pystac.Item, aoi_id: str) -> str:
    v = _prop(item, "sat:orbit_state", "s1:orbit_state")
    if v is None or str(v).lower() not in ("ascending", "descending"):
        raise SourceError(
            f"Sentinel-1 item {item.id!r} (area {aoi_id!r}) has no sat:orbit_state ascending/descending "
            f"(got {v!r}); "
            "the SAR collection must carry the STAC sat extension."
        )
    return str(v).lower()


def _relative_orbit(item: pystac.Item, aoi_id: str) -> int:
    v = _prop(item, "sat:relative_orbit", "s1:relative_orbit")
    try:
        return int(v)
    except (TypeError, ValueError) as e:
        raise SourceError(
            f"Sentinel-1 item {item.id!r} (area {aoi_id!r}) has no integer sat:relative_orbit (got {v!r}); "
            "the SAR collection must carry the STAC sat extension."
        ) from e
