"""Report: the briefing PDF (cover with summary and caveats, then one page per area) built with reportlab."""

from __future__ import annotations

import io
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import (
    Flowable,
    Image,
    KeepInFrame,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from shapely.geometry import shape

from monitoring.atomic import atomic_write
from monitoring.errors import ReportError
from monitoring.report import figures
from monitoring.report.fires import local_text, match_fires
from monitoring.report.fonts import body_fonts, render_script, script_font, shaping_available
from monitoring.report.load import Chips, chips_path, load_chips, sort_results
from monitoring.report.text import (
    CONFIDENCE_RANK,
    DEFAULT_TITLE,
    PRELIMINARY,
    SIMULATED_EXPLAINED,
    SIMULATED_NOTICE,
    coverage_line,
    date_range,
    fire_line,
    format_p,
    highest_confidence,
    iso,
    observation_status,
    pct,
    provinces_line,
    statement,
)
from monitoring.results import (
    CHANGE_LABELS,
    DRAWN_SHARE,
    LIFECYCLE_LABELS,
    Alert,
    ChangeType,
    Confidence,
    HotspotResult,
    Windows,
)

log = logging.getLogger(__name__)

PAGE_W, PAGE_H = A4
MARGIN_X = 40.0
MARGIN_TOP = 50.0
MARGIN_BOTTOM = 44.0
FRAME_W = PAGE_W - 2 * MARGIN_X
# SimpleDocTemplate's frame has 6 pt padding on each side.
CONTENT_W = FRAME_W - 12
CONTENT_H = PAGE_H - MARGIN_TOP - MARGIN_BOTTOM - 12

MAX_ALERT_ROWS = 14
"""More rows would not fit beside the maps; the rest are summed up in a line and are all in the GeoJSON."""

RED = colors.HexColor("#c0111f")
INK = colors.HexColor("#1a1a1a")
GREY = colors.HexColor("#666666")
RULE = colors.HexColor("#bbbbbb")
HEAD_BG = colors.HexColor("#2f3b4c")
ZEBRA = colors.HexColor("#f3f5f7")
STATUS_BG = {
    "partly observed": colors.HexColor("#fff6d6"),
    "not observed": colors.HexColor("#fde3c3"),
    "failed": colors.HexColor("#f7d0d3"),
}
STATUS_EDGE = {
    "observed": colors.HexColor("#6b7b8c"),
    "partly observed": colors.HexColor("#c9a227"),
    "not observed": colors.HexColor("#d9822b"),
    "failed": RED,
}

TYPE_ORDER = list(ChangeType)
TYPE_SHORT = {
    ChangeType.BURN_SCAR: "Burn<br/>scar",
    ChangeType.CRATER_FIELD: "Crater<br/>field",
    ChangeType.STRUCTURAL_DAMAGE: "Struct.<br/>damage",
    ChangeType.EARTHWORKS: "Earth-<br/>works",
    ChangeType.VEGETATION_LOSS: "Veg.<br/>loss",
}


@dataclass(frozen=True)
class _Styles:
    title: ParagraphStyle
    subtitle: ParagraphStyle
    h1: ParagraphStyle
    h2: ParagraphStyle
    body: ParagraphStyle
    small: ParagraphStyle
    cell: ParagraphStyle
    cell_head: ParagraphStyle
    statement: ParagraphStyle
    caption: ParagraphStyle
    font: str
    bold: str


def _styles() -> _Styles:
    regular, bold, italic = body_fonts()
    body = ParagraphStyle("body", fontName=regular, fontSize=8.3, leading=10.8, textColor=INK, spaceAfter=3)
    return _Styles(
        title=ParagraphStyle("title", parent=body, fontName=bold, fontSize=16.5, leading=20, spaceAfter=2),
        subtitle=ParagraphStyle(
            "subtitle", parent=body, fontSize=9.5, leading=12, textColor=GREY, spaceAfter=8
        ),
        h1=ParagraphStyle("h1", parent=body, fontName=bold, fontSize=13, leading=16, spaceAfter=2),
        h2=ParagraphStyle(
            "h2", parent=body, fontName=bold, fontSize=9.3, leading=12, spaceBefore=5, spaceAfter=2
        ),
        body=body,
        small=ParagraphStyle("small", parent=body, fontSize=7.4, leading=9.4, spaceAfter=2),
        cell=ParagraphStyle("cell", parent=body, fontSize=7, leading=8.6, spaceAfter=0),
        cell_head=ParagraphStyle(
            "cell_head",
            parent=body,
            fontName=bold,
            fontSize=6.8,
            leading=8.2,
            textColor=colors.white,
            spaceAfter=0,
        ),
        statement=ParagraphStyle(
            "statement", parent=body, fontName=bold, fontSize=9.5, leading=12.5, spaceAfter=1
        ),
        caption=ParagraphStyle(
            "caption", parent=body, fontName=italic, fontSize=7, leading=8.8, textColor=GREY
        ),
        font=regular,
        bold=bold,
    )


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(text, style)


def _e(text: str) -> str:
    return escape(text)


# ----------------------------------------------------------------------------------------------- page chrome


@dataclass(frozen=True)
class _Chrome:
    run_date: date
    source: str
    simulated: bool
    font: str
    bold: str

    def draw(self, c: rl_canvas.Canvas, _doc: Any) -> None:
        c.saveState()
        if self.simulated:
            # Watermark first so that content is drawn over it, then the banner on top of everything.
            c.saveState()
            c.translate(PAGE_W / 2, PAGE_H / 2)
            c.rotate(50)
            c.setFillColor(RED)
            c.setFillAlpha(0.07)
            c.setFont(self.bold, 96)
            c.drawCentredString(0, -30, "SIMULATED")
            c.restoreState()
            c.setFillColor(RED)
            c.rect(0, PAGE_H - 28, PAGE_W, 28, stroke=0, fill=1)
            c.setFillColor(colors.white)
            c.setFont(self.bold, 11)
            c.drawCentredString(PAGE_W / 2, PAGE_H - 18.5, "SIMULATED DATA — NOT OBSERVATIONS")
        else:
            c.setFillColor(GREY)
            c.setFont(self.font, 7.5)
            c.drawString(MARGIN_X, PAGE_H - 28, "Borderwatch · satellite observation briefing")
            c.drawRightString(PAGE_W - MARGIN_X, PAGE_H - 28, PRELIMINARY)
            c.setStrokeColor(RULE)
            c.setLineWidth(0.5)
            c.line(MARGIN_X, PAGE_H - 32, PAGE_W - MARGIN_X, PAGE_H - 32)
        c.setStrokeColor(RULE)
        c.setLineWidth(0.5)
        c.line(MARGIN_X, 34, PAGE_W - MARGIN_X, 34)
        c.setFont(self.font, 7)
        c.setFillColor(RED if self.simulated else GREY)
        sim = "SIMULATED · " if self.simulated else ""
        c.drawString(
            MARGIN_X, 24, f"{sim}Run {self.run_date.isoformat()} · source: {self.source} · {PRELIMINARY}"
        )
        c.restoreState()


class _NumberedCanvas(rl_canvas.Canvas):
    """Holds pages back until the end so each can say 'page X of Y'."""

    def __init__(self, *args: Any, font: str = "Helvetica", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []
        self._bw_font = font

    def showPage(self) -> None:  # noqa: N802 (reportlab's name)
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont(self._bw_font, 7)
            self.setFillColor(GREY)
            self.drawRightString(PAGE_W - MARGIN_X, 24, f"Page {self._pageNumber} of {total}")
            super().showPage()
        super().save()


# ----------------------------------------------------------------------------------------------------- cover


def _windows_text(results: list[HotspotResult]) -> str:
    distinct: list[Windows] = []
    for r in results:
        if r.windows not in distinct:
            distinct.append(r.windows)
    if not distinct:
        return "—"
    if len(distinct) > 1:
        return "The windows differ between areas; each area page gives its own."
    w = distinct[0]
    return (
        f"Optical before {date_range(w.before)} · after {date_range(w.after)} · "
        f"SAR baseline {date_range(w.sar_before)}"
    )


def _counts_text(results: list[HotspotResult]) -> str:
    status = Counter(observation_status(r) for r in results)
    parts = [
        f"{status[s]} {s}" for s in ("observed", "partly observed", "not observed", "failed") if status[s]
    ]
    alerts = [a for r in results for a in r.alerts]
    conf = Counter(a.confidence for a in alerts)
    conf_text = ", ".join(
        f"{conf[c]} {c.value}" for c in sorted(conf, key=CONFIDENCE_RANK.__getitem__, reverse=True)
    )
    tracked = [a for r in results if r.tracked for a in r.alerts]
    new = sum(1 for a in tracked if a.lifecycle == "new")
    previous = [r.previous_run for r in results if r.tracked and r.previous_run is not None]
    if not tracked:
        tracking = ""
    elif previous:
        tracking = f"; {new} new since the previous daily run ({max(previous).isoformat()})"
    else:
        tracking = "; the first tracked daily run, so all are new"
    n_areas = len(results)
    text = f"<b>{n_areas} area{'s' if n_areas != 1 else ''}</b>: {', '.join(parts) or 'none'}. "
    if alerts:
        plural = "s" if len(alerts) != 1 else ""
        text += f"<b>{len(alerts)} change alert{plural}</b> ({conf_text} confidence{tracking})."
    else:
        text += "<b>No change alerts</b> in the observed parts."
    withdrawn = sum(len(r.withdrawn) for r in results)
    if withdrawn:
        text += (
            f" {withdrawn} alert{'s' if withdrawn != 1 else ''} reported by the previous daily run "
            f"{'are' if withdrawn != 1 else 'is'} no longer detected (see the area pages)."
        )
    text += _fires_summary(results)
    aside = [a for r in results for a in r.seasonal_burns]
    if aside:
        areas = sum(1 for r in results if r.seasonal_burns)
        text += (
            f" {len(aside)} burnt patches on cropland in {areas} area{'s' if areas != 1 else ''} "
            f"({sum(a.area_ha for a in aside):,.0f} ha) look like the season's farm burning: shown on the maps, "
            "not counted as alerts."
        )
    return text


def _fires_summary(results: list[HotspotResult]) -> str:
    """' Active fires (VIIRS/MODIS): N detections in M areas, K on burn-scar alerts; not checked for X.'"""
    checked = [r for r in results if r.thermal_source is not None]
    # A failed area is already named as not checked at all; only working areas without thermal data are news.
    unchecked = [r for r in results if r.thermal_source is None and observation_status(r) != "failed"]
    if not checked:
        return " Active fires (VIIRS/MODIS thermal data) were not checked in this run."
    fires = [r for r in checked if r.fires]
    n = sum(len(r.fires) for r in fires)
    if n:
        on_burns = sum(1 for r in fires for m in match_fires(r) if m.on_burn_alert)
        text = (
            f" <b>Active fires</b> (VIIRS/MODIS): {n} detection{'s' if n != 1 else ''} in the after window in "
            f"{len(fires)} area{'s' if len(fires) != 1 else ''}, {on_burns} on burn-scar alerts."
        )
    else:
        text = (
            " <b>Active fires</b> (VIIRS/MODIS): none detected in the after window (thick cloud hides fires)."
        )
    if unchecked:
        text += f" Thermal data not checked for: {_names_list(unchecked)}."
    return text


def _summary_table(results: list[HotspotResult], st: _Styles) -> Table:
    head = [
        "Area",
        *[TYPE_SHORT[t] for t in TYPE_ORDER],
        "Total",
        "Highest<br/>confid.",
        "Observed<br/>optical / any",
        "Last clear<br/>optical",
        "Status",
    ]
    rows: list[list[Any]] = [[_p(h, st.cell_head) for h in head]]
    style: list[tuple[Any, ...]] = []
    for i, r in enumerate(results, start=1):
        status = observation_status(r)
        by_type = Counter(a.change_type for a in r.alerts)
        # A zero where nothing could be seen would read as "no change": show a dash instead.
        speakable = status in ("observed", "partly observed") or bool(r.alerts)
        counts = [str(by_type[t]) if speakable else "—" for t in TYPE_ORDER]
        total = str(len(r.alerts)) if speakable else "—"
        hc = highest_confidence(r.alerts)
        cov = r.coverage
        observed = (
            f"{pct(cov.optical_observed_fraction)} / {pct(1 - cov.not_observed_fraction)}" if cov else "—"
        )
        last_clear = iso(cov.optical_last_clear, "none") if cov else "—"
        name = f"<b>{_e(r.name)}</b> <font color='#666666'>p. {i + 1}</font>"
        rows.append(
            [
                _p(name, st.cell),
                *counts,
                total,
                hc.value if hc else "—",
                observed,
                last_clear,
                _p(status, st.cell),
            ]
        )
        if status in STATUS_BG:
            style.append(("BACKGROUND", (-1, i), (-1, i), STATUS_BG[status]))
    widths = [116, 30, 32, 40, 33, 28, 26, 40, 52, 48, 58]
    scale = CONTENT_W / sum(widths)
    table = Table(rows, colWidths=[w * scale for w in widths], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), st.font, 7),
                ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("ALIGN", (1, 1), (6, -1), "CENTER"),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, ZEBRA]),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                *style,
            ]
        )
    )
    return table


def _box(content: list[Flowable], edge: colors.Color, background: colors.Color | None = None) -> Table:
    """Content in a box with a thick left edge, for statements that must not be missed."""
    t = Table([[content]], colWidths=[CONTENT_W])
    cmds: list[tuple[Any, ...]] = [
        ("LINEBEFORE", (0, 0), (0, 0), 3, edge),
        ("BOX", (0, 0), (-1, -1), 0.4, edge),
        ("LEFTPADDING", (0, 0), (-1, -1), 7),
        ("RIGHTPADDING", (0, 0), (-1, -1), 6),
        ("TOPPADDING", (0, 0), (-1, -1), 4),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
    ]
    if background is not None:
        cmds.append(("BACKGROUND", (0, 0), (-1, -1), background))
    t.setStyle(TableStyle(cmds))
    return t


def _names_list(results: list[HotspotResult], extra: Any = None) -> str:
    return "; ".join(_e(r.name) + (f" ({extra(r)})" if extra else "") for r in results)


def _honesty(results: list[HotspotResult], st: _Styles, simulated: bool) -> list[Flowable]:
    by = {
        s: [r for r in results if observation_status(r) == s]
        for s in ("partly observed", "not observed", "failed")
    }
    seen_lines: list[str] = []
    if by["not observed"]:
        seen_lines.append(f"<b>Not observed</b> (no statement possible): {_names_list(by['not observed'])}.")
    if by["partly observed"]:
        seen_lines.append(
            "<b>Partly observed</b> (statements cover only the observed part): "
            + _names_list(
                by["partly observed"],
                lambda r: f"{pct(r.coverage.not_observed_fraction) if r.coverage else 'n/a'} not observed",
            )
            + "."
        )
    if by["failed"]:
        seen_lines.append(f"<b>Analysis failed</b> (not checked in this run): {_names_list(by['failed'])}.")
    if not seen_lines:
        seen_lines.append("Every area was observed in full in the after window.")
    items = [
        f"<b>{PRELIMINARY}</b> These are automated detections from satellite imagery. They may include false "
        "alarms (farm burning, harvest, cloud or shadow remnants) and miss changes smaller than a few "
        "pixels.",
        "<b>“No change” and “not observed” are different.</b> An area without alerts was checked only where "
        "a sensor saw it clearly in the after window. " + " ".join(seen_lines),
        "<b>Claims are each side's own statements.</b> The event notes and timeline on the area pages report "
        "what one side or the other has said, as published; this briefing does not verify them.",
        "<b>No boundary is drawn or asserted.</b> Maps show imagery only. Both sides of the border are "
        "analysed, described and scored in the same way.",
    ]
    if simulated:
        items.insert(0, f"<font color='#c0111f'><b>{SIMULATED_NOTICE}</b></font> {SIMULATED_EXPLAINED}")
    flow: list[Flowable] = [_p("Read this first", st.h2)]
    flow += [_p("• " + t, st.small) for t in items]
    return [_box(flow, RED if simulated else HEAD_BG)]


def _method(st: _Styles) -> list[Flowable]:
    return [
        _p("Method", st.h2),
        _p(
            "<b>Sensors.</b> Sentinel-2 (S2; optical, 10 m) sees the ground only through clear sky. "
            "Sentinel-1 (S1; radar, 10 m) sees through cloud, by day and night, and responds to surface "
            "roughness and structure rather than colour. VIIRS (375 m) and MODIS (1 km) detect active fires "
            "(thermal anomalies) at each overpass, by day and night, but not through thick cloud.",
            st.small,
        ),
        _p(
            "<b>Change.</b> The after window is compared with the before window: optical burn and "
            "vegetation indices (dNBR, NDVI change, bare soil), a statistical test of radar backscatter "
            "change (S1 p-value) and a multivariate test of six optical bands (IR-MAD; S2 p-value: that a "
            "share of the alert changed), both p-values corrected for the number of tests. A change happened between "
            "an alert's last clear view before it and its first observation.",
            st.small,
        ),
        _p(
            "<b>Confidence.</b> <i>Low</i>: one method, one observation. <i>High</i>: seen again in a later "
            "independent observation, or two methods agree. <i>Highest</i>: two independent sensors agree.",
            st.small,
        ),
        _p(
            "<b>Fires.</b> A fire detected within a pixel of a burn scar between its last clear look before and "
            "its first observation is a second, independent sensor: highest confidence. Under cloud, radar's "
            "drop in backscatter plus such a fire is a burn scar; without one, off cropland, it is reported as "
            "<i>vegetation loss</i>: vegetation burnt, cleared or dug up, which radar alone cannot tell apart. "
            "Stubble fires on cropland are hot too, so a "
            "fire never lifts a farm burn to an alert. Times of fires are given in local time (UTC+7); "
            "briefing.geojson gives them in UTC.",
            st.small,
        ),
    ]


def _cover(
    results: list[HotspotResult],
    st: _Styles,
    *,
    title: str,
    kind: str,
    run_date: date,
    source: str,
    simulated: bool,
    generated: datetime,
) -> list[Flowable]:
    sim = "<font color='#c0111f'>SIMULATED</font><br/>" if simulated else ""
    kind_text = "Daily briefing" if kind == "daily" else "Area check (on request)"
    meta = [
        ["Run date", run_date.isoformat()],
        ["Windows", _windows_text(results)],
        ["Source", source + (" — SIMULATED DATA, NOT OBSERVATIONS" if simulated else "")],
        ["Generated", generated.strftime("%Y-%m-%d %H:%M UTC")],
    ]
    meta_table = Table(
        [[_p(f"<b>{k}</b>", st.small), _p(_e(v), st.small)] for k, v in meta], colWidths=[62, CONTENT_W - 62]
    )
    meta_table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return [
        _p(sim + _e(title), st.title),
        _p(f"{kind_text} · run date {run_date.isoformat()}", st.subtitle),
        meta_table,
        Spacer(1, 6),
        _p(_counts_text(results), st.body),
        _summary_table(results, st),
        _p(
            "— in the alert columns: no statement possible (area not observed or analysis failed).",
            st.caption,
        ),
        Spacer(1, 4),
        *_honesty(results, st, simulated),
        *_method(st),
    ]


# ------------------------------------------------------------------------------------------------ area pages


def _script_row(result: HotspotResult, st: _Styles) -> list[Flowable]:
    """Thai and Khmer names on one line, or one line each when together they are too wide."""
    pairs: list[tuple[str, Image]] = []
    missing: list[str] = []
    for label, text, script in (("Thai", result.name_th, "thai"), ("Khmer", result.name_km, "khmer")):
        if not text:
            continue
        img = render_script(text, script)  # type: ignore[arg-type]
        if img is None:
            missing.append(label)
            continue
        # Never wider than the page: a very long name is scaled down rather than pushed off the edge.
        k = min(1.0, (CONTENT_W - 40) / img.width_pt)
        pairs.append((label, Image(io.BytesIO(img.png), img.width_pt * k, img.height_pt * k)))
    out: list[Flowable] = []
    if pairs:
        label_w = 36.0
        one_line = sum(label_w + im.drawWidth + 18 for _, im in pairs) <= CONTENT_W
        lines = [pairs] if one_line else [[p] for p in pairs]
        for line in lines:
            cells: list[Any] = []
            widths: list[float] = []
            for label, im in line:
                cells += [_p(f"<font color='#666666'>{label}</font>", st.small), im]
                widths += [label_w, im.drawWidth + 18]
            t = Table([cells], colWidths=widths, hAlign="LEFT")
            t.setStyle(
                TableStyle(
                    [
                        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                        ("LEFTPADDING", (0, 0), (-1, -1), 0),
                        ("TOPPADDING", (0, 0), (-1, -1), 0),
                        ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
                    ]
                )
            )
            out.append(t)
    if missing:
        # Say why rather than print boxes or unshaped text: a misspelt name is worse than none.
        fonts = {"Thai": script_font("thai"), "Khmer": script_font("khmer")}
        if not shaping_available():
            why = "no text-shaping engine (Pillow without raqm)"
        elif all(fonts[m] for m in missing):
            why = "no installed font has all of its characters"
        else:
            why = "no font for the script is installed (Debian package fonts-noto-core)"
        names = " and ".join(missing) + (" names" if len(missing) > 1 else " name")
        out.append(_p(f"<i>{names} not shown: {why}.</i>", st.caption))
    return out


def _centre_text(result: HotspotResult) -> str:
    c = shape(result.footprint).centroid
    ns = "N" if c.y >= 0 else "S"
    ew = "E" if c.x >= 0 else "W"
    text = f"{abs(c.y):.4f}° {ns}, {abs(c.x):.4f}° {ew}"
    left, bottom, right, top = result.bounds
    size = f"{(right - left) / 1000:.1f} × {(top - bottom) / 1000:.1f} km"
    drawn_km2 = sum(p.area for p in figures.grid_polygons(result.footprint, result.crs)) / 1e6
    if drawn_km2 < DRAWN_SHARE * (right - left) * (top - bottom) / 1e6:  # a drawn shape, not its whole box
        size = f"{drawn_km2:.1f} km² in a {size} box"
    if result.coordinates == "sourced":
        return f"{text} (coordinates from public sources); area {size}"
    if result.coordinates == "estimated":
        return f"{text} (estimated: the site may lie anywhere in the area); area {size}"
    return f"{text} (centre of the area asked for); area {size}"


def _info_table(result: HotspotResult, st: _Styles) -> Table:
    w = result.windows
    rows = [
        ["Provinces", provinces_line(result)],
        ["Centre", _centre_text(result)],
        [
            "Windows",
            f"optical before {date_range(w.before)} · after {date_range(w.after)} · "
            f"SAR baseline {date_range(w.sar_before)}",
        ],
        ["Map grid", f"{result.crs}, 10 m pixels; up is grid north"],
    ]
    t = Table(
        [[_p(f"<b>{k}</b>", st.small), _p(_e(v), st.small)] for k, v in rows], colWidths=[58, CONTENT_W - 58]
    )
    t.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 0),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 0.5),
            ]
        )
    )
    return t


SENSOR_SHORT = {"sentinel-1": "S1", "sentinel-2": "S2", "viirs": "VIIRS", "modis": "MODIS"}


def sensors_short(sensors: list[str]) -> str:
    return " + ".join(SENSOR_SHORT.get(s.lower(), s) for s in sensors)


def _alert_order(alerts: list[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (-a.area_ha, a.id))


def _fire_cell(a: Alert) -> str:
    """The first active fire within a pixel of the alert (local time) and how many; 'none' or 'not checked'."""
    if a.thermal_detections is None:
        return "not checked"
    if a.thermal_detections == 0:
        return "none"
    n = f"{a.thermal_detections} det."
    if a.thermal_first is None:
        return n
    day, hhmm = local_text(a.thermal_first).split(" ")
    return f"{day}<br/>{hhmm}, {n}"


def _state_cell(a: Alert) -> str:
    """Lifecycle across daily runs: 'new', or the state and since when it is reported; '—' if not tracked."""
    if a.lifecycle is None:
        return "—"
    label = LIFECYCLE_LABELS[a.lifecycle]
    if a.lifecycle == "new" or a.first_reported is None:
        return label
    return f"{label}<br/>since {a.first_reported:%m-%d}"


def _p_cell(a: Alert) -> str:
    """The alert's p-values by sensor: radar's test, then the optical multivariate test; '—' without either."""
    parts = [
        f"{name} {format_p(p)}" for name, p in (("S1", a.p_value), ("S2", a.optical_p_value)) if p is not None
    ]
    return "<br/>".join(parts) or "—"


def _alert_table(order: list[Alert], st: _Styles) -> list[Flowable]:
    head = [
        "#",
        "Alert id",
        "Type",
        "Area (ha)",
        "Observed<br/>first, last",
        "Confi-<br/>dence",
        "Sensors",
        "p-value",
        "Active fire<br/>local, UTC+7",
        "State",
    ]
    rows: list[list[Any]] = [[_p(h, st.cell_head) for h in head]]
    cmds: list[tuple[Any, ...]] = []
    shown = order[:MAX_ALERT_ROWS]
    for i, a in enumerate(shown, start=1):
        rows.append(
            [
                str(i),
                _p(_e(a.id), st.cell),
                _p(CHANGE_LABELS[a.change_type], st.cell),
                f"{a.area_ha:.2f}",
                _p(f"{a.first_observed.isoformat()}<br/>{a.last_observed.isoformat()}", st.cell),
                _p(f"{a.confidence.value}<br/>farm", st.cell) if a.seasonal else a.confidence.value,
                _p(_e(sensors_short(a.sensors)), st.cell),
                _p(_p_cell(a), st.cell),
                _p(_fire_cell(a), st.cell),
                _p(_state_cell(a), st.cell),
            ]
        )
        cmds.append(("BACKGROUND", (0, i), (0, i), colors.HexColor(figures.CHANGE_COLOURS[a.change_type])))
        if a.confidence == Confidence.HIGHEST:
            cmds.append(("FONT", (5, i), (5, i), st.bold, 7))
    widths = [15, 123, 72, 29, 47, 36, 40, 51, 52, 38]
    scale = CONTENT_W / sum(widths)
    t = Table(rows, colWidths=[w * scale for w in widths], repeatRows=1)
    t.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), st.font, 7),
                ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("ALIGN", (0, 1), (0, -1), "CENTER"),
                ("ALIGN", (3, 1), (3, -1), "RIGHT"),
                ("ROWBACKGROUNDS", (1, 1), (-1, -1), [colors.white, ZEBRA]),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, RULE),
                ("BOX", (0, 1), (0, -1), 0.25, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                *cmds,
            ]
        )
    )
    notes = [
        (
            any(a.seasonal for a in shown),
            "<i>farm</i>: a burn scar mostly on cropland, where farmers burn their stubble. More looks of it "
            "and an active fire (stubble fires are hot too) do not raise its confidence; only a second imaging "
            "sensor (radar) does.",
        ),
        (
            any(a.thermal_detections is not None for a in shown),
            "Active fire: the first VIIRS/MODIS detection within its pixel (375 m / 1 km at nadir, more off nadir) "
            "of the alert between its last clear look before and its first observation, in local time (UTC+7), "
            "and the number of detections (det.); for a burn scar, the best estimate of when it burnt. "
            "<i>none</i>: checked, no fire seen (thick cloud hides fires too); <i>not checked</i>: no thermal "
            "data in this run.",
        ),
        (
            any(a.lifecycle is not None for a in shown),
            "State, across daily runs: <i>new</i>: first reported today; <i>not seen again yet</i>: an earlier "
            "run reported it and no later clear look has shown it since; <i>seen again</i>: a later "
            "observation still shows it; <i>still changing</i>: radar dated a change after what the last report "
            "had seen (repeated strikes). <i>since</i>: the day it was first reported. "
            "Ad hoc checks are not tracked (—).",
        ),
    ]
    out: list[Flowable] = [t]
    for wanted, text in notes:
        if wanted:
            out += [Spacer(1, 2), _p(text, st.caption)]
    if len(order) > len(shown):
        rest = order[len(shown) :]
        out.append(
            _p(
                f"… and {len(rest)} smaller alert{'s' if len(rest) != 1 else ''} "
                f"({sum(a.area_ha for a in rest):.1f} ha in all), listed in briefing.geojson.",
                st.caption,
            )
        )
    return out


def _figure(
    result: HotspotResult, chips: Chips | None, chip_error: str | None, order: list[Alert], st: _Styles
) -> list[Flowable]:
    if chips is None:
        why = chip_error or "No image chips were saved for this area, so no map can be shown."
        return [_box([_p(_e(why), st.small)], RULE)]
    png = figures.render_area_figure(result, chips, order=order[:MAX_ALERT_ROWS])
    fw, fh = figures.FIG_SIZE_IN
    img = Image(io.BytesIO(png), CONTENT_W, CONTENT_W * fh / fw)
    caption = (
        (
            "Large: the after image with change alerts outlined in the colour of their type and numbered as "
            "in the table"
            if order
            else "Large: the after image; no change alerts"
        )
        + (
            "; hatched grey: no clear optical view (burn scars, craters and earthworks not assessed optically there; what radar can show there is in the statement above)"
            if chips.unobserved.any()
            else ""
        )
        + (
            "; pale dashed: burns on cropland set aside as the season's farm burning (context, not alerts)"
            if result.seasonal_burns
            else ""
        )
        + (
            "; dotted grey: alerts the previous daily run reported that this run no longer detects"
            if result.withdrawn
            else ""
        )
        + (
            "; red triangles: active-fire detections (VIIRS/MODIS) in the after window, at the centre of the "
            "pixel that saw the fire (375 m VIIRS, 1 km MODIS): the fire lay somewhere in that pixel"
            if result.fires
            else ""
        )
        + ". Right: true-colour composites before and after. All three panels show the same area."
    )
    return [img, _p(caption, st.caption)]


def _bold_label(text: str) -> str:
    """'Label: rest' with the label in bold."""
    label, sep, rest = text.partition(": ")
    return f"<b>{label}:</b> {rest}" if sep else text


def _area_page(
    result: HotspotResult, index: int, total: int, st: _Styles, chips: Chips | None, chip_error: str | None
) -> list[Flowable]:
    status = observation_status(result)
    sub = f"{_e(result.area_id)} · priority {result.priority} · area {index} of {total}"
    flow: list[Flowable] = [
        _p(_e(result.name), st.h1),
        _p(sub, st.caption),
        *_script_row(result, st),
        Spacer(1, 2),
        _info_table(result, st),
        Spacer(1, 5),
    ]
    said = _p(_e(statement(result)), st.statement)
    fires = _p(_bold_label(_e(fire_line(result))), st.small)
    # What limited the analysis belongs next to the statement it limits.
    limits = [_p(f"<b>Limit:</b> {_e(w)}", st.small) for w in result.warnings]
    if status == "failed":
        flow.append(
            _box(
                [
                    _p("Analysis failed — no statement possible.", st.statement),
                    _p(f"<b>Error:</b> {_e(result.error or 'no error message was recorded')}", st.small),
                    *limits,
                    _p(
                        "This area was not checked in this run. That is neither “no change” nor "
                        "“not observed”: nothing is known from this run. Re-run the area once the error is "
                        "fixed.",
                        st.small,
                    ),
                ],
                RED,
                STATUS_BG["failed"],
            )
        )
    else:
        flow.append(
            _box(
                [said, _p(_e(coverage_line(result.coverage)), st.small), fires, *limits],
                STATUS_EDGE[status],
                STATUS_BG.get(status),
            )
        )
        flow.append(Spacer(1, 5))
        order = _alert_order(result.alerts)
        flow += _figure(result, chips, chip_error, order, st)
        if order:
            flow += [_p("Change alerts, largest first", st.h2), *_alert_table(order, st)]
    if result.notes:
        flow += [
            _p("Reported events", st.h2),
            _p(_e(result.notes), st.small),
            _p("Each side's own statements as published; not verified by this briefing.", st.caption),
        ]
    # One page per area, whatever the content: anything too tall is scaled down rather than spilt.
    return [PageBreak(), KeepInFrame(CONTENT_W, CONTENT_H, flow, mode="shrink")]


def _load_area_chips(result: HotspotResult, run_dir: Path | None) -> tuple[Chips | None, str | None]:
    if not result.chips or observation_status(result) == "failed":
        return None, None
    path = chips_path(run_dir, result) if run_dir is not None else None
    if path is None or not path.exists():
        return (
            None,
            f"Image chips {result.chips!r} were not found in the area folder, so no map can be shown.",
        )
    try:
        return load_chips(path), None
    except ReportError as e:
        # One broken chip file must not sink the whole briefing: say so on the page and in the log.
        log.warning("area %s: %s", result.area_id, e)
        return None, f"Image chips could not be read, so no map can be shown: {e}"


# ----------------------------------------------------------------------------------------------------- write


def build_story(
    results: list[HotspotResult],
    *,
    run_date: date,
    source: str,
    simulated: bool,
    title: str,
    kind: str,
    run_dir: Path | None,
    generated: datetime,
) -> list[Flowable]:
    st = _styles()
    story = _cover(
        results,
        st,
        title=title,
        kind=kind,
        run_date=run_date,
        source=source,
        simulated=simulated,
        generated=generated,
    )
    # The cover is one page by design; shrink it rather than push the area pages off by one.
    story = [KeepInFrame(CONTENT_W, CONTENT_H, story, mode="shrink")]
    for i, r in enumerate(results, start=1):
        chips, chip_error = _load_area_chips(r, run_dir)
        story += _area_page(r, i, len(results), st, chips, chip_error)
    return story


def write_pdf(
    results: list[HotspotResult],
    path: Path | str,
    *,
    run_date: date,
    source: str,
    simulated: bool,
    title: str = DEFAULT_TITLE,
    kind: Literal["daily", "area-check"] | str = "daily",
    run_dir: Path | str | None = None,
) -> Path:
    """Write the briefing PDF atomically: a cover page, then exactly one page per area.

    Chips are read from <run_dir>/areas/<id>/<chips>; run_dir defaults to the PDF's folder (the run folder).
    Any simulated result makes the whole briefing simulated: every page is stamped.
    """
    path = Path(path)
    results = sort_results(list(results))
    simulated = simulated or any(r.simulated for r in results)
    chips_root = Path(run_dir) if run_dir is not None else path.parent
    st = _styles()
    chrome = _Chrome(run_date=run_date, source=source, simulated=simulated, font=st.font, bold=st.bold)
    generated = datetime.now(UTC)

    def render(tmp: Path) -> None:
        doc = SimpleDocTemplate(
            str(tmp),
            pagesize=A4,
            leftMargin=MARGIN_X,
            rightMargin=MARGIN_X,
            topMargin=MARGIN_TOP,
            bottomMargin=MARGIN_BOTTOM,
            title=("SIMULATED — " if simulated else "") + title,
            author="Borderwatch",
            subject=f"Run {run_date.isoformat()}, source {source}. {PRELIMINARY}",
            creator="Borderwatch report stage",
        )
        story = build_story(
            results,
            run_date=run_date,
            source=source,
            simulated=simulated,
            title=title,
            kind=kind,
            run_dir=chips_root,
            generated=generated,
        )
        doc.build(
            story,
            onFirstPage=chrome.draw,
            onLaterPages=chrome.draw,
            canvasmaker=partial(_NumberedCanvas, font=st.font),
        )

    return atomic_write(path, render)
