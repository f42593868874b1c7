"""Fetch (simulator): the scenario file: conflict events, clouds and background activity (pydantic)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitoring.config import yaml_error
from monitoring.errors import ConfigError
from monitoring.results import ChangeType

EventType = Literal["burn_scar", "crater_field", "structural_damage", "earthworks"]
_ID = r"^[a-z0-9][a-z0-9-]*$"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScenarioEvent(_Frozen):
    """One conflict event the simulator paints into every scene acquired after its date."""

    id: Annotated[str, Field(pattern=_ID)]
    """Stable identifier, lower-case with dashes; the ground truth carries it."""
    type: EventType
    """What changed on the ground: burn_scar, crater_field, structural_damage or earthworks."""
    date: date
    """Day of the event; scenes acquired on later days show it (and keep showing it)."""
    lat: Annotated[float, Field(ge=-80.0, le=84.0)]
    """Centre latitude (WGS84); UTM, hence the simulator, covers 80 S to 84 N."""
    lon: Annotated[float, Field(ge=-180.0, le=180.0)]
    """Centre longitude (WGS84)."""
    size_ha: Annotated[float, Field(gt=0.0, le=50.0)]
    """Area that changed, in hectares (for structural damage: the built-up area destroyed)."""
    hotspot: Annotated[str, Field(pattern=_ID)] | None = None
    """Hot spot id the event belongs to, for the summary (does not move the event)."""
    severity: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    """Mean intensity: burn severity, share of buildings destroyed rather than damaged, crater density."""
    description: str = ""
    """The reported incident this event stands for."""
    source: str = ""
    """Where the incident was reported."""

    @property
    def change_type(self) -> ChangeType:
        return ChangeType(self.type)


class CloudSettings(_Frozen):
    scale: Annotated[float, Field(ge=0.0, le=5.0)] = 1.0
    """Multiplies the monthly climatological cloud fraction (1 = the region's climate, 0 = always clear)."""
    fraction: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    """If set, every scene has exactly this regional cloud fraction (tests: 0 = clear, 1 = overcast)."""


class BackgroundSettings(_Frozen):
    farm_burning_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    """Share of harvested paddy fields burnt within farm_burning_days of harvest (not ground truth)."""
    farm_burning_days: Annotated[int, Field(ge=1, le=90)] = 25
    """Window after each field's harvest in which its stubble may be burnt."""
    stray_fire_rate: Annotated[float, Field(ge=0.0, le=10.0)] = 0.05
    """Simulated VIIRS active-fire detections per 100 km² per day that no change on the ground explains
    (household and rubbish fires, charcoal kilns), as a clear sky would show them; mostly low confidence."""


class Settlement(_Frozen):
    """A town the land cover must contain (a built-up cluster), e.g. a border market or casino strip."""

    name: str
    lat: Annotated[float, Field(ge=-80.0, le=84.0)]
    lon: Annotated[float, Field(ge=-180.0, le=180.0)]
    radius_m: Annotated[float, Field(ge=50.0, le=3000.0)] = 400.0
    density: Annotated[float, Field(ge=0.1, le=0.9)] = 0.5
    """Share of built-up pixels in the town."""


class Scenario(_Frozen):
    """What the simulator plays: events, weather and background. The default is
    config/scenarios/dec-2025.yaml."""

    name: str = "empty"
    description: str = ""
    clouds: CloudSettings = CloudSettings()
    background: BackgroundSettings = BackgroundSettings()
    settlements: tuple[Settlement, ...] = ()
    events: tuple[ScenarioEvent, ...] = ()


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: dates stay strings, so pydantic parses them and a bad date is
    reported with its event and field like any other mistake (PyYAML would raise a bare ValueError)."""


_Loader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _where(loc: list[Any], data: Any) -> tuple[str, list[Any]]:
    """('event 'x' (entry 3), ', rest of loc) for an error inside events, else ('', loc)."""
    if len(loc) >= 2 and loc[0] in ("events", "settlements") and isinstance(loc[1], int):
        idx, what = loc[1], "event" if loc[0] == "events" else "settlement"
        name = None
        try:
            name = data[loc[0]][idx].get("id" if what == "event" else "name")
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
        label = f"{what} {name!r} (entry {idx + 1}), " if name else f"{what} entry {idx + 1}, "
        return label, loc[2:]
    return "", loc


def _format_error(path: Path, err: ValidationError, data: Any) -> str:
    first = err.errors()[0]
    where, loc = _where(list(first["loc"]), data)
    field = ".".join(str(p) for p in loc) or "(entry)"
    value = first.get("input")
    shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
    msg = " ".join(str(first["msg"]).split())
    if first["type"] == "extra_forbidden":
        fix = "Remove that field or correct its spelling"
    elif first["type"] == "missing":
        fix = "Add that field to the entry"
    else:
        fix = "Fix that value in the scenario file"
    return f"{path}: {where}field '{field}': {msg}{shown}. {fix} and run again."


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file; any problem is a ConfigError of one line naming the field."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: scenario file not found. Check simulator.scenario in settings.yaml.")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.YAMLError as e:
        raise yaml_error(path, e) from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping (name, events, ...) at the top level, got {type(data).__name__}."
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_error(path, e, data)) from e
    seen: set[str] = set()
    for i, ev in enumerate(scenario.events):
        if ev.id in seen:
            raise ConfigError(
                f"{path}: event {ev.id!r} (entry {i + 1}), field 'id': duplicate event id. "
                "Give every event its own id and run again."
            )
        seen.add(ev.id)
    return scenario
