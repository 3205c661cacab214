"""Alert records (pure): the rows of ``alerts``, ``alert_members`` and ``alert_history`` as
``telemetry.storage.alerts`` returns them, and what the engine asks it to store.

No I/O here, so the alert rules and the engine can hold these without importing a database
driver. Stored rows are built by column name (psycopg ``class_row``), which hands text columns
over as ``str``: ``__post_init__`` turns them into their enums, so a record always holds those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telemetry.alert_events import AlertEvent, AlertEventType, AlertState, Severity
from telemetry.topics import Fleet


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One row of ``alerts``."""

    alert_id: int
    kind: str
    asset_kind: Fleet
    asset_key: str
    device_id: str | None
    circuit: str | None
    district: str | None
    device_count: int
    severity: Severity
    state: AlertState
    crew: str | None
    assignee: str | None
    summary: str
    details: dict[str, Any]
    lat: float | None
    lon: float | None
    opened_at: datetime
    detected_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    assigned_at: datetime | None
    assigned_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    cleared_at: datetime | None
    grouped_into: int | None
    sla_due_at: datetime | None
    escalated_at: datetime | None
    flap_count: int
    last_flap_at: datetime | None
    updated_at: datetime
    escalation_level: int = 0  # escalation levels reached (0: not escalated)
    next_escalation_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "asset_kind", Fleet(self.asset_kind))
        object.__setattr__(self, "severity", Severity(self.severity))
        object.__setattr__(self, "state", AlertState(self.state))

    def event(self, event: AlertEventType, at: datetime) -> AlertEvent:
        """The NOTIFY event describing this row after ``event``."""
        return AlertEvent(
            alert_id=self.alert_id,
            event=event,
            kind=self.kind,
            state=self.state,
            severity=self.severity,
            asset_kind=self.asset_kind,
            district=self.district,
            device_id=self.device_id,
            devices=self.device_count,
            crew=self.crew,
            at=at,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertMember:
    """A light listed in a grouped alert."""

    alert_id: int
    device_id: str
    circuit: str | None
    since: datetime
    recovered_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One step of an alert's life: who did what, when, with which note."""

    history_id: int
    alert_id: int
    event: AlertEventType
    at: datetime
    actor: str
    note: str | None
    state: AlertState
    severity: Severity
    details: dict[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "event", AlertEventType(self.event))
        object.__setattr__(self, "state", AlertState(self.state))
        object.__setattr__(self, "severity", Severity(self.severity))


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenCount:
    """Unresolved alerts of one district, asset kind, kind and severity (for a crew board)."""

    district: str | None
    asset_kind: Fleet
    kind: str
    severity: Severity
    count: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "asset_kind", Fleet(self.asset_kind))
        object.__setattr__(self, "severity", Severity(self.severity))


@dataclass(frozen=True, slots=True, kw_only=True)
class NewMember:
    """A light to list in a grouped alert."""

    device_id: str
    circuit: str | None
    since: datetime
    recovered_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAlert:
    """What the engine knows when a condition starts."""

    kind: str
    asset_kind: Fleet
    asset_key: str
    opened_at: datetime
    severity: Severity
    device_id: str | None = None
    circuit: str | None = None
    district: str | None = None
    crew: str | None = None
    summary: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    lat: float | None = None
    lon: float | None = None
    sla_due_at: datetime | None = None
    members: Sequence[NewMember] = ()
    # When each escalation level falls due, in order; empty: one level at sla_due_at.
    escalate_at: Sequence[datetime] = ()
