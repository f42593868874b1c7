"""Preprocess: clear-sky masks: a cloud probability (s2cloudless) or SCL, with shadows projected along the sun."""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Sequence
from itertools import product
from typing import Any, Literal

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from numba import njit
from scipy import ndimage

from monitoring.errors import DetectionError
from monitoring.preprocess import shadow
from monitoring.sources.base import (
    OPTICAL_BANDS,
    OPTICAL_CLOUD_PROBABILITY,
    SCL_CIRRUS,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_CLOUD_SHADOW,
    SCL_DARK,
    SCL_NO_DATA,
    SCL_SATURATED,
    SCL_SNOW,
)

CLOUDY_SCL = (SCL_CLOUD_SHADOW, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS)
"""Classes grown by the dilation: SCL misses the thin edges of clouds and their shadows."""
INVALID_SCL = (SCL_NO_DATA, SCL_SATURATED, SCL_DARK, SCL_SNOW)
"""Classes dropped as they are (dark areas are mostly terrain shadow here; no snow on the border)."""
SCL_CASTERS = (SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH)
"""SCL classes whose shadows the sun-direction test looks for. Cirrus is left out: it flies at 8-12 km, so its
shadow would fall beyond the 200-4000 m band searched (shadow.SHADOW_HEIGHTS_M) and is faint anyway, and
Sen2Cor's cirrus class also spreads over bright ground: projecting it would test wide strips of land for
darkness and find nothing but dark land."""
CASTER_SHARE = 0.5
"""A 60 m cell casts a shadow where SCL calls at least half of its pixels cloud: a majority, so that the odd
bright roof Sen2Cor takes for cloud does not cast one, while any cloud larger than a cell does."""

S2CLOUDLESS_BANDS: tuple[str, ...] = ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")
"""The ten L1C top-of-atmosphere bands s2cloudless's model reads, in its order. B10 (cirrus) exists only in L1C,
so an image that has it is top-of-atmosphere, which is what the model was trained on."""
PROB_LAYERS: dict[str, float] = OPTICAL_CLOUD_PROBABILITY
"""Ready cloud-probability layers and their full scale (the source contract's): `cloud_prob` 0-1, Sentinel Hub's
CLP 0-255; the first an image has is used."""
PROB_THRESHOLD = 0.4
"""s2cloudless's default: a cell is cloud where its averaged probability exceeds this."""
CELL_PX = 6
"""The probability and the masks are worked out on 60 m cells (6 x 6 pixels of the 10 m grid): the coarsest
bands the model reads (B01, B09, B10) are 60 m, and s2cloudless's documented post-processing has parameters for
that resolution. Sentinel Hub runs the same model at 160 m; at 10 m it would cost 36 times as much."""
AVERAGE_CELLS = 4
"""Radius (cells) of the disk the probability is averaged over before the threshold: s2cloudless's recommended
average_over at 60 m (240 m; 22 px at 10 m is the same)."""
DILATE_CELLS = 2
"""Radius (cells) the cloud and shadow masks are grown by: s2cloudless's recommended dilation_size at 60 m
(120 m; 11 px at 10 m)."""

DARK_BANDS: tuple[str, ...] = ("B08", "B11")
"""Bands a cell must be dark in to be shadow (see shadow.SHADOW_DARK): NIR and SWIR."""
SCL_DARK_BANDS: tuple[str, ...] = ("B04", *DARK_BANDS)
"""The SCL path also wants the red dark. Shadow takes the direct sun away at every wavelength, and in the red
the diffuse sky is still a small share of the light, so a shaded cell is dark there too; wet ground (flooded
paddy while rice is transplanted, marsh, wet soil) is dark in NIR and SWIR only, as water absorbs beyond 700 nm,
and in the monsoon scenes of benchmarks/cloudmask.py it made most of the clear land the test threw away. The
probability path keeps DARK_BANDS until benchmarks/oscd.py has measured the red test on real scenes."""

Method = Literal["auto", "probability", "scl", "scl+shadow"]


# --- Small array helpers: each takes numpy or dask, over the last two axes (y, x) ---------------------------


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return (xx**2 + yy**2) <= radius**2


def _or_shifted(out: np.ndarray, src: np.ndarray, dy: int, dx: int) -> None:
    """out[..., y, x] |= src[..., y + dy, x + dx] wherever both are inside the last two axes."""
    ny, nx = src.shape[-2:]
    if abs(dy) >= ny or abs(dx) >= nx:
        return
    out[..., max(0, -dy) : ny - max(0, dy), max(0, -dx) : nx - max(0, dx)] |= src[
        ..., max(0, dy) : ny - max(0, -dy), max(0, dx) : nx - max(0, -dx)
    ]


def _dilate_2d(block: np.ndarray, radius: int) -> np.ndarray:
    """Dilate a boolean block in its last two axes only, by a disk of the given radius.

    The disk is a stack of horizontal runs, so the block is grown sideways once per half-width and each run
    shifted up and down: the pixels of ndimage.binary_dilation with the disk (nothing beyond the edges), in
    a dozen whole-array ORs rather than its per-pixel loop over the disk (17x slower at radius 2).
    """
    if radius <= 0:
        return block
    grown = [np.asarray(block, dtype=bool)]  # grown[w]: grown sideways by w pixels
    for w in range(1, radius + 1):
        run = grown[-1].copy()
        _or_shifted(run, grown[0], 0, w)
        _or_shifted(run, grown[0], 0, -w)
        grown.append(run)
    out = grown[radius].copy()
    for dy in range(1, radius + 1):
        run = grown[math.isqrt(radius * radius - dy * dy)]
        _or_shifted(out, run, dy, 0)
        _or_shifted(out, run, -dy, 0)
    return out


def _overlap(arr: Any, fn: Callable[..., np.ndarray], depth: tuple[int, int], **kwargs: Any) -> Any:
    """fn on the whole numpy array, or on each dask block with a halo of `depth` (y, x) pixels.

    At the array's own edges no halo is added (boundary "none"), so every block sees what the whole-array
    call would: the two give the same pixels.
    """
    dtype = kwargs.pop("dtype", None)
    if not isinstance(arr, da.Array):
        return fn(np.asarray(arr), **kwargs)
    dtype = arr.dtype if dtype is None else dtype
    if depth == (0, 0):
        return da.map_blocks(fn, arr, dtype=dtype, **kwargs)
    lead = arr.ndim - 2
    # A halo wider than the array is the whole array; dask refuses the wider one.
    full = {i: 0 for i in range(lead)} | {
        lead: min(depth[0], arr.shape[-2]),
        lead + 1: min(depth[1], arr.shape[-1]),
    }
    return arr.map_overlap(fn, depth=full, boundary="none", dtype=dtype, **kwargs)


@njit(cache=True, nogil=True)
def _cell_means(x: np.ndarray, f: int, out: np.ndarray) -> None:  # pragma: no cover (compiled)
    # Adds in the order numpy's where(isfinite(x), x, 0).sum(axis=(cell rows, cell columns)) takes on the
    # padded (..., cells, f, cells, f) array (each row of a cell from -0.0, then the rows from 0.0), and
    # divides in float64 as float32 / int64 does: the means are bit for bit those of that expression, which
    # this replaces (7x faster: one pass, no padded copy, no temporaries).
    n, h, w = x.shape
    ch, cw = out.shape[1], out.shape[2]
    total = np.empty(cw, np.float32)
    count = np.empty(cw, np.int64)
    for t in range(n):
        for i in range(ch):
            total[:] = 0.0
            count[:] = 0
            for y in range(i * f, min(h, (i + 1) * f)):
                for j in range(cw):
                    row = np.float32(-0.0)
                    for c in range(j * f, min(w, (j + 1) * f)):
                        v = x[t, y, c]
                        if np.isfinite(v):
                            row += v
                            count[j] += 1
                    total[j] += row
            for j in range(cw):
                out[t, i, j] = np.float32(total[j] / np.float64(count[j])) if count[j] > 0 else np.nan


def _block_mean_cells(block: np.ndarray, f: int) -> np.ndarray:
    """NaN-ignoring mean over f x f cells of the last two axes (a partial cell at the end averages what it has)."""
    *lead, h, w = block.shape
    n = math.prod(lead)
    x = np.ascontiguousarray(block, dtype=np.float32).reshape(n, h, w)
    out = np.empty((n, -(-h // f), -(-w // f)), dtype=np.float32)
    _cell_means(x, f, out)
    return out.reshape(*lead, *out.shape[1:])


def _cell_chunk(chunks: Sequence[int], f: int) -> int:
    return max(f, -(-max(chunks) // f) * f)


def to_cells(arr: Any, f: int = CELL_PX) -> Any:
    """Block means over f x f pixels (the last two axes); on dask, blocks are first made multiples of f."""
    if not isinstance(arr, da.Array):
        return _block_mean_cells(np.asarray(arr), f)
    lead = arr.ndim - 2
    aligned = arr.rechunk({lead: _cell_chunk(arr.chunks[lead], f), lead + 1: _cell_chunk(arr.chunks[-1], f)})
    cells = tuple(tuple(-(-c // f) for c in cs) for cs in aligned.chunks[-2:])
    return da.map_blocks(_block_mean_cells, aligned, f, chunks=aligned.chunks[:lead] + cells, dtype="float32")


def _isin(arr: Any, values: tuple[int, ...]) -> Any:
    """Where `arr` holds one of a few `values` (SCL classes): np.isin's pixels, from one equality test per
    value (np.isin sorts or tabulates, 20x slower here); on dask one task per block (da.isin also builds a
    reduction over the values for every block)."""
    if isinstance(arr, da.Array):
        return da.map_blocks(_isin, arr, values, dtype=bool)
    arr = np.asarray(arr)
    out = np.zeros(arr.shape, dtype=bool)
    for v in values:
        out |= arr == v
    return out


def _scl_isin(scl: xr.DataArray, values: tuple[int, ...]) -> xr.DataArray:
    """`scl.isin(values)`, faster (see _isin)."""
    return scl.copy(data=_isin(scl.data, values))


def _stack_float32(*blocks: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(b, dtype=np.float32) for b in blocks])


def _layer_cells(layers: Sequence[Any], f: int = CELL_PX) -> Any:
    """`to_cells` of several layers of one grid at once, stacked on a new first axis.

    On dask one task per block stacks the layers, so that the blocks are cut to whole cells once for all of
    them rather than once for each (the cutting is most of the graph).
    """
    if not any(isinstance(a, da.Array) for a in layers):
        return np.stack([_block_mean_cells(np.asarray(a), f) for a in layers])
    first = da.asarray(layers[0])
    arrays = [da.asarray(a).rechunk(first.chunks) for a in layers]
    chunks = ((len(arrays),), *first.chunks)
    stacked = da.map_blocks(_stack_float32, *arrays, new_axis=0, chunks=chunks, dtype="float32")
    return to_cells(stacked, f)


def _repeat_block(block: np.ndarray, f: int) -> np.ndarray:
    return np.repeat(np.repeat(block, f, axis=-2), f, axis=-1)


def _cells_to_pixels(cells: np.ndarray, f: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Pixels [y0, y1) x [x0, x1) of the grid whose f x f cells `cells` are (the last two axes)."""
    part = _repeat_block(cells[..., y0 // f : -(-y1 // f), x0 // f : -(-x1 // f)], f)
    return part[..., y0 % f : y0 % f + y1 - y0, x0 % f : x0 % f + x1 - x0]


def from_cells(cells: Any, like: Any, f: int = CELL_PX) -> Any:
    """Cells back onto the pixel grid of `like` (nearest), chunked like `like` on dask.

    On dask the cells of each image (1/36 of a band) become one block, and each block of the result is one
    task that cuts its pixels from them: no rechunking of pixels.
    """
    h, w = like.shape[-2:]
    if not isinstance(cells, da.Array):
        return _repeat_block(np.asarray(cells), f)[..., :h, :w]
    lead = cells.ndim - 2
    if isinstance(like, da.Array) and like.ndim == cells.ndim:
        chunks = like.chunks
    else:  # each block of cells gives a block of pixels, the last cut back to the grid's edge
        fine = (
            tuple(min(c * f, n - sum(cs[:i]) * f) for i, c in enumerate(cs))
            for cs, n in zip(cells.chunks[-2:], (h, w), strict=True)
        )
        chunks = (*cells.chunks[:lead], *fine)
    whole = cells.rechunk({**dict(enumerate(chunks[:lead])), lead: -1, lead + 1: -1})
    name = f"from_cells-{tokenize(whole, chunks, f)}"
    starts = [np.cumsum((0, *c)).tolist() for c in chunks[-2:]]
    dsk: dict[Any, Any] = {}
    for idx in product(*(range(len(c)) for c in chunks)):
        iy, ix = idx[-2:]
        rows, cols = starts[0][iy : iy + 2], starts[1][ix : ix + 2]
        dsk[(name, *idx)] = (_cells_to_pixels, (whole.name, *idx[:lead], 0, 0), f, *rows, *cols)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[whole])
    return da.Array(graph, name, chunks=chunks, dtype=cells.dtype)


# --- Cloud probability ---------------------------------------------------------------------------------------

_local = threading.local()


def _detector() -> Any:
    """One s2cloudless detector per thread: LightGBM's Booster is not documented as safe to share."""
    det = getattr(_local, "detector", None)
    if det is None:
        try:
            from s2cloudless import S2PixelCloudDetector
        except ImportError as e:  # pragma: no cover (a hard dependency; this guards a broken install)
            raise DetectionError(
                "s2cloudless is not installed: `pip install s2cloudless` (it ships its LightGBM model), "
                "or pass method='scl'."
            ) from e
        det = _local.detector = S2PixelCloudDetector(all_bands=False)
    return det


def _predict_block(stack: np.ndarray) -> np.ndarray:
    """s2cloudless probability of a (band, ..., y, x) block of TOA reflectance; NaN where a band is missing."""
    k = stack.shape[0]
    flat = stack.reshape(k, -1).T
    ok = np.isfinite(flat).all(axis=1)
    out = np.full(flat.shape[0], np.nan, dtype="float32")
    if ok.any():
        # One thread per call: dask already runs blocks in parallel, and on the shared 2-core machine
        # LightGBM's own threads were slower than one.
        prob = _detector().get_cloud_probability_maps(flat[ok][None, None], num_threads=1)
        out[ok] = prob.reshape(-1)
    return out.reshape(stack.shape[1:])


def _stack(arrays: Sequence[Any], *, one_chunk: bool = False) -> Any:
    """Stack along a new first axis (numpy, or dask if any is); one_chunk keeps that axis in a single chunk."""
    if any(isinstance(a, da.Array) for a in arrays):
        out = da.stack([da.asarray(a) for a in arrays])
        return out.rechunk({0: -1}) if one_chunk else out
    return np.stack([np.asarray(a) for a in arrays])


def probability_source(ds: xr.Dataset) -> str | None:
    """Which cloud probability the image can give: a ready layer's name, 's2cloudless', or None."""
    for name in PROB_LAYERS:
        if name in ds.data_vars:
            return name
    if all(b in ds.data_vars for b in S2CLOUDLESS_BANDS):
        return "s2cloudless"
    return None


def _probability_cells(ds: xr.Dataset, source: str) -> Any:
    """The cloud probability (0-1) on CELL_PX cells: a ready layer averaged, or s2cloudless on averaged bands.

    s2cloudless was trained on single pixels but is run by its authors on averaged ones (Sentinel Hub's
    160 m CLP); it takes L1C reflectance (DN / 10000) of processing baselines before 04.00, or harmonised.
    """
    if source in PROB_LAYERS:
        return to_cells(ds[source].astype("float32").data / np.float32(PROB_LAYERS[source]))
    cells = _stack([to_cells(ds[b].astype("float32").data) for b in S2CLOUDLESS_BANDS], one_chunk=True)
    if isinstance(cells, da.Array):
        return da.map_blocks(_predict_block, cells, drop_axis=0, dtype="float32")
    return _predict_block(cells)


def _require_source(ds: xr.Dataset) -> str:
    source = probability_source(ds)
    if source is None:
        raise DetectionError(
            f"No cloud probability for this image: it has neither a {' nor a '.join(PROB_LAYERS)} layer nor "
            f"all of s2cloudless's L1C bands {list(S2CLOUDLESS_BANDS)} (it has {sorted(map(str, ds.data_vars))}); "
            "use the SCL mask (method='scl')."
        )
    return source


def cloud_probability(ds: xr.Dataset) -> xr.DataArray:
    """Cloud probability 0-1 on the image's grid (constant over each 60 m cell); NaN where bands are missing."""
    source = _require_source(ds)
    like = ds[OPTICAL_BANDS[0]] if OPTICAL_BANDS[0] in ds.data_vars else ds[next(iter(ds.data_vars))]
    data = from_cells(_probability_cells(ds, source), like.data)
    return like.copy(data=data).astype("float32").rename("cloud_prob")


# --- Cloud and shadow on cells ---------------------------------------------------------------------------


def _disk_mean(block: np.ndarray, radius: int) -> np.ndarray:
    """NaN-ignoring mean over a disk (normalised convolution): no-data neither counts as cloud nor as clear."""
    disk = _disk(radius).astype("float32")
    disk = disk.reshape((1,) * (block.ndim - 2) + disk.shape)
    valid = np.isfinite(block)
    num = ndimage.convolve(np.where(valid, block, 0.0).astype("float32"), disk, mode="constant")
    den = ndimage.convolve(valid.astype("float32"), disk, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid, num / den, np.nan).astype("float32")


def _cloud_cells(prob: Any) -> Any:
    avg = _overlap(prob, _disk_mean, (AVERAGE_CELLS, AVERAGE_CELLS), radius=AVERAGE_CELLS, dtype="float32")
    return avg > PROB_THRESHOLD


def _nanmedian_block(block: np.ndarray) -> np.ndarray:
    # A date without clear land (overcast) has no reference: NaN, which no cell is darker than; not a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(block, axis=(-2, -1), keepdims=True).astype(block.dtype)


def _on_date(fn: Callable[..., np.ndarray], cells: Any, *masks: Any, **kwargs: Any) -> Any:
    """fn(cells, *masks, **kwargs) on every cell of one date at once: (k, y, x) layers and (y, x) masks in,
    a (y, x) boolean out. On dask the inputs become one block each and fn one task: the clear-land median
    needs the whole date anyway, and then the projection along the sun and the growth need no halos."""
    if not isinstance(cells, da.Array) and not any(isinstance(m, da.Array) for m in masks):
        return fn(np.asarray(cells), *map(np.asarray, masks), **kwargs)
    args: list[Any] = [da.asarray(cells).rechunk(-1), "kyx"]
    for m in masks:
        args += [da.asarray(m).rechunk(-1), "yx"]
    meta = np.empty((0, 0), dtype=bool)
    return da.blockwise(fn, "yx", *args, concatenate=True, meta=meta, **kwargs)


def _shadow_cells(
    cells: np.ndarray,
    cloud: np.ndarray,
    *,
    not_shadow: np.ndarray,
    not_land: np.ndarray,
    names: tuple[str, ...],
    dark_bands: tuple[str, ...],
    offsets: np.ndarray,
) -> np.ndarray:
    """Cells of one date in the projection band of the `cloud` cells and dark in every one of `dark_bands`
    relative to clear land (darker than shadow.SHADOW_DARK times its median there), grown by DILATE_CELLS.

    `cells` holds the mean of each band of `names` (see `_shadow_bands`). `not_land` cells (clouds and their
    rims, flagged shadow) stay out of the clear-land reference; `not_shadow` cells are never called shadow.
    """
    band = dict(zip(names, cells, strict=True))
    clear_land = ~not_land
    if "B03" in band:  # open water (NDWI > 0: green above NIR) is dark in its own right, not land
        clear_land = clear_land & ~(band["B03"] > band["B08"])
    dark = shadow.project_along_sun(cloud, offsets) & ~not_shadow
    for b in dark_bands:
        dark = dark & (band[b] < shadow.SHADOW_DARK * _nanmedian_block(np.where(clear_land, band[b], np.nan)))
    return _dilate_2d(dark, DILATE_CELLS)


def _shadow_bands(ds: xr.Dataset, dark_bands: tuple[str, ...]) -> tuple[str, ...]:
    """The bands `_shadow_cells` reads: `dark_bands`, B08 (for open water) and B03 where the image has it."""
    return tuple(dict.fromkeys((*dark_bands, "B08", *(("B03",) if "B03" in ds.data_vars else ()))))


def _sun_offsets(ds: xr.Dataset, dark_bands: tuple[str, ...]) -> tuple[np.ndarray | None, str]:
    """The shadow offsets (shadow.shadow_offsets) on CELL_PX cells of a single-date image, and a note on the
    sun; None, with the reason in the note, where the image has no sun angles or lacks a band of dark_bands."""
    angles = shadow.sun_angles(ds)
    if angles is None:
        return None, "no sun angles: no shadow test"
    missing = [b for b in dark_bands if b not in ds.data_vars]
    if missing:
        return None, f"no {'/'.join(missing)} to test darkness: no shadow test"
    px = shadow.pixel_size_m(ds)
    offsets = shadow.shadow_offsets(angles, (px[0] * CELL_PX, px[1] * CELL_PX))
    return offsets, f"sun azimuth {angles[0]:.1f} deg, zenith {angles[1]:.1f} deg"


def _none_like(like: Any) -> Any:
    if isinstance(like, da.Array):
        return da.zeros(like.shape, dtype=bool, chunks=like.chunks)
    return np.zeros(like.shape, dtype=bool)


def _like(ds: xr.Dataset, fallback: str) -> xr.DataArray:
    """The layer whose grid and chunks the masks take: the first optical band, else `fallback`."""
    return ds[OPTICAL_BANDS[0]] if OPTICAL_BANDS[0] in ds.data_vars else ds[fallback]


def _probability_shadow(
    cells: np.ndarray, cloud: np.ndarray, grown: np.ndarray, *, names: tuple[str, ...], offsets: np.ndarray
) -> np.ndarray:
    """Shadow cells of the probability path: its clouds cast, their grown rims are neither land nor shadow."""
    shade = _shadow_cells(
        cells, cloud, not_shadow=grown, not_land=grown, names=names, dark_bands=DARK_BANDS, offsets=offsets
    )
    return shade & ~grown


def _date_masks(ds: xr.Dataset, source: str, *, shadows: bool) -> tuple[tuple[Any, ...], str]:
    """(cloud, shadow) booleans on the 10 m grid of one single-date (y, x) image, and a note on the sun."""
    prob = _probability_cells(ds, source)
    cloud = _cloud_cells(prob)
    grown = _overlap(cloud, _dilate_2d, (DILATE_CELLS, DILATE_CELLS), radius=DILATE_CELLS, dtype=bool)
    like = _like(ds, source).data
    offsets, note = _sun_offsets(ds, DARK_BANDS) if shadows else (None, "shadow test off")
    if offsets is None:
        return (from_cells(grown, like), _none_like(like)), note
    names = _shadow_bands(ds, DARK_BANDS)
    cells = _layer_cells([ds[b].data for b in names])
    shade = _on_date(_probability_shadow, cells, cloud, grown, names=names, offsets=offsets)
    return (from_cells(grown, like), from_cells(shade, like)), note


def _scl_shadow(cells: np.ndarray, *, names: tuple[str, ...], offsets: np.ndarray) -> np.ndarray:
    """Shadow cells of SCL's clouds: `cells` holds the share of SCL_CASTERS pixels, of CLOUDY_SCL pixels,
    then the bands of `names`."""
    casters = cells[0] >= CASTER_SHARE
    # Any flagged pixel keeps a cell out of the clear-land reference: clouds, cirrus and SCL's own shadows
    # would pull the median down and make the test stricter than "half as bright as sunlit land".
    flagged = cells[1] > 0
    return _shadow_cells(
        cells[2:],
        casters,
        not_shadow=casters,
        not_land=flagged,
        names=names,
        dark_bands=SCL_DARK_BANDS,
        offsets=offsets,
    )


def _scl_shadow_date(ds: xr.Dataset) -> tuple[tuple[Any, ...], str]:
    """The sun-direction shadow of SCL's clouds on the 10 m grid of one single-date (y, x) image, and a note."""
    like = _like(ds, "SCL").data
    offsets, note = _sun_offsets(ds, SCL_DARK_BANDS)
    if offsets is None:
        return (_none_like(like),), note
    names = _shadow_bands(ds, SCL_DARK_BANDS)
    scl = ds["SCL"].data
    cells = _layer_cells([_isin(scl, SCL_CASTERS), _isin(scl, CLOUDY_SCL), *(ds[b].data for b in names)])
    shade = _on_date(_scl_shadow, cells, names=names, offsets=offsets)
    return (from_cells(shade, like),), note


def _per_date(
    ds: xr.Dataset, fn: Callable[[xr.Dataset], tuple[tuple[Any, ...], str]], like: xr.DataArray, n: int
) -> tuple[list[Any], str]:
    """fn's n layers for each date of a (time, y, x) image, stacked over time (or of a (y, x) image), on the
    chunks of `like`, and fn's notes joined. Each date has its own sun and clear-land median: never mixed."""
    if "time" not in ds.dims:
        layers, note = fn(ds)
        out = list(layers)
    elif ds.sizes["time"] == 0:
        out, note = [like.data.astype(bool)] * n, ""
    else:
        parts = [fn(ds.isel(time=i)) for i in range(ds.sizes["time"])]
        out = [_stack([p[0][k] for p in parts]) for k in range(n)]
        note = "; ".join(p[1] for p in parts)
    if isinstance(like.data, da.Array):
        out = [da.asarray(o).rechunk(like.data.chunks) for o in out]
    return out, note


def cloud_shadow_masks(ds: xr.Dataset, *, shadows: bool = True) -> xr.Dataset:
    """Boolean `cloud` and `shadow` layers from a cloud probability, on the image's grid and chunks.

    Clouds: the probability (a ready `cloud_prob`/`CLP` layer, else s2cloudless on the L1C bands) averaged over
    a 240 m disk, above 0.4, grown by 120 m: s2cloudless's documented post-processing, on 60 m cells.
    Shadows (with `shadows` and known sun angles, see `shadow.sun_angles`): cells that clouds at 200-4000 m
    would shade, projected along the sun's azimuth by h·tan(zenith), and that are darker than half the scene's
    clear-land median in both NIR and SWIR; grown by 120 m. Works per date on (y, x) or (time, y, x), lazily
    on dask. attrs["sun"] says which sun angles were used.
    """
    source = _require_source(ds)
    like = _like(ds, source)
    (cloud, shade), notes = _per_date(ds, lambda one: _date_masks(one, source, shadows=shadows), like, 2)
    return xr.Dataset(
        {"cloud": like.copy(data=cloud).astype(bool), "shadow": like.copy(data=shade).astype(bool)},
        attrs={"cloud_source": source, "sun": notes},
    )


def scl_shadow_mask(ds: xr.Dataset) -> xr.DataArray:
    """Boolean `shadow`: where SCL's clouds shade the ground, found along the sun as `cloud_shadow_masks` does.

    For L2A images without a cloud probability. Sen2Cor's own shadow class misses shadows (and its cloud class
    the thin edges, which its dilation covers), so the clouds it does flag (medium and high probability, not
    cirrus: see SCL_CASTERS) are projected along the sun's azimuth for cloud bases at 200-4000 m, on 60 m
    cells, and the cells there darker than half the scene's clear-land median in red, NIR and SWIR are shadow
    (the red keeps flooded fields out: SCL_DARK_BANDS), grown by 120 m. The cells, projection, reference and
    growth are those of the probability path. Per date, lazily on dask; all False (attrs["sun"] says why)
    without sun angles or without B04/B08/B11.
    """
    if "SCL" not in ds.data_vars:
        raise DetectionError(
            f"No SCL layer to project shadows from (the image has {sorted(map(str, ds.data_vars))}); "
            "give SCL, or use cloud_shadow_masks with a cloud probability."
        )
    like = _like(ds, "SCL")
    (shade,), notes = _per_date(ds, _scl_shadow_date, like, 1)
    return like.copy(data=shade).astype(bool).rename("shadow").assign_attrs(sun=notes)


# --- Clear mask ----------------------------------------------------------------------------------------------


def _scl_cloudy(ds: xr.Dataset, dilate_px: int) -> xr.DataArray:
    cloudy = _scl_isin(ds["SCL"], CLOUDY_SCL)
    if dilate_px > 0:
        data = _overlap(cloudy.data, _dilate_2d, (dilate_px, dilate_px), radius=dilate_px, dtype=bool)
        cloudy = cloudy.copy(data=data)
    return cloudy


def clear_mask(ds: xr.Dataset, *, dilate_px: int = 2, method: Method = "auto") -> xr.DataArray:
    """True where a pixel is clear: not cloud, cirrus, shadow or no data.

    method "scl" reads the scene classification alone, exactly as Sen2Cor wrote it: cloud, cirrus and shadow
    classes grown by dilate_px pixels, no-data, saturated, dark and snow dropped as they are. "scl+shadow" adds
    the shadows of SCL's clouds found along the sun (`scl_shadow_mask`): Sen2Cor misses part of them.
    "probability" uses `cloud_shadow_masks` (a cloud probability and shadows projected along the sun), and SCL
    on top where the image has it. "auto" (default) takes "probability" where the image has a probability
    layer or s2cloudless's L1C bands, else "scl+shadow" (the same as "scl" on an image without sun angles
    or without B04/B08/B11).
    """
    use_prob = method == "probability" or (method == "auto" and probability_source(ds) is not None)
    if not use_prob and "SCL" not in ds.data_vars:
        raise DetectionError(
            f"No cloud information in this image: no SCL layer (it has {sorted(map(str, ds.data_vars))}); "
            "give SCL, a cloud_prob/CLP layer or the L1C bands s2cloudless needs."
        )
    valid = xr.ones_like(ds[OPTICAL_BANDS[0]], dtype=bool)
    unclear = xr.zeros_like(valid)
    if "SCL" in ds.data_vars:
        valid = valid & ~_scl_isin(ds["SCL"], INVALID_SCL)
        unclear = unclear | _scl_cloudy(ds, dilate_px)
    if use_prob:
        masks = cloud_shadow_masks(ds)
        unclear = unclear | masks["cloud"] | masks["shadow"]
    elif method in ("auto", "scl+shadow"):
        unclear = unclear | scl_shadow_mask(ds)
    for b in OPTICAL_BANDS:
        valid = valid & ds[b].notnull()
    return (valid & ~unclear).rename("clear")


def mask_clouds(ds: xr.Dataset, *, dilate_px: int = 2, method: Method = "auto") -> xr.Dataset:
    """The optical bands with every unclear pixel set to NaN, plus the boolean `clear` layer (see clear_mask)."""
    clear = clear_mask(ds, dilate_px=dilate_px, method=method)
    out = xr.Dataset({b: ds[b].where(clear) for b in OPTICAL_BANDS}, attrs=ds.attrs)
    out["clear"] = clear
    return out
