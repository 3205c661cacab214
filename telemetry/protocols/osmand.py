"""OsmAnd / Traccar Client (Traccar's port 5055 protocol), pure: a request in, the device's
fixes or a refusal out.

Two forms, as Traccar's ``OsmAndProtocolDecoder`` reads them (traccar/traccar,
``src/main/java/org/traccar/protocol/OsmAndProtocolDecoder.java``; https://traccar.org/osmand):

- Query form (OsmAnd, older Traccar Client): parameters in the URL query, or, when the URL
  has none, in a form-encoded body. ``id`` or ``deviceid``; ``lat`` and ``lon`` or
  ``location=lat,lon``; ``timestamp`` in epoch seconds (below 2^31 - 1), epoch ms, ISO 8601
  with an offset, or ``yyyy-MM-dd HH:mm:ss`` (read as UTC: Traccar reads it in its server's
  zone, which a phone cannot know); ``speed`` in knots; ``bearing`` or ``heading`` in
  degrees; ``accuracy`` in metres; ``valid`` (``true``/``1``, anything else is no fix). Without
  ``timestamp`` the server's clock (``received_ms``) is the fix time, as in Traccar. A
  parameter given twice counts once, the last one; others (``altitude``, ``batt``, ``hdop``,
  ``cell``, ``wifi``...) are not part of contract v1 and are ignored.
- JSON form (Traccar Client 9 and later, ``Content-Type: application/json``): ``device_id``
  and ``location`` with an ISO 8601 ``timestamp`` and ``coords`` whose ``speed`` is in m/s;
  negative ``speed``, ``heading`` or ``accuracy`` mean unknown (the location SDK's -1), as
  Traccar reads them. ``location`` may also be an array (the SDK's batched upload): each
  element is a fix, elements without ``coords`` are skipped.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from telemetry.protocols.reports import Position, Refusal
from telemetry.protocols.tracker_fix import HttpRequestView, TrackerFix, identity_problem
from telemetry.protocols.units import (
    KMH_PER_KNOT,
    KMH_PER_MPS,
    BadValue,
    Unreadable,
    check_lat_lon,
    decimal_text,
    epoch_ms_in_range,
    heading_deg,
    integer_text,
    iso_to_epoch_ms,
    json_number,
    json_object,
    json_object_body,
    json_string,
    naive_utc_to_epoch_ms,
    non_negative,
    required_json_number,
)

MAX_BATCH: Final = 1000
_SECONDS_LIMIT: Final = 2**31 - 1  # Traccar: a number below Integer.MAX_VALUE is in seconds


def parse_osmand(request: HttpRequestView) -> TrackerFix | Refusal:
    """The fixes of one OsmAnd / Traccar Client request, or why it is refused."""
    content_type = request.headers.get("content-type", "").strip().lower()
    if content_type.startswith("application/json"):
        return _parse_json(request)
    if request.query:
        return _parse_params(request.query, request)
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _refuse(request, "not_utf8", f"body is not UTF-8 (byte {exc.start})")
    params = urllib.parse.parse_qsl(text, keep_blank_values=True)
    return _parse_params(tuple(params), request)


# Query form.


def _parse_params(
    params: Sequence[tuple[str, str]], request: HttpRequestView
) -> TrackerFix | Refusal:
    fields: dict[str, str] = {}
    lat_text: str | None = None
    lon_text: str | None = None
    for key, value in params:
        if key in ("id", "deviceid"):
            fields["id"] = value
        elif key == "lat":
            lat_text = value
        elif key == "lon":
            lon_text = value
        elif key == "location":
            lat_text, _, rest = value.partition(",")
            lon_text = rest.split(",", 1)[0] if rest else None
        elif key in ("bearing", "heading"):
            fields["heading"] = value
        else:
            fields[key] = value
    identity = fields.get("id")
    if identity is None:
        return _refuse(request, "invalid", "id (or deviceid) is missing")
    problem = identity_problem(identity)
    if problem is not None:
        return _refuse(request, "invalid", f"id {problem}")
    valid = fields.get("valid")
    if valid is not None and valid.strip().lower() not in ("true", "1"):
        return _refuse(request, "no_fix", f"valid={valid[:20]!r}: the device has no fix", identity)
    try:
        position = _position_from_params(fields, lat_text, lon_text, request.received_ms)
    except BadValue as exc:
        return _refuse(request, "invalid", str(exc), identity)
    return TrackerFix(identity=identity, positions=(position,))


def _position_from_params(
    fields: Mapping[str, str], lat_text: str | None, lon_text: str | None, received_ms: int
) -> Position:
    if lat_text is None:
        raise BadValue("lat (or location=lat,lon) is missing")
    if lon_text is None:
        raise BadValue("lon (or location=lat,lon) is missing")
    lat = decimal_text(lat_text, "lat")
    lon = decimal_text(lon_text, "lon")
    check_lat_lon(lat, lon)
    speed = _optional_decimal(fields, "speed")
    return Position(
        ts=_timestamp_ms(fields.get("timestamp"), received_ms),
        lat=lat,
        lon=lon,
        speed_kmh=None if speed is None else non_negative(speed * KMH_PER_KNOT, "speed"),
        heading_deg=heading_deg(_optional_decimal(fields, "heading"), "bearing"),
        accuracy_m=non_negative(_optional_decimal(fields, "accuracy"), "accuracy"),
    )


def _optional_decimal(fields: Mapping[str, str], name: str) -> float | None:
    text = fields.get(name)
    return None if text is None else decimal_text(text, name)


def _timestamp_ms(text: str | None, received_ms: int) -> int:
    if text is None:
        return received_ms
    number = integer_text(text)
    if number is not None:
        return epoch_ms_in_range(number * 1000 if number < _SECONDS_LIMIT else number, "timestamp")
    if "T" in text:
        return iso_to_epoch_ms(text.strip(), "timestamp")
    try:
        parsed = datetime.strptime(text.strip()[:40], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise BadValue(
            f"timestamp {text[:40]!r} is neither epoch seconds or ms, ISO 8601, "
            "nor yyyy-MM-dd HH:mm:ss"
        ) from None
    return naive_utc_to_epoch_ms(parsed, "timestamp")


# JSON form.


def _parse_json(request: HttpRequestView) -> TrackerFix | Refusal:
    try:
        document = json_object_body(request.body)
    except Unreadable as exc:
        return _refuse(request, exc.reason_code, exc.detail)
    try:
        identity = json_string(document, "device_id")
    except BadValue as exc:
        return _refuse(request, "invalid", str(exc))
    problem = identity_problem(identity)
    if problem is not None:
        return _refuse(request, "invalid", f"device_id {problem}")
    location = document.get("location")
    if isinstance(location, dict):
        return _single_location(request, identity, location)
    if isinstance(location, list):
        return _batched_locations(request, identity, location)
    if location is None:
        return _refuse(request, "invalid", "location is missing", identity)
    return _refuse(request, "invalid", "location must be an object or an array", identity)


def _single_location(
    request: HttpRequestView, identity: str, location: Mapping[str, Any]
) -> TrackerFix | Refusal:
    try:
        position = _json_position(location, "location.")
    except BadValue as exc:
        return _refuse(request, "invalid", str(exc), identity)
    if position is None:
        return _refuse(request, "no_fix", "location has no coords: the device has no fix", identity)
    return TrackerFix(identity=identity, positions=(position,))


def _batched_locations(
    request: HttpRequestView, identity: str, locations: list[Any]
) -> TrackerFix | Refusal:
    if not locations:
        return _refuse(request, "empty_batch", "location is an empty array", identity)
    if len(locations) > MAX_BATCH:
        return _refuse(
            request, "batch_too_large", f"location holds over {MAX_BATCH} elements", identity
        )
    positions: list[Position] = []
    for index, element in enumerate(locations):
        where = f"location[{index}]."
        try:
            if not isinstance(element, dict):
                raise BadValue(f"location[{index}] is not an object")
            position = _json_position(element, where)
        except BadValue as exc:
            return _refuse(request, "invalid", str(exc), identity, element_index=index)
        if position is not None:
            positions.append(position)
    if not positions:
        return _refuse(request, "no_fix", "no location has coords: the device has no fix", identity)
    return TrackerFix(identity=identity, positions=tuple(positions))


def _json_position(location: Mapping[str, Any], where: str) -> Position | None:
    ts = iso_to_epoch_ms(json_string(location, "timestamp", where), f"{where}timestamp")
    if location.get("coords") is None:
        return None
    coords = json_object(location, "coords", where)
    where = f"{where}coords."
    lat = required_json_number(coords, "latitude", where)
    lon = required_json_number(coords, "longitude", where)
    check_lat_lon(lat, lon, f"{where}latitude", f"{where}longitude")
    speed = json_number(coords, "speed", where)
    heading = json_number(coords, "heading", where)
    accuracy = json_number(coords, "accuracy", where)
    return Position(
        ts=ts,
        lat=lat,
        lon=lon,
        speed_kmh=speed * KMH_PER_MPS if speed is not None and speed >= 0 else None,
        heading_deg=heading_deg(heading, f"{where}heading")
        if heading is not None and heading >= 0
        else None,
        accuracy_m=accuracy if accuracy is not None and accuracy >= 0 else None,
    )


def _refuse(
    request: HttpRequestView,
    reason_code: str,
    detail: str,
    identity: str | None = None,
    element_index: int | None = None,
) -> Refusal:
    return Refusal(
        reason_code=reason_code,
        detail=detail,
        raw=request.raw,
        identity=identity,
        element_index=element_index,
    )
