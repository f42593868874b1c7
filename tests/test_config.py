"""Tests for configuration: the real hot spots and settings, and one-line errors for broken files."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
import yaml

from monitoring.config import (
    HotSpot,
    Settings,
    check_output_dir,
    hotspot_by_id,
    load_hotspots,
    load_settings,
    not_after_today,
    parse_date,
)
from monitoring.errors import ConfigError

RESEARCH_NOTES = Path("/work/shared/research/hotspots.md")

# The table of research/hotspots.md: id -> (lat, lon, uncertainty_km). uncertainty 0 = sourced; estimated
# sites: ±1 -> 1, ±5 -> 5, no figure -> 2 ("src district; X est" counts as estimated).
TABLE: dict[str, tuple[float, float, float]] = {
    "preah-vihear": (14.3931, 104.6803, 0),
    "phu-makhuea": (14.3931, 104.6544, 2),
    "kantharalak": (14.6400, 104.6500, 2),
    "chong-an-ma": (14.3900, 104.9680, 1),
    "chong-bok": (14.3700, 105.1900, 5),
    "ta-muen-thom": (14.3492, 103.2664, 0),
    "ta-muen-toch": (14.3560, 103.2650, 2),
    "ta-krabey": (14.3528, 103.3733, 0),
    "phanom-dong-rak": (14.4456, 103.3044, 2),
    "chong-chom": (14.4100, 103.6942, 0),
    "samraong": (14.1817, 103.5176, 2),
    "ban-kruat": (14.4200, 103.1300, 5),
    "poipet": (13.6500, 102.5670, 0),
    "nong-chan": (13.8319, 102.7333, 0),
    "thmor-da": (12.2200, 102.7000, 2),
    "hat-lek": (11.6600, 102.9100, 2),
}
NO_THAI_SIDE = {"samraong"}
NO_CAMBODIAN_SIDE = {"kantharalak", "phanom-dong-rak"}


def _expected_aoi_km(uncertainty: float) -> float:
    if uncertainty == 0:
        return 3
    if uncertainty >= 5:
        # 2*5+2 = 12 capped; 10 is the smallest square HotSpot accepts (aoi_km >= 2 * uncertainty_km).
        return 10
    return max(3, 2 * uncertainty + 2)


@pytest.fixture(scope="module")
def spots() -> list[HotSpot]:
    return load_hotspots()


def test_real_config_validates(spots: list[HotSpot]) -> None:
    settings = load_settings()
    assert len(spots) == 16
    assert len({h.id for h in spots}) == 16
    assert settings.source == "simulator"
    assert settings.simulator.scenario == "scenarios/dec-2025.yaml"
    assert (settings.schedule.cron, settings.schedule.timezone) == ("0 6 * * *", "Asia/Bangkok")
    assert settings.output_dir == "out"


def test_settings_file_spells_out_every_field() -> None:
    data = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "settings.yaml").read_text())
    assert set(data) == set(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        sub = getattr(field.annotation, "model_fields", None)
        if sub:
            assert set(data[name]) == set(sub), name


def test_every_hotspot_of_the_research_notes(spots: list[HotSpot]) -> None:
    by_id = {h.id: h for h in spots}
    assert set(by_id) == set(TABLE)
    for hid, (lat, lon, unc) in TABLE.items():
        h = by_id[hid]
        assert (h.lat, h.lon) == (lat, lon), hid
        assert h.coordinates == ("sourced" if unc == 0 else "estimated"), hid
        assert h.uncertainty_km == unc, hid
        assert h.aoi_km == _expected_aoi_km(unc), hid
        assert (h.province_th is None) == (hid in NO_THAI_SIDE), hid
        assert (h.province_kh is None) == (hid in NO_CAMBODIAN_SIDE), hid
        assert h.notes and h.sources, hid


@pytest.mark.skipif(not RESEARCH_NOTES.exists(), reason="research notes not on this machine")
def test_table_above_matches_the_research_notes() -> None:
    rows = re.findall(r"^\| ([a-z0-9-]+) \|[^|]*\| ([\d.]+) \| ([\d.]+) \|", RESEARCH_NOTES.read_text(), re.M)
    assert {r[0]: (float(r[1]), float(r[2])) for r in rows} == {k: v[:2] for k, v in TABLE.items()}


def test_priorities(spots: list[HotSpot]) -> None:
    # December strikes on populated places or temples first; quiet since July last.
    by_id = {h.id: h.priority for h in spots}
    assert by_id["preah-vihear"] == by_id["poipet"] == by_id["samraong"] == 1
    assert by_id["chong-bok"] == 2
    assert by_id["ta-krabey"] == by_id["ta-muen-toch"] == 3


def test_hotspot_by_id_unknown_lists_known(spots: list[HotSpot]) -> None:
    with pytest.raises(ConfigError, match="unknown hot spot 'nowhere'.*preah-vihear"):
        hotspot_by_id(spots, "nowhere")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _broken(config_copy: Path, edit: str) -> Path:
    data = yaml.safe_load((config_copy / "hotspots.yaml").read_text(encoding="utf-8"))
    spots = data["hotspots"]
    if edit == "lat":
        spots[4]["lat"] = 45.0
    elif edit == "unknown":
        spots[2]["elevation_m"] = 600
    elif edit == "duplicate":
        spots[7]["id"] = spots[1]["id"]
    return _write(config_copy / "hotspots.yaml", yaml.safe_dump(data, allow_unicode=True))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ("lat", ["hot spot 'chong-bok'", "field 'lat'", "45.0"]),
        ("unknown", ["hot spot 'kantharalak'", "field 'elevation_m'"]),
        ("duplicate", ["field 'hotspots'", "duplicate hot spot id 'phu-makhuea'"]),
    ],
)
def test_bad_hotspot_file_one_line(config_copy: Path, edit: str, expected: list[str]) -> None:
    path = _broken(config_copy, edit)
    with pytest.raises(ConfigError) as e:
        load_hotspots()
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(str(path))
    for part in expected:
        assert part in msg


def test_invalid_yaml_one_line(config_copy: Path) -> None:
    path = _write(config_copy / "hotspots.yaml", "hotspots:\n  - id: x\n   name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line 3, column") as e:
        load_hotspots()
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_hotspots(tmp_path / "nope.yaml")


def test_env_overrides_settings_file(config_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (config_copy / "settings.yaml").read_text(encoding="utf-8").replace("dnbr: 0.27", "dnbr: 0.31")
    _write(config_copy / "settings.yaml", text)
    monkeypatch.setenv("BORDERWATCH_THRESHOLDS__MMU_HA", "0.5")
    s = load_settings()
    assert s.thresholds.mmu_ha == 0.5
    # The environment replaces one nested value, not the whole section from the file.
    assert s.thresholds.dnbr == 0.31


def test_bad_env_value_is_a_config_error(config_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The message names the variable, not the file, whose value is fine: the file is not where to look.
    monkeypatch.setenv("BORDERWATCH_THRESHOLDS__MMU_HA", "-1")
    with pytest.raises(
        ConfigError,
        match=r"^environment variable BORDERWATCH_THRESHOLDS__MMU_HA: field 'thresholds\.mmu_ha': .*greater "
        r"than 0 \(got '-1'\)\. Fix or unset BORDERWATCH_THRESHOLDS__MMU_HA and run again\.$",
    ) as e:
        load_settings()
    assert "\n" not in str(e.value)
    # A whole section set as JSON is named the same way.
    monkeypatch.delenv("BORDERWATCH_THRESHOLDS__MMU_HA")
    monkeypatch.setenv("BORDERWATCH_THRESHOLDS", '{"mmu_ha": 0}')
    with pytest.raises(ConfigError, match=r"^environment variable BORDERWATCH_THRESHOLDS: field 'thresholds"):
        load_settings()


def test_bad_settings_field(config_copy: Path) -> None:
    text = (
        (config_copy / "settings.yaml")
        .read_text(encoding="utf-8")
        .replace("source: simulator", "source: drone")
    )
    _write(config_copy / "settings.yaml", text)
    with pytest.raises(ConfigError, match="field 'source'") as e:
        load_settings()
    assert "\n" not in str(e.value)


def test_parse_date() -> None:
    assert parse_date("2025-12-22").isoformat() == "2025-12-22"
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        parse_date("22/12/2025")


def test_not_after_today() -> None:
    today = date(2026, 12, 7)
    not_after_today(today, today, what="--date")  # today itself is fine: its passes may still come
    with pytest.raises(
        ConfigError, match=r"^--date 2026-12-08 is after today \(2026-12-07\).*up to 2026-12-07"
    ):
        not_after_today(date(2026, 12, 8), today, what="--date")


def test_check_output_dir_creates_nothing(tmp_path: Path) -> None:
    check_output_dir(tmp_path / "a" / "b", what="--out")  # a new folder under a writable one
    check_output_dir(tmp_path, what="--out")
    assert not any(tmp_path.iterdir())
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match=r"^--out '.*f/out': .*f is a file, not a folder"):
        check_output_dir(tmp_path / "f" / "out", what="--out")
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
def test_check_output_dir_unwritable() -> None:
    # /proc refuses new folders even to root (chmod would not stop root).
    with pytest.raises(ConfigError, match=r"^output_dir '/proc/borderwatch' cannot be written \("):
        check_output_dir("/proc/borderwatch", what="output_dir")


def test_sar_settings_file_matches_the_defaults() -> None:
    # The settings file and the code agree on the radar test: a 12-month baseline, last year's season on
    # cropland, PWTT's three smoothing scales and both error controls.
    s = load_settings()
    assert s.windows.sar_baseline_days == 365
    assert s.windows.sar_season_days == 21
    assert s.thresholds.sar_alpha == 1e-4
    assert s.thresholds.sar_fdr_q == 0.01
    assert s.thresholds.sar_scales_m == (50.0, 100.0, 150.0)
    assert s.windows == Settings.model_fields["windows"].default
    assert s.thresholds == Settings.model_fields["thresholds"].default


def test_sar_scales_from_the_environment(config_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BORDERWATCH_THRESHOLDS__SAR_SCALES_M", "[50]")
    assert load_settings().thresholds.sar_scales_m == (50.0,)
    monkeypatch.setenv("BORDERWATCH_THRESHOLDS__SAR_FDR_Q", "0")
    with pytest.raises(ConfigError, match="sar_fdr_q"):
        load_settings()
