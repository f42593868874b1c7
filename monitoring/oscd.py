"""Evaluate: unsupervised change detectors against OSCD, labelled Sentinel-2 pairs (Daudt et al. 2018)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import rasterio
import rasterio.errors
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject
from rasterio.warp import transform as transform_coords

from monitoring.detect.multivariate import cva, detect_multivariate_change, irmad, otsu_threshold
from monitoring.errors import ConfigError, SourceError
from monitoring.preprocess.cloudmask import cloud_shadow_masks
from monitoring.preprocess.coregister import estimate_shift
from monitoring.preprocess.shadow import sentinel2_sun_angles

BANDS: tuple[str, ...] = (
    *("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08"),
    *("B8A", "B09", "B10", "B11", "B12"),
)
"""The 13 Sentinel-2 bands, one GeoTIFF per band and date; 20 m and 60 m bands at their native size."""
TEN_M_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08")
"""The 10 m bands: the co-registration is measured on them."""
REFERENCE_BAND = "B02"
"""A 10 m band of imgs_1: its grid is the label's grid, onto which everything else is resampled."""
MAX_SHIFT_PX = 8
"""imgs_2 may be a few pixels larger or smaller than imgs_1; more than this means the wrong files."""
MAX_MISREGISTRATION_PX = 1.5
"""A measured shift between the dates beyond this (either axis) is not Sentinel-2's misregistration, which
stayed within about a pixel even before its geometric refinement, but a correlation peak that a large change
or a scene without texture pulled away: it is reported as not measured and never applied."""
PIXEL_CRS = CRS.from_epsg(3857)
"""Stand-in CRS for files without georeference, so that they are aligned in pixel space."""
LAYOUT = (
    "the OSCD layout needs images/<city>/imgs_1/*_B01.tif … *_B12.tif, *_B8A.tif, the same under imgs_2/, "
    "and labels/<city>/<city>-cm.tif (see README)"
)


class OSCDError(SourceError):
    """An OSCD city cannot be read: a file is missing, unreadable or does not fit (the message names it)."""


class OSCDFileNotFoundError(OSCDError, FileNotFoundError):
    """A file or folder the OSCD layout needs is not there."""


class _Grid(NamedTuple):
    shape: tuple[int, int]
    transform: Affine
    crs: CRS


def _band_file(folder: Path, band: str) -> Path:
    hits = sorted(folder.glob(f"*_{band}.tif"))
    if not hits:
        raise OSCDFileNotFoundError(f"{folder}/*_{band}.tif not found: {LAYOUT}")
    if len(hits) > 1:
        raise OSCDError(
            f"{folder} holds {len(hits)} files *_{band}.tif ({hits[0].name}, …): keep one per band and date"
        )
    return hits[0]


def _open(path: Path) -> tuple[np.ndarray, Affine, CRS]:
    try:
        with warnings.catch_warnings():
            # The labels carry no georeference; rasterio then warns and returns the identity transform.
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return src.read(1), src.transform, src.crs or PIXEL_CRS
    except rasterio.errors.RasterioError as e:
        raise OSCDError(
            f"{path} cannot be read ({e}): replace it with the file from the OSCD download"
        ) from e


def _check_footprint(path: Path, shape: tuple[int, ...], transform: Affine, grid: _Grid) -> None:
    """The file must cover imgs_1's footprint to within a few 10 m pixels, or it is another scene cut."""
    col0, row0 = ~grid.transform * (transform.c, transform.f)
    col1, row1 = ~grid.transform * (transform * (shape[1], shape[0]))
    off = max(abs(row0), abs(col0), abs(row1 - grid.shape[0]), abs(col1 - grid.shape[1]))
    if off > MAX_SHIFT_PX:
        raise OSCDError(
            f"{path} ({shape[0]}x{shape[1]} px) does not cover the footprint of imgs_1 "
            f"({grid.shape[0]}x{grid.shape[1]} px at 10 m): its edges are {off:.0f} px apart; check that the "
            "file belongs to this city and is georeferenced like the others"
        )


def _to_grid(
    raw: np.ndarray, transform: Affine, crs: CRS, grid: _Grid, offset_px: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """TOA reflectance (L1C digital numbers / 10000, 0 = fill) resampled onto the 10 m grid of imgs_1's B02.

    The 20 m and 60 m bands are stored at their native size and imgs_2 may be a few pixels larger or smaller
    than imgs_1 over the same footprint, so every file goes through its own georeference. Without one
    (identity transform) this is a crop or NaN-pad at the bottom/right, with the top-left corner shared.
    `offset_px` (rows, columns of the 10 m grid) moves the file's content by that much first, through its
    georeference: the co-registration of read_city.
    """
    refl = np.where(raw > 0, raw.astype("float32") / np.float32(10000.0), np.float32(np.nan))
    if offset_px != (0.0, 0.0):
        transform = (
            Affine.translation(grid.transform.a * offset_px[1], grid.transform.e * offset_px[0]) * transform
        )
    if raw.shape == grid.shape and transform.almost_equals(grid.transform) and crs == grid.crs:
        return refl
    out = np.full(grid.shape, np.nan, dtype="float32")
    reproject(
        refl,
        out,
        src_transform=transform,
        src_crs=crs,
        src_nodata=np.nan,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    return out


def _read_dates(path: Path) -> dict[str, str]:
    """dates.txt: `date_1: YYYYMMDD` and `date_2: YYYYMMDD`; {} when the file is not there."""
    if not path.is_file():
        return {}
    dates = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("date_1", "date_2"):
            value = value.strip()
            if len(value) != 8 or not value.isdigit():
                raise OSCDError(f"{path}: {key.strip()} is {value!r}, expected YYYYMMDD")
            dates[key.strip()] = f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return dates


def _grid_attrs(grid: _Grid, day: str | None) -> dict[str, Any]:
    """Pixel size in metres and, with a date, the sun at Sentinel-2's overpass over the grid's centre.

    The OSCD folders carry no sun angles (imgs_1's file names hold the processing time, not the sensing time),
    so they come from the date, the latitude and Sentinel-2's fixed local overpass time.
    """
    if grid.crs == PIXEL_CRS:
        return {}
    cx, cy = grid.transform * (grid.shape[1] / 2, grid.shape[0] / 2)
    (lon,), (lat,) = transform_coords(grid.crs, "EPSG:4326", [cx], [cy])
    if grid.crs.is_geographic:  # degrees to metres on the sphere of mean radius, enough for a shadow search
        m = 6_371_008.8 * np.pi / 180.0
        size = (abs(grid.transform.e) * m, abs(grid.transform.a) * m * np.cos(np.radians(lat)))
    else:
        size = (abs(grid.transform.e), abs(grid.transform.a))
    attrs: dict[str, Any] = {"pixel_size_m": [float(size[0]), float(size[1])], "latitude": float(lat)}
    if day is not None:
        az, zen = sentinel2_sun_angles(day, float(lat))
        attrs.update(date=day, sun_azimuth=az, sun_zenith=zen)
    return attrs


_Raw = dict[str, tuple[Path, np.ndarray, Affine, CRS]]
"""One date's band files as stored: path, digital numbers, georeference."""


def _read_raw(folder: Path) -> _Raw:
    if not folder.is_dir():
        raise OSCDFileNotFoundError(f"{folder} not found: {LAYOUT}")
    files = {band: _band_file(folder, band) for band in BANDS}
    return {band: (path, *_open(path)) for band, path in files.items()}


def _grid_date(raws: _Raw, grid: _Grid, offset_px: tuple[float, float] = (0.0, 0.0)) -> xr.Dataset:
    data = {}
    for band, (path, raw, transform, crs) in raws.items():
        _check_footprint(path, raw.shape, transform, grid)
        data[band] = (("y", "x"), _to_grid(raw, transform, crs, grid, offset_px))
    return xr.Dataset(data)


def read_city(
    root: Path, city: str, *, coregister: bool = False
) -> tuple[xr.Dataset, xr.Dataset, xr.DataArray]:
    """One OSCD city: before, after (13 bands, float32 TOA reflectance on imgs_1's 10 m grid) and the label.

    Every band of both dates is resampled (bilinear) onto the grid of imgs_1's B02, which is the label's grid.
    Pixels that a file does not cover, or that hold the 0 fill, are NaN. The label is True where the city's
    change map says 2 (change), False where it says 1. Each image's attrs carry `pixel_size_m` (row, column)
    and, where dates.txt gives its date, `sun_azimuth` and `sun_zenith` (degrees) for the shadow test.

    The shift between the dates is always measured (`estimate_shift` over the 10 m bands; OSCD's pairs predate
    Sentinel-2's refined multi-temporal registration and lie up to 0.65 px apart) and both images' attrs carry
    it as `misregistration_px` (rows, columns; imgs_2's content moved by it would meet imgs_1's; None where
    the measurement failed: beyond MAX_MISREGISTRATION_PX, or no textured 10 m band in both dates). With
    `coregister` it is taken out by moving each date half of it through its georeference before the
    resampling, so both dates are interpolated alike and neither moves more than half the shift away from the
    label; attrs `coregistered` says whether that was done. Off by default: on OSCD it lowered the rule's
    pooled F1 (benchmarks/oscd.py).
    """
    root = Path(root)
    label_path = root / "labels" / city / f"{city}-cm.tif"
    if not label_path.is_file():
        raise OSCDFileNotFoundError(f"{label_path} not found: {LAYOUT}")
    raw_1 = _read_raw(root / "images" / city / "imgs_1")
    _, ref, ref_transform, ref_crs = raw_1[REFERENCE_BAND]
    grid = _Grid(ref.shape, ref_transform, ref_crs)
    raw_2 = _read_raw(root / "images" / city / "imgs_2")
    before, after = _grid_date(raw_1, grid), _grid_date(raw_2, grid)
    shift: tuple[float, float] | None
    try:
        shift = estimate_shift(
            [before[b].values for b in TEN_M_BANDS], [after[b].values for b in TEN_M_BANDS]
        )
    except ValueError:  # no 10 m band with texture in both dates (all fill, or flat): nothing to measure
        shift = None
    if shift is not None and max(map(abs, shift)) > MAX_MISREGISTRATION_PX:
        shift = None
    applied = coregister and shift is not None and shift != (0.0, 0.0)
    if applied and shift is not None:
        half = (shift[0] / 2, shift[1] / 2)
        before = _grid_date(raw_1, grid, (-half[0], -half[1]))
        after = _grid_date(raw_2, grid, half)
    dates = _read_dates(root / "images" / city / "dates.txt")
    aligned = {"misregistration_px": None if shift is None else list(shift), "coregistered": applied}
    before.attrs.update(_grid_attrs(grid, dates.get("date_1")), **aligned)
    after.attrs.update(_grid_attrs(grid, dates.get("date_2")), **aligned)
    label_raw, _, _ = _open(label_path)
    if label_raw.shape != grid.shape:
        raise OSCDError(
            f"{label_path} is {label_raw.shape[0]}x{label_raw.shape[1]} px but imgs_1 is "
            f"{grid.shape[0]}x{grid.shape[1]} px at 10 m: the label must be on imgs_1's grid"
        )
    values = set(np.unique(label_raw).tolist())
    if not values <= {1, 2}:
        raise OSCDError(f"{label_path} holds values {sorted(values)}: expected 1 (no change) and 2 (change)")
    label = xr.DataArray(label_raw == 2, dims=("y", "x"), name="change")
    return before, after, label


# --- Evaluation ---------------------------------------------------------------------------------------------

Method = Callable[[xr.Dataset, xr.Dataset], xr.DataArray]
"""A detector under test: (before, after) -> bool change mask on the same grid."""

TOP_SHARE = 0.03
"""The cva-top3 baseline flags this share of pixels: a prior on how much changed, not read from the scene."""
TEXTBOOK_ALPHA = 0.01
"""Per-pixel significance of the textbook IR-MAD test (no inflation correction, no mapping unit)."""
SURFACE_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
"""All bands that see the ground: every band but aerosol (B01), water vapour (B09) and cirrus (B10)."""


def _cva_otsu(before: xr.Dataset, after: xr.Dataset) -> xr.DataArray:
    mag = cva(before, after, BANDS)
    return mag > otsu_threshold(mag)


def _cva_top(before: xr.Dataset, after: xr.Dataset) -> xr.DataArray:
    mag = cva(before, after, BANDS).compute()
    return mag > float(np.nanquantile(mag.values, 1.0 - TOP_SHARE))


def _irmad_textbook(before: xr.Dataset, after: xr.Dataset) -> xr.DataArray:
    return irmad(before, after, BANDS).p_no_change < TEXTBOOK_ALPHA


def _rule(**options: Any) -> Method:
    """detect_multivariate_change with some options changed: the rule's variants, by name in METHODS."""

    def method(before: xr.Dataset, after: xr.Dataset) -> xr.DataArray:
        return detect_multivariate_change(before, after, **options).mask

    return method


METHODS: dict[str, Method] = {
    "cva-otsu": _cva_otsu,
    "cva-top3": _cva_top,
    "irmad-chi2": _irmad_textbook,
    "irmad-bonferroni": _rule(mmu_px=1, confirm=False),
    "irmad-10m": _rule(bands=TEN_M_BANDS, confirm=False),
    "irmad-surface": _rule(bands=SURFACE_BANDS, confirm=False),
    "irmad-fdr": _rule(correction="fdr", confirm=False),
    "irmad-shift": _rule(context="shift", confirm=False),
    "irmad-window": _rule(context="window", confirm=False),
    "irmad-texture": _rule(texture=("B04", "B08"), confirm=False),
    "irmad-green": _rule(exclude_green=True, confirm=False),
    "irmad-dry": _rule(dry=True),
    "irmad-segment": _rule(context="segment"),
    "irmad-coherent": _rule(context="coherent"),
    "irmad-grown": _rule(grow=True),
    "irmad-shift-confirmed": _rule(context="shift"),
    "irmad-calibrated": _rule(confirm_null="calibrated"),
    "irmad-gated": _rule(gate=True),
    "irmad-equicorrelated": _rule(confirm_null="equicorrelated"),
    "irmad-stratified": _rule(confirm_null="stratified"),
    "irmad-pixel": _rule(confirm=False),
    "irmad": _rule(),
}
"""Methods by name. cva-*: CVA over 13 bands. irmad-chi2: Nielsen's IR-MAD on 13 bands, p < 0.01 per pixel.
irmad: the chosen rule (detect_multivariate_change: B02-B04, B08, B11, B12 fitted on land, inflation-corrected
chi-square at a 5% Bonferroni level, each flag confirmed by a coherent change of its segment, 0.2 ha mapping
unit); irmad-pixel is the per-pixel test alone (the rule until the confirmation), and the variants below
change it, not the rule: irmad-bonferroni drops the mapping unit; irmad-10m and irmad-surface change only the
bands; irmad-fdr spreads the 5% by Benjamini-Hochberg instead; irmad-shift tests Z tolerant to a 1 px
misregistration, irmad-window Z averaged over 3 x 3 pixels, each against a scaled chi-square fitted to the
scene; irmad-texture adds the 3 x 3 log local spread of red and NIR on each date as IR-MAD variables;
irmad-green drops flags on dense vegetation on both dates; irmad-dry is the rule with no flag on open water
on both dates. irmad-segment tests the mean Z of each segment of the
pair (watersheds from a 4 px seed grid) and irmad-coherent the length of its mean MAD vector, one test per
segment; irmad-grown is the rule with confirmed segments flagged whole where most of their pixels are
flagged. Third round, the rule with one of its two tests changed: irmad-shift-confirmed tests irmad-shift's
statistic per pixel; irmad-calibrated, irmad-equicorrelated and irmad-stratified confirm against another
segment null (B + W/n measured on the image, B + (lambda_Z I - B)/n, a genomic control per segment-size
decile); irmad-gated tests segments first and pixels only inside those that passed. benchmarks/oscd.py
holds how each fared."""


def list_cities(root: Path) -> list[str]:
    """The cities under root/labels that have a change map, sorted."""
    labels = Path(root) / "labels"
    if not labels.is_dir():
        raise OSCDFileNotFoundError(f"{labels} not found: {LAYOUT}")
    return sorted(d.name for d in labels.iterdir() if (d / f"{d.name}-cm.tif").is_file())


def _scores(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    def ratio(num: int, den: int) -> float:
        return num / den if den else 0.0  # 0/0 (nothing flagged or nothing to find) is 0, not NaN: JSON-safe

    return {
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "iou": ratio(tp, tp + fp + fn),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


SKY_MASKS: tuple[str, ...] = ("cloud+shadow", "cloud", "none")
"""What the evaluation leaves unobserved: clouds and their projected shadows (the default), clouds only, or
nothing (every pixel is taken as seen, as before the cloud mask)."""


def observed_mask(before: xr.Dataset, after: xr.Dataset, *, sky: str = "cloud+shadow") -> xr.DataArray:
    """True where both dates saw the ground: no cloud (s2cloudless), no cloud shadow, every band present.

    The clouds and shadows come from preprocess.cloud_shadow_masks on each date's L1C bands, with the sun of
    the image's attrs (read_city puts them there). Lazy on dask input.
    """
    if sky not in SKY_MASKS:
        raise ConfigError(f"Unknown sky mask {sky!r}: choose one of {list(SKY_MASKS)}")
    seen = xr.ones_like(before[REFERENCE_BAND], dtype=bool)
    for ds in (before, after):
        for b in BANDS:
            seen = seen & ds[b].notnull()
        if sky != "none":
            masks = cloud_shadow_masks(ds, shadows=sky == "cloud+shadow")
            seen = seen & ~masks["cloud"] & ~masks["shadow"]
    return seen.rename("observed")


def evaluate_oscd(
    root: Path,
    *,
    method: str | Method = "irmad",
    cities: Sequence[str] | None = None,
    chunks: int | None = None,
    sky: str = "cloud+shadow",
    coregister: bool = False,
) -> dict[str, Any]:
    """Score one method on every OSCD city: per-city and pooled precision, recall, F1 and IoU.

    Pixels that either date did not see (`observed_mask`: cloud, cloud shadow or no data) are set to NaN in
    both images before the method runs, so IR-MAD is fitted and tested without them, and they are predicted
    "no change" whatever the method says; `unobserved_fraction` gives their share of the city and
    `unobserved_change` the labelled change pixels among them. Pooled figures sum TP/FP/FN over all pixels of
    all cities, so large cities weigh more. `chunks` runs the masks and the method on dask arrays of that tile
    size. Each city reports the shift measured between its dates as `misregistration_px` (read_city);
    `coregister` takes it out first. The result is JSON-serialisable: {"method", "sky", "coregister",
    "seconds", "cities": {city: {precision, recall, f1, iou, tp, fp, fn, pixels, unobserved_fraction,
    unobserved_change, misregistration_px, seconds}}, "pooled": {precision, recall, f1, iou, tp, fp, fn,
    unobserved_fraction}}.
    """
    if isinstance(method, str):
        if method not in METHODS:
            raise ConfigError(f"Unknown OSCD method {method!r}: choose one of {sorted(METHODS)}")
        name, fn = method, METHODS[method]
    else:
        name, fn = getattr(method, "__name__", "custom"), method
    if sky not in SKY_MASKS:
        raise ConfigError(f"Unknown sky mask {sky!r}: choose one of {list(SKY_MASKS)}")
    names = list(cities) if cities is not None else list_cities(root)
    if not names:
        raise OSCDError(f"{Path(root) / 'labels'} holds no <city>/<city>-cm.tif: {LAYOUT}")
    per_city: dict[str, dict[str, Any]] = {}
    total = np.zeros(3, dtype="int64")
    unseen_px = all_px = 0
    t_all = time.perf_counter()
    for city in names:
        before, after, label = read_city(root, city, coregister=coregister)
        if chunks:
            before, after = before.chunk({"y": chunks, "x": chunks}), after.chunk({"y": chunks, "x": chunks})
        t0 = time.perf_counter()
        observed = observed_mask(before, after, sky=sky).compute()
        seen = np.asarray(observed.values, dtype=bool)
        pred = np.asarray(fn(before.where(observed), after.where(observed)).values, dtype=bool) & seen
        seconds = time.perf_counter() - t0
        truth = label.values
        counts = [int((pred & truth).sum()), int((pred & ~truth).sum()), int((~pred & truth).sum())]
        total += counts
        unseen_px += int((~seen).sum())
        all_px += int(truth.size)
        per_city[city] = {
            **_scores(*counts),
            "pixels": int(truth.size),
            "unobserved_fraction": round(float((~seen).mean()), 4),
            "unobserved_change": int((truth & ~seen).sum()),
            "misregistration_px": before.attrs["misregistration_px"],
            "seconds": round(seconds, 3),
        }
    return {
        "method": name,
        "sky": sky,
        "coregister": coregister,
        "seconds": round(time.perf_counter() - t_all, 3),
        "cities": per_city,
        "pooled": {**_scores(*map(int, total)), "unobserved_fraction": round(unseen_px / all_px, 4)},
    }
