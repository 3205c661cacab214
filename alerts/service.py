"""The alerts service: MQTT input, the worker loop and the ops HTTP port, owned together."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from alerts.config import AlertsConfig, Thresholds
from alerts.metrics import AlertsMetrics
from alerts.worker import Worker
from telemetry.alert_events import alert_channel
from telemetry.mqtt_intake import IntakeOptions, MqttIntake
from telemetry.ops_http import ops_app, ops_server
from telemetry.service_runner import run_until_stopped, stop_on_signals
from telemetry.settings import Settings
from telemetry.topics import subscription_filter

log = structlog.get_logger("alerts.service")


async def run_alerts(
    settings: Settings,
    config: AlertsConfig,
    thresholds: Thresholds,
    stop: asyncio.Event | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``), then drain: commit, ack, disconnect."""
    stop = stop or asyncio.Event()
    metrics = AlertsMetrics()
    options = IntakeOptions(
        client_id=config.mqtt_client_id(settings),
        # Each partition of workers is its own share group (docs/alerts.md).
        topic_filter=f"$share/{config.group}/{subscription_filter(settings.topic_prefix)}",
        session_expiry_s=config.session_expiry_s,
        receive_maximum=config.receive_maximum,
        thread_name="alerts-mqtt",
    )
    intake = MqttIntake(
        settings, options, connects=metrics.reconnects, connected=metrics.connected, clock=clock
    )
    with stop_on_signals(stop), intake as source:
        worker = Worker(settings, config, thresholds, source, metrics, clock=clock)

        def healthy() -> bool:
            return source.subscribed.is_set() and worker.ready.is_set()

        server = ops_server(ops_app(healthy, metrics.registry), config.http_host, config.http_port)
        await run_until_stopped(
            worker,
            server,
            stop,
            name="alerts.service",
            started=lambda: log.info(
                "alerts_started",
                worker=config.worker,
                client_id=source.client_id,
                filter=source.topic_filter,
                notify_channel=alert_channel(settings.database_schema),
                http_port=config.http_port,
            ),
        )
    log.info("alerts_stopped")
