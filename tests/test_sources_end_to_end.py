"""End to end on the real sources: `borderwatch run --source sentinelhub|cdse|stac|local` against the local fakes.

Each source is pointed at its fake by settings alone (BORDERWATCH_* environment variables and SH_CLIENT_ID /
SH_CLIENT_SECRET; nothing in code), runs the daily flow through the CLI on one hot spot, and must write the same
kind of briefing as a simulator run, without any SIMULATED stamp, naming the fake's scenes. A second identical
run must make no request at all: the scene cache holds the pixels, the search cache the catalogue answers.

The helpers (`fake_source`, `write_local_folder`) are shared with benchmarks/sources.py, which measures requests
and bytes per hot spot per day on the same fakes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from pyproj import Transformer
from rasterio.transform import from_origin

from monitoring.aoi import windows_for
from monitoring.config import WindowSettings
from tests.fakes.sentinelhub_server import FakeSentinelHub
from tests.fakes.stac_server import (
    _SCL_OF,
    CENTRE_LONLAT,
    EPSG,
    FakeStacServer,
    Ground,
    _centre_xy,
    _grid,
    build_catalog,
    clouds,
    dense_specs,
    reflectance,
)
from tests.sources.test_local import _write

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

SOURCES = ("sentinelhub", "cdse", "stac", "local")
RUN_DATE = date(2025, 12, 20)
HOTSPOT_ID = "fake-site"
AOI_KM = 2.0
"""The STAC fake covers 7 km x 4 km around its centre, the local folder 3 km x 3 km: a 2 km square fits both."""


def hotspot(aoi_km: float = AOI_KM) -> dict[str, Any]:
    """One hot spot at the centre of the STAC fake's ground (Preah Vihear), where every fake has imagery."""
    lon, lat = CENTRE_LONLAT
    return {
        "id": HOTSPOT_ID,
        "name": "Fake site",
        "lat": lat,
        "lon": lon,
        "coordinates": "sourced",
        "uncertainty_km": 0,
        "aoi_km": aoi_km,
        "priority": 1,
        "notes": "End-to-end test site on the fakes.",
    }


# -- a folder of GeoTIFFs, as an analyst would hold (monitoring/sources/local.py conventions) ----------------

LOCAL_HALF_M = 1500.0
"""Local files cover 3 km x 3 km around the centre."""
_LOCAL_CLOUD = (0.0, 0.2, 0.6, 0.05, 0.95)
"""Cloud fraction of successive Sentinel-2 dates (as the STAC fake's dense catalogue)."""


def write_local_folder(folder: Path, start: date, end: date, *, half_m: float = LOCAL_HALF_M) -> list[str]:
    """Sentinel-2 exports every 5 days (7 bands, harmonised DN + SCL, clouds on some dates), Sentinel-1 RTC
    every 6 days on an ascending and a descending orbit (speckled linear gamma0) and an ESA WorldCover tile,
    named by the file-name conventions, over [start, end], covering 2 * half_m around the centre. Returns the
    scene ids (file stems)."""
    folder.mkdir(parents=True, exist_ok=True)
    cx, cy = _centre_xy()
    ground = Ground.render(cx, cy)
    n = int(2 * half_m / 10)
    x0, y1 = cx - half_m, cy + half_m
    x, y = _grid(x0, y1, 10.0, n, n)
    lc = ground.at(x, y)
    tr = from_origin(x0, y1, 10, 10)
    crs = f"EPSG:{EPSG}"
    refl = np.stack([reflectance(lc, x, y, b) for b in range(6)])
    scl_of = np.zeros(256, np.uint8)
    for code, c in _SCL_OF.items():
        scl_of[code] = c
    ids: list[str] = []
    day, i = start, 0
    while day <= end:
        cloud, shadow = clouds(x, y, day, _LOCAL_CLOUD[i % len(_LOCAL_CLOUD)], cx, cy)
        r = np.where(shadow, refl * 0.35, refl)
        r = np.where(cloud, 0.45, r)
        scl = scl_of[lc].copy()
        scl[shadow], scl[cloud] = 3, 9
        dn = np.clip(np.round(r * 10000), 1, 65535).astype(np.uint16)
        name = f"S2_{day:%Y%m%d}T033512_export"
        _write(
            folder / f"{name}.tif", np.concatenate([dn, scl[None].astype(np.uint16)]), tr, crs=crs, nodata=0
        )
        ids.append(name)
        day, i = day + timedelta(days=5), i + 1
    gamma0 = {10: (0.12, 0.03), 20: (0.09, 0.02), 30: (0.06, 0.012), 40: (0.05, 0.008), 50: (0.5, 0.06)}
    vv_of, vh_of = np.full(256, 0.07), np.full(256, 0.012)
    vv_of[80], vh_of[80] = 0.004, 0.001
    for code, (vv, vh) in gamma0.items():
        vv_of[code], vh_of[code] = vv, vh
    rng = np.random.default_rng(2025)
    day = start
    while day <= end:
        for when, tag in ((day, "A128"), (day + timedelta(days=3), "D026")):
            if when > end:
                continue
            hhmm = "111000" if tag[0] == "A" else "230500"
            speckle = rng.gamma(4.4, 1 / 4.4, size=(2, n, n))
            g0 = (np.stack([vv_of[lc], vh_of[lc]]) * speckle).astype(np.float32)
            name = f"S1_{when:%Y%m%d}T{hhmm}_{tag}_rtc"
            _write(folder / f"{name}.tif", g0, tr, crs=crs, nodata=float("nan"))
            ids.append(name)
        day += timedelta(days=6)
    # WorldCover as ESA ships it: lon/lat, 1/12000 degree.
    to_ll = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lo0, la1 = to_ll.transform(x0, y1)
    res = 1 / 12000
    nw = int(2 * half_m / 10 * 1.4)  # 1/12000 degree is ~9.2 m at 14 N: a margin
    lon, lat = _grid(lo0, la1, res, nw, nw)
    wx, wy = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    name = "ESA_WorldCover_10m_2021_v200_N12E102_Map"
    wc = ground.at(np.asarray(wx), np.asarray(wy))[None]
    _write(folder / f"{name}.tif", wc, from_origin(lo0, la1, res, res), crs="EPSG:4326", nodata=0)
    ids.append(name)
    return ids


# -- one fake per source, and what it counted ----------------------------------------------------------------


@dataclass
class Fake:
    """A running fake for one source: the environment that points the source at it, and its counters."""

    source: str
    env: dict[str, str]
    """BORDERWATCH_* settings (and credentials, CA bundle) that select the fake; nothing else is needed."""
    requests: Callable[[], int]
    """Requests the fake has answered so far (for 'local': scene reads from the folder)."""
    bytes: Callable[[], int]
    """Response bytes the fake has sent so far (for 'local': bytes of the files read)."""
    is_fake_scene: Callable[[str], bool]
    """Whether a manifest scene id names only scenes this fake holds."""
    info: dict[str, Any] = field(default_factory=dict)


class _ReadCounter:
    """Counts LocalSource scene reads (the folder has no server to count requests)."""

    def __init__(self) -> None:
        self.reads = 0
        self.nbytes = 0
        self._lock = threading.Lock()

    @contextmanager
    def installed(self) -> Iterator[None]:
        from monitoring.sources.local import LocalSource

        original = LocalSource._read

        def counted(src: Any, scene: Any, tile: Any) -> Any:
            with self._lock:
                self.reads += 1
                self.nbytes += sum(f.path.stat().st_size for f in scene.files)
            return original(src, scene, tile)

        LocalSource._read = counted  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            LocalSource._read = original  # type: ignore[method-assign]


def catalogue_span(run_date: date, settings: WindowSettings, *, days_after: int = 0) -> tuple[date, date]:
    """First and last day a fake's catalogue must cover for runs on run_date .. run_date + days_after."""
    w = windows_for(run_date, settings)
    return min(w.sar_ranges()[0][0], w.before[0]), run_date + timedelta(days=days_after)


@contextmanager
def fake_source(
    source: str,
    workdir: Path,
    span: tuple[date, date],
    *,
    max_retries: int = 1,
    local_half_m: float = LOCAL_HALF_M,
) -> Iterator[Fake]:
    """Start the fake for source (or write the local folder) with imagery over span; yield how to use it."""
    cache = {"BORDERWATCH_CACHE__FOLDER": str(workdir / "scene-cache")}
    with ExitStack() as stack:
        if source in ("sentinelhub", "cdse"):
            sh = stack.enter_context(FakeSentinelHub(realm="main" if source == "sentinelhub" else "CDSE"))
            prefix = f"BORDERWATCH_{source.upper()}__"
            env = {
                **cache,
                "REQUESTS_CA_BUNDLE": sh.ca_file,  # TLS verified as in production, against the fake's CA
                "NO_PROXY": "127.0.0.1,localhost",
                "SH_CLIENT_ID": sh.client_id,
                "SH_CLIENT_SECRET": sh.client_secret,
                f"{prefix}BASE_URL": sh.url,
                f"{prefix}TOKEN_URL": sh.token_url,
                f"{prefix}MAX_RETRIES": str(max_retries),
            }
            t0 = datetime.combine(span[0], datetime.min.time(), UTC)
            t1 = datetime.combine(span[1], datetime.max.time(), UTC)
            lon, lat = CENTRE_LONLAT
            bbox = (lon - 0.05, lat - 0.05, lon + 0.05, lat + 0.05)
            known = {
                g.item["id"]
                for c in ("sentinel-2-l2a", "sentinel-1-grd")
                for g in sh.granules(c, bbox, t0, t1)
            }
            yield Fake(
                source,
                env,
                requests=lambda: sum(s.requests for s in sh.stats.values()),
                bytes=lambda: sum(s.bytes_out for s in sh.stats.values()),
                is_fake_scene=lambda sid: all(i in known for i in sid.split("+")),
                info={"server": sh},
            )
        elif source == "stac":
            catalog = build_catalog(workdir / "stac-cogs", dense_specs(*span))
            srv = stack.enter_context(FakeStacServer(catalog))
            env = {
                **cache,
                "NO_PROXY": "127.0.0.1,localhost",
                "BORDERWATCH_STAC__URL": srv.url,
                "BORDERWATCH_STAC__SAR_URL": srv.url,
                "BORDERWATCH_STAC__SIGNER": "tests.fakes.stac_server:sign_href",
                "BORDERWATCH_STAC__LANDCOVER_COLLECTION": "esa-worldcover",
            }
            known = {it["id"] for items in catalog.items.values() for it in items}
            yield Fake(
                source,
                env,
                requests=lambda: srv.stats()["requests"],
                bytes=lambda: srv.stats()["bytes"],
                is_fake_scene=lambda sid: all(i in known for i in sid.split(",")),
                info={"server": srv},
            )
        elif source == "local":
            folder = workdir / "local-imagery"
            known = set(write_local_folder(folder, *span, half_m=local_half_m))
            counter = _ReadCounter()
            stack.enter_context(counter.installed())
            yield Fake(
                source,
                {**cache, "BORDERWATCH_LOCAL__FOLDER": str(folder)},
                requests=lambda: counter.reads,
                bytes=lambda: counter.nbytes,
                is_fake_scene=lambda sid: all(i in known for i in sid.split(",")),
                info={"folder": folder},
            )
        else:
            raise ValueError(f"no fake for source {source!r}")


# -- the test ------------------------------------------------------------------------------------------------


def _run_cli(source: str, out: Path) -> Any:
    from typer.testing import CliRunner

    from monitoring.cli import app

    args = [
        "run",
        "--source",
        source,
        "--date",
        RUN_DATE.isoformat(),
        "--hotspot",
        HOTSPOT_ID,
        "--out",
        str(out),
    ]
    return CliRunner().invoke(app, args, catch_exceptions=False)


def _check_briefing(run_dir: Path, fake: Fake) -> dict[str, Any]:
    from pypdf import PdfReader
    from shapely.geometry import shape

    for name in ("briefing.pdf", "briefing.geojson", "manifest.json"):
        assert (run_dir / name).is_file(), f"{name} missing"

    raw = json.loads((run_dir / "briefing.geojson").read_text())
    assert raw["type"] == "FeatureCollection" and "crs" not in raw, "RFC 7946: WGS84, no crs member"
    assert raw["source"] == fake.source and raw["simulated"] is False
    assert "SIMULATED" not in raw.get("notice", "")
    lon, lat = CENTRE_LONLAT
    for f in raw["features"]:
        assert f["properties"]["simulated"] is False
        x0, y0, x1, y1 = shape(f["geometry"]).bounds
        assert lon - 0.05 < x0 <= x1 < lon + 0.05 and lat - 0.05 < y0 <= y1 < lat + 0.05, "lon/lat degrees"
    obs = [f["properties"] for f in raw["features"] if f["properties"]["feature_type"] == "observation"]
    assert [o["hotspot_id"] for o in obs] == [HOTSPOT_ID]
    (o,) = obs
    assert o["run_status"] == "ok", o["error"]
    assert o["source"] == fake.source
    assert o["status"] in ("observed", "partly observed", "not observed")
    for k in ("optical_scenes_before", "optical_scenes_after", "sar_scenes_before", "sar_scenes_after"):
        assert o[k] > 0, f"{k} = {o[k]}: the fake's scenes cover the windows"
    for k in ("optical_observed_fraction", "sar_observed_fraction", "not_observed_fraction"):
        assert 0.0 <= o[k] <= 1.0
    assert o["optical_last_clear"] and o["sar_last"] and o["coverage_text"]

    for page in PdfReader(run_dir / "briefing.pdf").pages:
        assert "SIMULATED" not in page.extract_text()

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["source"] == fake.source and manifest["simulated"] is False
    assert manifest["areas"] == [HOTSPOT_ID] and not manifest["failed"]
    scene_ids = manifest["scene_ids"][HOTSPOT_ID]
    assert len(scene_ids) == o["scene_count"] > 0
    strangers = [s for s in scene_ids if not fake.is_fake_scene(s)]
    assert not strangers, f"scenes the fake does not hold: {strangers[:3]}"
    return manifest


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
def test_run_on_the_fake_and_again_from_the_cache(
    prefect_server: None,
    config_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    # Prefect sets up its logging when prefect.main is first imported, binding console handlers to the
    # sys.stderr of that moment: import it here, not inside CliRunner, whose streams are closed afterwards.
    import flows.daily  # noqa: F401

    (config_copy / "hotspots.yaml").write_text(yaml.safe_dump({"hotspots": [hotspot()]}, allow_unicode=True))
    span = catalogue_span(RUN_DATE, WindowSettings())  # the default windows: 16 days after, 60 before, 90 SAR
    out = tmp_path / "out"
    with fake_source(source, tmp_path, span) as fake:
        for k, v in fake.env.items():
            monkeypatch.setenv(k, v)

        cold = _run_cli(source, out)
        assert cold.exit_code == 0, cold.output
        cold_requests = fake.requests()
        assert cold_requests > 0
        first = _check_briefing(out / RUN_DATE.isoformat(), fake)

        warm = _run_cli(source, out)
        assert warm.exit_code == 0, warm.output
        second = _check_briefing(out / RUN_DATE.isoformat(), fake)
        assert second["scene_ids"] == first["scene_ids"]
        new = fake.requests() - cold_requests
        assert new == 0, f"{source}: the warm run made {new} request(s)"
