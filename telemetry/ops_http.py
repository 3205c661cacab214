"""The small operations HTTP surface every service exposes: ``/healthz`` and ``/metrics``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def ops_app(is_healthy: Callable[[], bool], registry: CollectorRegistry) -> Starlette:
    """An ASGI app answering health (200 or 503) and Prometheus metrics."""

    async def healthz(_: Request) -> Response:
        if is_healthy():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "starting or degraded"}, status_code=503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


class OwnSignalsServer(uvicorn.Server):
    """A uvicorn server that leaves SIGTERM/SIGINT to the service that embeds it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Install nothing: the owning service decides when to stop (``should_exit``)."""
        yield


def ops_server(app: Starlette, host: str, port: int) -> OwnSignalsServer:
    """A quiet uvicorn server for ``app``; run it with ``await server.serve()``."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )
    return OwnSignalsServer(config)
