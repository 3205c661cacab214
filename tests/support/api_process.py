"""Runs ``python -m api`` as a real child process on a free port for tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from telemetry.settings import Settings
from tests.support.env import free_port
from tests.support.service_process import ServiceProcess
from tests.support.waiting import wait_until


class ApiProcess(ServiceProcess):
    """A child API process; ``start()`` waits until ``/readyz`` says ready (database, broker,
    registry and alert feed)."""

    module = "api"

    def __init__(
        self, settings: Settings, log_path: Path, *, port: int | None = None, **env: str
    ) -> None:
        port = port or free_port()
        super().__init__(settings, log_path, port, **(env | {"RASD_API_PORT": str(port)}))

    def start(self, *, wait_healthy: bool = True) -> ApiProcess:
        """Start and, by default, wait for ``/readyz``."""
        super().start(wait_healthy=wait_healthy)
        if wait_healthy:
            wait_until(self.ready, timeout=60, what="API /readyz")
        return self

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>."""
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        """True when ``/readyz`` answers that everything is up; fails the test if the process
        died."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"api exited with {self.proc.returncode}: {self.log_tail()}")
        status, body = self.http_get("/readyz")
        return status == 200 and json.loads(body)["status"] == "ready"

    def shutdown(self, timeout: float = 20) -> None:
        """SIGTERM if it still runs, SIGKILL if it lingers (a fixture's teardown)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.stop(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
