"""The gateways process: one MQTT session, the database pool, every enabled gateway and the ops
port, owned together; SIGTERM drains device connections and bridged messages before exit."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog
from psycopg_pool import AsyncConnectionPool

from ingest.gateways.bridge import MqttBridge
from ingest.gateways.bridged_protocols import bridge_routes, bridged_filters
from ingest.gateways.forwarder import Forwarder
from ingest.gateways.http_gateway import HttpGateway
from ingest.gateways.identities import IdentityBook
from ingest.gateways.metrics import GatewayMetrics
from ingest.gateways.teltonika_server import TeltonikaGateway
from telemetry.db import conninfo
from telemetry.mqtt_session.client import MqttSession
from telemetry.ops_http import OwnSignalsServer, ops_app, ops_server
from telemetry.service_runner import stop_on_signals
from telemetry.settings import Settings

log = structlog.get_logger("ingest.gateways")


def share_group(settings: Settings) -> str:
    """Bridged subscriptions are shared so that the gateway processes of one deployment split
    the traffic; one group per topic prefix keeps deployments on one broker apart."""
    return f"rasd-gateways-{settings.topic_prefix.replace('/', '-')}"


async def run_gateways(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Serve every enabled gateway until SIGTERM/SIGINT (or ``stop``), then drain."""
    stop = stop or asyncio.Event()
    metrics = GatewayMetrics()
    pool = AsyncConnectionPool(
        conninfo(settings, app="rasd-gateways"), min_size=1, max_size=8, open=False, timeout=10
    )
    with stop_on_signals(stop):
        await pool.open(wait=False)
        try:
            await _serve(settings, stop, metrics, pool)
        finally:
            await pool.close()
    log.info("gateways_stopped")


async def _serve(
    settings: Settings, stop: asyncio.Event, metrics: GatewayMetrics, pool: AsyncConnectionPool
) -> None:
    book = IdentityBook(
        pool=pool, ttl_s=settings.ingest_registry_refresh_s, auto_register=settings.auto_register
    )
    session = MqttSession(
        settings,
        client_id=settings.gateway_id,
        clean_start=False,
        session_expiry_s=settings.ingest_session_expiry_s,
        receive_maximum=1000,
        subscriptions=[
            (f"$share/{share_group(settings)}/{f}", 1) for f in bridged_filters(settings).values()
        ],
    )
    forwarder = Forwarder(
        broker=session,
        pool=pool,
        prefix=settings.topic_prefix,
        metrics=metrics,
        ack_timeout_s=settings.gateway_ack_timeout_s,
    )
    routes = bridge_routes(settings, book, forwarder)
    metrics.broker_connected.set_function(lambda: float(session.connected.is_set()))
    async with session:
        ops = ops_server(
            ops_app(session.connected.is_set, metrics.registry),
            settings.gateway_http_host,
            settings.gateway_http_port,
        )
        device_facing: dict[str, Coroutine[Any, Any, None]] = {}
        servers: list[OwnSignalsServer] = []
        if settings.gateway_teltonika_port:
            teltonika = TeltonikaGateway(
                book=book,
                forwarder=forwarder,
                metrics=metrics,
                idle_timeout_s=settings.gateway_idle_timeout_s,
            )
            device_facing["teltonika"] = teltonika.serve(
                settings.gateway_listen_host, settings.gateway_teltonika_port
            )
        if settings.gateway_osmand_port:
            http = ops_server(
                HttpGateway(book=book, forwarder=forwarder, metrics=metrics).app(),
                settings.gateway_listen_host,
                settings.gateway_osmand_port,
            )
            servers.append(http)
            device_facing["http"] = http.serve()
        if routes:
            device_facing["bridge"] = MqttBridge(
                session=session, routes=routes, grace_s=settings.gateway_ack_timeout_s
            ).run()
        async with asyncio.TaskGroup() as tasks:
            running = [tasks.create_task(c, name=f"gateway-{n}") for n, c in device_facing.items()]
            ops_task = tasks.create_task(ops.serve(), name="ops-http")
            log.info(
                "gateways_started",
                gateways=sorted(device_facing),
                bridged=[r.topic_filter for r in routes],
                http_port=settings.gateway_http_port,
            )
            await stop.wait()
            log.info("stopping", reason="signal")
            # Device-facing first (each drains what it holds), the ops port last.
            for server in servers:
                server.should_exit = True
            for task in running:
                if not task.get_name().startswith("gateway-http"):
                    task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            ops.should_exit = True
            await ops_task
