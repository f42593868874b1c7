"""Configuration: hot spots and settings from config/, validated with pydantic (first step of the pipeline)."""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from monitoring.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[1]

SourceName = Literal["simulator", "sentinelhub", "cdse", "stac", "local"]


def config_dir() -> Path:
    """The folder with hotspots.yaml and settings.yaml: $BORDERWATCH_CONFIG_DIR, ./config, or the project's."""
    env = os.environ.get("BORDERWATCH_CONFIG_DIR")
    if env:
        return Path(env)
    local = Path.cwd() / "config"
    if (local / "hotspots.yaml").exists():
        return local
    return PROJECT_ROOT / "config"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HotSpot(_Strict):
    """One border hot spot: where to look and why."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    """Stable identifier, lower-case with dashes (used in file names and alert ids)."""
    name: str
    """English name."""
    name_th: str | None = None
    """Thai name, where known."""
    name_km: str | None = None
    """Khmer name, where known."""
    province_th: str | None = None
    """Thai province (district) on the Thai side, or None where the site lies wholly in Cambodia."""
    province_kh: str | None = None
    """Cambodian province (district) on the Cambodian side, or None where the site lies wholly in Thailand."""
    lat: Annotated[float, Field(ge=10.0, le=15.5)]
    """Latitude (WGS84) of the centre; the border region spans about 10.5–14.7 N."""
    lon: Annotated[float, Field(ge=102.0, le=106.0)]
    """Longitude (WGS84) of the centre; the border region spans about 102.3–105.6 E."""
    coordinates: Literal["sourced", "estimated"]
    """Whether the centre was read from a public source or estimated."""
    uncertainty_km: Annotated[float, Field(ge=0.0, le=10.0)] = 0.0
    """How far the true site may be from the centre (0 for sourced coordinates)."""
    aoi_km: Annotated[float, Field(gt=0.5, le=30.0)]
    """Side of the square area of interest, in km. Estimated sites get a margin of twice the uncertainty."""
    priority: Annotated[int, Field(ge=1, le=3)] = 2
    """1 = highest; the briefing lists hot spots by priority."""
    notes: str = ""
    """What happened there in 2025, with sources."""
    sources: list[str] = Field(default_factory=list)
    """Where the coordinates and events come from."""

    @model_validator(mode="after")
    def _margin_for_estimates(self) -> HotSpot:
        if self.coordinates == "estimated" and self.uncertainty_km <= 0:
            raise ValueError("estimated coordinates need uncertainty_km > 0")
        if self.aoi_km < 2 * self.uncertainty_km:
            raise ValueError(
                f"aoi_km {self.aoi_km} is smaller than twice uncertainty_km {self.uncertainty_km}: "
                "the site could lie outside the area"
            )
        return self


class HotSpotFile(_Strict):
    hotspots: list[HotSpot]

    @field_validator("hotspots")
    @classmethod
    def _unique_ids(cls, v: list[HotSpot]) -> list[HotSpot]:
        seen: set[str] = set()
        for h in v:
            if h.id in seen:
                raise ValueError(f"duplicate hot spot id {h.id!r}")
            seen.add(h.id)
        return v


class SimulatorSettings(_Strict):
    scenario: str = "scenarios/dec-2025.yaml"
    """Scenario file, relative to the config folder (or absolute)."""
    seed: int = 2025
    """Seed for every random field: the same seed gives the same pixels."""


class WindowSettings(_Strict):
    after_days: Annotated[int, Field(ge=1, le=120)] = 16
    """The 'after' window: this many days up to and including the run date."""
    before_days: Annotated[int, Field(ge=5, le=365)] = 60
    """The optical 'before' (baseline) window, ending where the after window starts."""
    sar_baseline_days: Annotated[int, Field(ge=12, le=730)] = 365
    """The SAR baseline window: 12 months, as PWTT, so that the baseline holds every season's backscatter."""
    sar_season_days: Annotated[int, Field(ge=0, le=60)] = 21
    """Half-width of the same-season SAR baseline on cropland: the scenes within this many days of the after
    window, one year earlier (0 = none: cropland is tested against the plain baseline). Rice calendars shift by
    one to three weeks from year to year with the rains, and before Sentinel-1C (May 2025) an orbit came every
    12 days: +-21 days gives each orbit 4-5 seasonal scenes."""
    max_cloud_cover: Annotated[float, Field(ge=0, le=100)] = 90.0
    """Scenes with more cloud than this (scene-level %) are not loaded."""


class ThresholdSettings(_Strict):
    dnbr: float = 0.27
    """dNBR above which a pixel counts as burnt (USGS/Key & Benson: moderate-low severity starts at 0.27)."""
    post_nbr_max: float = -0.02
    """Post-event NBR must fall below this: harvested stubble keeps NBR > 0, char does not."""
    char_nir_max: float = 0.18
    """Post-event NIR (B08) must fall below this: char is dark in NIR (0.10-0.15), stubble and soil are not (>0.2)."""
    dndvi: float = 0.2
    """NDVI drop that counts as vegetation loss."""
    bare_ndvi_max: float = 0.25
    """Post-event NDVI below which a pixel is bare soil (earthworks, craters)."""
    sar_alpha: Annotated[float, Field(gt=0, lt=0.5)] = 1e-4
    """Family-wise significance level of the Sentinel-1 change test per pixel: Bonferroni over its relative
    orbits x polarisations x onsets x smoothing scales. Bounds the chance that an unchanged pixel is flagged."""
    sar_fdr_q: Annotated[float, Field(gt=0, lt=1)] = 0.01
    """False-discovery rate of the Sentinel-1 change test across the area's pixels (Benjamini-Hochberg on the
    per-pixel corrected p-values). A pixel is flagged only if it passes both sar_alpha and this: q bounds the
    expected share of unchanged pixels among the flagged ones, the stricter of the two in a quiet area."""
    sar_scales_m: tuple[Annotated[float, Field(gt=0, le=500)], ...] = (50.0, 100.0, 150.0)
    """Smoothing scales of the Sentinel-1 test statistic (disk radii in m, as PWTT's kernels; boxes of the same
    area are used), on top of the per-pixel test, which always stays so that small targets are kept."""
    sar_min_change_db: float = 2.0
    """Smallest backscatter change (dB) reported as structural damage."""
    builtup_vv_db: float = -6.0
    """Baseline VV (dB) above which a pixel is treated as built-up (double bounce)."""
    mmu_ha: Annotated[float, Field(gt=0, le=10)] = 0.2
    """Minimum mapping unit: smaller alerts are dropped (RADD/GFW report reliably from 0.2 ha)."""
    min_observed_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5
    """Below this share of clear pixels in the after window a hot spot is reported as 'not observed'."""
    farm_burning_min_fields: Annotated[int, Field(ge=1)] = 5
    """Burn scars on cropland, seen by one sensor only, in one area and one after window, from which on the area
    is taken to be in its farm-burning season: they are then set aside as context (shown, not counted as
    alerts). Fewer are kept as low-confidence alerts: one or two field fires is not a season."""
    farm_burning_min_fires: Annotated[int, Field(ge=1)] = 10
    """Active-fire detections on cropland in one area over the run's windows (before and after), not within reach
    of any of its alerts, from which on the area is also taken to be in its farm-burning season, however few of
    the burnt fields this window shows: stubble burning lights fields on most dry-season days, and a kiln or a
    rubbish fire on a field now and then is the background (simulated areas: 0-4 over ten weeks without farm
    burning, 6-213 with it)."""


class SentinelHubSettings(_Strict):
    """One Sentinel Hub deployment. The commercial service and the Copernicus Data Space run the same APIs at
    other endpoints, so choosing between them is a setting, never code. Credentials are not settings: they come
    from the environment (SH_CLIENT_ID / SH_CLIENT_SECRET) or a Prefect Secret block."""

    base_url: str
    """API root, e.g. https://services.sentinel-hub.com or https://sh.dataspace.copernicus.eu."""
    token_url: str
    """OAuth2 client-credentials token endpoint."""
    credentials_block: str | None = None
    """Name of a Prefect Secret block holding {"client_id": ..., "client_secret": ...}, used when the
    environment has no credentials."""
    max_pixels: Annotated[int, Field(ge=64, le=2500)] = 2500
    """Largest width/height of one Process API request (the service caps it at 2500 px)."""
    max_retries: Annotated[int, Field(ge=0, le=10)] = 4
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 60.0


class StacSettings(_Strict):
    """A STAC API (no credentials needed for public archives)."""

    url: str = "https://earth-search.aws.element84.com/v1"
    optical_collection: str = "sentinel-2-l2a"
    sar_url: str | None = None
    """STAC API serving terrain-corrected Sentinel-1 backscatter (None = no SAR from STAC)."""
    sar_collection: str = "sentinel-1-rtc"
    signer: str | None = None
    """Dotted path to a URL-signing callable (module:function) applied to every asset href, e.g. for
    catalogues that hand out signed URLs."""
    landcover_collection: str | None = None
    """ESA WorldCover collection on the same API, where available."""


class LocalSettings(_Strict):
    """A folder of GeoTIFF/COG files an analyst holds (see README: file naming and sidecar)."""

    folder: str | None = None


ThermalSourceName = Literal["auto", "firms", "simulator", "none"]

FIRMS_PRODUCT_PATTERN = r"^(VIIRS_SNPP|VIIRS_NOAA20|VIIRS_NOAA21|MODIS)(_NRT|_SP)?$"
"""FIRMS products the thermal source reads: a satellite family (its NRT or SP source picked per day from FIRMS'
data availability) or one source pinned with its _NRT/_SP suffix."""


class ThermalSettings(_Strict):
    """Where active-fire detections (thermal anomalies, monitoring.sources.thermal) come from."""

    source: ThermalSourceName = "auto"
    """auto: the simulator's fires when the imagery source is the simulator; NASA FIRMS with a real imagery
    source when a FIRMS MAP_KEY is available (FIRMS_MAP_KEY or firms.map_key_block); otherwise none.
    firms / simulator / none force one (firms without a MAP_KEY is then an error)."""


class FirmsSettings(_Strict):
    """NASA FIRMS active fires (area and data-availability APIs). The MAP_KEY is not a setting: it comes from
    the environment (FIRMS_MAP_KEY) or a Prefect Secret block."""

    base_url: str = "https://firms.modaps.eosdis.nasa.gov"
    """API root; the client appends /api/area/csv/... and /api/data_availability/csv/...."""
    products: tuple[Annotated[str, Field(pattern=FIRMS_PRODUCT_PATTERN)], ...] = (
        "VIIRS_SNPP",
        "VIIRS_NOAA20",
        "VIIRS_NOAA21",
        "MODIS",
    )
    """Products to read: VIIRS_SNPP, VIIRS_NOAA20, VIIRS_NOAA21 (375 m) and MODIS (Terra and Aqua, 1 km). Each
    day is read from the standard-processing archive (_SP) where FIRMS holds it, else from near real time
    (_NRT); a suffix pins one of them."""
    map_key_block: str | None = None
    """Name of a Prefect Secret block holding the MAP_KEY (a string, or {"map_key": ...}), used when
    FIRMS_MAP_KEY is not set."""
    max_retries: Annotated[int, Field(ge=0, le=10)] = 4
    """Retries of a request that got no answer, a 5xx or a 429 (Retry-After is honoured)."""
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 60.0
    """Connect and read timeout of one request."""
    backoff_s: Annotated[float, Field(ge=0, le=60)] = 2.0
    """Backoff factor of the retries: waits of 0, 2x, 4x, 8x ... this many seconds (urllib3's Retry)."""

    @field_validator("products")
    @classmethod
    def _products_once(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("list at least one product, or set thermal.source to none")
        families = [p.removesuffix("_NRT").removesuffix("_SP") for p in v]
        dupes = sorted({f for f in families if families.count(f) > 1})
        if dupes:
            raise ValueError(f"products {dupes} are listed twice: each satellite would count its fires twice")
        return v


class CacheSettings(_Strict):
    folder: str = ".cache/scenes"
    """Where loaded scenes are kept, relative to the working directory."""
    max_gb: Annotated[float, Field(gt=0, le=10_000)] = 20.0
    """Size limit; the least recently used scenes go first."""
    enabled: bool = True


class TrackingSettings(_Strict):
    enabled: bool = True
    """Follow alerts from one daily run to the next (same id, lifecycle state); ad hoc checks are never tracked."""
    store: str | None = None
    """The tracking database (SQLite); None = <output_dir>/tracks.sqlite (relative to the working directory)."""
    max_gap_days: Annotated[int, Field(ge=1, le=365)] = 30
    """An alert no run reported for this many days is not followed any more: change at its place is new."""


class ScheduleSettings(_Strict):
    cron: str = "0 6 * * *"
    timezone: str = "Asia/Bangkok"


class Settings(BaseSettings):
    """Run settings: config/settings.yaml, overridden by BORDERWATCH_* environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="BORDERWATCH_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    source: SourceName = "simulator"
    simulator: SimulatorSettings = SimulatorSettings()
    windows: WindowSettings = WindowSettings()
    thresholds: ThresholdSettings = ThresholdSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    sentinelhub: SentinelHubSettings = SentinelHubSettings(
        base_url="https://services.sentinel-hub.com",
        token_url="https://services.sentinel-hub.com/auth/realms/main/protocol/openid-connect/token",
    )
    cdse: SentinelHubSettings = SentinelHubSettings(
        base_url="https://sh.dataspace.copernicus.eu",
        token_url="https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token",
    )
    stac: StacSettings = StacSettings()
    local: LocalSettings = LocalSettings()
    thermal: ThermalSettings = ThermalSettings()
    firms: FirmsSettings = FirmsSettings()
    cache: CacheSettings = CacheSettings()
    tracking: TrackingSettings = TrackingSettings()
    output_dir: str = "out"
    """Where runs are written: <output_dir>/<YYYY-MM-DD>/ (relative to the working directory)."""
    chunk_size: Annotated[int, Field(ge=64, le=8192)] = 512
    """Dask chunk edge in pixels."""
    memory_limit_gb: Annotated[float, Field(gt=0)] | None = None
    """Memory one area's analysis may plan to use (GB); an area that needs more is refused before it starts.
    None: 85% of what the machine has available when the area starts (monitoring/memory.py)."""

    def store_path(self, output_dir: str | Path | None = None) -> Path:
        """The tracking database: tracking.store, else tracks.sqlite in output_dir (a run's --out wins)."""
        if self.tracking.store is not None:
            return Path(self.tracking.store)
        return Path(output_dir if output_dir is not None else self.output_dir) / "tracks.sqlite"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment variables win over everything passed in (the file's values and load_settings overrides);
        # a CLI flag that must beat the environment is applied after loading (see flows.daily.run_settings).
        return env_settings, init_settings


def _format_validation_error(
    path: Path | str, err: ValidationError, data: Any, *, fix: str = "Fix that value in the file"
) -> str:
    """One line naming the file (or what else gave the value), the hot spot (when there is one) and the field."""
    first = err.errors()[0]
    loc = list(first["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "hotspots" and isinstance(loc[1], int):
        idx = loc[1]
        hid = None
        try:
            hid = data["hotspots"][idx].get("id")
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
        where = f"hot spot {hid!r} (entry {idx + 1}), " if hid else f"hot spot entry {idx + 1}, "
        loc = loc[2:]
    field = ".".join(str(p) for p in loc) or "(file)"
    value = first.get("input")
    shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
    return f"{path}: {where}field '{field}': {first['msg']}{shown}. {fix} and run again."


def yaml_error(path: Path, e: yaml.YAMLError) -> ConfigError:
    """One line naming the file, the line and column, and the YAML problem (a value with ': ' in it is the usual
    cause: quote it)."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or (str(e).splitlines() or [e.__class__.__name__])[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return ConfigError(
        f"{path}: not valid YAML{where} ({problem}). Fix the syntax there; quote a value that holds ': '."
    )


def _read_yaml(path: Path) -> Any:
    if not path.exists():
        raise ConfigError(
            f"{path}: file not found. Create it or set BORDERWATCH_CONFIG_DIR to the config folder."
        )
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise yaml_error(path, e) from e


def load_hotspots(path: Path | None = None) -> list[HotSpot]:
    """Read and validate config/hotspots.yaml."""
    path = path or config_dir() / "hotspots.yaml"
    data = _read_yaml(path)
    try:
        return HotSpotFile.model_validate(data).hotspots
    except ValidationError as e:
        raise ConfigError(_format_validation_error(path, e, data)) from e


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read and validate config/settings.yaml; BORDERWATCH_* environment variables win over the file and overrides."""
    path = path or config_dir() / "settings.yaml"
    data = _read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}."
        )
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**data)
    except ValidationError as e:
        var = _env_origin(e.errors()[0]["loc"])
        if var is not None:  # the environment wins over the file: the file is not where to look
            where = f"environment variable {var}"
            raise ConfigError(_format_validation_error(where, e, {}, fix=f"Fix or unset {var}")) from e
        raise ConfigError(_format_validation_error(path, e, data)) from e


def _env_origin(loc: tuple[int | str, ...]) -> str | None:
    """The BORDERWATCH_* variable that set the field at loc (or a section holding it), if one did."""
    names = {k.upper(): k for k in os.environ}
    parts = [str(p).upper() for p in loc]
    for n in range(len(parts), 0, -1):
        name = "BORDERWATCH_" + "__".join(parts[:n])
        if name in names:
            return names[name]
    return None


def resolve_config_path(p: str | Path) -> Path:
    """A path from settings: absolute as is, else relative to the config folder."""
    p = Path(p)
    return p if p.is_absolute() else config_dir() / p


def hotspot_by_id(hotspots: list[HotSpot], hotspot_id: str) -> HotSpot:
    for h in hotspots:
        if h.id == hotspot_id:
            return h
    known = ", ".join(h.id for h in hotspots)
    raise ConfigError(
        f"unknown hot spot {hotspot_id!r}. Known ids: {known}. Run 'borderwatch hotspots' to list them."
    )


def parse_date(value: str, *, what: str = "date") -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise ConfigError(f"{what} {value!r} is not a date; use YYYY-MM-DD, e.g. 2025-12-22.") from e


def not_after_today(day: date, today: date, *, what: str) -> None:
    """Refuse a window that ends after today (ConfigError): no satellite has seen those days, and a typo in
    the year would otherwise make a briefing of 'not observed' (or, on the simulator, of imagined scenes)
    dated in the future."""
    if day > today:
        raise ConfigError(
            f"{what} {day} is after today ({today}): there is no imagery of it yet; give a date up to {today}."
        )


def check_output_dir(path: str | Path, *, what: str) -> None:
    """Refuse, before any work, an output folder that cannot be created or written (ConfigError).

    Nothing is left behind: the folder itself is not created here; a probe folder is made and removed in it, or
    in its nearest existing parent.
    """
    target = Path(path).expanduser()
    probe = target
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(
            f"{what} {str(target)!r}: {probe} is a file, not a folder; give a folder to write to."
        )
    try:
        tempfile.TemporaryDirectory(dir=probe, prefix=".borderwatch-probe-").cleanup()
    except OSError as e:
        raise ConfigError(
            f"{what} {str(target)!r} cannot be written ({e.strerror or e}); give a folder you can write to."
        ) from None
