"""Test fakes: local stand-ins for the remote services the sources talk to (no network in tests).

Import each from its module (e.g. ``tests.fakes.sentinelhub_server``), so that one fake's dependencies never
load with another's.
"""
