"""Tests of the on-disk scene cache: hits and misses, LRU eviction under the limit, concurrent writers."""

from __future__ import annotations

import functools
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
from dask.core import get_dependencies
from odc.geo.geobox import GeoBox

from monitoring.config import CacheSettings
from monitoring.errors import SourceError
from monitoring.preprocess.multilook import multilook_tile
from monitoring.sources.cache import BandSpec, SceneCache, SceneKey, lazy_scenes, scene_dataset

GRID = GeoBox.from_bbox((465000, 1590000, 466000, 1591000), crs="EPSG:32648", resolution=10)  # 100 x 100


def key(scene: str, *, geobox: GeoBox = GRID, bands: tuple[str, ...] = ("B04", "SCL")) -> SceneKey:
    return SceneKey.on_grid(source="test", collection="s2", scene_id=scene, geobox=geobox, bands=bands)


def arrays(value: float, shape: tuple[int, int] = (100, 100)) -> dict[str, np.ndarray]:
    return {"B04": np.full(shape, value, np.float32), "SCL": np.full(shape, int(value) % 12, np.uint8)}


ENTRY = 100 * 100 * 5 + 1000  # about one entry on disk: float32 + uint8 per pixel, plus the zip and key


def test_miss_then_hit(tmp_path: Path) -> None:
    cache = SceneCache(tmp_path, max_bytes=10**8)
    calls: list[int] = []

    def loader() -> dict[str, np.ndarray]:
        calls.append(1)
        return arrays(3.0)

    a = cache.get_or_load(key("s1"), loader)
    b = cache.get_or_load(key("s1"), loader)
    assert len(calls) == 1 and cache.stats.hits == 1 and cache.stats.misses == 1
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        assert a[name].dtype == b[name].dtype
    # Another grid, another band list or another scene is another entry.
    cache.get_or_load(key("s1", geobox=GRID[:50, :50]), lambda: arrays(3.0, (50, 50)))
    cache.get_or_load(key("s1", bands=("B04",)), lambda: {"B04": np.zeros((100, 100), np.float32)})
    assert cache.stats.misses == 3


def test_keys_name_the_grid() -> None:
    k = key("s1")
    assert k.crs == "EPSG:32648" and k.shape == (100, 100) and k.transform[0] == 10.0
    assert key("s1").digest() == k.digest() != key("s2").digest()


def test_eviction_keeps_the_folder_under_the_limit(tmp_path: Path) -> None:
    cache = SceneCache(tmp_path, max_bytes=int(3.5 * ENTRY))
    for i in range(3):
        cache.get_or_load(key(f"s{i}"), lambda i=i: arrays(float(i)))
        time.sleep(0.02)  # distinct modification times: LRU order is by last use
    cache.get_or_load(key("s0"), lambda: pytest.fail("s0 should be a hit"))  # s0 is now the most recent
    time.sleep(0.02)
    for i in (3, 4):
        cache.get_or_load(key(f"s{i}"), lambda i=i: arrays(float(i)))
        assert cache.size_bytes() <= cache.max_bytes
        time.sleep(0.02)
    # Least recently used went first: s1 and s2, not s0 (the oldest written, but used since).
    kept = {p.stem for p, _, _ in cache.entries()}
    assert {key(s).digest() for s in ("s0", "s3", "s4")} == kept
    assert cache.stats.evicted == 2


def test_an_entry_larger_than_the_limit_is_not_kept(tmp_path: Path) -> None:
    cache = SceneCache(tmp_path, max_bytes=ENTRY // 2)
    out = cache.get_or_load(key("big"), lambda: arrays(1.0))
    assert out["B04"].shape == (100, 100) and cache.size_bytes() == 0


def test_torn_entry_is_reloaded(tmp_path: Path) -> None:
    cache = SceneCache(tmp_path, max_bytes=10**8)
    cache.get_or_load(key("s1"), lambda: arrays(1.0))
    (path,) = [p for p, _, _ in cache.entries()]
    path.write_bytes(path.read_bytes()[:100])  # what a full disk or a killed writer without rename leaves
    out = cache.get_or_load(key("s1"), lambda: arrays(2.0))
    assert out["B04"][0, 0] == 2.0 and cache.stats.misses == 2


def test_threads_loading_one_key_load_it_once(tmp_path: Path) -> None:
    cache = SceneCache(tmp_path, max_bytes=10**8)
    calls: list[int] = []
    lock = threading.Lock()

    def loader() -> dict[str, np.ndarray]:
        with lock:
            calls.append(1)
        time.sleep(0.1)  # a slow download: the others wait on the key's lock, then hit
        return arrays(7.0)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: cache.get_or_load(key("s"), loader), range(8)))
    assert len(calls) == 1
    assert all(np.array_equal(r["B04"], results[0]["B04"]) for r in results)


def _hammer(folder: str, worker: int, rounds: int) -> int:
    """Load three keys over and over through a cache so small that writes and evictions never stop; return the
    number of loads that came back with the wrong or torn content."""
    cache = SceneCache(folder, max_bytes=int(1.5 * ENTRY))
    bad = 0
    for r in range(rounds):
        i = (r + worker) % 3
        out = cache.get_or_load(key(f"s{i}"), lambda i=i: arrays(float(i)))
        if out["B04"].shape != (100, 100) or not (out["B04"] == i).all() or not (out["SCL"] == i).all():
            bad += 1
    return bad


def test_processes_sharing_a_folder_never_see_torn_entries(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(3, mp_context=ctx) as pool:
        bad = list(pool.map(_hammer, [str(tmp_path)] * 3, range(3), [60] * 3))
    assert bad == [0, 0, 0]
    assert not [p for p in tmp_path.rglob(".tmp-*")], "temp files left behind"
    cache = SceneCache(tmp_path, max_bytes=10**8)
    for p, _, _ in cache.entries():
        with np.load(p) as z:
            assert {"B04", "SCL", "__key__"} <= set(z.files)


def test_search_results_expire(tmp_path: Path) -> None:
    cache = SceneCache(tmp_path, max_bytes=10**8)
    q: dict[str, Any] = {"url": "http://x", "bbox": [1, 2, 3, 4]}
    assert cache.get_or_load_json(q, lambda: [1, 2], max_age_s=60) == [1, 2]
    assert cache.get_or_load_json(q, lambda: pytest.fail("cached"), max_age_s=60) == [1, 2]
    assert cache.get_or_load_json(q, lambda: [3], max_age_s=0) == [3]


def test_settings(tmp_path: Path) -> None:
    assert SceneCache.from_settings(CacheSettings(enabled=False)) is None
    c = SceneCache.from_settings(CacheSettings(folder="c", max_gb=0.5), base=tmp_path)
    assert c is not None and c.folder == tmp_path / "c" and c.max_bytes == 500_000_000
    with pytest.raises(SourceError, match="max_gb"):
        SceneCache(tmp_path, max_bytes=0)


@pytest.mark.parametrize("use_cache", [False, True])
def test_lazy_scenes_read_each_scene_tile_once(tmp_path: Path, use_cache: bool) -> None:
    reads: list[tuple[str, tuple[int, int]]] = []

    def read(scene: str, tile: GeoBox) -> dict[str, np.ndarray]:
        reads.append((scene, tile.shape))
        v = float(scene[-1])
        return {"B04": np.full(tile.shape, v, np.float32), "SCL": np.full(tile.shape, 4, np.uint8)}

    cache = SceneCache(tmp_path, max_bytes=10**8) if use_cache else None
    scenes = [("a1", "a1"), ("a2", "a2")]
    bands = [BandSpec("B04", "float32"), BandSpec("SCL", "uint8")]
    arr = lazy_scenes(scenes, GRID, bands, read=read, chunk_size=64, source="t", collection="c", cache=cache)
    times = [np.datetime64("2025-12-01"), np.datetime64("2025-12-02")]
    ds = scene_dataset(arr, GRID, times, {"scene_id": np.array(["a1", "a2"], dtype=object)})
    assert not reads, "nothing is read before compute"
    assert ds["B04"].chunks == ((1, 1), (64, 36), (64, 36)) and ds.odc.geobox == GRID
    v = ds.compute()
    assert len(reads) == 2 * 4  # two scenes x four tiles, both bands from one read
    assert (v["B04"].values[1] == 2.0).all() and v["SCL"].dtype == np.uint8
    empty = lazy_scenes([], GRID, bands, read=read, chunk_size=64, source="t", collection="c", cache=cache)
    assert empty["B04"].shape == (0, 100, 100)


def _field(tile: GeoBox) -> dict[str, np.ndarray]:
    """A scene defined by coordinates, so any tile of it, with or without a margin, has the same pixels."""
    x = np.asarray(tile.coords["x"].values)[None, :]
    y = np.asarray(tile.coords["y"].values)[:, None]
    vv = (1.0 + np.sin(x / 37.0) * np.cos(y / 53.0) + ((x * 7 + y * 3) % 11) / 11.0).astype(np.float32)
    valid = ((x + 2 * y) % 70) > 7  # stripes of layover / shadow
    return {"VV": vv, "VH": vv / 4, "valid": valid}


@pytest.mark.parametrize("use_cache", [False, True])
def test_lazy_scenes_halo_reads_each_tile_with_its_margin(tmp_path: Path, use_cache: bool) -> None:
    reads: list[tuple[int, int]] = []

    def read(scene: str, tile: GeoBox) -> dict[str, np.ndarray]:
        reads.append(tuple(tile.shape))
        return _field(tile)

    cache = SceneCache(tmp_path, max_bytes=10**8) if use_cache else None
    bands = [BandSpec("VV", "float32"), BandSpec("VH", "float32"), BandSpec("valid", "bool")]
    arr = lazy_scenes(
        [("s1", "s1")],
        GRID,
        bands,
        read=read,
        chunk_size=64,
        source="t",
        collection="c",
        cache=cache,
        halo=1,
        finish=functools.partial(multilook_tile, radius=1),
    )
    assert arr["VV"].chunks == ((1,), (64, 36), (64, 36))
    # No tile's task depends on another tile's: dask can stream the tiles.
    graph = dict(arr["VV"].__dask_graph__())
    for row in arr["VV"].__dask_keys__()[0]:
        for k in row:
            (load,) = get_dependencies(graph, k)
            assert load[1:] == k[1:] and not get_dependencies(graph, load)
    out = {k: np.asarray(v)[0] for k, v in zip(arr, dask.compute(*arr.values()), strict=True)}
    assert sorted(reads) == sorted([(66, 66), (66, 38), (38, 66), (38, 38)])
    # The same as multilooking the whole area read with the margin, then cutting the margin off.
    whole = multilook_tile(_field(GRID.pad(1)), radius=1)
    for b in ("VV", "VH", "valid"):
        np.testing.assert_array_equal(out[b], whole[b][1:-1, 1:-1])
    np.testing.assert_array_equal(out["valid"], _field(GRID)["valid"])  # kept as read
