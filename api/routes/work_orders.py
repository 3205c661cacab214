"""Work orders: list and detail (crews: their districts), assign / start / complete / cancel with
an optional ``Idempotency-Key`` (the crews' offline outbox replays them), photos, and the
monthly maintenance KPIs. Storage is synchronous: its calls run in worker threads."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import psycopg
from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from api.alertviews import actor_of
from api.auth import Principal
from api.deps import AssignAlerts, ReadAlerts, ResolveAlerts, RuntimeDep
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from api.filters import split_list
from api.runtime import Runtime
from api.work_order_views import (
    CompleteIn,
    OrderAssignIn,
    StepIn,
    WorkOrderDetailOut,
    WorkOrderPageOut,
    detail_out,
    order_out,
)
from telemetry.errors import TelemetryError
from telemetry.storage import work_orders as store
from telemetry.storage.maintenance_kpis import MaintenanceKpis, maintenance_kpis
from telemetry.work_orders.photos import MAX_PHOTO_BYTES
from telemetry.work_orders.states import OrderState, OrderStateError

router = APIRouter(
    prefix="/api/v1",
    tags=["work orders"],
    responses={
        **ERROR_RESPONSES,
        409: {"model": ErrorBody, "description": "Not allowed in the order's state"},
        413: {"model": ErrorBody, "description": "A photo over the size limit"},
    },
)

T = TypeVar("T")
OrderId = Annotated[int, Path(ge=1, le=2**63 - 1)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="a client-chosen key: a replay with it gets the first answer, applied once",
    ),
]


async def in_thread(runtime: Runtime, work: Callable[[psycopg.Connection], T]) -> T:
    """Run synchronous storage on the sync pool; storage refusals become 4xx answers."""

    def call() -> T:
        with runtime.sync_pool.connection(timeout=runtime.api.db_timeout_s) as conn:
            return work(conn)

    try:
        return await asyncio.to_thread(call)
    except store.WorkOrderNotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except OrderStateError as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except (store.WorkOrderInputError, store.IdempotencyKeyReusedError) as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None


def _detail(conn: psycopg.Connection, order: store.WorkOrder) -> WorkOrderDetailOut:
    oid = order.work_order_id
    return detail_out(
        order,
        store.order_steps(conn, oid),
        store.order_alerts(conn, oid),
        store.order_parts(conn, oid),
        store.order_photos(conn, oid),
    )


async def _visible(runtime: Runtime, principal: Principal, order_id: int) -> store.WorkOrder:
    order = await in_thread(runtime, lambda c: store.get_work_order(c, order_id))
    if order is None:
        raise ApiError(404, "not_found", f"no work order {order_id}")
    if not principal.sees_district(order.district):
        raise ApiError(403, "forbidden", f"work order {order_id} is outside this token's districts")
    return order


async def _change(
    request: Request,
    runtime: Runtime,
    principal: Principal,
    key: str | None,
    change: Callable[[psycopg.Connection], store.WorkOrder],
) -> Response:
    """Apply a change once per Idempotency-Key and answer with the order's detail."""

    def work(conn: psycopg.Connection) -> tuple[int, dict[str, Any]]:
        order = change(conn)
        return 200, _detail(conn, order).model_dump(mode="json")

    if key is None:
        status, body = await in_thread(runtime, work)
        return JSONResponse(body, status_code=status)
    raw = await request.body()
    fingerprint = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + raw
    ).digest()
    status, body, replayed = await in_thread(
        runtime, lambda c: store.idempotent(c, principal.token_id, key, fingerprint, work)
    )
    return JSONResponse(
        body, status_code=status, headers={"Idempotent-Replayed": "true" if replayed else "false"}
    )


def _states(raw: list[str] | None) -> list[OrderState]:
    values = split_list("state", raw) or frozenset()
    try:
        return [OrderState(v) for v in sorted(values)]
    except ValueError:
        allowed = ", ".join(s.value for s in OrderState)
        raise ApiError(422, "invalid_request", f"state: use one of {allowed}") from None


@router.get("/work-orders", summary="List work orders, newest first")
async def work_orders(
    principal: ReadAlerts,
    runtime: RuntimeDep,
    state: Annotated[
        list[str] | None, Query(description="open, assigned, in_progress, done, cancelled")
    ] = None,
    district: Annotated[list[str] | None, Query()] = None,
    kind: Annotated[list[str] | None, Query(description="the opening alert's kind")] = None,
    crew: Annotated[str | None, Query(max_length=200)] = None,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
    asset_id: Annotated[str | None, Query(max_length=64)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=store.MAX_PAGE)] = 100,
) -> WorkOrderPageOut:
    """Orders matching every filter; a crew token sees only its districts."""
    scope = principal.district_scope(split_list("district", district))
    filters = store.OrderFilter(
        states=_states(state),
        districts=scope,
        kinds=sorted(split_list("kind", kind) or ()),
        crew=crew,
        assignee=assignee,
        asset_id=asset_id,
    )
    rows = await in_thread(
        runtime, lambda c: store.list_work_orders(c, filters, limit=limit + 1, before=before)
    )
    more = len(rows) > limit
    items = rows[:limit]
    return WorkOrderPageOut(
        items=[order_out(o) for o in items],
        next_before=items[-1].work_order_id if more else None,
    )


@router.get("/work-orders/{work_order_id}", summary="One work order with its steps")
async def work_order(
    work_order_id: OrderId, principal: ReadAlerts, runtime: RuntimeDep
) -> WorkOrderDetailOut:
    """An order, its steps (who, when, note), alerts, parts and photos."""
    order = await _visible(runtime, principal, work_order_id)
    return await in_thread(runtime, lambda c: _detail(c, order))


@router.get(
    "/work-orders/{work_order_id}/photos/{photo_id}",
    summary="One photo of a work order",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}}}},
)
async def work_order_photo(
    work_order_id: OrderId,
    photo_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    principal: ReadAlerts,
    runtime: RuntimeDep,
) -> Response:
    """The photo's bytes with its checked media type."""
    await _visible(runtime, principal, work_order_id)
    content_type, data = await in_thread(
        runtime, lambda c: store.photo_data(c, work_order_id, photo_id)
    )
    return Response(
        data, media_type=content_type, headers={"Cache-Control": "private, max-age=86400"}
    )


@router.post(
    "/work-orders/{work_order_id}/assign",
    summary="Assign a work order (operator)",
    response_model=WorkOrderDetailOut,
)
async def assign_order(
    work_order_id: OrderId,
    body: OrderAssignIn,
    request: Request,
    principal: AssignAlerts,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """open or assigned -> assigned; 409 from any other state."""
    await _visible(runtime, principal, work_order_id)
    who = actor_of(principal)
    return await _change(
        request,
        runtime,
        principal,
        idempotency_key,
        lambda c: store.assign(c, work_order_id, body.assignee, who, body.note),
    )


@router.post(
    "/work-orders/{work_order_id}/start",
    summary="Start work on an order (crew)",
    response_model=WorkOrderDetailOut,
)
async def start_order(
    work_order_id: OrderId,
    request: Request,
    principal: ResolveAlerts,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
    body: StepIn | None = None,
) -> Response:
    """assigned -> in_progress; 409 from any other state."""
    await _visible(runtime, principal, work_order_id)
    who, note = actor_of(principal), body.note if body else None
    return await _change(
        request,
        runtime,
        principal,
        idempotency_key,
        lambda c: store.start(c, work_order_id, who, note),
    )


def _photos(encoded: list[str]) -> list[bytes]:
    out = []
    for index, text in enumerate(encoded, 1):
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(422, "invalid_request", f"photo {index}: not base64") from None
        if len(data) > MAX_PHOTO_BYTES:
            raise ApiError(
                413, "too_large", f"photo {index}: over the {MAX_PHOTO_BYTES}-byte limit"
            )
        out.append(data)
    return out


@router.post(
    "/work-orders/{work_order_id}/complete",
    summary="Complete a work order with parts, minutes and photos (crew)",
    response_model=WorkOrderDetailOut,
)
async def complete_order(
    work_order_id: OrderId,
    body: CompleteIn,
    request: Request,
    principal: ResolveAlerts,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """in_progress -> done; a part swap updates the register. Rasd then checks the telemetry
    and reopens the order if the fault persists."""
    await _visible(runtime, principal, work_order_id)
    photos = _photos(body.photos)
    parts = [store.PartIn(**p.model_dump()) for p in body.parts]
    who = actor_of(principal)
    return await _change(
        request,
        runtime,
        principal,
        idempotency_key,
        lambda c: store.complete(
            c,
            work_order_id,
            who,
            body.note,
            crew_minutes=body.crew_minutes,
            parts=parts,
            photos=photos,
        ),
    )


@router.post(
    "/work-orders/{work_order_id}/cancel",
    summary="Cancel a work order (operator)",
    response_model=WorkOrderDetailOut,
)
async def cancel_order(
    work_order_id: OrderId,
    request: Request,
    principal: AssignAlerts,
    runtime: RuntimeDep,
    idempotency_key: IdempotencyKey = None,
    body: StepIn | None = None,
) -> Response:
    """open, assigned or in_progress -> cancelled; 409 once done or cancelled."""
    await _visible(runtime, principal, work_order_id)
    who, note = actor_of(principal), body.note if body else None
    return await _change(
        request,
        runtime,
        principal,
        idempotency_key,
        lambda c: store.cancel(c, work_order_id, who, note),
    )


@router.get("/maintenance/kpis", summary="Maintenance KPIs of one month")
async def kpis(
    principal: ReadAlerts,
    runtime: RuntimeDep,
    month: Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")],
    district: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> MaintenanceKpis:
    """Outages per 1,000 light points, repair times p50/p90, telemetry-first share, time
    between failures, day-burning hours and warranty claims, from telemetry timestamps."""
    if principal.district_bound and district is None:
        if len(principal.districts) != 1:
            raise ApiError(422, "invalid_request", "district: required for this token")
        district = next(iter(principal.districts))
    scope = principal.district_scope(None if district is None else [district])
    chosen = None if scope is None else next(iter(scope))
    try:
        found = await in_thread(runtime, lambda c: maintenance_kpis(c, month, district=chosen))
    except (ValueError, TelemetryError) as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    return found
