"""Errors: one root for the whole pipeline, each message says what failed and how to fix it."""

from __future__ import annotations


class BorderwatchError(Exception):
    """Root of every error Borderwatch raises on purpose."""


class ConfigError(BorderwatchError, ValueError):
    """A configuration file, scenario file or CLI value is invalid. Exit code 2."""


class AOIError(BorderwatchError, ValueError):
    """An area of interest cannot be built (bad bbox, bad GeoJSON, too large)."""


class SourceError(BorderwatchError):
    """Imagery could not be searched or loaded."""


class SceneLoadError(SourceError):
    """One scene failed to load; the message names the scene and the request."""


class DetectionError(BorderwatchError):
    """A detector got data it cannot work on (wrong variables, empty windows)."""


class OutputError(BorderwatchError):
    """An area's result, its chips or a figures file could not be written (a full disk, a read-only folder)."""


class ReportError(BorderwatchError):
    """A briefing could not be written or rebuilt."""


class StoreError(BorderwatchError):
    """The alert store (the tracking database) cannot be opened, read or written."""
