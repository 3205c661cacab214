"""The records of complaints that storage writes and returns (pure value types): a complaint
and its contact, the registry and telemetry rows the linker reads, the links and evidence it
writes, and the filter of the API's lists. ``telemetry.storage.complaints`` builds them from
rows by column name (psycopg ``class_row``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any, Literal

from telemetry.complaints.facts import Reading

Status = Literal["open", "closed"]
BBox = tuple[float, float, float, float]  # south, west, north, east


@dataclass(frozen=True, slots=True, kw_only=True)
class NewComplaint:
    """A complaint to store (the contact goes apart, in ``Contact``)."""

    source: str
    service_code: str
    requested_at: datetime
    description: str = ""
    external_id: str | None = None
    address: str | None = None
    lat: float | None = None
    lon: float | None = None
    media_url: str | None = None
    agency_responsible: str | None = None
    status: Status = "open"


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact:
    """Who filed a complaint: personal data, never returned by a public endpoint."""

    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    account_id: str | None = None
    device_id: str | None = None

    def empty(self) -> bool:
        """True when no field is set."""
        return all(
            v is None
            for v in (
                self.first_name,
                self.last_name,
                self.email,
                self.phone,
                self.account_id,
                self.device_id,
            )
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ComplaintRow:
    """A complaint as the public and the linker see it: no contact details."""

    complaint_id: int
    source: str
    external_id: str | None
    service_code: str
    description: str
    status: str
    status_notes: str | None
    agency_responsible: str | None
    requested_at: datetime
    updated_at: datetime
    expected_at: datetime | None
    closed_at: datetime | None
    address: str | None
    lat: float | None
    lon: float | None
    district: str | None
    media_url: str | None
    alert_id: int | None
    link_state: str
    linked_at: datetime | None
    link_note: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportCounts:
    """What an import changed."""

    created: int
    closed: int
    unchanged: int


# -- what the linker reads ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LightRow:
    """A registered light with a position."""

    device_id: str
    lat: float
    lon: float
    district: str | None
    circuit: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class LightTelemetry:
    """A light's newest reading, recent readings (oldest first) and active faults."""

    latest: Reading | None
    readings: tuple[Reading, ...]
    faults: tuple[tuple[str, datetime], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PointRow:
    """A collection point with its round's shift and the trucks of that round."""

    round: str
    seq: int
    label: str | None
    lat: float
    lon: float
    radius_m: float
    shift_start: time
    shift_end: time
    timezone: str
    trucks: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class StopRow:
    """A bus stop and the lines serving it."""

    stop_id: str
    name: str
    lat: float
    lon: float
    routes: list[str]


# -- what the linker writes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Evidence:
    """The columns of a ``complaint_evidence`` row that say what the telemetry showed."""

    kind: str
    asset_kind: str | None
    asset_key: str | None
    distance_m: float | None
    verdict: str
    observed_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceRow(_Evidence):
    """One ``complaint_evidence`` row to write (``seq`` is its position)."""

    details: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEvidence(_Evidence):
    """A stored ``complaint_evidence`` row."""

    complaint_id: int
    seq: int
    details: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkedAlert:
    """The few columns of an alert the linker needs (the one a complaint opens or joins)."""

    alert_id: int
    state: str
    summary: str
    details: dict[str, Any]
    asset_key: str
    kind: str


# -- reads for the API ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestFilter:
    """Which complaints a list asks for (Open311 GET requests.json, the operators' list)."""

    ids: Sequence[int] | None = None
    service_codes: Sequence[str] | None = None
    statuses: Sequence[str] | None = None
    start: datetime | None = None  # requested_at >= start
    end: datetime | None = None  # requested_at <= end
    districts: Sequence[str] | None = None
    link_states: Sequence[str] | None = None
    alert_id: int | None = None
    bbox: BBox | None = None
