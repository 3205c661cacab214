"""Alert change events: the small JSON sent with PostgreSQL NOTIFY on every alert change.

Every change to a row of ``alerts`` (open, acknowledge, assign, resolve, escalate, update) sends
one ``AlertEvent`` on the channel ``alert_channel(schema)`` in the same transaction as the
change, so listeners (the API's ``/ws/alerts``) see committed changes only. The payload is kept
well under PostgreSQL's 8000-byte NOTIFY limit: listeners re-read details from ``alerts``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from telemetry.topics import Fleet

#: PostgreSQL truncates identifiers at 63 bytes and refuses longer NOTIFY channels.
_MAX_CHANNEL_BYTES: Final = 63
#: NOTIFY refuses payloads of 8000 bytes or more.
MAX_NOTIFY_BYTES: Final = 7999


class AlertState(StrEnum):
    """Lifecycle of an alert: open -> acknowledged -> resolved (or open -> resolved)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Severity(StrEnum):
    """How urgent an alert is; escalation moves it one step up."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    def raised(self) -> Severity:
        """The next severity up (critical stays critical)."""
        order = list(Severity)
        return order[min(order.index(self) + 1, len(order) - 1)]


class AlertEventType(StrEnum):
    """What happened to the alert."""

    OPEN = "open"
    ACK = "ack"
    ASSIGN = "assign"
    RESOLVE = "resolve"
    ESCALATE = "escalate"
    UPDATE = "update"


Short = Annotated[str, Field(max_length=200)]


class AlertEvent(BaseModel):
    """One alert change as published on the schema's alerts channel (version 1)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    v: Literal[1] = 1
    alert_id: int
    event: AlertEventType
    kind: Annotated[str, Field(max_length=64)]
    state: AlertState
    severity: Severity
    asset_kind: Fleet
    district: Short | None = None
    device_id: Annotated[str, Field(max_length=64)] | None = None
    devices: int = Field(default=1, ge=0, description="assets covered (grouped alerts list many)")
    crew: Short | None = None
    at: datetime

    def payload(self) -> str:
        """The NOTIFY payload: compact JSON, always below the 8000-byte limit."""
        text = self.model_dump_json()
        if len(text.encode()) > MAX_NOTIFY_BYTES:  # only reachable with absurd field values
            raise ValueError(f"alert event of {len(text.encode())} bytes exceeds NOTIFY's limit")
        return text


def alert_channel(schema: str) -> str:
    """The NOTIFY channel of a schema's alerts: ``{schema}_alerts`` (per schema, see docs)."""
    channel = f"{schema}_alerts"
    if len(channel.encode()) > _MAX_CHANNEL_BYTES:
        raise ValueError(
            f"schema name {schema!r} is too long for a NOTIFY channel "
            f"(at most {_MAX_CHANNEL_BYTES - len('_alerts')} bytes)"
        )
    return channel


def parse_event(payload: str | bytes) -> AlertEvent:
    """Decode a NOTIFY payload received on an alerts channel."""
    return AlertEvent.model_validate_json(payload)
