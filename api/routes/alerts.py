"""Alerts: list and detail with filters, acknowledge, assign, resolve (storage by the alerts
service's module, which is synchronous: its calls run in worker threads)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

import psycopg
from fastapi import APIRouter, Path, Query

from api.alertviews import actor_of, alert_out
from api.auth import Principal
from api.deps import AckAlerts, AssignAlerts, ReadAlerts, ResolveAlerts, RuntimeDep
from api.errors import ERROR_RESPONSES, ApiError
from api.filters import split_list
from api.runtime import Runtime
from api.schemas import (
    AlertDetailOut,
    AlertMemberOut,
    AlertOut,
    AlertPageOut,
    AssignIn,
    HistoryOut,
    NoteIn,
)
from api.timerange import require_aware
from telemetry.alert_events import AlertState, Severity
from telemetry.alert_records import Alert
from telemetry.storage.alerts import (
    MAX_PAGE,
    AlertFilter,
    AlertNotFoundError,
    AlertStateError,
    acknowledge,
    alert_history,
    alert_members,
    assign,
    get_alert,
    list_alerts,
    resolve,
)
from telemetry.topics import Fleet

router = APIRouter(
    prefix="/api/v1/alerts",
    tags=["alerts"],
    responses={**ERROR_RESPONSES, 409: {"description": "Not allowed in the alert's state"}},
)

T = TypeVar("T")
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]


async def in_thread(runtime: Runtime, work: Callable[[psycopg.Connection], T]) -> T:
    """Run a synchronous storage call on the sync pool, off the event loop."""

    def call() -> T:
        with runtime.sync_pool.connection(timeout=runtime.api.db_timeout_s) as conn:
            return work(conn)

    try:
        return await asyncio.to_thread(call)
    except AlertNotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except AlertStateError as exc:
        raise ApiError(409, "conflict", str(exc)) from None


def _enum_set(name: str, raw: list[str] | None, kind: type[T]) -> list[T]:
    values = split_list(name, raw) or frozenset()
    try:
        return [kind(v) for v in sorted(values)]  # type: ignore[call-arg]
    except ValueError:
        allowed = ", ".join(str(getattr(m, "value", m)) for m in kind)  # type: ignore[attr-defined]
        raise ApiError(422, "invalid_request", f"{name}: use one of {allowed}") from None


async def _visible(runtime: Runtime, principal: Principal, alert_id: int) -> Alert:
    alert = await in_thread(runtime, lambda c: get_alert(c, alert_id))
    if alert is None:
        raise ApiError(404, "not_found", f"no alert {alert_id}")
    if not principal.sees_district(alert.district):
        raise ApiError(403, "forbidden", f"alert {alert_id} is outside this token's districts")
    return alert


@router.get("", summary="List alerts, newest first")
async def alerts(
    principal: ReadAlerts,
    runtime: RuntimeDep,
    state: Annotated[list[str] | None, Query(description="open, acknowledged, resolved")] = None,
    kind: Annotated[list[str] | None, Query()] = None,
    district: Annotated[list[str] | None, Query()] = None,
    severity: Annotated[list[str] | None, Query()] = None,
    asset_kind: Annotated[list[str] | None, Query(description="light, bus, truck")] = None,
    device_id: Annotated[str | None, Query(max_length=64)] = None,
    crew: Annotated[str | None, Query(max_length=200)] = None,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
    opened_from: Annotated[datetime | None, Query()] = None,
    opened_before: Annotated[datetime | None, Query()] = None,
    unresolved: Annotated[bool, Query(description="open or acknowledged only")] = False,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> AlertPageOut:
    """Alerts matching every filter; a crew token sees only its districts."""
    require_aware("opened_from", opened_from)
    require_aware("opened_before", opened_before)
    states = _enum_set("state", state, AlertState)
    if unresolved:
        states = [s for s in (states or list(AlertState)) if s is not AlertState.RESOLVED]
        if not states:
            return AlertPageOut(items=[], next_cursor=None)
    scope = principal.district_scope(split_list("district", district))
    filters = AlertFilter(
        states=states,
        kinds=sorted(split_list("kind", kind) or ()),
        asset_kinds=_enum_set("asset_kind", asset_kind, Fleet),
        districts=sorted(scope or ()),
        severities=_enum_set("severity", severity, Severity),
        crew=crew,
        assignee=assignee,
        device_id=device_id,
        opened_from=opened_from,
        opened_before=opened_before,
    )
    try:
        page = await in_thread(
            runtime, lambda c: list_alerts(c, filters, limit=limit, cursor=cursor)
        )
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"cursor: {exc}") from None
    return AlertPageOut(items=[alert_out(a) for a in page.items], next_cursor=page.next_cursor)


@router.get("/{alert_id}", summary="One alert with its history")
async def alert_detail(
    alert_id: AlertId, principal: ReadAlerts, runtime: RuntimeDep
) -> AlertDetailOut:
    """An alert, its history and (grouped alerts) the lights it lists."""
    alert = await _visible(runtime, principal, alert_id)
    history = await in_thread(runtime, lambda c: alert_history(c, alert_id))
    members = await in_thread(runtime, lambda c: alert_members(c, alert_id))
    return AlertDetailOut(
        **alert_out(alert).model_dump(),
        history=[
            HistoryOut(
                event=h.event.value,
                at=h.at,
                actor=h.actor,
                note=h.note,
                state=h.state.value,
                severity=h.severity.value,
            )
            for h in history
        ],
        members=[
            AlertMemberOut(
                device_id=m.device_id, circuit=m.circuit, since=m.since, recovered_at=m.recovered_at
            )
            for m in members
        ],
    )


@router.post("/{alert_id}/acknowledge", summary="Acknowledge an open alert (crew)")
async def acknowledge_alert(
    alert_id: AlertId, principal: AckAlerts, runtime: RuntimeDep, body: NoteIn | None = None
) -> AlertOut:
    """open -> acknowledged; 409 from any other state."""
    await _visible(runtime, principal, alert_id)
    note = body.note if body else None
    alert = await in_thread(runtime, lambda c: acknowledge(c, alert_id, actor_of(principal), note))
    return alert_out(alert)


@router.post("/{alert_id}/assign", summary="Assign an alert (operator)")
async def assign_alert(
    alert_id: AlertId, body: AssignIn, principal: AssignAlerts, runtime: RuntimeDep
) -> AlertOut:
    """Give an unresolved alert to a crew member (null takes it back)."""
    await _visible(runtime, principal, alert_id)
    alert = await in_thread(
        runtime, lambda c: assign(c, alert_id, body.assignee, actor_of(principal), body.note)
    )
    return alert_out(alert)


@router.post("/{alert_id}/resolve", summary="Resolve an alert with a note (crew)")
async def resolve_alert(
    alert_id: AlertId, principal: ResolveAlerts, runtime: RuntimeDep, body: NoteIn | None = None
) -> AlertOut:
    """open or acknowledged -> resolved; 409 when already resolved."""
    await _visible(runtime, principal, alert_id)
    note = body.note if body else None
    alert = await in_thread(runtime, lambda c: resolve(c, alert_id, actor_of(principal), note))
    return alert_out(alert)
