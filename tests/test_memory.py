"""Memory: the estimate of one area's peak, what the machine has available, and the refusal of areas too large."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitoring import memory
from monitoring.errors import AOIError


def test_the_estimate_is_the_larger_compute_and_grows_with_its_pixels_and_scenes() -> None:
    base = memory.peak_bytes(1_000_000, 100, 15)
    assert memory.peak_bytes(0, 100, 15) == memory.BASE_BYTES
    assert memory.peak_bytes(2_000_000, 100, 15) - memory.BASE_BYTES == pytest.approx(
        2 * (base - memory.BASE_BYTES)
    )
    # A year of radar outweighs 15 optical scenes: the radar compute sets the peak, one more radar scene raises
    # it, one more optical scene does not (the optical layers are computed first, on their own).
    assert memory.peak_bytes(1_000_000, 101, 15) > base
    assert memory.peak_bytes(1_000_000, 100, 16) == base
    # With a short radar baseline the optical compute is the larger.
    assert memory.peak_bytes(1_000_000, 10, 15) == memory.peak_bytes(1_000_000, 0, 15)
    assert memory.peak_bytes(1_000_000, 10, 16) > memory.peak_bytes(1_000_000, 10, 15)
    # The default daily windows over 100 km² (102 radar, 15 optical scenes): measured 1.99-2.09 GB.
    assert 2.1e9 < memory.peak_bytes(1_010_000, 102, 15) < 2.6e9
    # The optical compute alone over 900 km² (15 scenes): measured 7.0-7.7 GB.
    assert 7.7e9 < memory.peak_bytes(9_000_000, 0, 15) < 8.5e9


def _meminfo(tmp_path: Path, available_kb: int) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(
        f"MemTotal:       25000000 kB\nMemFree:         1000 kB\nMemAvailable:   {available_kb} kB\n"
    )
    return path


def test_available_memory_is_the_lower_of_the_machine_and_the_container(tmp_path: Path) -> None:
    meminfo = _meminfo(tmp_path, 20_000_000)
    group = tmp_path / "cgroup"
    group.mkdir()
    assert memory.available_bytes(meminfo, group) == 20_000_000 * 1024  # no cgroup files: the machine's
    (group / "memory.max").write_text("max\n")
    (group / "memory.current").write_text("1000\n")
    assert memory.available_bytes(meminfo, group) == 20_000_000 * 1024  # an unlimited container
    (group / "memory.max").write_text(f"{8 * 10**9}\n")
    (group / "memory.current").write_text(f"{3 * 10**9}\n")
    assert memory.available_bytes(meminfo, group) == 5 * 10**9


def test_an_area_that_fits_passes_and_one_that_does_not_is_refused_with_what_fits() -> None:
    memory.check_fits("small", 90_000, sar_scenes=102, optical_scenes=15, limit_gb=1.0)
    with pytest.raises(AOIError) as e:
        memory.check_fits("big", 25_000_000, sar_scenes=102, optical_scenes=15, limit_gb=20.0)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("area 'big' needs about 43.9 GB of memory")
    assert "25.0 Mpx with 102 Sentinel-1 and 15 Sentinel-2 scenes" in msg and "20.0 GB is available" in msg
    # What fits: (20 GB - base) at the same bytes per pixel, in km² (a 10 m pixel is 1e-4 km²).
    per_px = (memory.peak_bytes(25_000_000, 102, 15) - memory.BASE_BYTES) / 25_000_000
    fits = (20e9 - memory.BASE_BYTES) / per_px * 1e-4
    assert f"at most about {fits:.0f} km²" in msg
    assert "windows.sar_baseline_days" in msg and "memory_limit_gb" in msg
    # The area that fits is refused by nothing smaller than its estimate.
    need = memory.peak_bytes(25_000_000, 102, 15)
    memory.check_fits("big", 25_000_000, sar_scenes=102, optical_scenes=15, limit_gb=need / 1e9)
    # Where the optical compute is the larger, a shorter radar baseline would not help: the message says so.
    with pytest.raises(
        AOIError, match=r"or shorten the optical baseline \(check's --before; windows\.before_"
    ):
        memory.check_fits("big", 25_000_000, sar_scenes=10, optical_scenes=15, limit_gb=5.0)


def test_without_a_budget_the_machines_available_memory_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda: 10 * 10**9)
    memory.check_fits("a", 4_000_000, sar_scenes=102, optical_scenes=15)  # ~7.4 GB of 8.5 GB
    with pytest.raises(AOIError, match=r"8\.5 GB is available"):
        memory.check_fits("a", 5_000_000, sar_scenes=102, optical_scenes=15)  # ~9.2 GB
    monkeypatch.setattr(memory, "available_bytes", lambda: None)
    memory.check_fits("a", 10**9, sar_scenes=102, optical_scenes=15)  # unknown: nothing is refused
