"""Preprocess: clear-sky masks: a cloud probability (s2cloudless) with shadows projected along the sun, else SCL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

import dask.array as da
import numpy as np
import xarray as xr
from scipy import ndimage

from monitoring.errors import DetectionError
from monitoring.preprocess import shadow
from monitoring.sources.base import (
    OPTICAL_BANDS,
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

S2CLOUDLESS_BANDS: tuple[str, ...] = ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")
"""The ten L1C top-of-atmosphere bands s2cloudless's model reads, in its order. B10 (cirrus) exists only in L1C,
so an image that has it is top-of-atmosphere, which is what the model was trained on."""
PROB_LAYERS: dict[str, float] = {"cloud_prob": 1.0, "CLP": 255.0}
"""Ready cloud-probability layers and their full scale: `cloud_prob` 0-1, Sentinel Hub's CLP 0-255."""
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

Method = Literal["auto", "probability", "scl"]


# --- Small array helpers: each takes numpy or dask, over the last two axes (y, x) ---------------------------


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    return (xx**2 + yy**2) <= radius**2


def _dilate_2d(block: np.ndarray, radius: int) -> np.ndarray:
    """Dilate a boolean block in its last two axes only, by a disk of the given radius."""
    if radius <= 0:
        return block
    disk = _disk(radius)
    return ndimage.binary_dilation(block, structure=disk.reshape((1,) * (block.ndim - 2) + disk.shape))


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


def _block_mean_cells(block: np.ndarray, f: int) -> np.ndarray:
    """NaN-ignoring mean over f x f cells of the last two axes (a partial cell at the end averages what it has)."""
    *lead, h, w = block.shape
    ch, cw = -(-h // f), -(-w // f)
    pad = [(0, 0)] * len(lead) + [(0, ch * f - h), (0, cw * f - w)]
    x = np.pad(block.astype("float32"), pad, constant_values=np.nan).reshape(*lead, ch, f, cw, f)
    valid = np.isfinite(x)
    n = valid.sum(axis=(-3, -1))
    total = np.where(valid, x, 0.0).sum(axis=(-3, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / n, np.nan).astype("float32")


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


def _repeat_block(block: np.ndarray, f: int, block_info: dict[Any, Any] | None = None) -> np.ndarray:
    out = np.repeat(np.repeat(block, f, axis=-2), f, axis=-1)
    if block_info is not None:  # the last block of a row or column is cut back to the image's edge
        h, w = block_info[None]["chunk-shape"][-2:]
        out = out[..., :h, :w]
    return out


def from_cells(cells: Any, like: Any, f: int = CELL_PX) -> Any:
    """Cells back onto the pixel grid of `like` (nearest), chunked like `like` on dask."""
    h, w = like.shape[-2:]
    if not isinstance(cells, da.Array):
        return _repeat_block(np.asarray(cells), f)[..., :h, :w]
    lead = cells.ndim - 2
    fine = tuple(
        tuple(min(c * f, n - sum(cs[:i]) * f) for i, c in enumerate(cs))
        for cs, n in zip(cells.chunks[-2:], (h, w), strict=True)
    )
    out = da.map_blocks(_repeat_block, cells, f, chunks=cells.chunks[:lead] + fine, dtype=cells.dtype)
    return out.rechunk(like.chunks) if isinstance(like, da.Array) else out


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


def _median(values: Any) -> Any:
    """NaN-ignoring median over the last two axes (lazy on dask: the cells of one image, 1/36 of a band)."""
    if isinstance(values, da.Array):
        return da.nanmedian(values, axis=(-2, -1), keepdims=True)
    with np.errstate(all="ignore"):
        return np.nanmedian(values, axis=(-2, -1), keepdims=True) if np.isfinite(values).any() else np.nan


def _shadow_cells(
    ds: xr.Dataset, cloud: Any, grown: Any, angles: shadow.SunAngles, cell_m: tuple[float, float]
) -> Any:
    """Cells in the projection band of the clouds that are dark in NIR and SWIR relative to clear land."""
    offsets = shadow.shadow_offsets(angles, cell_m)
    if offsets.size == 0:
        return grown & False
    band = _overlap(cloud, _project, shadow.reach(offsets), offsets=offsets, dtype=bool)
    nir, swir = to_cells(ds["B08"].astype("float32").data), to_cells(ds["B11"].astype("float32").data)
    clear_land = ~grown
    if "B03" in ds.data_vars:  # open water (NDWI > 0: green above NIR) is dark in its own right, not land
        clear_land = clear_land & ~(to_cells(ds["B03"].astype("float32").data) > nir)
    ref_nir = _median(_where(clear_land, nir))
    ref_swir = _median(_where(clear_land, swir))
    dark = (nir < shadow.SHADOW_DARK * ref_nir) & (swir < shadow.SHADOW_DARK * ref_swir)
    return band & dark & ~grown


def _where(cond: Any, values: Any) -> Any:
    return da.where(cond, values, np.nan) if isinstance(values, da.Array) else np.where(cond, values, np.nan)


def _project(block: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return shadow.project_along_sun(block, offsets)


def _date_masks(ds: xr.Dataset, source: str, *, shadows: bool) -> tuple[Any, Any, str]:
    """(cloud, shadow) booleans on the 10 m grid of one single-date (y, x) image, and a note on the sun."""
    prob = _probability_cells(ds, source)
    cloud = _cloud_cells(prob)
    grown = _overlap(cloud, _dilate_2d, (DILATE_CELLS, DILATE_CELLS), radius=DILATE_CELLS, dtype=bool)
    angles = shadow.sun_angles(ds) if shadows else None
    shade = grown & False
    if not shadows:
        note = "shadow test off"
    elif angles is None:
        note = "no sun angles: no shadow test"
    elif not {"B08", "B11"} <= set(map(str, ds.data_vars)):
        note = "no B08/B11 to test darkness: no shadow test"
    else:
        px = shadow.pixel_size_m(ds)
        cell_m = (px[0] * CELL_PX, px[1] * CELL_PX)
        core = _shadow_cells(ds, cloud, grown, angles, cell_m)
        shade = _overlap(core, _dilate_2d, (DILATE_CELLS, DILATE_CELLS), radius=DILATE_CELLS, dtype=bool)
        note = f"sun azimuth {angles[0]:.1f} deg, zenith {angles[1]:.1f} deg"
    like = ds[OPTICAL_BANDS[0]].data if OPTICAL_BANDS[0] in ds.data_vars else ds[source].data
    return from_cells(grown, like), from_cells(shade & ~grown, like), note


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
    if "time" in ds.dims:
        parts = [_date_masks(ds.isel(time=i), source, shadows=shadows) for i in range(ds.sizes["time"])]
        cloud, shade = _stack([p[0] for p in parts]), _stack([p[1] for p in parts])
        notes = "; ".join(p[2] for p in parts)
    else:
        cloud, shade, notes = _date_masks(ds, source, shadows=shadows)
    like = ds[OPTICAL_BANDS[0]] if OPTICAL_BANDS[0] in ds.data_vars else ds[source]
    if isinstance(like.data, da.Array) and isinstance(cloud, da.Array):
        cloud, shade = cloud.rechunk(like.data.chunks), shade.rechunk(like.data.chunks)
    return xr.Dataset(
        {"cloud": like.copy(data=cloud).astype(bool), "shadow": like.copy(data=shade).astype(bool)},
        attrs={"cloud_source": source, "sun": notes},
    )


# --- Clear mask ----------------------------------------------------------------------------------------------


def _scl_cloudy(ds: xr.Dataset, dilate_px: int) -> xr.DataArray:
    cloudy = ds["SCL"].isin(CLOUDY_SCL)
    if dilate_px > 0:
        data = _overlap(cloudy.data, _dilate_2d, (dilate_px, dilate_px), radius=dilate_px, dtype=bool)
        cloudy = cloudy.copy(data=data)
    return cloudy


def clear_mask(ds: xr.Dataset, *, dilate_px: int = 2, method: Method = "auto") -> xr.DataArray:
    """True where a pixel is clear: not cloud, cirrus, shadow or no data.

    method "scl" reads the scene classification: cloud, cirrus and shadow classes grown by dilate_px pixels,
    no-data, saturated, dark and snow dropped as they are. "probability" uses `cloud_shadow_masks` (a cloud
    probability and shadows projected along the sun), and SCL on top where the image has it. "auto" (default)
    takes "probability" where the image has a probability layer or s2cloudless's L1C bands, else "scl": an
    image with only the six L2A bands and SCL is masked exactly as before.
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
        valid = valid & ~ds["SCL"].isin(INVALID_SCL)
        unclear = unclear | _scl_cloudy(ds, dilate_px)
    if use_prob:
        masks = cloud_shadow_masks(ds)
        unclear = unclear | masks["cloud"] | masks["shadow"]
    for b in OPTICAL_BANDS:
        valid = valid & ds[b].notnull()
    return (valid & ~unclear).rename("clear")


def mask_clouds(ds: xr.Dataset, *, dilate_px: int = 2, method: Method = "auto") -> xr.Dataset:
    """The optical bands with every unclear pixel set to NaN, plus the boolean `clear` layer (see clear_mask)."""
    clear = clear_mask(ds, dilate_px=dilate_px, method=method)
    out = xr.Dataset({b: ds[b].where(clear) for b in OPTICAL_BANDS}, attrs=ds.attrs)
    out["clear"] = clear
    return out
