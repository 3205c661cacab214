"""Devices: list with filters and paging, detail, and (admin) create or replace."""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, Path, Query, Response

from api.deps import DbDep, ManageDevices, ReadCity, RuntimeDep
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from api.filters import device_fleets, split_list
from api.schemas import DeviceIn, DeviceOut, DevicePage
from telemetry.registry import DeviceRecord
from telemetry.storage.devices import (
    DeviceRow,
    external_id_taken,
    get_device,
    list_devices,
    upsert_device,
)

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=ERROR_RESPONSES)

DeviceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="device id")]


def device_out(row: DeviceRow) -> DeviceOut:
    """The API form of a registry row."""
    return DeviceOut.model_validate(row, from_attributes=True)


@router.get("", summary="List devices")
async def devices(
    _: ReadCity,
    conn: DbDep,
    runtime: RuntimeDep,
    fleet: Annotated[
        list[str] | None, Query(description="bus, truck, light; comma-separated")
    ] = None,
    district: Annotated[list[str] | None, Query()] = None,
    route: Annotated[list[str] | None, Query()] = None,
    circuit: Annotated[list[str] | None, Query()] = None,
    after: Annotated[str | None, Query(max_length=64, description="paging cursor")] = None,
    limit: Annotated[int | None, Query(ge=1, description="page size")] = None,
) -> DevicePage:
    """Devices by id, filtered; ``next_after`` continues the listing."""
    size = limit or runtime.api.page_default
    if size > runtime.api.page_max:
        raise ApiError(422, "invalid_request", f"limit: at most {runtime.api.page_max}")
    rows = await list_devices(
        conn,
        fleets=device_fleets(fleet),
        districts=split_list("district", district),
        routes=split_list("route", route),
        circuits=split_list("circuit", circuit),
        after=after,
        limit=size + 1,
    )
    more = len(rows) > size
    rows = rows[:size]
    return DevicePage(
        items=[device_out(r) for r in rows], next_after=rows[-1].device_id if more else None
    )


@router.get("/{device_id}", summary="One device")
async def device(device_id: DeviceId, _: ReadCity, conn: DbDep) -> DeviceOut:
    """A device's registry entry."""
    row = await get_device(conn, device_id)
    if row is None:
        raise ApiError(404, "not_found", f"no device {device_id}")
    return device_out(row)


@router.put(
    "/{device_id}",
    summary="Create or replace a device (admin)",
    responses={409: {"model": ErrorBody, "description": "external_id belongs to another device"}},
)
async def put_device(
    device_id: DeviceId, body: DeviceIn, _: ManageDevices, conn: DbDep, response: Response
) -> DeviceOut:
    """Register a device or replace its entry; 201 when created."""
    record = DeviceRecord(device_id=device_id, **body.model_dump())
    try:
        row, created = await upsert_device(conn, record)
    except psycopg.errors.UniqueViolation as exc:
        raise ApiError(409, "conflict", external_id_taken(exc)) from None
    response.status_code = 201 if created else 200
    return device_out(row)
