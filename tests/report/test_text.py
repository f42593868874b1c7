from __future__ import annotations

from datetime import date

from monitoring.report.samples import sample_results
from monitoring.report.text import NO_CHANGE, statement
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
