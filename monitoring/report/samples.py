"""Report: small synthetic run folders (results + chips) for tests, demos and checking the briefing layout."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import numpy as np
from odc.geo.geobox import GeoBox
from pyproj import Transformer
from scipy import ndimage
from shapely import affinity, contains_xy
from shapely import transform as shp_transform
from shapely.geometry import MultiPolygon, Point, Polygon, box, mapping

from monitoring.report.fires import fires_near
from monitoring.report.load import Chips
from monitoring.results import (
    Alert,
    ChangeType,
    Confidence,
    Coverage,
    FireDetection,
    HotspotResult,
    Windows,
    area_dir,
)
from monitoring.vectorise import coverage_gaps

RES_M = 10.0


@dataclass(frozen=True)
class SampleSite:
    id: str
    name: str
    lat: float
    lon: float
    priority: int
    name_th: str | None = None
    name_km: str | None = None
    province_th: str | None = None
    province_kh: str | None = None
    coordinates: str = "sourced"
    notes: str = ""


SITES: list[SampleSite] = [
    SampleSite(
        "preah-vihear",
        "Preah Vihear Temple (Khao Phra Wihan)",
        14.3931,
        104.6803,
        1,
        "ปราสาทพระวิหาร",
        "ប្រាសាទព្រះវិហារ",
        "Sisaket (Kantharalak)",
        "Preah Vihear (Choam Ksan)",
        "sourced",
        "Artillery 24–28 Jul and 7–27 Dec; one side reports 142 damage points (Jul) and severe damage to "
        "gopuras I–V (Dec); UNESCO concern 11 Dec.",
    ),
    SampleSite(
        "chong-an-ma",
        "Chong An Ma / An Ses",
        14.39,
        104.968,
        1,
        "ช่องอานม้า",
        "អានសេះ",
        "Ubon Ratchathani (Nam Yuen)",
        "Preah Vihear",
        "estimated",
        "Landmine 23 Jul; air strikes Jul; 8 Dec a casino described by one side as a drone command centre "
        "was bombed.",
    ),
    SampleSite(
        "ta-muen-thom",
        "Prasat Ta Muen Thom",
        14.3492,
        103.2664,
        1,
        "ปราสาทตาเมือนธม",
        "ប្រាសាទតាមាន់ធំ",
        "Surin (Phanom Dong Rak)",
        "Oddar Meanchey (Banteay Ampil)",
        "sourced",
        "First clash 24 Jul; 8 Dec one side says tanks fired on the temple.",
    ),
    SampleSite(
        "chong-bok",
        "Chong Bok / Emerald Triangle (Hill 745, Hill 677)",
        14.37,
        105.19,
        2,
        "ช่องบก",
        None,
        "Ubon Ratchathani",
        "Preah Vihear",
        "estimated",
        "Clash 28 May (1 killed); 80+ drone sorties reported in Dec; a 250+ drone swarm reported 28 Dec.",
    ),
    SampleSite(
        "poipet",
        "Poipet – Ban Khlong Luek (Aranyaprathet)",
        13.65,
        102.567,
        2,
        "ปอยเปต",
        "ប៉ោយប៉ែត",
        "Sa Kaeo",
        "Banteay Meanchey",
        "sourced",
        "Crossing closed 7 Jun; bombing of Poipet reported 18 Dec.",
    ),
]

EXTRA_SITES: list[tuple[str, str, float, float]] = [
    ("phu-makhuea", "Phu Makhuea / Phnom Trap (incl. Huai Ta Maria)", 14.3931, 104.6544),
    ("kantharalak", "Kantharalak – Ban Phue petrol station", 14.64, 104.65),
    ("ta-muen-toch", "Prasat Ta Muen Toch", 14.356, 103.265),
    ("ta-krabey", "Prasat Ta Krabey (Ta Khwai) + Hill 350", 14.3528, 103.3733),
    ("phanom-dong-rak", "Phanom Dong Rak Hospital", 14.4456, 103.3044),
    ("chong-chom", "Chong Chom – O'Smach crossing", 14.41, 103.6942),
    ("samraong", "Samraong town", 14.1817, 103.5176),
    ("ban-kruat", "Ban Kruat / Chong Sai Taku", 14.42, 103.13),
    ("nong-chan", "Ban Nong Chan / Nong Ya Kaeo ↔ Prey Chan", 13.8319, 102.7333),
    ("thmor-da", "Ban Chamrak (Trat) ↔ Thmor Da (Pursat)", 12.22, 102.7),
    ("hat-lek", "Hat Lek (Khlong Yai) ↔ Cham Yeam (Koh Kong)", 11.66, 102.91),
]


def sample_windows(run_date: date) -> Windows:
    after = (run_date - timedelta(days=15), run_date)
    before_end = after[0] - timedelta(days=1)
    return Windows(
        before=(before_end - timedelta(days=59), before_end),
        after=after,
        sar_before=(before_end - timedelta(days=89), before_end),
    )


class _Grid:
    """A square UTM grid around a site, the way monitoring.aoi builds one (kept here without odc-geo)."""

    def __init__(self, site_lon: float, site_lat: float, size_px: int) -> None:
        zone = int((site_lon + 180) // 6) + 1
        self.crs = f"EPSG:{32600 + zone}"
        to_utm = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)
        self.to_ll = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        x, y = to_utm.transform(site_lon, site_lat)
        half = size_px * RES_M / 2
        self.left = round((x - half) / RES_M) * RES_M
        self.top = round((y + half) / RES_M) * RES_M
        self.size = size_px
        self.bounds = (self.left, self.top - size_px * RES_M, self.left + size_px * RES_M, self.top)

    def to_wgs84(self, pixel_geom: Polygon) -> dict:
        """A polygon in (col, row) pixel units to a GeoJSON dict in lon/lat."""

        def px_to_ll(px: np.ndarray) -> np.ndarray:
            x = self.left + px[:, 0] * RES_M
            y = self.top - px[:, 1] * RES_M
            return np.column_stack(self.to_ll.transform(x, y))

        return mapping(shp_transform(pixel_geom, px_to_ll))

    def footprint(self) -> dict:
        return self.to_wgs84(box(0, 0, self.size, self.size))

    def to_lonlat(self, col: float, row: float) -> tuple[float, float]:
        lon, lat = self.to_ll.transform(self.left + col * RES_M, self.top - row * RES_M)
        return float(lon), float(lat)


def _smooth_noise(rng: np.random.Generator, n: int, scale: int) -> np.ndarray:
    coarse = rng.random((max(2, n // scale), max(2, n // scale)))
    return ndimage.zoom(coarse, n / coarse.shape[0], order=3)[:n, :n]


def _landscape(rng: np.random.Generator, n: int) -> np.ndarray:
    """Forest, paddy and bare hills as a float RGB image in 0..1."""
    cover = _smooth_noise(rng, n, 25)
    forest = np.array([0.13, 0.27, 0.12])
    paddy = np.array([0.45, 0.52, 0.26])
    bare = np.array([0.55, 0.45, 0.33])
    img = np.where((cover < 0.45)[..., None], forest, np.where((cover < 0.75)[..., None], paddy, bare))
    img = img * (0.85 + 0.3 * _smooth_noise(rng, n, 4))[..., None]
    return np.clip(img + rng.normal(0, 0.015, (n, n, 3)), 0, 1)


def _mask(geom: Polygon, n: int) -> np.ndarray:
    cols, rows = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
    return contains_xy(geom, cols, rows)


def _alert(
    site: SampleSite,
    grid: _Grid,
    pixel_geom: Polygon,
    change: ChangeType,
    confidence: Confidence,
    sensors: list[str],
    windows: Windows,
    p_value: float | None,
) -> Alert:
    key = f"{site.id}:{change.value}:{pixel_geom.centroid.wkt}"
    return Alert(
        id=f"{site.id}-{change.value.replace('_', '-')}-{hashlib.sha1(key.encode()).hexdigest()[:6]}",
        hotspot_id=site.id,
        change_type=change,
        area_ha=round(pixel_geom.area * RES_M * RES_M / 1e4, 2),
        first_observed=windows.after[0] + timedelta(days=3),
        last_observed=windows.after[1] - timedelta(days=1),
        last_clear_before=windows.before[1] - timedelta(days=2),
        confidence=confidence,
        sensors=sensors,
        methods=["dnbr"] if sensors == ["sentinel-2"] else ["dnbr", "s1-welch-t"],
        observations=2,
        score_mean=0.41,
        score_max=0.77,
        p_value=p_value,
        # The sample's optical test: strong change wherever Sentinel-2 saw it (synthetic, like the rest).
        optical_p_value=1e-12 if "sentinel-2" in sensors else None,
        thermal_detections=None,
        scene_ids=["S2B_MSIL2A_20251210", "S1A_IW_GRDH_20251212"],
        geometry=grid.to_wgs84(pixel_geom),
    )


SATELLITES = {"VIIRS": ("Suomi NPP", "NOAA-20"), "MODIS": ("Aqua",)}


def _fire(
    grid: _Grid,
    col: float,
    row: float,
    when: datetime,
    *,
    instrument: str = "VIIRS",
    satellite: int = 0,
    confidence: str = "nominal",
    frp: float | None = 4.2,
    simulated: bool,
) -> FireDetection:
    """One detection at pixel (col, row) of the grid, acquired at `when` (UTC)."""
    lon, lat = grid.to_lonlat(col, row)
    family = "VIIRS_SNPP" if satellite == 0 else "VIIRS_NOAA20"
    return FireDetection(
        time=when,
        latitude=round(lat, 5),
        longitude=round(lon, 5),
        satellite=SATELLITES[instrument][satellite],
        instrument=instrument,
        confidence=confidence,
        frp=frp,
        daynight="D" if 6 <= (when.hour + 7) % 24 < 18 else "N",  # local time, UTC+7
        product="simulated" if simulated else ("MODIS_NRT" if instrument == "MODIS" else f"{family}_NRT"),
    )


def _with_thermal(alert: Alert, fires: list[FireDetection], crs: str) -> Alert:
    """The alert with its thermal fields as the pipeline fills them; a confirmed burn adds the fire's sensor."""
    near = fires_near(alert, fires, crs)
    update: dict = {"thermal_detections": len(near)}
    if near:
        times = sorted(f.time for f in near)
        update.update(
            thermal_first=times[0],
            thermal_last=times[-1],
            thermal_frp_max=max((f.frp for f in near if f.frp is not None), default=None),
        )
        if alert.change_type is ChangeType.BURN_SCAR:
            update.update(
                sensors=[*alert.sensors, *sorted({f.instrument.lower() for f in near})],
                methods=[*alert.methods, "active-fire"],
            )
    return alert.model_copy(update=update)


def _ellipse(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0) -> Polygon:
    return affinity.rotate(affinity.scale(Point(cx, cy).buffer(1.0, 24), rx, ry), angle)


def sample_results(
    run_date: date = date(2025, 12, 22),
    *,
    simulated: bool = True,
    size_px: int = 160,
    extra_areas: int = 0,
    seed: int = 7,
) -> list[tuple[HotspotResult, Chips | None]]:
    """Five areas that cover every case a briefing must handle, plus optional plain extra areas.

    preah-vihear: alerts of four types (one a MultiPolygon), the burn scar confirmed by active fires, two later
    fires on no alert; chong-an-ma: partly observed, thermal checked and no fire seen; ta-muen-thom: observed, no
    alerts, two fires on no alert; chong-bok: not observed, thermal not checked; poipet: failed.
    """
    rng = np.random.default_rng(seed)
    windows = sample_windows(run_date)
    source = "simulator" if simulated else "stac"
    thermal_source = "simulator" if simulated else "firms"
    n = size_px
    after0 = datetime.combine(windows.after[0], datetime.min.time(), tzinfo=UTC)

    def at(day: int, hh: int, mm: int) -> datetime:
        """A time (UTC) `day` days into the after window."""
        return after0 + timedelta(days=day, hours=hh, minutes=mm)

    out: list[tuple[HotspotResult, Chips | None]] = []

    def base(site: SampleSite, grid: _Grid | None) -> dict:
        g = grid or _Grid(site.lon, site.lat, n)
        return dict(
            area_id=site.id,
            name=site.name,
            name_th=site.name_th,
            name_km=site.name_km,
            province_th=site.province_th,
            province_kh=site.province_kh,
            priority=site.priority,
            coordinates=site.coordinates,
            notes=site.notes,
            footprint=g.footprint(),
            crs=g.crs,
            bounds=g.bounds,
            windows=windows,
            source=source,
            simulated=simulated,
        )

    def coverage(optical: float, sar: float, unobserved: float, status: str) -> Coverage:
        return Coverage(
            optical_scenes_before=9,
            optical_scenes_after=3,
            optical_observed_fraction=optical,
            optical_last_clear=run_date - timedelta(days=3) if optical >= 0.5 else None,
            sar_scenes_before=15,
            sar_scenes_after=2,
            sar_observed_fraction=sar,
            sar_last=run_date - timedelta(days=1) if sar > 0 else None,
            not_observed_fraction=unobserved,
            status=status,  # type: ignore[arg-type]
        )

    for site in SITES:
        grid = _Grid(site.lon, site.lat, n)
        before = _landscape(rng, n)
        after = before * (0.97 + 0.06 * rng.random((1, 1, 3)))
        unobserved = np.zeros((n, n), dtype=bool)
        alerts: list[Alert] = []
        warnings: list[str] = []
        fires: list[FireDetection] = []
        thermal: str | None = thermal_source
        if site.id == "preah-vihear":
            burn = _ellipse(0.35 * n, 0.4 * n, 0.12 * n, 0.07 * n, 30)
            crater_a = _ellipse(0.7 * n, 0.3 * n, 0.05 * n, 0.04 * n)
            crater_b = _ellipse(0.78 * n, 0.4 * n, 0.04 * n, 0.03 * n)
            damage = box(0.55 * n, 0.62 * n, 0.66 * n, 0.7 * n)
            earth = Polygon(
                [(0.15 * n, 0.75 * n), (0.15 * n, 0.85 * n), (0.4 * n, 0.85 * n), (0.4 * n, 0.75 * n)]
            )
            after[_mask(burn, n)] = [0.09, 0.07, 0.06]
            after[_mask(crater_a, n) | _mask(crater_b, n)] *= 0.55
            after[_mask(damage, n)] = [0.62, 0.6, 0.58]
            after[_mask(earth, n)] = [0.72, 0.6, 0.45]
            alerts = [
                _alert(
                    site,
                    grid,
                    burn,
                    ChangeType.BURN_SCAR,
                    Confidence.HIGHEST,
                    ["sentinel-2", "sentinel-1"],
                    windows,
                    3e-7,
                ),
                _alert(
                    site,
                    grid,
                    MultiPolygon([crater_a, crater_b]),
                    ChangeType.CRATER_FIELD,
                    Confidence.HIGH,
                    ["sentinel-1"],
                    windows,
                    2.1e-5,
                ),
                _alert(
                    site,
                    grid,
                    damage,
                    ChangeType.STRUCTURAL_DAMAGE,
                    Confidence.LOW,
                    ["sentinel-1"],
                    windows,
                    4e-3,
                ),
                # Pixel rows run south, so rings reach lon/lat in either winding: the writer re-orients.
                _alert(
                    site, grid, earth, ChangeType.EARTHWORKS, Confidence.LOW, ["sentinel-2"], windows, None
                ),
            ]
            fire = partial(_fire, grid, simulated=simulated)
            fires = [
                # The burn: Suomi NPP by day (~13:40 local), NOAA-20 by night, both before the burn's first clear
                # image (day 3).
                fire(0.28 * n, 0.36 * n, at(1, 6, 41), confidence="high", frp=18.6),
                fire(0.38 * n, 0.37 * n, at(1, 18, 27), satellite=1, frp=9.4),
                fire(0.31 * n, 0.36 * n, at(2, 6, 22), frp=5.1),
                # After the last clear image (day 12): fires no image has seen yet, so on no alert.
                fire(0.84 * n, 0.86 * n, at(13, 6, 35), confidence="low", frp=2.3),
                fire(0.8 * n, 0.9 * n, at(13, 6, 50), instrument="MODIS", frp=12.0),
                fire(0.7 * n, 0.1 * n, at(14, 18, 3), satellite=1, frp=3.8),
            ]
            alerts = [_with_thermal(a, fires, grid.crs) for a in alerts]
            cov = coverage(0.97, 1.0, 0.0, "observed")
        elif site.id == "chong-an-ma":
            cloud = _smooth_noise(rng, n, 40) > 0.6
            unobserved = ndimage.binary_opening(cloud, iterations=2)
            loss = _ellipse(0.3 * n, 0.3 * n, 0.09 * n, 0.06 * n, -20)
            after[_mask(loss, n)] = [0.5, 0.42, 0.3]
            alerts = [
                _alert(
                    site,
                    grid,
                    loss,
                    ChangeType.VEGETATION_LOSS,
                    Confidence.HIGH,
                    ["sentinel-2"],
                    windows,
                    None,
                )
            ]
            alerts = [_with_thermal(a, fires, grid.crs) for a in alerts]
            warnings = ["no Sentinel-1 scene in the after window: radar could not confirm or add alerts"]
            frac = float(unobserved.mean())
            cov = coverage(1 - frac, 0.0, frac, "partly observed")
        elif site.id == "ta-muen-thom":
            # A fire that left no scar the images could see is still a fire.
            fires = [
                _fire(grid, 0.62 * n, 0.55 * n, at(7, 18, 40), satellite=1, frp=6.7, simulated=simulated),
                _fire(grid, 0.6 * n, 0.58 * n, at(8, 6, 29), frp=3.1, simulated=simulated),
            ]
            cov = coverage(0.92, 1.0, 0.0, "observed")
        elif site.id == "chong-bok":
            thermal = None
            warnings = [
                f"active fires not checked ({thermal_source}): the request timed out after 3 tries; re-run "
                "the area to add them"
            ]
            unobserved = np.ones((n, n), dtype=bool)
            unobserved[: n // 8, : n // 6] = False
            cov = coverage(0.02, 0.0, float(unobserved.mean()), "not observed")
        else:  # poipet: the run failed before any coverage or chips were made
            res = HotspotResult(
                **base(site, grid),
                status="failed",
                thermal_source=None,
                warnings=["the STAC catalogue answered slowly; 2 of 5 scene searches were retried"],
                error="SceneLoadError: scene S2B_MSIL2A_20251219T033139 could not be read after 3 tries "
                "(HTTP 503 from the catalogue); re-run 'borderwatch check poipet' later.",
            )
            out.append((res, None))
            continue
        after = np.where(unobserved[..., None], 0.86, after)
        # Where each sensor missed, outlined as the pipeline does (radar saw everything it had a scene of).
        radar = np.full((n, n), cov.sar_observed_fraction > 0)
        geobox = GeoBox.from_bbox(grid.bounds, crs=grid.crs, resolution=RES_M)
        gaps = coverage_gaps(~unobserved, radar, np.ones((n, n), bool), geobox, box(*grid.bounds))
        chips = Chips(
            before_rgb=(np.clip(before, 0, 1) * 255).astype(np.uint8),
            after_rgb=(np.clip(after, 0, 1) * 255).astype(np.uint8),
            unobserved=unobserved,
        )
        res = HotspotResult(
            **base(site, grid),
            status="ok",
            warnings=warnings,
            coverage=cov,
            alerts=alerts,
            thermal_source=thermal,
            fires=fires,
            gaps=gaps,
            chips="chips.npz",
            scene_ids=["S2B_MSIL2A_20251210", "S1A_IW_GRDH_20251212"],
        )
        out.append((res, chips))

    for i, (sid, name, lat, lon) in enumerate(EXTRA_SITES[:extra_areas]):
        site = SampleSite(sid, name, lat, lon, 3, province_th="—", province_kh="—", coordinates="estimated")
        grid = _Grid(lon, lat, n)
        before = _landscape(rng, n)
        chips = Chips(
            before_rgb=(before * 255).astype(np.uint8),
            after_rgb=(before * 255).astype(np.uint8),
            unobserved=np.zeros((n, n), dtype=bool),
        )
        res = HotspotResult(
            **base(site, grid),
            status="ok",
            coverage=coverage(0.9 - 0.05 * i, 1.0, 0.0, "observed"),
            thermal_source=thermal_source,
            chips="chips.npz",
        )
        out.append((res, chips))
    return out


def write_sample_run(run_dir: Path, **kwargs: object) -> list[HotspotResult]:
    """Write sample_results() as a run folder: areas/<id>/result.json and chips.npz."""
    results = []
    for res, chips in sample_results(**kwargs):  # type: ignore[arg-type]
        folder = area_dir(run_dir, res.area_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.json").write_text(res.model_dump_json(indent=2), encoding="utf-8")
        if chips is not None:
            np.savez_compressed(
                folder / "chips.npz",
                before_rgb=chips.before_rgb,
                after_rgb=chips.after_rgb,
                unobserved=chips.unobserved,
            )
        results.append(res)
    return results
