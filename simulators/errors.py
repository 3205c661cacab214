"""Errors the simulators raise for bad input; the CLI prints them without a traceback."""

from __future__ import annotations


class SimulatorError(Exception):
    """Base class: a problem the user can fix (bad scenario, bad file, broker unreachable)."""


class ScenarioError(SimulatorError):
    """A scenario file or a command-line override is invalid."""


class RecordingError(SimulatorError):
    """A recording file cannot be read or written."""


class PublishError(SimulatorError):
    """The broker could not be reached or did not acknowledge what was published."""
