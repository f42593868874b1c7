"""Report: atomic file writes, so a failed briefing never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from monitoring.errors import ReportError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by the owner only; outputs are shared, so give them the usual mode instead.
_FILE_MODE = 0o666 & ~_umask()


def atomic_write(path: Path, render: Callable[[Path], object]) -> Path:
    """Call render(tmp) on a temporary file beside path, then move it into place in one step.

    The temporary file lives in the same folder so that os.replace is a rename on one file system: readers see
    either the old file or the complete new one, never a partial one.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(
            f"{path.parent}: cannot create the output folder ({e.strerror}); check the path and permissions."
        ) from e
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        render(tmp)
        os.chmod(tmp, _FILE_MODE)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except ReportError:
        _discard(tmp)
        raise
    except Exception as e:
        _discard(tmp)
        raise ReportError(
            f"{path}: could not be written ({e.__class__.__name__}: {e}); nothing was changed there."
        ) from e
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _discard(tmp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
