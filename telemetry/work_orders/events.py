"""Work-order change events: the small JSON sent with PostgreSQL NOTIFY on every step, on the
schema's work-orders channel, which the API listens to beside the alerts channel and streams
on ``/ws/alerts`` (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from telemetry.work_orders.states import OrderState, Step

_MAX_CHANNEL_BYTES: Final = 63
_SUFFIX: Final = "_work_orders"

Short = Annotated[str, Field(max_length=200)]


class WorkOrderEvent(BaseModel):
    """One work-order step as published (version 1); listeners re-read the order."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = 1
    type: Literal["work_order"] = "work_order"
    work_order_id: int
    event: Step
    state: OrderState
    kind: Annotated[str, Field(max_length=64)]
    district: Short | None = None
    crew: Short | None = None
    assignee: Short | None = None
    at: datetime

    def payload(self) -> str:
        """The NOTIFY payload (compact JSON, far below NOTIFY's 8000-byte limit)."""
        return self.model_dump_json()


def work_order_channel(schema: str) -> str:
    """The NOTIFY channel of a schema's work orders: ``{schema}_work_orders``."""
    channel = f"{schema}{_SUFFIX}"
    if len(channel.encode()) > _MAX_CHANNEL_BYTES:
        raise ValueError(
            f"schema name {schema!r} is too long for a NOTIFY channel "
            f"(at most {_MAX_CHANNEL_BYTES - len(_SUFFIX)} bytes)"
        )
    return channel


def parse_work_order_event(payload: str | bytes) -> WorkOrderEvent:
    """Decode a NOTIFY payload received on a work-orders channel."""
    return WorkOrderEvent.model_validate_json(payload)
