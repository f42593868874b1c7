"""Shared test fixtures: one Prefect test server per session, fast retries, a throwaway config folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

# Before anything imports flows.daily (retry delays are read once) or prefect (flows/ keeps Prefect local).
os.environ.setdefault("BORDERWATCH_RETRY_DELAYS", "0,0")
import flows  # noqa: E402, F401

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A temporary Prefect server and database for the whole session (starting one takes seconds)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def config_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of config/ (hot spots, settings, scenarios) that a test may break; selected for the test."""
    dst = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", dst)
    monkeypatch.setenv("BORDERWATCH_CONFIG_DIR", str(dst))
    return dst
