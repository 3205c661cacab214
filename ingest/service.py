"""The ingest service: MQTT intake, the batch pipeline and the ops HTTP port, owned together."""

from __future__ import annotations

import asyncio

import structlog

from ingest.metrics import IngestMetrics
from ingest.pipeline import Pipeline
from ingest.upkeep import Upkeep
from telemetry.mqtt_intake import IntakeOptions, MqttIntake
from telemetry.ops_http import ops_app, ops_server
from telemetry.service_runner import run_until_stopped, stop_on_signals
from telemetry.settings import Settings
from telemetry.topics import subscription_filter

log = structlog.get_logger("ingest.service")


async def run_ingest(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``), then drain: commit, ack, disconnect."""
    stop = stop or asyncio.Event()
    metrics = IngestMetrics()
    options = IntakeOptions(
        client_id=settings.ingest_id,
        topic_filter=f"$share/{settings.ingest_share_group}/"
        f"{subscription_filter(settings.topic_prefix)}",
        session_expiry_s=settings.ingest_session_expiry_s,
        receive_maximum=settings.ingest_receive_maximum,
        wake_at=settings.ingest_batch_max,
        thread_name="ingest-mqtt",
    )
    intake = MqttIntake(settings, options, connects=metrics.reconnects, connected=metrics.connected)
    with stop_on_signals(stop), intake as source:
        pipeline = Pipeline(settings, source, metrics)

        def healthy() -> bool:
            return source.subscribed.is_set() and pipeline.db_ready.is_set()

        server = ops_server(
            ops_app(healthy, metrics.registry), settings.ingest_http_host, settings.ingest_http_port
        )
        await run_until_stopped(
            pipeline,
            server,
            stop,
            name="ingest.service",
            started=lambda: log.info(
                "ingest_started",
                client_id=settings.ingest_id,
                filter=source.topic_filter,
                http_port=settings.ingest_http_port,
            ),
            extra={"upkeep": lambda: Upkeep(settings, metrics).run(stop)},
        )
    log.info("ingest_stopped")
