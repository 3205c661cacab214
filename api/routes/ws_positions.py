"""``/ws/positions``: a snapshot of current positions, then changes every frame interval."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, WebSocket

from api.auth import Permission
from api.deps import runtime_of
from api.filters import FilterError, VehicleFilter
from api.live.board import VehiclePosition
from api.live.positions import merge_snapshot, stream_positions
from api.wsconn import CLOSE_BAD_REQUEST, CLOSE_TRY_AGAIN, admit, refuse
from api.wsstream import metered_sender, serve
from telemetry.storage.positions import latest_positions

router = APIRouter()

MAX_FRAME_MS: Final = 10_000


def interval_of(raw: str | None, default_ms: int, min_ms: int) -> int:
    """The frame interval a client asks for (``interval_ms``), within the allowed bounds."""
    if raw is None:
        return default_ms
    bounds = f"an integer number of milliseconds from {min_ms} to {MAX_FRAME_MS}"
    try:
        value = int(raw)
    except ValueError:
        raise FilterError("interval_ms", f"must be {bounds}") from None
    if not min_ms <= value <= MAX_FRAME_MS:
        raise FilterError("interval_ms", f"must be {bounds}")
    return value


@router.websocket("/ws/positions")
async def ws_positions(websocket: WebSocket) -> None:
    """Live vehicle positions; filters ``fleet``, ``route``, ``bbox``; see docs/api.md."""
    runtime = runtime_of(websocket)
    metrics = runtime.metrics
    if await admit(websocket, Permission.READ_CITY) is None:
        metrics.ws_refused.labels("auth").inc()
        return
    params = websocket.query_params
    try:
        filt = VehicleFilter.from_params(
            params.getlist("fleet") or None, params.getlist("route") or None, params.get("bbox")
        )
        interval = interval_of(
            params.get("interval_ms"), runtime.api.ws_frame_ms, runtime.api.ws_min_frame_ms
        )
    except FilterError as exc:
        metrics.ws_refused.labels("bad_request").inc()
        await refuse(websocket, CLOSE_BAD_REQUEST, "invalid_request", str(exc))
        return
    hub = runtime.positions
    if hub.clients >= runtime.api.ws_max_clients:
        metrics.ws_refused.labels("busy").inc()
        await refuse(websocket, CLOSE_TRY_AGAIN, "busy", "too many live clients; retry later")
        return
    hub.clients += 1
    try:
        with metered_sender(websocket, runtime, "positions") as send:
            # The cursor is taken before the database read: nothing published meanwhile is lost.
            cursor = hub.board.seq
            async with runtime.pool.connection(timeout=runtime.api.db_timeout_s) as conn:
                rows = await latest_positions(
                    conn,
                    fleets=filt.fleets,
                    routes=filt.routes,
                    bbox=filt.bbox.as_tuple() if filt.bbox else None,
                )
            stored = [
                VehiclePosition(
                    r.device_id,
                    r.fleet,
                    r.route,
                    r.district,
                    r.label,
                    r.time,
                    r.lat,
                    r.lon,
                    r.speed_kmh,
                    r.heading_deg,
                )
                for r in rows
            ]
            snapshot = merge_snapshot(stored, hub.board.positions(filt.matches))
            stream = stream_positions(
                hub,
                filt,
                cursor=cursor,
                snapshot=snapshot,
                send=send,
                interval_ms=interval,
                heartbeat_s=runtime.api.ws_heartbeat_s,
                snapshot_extra={"frame_ms": interval, "stale_after_s": runtime.api.stale_after_s},
            )
            await serve(websocket, send, stream)
    finally:
        hub.clients -= 1
