"""Tests of the report stage's PDF: a cover plus one page per area, SIMULATED on every page if so."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from monitoring.report import write_pdf
from monitoring.report.load import Chips
from monitoring.report.samples import sample_results
from monitoring.results import ChangeType, Confidence, HotspotResult, area_dir

RUN_DATE = date(2025, 12, 22)
needs_pdftotext = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) missing"
)


def _run(tmp_path: Path, *, simulated: bool) -> list[HotspotResult]:
    """A run folder with the sample areas and their chips; returns the results."""
    results = []
    for r, chips in sample_results(RUN_DATE, simulated=simulated, size_px=64):
        if chips is not None:
            _save_chips(tmp_path, r, chips)
        results.append(r)
    return results


def _save_chips(run_dir: Path, r: HotspotResult, chips: Chips) -> None:
    folder = area_dir(run_dir, r.area_id)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / "chips.npz",
        before_rgb=chips.before_rgb,
        after_rgb=chips.after_rgb,
        unobserved=chips.unobserved,
    )


def _pdf(tmp_path: Path, *, simulated: bool) -> tuple[Path, list[HotspotResult]]:
    results = _run(tmp_path, simulated=simulated)
    path = write_pdf(
        results,
        tmp_path / "briefing.pdf",
        run_date=RUN_DATE,
        source="simulator" if simulated else "stac",
        simulated=simulated,
    )
    return path, results


def page_count(path: Path) -> int:
    # reportlab writes page dictionaries uncompressed, so counting them needs no PDF library.
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", path.read_bytes()))


def page_texts(path: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True)
    pages = out.stdout.split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def test_cover_plus_one_page_per_area(tmp_path: Path) -> None:
    path, results = _pdf(tmp_path, simulated=True)
    assert path.read_bytes().startswith(b"%PDF-")
    assert page_count(path) == 1 + len(results)


@needs_pdftotext
def test_simulated_on_every_page(tmp_path: Path) -> None:
    path, results = _pdf(tmp_path, simulated=True)
    pages = page_texts(path)
    assert len(pages) == 1 + len(results)
    for i, text in enumerate(pages, start=1):
        assert "SIMULATED" in text, f"page {i} is not stamped SIMULATED"
        assert f"Page {i} of {len(pages)}" in text
        assert "2025-12-22" in text


@needs_pdftotext
def test_real_data_is_never_stamped_simulated(tmp_path: Path) -> None:
    path, _ = _pdf(tmp_path, simulated=False)
    for i, text in enumerate(page_texts(path), start=1):
        assert "SIMULATED" not in text.upper(), f"page {i} says SIMULATED for real data"
        assert "Preliminary, not validated in the field" in text


@needs_pdftotext
def test_pages_say_what_was_and_was_not_seen(tmp_path: Path) -> None:
    path, results = _pdf(tmp_path, simulated=True)
    pages = page_texts(path)
    # Pages follow the briefing order: priority, then id.
    ordered = sorted(results, key=lambda r: (r.priority, r.area_id))
    cover, areas = pages[0], dict(zip([r.area_id for r in ordered], pages[1:], strict=True))
    assert [r.area_id for r in ordered][:3] == ["chong-an-ma", "preah-vihear", "ta-muen-thom"]
    squash = lambda s: re.sub(r"\s+", " ", s)  # noqa: E731 (pdftotext breaks lines where the PDF does)
    cover = squash(cover)
    assert "Border hot spots — satellite observation briefing" in cover
    assert "Preliminary, not validated in the field" in cover
    assert "each side's own statements" in cover
    assert "No boundary is drawn or asserted" in cover
    # Areas not (or partly) observed and failed are named on the cover.
    assert "Not observed (no statement possible): Chong Bok" in cover
    assert "Partly observed" in cover and "Chong An Ma" in cover
    assert "Analysis failed" in cover and "Poipet" in cover

    assert "No change detected in the observed part" in squash(areas["ta-muen-thom"])
    assert "Not observed — no statement possible" in squash(areas["chong-bok"])
    assert "No change detected" not in squash(areas["chong-bok"])
    failed = squash(areas["poipet"])
    assert "Analysis failed — no statement possible" in failed
    assert "SceneLoadError" in failed
    pv = squash(areas["preah-vihear"])
    assert "Optical: 97% observed, last clear 2025-12-19; SAR: 100% observed" in pv
    for label in ("Burn scar", "Crater field", "Structural damage", "New earthworks"):
        assert label in pv
    r = next(r for r in results if r.area_id == "preah-vihear")
    for alert in r.alerts:
        assert f"{alert.area_ha:.2f}" in pv
    partly = squash(areas["chong-an-ma"])
    assert (
        "had no clear optical view — no statement possible there on burn scars, craters or earthworks"
        in partly
    )
    assert "Limit: no Sentinel-1 scene in the after window" in partly
    assert "Limit: the STAC catalogue answered slowly" in failed


def test_one_page_per_area_even_with_many_alerts(tmp_path: Path) -> None:
    results = _run(tmp_path, simulated=True)
    i = [r.area_id for r in results].index("preah-vihear")
    base = results[i].alerts
    many = [
        base[k % len(base)].model_copy(update={"id": f"a{k:03d}", "area_ha": 50.0 - k}) for k in range(40)
    ]
    results[i] = results[i].model_copy(update={"alerts": many, "notes": results[i].notes * 6})
    path = write_pdf(results, tmp_path / "b.pdf", run_date=RUN_DATE, source="simulator", simulated=True)
    assert page_count(path) == 1 + len(results)


def test_missing_or_broken_chips_do_not_sink_the_briefing(tmp_path: Path) -> None:
    results = _run(tmp_path, simulated=True)
    (area_dir(tmp_path, "preah-vihear") / "chips.npz").write_bytes(b"not an npz")
    (area_dir(tmp_path, "ta-muen-thom") / "chips.npz").unlink()
    path = write_pdf(results, tmp_path / "b.pdf", run_date=RUN_DATE, source="simulator", simulated=True)
    assert page_count(path) == 1 + len(results)
    if shutil.which("pdftotext"):
        text = " ".join(page_texts(path))
        assert "could not be read" in text and "were not found" in text


@needs_pdftotext
def test_without_thai_and_khmer_fonts_names_are_omitted_not_garbled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitoring.report import fonts

    fonts.script_font.cache_clear()
    monkeypatch.setattr(fonts, "_SCRIPT_FILES", {"thai": ("none.ttf",), "khmer": ("none.ttf",)})
    monkeypatch.setattr(fonts, "_fc_list", lambda _lang: [])
    try:
        path, results = _pdf(tmp_path, simulated=True)
        text = re.sub(r"\s+", " ", " ".join(page_texts(path)))
    finally:
        fonts.script_font.cache_clear()
    assert page_count(path) == 1 + len(results)
    assert "Thai and Khmer names not shown" in text
    assert "fonts-noto-core" in text


@needs_pdftotext
def test_farm_burning_is_shown_as_context_not_counted(tmp_path: Path) -> None:
    results = _run(tmp_path, simulated=True)
    i = [r.area_id for r in results].index("preah-vihear")
    r = results[i]
    burns = [a.model_copy(update={"seasonal": True}) for a in r.alerts[:2]]
    results[i] = r.model_copy(update={"alerts": r.alerts[2:], "seasonal_burns": burns})
    path = write_pdf(results, tmp_path / "b.pdf", run_date=RUN_DATE, source="simulator", simulated=True)
    assert page_count(path) == 1 + len(results)
    texts = [re.sub(r"\s+", " ", t) for t in page_texts(path)]
    assert "2 burnt patches on cropland in 1 area" in texts[0]
    page = next(t for t in texts[1:] if "Farm burning: 2 burnt patches" in t)
    assert "not counted as alerts" in page and "pale dashed" in page


def _squash(s: str) -> str:
    return re.sub(r"\s+", " ", s)


@needs_pdftotext
def test_area_statements_say_what_active_fires_showed(tmp_path: Path) -> None:
    path, results = _pdf(tmp_path, simulated=True)
    ordered = sorted(results, key=lambda r: (r.priority, r.area_id))
    pages = page_texts(path)
    areas = {r.area_id: _squash(t) for r, t in zip(ordered, pages[1:], strict=True)}
    # Fires seen, three of them on the burn scar: when it burnt, in local time, labelled.
    assert (
        "Active fires: 6 detections (5 VIIRS, 1 MODIS) in the after window, 3 of them on burn-scar alerts "
        "(first 2025-12-08 13:41 local time, UTC+7)." in areas["preah-vihear"]
    )
    # Checked, none: not proof of no fire.
    assert (
        "Active fires: none detected in the after window (VIIRS/MODIS cannot see through thick cloud: this is "
        "not proof of no fire)." in areas["chong-an-ma"]
    )
    # Not checked: said so, no count.
    assert "Active fires: thermal data (VIIRS/MODIS) not checked in this run." in areas["chong-bok"]
    assert "none on a change alert" in areas["ta-muen-thom"]
    # The burn scar's row gives the fire's local time; the legend and caption name the markers.
    pv = areas["preah-vihear"]
    # (Table cells wrap, and pdftotext interleaves their lines: look for the pieces.)
    assert "VIIRS" in pv and "2025-12-08" in pv and "13:41, 3 det." in pv
    assert "UTC+7" in pv and "red triangles: active-fire detections" in pv
    cover = _squash(pages[0])
    assert "never lifts a farm burn" in cover and "highest confidence" in cover
    assert (
        "Active fires (VIIRS/MODIS): 8 detections in the after window in 2 areas, 3 on burn-scar alerts"
        in cover
    )
    assert "Thermal data not checked for: Chong Bok" in cover


@needs_pdftotext
def test_pdf_and_geojson_give_the_same_fire_numbers(tmp_path: Path) -> None:
    import json

    from monitoring.report import write_geojson

    path, results = _pdf(tmp_path, simulated=True)
    gj = write_geojson(results, tmp_path / "b.geojson", run_date=RUN_DATE, source="simulator", simulated=True)
    fc = json.loads(gj.read_text(encoding="utf-8"))
    ordered = sorted(results, key=lambda r: (r.priority, r.area_id))
    pages = {r.area_id: _squash(t) for r, t in zip(ordered, page_texts(path)[1:], strict=True)}
    for f in fc["features"]:
        props = f["properties"]
        if props["feature_type"] != "observation" or props["status"] == "failed":
            continue
        area = props["hotspot_id"]
        assert props["fire_text"] in pages[area], area
        points = [
            g["properties"]
            for g in fc["features"]
            if g["properties"]["feature_type"] == "fire_detection" and g["properties"]["hotspot_id"] == area
        ]
        if props["fire_detections"]:
            assert f"Active fires: {props['fire_detections']} " in props["fire_text"]
            assert props["fire_detections"] == len(points)
        on = sum(1 for p in points if p["on_alert"])
        if on:
            assert f"{on} of them on burn-scar alerts" in pages[area]


def test_map_draws_a_marker_per_fire_with_a_legend_entry(tmp_path: Path) -> None:
    from monitoring.report import figures

    for r, chips in sample_results(RUN_DATE, simulated=True, size_px=64):
        if chips is None:
            continue
        fig = figures.area_figure(r, chips, order=r.alerts)
        ax = fig.axes[0]
        markers = [line for line in ax.get_lines() if line.get_gid() == "active-fires"]
        labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        if r.fires:
            (line,) = markers
            assert len(line.get_xdata()) == len(r.fires)
            assert line.get_marker() == "^" and line.get_markeredgecolor() == "black"
            x0, x1 = ax.get_xlim()
            y0, y1 = ax.get_ylim()
            assert all(x0 <= x <= x1 for x in line.get_xdata()) and all(
                y0 <= y <= y1 for y in line.get_ydata()
            )
            assert figures.FIRE_LABEL in labels
        else:
            assert not markers and figures.FIRE_LABEL not in labels


@needs_pdftotext
def test_a_farmland_burn_alert_says_why_its_confidence_stays_low(tmp_path: Path) -> None:
    results = _run(tmp_path, simulated=True)
    i = [r.area_id for r in results].index("preah-vihear")
    r = results[i]
    burn = next(a for a in r.alerts if a.change_type is ChangeType.BURN_SCAR)
    farm = burn.model_copy(update={"seasonal": True, "confidence": Confidence.LOW})
    results[i] = r.model_copy(update={"alerts": [farm if a is burn else a for a in r.alerts]})
    path = write_pdf(results, tmp_path / "b.pdf", run_date=RUN_DATE, source="simulator", simulated=True)
    pages = [_squash(t) for t in page_texts(path)]
    page = next(t for t in pages[1:] if farm.id in t)
    # (Table cells wrap, and pdftotext interleaves their lines: the cell's word stands on its own.)
    assert re.search(r"\bfarm\b(?!:)", page) and "farm: a burn scar mostly on cropland" in page
    assert "only a second imaging sensor (radar) does" in page
    others = [t for t in pages[1:] if farm.id not in t]
    assert others and not any("a burn scar mostly on cropland" in t for t in others)


@needs_pdftotext
def test_tracked_alerts_show_their_state_and_withdrawn_ones_are_named(tmp_path: Path) -> None:
    results = _run(tmp_path, simulated=True)
    i = [r.area_id for r in results].index("preah-vihear")
    r = results[i]
    seen, first = r.alerts[0], r.alerts[1]
    states = {seen.id: ("confirmed", date(2025, 12, 12)), first.id: ("new", RUN_DATE)}
    tracked = [
        a.model_copy(update={"lifecycle": states[a.id][0], "first_reported": states[a.id][1]})
        if a.id in states
        else a.model_copy(update={"lifecycle": "new", "first_reported": RUN_DATE})
        for a in r.alerts
    ]
    gone = r.alerts[-1].model_copy(update={"id": "pv-gone", "first_reported": date(2025, 12, 10)})
    results[i] = r.model_copy(
        update={"alerts": tracked, "tracked": True, "previous_run": date(2025, 12, 21), "withdrawn": [gone]}
    )
    path = write_pdf(results, tmp_path / "b.pdf", run_date=RUN_DATE, source="simulator", simulated=True)
    texts = [_squash(t) for t in page_texts(path)]
    ordered = sorted(results, key=lambda r: (r.priority, r.area_id))
    areas = {r.area_id: t for r, t in zip(ordered, texts[1:], strict=True)}
    new = len(r.alerts) - 1
    assert f"{new} new since the previous daily run (2025-12-21)" in texts[0]
    assert "1 alert reported by the previous daily run is no longer detected" in texts[0]
    page = areas["preah-vihear"]
    assert "No longer detected: pv-gone" in page and "first reported 2025-12-10" in page
    assert "seen again" in page and "since 12-12" in page
    assert "State, across daily runs" in page
    # Untracked areas say nothing about states.
    untracked = [t for a, t in areas.items() if a != "preah-vihear" and "change alert" in t]
    assert untracked and not any("State, across daily runs" in t for t in untracked)


def test_cover_says_no_change_alerts_even_when_some_were_withdrawn(tmp_path: Path) -> None:
    from monitoring.report.pdf import _counts_text

    results = _run(tmp_path, simulated=True)
    r = results[0]
    quiet = [r.model_copy(update={"alerts": [], "tracked": True, "withdrawn": r.alerts[:1]})]
    text = _counts_text(quiet)
    assert (
        "No change alerts" in text
        and "1 alert reported by the previous daily run is no longer detected" in text
    )


def test_the_first_tracked_run_says_so_rather_than_calling_everything_new_since_a_run_that_was_not(
    tmp_path: Path,
) -> None:
    from monitoring.report.pdf import _counts_text

    results = _run(tmp_path, simulated=True)
    first = [
        r.model_copy(
            update={
                "tracked": True,
                "alerts": [
                    a.model_copy(update={"lifecycle": "new", "first_reported": RUN_DATE}) for a in r.alerts
                ],
            }
        )
        for r in results
    ]
    text = _counts_text(first)
    assert "the first tracked daily run, so all are new" in text and "since the previous" not in text
    assert "new since" not in _counts_text(results)  # not tracked: no word about earlier runs


def test_map_outlines_withdrawn_alerts_where_they_were(tmp_path: Path) -> None:
    from monitoring.report import figures

    r, chips = next((r, c) for r, c in sample_results(RUN_DATE, simulated=True, size_px=64) if r.alerts and c)
    plain = figures.area_figure(r, chips, order=r.alerts)
    assert not [line for line in plain.axes[0].get_lines() if line.get_gid() == "withdrawn-alerts"]
    gone = r.model_copy(update={"alerts": r.alerts[1:], "tracked": True, "withdrawn": r.alerts[:1]})
    fig = figures.area_figure(gone, chips, order=gone.alerts)
    drawn = [line for line in fig.axes[0].get_lines() if line.get_gid() == "withdrawn-alerts"]
    assert len(drawn) == len(figures.alert_polygons(r.alerts[0], r.crs))
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert "No longer detected" in labels


def test_map_washes_out_what_lies_outside_a_drawn_area() -> None:
    from monitoring.report import figures

    r, chips = next((r, c) for r, c in sample_results(RUN_DATE, simulated=True, size_px=64) if r.alerts and c)
    plain = figures.area_figure(r, chips, order=r.alerts)
    assert not figures.outside_area(r, chips.unobserved.shape).any()  # a hot spot's square is its grid
    assert not [line for line in plain.axes[0].get_lines() if line.get_gid() == "area-outline"]
    # The same grid, asked for as the triangle of its west and south edges.
    (w, s), (e, _), (_, n) = (
        figures._to_grid(r.crs).transform(x, y, direction="INVERSE")
        for x, y in ((r.bounds[0], r.bounds[1]), (r.bounds[2], r.bounds[1]), (r.bounds[0], r.bounds[3]))
    )
    triangle = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [w, n], [w, s]]]}
    drawn = r.model_copy(update={"footprint": triangle})
    outside = figures.outside_area(drawn, chips.unobserved.shape)
    assert 0.45 < outside.mean() < 0.55 and outside[0, -1] and not outside[-1, 0]
    fig = figures.area_figure(drawn, chips, order=drawn.alerts)
    assert [line for line in fig.axes[0].get_lines() if line.get_gid() == "area-outline"]
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert figures.OUTSIDE_LABEL in labels
    from monitoring.report.pdf import _centre_text

    assert "box" not in _centre_text(r)
    assert re.search(r"area 0\.2 km² in a 0\.6 × 0\.6 km box$", _centre_text(drawn))
