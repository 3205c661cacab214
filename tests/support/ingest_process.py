"""Runs ``python -m ingest`` as a real child process for end-to-end tests."""

from __future__ import annotations

from pathlib import Path

from telemetry.settings import Settings
from tests.support.service_process import ServiceProcess


class IngestProcess(ServiceProcess):
    """A child ingest process on the settings' ops port."""

    module = "ingest"

    def __init__(self, settings: Settings, log_path: Path, **env: str) -> None:
        super().__init__(settings, log_path, settings.ingest_http_port, **env)

    def start(self, *, wait_healthy: bool = True) -> IngestProcess:
        """Start the process and, by default, wait for ``/healthz`` to answer 200."""
        super().start(wait_healthy=wait_healthy)
        return self
