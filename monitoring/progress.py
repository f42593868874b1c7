"""Progress: a tiny publish/subscribe hook so long steps can say which area they are on (no UI code here)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

Step = Literal["analyse", "track", "briefing"]
State = Literal["started", "finished", "failed"]


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a run started, finished or failed."""

    step: Step
    state: State
    area_id: str | None = None
    """The area being analysed; None for run-wide steps such as the briefing."""
    index: int = 0
    """1-based position of the area in this run (0 for run-wide steps)."""
    total: int = 0
    """Number of areas in this run (0 for run-wide steps)."""
    detail: str = ""
    """Free text for the display, e.g. the error of a failed area or the retry attempt."""


Listener = Callable[[ProgressEvent], None]

_listeners: list[Listener] = []
_lock = threading.Lock()


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call listener for every event from now on; returns a function that unsubscribes it."""
    with _lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


@contextmanager
def subscribed(listener: Listener) -> Iterator[None]:
    """Subscribe listener for the duration of a with block."""
    unsubscribe = subscribe(listener)
    try:
        yield
    finally:
        unsubscribe()


def emit(event: ProgressEvent) -> None:
    """Tell every listener; a broken display must never fail a run, so listener errors are only logged."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(event)
        except Exception:
            log.warning("progress listener %r failed on %r", listener, event, exc_info=True)
