"""Report: the wording every output shares (coverage statements, notices), so PDF and GeoJSON say the same."""

from __future__ import annotations

import math
from collections import Counter
from datetime import date

from monitoring.report.fires import LOCAL_LABEL, FireOnAlert, local_text, match_fires
from monitoring.results import CHANGE_LABELS, Alert, Confidence, Coverage, HotspotResult

DEFAULT_TITLE = "Border hot spots — satellite observation briefing"

PRELIMINARY = "Preliminary, not validated in the field."
SIMULATED_NOTICE = "SIMULATED DATA — NOT OBSERVATIONS."
SIMULATED_EXPLAINED = (
    "Produced by the Borderwatch simulator for testing and training; nothing here was seen by a satellite."
)
NOT_OBSERVED = "Not observed — no statement possible."
NO_CHANGE = "No change detected in the observed part."
FIRES_NOT_CHECKED = "Active fires: thermal data (VIIRS/MODIS) not checked in this run."
NO_FIRES = (
    "Active fires: none detected in the after window (VIIRS/MODIS cannot see through thick cloud: this is not "
    "proof of no fire)."
)

CONFIDENCE_RANK: dict[Confidence, int] = {Confidence.LOW: 0, Confidence.HIGH: 1, Confidence.HIGHEST: 2}


def notice(simulated: bool) -> str:
    """The one-paragraph caveat carried by the GeoJSON and the PDF."""
    base = (
        f"{PRELIMINARY} Automated change alerts from satellite imagery; they may include false alarms "
        "(farm burning, harvest, cloud remnants). 'No change' and 'not observed' are different: "
        "an area without alerts was only checked where it was observed. Event notes report each side's own "
        "statements. The international boundary is neither drawn nor asserted."
    )
    return f"{SIMULATED_NOTICE} {SIMULATED_EXPLAINED} {base}" if simulated else base


def observation_status(result: HotspotResult) -> str:
    """'observed', 'partly observed', 'not observed' or 'failed'; no coverage counts as not observed."""
    if result.status == "failed" or (result.coverage is not None and result.coverage.status == "failed"):
        return "failed"
    if result.coverage is None:
        return "not observed"
    return result.coverage.status


def pct(fraction: float | None) -> str:
    """A share as a percentage that never rounds a partial view to 0% or 100%."""
    if fraction is None or not math.isfinite(fraction):
        return "n/a"
    p = fraction * 100
    if 0 < p < 1:
        return "<1%"
    if 99 < p < 100:
        return ">99%"
    return f"{round(p):d}%"


def iso(d: date | None, missing: str = "—") -> str:
    return d.isoformat() if d else missing


def date_range(r: tuple[date, date]) -> str:
    return f"{r[0].isoformat()} – {r[1].isoformat()}"


def coverage_line(cov: Coverage | None) -> str:
    """'Optical: X% observed, last clear DATE; SAR: Y% observed, last pass DATE; not observed: Z%'."""
    if cov is None:
        return "Coverage was not recorded for this area."
    last_clear = iso(cov.optical_last_clear, "none")
    optical = f"Optical: {pct(cov.optical_observed_fraction)} observed, last clear {last_clear}"
    sar = f"SAR: {pct(cov.sar_observed_fraction)} observed, last pass {iso(cov.sar_last, 'none')}"
    return f"{optical}; {sar}; not observed: {pct(cov.not_observed_fraction)}"


def statement(result: HotspotResult) -> str:
    """What may be said about an area: change, no change in the observed part, or nothing at all."""
    status = observation_status(result)
    if status == "failed":
        error = result.error or "no error message was recorded"
        return f"Analysis failed — no statement possible. Error: {error}"
    n = len(result.alerts)
    if status == "not observed":
        if n:
            return f"{NOT_OBSERVED} {n} change alert(s) come from the small part that was observed."
        return NOT_OBSERVED
    cov = result.coverage
    rest = ""
    if status == "partly observed" and cov is not None:
        # Radar sees through cloud and can show structural damage, crater fields and vegetation loss (with an
        # active fire, burn scars) there, but its silence rules none of burns, craters or earthworks out: the optical share is what
        # bounds a "no change" about them.
        rest = (
            f" {pct(1 - cov.optical_observed_fraction)} of the area had no clear optical view — no statement "
            "possible there on burn scars, craters or earthworks"
        )
        if cov.sar_observed_fraction > cov.optical_observed_fraction:
            rest += (
                f"; radar saw {pct(cov.sar_observed_fraction)}: it speaks for structural damage on built-up land "
                "and can show crater fields and vegetation loss (a burn scar where an active fire agrees), but "
                "cannot rule them out"
            )
        if cov.not_observed_fraction > 0:
            rest += f"; {pct(cov.not_observed_fraction)} was seen by neither sensor"
        rest += "."
    said = NO_CHANGE if n == 0 else f"{n} change alert{'s' if n != 1 else ''} in the observed part."
    tail = [line for line in (farm_burning_line(result), withdrawn_line(result)) if line]
    return " ".join([said + rest, *tail])


def withdrawn_line(result: HotspotResult) -> str:
    """The alerts earlier daily runs reported here that this run no longer detects; '' without any."""
    gone = sorted(result.withdrawn, key=lambda a: a.id)
    if not gone:
        return ""
    listed = "; ".join(
        f"{a.id} ({CHANGE_LABELS[a.change_type].lower()}, first reported {iso(a.first_reported)})"
        for a in gone
    )
    them = "it" if len(gone) == 1 else "them"
    return (
        f"No longer detected: {listed}. The previous daily run reported {them} with change inside this after "
        f"window, but this run's evidence does not show {them} again: treat as withdrawn."
    )


def farm_burning_line(result: HotspotResult) -> str:
    """What the set-aside seasonal burns are and why they are not alerts; '' without any."""
    burns = result.seasonal_burns
    if not burns:
        return ""
    ha = sum(a.area_ha for a in burns)
    first = min(a.first_observed for a in burns)
    last = max(a.last_observed for a in burns)
    fires = result.cropland_fires
    season = (
        f" (active-fire data show {_plural(fires, 'fire')} on this area's cropland away from any alert since "
        f"{result.windows.before[0].isoformat()})"
        if fires
        else ""
    )
    seen = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    return (
        f"Farm burning: {len(burns)} burnt patches on cropland ({ha:,.1f} ha, seen {seen}) look like the "
        f"season's stubble burning{season} and are shown as context, not counted as alerts; from one sensor a "
        "fire started by shelling among them cannot be told apart."
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _detections_text(matches: list[FireOnAlert]) -> str:
    """'12 VIIRS detections', or '13 detections (12 VIIRS, 1 MODIS)' where instruments differ."""
    by = Counter(m.fire.instrument for m in matches)
    if len(by) == 1:
        return _plural(len(matches), f"{next(iter(by))} detection")
    parts = ", ".join(f"{n} {k}" for k, n in sorted(by.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{_plural(len(matches), 'detection')} ({parts})"


def fire_line(result: HotspotResult, matches: list[FireOnAlert] | None = None) -> str:
    """One line on the area's active fires: how many in the after window, how many on burn scars and when the
    first of those burnt (local time); none (which under cloud proves nothing); or not checked.

    `matches` are fires.match_fires(result), passed in where the caller has them already.
    """
    if result.thermal_source is None:
        return FIRES_NOT_CHECKED
    if matches is None:
        matches = match_fires(result)
    if not matches:
        return NO_FIRES
    burn = [m for m in matches if m.on_burn_alert]
    farm = [m for m in matches if m.seasonal]
    other = [m for m in matches if m.alert is not None and not m.seasonal and not m.on_burn_alert]
    text = f"Active fires: {_detections_text(matches)} in the after window"
    if not (burn or farm or other):
        return f"{text} (first {local_text(matches[0].fire.time)} {LOCAL_LABEL}), none on a change alert."
    parts: list[str] = []
    if burn:
        parts.append(f"{len(burn)} on burn-scar alerts (first {local_text(burn[0].fire.time)} {LOCAL_LABEL})")
    if other:
        parts.append(f"{len(other)} on other change alerts")
    if farm:
        parts.append(f"{len(farm)} on farm burns (stubble fires are hot too)")
    n, rest = parts[0].split(" ", 1)
    parts[0] = f"{n} of them {rest}"
    joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{text}, {joined}."


def highest_confidence(alerts: list[Alert]) -> Confidence | None:
    return max((a.confidence for a in alerts), key=CONFIDENCE_RANK.__getitem__, default=None)


def format_p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    if p < 1e-10:
        return "<1e-10"
    return f"{p:.2g}" if p >= 0.01 else f"{p:.1e}"


def provinces_line(result: HotspotResult) -> str:
    """Both sides named the same way, in alphabetical order, on every page."""
    return f"Cambodia: {result.province_kh or '—'}; Thailand: {result.province_th or '—'}"
