"""Report: the per-area map figure (before, after, change overlay) rendered with matplotlib to PNG bytes."""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers; Figure objects below never touch pyplot either

import numpy as np
import rasterio.features
from affine import Affine
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
from pyproj import Transformer
from shapely import transform as shp_transform
from shapely.geometry import MultiPolygon, Polygon, shape

from monitoring.report.load import Chips
from monitoring.report.text import date_range
from monitoring.results import CHANGE_LABELS, Alert, ChangeType, HotspotResult

# Bright outlines with a dark halo read on forest, paddy, bare soil and cloud alike; hues kept apart for
# colour-blind readers (no red/green pair carries meaning).
CHANGE_COLOURS: dict[ChangeType, str] = {
    ChangeType.BURN_SCAR: "#ff7f0e",
    ChangeType.CRATER_FIELD: "#ffe119",
    ChangeType.STRUCTURAL_DAMAGE: "#f032e6",
    ChangeType.EARTHWORKS: "#42d4f4",
    ChangeType.VEGETATION_LOSS: "#4363d8",  # not white: it must show on the hatching of what optics could not see
}
UNOBSERVED_RGBA = (0.35, 0.35, 0.35, 0.6)
OUTSIDE_RGBA = (1.0, 1.0, 1.0, 0.6)
"""The grid's box beyond a drawn area (not analysed for it): washed out, so it reads as neither quiet nor unseen."""
OUTSIDE_LABEL = "Outside the area"


@dataclass(frozen=True)
class ContextStyle:
    """How the map draws polygons that are context, not alerts: thin broken outlines beneath the alerts."""

    label: str
    line: dict[str, Any]
    """matplotlib line properties (colour, dashes, gid)."""


FARM_BURNING = ContextStyle(
    "Farm burning", {"color": "#d9d9d9", "linestyle": (0, (2, 1)), "gid": "seasonal-burns"}
)
"""Burns set aside as the season's farm burning: pale dashed."""
WITHDRAWN = ContextStyle(
    "No longer detected", {"color": "#737373", "linestyle": (0, (1, 1)), "gid": "withdrawn-alerts"}
)
"""Alerts the previous daily run reported that this run no longer detects: dotted grey, where they were."""
FIRE_COLOUR = "#f03b20"
"""Active-fire detections: small orange-red triangles with a black edge and a white halo, a shape no alert has, so
they read on dark burn scars, pale fields and in greyscale print alike."""
FIRE_LABEL = "Active fire (VIIRS/MODIS), after window"
FIRE_MARKER: dict[str, Any] = {
    "linestyle": "none",
    "marker": "^",
    "markersize": 6.0,
    "markerfacecolor": FIRE_COLOUR,
    "markeredgecolor": "black",
    "markeredgewidth": 0.7,
}
DPI = 150
FIG_SIZE_IN = (7.2, 5.2)

_HALO = [patheffects.withStroke(linewidth=3.2, foreground="black")]
_THIN_HALO = [patheffects.withStroke(linewidth=2.0, foreground="black", alpha=0.6)]
_FIRE_HALO = [patheffects.withStroke(linewidth=2.2, foreground="white")]


@functools.lru_cache(maxsize=16)
def _to_grid(crs: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def alert_polygons(alert: Alert, crs: str) -> list[Polygon]:
    """The alert's polygons in the chip's CRS (the grid's UTM zone)."""
    return grid_polygons(alert.geometry, crs)


def grid_polygons(geometry: dict[str, Any], crs: str) -> list[Polygon]:
    """A GeoJSON (Multi)Polygon in lon/lat as polygons in the chip's CRS (the grid's UTM zone)."""
    t = _to_grid(crs)
    g = shape(geometry)
    g = shp_transform(g, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))
    if isinstance(g, MultiPolygon):
        return list(g.geoms)
    return [g] if isinstance(g, Polygon) else []


def _nice_length(span_m: float) -> float:
    """A round scale-bar length near a fifth of the map width."""
    target = span_m / 5
    for step in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 25000, 50000):
        if step >= target:
            return float(step)
    return 100000.0


def _scale_label(m: float) -> str:
    return f"{m / 1000:g} km" if m >= 1000 else f"{m:g} m"


def _north_arrow(ax: Any) -> None:
    # The chip is on a UTM grid: up is grid north, within about a degree of true north at these latitudes.
    ax.annotate(
        "",
        xy=(0.93, 0.95),
        xytext=(0.93, 0.79),
        xycoords="axes fraction",
        arrowprops={
            "facecolor": "white",
            "edgecolor": "black",
            "width": 3.5,
            "headwidth": 9,
            "headlength": 7,
            "linewidth": 0.8,
        },
    )
    ax.text(
        0.93,
        0.73,
        "N",
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=8,
        fontweight="bold",
        color="white",
        path_effects=_HALO,
    )


def fire_points(result: HotspotResult) -> tuple[np.ndarray, np.ndarray]:
    """The area's active-fire detections (pixel centres) in the chip's CRS."""
    if not result.fires:
        return np.zeros(0), np.zeros(0)
    x, y = _to_grid(result.crs).transform(
        [f.longitude for f in result.fires], [f.latitude for f in result.fires]
    )
    return np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")


def _panel(ax: Any, rgb: np.ndarray, extent: tuple[float, float, float, float], title: str) -> None:
    ax.imshow(rgb, extent=extent, origin="upper", interpolation="nearest")
    ax.set_title(title, fontsize=7.5, pad=3)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")


def _hatch_unobserved(ax: Any, unobserved: np.ndarray, extent: tuple[float, float, float, float]) -> None:
    if not unobserved.any():
        return
    overlay = np.zeros((*unobserved.shape, 4))
    overlay[unobserved] = UNOBSERVED_RGBA
    ax.imshow(overlay, extent=extent, origin="upper", interpolation="nearest")
    h, w = unobserved.shape
    left, right, bottom, top = extent
    xs = left + (np.arange(w) + 0.5) * (right - left) / w
    ys = top - (np.arange(h) + 0.5) * (top - bottom) / h
    with matplotlib.rc_context({"hatch.color": "white", "hatch.linewidth": 0.6}):
        cs = ax.contourf(xs, ys, unobserved.astype(float), levels=[0.5, 1.5], colors="none", hatches=["////"])
    # contourf draws edges in the hatch colour; keep only the hatching.
    for coll in getattr(cs, "collections", [cs]):
        coll.set_edgecolor("white")
        coll.set_linewidth(0)


def outside_area(result: HotspotResult, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) bool on the chips: pixels whose centre lies outside the area's footprint. None of a hot spot's
    square; the rest of a drawn polygon's bounding box, which the grid (and so the images) covers."""
    left, bottom, right, top = result.bounds
    h, w = shape
    transform = Affine((right - left) / w, 0.0, left, 0.0, -(top - bottom) / h, top)
    polys = grid_polygons(result.footprint, result.crs)
    return rasterio.features.geometry_mask(polys, out_shape=shape, transform=transform)


def _draw_outside(ax: Any, result: HotspotResult, outside: np.ndarray, extent: tuple[float, ...]) -> None:
    overlay = np.zeros((*outside.shape, 4))
    overlay[outside] = OUTSIDE_RGBA
    ax.imshow(overlay, extent=extent, origin="upper", interpolation="nearest")
    for poly in grid_polygons(result.footprint, result.crs):
        for ring in (poly.exterior, *poly.interiors):
            x, y = ring.xy
            ax.plot(x, y, color="black", linewidth=0.9, linestyle=(0, (4, 2)), gid="area-outline")


def _legend(fig: Figure, handles: list[Any], *, ncol: int) -> Any:
    return fig.legend(
        handles=handles,
        loc="lower center",
        ncol=ncol,
        fontsize=7.5,
        frameon=False,
        handlelength=1.8,
        columnspacing=1.4,
        bbox_to_anchor=(0.5, 0.0),
    )


def render_area_figure(result: HotspotResult, chips: Chips, *, order: list[Alert], dpi: int = DPI) -> bytes:
    """The change map (large, left) beside the before and after chips (small, right), as PNG bytes.

    Alerts are outlined in the colour of their change type and numbered in the order of the page's table; active
    fires in the after window are small triangles.
    """
    fig = area_figure(result, chips, order=order, dpi=dpi)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def area_figure(result: HotspotResult, chips: Chips, *, order: list[Alert], dpi: int = DPI) -> Figure:
    """The figure render_area_figure draws (the change map is the first axes)."""
    left, bottom, right, top = result.bounds
    extent = (left, right, bottom, top)
    w = result.windows
    fw, fh = FIG_SIZE_IN
    fig = Figure(figsize=FIG_SIZE_IN, dpi=dpi)

    def axes_in(x: float, y: float, size: float) -> Any:
        # Positions in inches keep the panels square and the layout the same for every area.
        return fig.add_axes((x / fw, y / fh, size / fw, size / fh))

    big, small, legend_h, title_h = 4.55, 2.12, 0.42, 0.2
    ax = axes_in(0.04, legend_h, big)
    ax_after = axes_in(fw - small - 0.04, legend_h, small)
    ax_before = axes_in(fw - small - 0.04, legend_h + small + title_h + 0.11, small)
    _panel(ax, chips.after_rgb, extent, "Change alerts on the after image")
    _panel(ax_before, chips.before_rgb, extent, f"Before  {date_range(w.before)}")
    _panel(ax_after, chips.after_rgb, extent, f"After  {date_range(w.after)}")
    _hatch_unobserved(ax, chips.unobserved, extent)
    outside = outside_area(result, chips.unobserved.shape)
    if outside.any():
        _draw_outside(ax, result, outside, extent)
    # Context beneath the alerts, thin and broken: burns set aside as farm burning, alerts no longer detected.
    context = [(FARM_BURNING, result.seasonal_burns), (WITHDRAWN, result.withdrawn)]
    for style, alerts in context:
        for alert in alerts:
            for poly in alert_polygons(alert, result.crs):
                x, y = poly.exterior.xy
                ax.plot(x, y, linewidth=0.9, path_effects=_THIN_HALO, **style.line)
    present: list[ChangeType] = []
    for number, alert in enumerate(order, start=1):
        colour = CHANGE_COLOURS[alert.change_type]
        if alert.change_type not in present:
            present.append(alert.change_type)
        polys = alert_polygons(alert, result.crs)
        for poly in polys:
            for ring in (poly.exterior, *poly.interiors):
                x, y = ring.xy
                ax.plot(x, y, color=colour, linewidth=1.5, path_effects=_HALO, solid_joinstyle="round")
        if polys:
            pt = max(polys, key=lambda p: p.area).representative_point()
            ax.text(
                pt.x,
                pt.y,
                str(number),
                fontsize=7,
                ha="center",
                va="center",
                fontweight="bold",
                color="black",
                bbox={"boxstyle": "round,pad=0.15", "fc": colour, "ec": "black", "lw": 0.5},
            )
    fx, fy = fire_points(result)
    if fx.size:
        # Above the outlines, below the alert numbers (text, zorder 3), which must stay readable.
        ax.plot(fx, fy, **FIRE_MARKER, path_effects=_FIRE_HALO, zorder=2.5, gid="active-fires")
    span = right - left
    length = _nice_length(span)
    bar = AnchoredSizeBar(
        ax.transData,
        length,
        _scale_label(length),
        "lower left",
        pad=0.35,
        borderpad=0.5,
        sep=2,
        color="black",
        frameon=True,
        size_vertical=span / 150,
        fontproperties={"size": 7},
    )
    bar.patch.set_alpha(0.85)
    ax.add_artist(bar)
    _north_arrow(ax)

    handles: list[Any] = [
        Line2D([], [], color=CHANGE_COLOURS[t], linewidth=2.2, path_effects=_HALO, label=CHANGE_LABELS[t])
        for t in present
    ]
    handles += [
        Line2D([], [], linewidth=1.2, path_effects=_THIN_HALO, label=style.label, **style.line)
        for style, alerts in context
        if alerts
    ]
    if fx.size:
        handles.append(Line2D([], [], **FIRE_MARKER, path_effects=_FIRE_HALO, label=FIRE_LABEL))
    if chips.unobserved.any():
        handles.append(
            Patch(facecolor=UNOBSERVED_RGBA, edgecolor="white", hatch="////", label="No clear optical view")
        )
    if outside.any():
        handles.append(Patch(facecolor="#f2f2f2", edgecolor="black", linestyle="--", label=OUTSIDE_LABEL))
    if not present:
        handles.insert(0, Line2D([], [], linestyle="none", label="No change alerts"))
    legend = _legend(fig, handles, ncol=min(6, len(handles)))
    if legend.get_window_extent(FigureCanvasAgg(fig).get_renderer()).width > 0.98 * fig.bbox.width:
        # Too wide for one row (many types, the long fire label): two rows rather than cut-off labels.
        legend.remove()
        _legend(fig, handles, ncol=math.ceil(len(handles) / 2))
    return fig
