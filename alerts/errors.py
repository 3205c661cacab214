"""Errors of the alerts service."""

from __future__ import annotations


class AlertsError(Exception):
    """Base class of the alerts service's own errors."""


class ConfigError(AlertsError):
    """The thresholds file or an RASD_ALERTS_* setting is invalid."""


class RoutesImportError(AlertsError):
    """A routes/rounds JSON file is malformed; nothing of it was imported."""
