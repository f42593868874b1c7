"""Fetch: the on-disk scene cache shared by runs; the lazy per-scene, per-tile graph reading through it.

Storage format: one uncompressed NumPy ``.npz`` file per entry (all bands of one scene on one grid tile), plus
small ``.json`` entries for search results. Why not compressed GeoTIFF or zarr:

- an entry holds the exact arrays a source returns after decoding and scaling (float32 reflectance with NaN,
  uint8 SCL, bool validity): a GeoTIFF cannot hold uint8 and float32 bands in one file, and writing one is a
  second encode and decode through GDAL on every hit;
- one file per entry can be published atomically (temp file + ``os.replace``); a zarr store is a directory,
  which cannot be replaced atomically when two runs write the same key, and zarr is not a dependency;
- reading back an uncompressed ``.npz`` is a plain copy (GB/s), while DEFLATE decodes at ~0.3-0.6 GB/s on this
  machine; the cache exists to remove network reads, and ``max_gb`` with LRU eviction bounds the disk it
  takes.

Concurrency: writes go to a temp file in the entry's folder and are published with ``os.replace``, so a reader
sees either no entry or a whole one. A per-key lock file (``fcntl.flock``; the ``filelock`` package is not
installed) keeps two runs or threads from downloading the same scene twice; it is an optimisation only, since
correctness comes from the atomic rename. Eviction drops the least recently used entries (by modification
time, which a hit refreshes; access times are unreliable on ``noatime`` mounts) until the folder fits
``max_gb``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import operator
import os
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from odc.geo.geobox import GeoBox, GeoboxTiles
from odc.geo.xr import xr_coords

from monitoring.config import CacheSettings
from monitoring.errors import SourceError

try:  # POSIX; on other systems the lock is a no-op and the atomic rename alone keeps entries whole
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

CACHE_FORMAT = "scene-npz-1"
"""Bump when what an entry holds changes (e.g. how reflectance is scaled), so old entries are never reused."""

_TMP_PREFIX = ".tmp-"
_STALE_TMP_S = 3600.0
"""Temp files older than this are leftovers of a crashed writer and are removed during eviction."""


_NPZ_READ_LOCK = threading.Lock()
"""One npz read at a time: numpy parses each array header with ast.literal_eval, and CPython 3.11's AST
constructor is not thread-safe (python/cpython#106905: 'AST constructor recursion depth mismatch' when dask's
threads read cached scenes at once). Reads are local and small; the lock costs little."""


@dataclass(frozen=True)
class SceneKey:
    """What identifies one cached load: the same key always means the same pixels."""

    source: str
    """The source and its endpoint, e.g. 'stac+https://earth-search.aws.element84.com/v1'."""
    collection: str
    """Collection (or sensor) name, e.g. 'sentinel-2-l2a'."""
    scene_id: str
    """The scene: for a solar-day mosaic, the ids of all items in it."""
    crs: str
    """CRS of the grid ('EPSG:32648' or WKT)."""
    transform: tuple[float, float, float, float, float, float]
    """Affine transform of the grid (a, b, c, d, e, f)."""
    shape: tuple[int, int]
    """Grid shape (ny, nx)."""
    bands: tuple[str, ...]
    """Variables stored, in order."""
    format: str = CACHE_FORMAT

    @classmethod
    def on_grid(
        cls, *, source: str, collection: str, scene_id: str, geobox: GeoBox, bands: Sequence[str]
    ) -> SceneKey:
        """The key of a scene loaded onto geobox."""
        crs = geobox.crs
        crs_s = (
            f"EPSG:{crs.epsg}"
            if crs is not None and crs.epsg is not None
            else str(crs.to_wkt() if crs else "")
        )
        t = geobox.transform
        return cls(
            source=source,
            collection=collection,
            scene_id=scene_id,
            crs=crs_s,
            transform=(t.a, t.b, t.c, t.d, t.e, t.f),
            shape=(int(geobox.shape[0]), int(geobox.shape[1])),
            bands=tuple(bands),
        )

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        return hashlib.sha256(self.as_json().encode()).hexdigest()


@dataclass
class CacheStats:
    """Counters of one SceneCache object (per process; several runs sharing a folder count separately)."""

    hits: int = 0
    misses: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    evicted: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **kw: int) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("hits", "misses", "bytes_read", "bytes_written", "evicted")}


@contextlib.contextmanager
def _locked(path: Path, *, blocking: bool = True) -> Iterator[bool]:
    """An exclusive lock on path (created if missing); yields False when non-blocking and already held."""
    if fcntl is None:  # pragma: no cover - Windows
        yield True
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _atomic_write(final: Path, write: Callable[[Any], None]) -> int:
    """Write through write(fileobj) to a temp file beside final, then publish it with os.replace."""
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=_TMP_PREFIX, suffix=final.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        size = os.path.getsize(tmp)
        os.replace(tmp, final)
        return size
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class SceneCache:
    """Loaded scenes on disk, keyed by SceneKey, with an LRU size limit; safe when runs share the folder.

    Sources call ``get_or_load(key, loader)`` inside their dask tasks: a hit reads the arrays from disk and
    makes no network request; a miss runs loader() (which reads the network), stores the result and returns
    it.
    """

    def __init__(self, folder: str | Path, *, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise SourceError(
                f"scene cache size limit must be positive, got {max_bytes} bytes; set cache.max_gb > 0."
            )
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)
        self.stats = CacheStats()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SourceError(
                f"cannot create the scene cache folder {self.folder} ({e.strerror}); "
                "set cache.folder to a writable path or cache.enabled: false."
            ) from e

    @classmethod
    def from_settings(cls, settings: CacheSettings, *, base: Path | None = None) -> SceneCache | None:
        """The cache settings describe (folder relative to base, default the working directory), or None."""
        if not settings.enabled:
            return None
        folder = Path(settings.folder)
        if not folder.is_absolute():
            folder = (base or Path.cwd()) / folder
        return cls(folder, max_bytes=int(settings.max_gb * 1e9))

    def __getstate__(self) -> dict[str, Any]:
        # Picklable for dask.distributed: counters stay with each process.
        return {"folder": self.folder, "max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.folder = state["folder"]
        self.max_bytes = state["max_bytes"]
        self.stats = CacheStats()

    def __repr__(self) -> str:
        return f"SceneCache({str(self.folder)!r}, max_bytes={self.max_bytes})"

    # -- paths ---------------------------------------------------------------------------------------------

    def _paths(self, digest: str, suffix: str) -> tuple[Path, Path]:
        shard = self.folder / digest[:2]
        shard.mkdir(exist_ok=True)
        return shard / f"{digest}{suffix}", shard / f"{digest}.lock"

    # -- scenes --------------------------------------------------------------------------------------------

    def get_or_load(
        self, key: SceneKey, loader: Callable[[], Mapping[str, np.ndarray]]
    ) -> dict[str, np.ndarray]:
        """The arrays stored under key, or loader()'s result (then stored). Arrays must be numeric or bool."""
        path, lock = self._paths(key.digest(), ".npz")
        hit = self._read_npz(path, key)
        if hit is not None:
            return hit
        with _locked(lock):
            # Another run may have written it while we waited for the lock.
            hit = self._read_npz(path, key)
            if hit is not None:
                return hit
            self.stats.add(misses=1)
            arrays = {k: np.asarray(v) for k, v in loader().items()}
            for name, a in arrays.items():
                if a.dtype.kind not in "biuf":
                    raise SourceError(
                        f"cannot cache band {name!r} of {key.scene_id!r}: dtype {a.dtype} is not numeric."
                    )
            payload: dict[str, Any] = {"__key__": np.array(key.as_json()), **arrays}
            size = _atomic_write(path, lambda f: np.savez(f, **payload))
            self.stats.add(bytes_written=size)
        self._evict(keep=path)
        return arrays

    def _read_npz(self, path: Path, key: SceneKey) -> dict[str, np.ndarray] | None:
        try:
            with _NPZ_READ_LOCK, np.load(path, allow_pickle=False) as z:
                if str(z["__key__"]) != key.as_json():
                    log.warning("scene cache entry %s holds another key (hash collision?); reloading", path)
                    return None
                out = {k: z[k] for k in key.bands if k in z.files}
                if len(out) != len(key.bands):
                    return None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            # A torn or foreign file (e.g. a full disk): load again; the new entry replaces it atomically. Not
            # unlinked here: another run may have just published a good entry at this path.
            log.warning("scene cache entry %s is unreadable (%s); reloading it", path, e)
            return None
        self._touch(path)
        self.stats.add(hits=1, bytes_read=sum(a.nbytes for a in out.values()))
        return out

    # -- JSON (search results) -------------------------------------------------------------------------------

    def get_or_load_json(self, key: Mapping[str, Any], loader: Callable[[], Any], *, max_age_s: float) -> Any:
        """A JSON value stored under key if younger than max_age_s, else loader()'s result (then stored)."""
        key_s = json.dumps({**key, "format": CACHE_FORMAT}, sort_keys=True, default=str)
        path, lock = self._paths(hashlib.sha256(key_s.encode()).hexdigest(), ".json")
        hit = self._read_json(path, key_s, max_age_s)
        if hit is not None:
            return hit[0]
        with _locked(lock):
            hit = self._read_json(path, key_s, max_age_s)
            if hit is not None:
                return hit[0]
            self.stats.add(misses=1)
            value = loader()
            body = json.dumps({"key": key_s, "created": time.time(), "value": value}).encode()
            size = _atomic_write(path, lambda f: f.write(body))
            self.stats.add(bytes_written=size)
        self._evict(keep=path)
        return value

    def _read_json(self, path: Path, key_s: str, max_age_s: float) -> tuple[Any] | None:
        try:
            raw = path.read_bytes()
            doc = json.loads(raw)
            if doc["key"] != key_s or time.time() - float(doc["created"]) > max_age_s:
                return None
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("search cache entry %s is unreadable (%s); searching again", path, e)
            return None
        self._touch(path)
        self.stats.add(hits=1, bytes_read=len(raw))
        return (doc["value"],)

    # -- size ----------------------------------------------------------------------------------------------

    @staticmethod
    def _touch(path: Path) -> None:
        with contextlib.suppress(OSError):
            os.utime(path, None)

    def entries(self) -> list[tuple[Path, int, float]]:
        """(path, size, last use) of every entry; temp files and locks are not entries."""
        out: list[tuple[Path, int, float]] = []
        for shard in self.folder.iterdir():
            if not shard.is_dir():
                continue
            for e in os.scandir(shard):
                if e.name.startswith(_TMP_PREFIX) or e.name.endswith(".lock"):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    st = e.stat()
                    out.append((Path(e.path), st.st_size, st.st_mtime))
        return out

    def size_bytes(self) -> int:
        return sum(s for _, s, _ in self.entries())

    def _evict(self, *, keep: Path | None = None) -> None:
        entries = self.entries()
        total = sum(s for _, s, _ in entries)
        if total <= self.max_bytes:
            return
        # One evictor at a time; if another run is evicting, it will bring the folder under the limit.
        with _locked(self.folder / ".evict.lock", blocking=False) as got:
            if not got:
                return
            self._drop_stale_temp_files()
            entries.sort(key=operator.itemgetter(2))
            # The entry just written goes last: evicting it at once would make the cache useless for it.
            entries.sort(key=lambda e: e[0] == keep)
            for path, size, _ in entries:
                if total <= self.max_bytes:
                    break
                if path == keep:
                    log.warning(
                        "scene %s alone is larger than the cache limit (%d bytes); not kept",
                        path,
                        self.max_bytes,
                    )
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    self.stats.add(evicted=1)
                # A run waiting on this lock just reloads the scene; the rename keeps entries whole anyway.
                with contextlib.suppress(OSError):
                    path.with_suffix(".lock").unlink()
                total -= size

    def _drop_stale_temp_files(self) -> None:
        now = time.time()
        for shard in self.folder.iterdir():
            if shard.is_dir():
                for e in os.scandir(shard):
                    if e.name.startswith(_TMP_PREFIX):
                        with contextlib.suppress(OSError):
                            if now - e.stat().st_mtime > _STALE_TMP_S:
                                os.unlink(e.path)


# -- the lazy graph ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BandSpec:
    """One output variable of a per-scene load."""

    name: str
    dtype: str
    """numpy dtype of the variable."""


ReadBlock = Callable[[Any, GeoBox], Mapping[str, np.ndarray]]
"""Reads one scene (the source's own description of it) onto one tile: band name -> array of tile.shape."""
Finish = Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]]
"""Work on one scene's tile as read (with its halo), e.g. a multilook; returns arrays of the same shape."""


@dataclass(frozen=True)
class _BlockTask:
    """One dask task: one scene on one tile, read through the cache (a dataclass, which dask leaves alone)."""

    read: ReadBlock
    scene: Any
    tile: GeoBox
    """The tile as read: the output tile with `halo` pixels more on every side."""
    key: SceneKey | None
    cache: SceneCache | None
    halo: int = 0
    finish: Finish | None = None

    def __call__(self) -> dict[str, np.ndarray]:
        if self.cache is None or self.key is None:
            bands = dict(self.read(self.scene, self.tile))
        else:
            bands = self.cache.get_or_load(self.key, lambda: self.read(self.scene, self.tile))
        if self.finish is not None:
            bands = dict(self.finish(bands))
        h = self.halo
        return {k: np.ascontiguousarray(v[h:-h, h:-h]) for k, v in bands.items()} if h else bands


def _run(task: _BlockTask) -> dict[str, np.ndarray]:
    return task()


def _band_of(block: Mapping[str, np.ndarray], band: str) -> np.ndarray:
    return block[band][np.newaxis]


def lazy_scenes(
    scenes: Sequence[tuple[str, Any]],
    geobox: GeoBox,
    bands: Sequence[BandSpec],
    *,
    read: ReadBlock,
    chunk_size: int,
    source: str,
    collection: str,
    cache: SceneCache | None,
    halo: int = 0,
    finish: Finish | None = None,
) -> dict[str, da.Array]:
    """Dask arrays (time, y, x) per band: one task per (scene, tile) that reads through the cache.

    scenes: (scene_id, description) in time order; read(description, tile_geobox) returns every band of the
    tile.
    All bands of a scene tile come from one task, so computing them together reads the scene once.
    halo, finish: each tile is read with `halo` more pixels on every side (from the scene, beyond the area's
    edge too), `finish` works on it (e.g. a multilook, which needs the neighbours of the tile's edge pixels)
    and the halo is cut off again: no task depends on another tile's, so dask can stream the tiles.
    """
    tiles = GeoboxTiles(geobox, (chunk_size, chunk_size))
    ny, nx = tiles.shape.y, tiles.shape.x
    ychunks, xchunks = tiles.chunks
    band_names = tuple(b.name for b in bands)
    token = tokenize(
        source,
        collection,
        [s for s, _ in scenes],
        geobox,
        band_names,
        chunk_size,
        cache is not None,
        halo,
        finish,
    )
    load_name = f"load-{collection}-{token}"
    layer: dict[Any, Any] = {}
    for t, (scene_id, scene) in enumerate(scenes):
        for iy in range(ny):
            for ix in range(nx):
                tile = cast(GeoBox, tiles[iy, ix])
                if halo:
                    tile = tile.pad(halo)
                key = SceneKey.on_grid(
                    source=source, collection=collection, scene_id=scene_id, geobox=tile, bands=band_names
                )
                task = _BlockTask(read, scene, tile, key, cache, halo, finish)
                layer[(load_name, t, iy, ix)] = (_run, task)
    graph_layers: dict[str, Any] = {load_name: layer}
    deps: dict[str, set[str]] = {load_name: set()}
    out: dict[str, da.Array] = {}
    nt = len(scenes)
    for b in bands:
        name = f"{b.name}-{token}"
        graph_layers[name] = {
            (name, t, iy, ix): (_band_of, (load_name, t, iy, ix), b.name)
            for t in range(nt)
            for iy in range(ny)
            for ix in range(nx)
        }
        deps[name] = {load_name}
    hlg = HighLevelGraph(graph_layers, deps)
    for b in bands:
        name = f"{b.name}-{token}"
        chunks = ((1,) * nt, tuple(ychunks), tuple(xchunks))
        if nt == 0:
            out[b.name] = da.zeros((0, *geobox.shape), dtype=b.dtype, chunks=(1, chunk_size, chunk_size))
        else:
            out[b.name] = da.Array(hlg, name, chunks=chunks, dtype=np.dtype(b.dtype))
    return out


def scene_dataset(
    arrays: Mapping[str, da.Array],
    geobox: GeoBox,
    times: Sequence[np.datetime64],
    time_coords: Mapping[str, np.ndarray],
    *,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """A (time, y, x) Dataset on geobox (CRS attached) with per-time coordinates."""
    coords: dict[Hashable, Any] = dict(xr_coords(geobox, crs_coord_name="spatial_ref"))
    coords["time"] = ("time", np.asarray(times, dtype="datetime64[ns]"))
    for k, v in time_coords.items():
        coords[k] = ("time", np.asarray(v))
    ds = xr.Dataset(
        {k: (("time", "y", "x"), v) for k, v in arrays.items()}, coords=coords, attrs=dict(attrs or {})
    )
    return ds
