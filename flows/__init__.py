"""Orchestration: Prefect flows over the monitoring library; importing this package keeps Prefect local."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Prefect reads these when it is first imported, so they must be set before any `import prefect`. setdefault:
# an operator who points PREFECT_API_URL (or anything else) elsewhere on purpose still wins.
_LOCAL_PREFECT = {
    # State (SQLite database, profiles, results, logs) lives in the project, not in ~/.prefect.
    "PREFECT_HOME": str(PROJECT_ROOT / ".prefect"),
    # Without PREFECT_API_URL, start a temporary local server (127.0.0.1) for the run; the default profile
    # does the same, but a fresh PREFECT_HOME has no profile file, so say it explicitly.
    "PREFECT_SERVER_EPHEMERAL_ENABLED": "true",
    # The first start creates and migrates the SQLite database; on a slow two-core machine that can exceed the
    # 20 s default.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # No usage reports: the server's telemetry service (sens-o-matic) ...
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # ... and the SDK's client-side analytics (Amplitude), which only honour the DO_NOT_TRACK convention.
    "DO_NOT_TRACK": "1",
    # The UI (only when someone runs `prefect server start` in this environment) shows no remote content.
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
}
for _key, _value in _LOCAL_PREFECT.items():
    os.environ.setdefault(_key, _value)
