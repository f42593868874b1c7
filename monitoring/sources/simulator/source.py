"""Fetch (simulator): SimulatorSource, the built-in ImagerySource: lazy dask graphs of scenes on the AOI grid.

Only the graph is built at load time: the ground of each block, each event raster and each scene block are
tasks, so nothing is rendered until the pipeline computes, and a block's ground is rendered once for all of
its scenes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import xarray as xr
from dask.base import tokenize
from odc.geo.xr import xr_coords

from monitoring.aoi import AOI
from monitoring.errors import ConfigError
from monitoring.preprocess.multilook import multilook_tile
from monitoring.sources.base import OPTICAL_BANDS, SAR_BANDS, ImagerySource
from monitoring.sources.simulator.events import (
    GroundTruthEvent,
    event_reach,
    ground_truth_for,
    render_event,
    scenario_anchors,
)
from monitoring.sources.simulator.landcover import Anchor, render_ground, worldcover
from monitoring.sources.simulator.optical import render_optical_block
from monitoring.sources.simulator.sar import render_sar_block
from monitoring.sources.simulator.scenario import Scenario, ScenarioEvent
from monitoring.sources.simulator.schedule import OpticalScene, SarScene, optical_scenes, sar_scenes
from monitoring.sources.simulator.thermal import simulate_fires
from monitoring.sources.simulator.world import Window, World, block_slices, grid_axes, world_for
from monitoring.sources.thermal import check_fires, empty_fires, fires_frame, search_bbox


def _render_and_finish(
    render: Callable[..., np.ndarray],
    finish: Callable[[np.ndarray], np.ndarray] | None,
    halo: int,
    *args: Any,
) -> np.ndarray:
    """One block rendered with its halo, finished, and cut back to the block."""
    out = render(*args)
    if finish is not None:
        out = finish(out)
    return np.ascontiguousarray(out[:, halo:-halo, halo:-halo]) if halo else out


def _multilook_stack(radius: int, block: np.ndarray) -> np.ndarray:
    """One rendered SAR block (VV, VH, valid planes) with VV and VH multilooked."""
    planes = dict(zip((*SAR_BANDS, "valid"), block, strict=True))
    looked = multilook_tile({**planes, "valid": planes["valid"] > 0.5}, radius)
    return np.stack([*(looked[p] for p in SAR_BANDS), block[-1]])


class _Layout:
    """An AOI cut into blocks, with the world frame and the events that can reach each block."""

    def __init__(self, source: SimulatorSource, aoi: AOI) -> None:
        self.aoi = aoi
        self.world: World = world_for(aoi.geobox, source.seed)
        self.anchors: tuple[Anchor, ...] = scenario_anchors(self.world, source.scenario)
        xs, ys = grid_axes(aoi.geobox)
        self.full = Window(xs, ys)
        self.rows = block_slices(len(ys), source.chunk_size)
        self.cols = block_slices(len(xs), source.chunk_size)
        self.windows = [[Window(xs[c], ys[r]) for c in self.cols] for r in self.rows]
        self.reach = {ev.id: event_reach(self.world, ev) for ev in source.scenario.events}
        self.token = tokenize(source.token, self.world.epsg, xs, ys, source.chunk_size)

    def padded(self, halo: int) -> list[list[Window]]:
        """The blocks with `halo` more pixels of the world on every side (beyond the AOI's edge too)."""
        if halo <= 0:
            return self.windows
        xs, ys = grid_axes(self.aoi.geobox.pad(halo))
        return [
            [Window(xs[c.start : c.stop + 2 * halo], ys[r.start : r.stop + 2 * halo]) for c in self.cols]
            for r in self.rows
        ]

    def events_near(self, win: Window, events: Sequence[ScenarioEvent]) -> list[ScenarioEvent]:
        x0, y0, x1, y1 = win.bounds()
        out = []
        for ev in events:
            ex0, ey0, ex1, ey1 = self.reach[ev.id]
            if ex0 <= x1 and ex1 >= x0 and ey0 <= y1 and ey1 >= y0:
                out.append(ev)
        return out


class SimulatorSource:
    """Simulated Sentinel-2 L2A and Sentinel-1 GRD for any AOI and date, with the scenario's conflict events.

    Deterministic: the same seed, scenario, AOI and dates give the same pixels, whatever the chunk size;
    overlapping AOIs (in one UTM zone) see the same ground, clouds and events.
    """

    name = "simulator"
    simulated = True

    def __init__(self, scenario: Scenario | None = None, *, seed: int = 2025, chunk_size: int = 512) -> None:
        if chunk_size < 16:
            raise ConfigError(
                f"chunk_size {chunk_size} is too small for the simulator; set chunk_size to 64 or more "
                "(settings.yaml, default 512)."
            )
        self.scenario = scenario if scenario is not None else Scenario()
        self.seed = int(seed)
        self.chunk_size = int(chunk_size)
        self.token = tokenize(self.scenario.model_dump_json(), self.seed)

    def __repr__(self) -> str:
        name, seed, cs = self.scenario.name, self.seed, self.chunk_size
        return f"SimulatorSource(scenario={name!r}, seed={seed}, chunk_size={cs})"

    # -- graph building -------------------------------------------------------------------------------------

    def _grounds(self, lay: _Layout, halo: int = 0) -> list[list[Any]]:
        return [
            [
                dask.delayed(render_ground, pure=True)(
                    lay.world, win, lay.anchors, dask_key_name=f"sim-ground{halo or ''}-{lay.token}-{i}-{j}"
                )
                for j, win in enumerate(row)
            ]
            for i, row in enumerate(lay.padded(halo))
        ]

    def _event_tasks(self, lay: _Layout) -> dict[str, Any]:
        near = lay.events_near(lay.full, self.scenario.events)
        return {
            ev.id: dask.delayed(render_event, pure=True)(
                lay.world, ev, lay.anchors, dask_key_name=f"sim-event-{lay.token}-{ev.id}"
            )
            for ev in near
        }

    def _stack(
        self,
        lay: _Layout,
        scenes: Sequence[OpticalScene | SarScene],
        n_out: int,
        render: Callable[..., Any],
        extra: Callable[[OpticalScene | SarScene, Window], tuple[Any, ...]],
        prefix: str,
        halo: int = 0,
        finish: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> da.Array:
        """(time, n_out, y, x) dask array: one task per scene and block. With a halo, each block is rendered
        `halo` pixels larger on every side, `finish` works on it and the halo is cut off again."""
        ny, nx = lay.aoi.shape
        if not scenes:
            return da.zeros(
                (0, n_out, ny, nx), dtype=np.float32, chunks=(1, n_out, self.chunk_size, self.chunk_size)
            )
        grounds = self._grounds(lay, halo)
        windows = lay.padded(halo)
        if halo or finish is not None:
            render = functools.partial(_render_and_finish, render, finish, halo)
        event_tasks = self._event_tasks(lay)
        block_events = [
            [
                dask.delayed(tuple, pure=True)(
                    [
                        event_tasks[ev.id]
                        for ev in lay.events_near(win, self.scenario.events)
                        if ev.id in event_tasks
                    ],
                    dask_key_name=f"sim-events{halo or ''}-{lay.token}-{i}-{j}",
                )
                for j, win in enumerate(row)
            ]
            for i, row in enumerate(windows)
        ]
        per_scene = []
        for scene in scenes:
            rows = []
            for i, row in enumerate(lay.windows):
                blocks = []
                for j, win in enumerate(row):
                    task = dask.delayed(render, pure=True)(
                        grounds[i][j],
                        block_events[i][j],
                        scene,
                        *extra(scene, windows[i][j]),
                        dask_key_name=f"{prefix}-{lay.token}-{scene.scene_id}-{i}-{j}",
                    )
                    blocks.append(da.from_delayed(task, shape=(n_out, *win.shape), dtype=np.float32))
                rows.append(blocks)
            per_scene.append(da.block([[b[None] for b in row] for row in rows]))
        return da.concatenate(per_scene, axis=0)

    def _dataset(
        self, lay: _Layout, stack: da.Array, names: Sequence[str], coords: dict[str, Any]
    ) -> xr.Dataset:
        geo = xr_coords(lay.aoi.geobox)
        data = {name: (("time", "y", "x"), stack[:, i]) for i, name in enumerate(names)}
        ds = xr.Dataset(data, coords={**geo, **coords})
        ds.attrs.update(source=self.name, simulated=1, scenario=self.scenario.name, seed=self.seed)
        return ds

    # -- ImagerySource ------------------------------------------------------------------------------------

    def load_optical(self, aoi: AOI, start: date, end: date) -> xr.Dataset:
        """Sentinel-2 L2A scenes from start to end (inclusive): reflectance B02 B03 B04 B08 B11 B12, SCL."""
        lay = _Layout(self, aoi)
        c = aoi.footprint.centroid
        scenes = optical_scenes(c.x, c.y, start, end, seed=self.seed, clouds=self.scenario.clouds)
        bg = self.scenario.background
        stack = self._stack(
            lay,
            scenes,
            len(OPTICAL_BANDS) + 1,
            render_optical_block,
            lambda s, w: (lay.world, w, bg),
            "sim-s2",
        )
        coords = {
            "time": ("time", np.array([np.datetime64(s.time, "ns") for s in scenes], "datetime64[ns]")),
            "scene_id": ("time", np.array([s.scene_id for s in scenes], dtype=object)),
            "platform": ("time", np.array([s.platform for s in scenes], dtype=object)),
            "cloud_cover": ("time", np.array([round(100 * s.cloud_fraction, 2) for s in scenes], np.float64)),
        }
        ds = self._dataset(lay, stack, (*OPTICAL_BANDS, "SCL"), coords)
        ds["SCL"] = ds["SCL"].astype(np.uint8)
        for b in OPTICAL_BANDS:
            ds[b].attrs.update(units="1", long_name=f"Sentinel-2 L2A surface reflectance {b}")
        return ds

    def load_sar(self, aoi: AOI, start: date, end: date, *, multilook_px: int = 0) -> xr.Dataset:
        """Sentinel-1 IW GRD scenes between start and end (inclusive): VV, VH linear gamma0 and valid;
        multilook_px > 0: VV and VH multilooked as each block is rendered (monitoring.preprocess.multilook)."""
        lay = _Layout(self, aoi)
        c = aoi.footprint.centroid
        scenes = sar_scenes(c.x, c.y, start, end, seed=self.seed)
        bg = self.scenario.background
        stack = self._stack(
            lay,
            scenes,
            len(SAR_BANDS) + 1,
            render_sar_block,
            lambda s, w: (w, bg),
            f"sim-s1-ml{multilook_px}" if multilook_px else "sim-s1",
            halo=max(multilook_px, 0),
            finish=functools.partial(_multilook_stack, multilook_px) if multilook_px > 0 else None,
        )
        coords = {
            "time": ("time", np.array([np.datetime64(s.time, "ns") for s in scenes], "datetime64[ns]")),
            "scene_id": ("time", np.array([s.scene_id for s in scenes], dtype=object)),
            "platform": ("time", np.array([s.platform for s in scenes], dtype=object)),
            "orbit_direction": ("time", np.array([s.orbit_direction for s in scenes], dtype=object)),
            "relative_orbit": ("time", np.array([s.relative_orbit for s in scenes], np.int64)),
        }
        ds = self._dataset(lay, stack, (*SAR_BANDS, "valid"), coords)
        ds["valid"] = ds["valid"] > 0.5
        ds.attrs["multilook_px"] = multilook_px
        for b in SAR_BANDS:
            ds[b].attrs.update(units="1", long_name=f"Sentinel-1 GRD terrain-flattened gamma0 {b} (linear)")
        return ds

    def load_landcover(self, aoi: AOI) -> xr.DataArray:
        """ESA WorldCover codes of the simulated ground (before any event), on the AOI grid."""
        lay = _Layout(self, aoi)
        grounds = self._grounds(lay)
        blocks = [
            [
                da.from_delayed(
                    dask.delayed(worldcover, pure=True)(grounds[i][j]), shape=win.shape, dtype=np.uint8
                )
                for j, win in enumerate(row)
            ]
            for i, row in enumerate(lay.windows)
        ]
        geo = xr_coords(aoi.geobox)
        out = xr.DataArray(da.block(blocks), dims=("y", "x"), coords=geo, name="landcover")
        out.attrs.update(classification="ESA WorldCover", source=self.name, simulated=1)
        return out

    def ground_truth(self, aoi: AOI, until: date) -> list[GroundTruthEvent]:
        """The scenario's events on or before `until` that changed pixels in the AOI, with their masks."""
        lay = _Layout(self, aoi)
        out = []
        for ev in lay.events_near(lay.full, self.scenario.events):
            if ev.date <= until:
                gt = ground_truth_for(lay.world, ev, lay.anchors, lay.full)
                if gt is not None:
                    out.append(gt)
        return sorted(out, key=lambda g: (g.date, g.id))

    # -- ThermalSource ------------------------------------------------------------------------------------

    def load_fires(self, aoi: AOI, start: date, end: date) -> gpd.GeoDataFrame:
        """Simulated VIIRS active fires (Suomi NPP, NOAA-20, NOAA-21) as NASA FIRMS delivers them, for the
        AOI's search box and UTC days start..end: the scenario's burn scars, its farm burning and stray fires
        (monitoring.sources.simulator.thermal)."""
        if end < start:
            return check_fires(empty_fires(), aoi, start, end)
        world = world_for(aoi.geobox, self.seed)
        anchors = scenario_anchors(world, self.scenario)
        frame = simulate_fires(world, self.scenario, search_bbox(aoi), start, end, anchors=anchors)
        return check_fires(fires_frame(frame) if len(frame) else empty_fires(), aoi, start, end)


_: type[ImagerySource] = SimulatorSource  # checked statically: the simulator keeps the source contract
