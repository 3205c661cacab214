"""The equipment register over REST: assets by kind, district or parent, and one asset with its
history (part swaps, faults, work orders) and operating hours. Crews see their districts only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import ReadAlerts, RuntimeDep
from api.errors import ERROR_RESPONSES, ApiError
from api.filters import split_list
from api.routes.work_orders import in_thread
from api.work_order_views import (
    AssetDetailOut,
    AssetOut,
    AssetPageOut,
    HistoryEntryOut,
    order_out,
    row_out,
)
from telemetry.equipment.records import ID_PATTERN, AssetKind
from telemetry.storage.equipment import asset_history, list_assets
from telemetry.storage.work_orders import OrderFilter, list_work_orders

router = APIRouter(prefix="/api/v1/assets", tags=["assets"], responses=ERROR_RESPONSES)

MAX_ASSETS = 1000


@router.get("", summary="List assets of the equipment register, by id")
async def assets(
    principal: ReadAlerts,
    runtime: RuntimeDep,
    kind: Annotated[
        list[str] | None,
        Query(description="cabinet, circuit, pole, luminaire, driver, controller"),
    ] = None,
    district: Annotated[list[str] | None, Query()] = None,
    parent_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ASSETS)] = 200,
) -> AssetPageOut:
    """Assets matching every filter; a crew token sees only its districts."""
    kinds = split_list("kind", kind)
    if kinds is not None:
        unknown = sorted(kinds - {k.value for k in AssetKind})
        if unknown:
            allowed = ", ".join(k.value for k in AssetKind)
            raise ApiError(422, "invalid_request", f"kind: use one of {allowed}")
    scope = principal.district_scope(split_list("district", district))
    rows = await in_thread(
        runtime,
        lambda c: list_assets(
            c,
            kinds=None if kinds is None else sorted(kinds),
            districts=None if scope is None else sorted(scope),
            parent_id=parent_id,
            after=after,
            limit=limit + 1,
        ),
    )
    more = len(rows) > limit
    items = rows[:limit]
    return AssetPageOut(
        items=[row_out(a, AssetOut) for a in items],
        next_after=items[-1].asset_id if more else None,
    )


@router.get("/{asset_id}", summary="One asset with its history")
async def asset(
    asset_id: Annotated[str, Path(pattern=ID_PATTERN)], principal: ReadAlerts, runtime: RuntimeDep
) -> AssetDetailOut:
    """The asset, everything that happened to it and below it (parts by serial, faults, work
    orders' swaps), its operating hours when one light measures it, and its work orders."""
    history = await in_thread(runtime, lambda c: asset_history(c, asset_id))
    if history is None:
        raise ApiError(404, "not_found", f"no asset {asset_id}")
    if not principal.sees_district(history.asset.district):
        raise ApiError(403, "forbidden", f"asset {asset_id} is outside this token's districts")
    orders = await in_thread(
        runtime, lambda c: list_work_orders(c, OrderFilter(asset_id=asset_id), limit=100)
    )
    hours = history.operating_hours
    return AssetDetailOut(
        **row_out(history.asset, AssetOut).model_dump(),
        history=[row_out(e, HistoryEntryOut) for e in history.entries],
        operating_hours=None if hours is None else round(hours.hours, 3),
        work_orders=[order_out(o) for o in orders],
    )
