"""The FastAPI application factory and its lifespan (pools, broker feed, LISTEN, tickers)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final, TypedDict

import structlog
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.config import ApiSettings
from api.errors import install_error_handlers
from api.live.alerts_feed import run_alert_feed
from api.live.alerts_hub import AlertHub
from api.live.board import VehiclePosition
from api.live.mqtt_feed import MqttFeed
from api.live.positions import PositionHub
from api.live.registry import VehicleRegistry
from api.metrics import ApiMetrics
from api.open311 import routes as open311
from api.open311.desk import ComplaintDesk
from api.open_data import routes as open_data
from api.open_data.refresh import OpenDataRefresher
from api.pools import open_pools
from api.routes import (
    alerts,
    assets,
    devices,
    docs_page,
    energy,
    energy_accounting,
    gtfs,
    lights,
    maintenance_pages,
    ops,
    pages,
    tokens,
    vehicles,
    work_orders,
    ws_alerts,
    ws_positions,
)
from api.runtime import Runtime
from api.security_middleware import SecurityHeaders
from api.supervisor import Job, supervised
from api.tokencache import TokenCache
from telemetry.settings import Settings

log = structlog.get_logger("api")

# How often /readyz and the broker metric take the MQTT feed's state.
BROKER_WATCH_S: Final = 1.0

DESCRIPTION = """Live operations API of Rasd: devices, vehicle positions and tracks, streetlight
status and energy, alerts, and the live WebSocket streams (frames: docs/api.md).

Every `/api/v1` route and both WebSockets need a token (`Authorization: Bearer rasd_...`, or
`?token=` on WebSockets); `/healthz`, `/readyz`, `/metrics` and the GTFS-Realtime feed are open,
as are the open-data feeds under `/open-data/v1` (CSV and JSON, docs/open_data.md).
"""


class AppState(TypedDict):
    """What the lifespan hands to every request (``request.state.runtime``)."""

    runtime: Runtime
    complaints: ComplaintDesk


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    """What ``create_app`` was given; the lifespan reads it from ``app.state.config``."""

    settings: Settings
    api: ApiSettings


def config_of(app: Starlette) -> AppConfig:
    """The configuration ``create_app`` stored on ``app``."""
    config = getattr(app.state, "config", None)
    if not isinstance(config, AppConfig):
        raise TypeError("app.state.config is not an AppConfig: build the app with create_app")
    return config


def _metrics_of(scope: Scope) -> ApiMetrics | None:
    # The lifespan's state, copied into every request's scope; absent before it ran.
    runtime = (scope.get("state") or {}).get("runtime")
    return runtime.metrics if isinstance(runtime, Runtime) else None


class _AccessLog:
    """Counts and times requests per route template; logs one JSON line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            metrics = _metrics_of(scope)
            if metrics is not None:
                metrics.requests.labels(route, str(status)).inc()
                metrics.request_seconds.labels(route).observe(elapsed)
            # The query string is never logged: it may carry ?token=.
            log.info(
                "http_request",
                method=scope.get("method"),
                path=scope.get("path"),
                route=route,
                status=status,
                ms=round(elapsed * 1000, 2),
            )


def live_feed(runtime: Runtime) -> MqttFeed:
    """The broker feed of live positions into the runtime's hub (not started yet)."""

    def deliver(batch: list[VehiclePosition]) -> None:
        runtime.metrics.live_positions.inc(len(batch))
        runtime.positions.publish(batch)

    return MqttFeed(
        runtime.settings,
        runtime.registry,
        deliver,
        asyncio.get_running_loop(),
        runtime.api.mqtt_client_prefix,
        on_invalid=runtime.metrics.live_invalid.inc,
    )


async def watch_broker(runtime: Runtime, feed: MqttFeed) -> None:
    """Mirror the feed's subscription flag into the runtime (for /readyz) and the metric."""
    # Polled once a second: waiting on the paho thread's flag in a thread returned at once
    # while it was set, and the loop then spun a core handing calls to the thread pool.
    while True:
        subscribed = feed.subscribed.is_set()
        runtime.metrics.broker_connected.set(1 if subscribed else 0)
        if subscribed:
            runtime.broker_subscribed.set()
        else:
            runtime.broker_subscribed.clear()
        await asyncio.sleep(BROKER_WATCH_S)


def background_jobs(runtime: Runtime, complaints: ComplaintDesk, feed: MqttFeed) -> list[Job]:
    """The table of one process's supervised background tasks: name and what runs it."""
    jobs = [
        Job(name="registry", run=lambda: runtime.registry.run(runtime.pool)),
        Job(name="alerts-listen", run=lambda: run_alert_feed(runtime)),
        Job(name="broker-watch", run=lambda: watch_broker(runtime, feed)),
        Job(name="complaints", run=complaints.run),
        Job(
            name="gtfs-export",
            run=lambda: runtime.gtfs.keep_fresh(runtime.sync_pool, runtime.api),
        ),
    ]
    if runtime.api.opendata_refresh_s > 0:
        # Materialised open-data days; the advisory lock lets one process do each pass.
        jobs.append(Job(name="open-data", run=OpenDataRefresher(runtime.settings, runtime.api).run))
    return jobs


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[AppState]:
    """Open the pools, start the background tasks and the broker feed; undo it all on exit."""
    config = config_of(app)
    settings, api = config.settings, config.api
    async with open_pools(settings, api) as pools:
        runtime = Runtime(
            settings=settings,
            api=api,
            pool=pools.pool,
            sync_pool=pools.sync_pool,
            positions=PositionHub(api.live_max_vehicles),
            alerts=AlertHub(),
            registry=VehicleRegistry(api.registry_refresh_s),
            metrics=ApiMetrics(),
            tokens=TokenCache(api.auth_cache_s),
        )
        try:
            # Reads the thresholds file: off the event loop.
            complaints = await asyncio.to_thread(ComplaintDesk, api, pools.sync_pool)
            feed = live_feed(runtime)
            async with supervised(background_jobs(runtime, complaints, feed)):
                feed.start()
                log.info(
                    "api_started",
                    host=api.host,
                    port=api.port,
                    schema=settings.database_schema,
                    prefix=settings.topic_prefix,
                    mqtt_client=feed.client_id,
                )
                try:
                    yield {"runtime": runtime, "complaints": complaints}
                finally:
                    await asyncio.to_thread(feed.stop)
        finally:
            await runtime.positions.close()
    log.info("api_stopped")


def create_app(settings: Settings | None = None, api: ApiSettings | None = None) -> FastAPI:
    """Build the ASGI app; nothing connects until the lifespan starts."""
    settings = settings or Settings()
    api = api or ApiSettings()
    app = FastAPI(
        title="Rasd live operations API",
        version="1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # /docs is docs_page's (Swagger UI under its own CSP); no ReDoc, no OAuth2 redirect page.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.config = AppConfig(settings=settings, api=api)
    install_error_handlers(app)
    for module in (
        ops,
        devices,
        vehicles,
        lights,
        energy,
        energy_accounting,
        alerts,
        tokens,
        gtfs,
        ws_positions,
        ws_alerts,
        open311,
        open_data,
        pages,
        docs_page,
    ):
        app.include_router(module.router)
    app.include_router(work_orders.router)
    app.include_router(assets.router)
    app.include_router(maintenance_pages.router)
    pages.mount_static(app)
    app.add_middleware(GZipMiddleware, minimum_size=2048, compresslevel=5)
    # Outside gzip, inside the access log: headers on every answer, errors included.
    app.add_middleware(SecurityHeaders, tile_url=api.tile_url)
    app.add_middleware(_AccessLog)
    return app
