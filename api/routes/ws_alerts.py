"""``/ws/alerts``: a snapshot of unresolved alerts and unfinished work orders, then every
open/ack/assign/resolve and every work-order step."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi import APIRouter, WebSocket

from api.alertviews import UNRESOLVED, alert_json
from api.auth import DistrictRefused, Permission
from api.deps import runtime_of
from api.filters import FilterError, split_list
from api.live.alerts_hub import AlertStreamFilter, AlertSubscriber
from api.live.board import iso_ms
from api.routes.alerts import in_thread
from api.runtime import Runtime
from api.work_order_views import order_json
from api.wsconn import CLOSE_BAD_REQUEST, CLOSE_FORBIDDEN, Sender, admit, refuse
from api.wsstream import metered_sender, serve
from telemetry.alert_records import Alert
from telemetry.storage.alerts import MAX_PAGE, AlertFilter, AlertPage, list_alerts
from telemetry.storage.work_orders import MAX_PAGE as ORDERS_PAGE
from telemetry.storage.work_orders import OrderFilter, WorkOrder, list_work_orders
from telemetry.work_orders.states import UNFINISHED

router = APIRouter()

SNAPSHOT_MAX = 5000


async def unresolved_snapshot(runtime: Runtime, filt: AlertStreamFilter) -> list[dict[str, Any]]:
    """Unresolved alerts matching the filter (newest first, at most ``SNAPSHOT_MAX``)."""
    filters = AlertFilter(
        states=list(UNRESOLVED),
        districts=sorted(filt.districts or ()),
        kinds=sorted(filt.kinds or ()),
    )
    alerts: list[Alert] = []
    cursor: str | None = None
    while len(alerts) < SNAPSHOT_MAX:

        def page_after(conn: psycopg.Connection, after: str | None = cursor) -> AlertPage:
            return list_alerts(conn, filters, limit=MAX_PAGE, cursor=after)

        page = await in_thread(runtime, page_after)
        alerts.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return [alert_json(a) for a in alerts[:SNAPSHOT_MAX]]


async def unfinished_orders(runtime: Runtime, filt: AlertStreamFilter) -> list[dict[str, Any]]:
    """Work orders waiting for a crew (open, assigned, in progress) matching the filter, newest
    first, at most ``SNAPSHOT_MAX``: the crews' app starts from them and follows the steps."""
    filters = OrderFilter(
        states=sorted(UNFINISHED), districts=filt.districts, kinds=sorted(filt.kinds or ())
    )
    orders: list[WorkOrder] = []
    before: int | None = None
    while len(orders) < SNAPSHOT_MAX:

        def page_before(conn: psycopg.Connection, below: int | None = before) -> list[WorkOrder]:
            return list_work_orders(conn, filters, limit=ORDERS_PAGE, before=below)

        page = await in_thread(runtime, page_before)
        orders.extend(page)
        if len(page) < ORDERS_PAGE:
            break
        before = page[-1].work_order_id
    return [order_json(o) for o in orders[:SNAPSHOT_MAX]]


async def _stream(runtime: Runtime, subscriber: AlertSubscriber, send: Sender) -> None:
    heartbeat = runtime.api.ws_heartbeat_s
    resend = True
    while True:
        if resend:
            subscriber.overflowed = subscriber.resync = False
            subscriber.take()  # the snapshot covers whatever was pending
            alerts = await unresolved_snapshot(runtime, subscriber.filt)
            orders = await unfinished_orders(runtime, subscriber.filt)
            await send(
                json.dumps(
                    {
                        "type": "snapshot",
                        "server_ts": iso_ms(datetime.now(UTC)),
                        "alerts": alerts,
                        "work_orders": orders,
                    },
                    separators=(",", ":"),
                )
            )
        try:
            await asyncio.wait_for(subscriber.wake.wait(), heartbeat)
        except TimeoutError:
            await send(json.dumps({"type": "heartbeat", "server_ts": iso_ms(datetime.now(UTC))}))
            resend = False
            continue
        resend = subscriber.overflowed or subscriber.resync
        if resend:
            continue
        for frame in subscriber.take():
            await send(json.dumps(frame, separators=(",", ":")))


@router.websocket("/ws/alerts")
async def ws_alerts(websocket: WebSocket) -> None:
    """Live alerts; filters ``district`` and ``kind``; crews see only their districts."""
    runtime = runtime_of(websocket)
    metrics = runtime.metrics
    principal = await admit(websocket, Permission.READ_ALERTS)
    if principal is None:
        metrics.ws_refused.labels("auth").inc()
        return
    params = websocket.query_params
    try:
        districts = principal.district_scope(split_list("district", params.getlist("district")))
        kinds = split_list("kind", params.getlist("kind"))
    except DistrictRefused as exc:
        metrics.ws_refused.labels("forbidden").inc()
        await refuse(websocket, CLOSE_FORBIDDEN, "forbidden", str(exc))
        return
    except FilterError as exc:
        metrics.ws_refused.labels("bad_request").inc()
        await refuse(websocket, CLOSE_BAD_REQUEST, "invalid_request", str(exc))
        return
    hub = runtime.alerts
    # Subscribed before the snapshot is read, so no change falls between the two.
    subscriber = hub.subscribe(AlertStreamFilter(districts, kinds))
    try:
        with metered_sender(websocket, runtime, "alerts") as send:
            await serve(websocket, send, _stream(runtime, subscriber, send))
    finally:
        hub.unsubscribe(subscriber)
