"""Runs ``python -m alerts`` as a real child process on its own ops port for tests."""

from __future__ import annotations

from pathlib import Path

from telemetry.settings import Settings
from tests.support.env import free_port
from tests.support.service_process import ServiceProcess


class AlertsProcess(ServiceProcess):
    """``python -m alerts`` as a real child process on its own ops port."""

    module = "alerts"
    healthy_timeout = 60.0  # healthy only once caught up and subscribed

    def __init__(self, settings: Settings, log_path: Path, **env: str) -> None:
        port = int(env.get("RASD_ALERTS_HTTP_PORT", "0")) or free_port()
        super().__init__(settings, log_path, port, **(env | {"RASD_ALERTS_HTTP_PORT": str(port)}))

    def start(self, *, wait_healthy: bool = True) -> AlertsProcess:
        """Start, and by default wait until ``/healthz`` answers 200 (caught up, subscribed)."""
        super().start(wait_healthy=wait_healthy)
        return self
