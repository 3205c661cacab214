"""Traccar's JSON position forwarding (``forward.enable=true``, ``forward.type=json``), pure:
one forwarded position in, that device's fix or a refusal out.

Traccar POSTs its ``PositionData`` serialised by Jackson with dates as ISO 8601 text
(traccar/traccar ``src/main/java/org/traccar/forward/PositionForwarderJson.java``,
``.../forward/PositionData.java``, ``.../model/Position.java``, ``.../model/Device.java``,
``.../MainModule.java``): ``{"position": {...}, "device": {...}}``. Position fields used:
``latitude``, ``longitude`` (degrees), ``fixTime``, ``speed`` (knots), ``course`` (degrees),
``accuracy`` (metres), ``valid``; the device is known by ``device.uniqueId``. Traccar's
``accuracy`` is 0 when the tracker reported none, so 0 is left out rather than stored as a
perfect fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from telemetry.protocols.reports import Position, Refusal
from telemetry.protocols.tracker_fix import HttpRequestView, TrackerFix, identity_problem
from telemetry.protocols.units import (
    KMH_PER_KNOT,
    BadValue,
    Unreadable,
    check_lat_lon,
    heading_deg,
    iso_to_epoch_ms,
    json_number,
    json_object,
    json_object_body,
    json_string,
    non_negative,
    required_json_number,
)


def parse_traccar_forward(request: HttpRequestView) -> TrackerFix | Refusal:
    """The fix in one request of Traccar's JSON forwarding, or why it is refused."""
    raw = request.raw
    try:
        document = json_object_body(request.body)
        device = json_object(document, "device")
        identity = json_string(device, "uniqueId", "device.")
    except Unreadable as exc:
        return Refusal(reason_code=exc.reason_code, detail=exc.detail, raw=raw)
    except BadValue as exc:
        return Refusal(reason_code="invalid", detail=str(exc), raw=raw)
    problem = identity_problem(identity)
    if problem is not None:
        return Refusal(reason_code="invalid", detail=f"device.uniqueId {problem}", raw=raw)
    try:
        position = json_object(document, "position")
        valid = position.get("valid", True)
        if not isinstance(valid, bool):
            raise BadValue("position.valid must be a boolean")
        if not valid:
            return Refusal(
                reason_code="no_fix",
                detail="position.valid is false: Traccar marks the fix invalid",
                raw=raw,
                identity=identity,
            )
        fix = _position(position)
    except BadValue as exc:
        return Refusal(reason_code="invalid", detail=str(exc), raw=raw, identity=identity)
    return TrackerFix(identity=identity, positions=(fix,))


def _position(position: Mapping[str, Any]) -> Position:
    where = "position."
    lat = required_json_number(position, "latitude", where)
    lon = required_json_number(position, "longitude", where)
    check_lat_lon(lat, lon, f"{where}latitude", f"{where}longitude")
    ts = iso_to_epoch_ms(json_string(position, "fixTime", where), f"{where}fixTime")
    speed = non_negative(json_number(position, "speed", where), f"{where}speed")
    accuracy = non_negative(json_number(position, "accuracy", where), f"{where}accuracy")
    return Position(
        ts=ts,
        lat=lat,
        lon=lon,
        speed_kmh=None if speed is None else speed * KMH_PER_KNOT,
        heading_deg=heading_deg(json_number(position, "course", where), f"{where}course"),
        accuracy_m=accuracy or None,
    )
