"""Alert changes from PostgreSQL: LISTEN on ``{schema}_alerts``, re-read, hand to the hub.

Any API process listening sees every committed change, whichever process or service made it,
so several workers behind a load balancer all stream the same alerts.
"""

from __future__ import annotations

import asyncio

import psycopg
import structlog
from pydantic import ValidationError

from api.alertviews import alert_json
from api.runtime import Runtime
from api.work_order_views import order_json
from telemetry.alert_events import AlertEvent, alert_channel, parse_event
from telemetry.alert_records import Alert
from telemetry.db import conninfo
from telemetry.storage.alerts import get_alert, listen_statement
from telemetry.storage.work_orders import get_work_order
from telemetry.storage.work_orders import listen_statement as orders_listen
from telemetry.work_orders.events import WorkOrderEvent, parse_work_order_event, work_order_channel

log = structlog.get_logger("api.alerts_feed")


def _read_alert(runtime: Runtime, alert_id: int) -> Alert | None:
    with runtime.sync_pool.connection(timeout=runtime.api.db_timeout_s) as conn:
        return get_alert(conn, alert_id)


async def _handle(runtime: Runtime, event: AlertEvent) -> None:
    alert = await asyncio.to_thread(_read_alert, runtime, event.alert_id)
    frame = {
        "type": "alert",
        "event": event.event.value,
        "at": event.at.isoformat(),
        "alert": alert_json(alert) if alert is not None else None,
        "alert_id": event.alert_id,
    }
    runtime.alerts.publish(event.alert_id, event.district, event.kind, frame)


async def _handle_work_order(runtime: Runtime, event: WorkOrderEvent) -> None:
    """Work-order steps ride the same hub as alerts, coalesced per order."""

    def read() -> dict[str, object] | None:
        with runtime.sync_pool.connection(timeout=runtime.api.db_timeout_s) as conn:
            order = get_work_order(conn, event.work_order_id)
        return None if order is None else order_json(order)

    frame = {
        "type": "work_order",
        "event": event.event.value,
        "at": event.at.isoformat(),
        "work_order": await asyncio.to_thread(read),
        "work_order_id": event.work_order_id,
    }
    key = f"work_order:{event.work_order_id}"
    runtime.alerts.publish(key, event.district, event.kind, frame)


async def run_alert_feed(runtime: Runtime) -> None:
    """LISTEN forever, reconnecting; after a reconnect every client re-reads a snapshot."""
    settings = runtime.settings
    channel = alert_channel(settings.database_schema)
    orders_channel = work_order_channel(settings.database_schema)
    first = True
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(
                conninfo(settings, app="rasd-api-listen"), autocommit=True
            )
            async with conn:
                await conn.execute(listen_statement(settings.database_schema))
                await conn.execute(orders_listen(settings.database_schema))
                runtime.alerts_listening.set()
                if not first:
                    runtime.alerts.resync_all()
                first = False
                log.info("alerts_listening", channel=channel)
                async for notify in conn.notifies():
                    if notify.channel == orders_channel:
                        try:
                            order_event = parse_work_order_event(notify.payload)
                        except ValidationError as exc:
                            log.warning("work_order_event_unreadable", error=str(exc)[:200])
                            continue
                        await _handle_work_order(runtime, order_event)
                        continue
                    try:
                        event = parse_event(notify.payload)
                    except ValidationError as exc:
                        log.warning("alert_event_unreadable", error=str(exc)[:200])
                        continue
                    runtime.metrics.alert_events.inc()
                    await _handle(runtime, event)
        except (psycopg.Error, OSError) as exc:
            runtime.alerts_listening.clear()
            log.warning("alerts_listen_lost", error=str(exc).strip()[:200])
            await asyncio.sleep(runtime.api.alerts_reconnect_s)
