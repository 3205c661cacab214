"""WebSocket plumbing shared by the live streams: refusals, serialized sends, client pings."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Final

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from api.auth import Permission, Principal
from api.deps import authenticate
from api.errors import ApiError
from api.live.board import iso_ms

# Close codes (docs/api.md): 4400 bad parameters, 4401 no or bad token, 4403 role or district,
# 1013 server busy (too many clients, or a client too far behind), 1008 send timed out.
CLOSE_BAD_REQUEST: Final = 4400
CLOSE_UNAUTHENTICATED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403
CLOSE_TRY_AGAIN: Final = 1013
CLOSE_SEND_TIMEOUT: Final = 1008


def error_frame(code: str, message: str) -> str:
    """The last frame before a refusal closes the socket."""
    return json.dumps({"type": "error", "code": code, "message": message})


async def refuse(websocket: WebSocket, close_code: int, code: str, message: str) -> None:
    """Tell the client why (browsers cannot read a failed handshake) and close."""
    try:
        await websocket.send_text(error_frame(code, message))
        await websocket.close(close_code, message[:120])
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass


async def admit(websocket: WebSocket, permission: Permission) -> Principal | None:
    """Accept, then authenticate and authorize; refuses and returns None on failure."""
    await websocket.accept()
    try:
        principal = await authenticate(websocket)
    except ApiError as exc:
        await refuse(websocket, CLOSE_UNAUTHENTICATED, exc.code, exc.message)
        return None
    if not principal.can(permission):
        await refuse(
            websocket,
            CLOSE_FORBIDDEN,
            "forbidden",
            f"a {principal.role.value} token may not {permission.value.replace('_', ' ')}",
        )
        return None
    return principal


class Sender:
    """Serialized sends with a deadline: a client that stops reading is dropped, not waited on."""

    def __init__(
        self, websocket: WebSocket, timeout_s: float, on_sent: Callable[[int], None] | None = None
    ) -> None:
        self.websocket = websocket
        self.timeout_s = timeout_s
        self.on_sent = on_sent
        self._lock = asyncio.Lock()

    async def __call__(self, text: str) -> None:
        async with self._lock:
            await asyncio.wait_for(self.websocket.send_text(text), self.timeout_s)
        if self.on_sent is not None:
            self.on_sent(len(text))


async def answer_pings(websocket: WebSocket, send: Callable[[str], Awaitable[None]]) -> None:
    """Read client frames until it disconnects: ``{"type":"ping"}`` gets a pong, others nothing."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if not text:
            continue
        try:
            kind = json.loads(text).get("type")
        except (ValueError, AttributeError):
            continue
        if kind == "ping":
            await send(json.dumps({"type": "pong", "server_ts": iso_ms(datetime.now(UTC))}))


async def run_until_first_done(*jobs: Awaitable[None]) -> BaseException | None:
    """Run jobs together; when one ends, cancel the rest. Returns the first error, if any."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            return task.exception()
    return None


async def close_quietly(websocket: WebSocket, code: int = 1000, reason: str = "") -> None:
    """Close if still open; ignore a peer that is already gone."""
    if websocket.application_state is WebSocketState.DISCONNECTED:
        return
    # A client that stopped reading never drains its buffer; do not wait on it forever.
    with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect, TimeoutError):
        await asyncio.wait_for(websocket.close(code, reason), 2.0)
