"""Errors raised by the telemetry core."""

from __future__ import annotations


class TelemetryError(Exception):
    """Base class of every error the telemetry package raises on purpose."""


class Rejection(TelemetryError):
    """A device message (or one element of a batch) breaks the contract.

    ``code`` is a short stable label (for metrics and queries), ``detail`` says what was wrong.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    @property
    def reason(self) -> str:
        """The text stored in ``dead_letters.reason``."""
        return f"{self.code}: {self.detail}"


class MigrationError(TelemetryError):
    """The schema cannot be brought to the expected version."""


class RegistryImportError(TelemetryError):
    """A device registry file is malformed; nothing of it was imported."""
