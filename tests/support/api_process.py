"""Runs ``python -m api`` as a real child process on a free port for tests."""

from __future__ import annotations

import json
from pathlib import Path

from telemetry.settings import Settings
from tests.support.env import free_port
from tests.support.service_process import ServiceProcess
from tests.support.waiting import wait_until


class ApiProcess(ServiceProcess):
    """A child API process; ``start()`` waits until ``/readyz`` says ready (database, broker,
    registry and alert feed)."""

    module = "api"

    def __init__(self, settings: Settings, log_path: Path, **env: str) -> None:
        port = free_port()
        super().__init__(settings, log_path, port, **(env | {"RASD_API_PORT": str(port)}))

    def start(self, *, wait_healthy: bool = True) -> ApiProcess:
        """Start and, by default, wait for ``/readyz``."""
        super().start(wait_healthy=wait_healthy)
        if wait_healthy:
            wait_until(self.ready, timeout=60, what="API /readyz")
        return self

    def ready(self) -> bool:
        """True when ``/readyz`` answers that everything is up."""
        status, body = self.http_get("/readyz")
        return status == 200 and json.loads(body)["status"] == "ready"
