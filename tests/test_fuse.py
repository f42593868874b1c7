from __future__ import annotations

from datetime import date

import pytest

from monitoring.fuse import confidence_tier, set_aside_farm_burning
from monitoring.results import Alert, ChangeType, Confidence

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[103.0, 14.0], [103.001, 14.0], [103.001, 14.001], [103.0, 14.0]]],
}


def _alert(
    i: int,
    change: ChangeType = ChangeType.BURN_SCAR,
    *,
    seasonal: bool = True,
    sensors: tuple[str, ...] = ("sentinel-2",),
) -> Alert:
    return Alert(
        id=f"a{i}",
        hotspot_id="x",
        change_type=change,
        area_ha=1.0,
        first_observed=date(2025, 12, 10),
        last_observed=date(2025, 12, 20),
        confidence=confidence_tier(sensors=sensors, methods=["dnbr"], observations=1, seasonal=seasonal),
        sensors=list(sensors),
        methods=["dnbr"],
        observations=1,
        score_mean=0.5,
        score_max=0.7,
        seasonal=seasonal,
        scene_ids=[],
        geometry=SQUARE,
    )


def test_a_few_field_fires_stay_alerts() -> None:
    alerts = [_alert(i) for i in range(4)] + [_alert(9, seasonal=False)]
    kept, aside = set_aside_farm_burning(alerts, min_fields=5)
    assert kept == alerts and aside == []


@pytest.mark.parametrize("n", [5, 40])
def test_in_the_burning_season_single_sensor_cropland_burns_are_set_aside(n: int) -> None:
    seasonal = [_alert(i) for i in range(n)]
    others = [
        _alert(100, seasonal=False),  # a burn off cropland
        _alert(101, sensors=("sentinel-1", "sentinel-2")),  # radar agrees: not routine farm burning
        _alert(102, ChangeType.CRATER_FIELD, seasonal=False),
    ]
    kept, aside = set_aside_farm_burning(seasonal + others, min_fields=5)
    assert [a.id for a in aside] == [a.id for a in seasonal]
    assert [a.id for a in kept] == [a.id for a in others]


def test_corroborated_burns_do_not_count_towards_the_season() -> None:
    two_sensors = [_alert(i, sensors=("sentinel-1", "sentinel-2")) for i in range(10)]
    kept, aside = set_aside_farm_burning(two_sensors + [_alert(50)], min_fields=5)
    assert aside == [] and len(kept) == 11


def test_seasonal_change_stays_low_until_another_sensor_agrees() -> None:
    assert confidence_tier(sensors=["sentinel-2"], methods=["dnbr"], observations=4, seasonal=True) is (
        Confidence.LOW
    )
    assert confidence_tier(sensors=["sentinel-2"], methods=["dnbr"], observations=4) is Confidence.HIGH
    both = confidence_tier(
        sensors=["sentinel-2", "sentinel-1"], methods=["dnbr"], observations=1, seasonal=True
    )
    assert both is Confidence.HIGHEST
