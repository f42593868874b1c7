"""Fetch (local): an analyst's GeoTIFF/COG files (bought VHR imagery, exported Sentinel scenes) on the grid.

Every ``*.tif``/``*.tiff`` under ``local.folder`` (subfolders included) is described by a sidecar or by its
name.

Sidecar: ``<file>.json`` beside the image (``scene.tif.json``, or ``scene.json``). Keys:

- ``datetime`` (required): acquisition time, ISO 8601, UTC unless it carries an offset.
- ``sensor`` (required): ``"optical"``, ``"sar"`` or ``"landcover"``.
- ``bands``: the name of each band in file order, e.g. ``["B04", "B03", "B02"]`` (``null`` skips a band), or a
  mapping of 1-based band index to name, e.g. ``{"1": "B04", "4": "B08"}``. Names: B02 B03 B04 B08 B11 B12 SCL
  (optical), VV VH (sar); a land-cover file has one band of ESA WorldCover codes and needs no ``bands``.
- ``scale``, ``offset``: value = DN * scale + offset, one number or a mapping per band name. Default: scale
  1/10000 for integer data and 1 for floating-point data, offset 0 (SCL and land cover are never scaled).
- ``nodata``: the no-data value, when the file does not declare one.
- ``platform`` (default "unknown"), ``scene_id`` (default the file name), ``cloud_cover`` (%, optical).
- ``orbit_direction`` ("ascending"/"descending") and ``relative_orbit`` (int): required for SAR.
- ``units``: "linear" (default) or "dB" for SAR backscatter (dB is converted to linear).

File-name conventions (no sidecar needed):

- ``S2_<YYYYMMDDTHHMMSS>_<anything>.tif``: Sentinel-2 L2A, 7 bands in the order B02 B03 B04 B08 B11 B12 SCL
  (or the first 6 without SCL). Integer data are harmonised DN (reflectance x 10000, the processing-baseline
  offset already removed, as Sentinel Hub's harmonizeValues and Earth Engine's S2_SR_HARMONIZED export them);
  floating-point data are reflectance. No-data: the file's, else 0.
- ``S1_<YYYYMMDDTHHMMSS>_<A|D><relative orbit>_<anything>.tif``: Sentinel-1 gamma0, 2 bands VV VH, linear,
  e.g. ``S1_20251217T230500_D026_rtc.tif``. No-data: the file's, else NaN.
- ``ESA_WorldCover_10m_<year>_<version>_<tile>_Map.tif``: the ESA WorldCover map as ESA distributes it.

Files that do not touch the area are skipped; files with neither a sidecar nor a known name are skipped with a
warning. Bands a file lacks (a VHR image has no SWIR) are NaN, with a MissingBandsWarning; without SCL,
clear-sky is unknown and every pixel with data is marked SCL 7 (unclassified). Images are reprojected by
odc-loader's rasterio reader (rasterio.warp on odc-geo's overlap computation), lazily, tile by tile inside
dask tasks: average resampling where the file is finer than the grid (VHR, using overviews where present),
bilinear otherwise, mode/nearest for SCL and land cover.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
import rasterio.enums
import xarray as xr
from odc.geo.converters import rio_geobox
from odc.geo.geobox import GeoBox, GeoBoxBase
from odc.loader import RasterBandMetadata, RasterLoadParams, RasterSource, RioDriver
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator, model_validator

from monitoring.aoi import AOI, RESOLUTION_M
from monitoring.config import LocalSettings
from monitoring.errors import ConfigError, SceneLoadError, SourceError
from monitoring.preprocess.multilook import read_margin
from monitoring.sources.base import (
    OPTICAL_BANDS,
    SAR_BANDS,
    SCL_CIRRUS,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_CLOUD_SHADOW,
    SCL_NO_DATA,
    SCL_UNCLASSIFIED,
)
from monitoring.sources.cache import BandSpec, SceneCache, lazy_scenes, scene_dataset
from monitoring.sources.stac import solar_day

log = logging.getLogger(__name__)

Sensor = Literal["optical", "sar", "landcover"]
_NAMES: dict[str, tuple[str, ...]] = {
    "optical": (*OPTICAL_BANDS, "SCL"),
    "sar": SAR_BANDS,
    "landcover": ("landcover",),
}
_CLOUDY_SCL = (SCL_CLOUD_SHADOW, SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS)
_S2_NAME = re.compile(r"^S2_(\d{8}T\d{6})_.*\.tiff?$", re.IGNORECASE)
_S1_NAME = re.compile(r"^S1_(\d{8}T\d{6})_([AD])(\d{1,3})_.*\.tiff?$", re.IGNORECASE)
_WC_NAME = re.compile(r"^ESA_WorldCover_10m_(\d{4})_\w+_Map\.tiff?$", re.IGNORECASE)


class MissingBandsWarning(UserWarning):
    """An image lacks bands the pipeline uses; they are NaN (or SCL unclassified)."""


class Sidecar(BaseModel):
    """The ``<file>.json`` beside an image (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    datetime: datetime
    sensor: Sensor
    bands: list[str | None] | dict[int, str] | None = None
    platform: str = "unknown"
    scene_id: str | None = None
    scale: float | dict[str, float] | None = None
    offset: float | dict[str, float] = 0.0
    nodata: float | None = None
    cloud_cover: float | None = None
    orbit_direction: Literal["ascending", "descending"] | None = None
    relative_orbit: int | None = None
    units: Literal["linear", "dB"] = "linear"

    @field_validator("cloud_cover")
    @classmethod
    def _percent(cls, v: float | None) -> float | None:
        if v is not None and not 0 <= v <= 100:
            raise ValueError("must be a percentage 0-100")
        return v

    @field_validator("bands")
    @classmethod
    def _known_names(
        cls, v: list[str | None] | dict[int, str] | None, info: ValidationInfo
    ) -> list[str | None] | dict[int, str] | None:
        sensor = info.data.get("sensor")
        names = list(v.values()) if isinstance(v, dict) else [n for n in (v or []) if n]
        if sensor in _NAMES:
            known = _NAMES[sensor]
            for name in names:
                if name not in known:
                    raise ValueError(
                        f"band name {name!r} is not one of {', '.join(known)} for sensor {sensor!r}"
                    )
        if len(set(names)) != len(names):
            raise ValueError("a band name appears twice")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Sidecar:
        if self.sensor == "sar" and (self.orbit_direction is None or self.relative_orbit is None):
            raise ValueError("SAR images need orbit_direction and relative_orbit")
        if self.sensor != "landcover" and not self.bands:
            raise ValueError(f"{self.sensor} images need 'bands' naming each band")
        for k in ("scale", "offset"):
            v = getattr(self, k)
            if isinstance(v, dict) and (bad := set(v) - set(self.band_map().values())):
                raise ValueError(f"'{k}' names bands {sorted(bad)} that 'bands' does not list")
        return self

    def band_map(self) -> dict[int, str]:
        """1-based band index -> band name."""
        if self.sensor == "landcover" and not self.bands:
            return {1: "landcover"}
        if isinstance(self.bands, dict):
            return dict(self.bands)
        return {i + 1: n for i, n in enumerate(self.bands or []) if n}


@dataclass(frozen=True)
class LocalFile:
    """One image and what it holds."""

    path: Path
    sensor: Sensor
    time: datetime
    """UTC, naive."""
    platform: str
    scene_id: str
    bands: dict[str, int]
    """Band name -> 1-based index in the file."""
    scale: dict[str, float]
    offset: dict[str, float]
    nodata: float | None
    dtype: str
    geobox: GeoBoxBase
    """The file's grid (a GCPGeoBox for images georeferenced by ground control points)."""
    res_m: float
    """Approximate pixel size in metres (for choosing resampling)."""
    cloud_cover: float | None = None
    orbit_direction: str | None = None
    relative_orbit: int | None = None
    db: bool = False
    stamp: str = ""
    """Size and modification time: part of the cache key, so a replaced file is read again."""


def _sidecar_path(p: Path) -> Path | None:
    for cand in (p.with_name(p.name + ".json"), p.with_suffix(".json")):
        if cand.is_file():
            return cand
    return None


def _one_line(path: Path, err: ValidationError) -> str:
    # A misspelt key also makes the real one "missing": name the misspelling first.
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    key = ".".join(str(x) for x in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = f"unknown key (known: {', '.join(Sidecar.model_fields)})"
    value = first.get("input")
    shown = "" if isinstance(value, dict) or first["type"] == "extra_forbidden" else f" (got {value!r})"
    where = f"sidecar key '{key}'" if key else "sidecar"
    return f"{path}: {where}: {msg}{shown}. Fix the sidecar (format: see monitoring/sources/local.py)."


def read_sidecar(path: Path) -> Sidecar:
    """The validated sidecar; SourceError in one line naming the file and the key."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SourceError(
            f"{path}: sidecar is not valid JSON ({e.msg} at line {e.lineno}); fix the file."
        ) from e
    if not isinstance(raw, dict):
        raise SourceError(f"{path}: sidecar must be a JSON object of keys, got {type(raw).__name__}.")
    try:
        return Sidecar.model_validate(raw)
    except ValidationError as e:
        raise SourceError(_one_line(path, e)) from e


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def _per_band(v: float | dict[str, float] | None, names: Sequence[str], default: float) -> dict[str, float]:
    if isinstance(v, dict):
        return {n: float(v.get(n, default)) for n in names}
    return {n: float(default if v is None else v) for n in names}


def _scl_cloud_cover(src: Any, idx: int) -> float | None:
    """Cloud and shadow share (%) of the data pixels, from a decimated read of the SCL band (overviews)."""
    h, w = min(src.height, 256), min(src.width, 256)
    scl = src.read(idx, out_shape=(h, w), resampling=rasterio.enums.Resampling.nearest)
    data = scl != SCL_NO_DATA
    if not data.any():
        return None
    return float(100.0 * np.isin(scl[data], _CLOUDY_SCL).mean())


def describe_file(path: Path) -> LocalFile | None:
    """What a file holds, from its sidecar or its name; None if neither says."""
    side = _sidecar_path(path)
    meta: dict[str, Any]
    if side is not None:
        sc = read_sidecar(side)
        meta = {
            "sensor": sc.sensor,
            "time": _utc(sc.datetime),
            "platform": sc.platform,
            "scene_id": sc.scene_id or path.stem,
            "bands": {n: i for i, n in sc.band_map().items()},
            "scale": sc.scale,
            "offset": sc.offset,
            "nodata": sc.nodata,
            "cloud_cover": sc.cloud_cover,
            "orbit_direction": sc.orbit_direction,
            "relative_orbit": sc.relative_orbit,
            "db": sc.units == "dB",
        }
    elif m := _S2_NAME.match(path.name):
        meta = {
            "sensor": "optical",
            "time": datetime.strptime(m[1], "%Y%m%dT%H%M%S"),
            "platform": "sentinel-2",
            "bands": {n: i + 1 for i, n in enumerate((*OPTICAL_BANDS, "SCL"))},
            "scale": None,
            "offset": 0.0,
            "nodata": None,
        }
    elif m := _S1_NAME.match(path.name):
        meta = {
            "sensor": "sar",
            "time": datetime.strptime(m[1], "%Y%m%dT%H%M%S"),
            "platform": "sentinel-1",
            "bands": {"VV": 1, "VH": 2},
            "scale": 1.0,
            "offset": 0.0,
            "nodata": None,
            "orbit_direction": "ascending" if m[2].upper() == "A" else "descending",
            "relative_orbit": int(m[3]),
        }
    elif m := _WC_NAME.match(path.name):
        meta = {
            "sensor": "landcover",
            "time": datetime(int(m[1]), 1, 1),
            "platform": "esa-worldcover",
            "bands": {"landcover": 1},
            "scale": 1.0,
            "offset": 0.0,
            "nodata": None,
        }
    else:
        return None
    cloud_cover = meta.get("cloud_cover")
    try:
        with rasterio.open(path) as src:
            count, dtype, file_nodata, gbox = src.count, src.dtypes[0], src.nodata, rio_geobox(src)
            scl_idx = meta["bands"].get("SCL")
            if (
                meta["sensor"] == "optical"
                and cloud_cover is None
                and scl_idx is not None
                and scl_idx <= count
            ):
                cloud_cover = _scl_cloud_cover(src, scl_idx)
    except rasterio.errors.RasterioIOError as e:
        raise SourceError(f"{path}: cannot be opened as a raster ({e}); remove it or fix the file.") from e
    bands: dict[str, int] = meta["bands"]
    if side is None and meta["sensor"] == "optical" and count == 6:
        bands = {n: i for n, i in bands.items() if n != "SCL"}
    too_high = {n: i for n, i in bands.items() if i > count}
    if too_high:
        where = f"sidecar {side}" if side else "its file-name convention"
        raise SourceError(
            f"{path}: has {count} band(s) but {where} names band(s) {too_high}; 'bands' must match the file."
        )
    integer = np.dtype(dtype).kind in "iu"
    names = [n for n in bands if n not in ("SCL", "landcover")]
    scale = _per_band(meta["scale"], names, 1e-4 if integer and meta["sensor"] == "optical" else 1.0)
    offset = _per_band(meta["offset"], names, 0.0)
    nodata = meta["nodata"] if meta["nodata"] is not None else file_nodata
    if nodata is None and meta["sensor"] == "optical" and integer:
        nodata = 0.0
    st = path.stat()
    px_area = gbox.extent.to_crs("EPSG:6933").area / float(gbox.shape[0] * gbox.shape[1])
    return LocalFile(
        path=path,
        sensor=meta["sensor"],
        time=meta["time"],
        platform=meta["platform"],
        scene_id=meta.get("scene_id") or path.stem,
        bands=bands,
        scale=scale,
        offset=offset,
        nodata=None if nodata is None else float(nodata),
        dtype=dtype,
        geobox=gbox,
        res_m=float(np.sqrt(px_area)),
        cloud_cover=cloud_cover,
        orbit_direction=meta.get("orbit_direction"),
        relative_orbit=meta.get("relative_orbit"),
        db=bool(meta.get("db", False)),
        stamp=f"{st.st_size}:{st.st_mtime_ns}",
    )


@dataclass(frozen=True)
class _LocalScene:
    aoi_id: str
    files: tuple[LocalFile, ...] = field(compare=False)


class LocalSource:
    """Images from a folder, on the AOI grid, lazily. See the module docstring for naming and sidecars."""

    name = "local"
    simulated = False

    def __init__(
        self,
        settings: LocalSettings,
        *,
        chunk_size: int = 512,
        max_cloud_cover: float = 100.0,
        cache: SceneCache | None = None,
    ) -> None:
        if not settings.folder:
            raise ConfigError(
                "local.folder is not set; set it in config/settings.yaml (or BORDERWATCH_LOCAL__FOLDER) to "
                "the folder holding the GeoTIFFs."
            )
        self.folder = Path(settings.folder).expanduser()
        if not self.folder.is_dir():
            raise ConfigError(
                f"local.folder {self.folder} is not a folder; point it at the folder holding the GeoTIFFs."
            )
        self.chunk_size = int(chunk_size)
        self.max_cloud_cover = float(max_cloud_cover)
        self.cache = cache
        self._described: dict[Path, tuple[str, LocalFile | None]] = {}
        self._warned: set[tuple[Path, str]] = set()

    def __repr__(self) -> str:
        return f"LocalSource({str(self.folder)!r})"

    # -- discovery -----------------------------------------------------------------------------------------

    def files(self) -> list[LocalFile]:
        """Every described image in the folder (re-read when a file or its sidecar changes)."""
        out: list[LocalFile] = []
        for p in sorted(self.folder.rglob("*")):
            if p.suffix.lower() not in (".tif", ".tiff") or not p.is_file():
                continue
            side = _sidecar_path(p)
            stamp = f"{p.stat().st_mtime_ns}:{side.stat().st_mtime_ns if side else 0}"
            cached = self._described.get(p)
            if cached is None or cached[0] != stamp:
                cached = (stamp, describe_file(p))
                self._described[p] = cached
                if cached[1] is None:
                    self._warn(
                        p,
                        "undescribed",
                        f"{p}: no sidecar {p.name}.json and no known file-name convention; "
                        "skipped (see monitoring/sources/local.py for both).",
                        UserWarning,
                    )
            if cached[1] is not None:
                out.append(cached[1])
        return out

    def _warn(self, path: Path, what: str, msg: str, category: type[Warning]) -> None:
        if (path, what) not in self._warned:
            self._warned.add((path, what))
            log.warning(msg)
            warnings.warn(msg, category, stacklevel=3)

    def _select(self, aoi: AOI, sensor: Sensor, start: date | None, end: date | None) -> list[LocalFile]:
        aoi_ext = aoi.geobox.extent
        out = []
        for f in self.files():
            if f.sensor != sensor:
                continue
            if start is not None and end is not None and not start <= f.time.date() <= end:
                continue
            if not f.geobox.extent.to_crs(aoi.crs).intersects(aoi_ext):
                log.debug("%s does not touch %s; skipped", f.path, aoi.id)
                continue
            out.append(f)
        return out

    def _groups(self, files: list[LocalFile], key: Any) -> list[list[LocalFile]]:
        groups: dict[Any, list[LocalFile]] = {}
        for f in files:
            groups.setdefault(key(f), []).append(f)
        out = [sorted(g, key=lambda f: (f.time, f.path.name)) for g in groups.values()]
        return sorted(out, key=lambda g: (g[0].time, g[0].path.name))

    def _lazy(
        self,
        aoi: AOI,
        groups: list[list[LocalFile]],
        bands: list[BandSpec],
        collection: str,
        multilook_px: int = 0,
    ) -> dict[str, Any]:
        scenes = [
            (",".join(f"{f.path.name}@{f.stamp}" for f in g), _LocalScene(aoi.id, tuple(g))) for g in groups
        ]
        halo, finish = read_margin(multilook_px)
        return lazy_scenes(
            scenes,
            aoi.geobox,
            bands,
            read=self._read,
            chunk_size=self.chunk_size,
            source=f"local+{self.folder.resolve()}",
            collection=collection,
            cache=self.cache,
            halo=halo,
            finish=finish,
        )

    # -- the ImagerySource methods ---------------------------------------------------------------------------

    def load_optical(self, aoi: AOI, start: date, end: date) -> xr.Dataset:
        files = self._select(aoi, "optical", start, end)
        files = [f for f in files if f.cloud_cover is None or f.cloud_cover <= self.max_cloud_cover]
        for f in files:
            missing = [b for b in (*OPTICAL_BANDS, "SCL") if b not in f.bands]
            if missing:
                why = " (no SCL: clouds are not masked in this image)" if "SCL" in missing else ""
                self._warn(
                    f.path,
                    "missing",
                    f"{f.path}: has no {', '.join(missing)}; those bands are NaN{why}. "
                    "Detectors that need them skip this scene.",
                    MissingBandsWarning,
                )
        lon = aoi.footprint.centroid.x
        groups = self._groups(files, lambda f: solar_day(f.time, lon))
        bands = [BandSpec(b, "float32") for b in OPTICAL_BANDS] + [BandSpec("SCL", "uint8")]
        arrays = self._lazy(aoi, groups, bands, "optical")
        coords = {
            "scene_id": np.array([",".join(f.scene_id for f in g) for g in groups], dtype=object),
            "platform": np.array([g[0].platform for g in groups], dtype=object),
            "cloud_cover": np.array([_mean_cc(g) for g in groups], dtype=float),
        }
        times = [np.datetime64(g[0].time, "ns") for g in groups]
        return scene_dataset(arrays, aoi.geobox, times, coords, attrs={"source": self.name})

    def load_sar(self, aoi: AOI, start: date, end: date, *, multilook_px: int = 0) -> xr.Dataset:
        files = self._select(aoi, "sar", start, end)
        lon = aoi.footprint.centroid.x
        groups = self._groups(files, lambda f: (solar_day(f.time, lon), f.relative_orbit))
        bands = [BandSpec(b, "float32") for b in SAR_BANDS] + [BandSpec("valid", "bool")]
        arrays = self._lazy(aoi, groups, bands, "sar", multilook_px)
        coords = {
            "scene_id": np.array([",".join(f.scene_id for f in g) for g in groups], dtype=object),
            "platform": np.array([g[0].platform for g in groups], dtype=object),
            "orbit_direction": np.array([g[0].orbit_direction for g in groups], dtype=object),
            "relative_orbit": np.array([int(g[0].relative_orbit or 0) for g in groups], dtype=np.int64),
        }
        times = [np.datetime64(g[0].time, "ns") for g in groups]
        attrs = {"source": self.name, "multilook_px": multilook_px}
        return scene_dataset(arrays, aoi.geobox, times, coords, attrs=attrs)

    def load_landcover(self, aoi: AOI) -> xr.DataArray | None:
        files = self._select(aoi, "landcover", None, None)
        if not files:
            return None
        latest = max(f.time for f in files)
        group = sorted((f for f in files if f.time == latest), key=lambda f: f.path.name)
        arrays = self._lazy(aoi, [group], [BandSpec("landcover", "uint8")], "landcover")
        ds = scene_dataset(
            arrays,
            aoi.geobox,
            [np.datetime64(latest, "ns")],
            {"scene_id": np.array([",".join(f.scene_id for f in group)], dtype=object)},
        )
        return ds["landcover"].isel(time=0, drop=True)

    # -- reading (inside dask tasks) ------------------------------------------------------------------------

    def _read(self, scene: _LocalScene, tile: GeoBox) -> dict[str, np.ndarray]:
        sensor = scene.files[0].sensor
        names = _NAMES[sensor]
        out: dict[str, np.ndarray] = {}
        for n in names:
            cat = n in ("SCL", "landcover")
            out[n] = np.zeros(tile.shape, np.uint8) if cat else np.full(tile.shape, np.nan, np.float32)
        drv = RioDriver()
        state = drv.new_load(tile)
        for f in scene.files:
            with drv.restore_env(drv.capture_env(), state) as ctx:
                for n, idx in f.bands.items():
                    cat = n in ("SCL", "landcover")
                    finer = f.res_m < RESOLUTION_M / 1.5
                    resampling = (
                        ("mode" if finer else "nearest") if cat else ("average" if finer else "bilinear")
                    )
                    src = RasterSource(
                        str(f.path), band=idx, meta=RasterBandMetadata(data_type=f.dtype, nodata=f.nodata)
                    )
                    cfg = RasterLoadParams(
                        dtype="uint8" if cat else "float32",
                        fill_value=0 if cat else np.nan,
                        src_nodata_override=f.nodata,
                        resampling=resampling,
                        fail_on_error=True,
                    )
                    try:
                        roi, pix = drv.open(src, ctx).read(cfg, tile)
                    except (rasterio.errors.RasterioError, OSError, ValueError) as e:
                        raise SceneLoadError(
                            f"could not read band {idx} ({n}) of {f.path} for area {scene.aoi_id!r}: {e}; "
                            "check the file opens in QGIS/gdalinfo, or remove it from the folder."
                        ) from e
                    dst = out[n][roi]
                    if cat:
                        np.copyto(dst, pix, where=(dst == 0))
                        continue
                    v = pix.astype(np.float32)
                    if f.db:
                        v = np.power(10.0, v / 10.0, dtype=np.float32)
                    v = (v * f.scale.get(n, 1.0) + f.offset.get(n, 0.0)).astype(np.float32)
                    np.copyto(dst, v, where=np.isnan(dst))
        drv.finalise_load(state)
        if sensor == "optical":
            # Pixels with data but no SCL came from an image without one: clear-sky unknown, not "no data".
            data = np.zeros(tile.shape, bool)
            for b in OPTICAL_BANDS:
                data |= np.isfinite(out[b])
            out["SCL"][data & (out["SCL"] == SCL_NO_DATA)] = SCL_UNCLASSIFIED
        if sensor == "sar":
            with np.errstate(invalid="ignore"):
                out["valid"] = (
                    np.isfinite(out["VV"]) & np.isfinite(out["VH"]) & (out["VV"] > 0) & (out["VH"] > 0)
                )
        return out


def _mean_cc(group: Sequence[LocalFile]) -> float:
    cc = [f.cloud_cover for f in group if f.cloud_cover is not None]
    return float(np.mean(cc)) if cc else float("nan")
