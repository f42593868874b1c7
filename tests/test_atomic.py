"""Atomic writes of every output: all or nothing, the usual file mode, one error naming the path."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from monitoring.atomic import atomic_write, write_bytes_atomic, write_text_atomic
from monitoring.errors import OutputError, ReportError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_written_file_has_the_usual_mode_not_mkstemps_owner_only_one(tmp_path: Path) -> None:
    text = write_text_atomic(tmp_path / "a" / "briefing.geojson", "{}\n")
    data = write_bytes_atomic(tmp_path / "result.json", b"{}", error=OutputError)
    assert text.read_text(encoding="utf-8") == "{}\n" and data.read_bytes() == b"{}"
    assert _mode(text) == _mode(data) == 0o666 & ~_umask()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "briefing.geojson", "result.json"]


@pytest.mark.parametrize("error", [ReportError, OutputError])
def test_a_failed_render_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path: Path, error: type) -> None:
    path = tmp_path / "result.json"
    path.write_text("old", encoding="utf-8")

    def render(tmp: Path) -> None:
        tmp.write_text("half", encoding="utf-8")
        raise OSError(28, "No space left on device")

    with pytest.raises(
        error, match=r"result\.json: could not be written \(OSError.*No space left.*nothing was"
    ):
        atomic_write(path, render, error=error)
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_an_interrupt_leaves_no_temporary_file(tmp_path: Path) -> None:
    def render(tmp: Path) -> None:
        tmp.write_text("half", encoding="utf-8")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "chips.npz", render)
    assert list(tmp_path.iterdir()) == []


def test_the_callers_own_error_passes_through_unchanged(tmp_path: Path) -> None:
    def render(tmp: Path) -> None:
        raise ReportError("page 3: the figure is too large; lower the dpi.")

    with pytest.raises(ReportError, match=r"^page 3: the figure is too large; lower the dpi\.$"):
        atomic_write(tmp_path / "briefing.pdf", render)
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_cannot_be_made_is_one_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(
        OutputError,
        match=r"file/areas: cannot write in the output folder \(Not a directory\); check the path",
    ):
        write_bytes_atomic(blocker / "areas" / "result.json", b"{}", error=OutputError)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
