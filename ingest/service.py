"""The ingest service: MQTT intake, the batch pipeline and the ops HTTP port, owned together."""

from __future__ import annotations

import asyncio
import signal

import structlog

from ingest.metrics import IngestMetrics
from ingest.pipeline import Pipeline
from ingest.upkeep import Upkeep
from telemetry.mqtt_intake import IntakeOptions, MqttIntake
from telemetry.ops_http import ops_app, ops_server
from telemetry.settings import Settings
from telemetry.topics import subscription_filter

log = structlog.get_logger("ingest.service")


async def run_ingest(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``), then drain: commit, ack, disconnect."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = IngestMetrics()
    try:
        options = IntakeOptions(
            client_id=settings.ingest_id,
            topic_filter=f"$share/{settings.ingest_share_group}/"
            f"{subscription_filter(settings.topic_prefix)}",
            session_expiry_s=settings.ingest_session_expiry_s,
            receive_maximum=settings.ingest_receive_maximum,
            wake_at=settings.ingest_batch_max,
            thread_name="ingest-mqtt",
        )
        intake = MqttIntake(
            settings, options, connects=metrics.reconnects, connected=metrics.connected
        )
        with intake as source:
            pipeline = Pipeline(settings, source, metrics)

            def healthy() -> bool:
                return source.subscribed.is_set() and pipeline.db_ready.is_set()

            server = ops_server(
                ops_app(healthy, metrics.registry),
                settings.ingest_http_host,
                settings.ingest_http_port,
            )
            async with asyncio.TaskGroup() as tasks:
                worker = tasks.create_task(asyncio.to_thread(pipeline.run), name="pipeline")
                tasks.create_task(server.serve(), name="ops-http")
                tasks.create_task(Upkeep(settings, metrics).run(stop), name="upkeep")

                async def stop_when_asked() -> None:
                    await stop.wait()
                    log.info("stopping", reason="signal")
                    pipeline.request_stop()
                    await worker
                    server.should_exit = True

                tasks.create_task(stop_when_asked(), name="stopper")
                log.info(
                    "ingest_started",
                    client_id=settings.ingest_id,
                    filter=source.topic_filter,
                    http_port=settings.ingest_http_port,
                )
                # If the pipeline dies on its own, stop everything else too.
                await asyncio.wait([worker], return_when=asyncio.FIRST_COMPLETED)
                stop.set()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("ingest_stopped")
