"""Operators' renderings of complaints (``/api/v1/complaints``), pure: the complaint, its
evidence, an overall verdict, and (admins only) the contact."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from telemetry.complaints.records import ComplaintRow, Contact, StoredEvidence
from telemetry.complaints.services import service
from telemetry.i18n import Locale
from telemetry.i18n.catalogues import translate

OverallVerdict = Literal["confirms", "refutes", "mixed", "unknown"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class EvidenceOut(_Out):
    """What the telemetry says about one asset of a complaint."""

    seq: int
    kind: str = Field(
        description="nearest_light, collection_point, truck_passage, no_service, "
        "bus_passages, vehicle_speed"
    )
    asset_kind: str | None
    asset_key: str | None
    distance_m: float | None
    verdict: Literal["confirms", "refutes", "unknown"]
    observed_at: datetime | None
    details: dict[str, Any]


class ContactOut(_Out):
    """The complainant's contact (admins only)."""

    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    account_id: str | None
    device_id: str | None


class ComplaintOut(_Out):
    """A complaint with its link to the telemetry."""

    complaint_id: int
    source: str
    external_id: str | None
    service_code: str
    service_name: str
    description: str
    status: str
    status_notes: str | None
    requested_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    address: str | None
    lat: float | None
    lon: float | None
    district: str | None
    media_url: str | None
    alert_id: int | None
    link_state: str
    link_note: str | None
    linked_at: datetime | None
    verdict: OverallVerdict
    evidence: list[EvidenceOut] | None = None
    contact: ContactOut | None = None


class ComplaintsOut(_Out):
    """Complaints, newest first."""

    count: int
    items: list[ComplaintOut]


class CloseIn(BaseModel):
    """Why a complaint is closed: the note is shown to the citizen."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000)


def overall(evidence: Sequence[StoredEvidence]) -> OverallVerdict:
    """confirms / refutes when the evidence agrees, mixed when it disagrees, else unknown."""
    verdicts = {e.verdict for e in evidence}
    if "confirms" in verdicts and "refutes" in verdicts:
        return "mixed"
    if "confirms" in verdicts:
        return "confirms"
    if "refutes" in verdicts:
        return "refutes"
    return "unknown"


def complaint_out(
    row: ComplaintRow,
    evidence: Sequence[StoredEvidence],
    *,
    with_evidence: bool,
    contact: Contact | None = None,
    locale: Locale = Locale.EN,
) -> ComplaintOut:
    """The operators' form of a complaint (the service's name and Rasd's own notes in
    ``locale``; codes stay codes)."""
    found = service(row.service_code)
    svc = found.localised(locale) if found else None
    return ComplaintOut(
        complaint_id=row.complaint_id,
        source=row.source,
        external_id=row.external_id,
        service_code=row.service_code,
        service_name=svc.name if svc else row.service_code,
        description=row.description,
        status=row.status,
        status_notes=translate(locale, row.status_notes) if row.status_notes else None,
        requested_at=row.requested_at,
        updated_at=row.updated_at,
        closed_at=row.closed_at,
        address=row.address,
        lat=row.lat,
        lon=row.lon,
        district=row.district,
        media_url=row.media_url,
        alert_id=row.alert_id,
        link_state=row.link_state,
        link_note=row.link_note,
        linked_at=row.linked_at,
        verdict=overall(evidence),
        evidence=[
            EvidenceOut(
                seq=e.seq,
                kind=e.kind,
                asset_kind=e.asset_kind,
                asset_key=e.asset_key,
                distance_m=e.distance_m,
                verdict=e.verdict,
                observed_at=e.observed_at,
                details=e.details,
            )
            for e in evidence
        ]
        if with_evidence
        else None,
        contact=None
        if contact is None
        else ContactOut(
            first_name=contact.first_name,
            last_name=contact.last_name,
            email=contact.email,
            phone=contact.phone,
            account_id=contact.account_id,
            device_id=contact.device_id,
        ),
    )
