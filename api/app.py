"""The FastAPI application factory and its lifespan (pools, broker feed, LISTEN, tickers)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, TypedDict

import structlog
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool, ConnectionPool
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
from api.open_data.refresh import OpenDataRefresher
from api.routes import (
    alerts,
    devices,
    docs_page,
    energy,
    gtfs,
    lights,
    open_data,
    ops,
    pages,
    tokens,
    vehicles,
    ws_alerts,
    ws_positions,
)
from api.runtime import Runtime
from api.security_middleware import SecurityHeaders
from api.tokencache import TokenCache
from telemetry.db import conninfo
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


class _AccessLog:
    """Counts and times requests per route template; logs one JSON line per request."""

    def __init__(self, app: ASGIApp, metrics: Callable[[], ApiMetrics | None]) -> None:
        self.app = app
        self.metrics = metrics

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
            metrics = self.metrics()
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


async def _supervise(name: str, factory: Callable[[], Awaitable[None]]) -> None:
    """Run a background loop; restart it after an unexpected error instead of dying."""
    while True:
        try:
            await factory()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background_task_failed", task=name)
            await asyncio.sleep(2.0)


def create_app(settings: Settings | None = None, api: ApiSettings | None = None) -> FastAPI:
    """Build the ASGI app; nothing connects until the lifespan starts."""
    settings = settings or Settings()
    api = api or ApiSettings()
    holder: dict[str, ApiMetrics] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[AppState]:
        metrics = ApiMetrics()
        holder["metrics"] = metrics
        info = conninfo(settings, app="rasd-api")
        pool = AsyncConnectionPool(
            info,
            min_size=api.db_pool_min,
            max_size=api.db_pool_max,
            open=False,
            kwargs={"autocommit": True, "prepare_threshold": None},
            check=AsyncConnectionPool.check_connection,
            name="rasd-api",
        )
        sync_pool = ConnectionPool(
            info,
            min_size=1,
            max_size=4,
            open=False,
            kwargs={"autocommit": True},
            check=ConnectionPool.check_connection,
            name="rasd-api-sync",
        )
        # wait=False: the API starts (and /readyz says why not ready) with the database down.
        await pool.open(wait=False)
        sync_pool.open(wait=False)
        runtime = Runtime(
            settings=settings,
            api=api,
            pool=pool,
            sync_pool=sync_pool,
            positions=PositionHub(api.live_max_vehicles),
            alerts=AlertHub(),
            registry=VehicleRegistry(api.registry_refresh_s),
            metrics=metrics,
            tokens=TokenCache(api.auth_cache_s),
        )
        # Reads the thresholds file: off the event loop.
        complaints = await asyncio.to_thread(ComplaintDesk, api, sync_pool)
        loop = asyncio.get_running_loop()

        def deliver(batch: list[VehiclePosition]) -> None:
            metrics.live_positions.inc(len(batch))
            runtime.positions.publish(batch)

        feed = MqttFeed(
            settings,
            runtime.registry,
            deliver,
            loop,
            api.mqtt_client_prefix,
            on_invalid=metrics.live_invalid.inc,
        )

        async def watch_broker() -> None:
            # Mirrors the paho thread's subscription flag into the loop for /readyz, once a
            # second. (Waiting on the flag in a thread returned at once while it was set: the
            # loop then spun a core handing calls to the thread pool.)
            while True:
                subscribed = feed.subscribed.is_set()
                metrics.broker_connected.set(1 if subscribed else 0)
                if subscribed:
                    runtime.broker_subscribed.set()
                else:
                    runtime.broker_subscribed.clear()
                await asyncio.sleep(BROKER_WATCH_S)

        tasks = [
            asyncio.create_task(
                _supervise("registry", lambda: runtime.registry.run(pool)), name="registry"
            ),
            asyncio.create_task(
                _supervise("alerts-listen", lambda: run_alert_feed(runtime)), name="alerts"
            ),
            asyncio.create_task(_supervise("broker-watch", watch_broker), name="broker-watch"),
            asyncio.create_task(_supervise("complaints", complaints.run), name="complaints"),
        ]
        if api.opendata_refresh_s > 0:
            # Materialised open-data days; the advisory lock lets one process do each pass.
            refresher = OpenDataRefresher(settings, api)
            tasks.append(
                asyncio.create_task(_supervise("open-data", refresher.run), name="open-data")
            )
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
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runtime.positions.close()
            await pool.close()
            await asyncio.to_thread(sync_pool.close)
            log.info("api_stopped")

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
    install_error_handlers(app)
    for module in (
        ops,
        devices,
        vehicles,
        lights,
        energy,
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
    pages.mount_static(app)
    app.add_middleware(GZipMiddleware, minimum_size=2048, compresslevel=5)
    # Outside gzip, inside the access log: headers on every answer, errors included.
    app.add_middleware(SecurityHeaders, tile_url=api.tile_url)
    app.add_middleware(_AccessLog, metrics=lambda: holder.get("metrics"))
    return app
