"""Streetlights: status (on/off, dim, last reading, open faults) listed, compact for the map,
and one light in detail."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import DbDep, ReadCity, RuntimeDep
from api.errors import ERROR_RESPONSES, ApiError
from api.filters import split_list
from api.lightstatus import STATUS_CODES, LightStatus, light_status
from api.schemas import LightDetail, LightOut, LightPage, LightsCompact, OpenFaultOut
from telemetry.storage.lights import LightState, light_states, open_faults

router = APIRouter(prefix="/api/v1/lights", tags=["lights"], responses=ERROR_RESPONSES)

_COMPACT_TTL_S = 5.0
_compact_cache: dict[tuple[object, ...], tuple[float, LightsCompact]] = {}


def status_of(row: LightState, now: datetime, silent_after: timedelta) -> LightStatus:
    """The map status of a stored light state."""
    return light_status(
        last_reading=row.time,
        lamp_on=row.lamp_on,
        dim_pct=row.dim_pct,
        active_faults=len(row.faults),
        now=now,
        silent_after=silent_after,
    )


def light_out(row: LightState, status: LightStatus) -> LightOut:
    """The API form of a light state."""
    return LightOut(
        id=row.device_id,
        label=row.label,
        district=row.district,
        circuit=row.circuit,
        rated_w=row.rated_w,
        lat=row.lat,
        lon=row.lon,
        status=status.value,
        last_reading=row.time,
        lamp_on=row.lamp_on,
        dim_pct=row.dim_pct,
        power_w=row.power_w,
        energy_wh=row.energy_wh,
        faults=row.faults,
    )


def _statuses(raw: list[str] | None) -> frozenset[LightStatus] | None:
    names = split_list("status", raw)
    if names is None:
        return None
    try:
        return frozenset(LightStatus(n) for n in names)
    except ValueError:
        allowed = ", ".join(s.value for s in LightStatus)
        raise ApiError(422, "invalid_request", f"status: use one of {allowed}") from None


@router.get("", summary="List lights with their status")
async def lights(
    _: ReadCity,
    conn: DbDep,
    runtime: RuntimeDep,
    district: Annotated[list[str] | None, Query()] = None,
    circuit: Annotated[list[str] | None, Query()] = None,
    status: Annotated[
        list[str] | None, Query(description="on, dimmed, off, faulty, silent")
    ] = None,
    after: Annotated[str | None, Query(max_length=64, description="paging cursor")] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> LightPage:
    """Lights by id with status; ``next_after`` continues the listing."""
    size = limit or runtime.api.page_default
    if size > runtime.api.page_max:
        raise ApiError(422, "invalid_request", f"limit: at most {runtime.api.page_max}")
    wanted = _statuses(status)
    districts, circuits = split_list("district", district), split_list("circuit", circuit)
    now = datetime.now(UTC)
    silent = timedelta(seconds=runtime.api.light_silent_after_s)
    items: list[LightOut] = []
    cursor = after
    # A status filter is applied to the classified rows, so read in chunks until the page fills.
    chunk = size + 1 if wanted is None else max(4 * size, 1000)
    while True:
        rows = await light_states(
            conn, districts=districts, circuits=circuits, after=cursor, limit=chunk
        )
        for row in rows:
            light_status_ = status_of(row, now, silent)
            if wanted is None or light_status_ in wanted:
                if len(items) == size:
                    return LightPage(items=items, next_after=items[-1].id)
                items.append(light_out(row, light_status_))
            cursor = row.device_id
        if len(rows) < chunk:
            return LightPage(items=items, next_after=None)


@router.get("/compact", summary="Every light's status as parallel arrays (for the map)")
async def lights_compact(
    _: ReadCity,
    conn: DbDep,
    runtime: RuntimeDep,
    district: Annotated[list[str] | None, Query()] = None,
    circuit: Annotated[list[str] | None, Query()] = None,
) -> LightsCompact:
    """All matching lights in one answer (gzip makes 72,000 lights about 1 MB); cached 5 s."""
    districts, circuits = split_list("district", district), split_list("circuit", circuit)
    key = (runtime.settings.database_schema, districts, circuits)
    hit = _compact_cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    rows = await light_states(conn, districts=districts, circuits=circuits)
    now = datetime.now(UTC)
    silent = timedelta(seconds=runtime.api.light_silent_after_s)
    codes = [STATUS_CODES[status_of(r, now, silent)] for r in rows]
    names = [s.value for s in LightStatus]
    body = LightsCompact(
        server_ts=now,
        statuses=names,
        counts={name: codes.count(i) for i, name in enumerate(names)},
        ids=[r.device_id for r in rows],
        lat=[None if r.lat is None else round(r.lat, 6) for r in rows],
        lon=[None if r.lon is None else round(r.lon, 6) for r in rows],
        status=codes,
    )
    if len(_compact_cache) > 64:
        _compact_cache.clear()
    _compact_cache[key] = (time.monotonic() + _COMPACT_TTL_S, body)
    return body


@router.get("/{device_id}", summary="One light's status and open faults")
async def light(
    device_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    _: ReadCity,
    conn: DbDep,
    runtime: RuntimeDep,
) -> LightDetail:
    """A light's newest reading, status and open faults."""
    rows = await light_states(conn, device_ids=[device_id], limit=1)
    if not rows:
        raise ApiError(404, "not_found", f"no light {device_id}")
    row = rows[0]
    now = datetime.now(UTC)
    status = status_of(row, now, timedelta(seconds=runtime.api.light_silent_after_s))
    faults = await open_faults(conn, device_id)
    return LightDetail(
        **light_out(row, status).model_dump(),
        open_faults=[OpenFaultOut(fault=f.fault, since=f.since, detail=f.detail) for f in faults],
    )
