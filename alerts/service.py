"""The alerts service: MQTT input, the worker loop and the ops HTTP port, owned together."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

import structlog

from alerts.config import AlertsConfig, Thresholds
from alerts.metrics import AlertsMetrics
from alerts.worker import Worker
from telemetry.alert_events import alert_channel
from telemetry.mqtt_intake import IntakeOptions, MqttIntake
from telemetry.ops_http import ops_app, ops_server
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
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = AlertsMetrics()
    try:
        options = IntakeOptions(
            client_id=config.mqtt_client_id(settings),
            # Each partition of workers is its own share group (docs/alerts.md).
            topic_filter=f"$share/{config.group}/{subscription_filter(settings.topic_prefix)}",
            session_expiry_s=config.session_expiry_s,
            receive_maximum=config.receive_maximum,
            thread_name="alerts-mqtt",
        )
        intake = MqttIntake(
            settings,
            options,
            connects=metrics.reconnects,
            connected=metrics.connected,
            clock=clock,
        )
        with intake as source:
            worker = Worker(settings, config, thresholds, source, metrics, clock=clock)

            def healthy() -> bool:
                return source.subscribed.is_set() and worker.ready.is_set()

            server = ops_server(
                ops_app(healthy, metrics.registry), config.http_host, config.http_port
            )
            async with asyncio.TaskGroup() as tasks:
                loop_task = tasks.create_task(asyncio.to_thread(worker.run), name="alerts-worker")
                tasks.create_task(server.serve(), name="ops-http")

                async def stop_when_asked() -> None:
                    await stop.wait()
                    log.info("stopping", reason="signal")
                    worker.request_stop()
                    await loop_task
                    server.should_exit = True

                tasks.create_task(stop_when_asked(), name="stopper")
                log.info(
                    "alerts_started",
                    worker=config.worker,
                    client_id=source.client_id,
                    filter=source.topic_filter,
                    notify_channel=alert_channel(settings.database_schema),
                    http_port=config.http_port,
                )
                # If the worker dies on its own, stop everything else too.
                await asyncio.wait([loop_task], return_when=asyncio.FIRST_COMPLETED)
                stop.set()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("alerts_stopped")
