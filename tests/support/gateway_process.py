"""Runs ``python -m ingest.gateways`` as a real child process for end-to-end tests."""

from __future__ import annotations

from pathlib import Path

from telemetry.settings import Settings
from tests.support.service_process import ServiceProcess


class GatewayProcess(ServiceProcess):
    """A child gateways process on the settings' gateway ops port."""

    module = "ingest.gateways"

    def __init__(self, settings: Settings, log_path: Path, **env: str) -> None:
        super().__init__(settings, log_path, settings.gateway_http_port, **env)
