"""Fetch: the built-in simulator, the default imagery source (simulated Sentinel-2, Sentinel-1, events)."""

from __future__ import annotations

from monitoring.sources.simulator.events import GroundTruthEvent
from monitoring.sources.simulator.scenario import Scenario, ScenarioEvent, load_scenario
from monitoring.sources.simulator.source import SimulatorSource

__all__ = ["GroundTruthEvent", "Scenario", "ScenarioEvent", "SimulatorSource", "load_scenario"]
