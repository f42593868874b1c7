from __future__ import annotations

from datetime import date

from monitoring.report.samples import sample_results
from monitoring.report.text import NO_CHANGE, farm_burning_line, statement
from monitoring.results import Coverage


def _cloudy(optical: float, sar: float) -> Coverage:
    return Coverage(
        optical_scenes_before=6,
        optical_scenes_after=3,
        optical_observed_fraction=optical,
        optical_last_clear=None,
        sar_scenes_before=30,
        sar_scenes_after=3,
        sar_observed_fraction=sar,
        sar_last=date(2025, 12, 20),
        not_observed_fraction=0.0,
        status="partly observed",
    )


def test_under_cloud_radar_does_not_make_no_change_a_statement_about_burns_or_craters() -> None:
    (r, _), *_ = sample_results(date(2025, 12, 22), simulated=True, size_px=32)
    quiet = r.model_copy(update={"alerts": [], "coverage": _cloudy(0.3, 1.0), "seasonal_burns": []})
    text = statement(quiet)
    assert text.startswith(NO_CHANGE)
    assert "70% of the area had no clear optical view — no statement possible there on burn scars" in text
    assert "radar saw 100%: it speaks for structural damage on built-up land" in text
    assert "cannot rule them out" in text
    # Where radar saw no more than optics, it is not mentioned.
    assert "radar" not in statement(quiet.model_copy(update={"coverage": _cloudy(0.3, 0.3)}))


def test_farm_burning_line_gives_one_day_once_and_the_fire_count_only_when_known() -> None:
    (r, _), *_ = sample_results(date(2025, 12, 22), simulated=True, size_px=32)
    day = date(2025, 12, 15)
    burns = [
        a.model_copy(update={"seasonal": True, "first_observed": day, "last_observed": day}) for a in r.alerts
    ]
    line = farm_burning_line(r.model_copy(update={"seasonal_burns": burns}))
    assert f"seen {day.isoformat()})" in line and " to " not in line and "active-fire" not in line
    line = farm_burning_line(r.model_copy(update={"seasonal_burns": burns, "cropland_fires": 1}))
    assert (
        f"active-fire data show 1 fire on this area's cropland away from any alert since {r.windows.before[0]}"
        in line
    )
    assert farm_burning_line(r.model_copy(update={"seasonal_burns": []})) == ""
