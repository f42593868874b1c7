"""Atomic file writes for every output (result.json, chips, GeoJSON, PDF, manifest, figures): a failed write
never leaves a half-written file or a stray temporary file behind, and the old file stays as it was."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from monitoring.errors import BorderwatchError, ReportError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates files readable by the owner only; outputs are shared, so give them the usual mode instead.
_FILE_MODE = 0o666 & ~_umask()


def atomic_write(
    path: Path, render: Callable[[Path], object], *, error: type[BorderwatchError] = ReportError
) -> Path:
    """Call render(tmp) on a temporary file beside path, then move it into place in one step.

    The temporary file lives in the same folder so that os.replace is a rename on one file system: readers see
    either the old file or the complete new one, never a partial one. The file gets the usual mode (0666 less
    the umask), not mkstemp's owner-only one: outputs are shared. A failure raises `error` naming the path;
    an `error` raised by render passes through as it is.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise error(
            f"{path.parent}: cannot write in the output folder ({e.strerror}); check the path and permissions."
        ) from e
    os.close(fd)
    tmp = Path(name)
    try:
        render(tmp)
        os.chmod(tmp, _FILE_MODE)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except error:
        _discard(tmp)
        raise
    except Exception as e:
        _discard(tmp)
        raise error(
            f"{path}: could not be written ({e.__class__.__name__}: {e}); nothing was changed there."
        ) from e
    except BaseException:  # an interrupt: no stray temporary file either
        _discard(tmp)
        raise
    return path


def write_text_atomic(path: Path, text: str, *, error: type[BorderwatchError] = ReportError) -> Path:
    """`text` as UTF-8 at path, atomically (see atomic_write)."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), error=error)


def write_bytes_atomic(path: Path, data: bytes, *, error: type[BorderwatchError] = ReportError) -> Path:
    """`data` at path, atomically (see atomic_write)."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data), error=error)


def _discard(tmp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
