"""Traccar's JSON position forwarding: payloads shaped as Traccar serialises its
PositionData, refusals naming the field, and properties (no input raises; round-trips)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.contract import PositionReport
from telemetry.protocols.reports import Position, Refusal
from telemetry.protocols.traccar_forward import parse_traccar_forward
from telemetry.protocols.tracker_fix import HttpRequestView, TrackerFix


def post(body: bytes) -> HttpRequestView:
    return HttpRequestView(
        method="POST",
        query=(),
        headers={"content-type": "application/json"},
        body=body,
        received_ms=1_800_000_000_000,
    )


def refusal(result: TrackerFix | Refusal) -> Refusal:
    assert isinstance(result, Refusal), result
    return result


# A forwarded position with every field Traccar serialises: the getters of traccar/traccar
# src/main/java/org/traccar/model/Position.java (and Message, ExtendedModel) and
# .../model/Device.java, wrapped as .../forward/PositionData.java; dates as Jackson writes
# java.util.Date with WRITE_DATES_AS_TIMESTAMPS off (.../MainModule.java). Values ours.
FULL: dict[str, Any] = {
    "position": {
        "id": 1042,
        "attributes": {"sat": 9, "ignition": True, "distance": 12.5, "motion": True},
        "deviceId": 17,
        "protocol": "teltonika",
        "serverTime": "2026-11-25T20:04:06.120+00:00",
        "deviceTime": "2026-11-25T20:04:05.000+00:00",
        "fixTime": "2026-11-25T20:04:05.000+00:00",
        "valid": True,
        "latitude": 31.63096,
        "longitude": -8.01726,
        "altitude": 466.0,
        "speed": 9.449,
        "course": 92.0,
        "address": None,
        "accuracy": 4.1,
        "network": None,
        "geofenceIds": None,
    },
    "device": {
        "id": 17,
        "attributes": {},
        "groupId": 0,
        "calendarId": 0,
        "name": "Truck ARM-003",
        "uniqueId": "356307042441013",
        "status": "online",
        "lastUpdate": "2026-11-25T20:04:06.120+00:00",
        "positionId": 1041,
        "phone": None,
        "model": None,
        "contact": None,
        "category": "truck",
        "disabled": False,
        "expirationTime": None,
    },
}

# The position of the geofenceEnter event forwarded by Traccar in Jan-Piet Mens, "Position
# and event forwarding from Traccar" (https://jpmens.net/2018/09/14/position-and-event-
# forwarding-from-traccar/), as printed there ("slightly shortened": no valid, speed, course);
# its device object is cut off on that page, so ours holds just id and uniqueId.
JPMENS: dict[str, Any] = {
    "position": {
        "id": 18336,
        "attributes": {"t": "i", "ignition": True, "distance": 449672.22},
        "deviceId": 7,
        "protocol": "owntracks",
        "deviceTime": "2018-09-14T15:34:17.000+0000",
        "fixTime": "2018-09-14T15:34:17.000+0000",
        "latitude": 49.0156556,
        "longitude": 8.3975169,
        "network": None,
    },
    "device": {"id": 7, "uniqueId": "jpm-phone"},
}


def test_a_full_forwarded_position() -> None:
    result = parse_traccar_forward(post(json.dumps(FULL).encode()))
    assert result == TrackerFix(
        identity="356307042441013",
        positions=(
            Position(
                ts=1795637045000,
                lat=31.63096,
                lon=-8.01726,
                speed_kmh=9.449 * 1.852,
                heading_deg=92.0,
                accuracy_m=4.1,
            ),
        ),
    )


def test_the_jpmens_position_with_a_plus_0000_offset() -> None:
    result = parse_traccar_forward(post(json.dumps(JPMENS).encode()))
    assert result == TrackerFix(
        identity="jpm-phone",
        positions=(Position(ts=1536939257000, lat=49.0156556, lon=8.3975169),),
    )


def with_position(**changes: Any) -> dict[str, Any]:
    return {**FULL, "position": {**FULL["position"], **changes}}


def test_zero_accuracy_is_traccar_unknown_and_course_360_is_north() -> None:
    result = parse_traccar_forward(post(json.dumps(with_position(accuracy=0, course=360)).encode()))
    assert isinstance(result, TrackerFix)
    assert (result.positions[0].accuracy_m, result.positions[0].heading_deg) == (None, 0.0)


def test_an_invalid_fix_is_refused() -> None:
    body = json.dumps(with_position(valid=False)).encode()
    refused = refusal(parse_traccar_forward(post(body)))
    assert (refused.reason_code, refused.identity, refused.raw) == (
        "no_fix",
        "356307042441013",
        body,
    )


@pytest.mark.parametrize(
    ("document", "reason_code", "detail_part"),
    [
        ({"position": FULL["position"]}, "invalid", "device is missing"),
        ({**FULL, "device": {"id": 17}}, "invalid", "device.uniqueId is missing"),
        ({**FULL, "device": {"uniqueId": 17}}, "invalid", "device.uniqueId must be a string"),
        ({**FULL, "device": {"uniqueId": ""}}, "invalid", "device.uniqueId is empty"),
        ({"device": FULL["device"]}, "invalid", "position is missing"),
        (with_position(valid="yes"), "invalid", "position.valid must be a boolean"),
        (with_position(latitude=None), "invalid", "position.latitude is missing"),
        (with_position(longitude="8"), "invalid", "position.longitude must be a number"),
        (with_position(latitude=-91), "invalid", "position.latitude -91.0 is outside"),
        (with_position(fixTime=None), "invalid", "position.fixTime is missing"),
        (with_position(fixTime=1795637045000), "invalid", "position.fixTime must be a string"),
        (with_position(fixTime="2026-11-25T20:04:05"), "invalid", "has no UTC offset"),
        (with_position(speed=-1), "invalid", "position.speed -1.0 is negative"),
        (with_position(course=400), "invalid", "position.course 400.0 is outside [0, 360]"),
        (with_position(accuracy=-3), "invalid", "position.accuracy -3.0 is negative"),
    ],
)
def test_refusals_name_the_field(document: object, reason_code: str, detail_part: str) -> None:
    refused = refusal(parse_traccar_forward(post(json.dumps(document).encode())))
    assert refused.reason_code == reason_code
    assert detail_part in refused.detail


@pytest.mark.parametrize(
    ("body", "reason_code"),
    [(b"\xc3", "not_utf8"), (b"", "not_json"), (b"Infinity", "not_json"), (b'"x"', "not_object")],
)
def test_bodies_that_are_not_objects(body: bytes, reason_code: str) -> None:
    assert refusal(parse_traccar_forward(post(body))).reason_code == reason_code


# Properties.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
position_keys = st.sampled_from(
    ["latitude", "longitude", "fixTime", "speed", "course", "accuracy", "valid"]
)


def assert_result(result: TrackerFix | Refusal) -> None:
    assert isinstance(result, TrackerFix | Refusal)
    if isinstance(result, TrackerFix):
        PositionReport.model_validate_json(msgspec.json.encode(result.positions[0]))


@settings(max_examples=300)
@given(body=st.binary(max_size=200))
def test_any_body_never_raises(body: bytes) -> None:
    assert_result(parse_traccar_forward(post(body)))


@settings(max_examples=400)
@given(
    position=st.dictionaries(position_keys, json_values | st.floats(-400, 400), max_size=7),
    device=json_values | st.fixed_dictionaries({"uniqueId": json_values}),
    top=json_values,
)
def test_any_json_values_never_raise(
    position: dict[str, object], device: object, top: object
) -> None:
    body = json.dumps({"position": position, "device": device, "event": top}).encode()
    assert_result(parse_traccar_forward(post(body)))


@given(
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    moment=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
    ),
    knots=st.floats(0, 500),
    course=st.floats(0, 360, exclude_max=True),
    accuracy=st.floats(0.001, 10_000),
)
def test_round_trip(
    lat: float, lon: float, moment: datetime, knots: float, course: float, accuracy: float
) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    fix_time = moment.isoformat(timespec="milliseconds")
    body = json.dumps(
        with_position(
            latitude=lat,
            longitude=lon,
            fixTime=fix_time,
            speed=knots,
            course=course,
            accuracy=accuracy,
        )
    ).encode()
    result = parse_traccar_forward(post(body))
    assert isinstance(result, TrackerFix)
    position = result.positions[0]
    epoch_ms = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // datetime.resolution // 1000
    assert (position.ts, position.lat, position.lon) == (epoch_ms, lat, lon)
    assert position.speed_kmh is not None
    assert math.isclose(position.speed_kmh, knots * 1.852)
    assert (position.heading_deg, position.accuracy_m) == (course, accuracy)
