"""OwnTracks (iOS and Android apps), pure: a message in, the device's fix, a message holding
none, or a refusal out.

Payloads as the OwnTracks booklet describes them (https://owntracks.org/booklet/tech/json/):
every message has a ``_type``; only ``location`` carries a fix: ``lat``, ``lon`` (degrees),
``tst`` (epoch seconds), and optionally ``vel`` (km/h), ``cog`` (degrees), ``acc`` (metres).
Any other ``_type`` (transition, waypoint, lwt, card, status...) is answered and not stored,
except ``encrypted``: its fix cannot be read without the app's key, so it is refused rather
than dropped unseen.

Identity (the registry ``external_id``) is ``USER/DEVICE``: in MQTT mode from the topic
``owntracks/USER/DEVICE[/...]``; in HTTP mode from the ``X-Limit-U`` and ``X-Limit-D``
headers the apps send, the Basic-auth user name standing in for a missing ``X-Limit-U``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final

from telemetry.protocols.reports import Position, Refusal
from telemetry.protocols.tracker_fix import (
    HttpRequestView,
    NotStored,
    TrackerFix,
    identity_problem,
)
from telemetry.protocols.units import (
    BadValue,
    Unreadable,
    check_lat_lon,
    epoch_ms_in_range,
    heading_deg,
    json_number,
    json_object_body,
    non_negative,
    required_json_number,
)

TOPIC_ROOT: Final = "owntracks"
MAX_KIND_CHARS: Final = 64

Result = TrackerFix | NotStored | Refusal


def parse_owntracks_http(request: HttpRequestView) -> Result:
    """One OwnTracks HTTP-mode POST: its fix, a message without one, or why it is refused."""
    raw = request.raw
    try:
        document = json_object_body(request.body)
    except Unreadable as exc:
        return Refusal(reason_code=exc.reason_code, detail=exc.detail, raw=raw)
    try:
        identity = http_identity(request.headers)
    except BadValue as exc:
        return Refusal(reason_code="invalid", detail=str(exc), raw=raw)
    return _from_message(document, identity, raw)


def parse_owntracks_mqtt(topic: str, payload: bytes) -> Result:
    """One OwnTracks MQTT message: its fix, a message without one, or why it is refused."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != TOPIC_ROOT or not parts[1] or not parts[2]:
        return Refusal(
            reason_code="unknown_topic",
            detail=f"topic {topic[:100]!r} is not {TOPIC_ROOT}/USER/DEVICE",
            raw=payload,
        )
    identity = f"{parts[1]}/{parts[2]}"
    problem = identity_problem(identity)
    if problem is not None:
        return Refusal(reason_code="invalid", detail=f"USER/DEVICE {problem}", raw=payload)
    if not payload:
        # A zero-length publish is how a retained OwnTracks message is cleared.
        return NotStored(identity=identity, kind="empty")
    try:
        document = json_object_body(payload)
    except Unreadable as exc:
        return Refusal(
            reason_code=exc.reason_code, detail=exc.detail, raw=payload, identity=identity
        )
    return _from_message(document, identity, payload)


def http_identity(headers: Mapping[str, str]) -> str:
    """``USER/DEVICE`` from an HTTP-mode request's headers; BadValue says why there is none."""
    device = headers.get("x-limit-d", "").strip()
    user = headers.get("x-limit-u", "").strip() or _basic_auth_user(headers)
    if not user:
        raise BadValue("no user: neither an X-Limit-U header nor a Basic-auth user name")
    if not device:
        raise BadValue("no device: the X-Limit-D header is missing or empty")
    if "/" in user or "/" in device:
        raise BadValue("the user and device names must not hold '/'")
    identity = f"{user}/{device}"
    problem = identity_problem(identity)
    if problem is not None:
        raise BadValue(f"USER/DEVICE {problem}")
    return identity


def _basic_auth_user(headers: Mapping[str, str]) -> str:
    scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ""
    return decoded.partition(":")[0].strip()


def _from_message(document: Mapping[str, Any], identity: str, raw: bytes) -> Result:
    kind = document.get("_type")
    if not isinstance(kind, str) or not kind:
        detail = "_type is missing" if kind is None else "_type must be a non-empty string"
        return Refusal(reason_code="invalid", detail=detail, raw=raw, identity=identity)
    if kind == "encrypted":
        return Refusal(
            reason_code="encrypted",
            detail="the payload is encrypted with the app's key; Rasd cannot read its fix",
            raw=raw,
            identity=identity,
        )
    if kind != "location":
        return NotStored(identity=identity, kind=kind[:MAX_KIND_CHARS])
    try:
        position = _location(document)
    except BadValue as exc:
        return Refusal(reason_code="invalid", detail=str(exc), raw=raw, identity=identity)
    return TrackerFix(identity=identity, positions=(position,))


def _location(document: Mapping[str, Any]) -> Position:
    lat = required_json_number(document, "lat")
    lon = required_json_number(document, "lon")
    check_lat_lon(lat, lon)
    return Position(
        ts=_tst_ms(document.get("tst")),
        lat=lat,
        lon=lon,
        speed_kmh=non_negative(json_number(document, "vel"), "vel"),
        heading_deg=heading_deg(json_number(document, "cog"), "cog"),
        accuracy_m=non_negative(json_number(document, "acc"), "acc"),
    )


def _tst_ms(tst: object) -> int:
    if tst is None:
        raise BadValue("tst is missing")
    if isinstance(tst, bool) or not isinstance(tst, int | float):
        raise BadValue(f"tst must be a number of epoch seconds, not {type(tst).__name__}")
    if isinstance(tst, float) and not abs(tst) < 1e15:  # also NaN; keeps int() finite
        raise BadValue(f"tst {tst} is out of range")
    ms = tst * 1000 if isinstance(tst, int) else round(tst * 1000)
    return epoch_ms_in_range(int(ms), "tst")
