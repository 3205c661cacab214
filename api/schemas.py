"""Request and response bodies of the REST API (the OpenAPI document is generated from them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.auth import Role

Note = Annotated[str, Field(max_length=2000)]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class DeviceOut(_Out):
    """A registered device."""

    device_id: str
    fleet: str
    label: str | None
    route: str | None
    district: str | None
    circuit: str | None
    rated_w: float | None
    lat: float | None
    lon: float | None
    operator: str | None
    external_id: str | None
    auto_registered: bool
    created_at: datetime
    updated_at: datetime


class DevicePage(_Out):
    """A page of devices; pass ``next_after`` as ``after`` for the next one."""

    items: list[DeviceOut]
    next_after: str | None


class DeviceIn(BaseModel):
    """A device's registry entry (the id is in the path)."""

    model_config = ConfigDict(extra="forbid")

    fleet: Literal["bus", "truck", "light"]
    label: Annotated[str, Field(max_length=200)] | None = None
    route: Annotated[str, Field(max_length=200)] | None = None
    district: Annotated[str, Field(max_length=200)] | None = None
    circuit: Annotated[str, Field(max_length=200)] | None = None
    rated_w: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)] | None = None
    operator: Annotated[str, Field(max_length=200)] | None = None
    external_id: (
        Annotated[
            str, Field(pattern=r"^[!-~]{1,64}$", description="identity in the device's protocol")
        ]
        | None
    ) = None


class VehicleOut(_Out):
    """A vehicle's newest fix."""

    id: str
    fleet: str
    label: str | None
    route: str | None
    district: str | None
    ts: datetime
    received_at: datetime
    lat: float
    lon: float
    speed_kmh: float | None
    heading_deg: float | None
    accuracy_m: float | None
    age_s: float
    stale: bool


class PositionsOut(_Out):
    """The newest fix of every matching vehicle."""

    server_ts: datetime
    stale_after_s: float
    count: int
    vehicles: list[VehicleOut]


class TrackPointOut(_Out):
    """One fix of a track."""

    ts: datetime
    lat: float
    lon: float
    speed_kmh: float | None
    heading_deg: float | None
    accuracy_m: float | None
    route: str | None


class TrackOut(_Out):
    """A vehicle's fixes over a time range, oldest first."""

    device_id: str
    start: datetime
    end: datetime
    downsampled: bool
    step_s: float | None = Field(description="bucket width when downsampled")
    count: int
    points: list[TrackPointOut]


class OpenFaultOut(_Out):
    """An active fault condition."""

    fault: str
    since: datetime
    detail: str | None


class LightOut(_Out):
    """A streetlight's current state."""

    id: str
    label: str | None
    district: str | None
    circuit: str | None
    rated_w: float | None
    lat: float | None
    lon: float | None
    status: Literal["on", "dimmed", "off", "faulty", "silent"]
    last_reading: datetime | None
    lamp_on: bool | None
    dim_pct: float | None
    power_w: float | None
    energy_wh: float | None
    faults: list[str]


class LightDetail(LightOut):
    """A light with its open faults in full."""

    open_faults: list[OpenFaultOut]


class LightPage(_Out):
    """A page of lights; pass ``next_after`` as ``after`` for the next one."""

    items: list[LightOut]
    next_after: str | None


class LightsCompact(_Out):
    """Every matching light as parallel arrays (for the map: 72,000 lights in one response)."""

    server_ts: datetime
    statuses: list[str] = Field(description="status names; ``status`` holds indexes into it")
    counts: dict[str, int]
    ids: list[str]
    lat: list[float | None]
    lon: list[float | None]
    status: list[int]


class EnergyPeriodOut(_Out):
    """Consumption in one local hour, day or month."""

    start: datetime
    energy_wh: float
    lights: int = Field(description="most lights reporting in any hour of the period")
    hours: int = Field(description="hours of the period with data")


class EnergyOut(_Out):
    """Consumption per period for one light, circuit or district."""

    scope: Literal["light", "circuit", "district"]
    key: str
    unit: Literal["hour", "day", "month"]
    timezone: str
    start: datetime
    end: datetime
    total_wh: float
    periods: list[EnergyPeriodOut]


class AlertOut(_Out):
    """An alert (see docs/alerts.md for kinds and lifecycle)."""

    alert_id: int
    kind: str
    asset_kind: str
    asset_key: str
    device_id: str | None
    circuit: str | None
    district: str | None
    device_count: int
    severity: str
    state: str
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
    sla_due_at: datetime | None
    escalated_at: datetime | None
    escalation_level: int
    next_escalation_at: datetime | None
    updated_at: datetime


class AlertPageOut(_Out):
    """A page of alerts, newest opened first; pass ``next_cursor`` as ``cursor``."""

    items: list[AlertOut]
    next_cursor: str | None


class HistoryOut(_Out):
    """One step of an alert's life."""

    event: str
    at: datetime
    actor: str
    note: str | None
    state: str
    severity: str


class AlertMemberOut(_Out):
    """A light listed in a grouped alert."""

    device_id: str
    circuit: str | None
    since: datetime
    recovered_at: datetime | None


class AlertDetailOut(AlertOut):
    """An alert with its history and, for grouped alerts, its lights."""

    history: list[HistoryOut]
    members: list[AlertMemberOut]


class NoteIn(BaseModel):
    """An optional note for acknowledge and resolve."""

    model_config = ConfigDict(extra="forbid")

    note: Note | None = None


class AssignIn(BaseModel):
    """Whom to give the alert to (null takes it back)."""

    model_config = ConfigDict(extra="forbid")

    assignee: Annotated[str, Field(min_length=1, max_length=200)] | None
    note: Note | None = None


class TokenOut(_Out):
    """An API token's record (never the token itself)."""

    token_id: int
    role: Role
    districts: list[str]
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    """A new token: ``token`` is shown this once and never stored."""

    token: str


class TokenIn(BaseModel):
    """A token to create."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    districts: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=50
    )
    label: Annotated[str, Field(max_length=200)] | None = None
