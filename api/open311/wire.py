"""The Open311 GeoReport v2 wire format (pure): parsing POSTed forms and GET filters, the
records of services and service requests, and the spec's error list ``[{"code",
"description"}]``. These records are the JSON answers; ``formats`` renders the same as XML."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from api.timerange import EARLIEST, LATEST
from telemetry.complaints.records import ComplaintRow, Contact, NewComplaint, RequestFilter
from telemetry.complaints.services import SERVICES, Service, service
from telemetry.i18n import Locale
from telemetry.i18n.catalogues import translate

SOURCE: Final = "open311"
MAX_REQUESTS: Final = 1000  # the spec's "first 1000 requests"
DEFAULT_SPAN: Final = timedelta(days=90)  # the spec's default and longest range
MAX_FORM_BYTES: Final = 16_384
_EMAIL_RE: Final = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
_PHONE_RE: Final = re.compile(r"^[0-9+()./ -]{3,64}$")
_CONTROL_RE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Open311Error(Exception):
    """An error answered as the spec's list ``[{"code": ..., "description": ...}]``."""

    def __init__(
        self, status: int, description: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = dict(headers or {})

    def body(self) -> list[dict[str, Any]]:
        """The body (JSON as it is; ``<errors><error>`` in XML)."""
        return [{"code": self.status, "description": self.description}]


def w3(value: datetime | None, zone: ZoneInfo) -> str | None:
    """A time in the w3 profile of ISO 8601 with the city's offset, to the second."""
    if value is None:
        return None
    return value.astimezone(zone).replace(microsecond=0).isoformat()


def parse_w3(name: str, value: str) -> datetime:
    """A w3 date or date-time; a time needs its offset (``Z`` or ``+01:00``)."""
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name}: not a w3 date-time (e.g. 2026-01-01T00:00:00Z)") from None
    if parsed.tzinfo is None:
        raise Open311Error(400, f"{name}: needs a time zone (Z or an offset such as +01:00)")
    if not EARLIEST <= parsed < LATEST:
        raise Open311Error(400, f"{name}: must lie between {EARLIEST.year} and {LATEST.year - 1}")
    return parsed


# -- services --------------------------------------------------------------------------------------


def service_json(s: Service) -> dict[str, Any]:
    """One entry of GET services.json."""
    return {
        "service_code": s.code,
        "service_name": s.name,
        "description": s.description,
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join(s.keywords),
        "group": s.group,
    }


def services_json(locale: Locale = Locale.EN) -> list[dict[str, Any]]:
    """GET services.json, names and descriptions in ``locale``."""
    return [service_json(s.localised(locale)) for s in SERVICES]


# -- POST requests.json --------------------------------------------------------------------------


def _one(form: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = form.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise Open311Error(400, f"{name}: given {len(values)} times")
    value = values[0].strip()
    return value or None


def _text(form: Mapping[str, Sequence[str]], name: str, limit: int) -> str | None:
    value = _one(form, name)
    if value is None:
        return None
    if len(value) > limit:
        raise Open311Error(400, f"{name}: longer than {limit} characters")
    if _CONTROL_RE.search(value):
        raise Open311Error(400, f"{name}: control characters are not allowed")
    return value


def _coordinate(form: Mapping[str, Sequence[str]], name: str, bound: float) -> float | None:
    value = _one(form, name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise Open311Error(400, f"{name}: not a number: {value[:40]!r}") from None
    if not -bound <= number <= bound or number != number:
        raise Open311Error(400, f"{name}: must be between -{bound:g} and {bound:g}")
    return number


@dataclass(frozen=True, slots=True)
class PostedRequest:
    """A valid POSTed service request."""

    service: Service
    complaint: NewComplaint
    contact: Contact


def parse_post(
    form: Mapping[str, Sequence[str]], *, jurisdiction: str, now: datetime
) -> PostedRequest:
    """Validate a POST requests.json form (without its api_key); Open311Error if invalid."""
    check_jurisdiction(form, jurisdiction)
    code = _one(form, "service_code")
    if code is None:
        raise Open311Error(400, "service_code was not provided")
    svc = service(code)
    if svc is None:
        raise Open311Error(404, f"service_code {code[:64]!r} not found (see services.json)")
    lat = _coordinate(form, "lat", 90)
    lon = _coordinate(form, "long", 180)
    if (lat is None) != (lon is None):
        raise Open311Error(400, "lat and long must be sent together")
    address = _text(form, "address_string", 500)
    if lat is None and address is None:
        if _one(form, "address_id") is not None:
            raise Open311Error(
                400, "address_id is not supported here: send lat/long or address_string"
            )
        raise Open311Error(400, "a location is required: lat and long, or address_string")
    media = _text(form, "media_url", 1000)
    if media is not None and not re.match(r"^https?://[^\s]+$", media):
        raise Open311Error(400, "media_url: must be an http(s) URL")
    email = _text(form, "email", 320)
    if email is not None and not _EMAIL_RE.match(email):
        raise Open311Error(400, "email: not an e-mail address")
    phone = _text(form, "phone", 64)
    if phone is not None and not _PHONE_RE.match(phone):
        raise Open311Error(400, "phone: not a phone number")
    description = _one(form, "description") or ""
    if len(description) > 4000:
        raise Open311Error(400, "description: longer than 4,000 characters")
    if _CONTROL_RE.search(description):
        raise Open311Error(400, "description: control characters are not allowed")
    contact = Contact(
        first_name=_text(form, "first_name", 200),
        last_name=_text(form, "last_name", 200),
        email=email,
        phone=phone,
        account_id=_text(form, "account_id", 128),
        device_id=_text(form, "device_id", 128),
    )
    complaint = NewComplaint(
        source=SOURCE,
        service_code=svc.code,
        requested_at=now,
        description=description,
        address=address,
        lat=lat,
        lon=lon,
        media_url=media,
        agency_responsible=svc.agency,
    )
    return PostedRequest(svc, complaint, contact)


def check_jurisdiction(params: Mapping[str, Sequence[str]], jurisdiction: str) -> None:
    """``jurisdiction_id`` is optional (one jurisdiction); a different one is not found."""
    given = _one(params, "jurisdiction_id")
    if given is not None and given != jurisdiction:
        raise Open311Error(
            404, f"jurisdiction_id {given[:100]!r} not found (this is {jurisdiction})"
        )


def posted_json(
    complaint_id: int, svc: Service, locale: Locale = Locale.EN
) -> list[dict[str, Any]]:
    """The POST answer; ``account_id`` is never echoed (contact data stays private)."""
    notice = svc.localised(locale).notice
    return [{"service_request_id": complaint_id, "service_notice": notice, "account_id": None}]


# -- GET requests.json ---------------------------------------------------------------------------


def _list(params: Mapping[str, Sequence[str]], name: str) -> list[str] | None:
    values = [v.strip() for raw in params.get(name, ()) for v in raw.split(",") if v.strip()]
    return sorted(set(values)) or None


def parse_filter(params: Mapping[str, Sequence[str]], *, now: datetime) -> RequestFilter:
    """The GET requests.json arguments; ``service_request_id`` overrides all the others."""
    ids = _list(params, "service_request_id")
    if ids is not None:
        try:
            numbers = sorted({int(i) for i in ids})
        except ValueError:
            raise Open311Error(400, "service_request_id: comma-separated numbers") from None
        if len(numbers) > MAX_REQUESTS:
            raise Open311Error(400, f"service_request_id: at most {MAX_REQUESTS} ids")
        return RequestFilter(ids=[n for n in numbers if 1 <= n < 2**63])
    codes = _list(params, "service_code")
    statuses = _list(params, "status")
    if statuses is not None and not set(statuses) <= {"open", "closed"}:
        raise Open311Error(400, "status: use open and/or closed")
    start_raw = _one(params, "start_date")
    end_raw = _one(params, "end_date")
    start = parse_w3("start_date", start_raw) if start_raw else None
    end = parse_w3("end_date", end_raw) if end_raw else None
    if start is None and end is None:
        start, end = now - DEFAULT_SPAN, None
    elif start is None:
        assert end is not None
        start = end - DEFAULT_SPAN
    elif end is None:
        end = start + DEFAULT_SPAN
    if end is not None and start > end:
        raise Open311Error(400, "start_date must not be after end_date")
    if end is not None and end - start > DEFAULT_SPAN:
        raise Open311Error(400, "start_date to end_date may not span more than 90 days")
    return RequestFilter(service_codes=codes, statuses=statuses, start=start, end=end)


def request_json(row: ComplaintRow, zone: ZoneInfo, locale: Locale = Locale.EN) -> dict[str, Any]:
    """One service request as GET requests.json returns it: never any contact details. The
    service's texts are in ``locale``, and so are the notes Rasd writes itself (an operator's
    own note stays as written)."""
    found = service(row.service_code)
    svc = found.localised(locale) if found else None
    notes = translate(locale, row.status_notes) if row.status_notes else row.status_notes
    return {
        "service_request_id": row.complaint_id,
        "status": row.status,
        "status_notes": notes,
        "service_name": svc.name if svc else row.service_code,
        "service_code": row.service_code,
        "description": row.description or None,
        "agency_responsible": row.agency_responsible,
        "service_notice": svc.notice if svc else None,
        "requested_datetime": w3(row.requested_at, zone),
        "updated_datetime": w3(row.closed_at or row.updated_at, zone),
        "expected_datetime": w3(row.expected_at, zone),
        "address": row.address,
        "address_id": None,
        "zipcode": None,
        "lat": row.lat,
        "long": row.lon,
        "media_url": row.media_url,
    }
