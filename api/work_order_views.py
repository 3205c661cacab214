"""Work orders, assets and maintenance KPIs on the wire: request and response bodies, and the
renderings of storage rows (pure, no I/O)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import Note
from telemetry.equipment.records import ID_PATTERN
from telemetry.storage.work_orders import (
    OrderAlert,
    PartRow,
    PhotoRow,
    StepRow,
    WorkOrder,
)
from telemetry.work_orders.photos import MAX_PHOTO_BYTES, MAX_PHOTOS

Serial = Annotated[str, Field(min_length=1, max_length=200)]
#: A photo in base64: its decoded size is checked again after decoding.
Photo = Annotated[str, Field(min_length=4, max_length=(MAX_PHOTO_BYTES * 4) // 3 + 8)]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class WorkOrderOut(_Out):
    """A work order."""

    work_order_id: int
    kind: str
    scope: str
    scope_key: str
    asset_id: str | None
    device_id: str | None
    circuit: str | None
    district: str | None
    crew: str | None
    assignee: str | None
    state: str
    summary: str
    lat: float | None
    lon: float | None
    opened_at: datetime
    created_at: datetime
    assigned_at: datetime | None
    started_at: datetime | None
    done_at: datetime | None
    cancelled_at: datetime | None
    crew_minutes: int | None
    reopen_count: int
    verified_at: datetime | None
    updated_at: datetime


class StepOut(_Out):
    """One step: who did what, when, with which note."""

    step: str
    state: str
    at: datetime
    actor: str
    note: str | None
    details: dict[str, Any]


class OrderAlertOut(_Out):
    """An alert the order covers (``cleared_at``: the telemetry's first healthy reading)."""

    alert_id: int
    kind: str
    state: str
    device_id: str | None
    device_count: int
    opened_at: datetime
    cleared_at: datetime | None
    resolution: str | None


class PartOut(_Out):
    """A part swapped on completion."""

    seq: int
    part: str
    asset_id: str | None
    removed_serial: str | None
    installed_serial: str | None


class PhotoOut(_Out):
    """A photo of the order (its bytes: ``GET .../photos/{photo_id}``)."""

    photo_id: int
    content_type: str
    size: int
    created_at: datetime


class WorkOrderDetailOut(WorkOrderOut):
    """A work order with its steps, alerts, parts and photos."""

    steps: list[StepOut]
    alerts: list[OrderAlertOut]
    parts: list[PartOut]
    photos: list[PhotoOut]


class WorkOrderPageOut(_Out):
    """A page of orders, newest first; pass ``next_before`` as ``before`` for the next."""

    items: list[WorkOrderOut]
    next_before: int | None


class StepIn(BaseModel):
    """An optional note for start and cancel."""

    model_config = ConfigDict(extra="forbid")

    note: Note | None = None


class OrderAssignIn(BaseModel):
    """Whom the order goes to."""

    model_config = ConfigDict(extra="forbid")

    assignee: Annotated[str, Field(min_length=1, max_length=200)]
    note: Note | None = None


class PartIn(BaseModel):
    """A part swapped: what, on which asset (found from ``part`` when it names a register kind:
    luminaire, driver, controller), which serial came out and which went in."""

    model_config = ConfigDict(extra="forbid")

    part: Annotated[str, Field(min_length=1, max_length=100)]
    asset_id: Annotated[str, Field(pattern=ID_PATTERN)] | None = None
    removed_serial: Serial | None = None
    installed_serial: Serial | None = None


class CompleteIn(BaseModel):
    """What the crew did: note, minutes on site, parts swapped, photos (base64 JPEG/PNG/WebP)."""

    model_config = ConfigDict(extra="forbid")

    note: Note | None = None
    crew_minutes: Annotated[int, Field(ge=0, le=100_000)] | None = None
    parts: Annotated[list[PartIn], Field(max_length=20)] = []
    photos: Annotated[list[Photo], Field(max_length=MAX_PHOTOS)] = []


class AssetOut(_Out):
    """An asset of the equipment register."""

    asset_id: str
    kind: str
    parent_id: str | None
    label: str | None
    device_id: str | None
    model_id: str | None
    serial: str | None
    supplier: str | None
    project_id: str | None
    installed_on: date | None
    warranty_until: date | None
    lat: float | None
    lon: float | None
    district: str | None


class AssetPageOut(_Out):
    """A page of assets by id; pass ``next_after`` as ``after`` for the next."""

    items: list[AssetOut]
    next_after: str | None


class HistoryEntryOut(_Out):
    """One thing that happened to the asset or one below it."""

    at: datetime
    kind: str
    asset_id: str | None
    device_id: str | None
    fault: str | None
    serial: str | None
    model_id: str | None
    detail: str | None
    source: str
    source_ref: str | None


class AssetDetailOut(AssetOut):
    """An asset with its history, operating hours and work orders."""

    history: list[HistoryEntryOut]
    operating_hours: float | None
    work_orders: list[WorkOrderOut]


def _fields(row: Any, model: type[BaseModel]) -> dict[str, Any]:
    values = dataclasses.asdict(row)
    return {k: values[k] for k in model.model_fields if k in values}


def order_out(order: WorkOrder) -> WorkOrderOut:
    """The API form of an order row."""
    values = _fields(order, WorkOrderOut)
    values["state"] = order.state.value
    return WorkOrderOut.model_validate(values)


def order_json(order: WorkOrder) -> dict[str, Any]:
    """An order as a JSON-ready dict (WebSocket frames)."""
    return order_out(order).model_dump(mode="json")


def detail_out(
    order: WorkOrder,
    steps: list[StepRow],
    alerts: list[OrderAlert],
    parts: list[PartRow],
    photos: list[PhotoRow],
) -> WorkOrderDetailOut:
    """An order with everything recorded on it."""
    return WorkOrderDetailOut(
        **order_out(order).model_dump(),
        steps=[StepOut.model_validate(_fields(s, StepOut)) for s in steps],
        alerts=[OrderAlertOut.model_validate(_fields(a, OrderAlertOut)) for a in alerts],
        parts=[PartOut.model_validate(_fields(p, PartOut)) for p in parts],
        photos=[PhotoOut.model_validate(_fields(p, PhotoOut)) for p in photos],
    )


def row_out(row: Any, model: type[BaseModel]) -> Any:
    """Any storage dataclass as the response model with the same field names."""
    return model.model_validate(_fields(row, model))
