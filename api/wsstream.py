"""Serving one client of a live stream (``/ws/positions``, ``/ws/alerts``): counted on the
stream's metrics while it lasts, fed until it or the stream ends, then closed."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from contextlib import contextmanager

from starlette.websockets import WebSocket

from api.runtime import Runtime
from api.wsconn import CLOSE_SEND_TIMEOUT, Sender, answer_pings, close_quietly, run_until_first_done


@contextmanager
def metered_sender(websocket: WebSocket, runtime: Runtime, stream: str) -> Iterator[Sender]:
    """A sender that counts its frames and bytes; the client counts as connected meanwhile."""
    metrics = runtime.metrics
    gauge = metrics.ws_clients.labels(stream)
    gauge.inc()
    frames, sent_bytes = metrics.ws_frames.labels(stream), metrics.ws_bytes.labels(stream)

    def on_sent(size: int) -> None:
        frames.inc()
        sent_bytes.inc(size)

    try:
        yield Sender(websocket, runtime.api.ws_send_timeout_s, on_sent)
    finally:
        gauge.dec()


async def serve(websocket: WebSocket, send: Sender, stream: Awaitable[None]) -> None:
    """Run the stream beside the ping answers until either ends; then close, 1008 if too slow."""
    error = await run_until_first_done(stream, answer_pings(websocket, send))
    if isinstance(error, TimeoutError):
        await close_quietly(websocket, CLOSE_SEND_TIMEOUT, "client too slow")
    else:
        await close_quietly(websocket)
