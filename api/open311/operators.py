"""``/api/v1/complaints``: complaints with their evidence for operators and crews (crews see
their districts), closing and relinking; the contact only for admins (docs/open311.md)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, cast

from fastapi import APIRouter, Depends, Path, Query, Request

from api.auth import Permission, Principal
from api.deps import DbDep, RuntimeDep, require
from api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from api.filters import BBox, split_list
from api.locale import OperatorLocale
from api.open311.desk import ComplaintDesk
from api.open311.views import CloseIn, ComplaintOut, ComplaintsOut, complaint_out
from api.timerange import require_aware
from telemetry.complaints.records import RequestFilter
from telemetry.i18n import Locale
from telemetry.storage.complaints import (
    close_open_complaint,
    contact_of,
    evidence_of,
    get_complaint,
    list_complaints,
)

router = APIRouter(prefix="/api/v1/complaints", tags=["complaints"], responses=ERROR_RESPONSES)

ReadComplaints = Annotated[Principal, Depends(require(Permission.READ_COMPLAINTS))]
CloseComplaints = Annotated[Principal, Depends(require(Permission.CLOSE_COMPLAINTS))]
ComplaintId = Annotated[int, Path(ge=1, le=2**63 - 1)]
MAX_LIST = 1000


def _desk(request: Request) -> ComplaintDesk:
    return cast(ComplaintDesk, request.state.complaints)


@router.get("", summary="Complaints with their link to the telemetry, newest first")
async def complaints(
    principal: ReadComplaints,
    conn: DbDep,
    status: Annotated[list[str] | None, Query(description="open, closed")] = None,
    service_code: Annotated[list[str] | None, Query()] = None,
    district: Annotated[list[str] | None, Query()] = None,
    link_state: Annotated[
        list[str] | None, Query(description="pending, linked, no_asset, no_location")
    ] = None,
    alert_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    bbox: Annotated[str | None, Query(description="west,south,east,north")] = None,
    start: Annotated[datetime | None, Query(description="requested at or after")] = None,
    end: Annotated[datetime | None, Query(description="requested at or before")] = None,
    evidence: Annotated[bool, Query(description="include each complaint's evidence")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 500,
    locale: OperatorLocale = Locale.FR,
) -> ComplaintsOut:
    """A crew token sees the complaints of its districts only (and none without a district)."""
    require_aware("start", start)
    require_aware("end", end)
    scope = principal.district_scope(split_list("district", district))
    box = BBox.parse(bbox) if bbox else None
    filters = RequestFilter(
        statuses=sorted(split_list("status", status) or ()) or None,
        service_codes=sorted(split_list("service_code", service_code) or ()) or None,
        districts=None if scope is None else sorted(scope),
        link_states=sorted(split_list("link_state", link_state) or ()) or None,
        alert_id=alert_id,
        bbox=None if box is None else (box.south, box.west, box.north, box.east),
        start=start,
        end=end,
    )
    rows = await list_complaints(conn, filters, limit)
    found = await evidence_of(conn, [r.complaint_id for r in rows])
    items = [
        complaint_out(r, found.get(r.complaint_id, []), with_evidence=evidence, locale=locale)
        for r in rows
    ]
    return ComplaintsOut(count=len(items), items=items)


@router.get("/{complaint_id}", summary="One complaint with its evidence")
async def complaint(
    complaint_id: ComplaintId,
    principal: ReadComplaints,
    conn: DbDep,
    locale: OperatorLocale = Locale.FR,
) -> ComplaintOut:
    """The complaint, every evidence row, and for admins the contact."""
    row = await get_complaint(conn, complaint_id)
    if row is None:
        raise ApiError(404, "not_found", f"no complaint {complaint_id}")
    if not principal.sees_district(row.district):
        raise ApiError(
            403, "forbidden", f"complaint {complaint_id} is outside this token's districts"
        )
    found = await evidence_of(conn, [complaint_id])
    contact = (
        await contact_of(conn, complaint_id) if principal.can(Permission.READ_CONTACTS) else None
    )
    return complaint_out(
        row, found.get(complaint_id, []), with_evidence=True, contact=contact, locale=locale
    )


@router.post(
    "/{complaint_id}/close",
    summary="Close a complaint (operator)",
    responses={409: {"model": ErrorBody, "description": "The complaint is already closed"}},
)
async def close(
    complaint_id: ComplaintId,
    principal: CloseComplaints,
    conn: DbDep,
    body: CloseIn | None = None,
    locale: OperatorLocale = Locale.FR,
) -> ComplaintOut:
    """open -> closed; the note is the citizen-facing ``status_notes``. 409 when closed."""
    note = (body.note if body else None) or "Closed by the municipal services."
    if not await close_open_complaint(conn, complaint_id, note):
        if await get_complaint(conn, complaint_id) is None:
            raise ApiError(404, "not_found", f"no complaint {complaint_id}")
        raise ApiError(409, "conflict", f"complaint {complaint_id} is already closed")
    row = await get_complaint(conn, complaint_id)
    assert row is not None
    found = await evidence_of(conn, [complaint_id])
    return complaint_out(row, found.get(complaint_id, []), with_evidence=True, locale=locale)


@router.post("/{complaint_id}/relink", summary="Link a complaint to the telemetry again now")
async def relink(
    complaint_id: ComplaintId,
    principal: CloseComplaints,
    runtime: RuntimeDep,
    request: Request,
    locale: OperatorLocale = Locale.FR,
) -> ComplaintOut:
    """Re-run the linking rules (e.g. after importing rounds or stops); evidence is replaced."""
    decision = await asyncio.to_thread(_desk(request).relink, complaint_id)
    if decision is None:
        raise ApiError(404, "not_found", f"no complaint {complaint_id}")
    async with runtime.pool.connection(timeout=runtime.api.db_timeout_s) as conn:
        row = await get_complaint(conn, complaint_id)
        assert row is not None
        found = await evidence_of(conn, [complaint_id])
    return complaint_out(row, found.get(complaint_id, []), with_evidence=True, locale=locale)
