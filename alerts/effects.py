"""What the engine decides: alert changes as plain records, applied later by ``alerts.store``.

Times are UTC epoch seconds. Every effect names its alert by ``AlertKey`` (kind and asset
key), never by database id, so the engine stays pure and effects can be re-applied after a
crash or a replay without duplicating anything (``telemetry.storage.alerts`` is idempotent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from telemetry.alert_events import Severity
from telemetry.topics import Fleet


# A NamedTuple, not a dataclass: rules build and hash one per reading (a silent light's
# fall, an energy run's), and a tuple is built and hashed in C. Ordered, equal and hashed by
# (kind, asset_key), as the frozen dataclass it replaces was.
class AlertKey(NamedTuple):
    """The dedup key: one unresolved alert per asset and kind."""

    kind: str
    asset_key: str


@dataclass(frozen=True, slots=True)
class Subject:
    """The asset an alert is about, as the crews need it (where, which district and circuit)."""

    asset_kind: Fleet
    device_id: str | None = None
    district: str | None = None
    circuit: str | None = None
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True, slots=True)
class Member:
    """A light listed in a grouped alert."""

    device_id: str
    circuit: str | None
    since: float
    recovered_at: float | None = None


@dataclass(frozen=True, slots=True)
class Raise:
    """A condition started: open an alert unless one already covers it."""

    key: AlertKey
    at: float
    subject: Subject
    severity: Severity
    crew: str
    sla_due: float | None
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)
    members: tuple[Member, ...] = ()
    escalations: tuple[float, ...] = ()  # when each escalation level falls due


@dataclass(frozen=True, slots=True)
class Clear:
    """The condition ended at ``at`` (and stayed clear through the hold): resolve the alert."""

    key: AlertKey
    at: float
    note: str


@dataclass(frozen=True, slots=True)
class Flap:
    """The condition came back while its clearing was on hold: same alert, one more flap."""

    key: AlertKey
    at: float


@dataclass(frozen=True, slots=True)
class Merge:
    """A single alert is now covered by a group alert: resolve it as grouped."""

    key: AlertKey
    into: AlertKey
    at: float


@dataclass(frozen=True, slots=True)
class Join:
    """More lights listed in a group alert."""

    key: AlertKey
    members: tuple[Member, ...]


@dataclass(frozen=True, slots=True)
class Leave:
    """Lights of a group alert recovered at ``at``."""

    key: AlertKey
    device_ids: tuple[str, ...]
    at: float


@dataclass(frozen=True, slots=True)
class Detail:
    """New facts for an unresolved alert (e.g. another shift's missed points)."""

    key: AlertKey
    details: Mapping[str, Any]
    summary: str


Effect = Raise | Clear | Flap | Merge | Join | Leave | Detail
