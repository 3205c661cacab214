"""OwnTracks over MQTT and HTTP: Traccar's decoder-test payloads and the booklet's message
types as vectors, identity from the topic or headers, refusals, and properties (no input
raises; a location -> parse round-trips)."""

from __future__ import annotations

import base64
import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.contract import PositionReport
from telemetry.protocols.owntracks import parse_owntracks_http, parse_owntracks_mqtt
from telemetry.protocols.reports import Position, Refusal
from telemetry.protocols.tracker_fix import HttpRequestView, NotStored, TrackerFix

Result = TrackerFix | NotStored | Refusal
HEADERS = {"x-limit-u": "jane", "x-limit-d": "phone", "content-type": "application/json"}


def post(body: bytes, headers: dict[str, str] | None = None) -> HttpRequestView:
    return HttpRequestView(
        method="POST",
        query=(),
        headers=HEADERS if headers is None else headers,
        body=body,
        received_ms=1_800_000_000_000,
    )


def only_position(result: Result, identity: str) -> Position:
    assert isinstance(result, TrackerFix), result
    assert result.identity == identity
    assert len(result.positions) == 1
    return result.positions[0]


def refusal(result: Result) -> Refusal:
    assert isinstance(result, Refusal), result
    return result


# traccar/traccar src/test/java/org/traccar/protocol/OwnTracksProtocolDecoderTest.java
# (payloads verbatim; expected values ours: vel is km/h, cog degrees, acc metres).
TRACCAR_VECTORS: list[tuple[str, Position]] = [
    (
        '{"_type":"location","acc":15,"alt":440,"batt":46,"conn":"w","lat":46.0681247,'
        '"lon":11.1512805,"t":"u","tid":"5t","tst":1551874878,"vac":2,"vel":0}',
        Position(ts=1551874878000, lat=46.0681247, lon=11.1512805, speed_kmh=0.0, accuracy_m=15.0),
    ),
    (
        '{"lon":2.29513,"lat":48.85833,"tst":1497349316,"_type":"location","tid":"JJ"}',
        Position(ts=1497349316000, lat=48.85833, lon=2.29513),
    ),
    (
        '{"cog":271,"lon":2.29513,"acc":5,"vel":61,"vac":21,"lat":48.85833,"tst":1497349316,'
        '"alt":167,"_type":"location","tid":"JJ","t":"u","batt":67}',
        Position(
            ts=1497349316000,
            lat=48.85833,
            lon=2.29513,
            speed_kmh=61.0,
            heading_deg=271.0,
            accuracy_m=5.0,
        ),
    ),
    (
        '{"lat":48.85,"lon":2.295,"_type":"location","tid":"JJ","tst":1497476456}',
        Position(ts=1497476456000, lat=48.85, lon=2.295),
    ),
    (
        '{"lon":-122,"acc":5,"created_at":1736161415,"lat":37,'
        '"topic":"owntracks/ckrey/22A67880-15C3-41A6-9157-25545C7993AC","t":"u","m":1,'
        '"tst":1736161169,"conn":"w","alt":0,"_type":"location","tid":"AC"}',
        Position(ts=1736161169000, lat=37.0, lon=-122.0, accuracy_m=5.0),
    ),
    (
        '{"topic":"owntracks/qtripp/865284041968706","lat":47.420051,"lon":13.654704,"vel":0,'
        '"cog":113,"tst":1736519167,"mcc":232,"mnc":1,"lac":"4F4D","cid":"673A",'
        '"_type":"location","acc":10,"alt":1113,"t":"I","don":105,"tid":"CS"}',
        Position(
            ts=1736519167000,
            lat=47.420051,
            lon=13.654704,
            speed_kmh=0.0,
            heading_deg=113.0,
            accuracy_m=10.0,
        ),
    ),
]


@pytest.mark.parametrize(("body", "expected"), TRACCAR_VECTORS)
def test_traccar_vectors_over_http(body: str, expected: Position) -> None:
    assert only_position(parse_owntracks_http(post(body.encode())), "jane/phone") == expected


@pytest.mark.parametrize(("body", "expected"), TRACCAR_VECTORS)
def test_traccar_vectors_over_mqtt(body: str, expected: Position) -> None:
    # The last two vectors carry their MQTT topic (as the OwnTracks Recorder keeps it).
    topic = json.loads(body).get("topic", "owntracks/jane/phone")
    identity = topic.removeprefix("owntracks/")
    assert only_position(parse_owntracks_mqtt(topic, body.encode()), identity) == expected


# The booklet's message types (https://owntracks.org/booklet/tech/json/, "Types"): all but
# location hold no fix to store. The transition is the booklet poster's example
# (https://owntracks.org/booklet/images/OwnTracksPosterA1.pdf), its typographic quotes made
# plain JSON ones.
BOOKLET_TRANSITION = (
    b'{"_type": "transition", "wtst": 1425042603, "lat": 12.34, "lon": 44.5, '
    b'"tst": 1427634603, "acc": 130, "tid": "JP", "event": "enter", '
    b'"desc": "my Indian restaurant", "t": "b"}'
)


def test_a_transition_is_not_stored() -> None:
    result = parse_owntracks_mqtt("owntracks/jane/phone/event", BOOKLET_TRANSITION)
    assert result == NotStored(identity="jane/phone", kind="transition")
    result = parse_owntracks_http(post(BOOKLET_TRANSITION))
    assert result == NotStored(identity="jane/phone", kind="transition")


@pytest.mark.parametrize(
    "kind",
    [
        "beacon",
        "card",
        "cmd",
        "configuration",
        "lwt",
        "request",
        "status",
        "steps",
        "waypoint",
        "waypoints",
    ],
)
def test_other_types_are_not_stored(kind: str) -> None:
    body = json.dumps({"_type": kind, "tst": 1427634603}).encode()
    assert parse_owntracks_mqtt("owntracks/jane/phone", body) == NotStored(
        identity="jane/phone", kind=kind
    )


def test_an_encrypted_payload_is_refused_not_dropped() -> None:
    body = b'{"_type":"encrypted","data":"c2VjcmV0"}'
    refused = refusal(parse_owntracks_mqtt("owntracks/jane/phone", body))
    assert (refused.reason_code, refused.identity, refused.raw) == ("encrypted", "jane/phone", body)


def test_an_empty_mqtt_payload_clears_a_retained_message() -> None:
    assert parse_owntracks_mqtt("owntracks/jane/phone", b"") == NotStored(
        identity="jane/phone", kind="empty"
    )


LOCATION = b'{"_type":"location","lat":31.63,"lon":-8.01,"tst":1795640645}'


@pytest.mark.parametrize(
    ("headers", "identity"),
    [
        ({"x-limit-u": "jane", "x-limit-d": "phone"}, "jane/phone"),
        (
            {
                "authorization": "Basic " + base64.b64encode(b"truck7:s3cret").decode(),
                "x-limit-d": "cab",
            },
            "truck7/cab",
        ),
        (
            {
                "x-limit-u": "jane",
                "authorization": "Basic " + base64.b64encode(b"other:pw").decode(),
                "x-limit-d": "phone",
            },
            "jane/phone",
        ),
    ],
)
def test_http_identity(headers: dict[str, str], identity: str) -> None:
    only_position(parse_owntracks_http(post(LOCATION, headers)), identity)


@pytest.mark.parametrize(
    ("headers", "detail_part"),
    [
        ({}, "no user"),
        ({"x-limit-d": "phone"}, "no user"),
        ({"x-limit-d": "phone", "authorization": "Basic !!!"}, "no user"),
        ({"x-limit-d": "phone", "authorization": "Bearer abc"}, "no user"),
        ({"x-limit-u": "jane"}, "no device"),
        ({"x-limit-u": "jane", "x-limit-d": "a/b"}, "must not hold '/'"),
        ({"x-limit-u": "jane", "x-limit-d": "ph\x00one"}, "control characters"),
    ],
)
def test_http_without_identity_is_refused(headers: dict[str, str], detail_part: str) -> None:
    refused = refusal(parse_owntracks_http(post(LOCATION, headers)))
    assert (refused.reason_code, refused.raw) == ("invalid", LOCATION)
    assert detail_part in refused.detail


@pytest.mark.parametrize(
    "topic", ["owntracks/jane", "owntracks//phone", "other/jane/phone", "owntracks/jane/", ""]
)
def test_mqtt_topics_that_name_no_device(topic: str) -> None:
    refused = refusal(parse_owntracks_mqtt(topic, LOCATION))
    assert refused.reason_code == "unknown_topic"


@pytest.mark.parametrize(
    ("body", "reason_code", "detail_part"),
    [
        (b"\xfe", "not_utf8", "not UTF-8"),
        (b"{oops", "not_json", "not JSON"),
        (b"[]", "not_object", "not an object"),
        (b"{}", "invalid", "_type is missing"),
        (b'{"_type":3}', "invalid", "_type must be a non-empty string"),
        (b'{"_type":"location","lon":1,"tst":1}', "invalid", "lat is missing"),
        (b'{"_type":"location","lat":1,"lon":1}', "invalid", "tst is missing"),
        (b'{"_type":"location","lat":1,"lon":1,"tst":"1"}', "invalid", "tst must be a number"),
        (b'{"_type":"location","lat":1,"lon":1,"tst":-1}', "invalid", "tst -1000 ms is outside"),
        (b'{"_type":"location","lat":1,"lon":1,"tst":1e300}', "invalid", "is out of range"),
        (b'{"_type":"location","lat":95,"lon":1,"tst":1}', "invalid", "lat 95.0 is outside"),
        (b'{"_type":"location","lat":1,"lon":1,"tst":1,"cog":-1}', "invalid", "cog -1.0"),
        (b'{"_type":"location","lat":1,"lon":1,"tst":1,"vel":-2}', "invalid", "vel -2.0"),
        (b'{"_type":"location","lat":1,"lon":1,"tst":1,"acc":true}', "invalid", "acc must be"),
    ],
)
def test_refusals_name_the_field(body: bytes, reason_code: str, detail_part: str) -> None:
    refused = refusal(parse_owntracks_mqtt("owntracks/jane/phone", body))
    assert (refused.reason_code, refused.raw) == (reason_code, body)
    assert detail_part in refused.detail
    assert refused.identity == "jane/phone"


def test_cog_360_is_north() -> None:
    body = b'{"_type":"location","lat":1,"lon":1,"tst":1,"cog":360}'
    assert only_position(parse_owntracks_mqtt("owntracks/a/b", body), "a/b").heading_deg == 0.0


# Properties.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(["_type", "lat", "lon", "tst", "vel", "cog", "acc", "tid"])


def assert_result(result: Result) -> None:
    assert isinstance(result, TrackerFix | NotStored | Refusal)
    if isinstance(result, TrackerFix):
        assert len(result.positions) == 1
        PositionReport.model_validate_json(msgspec.json.encode(result.positions[0]))


@settings(max_examples=300)
@given(topic=st.text(max_size=30), payload=st.binary(max_size=200))
def test_any_mqtt_message_never_raises(topic: str, payload: bytes) -> None:
    assert_result(parse_owntracks_mqtt(topic, payload))


@settings(max_examples=300)
@given(
    headers=st.dictionaries(
        st.sampled_from(["x-limit-u", "x-limit-d", "authorization"]), st.text(max_size=20)
    ),
    body=st.binary(max_size=200),
)
def test_any_http_request_never_raises(headers: dict[str, str], body: bytes) -> None:
    assert_result(parse_owntracks_http(post(body, headers)))


@settings(max_examples=400)
@given(
    document=st.dictionaries(keys, json_values | st.floats(-400, 400), max_size=8),
    located=st.booleans(),
)
def test_any_json_values_never_raise(document: dict[str, object], located: bool) -> None:
    if located:
        document = {**document, "_type": "location"}
    assert_result(parse_owntracks_mqtt("owntracks/jane/phone", json.dumps(document).encode()))


@given(
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    tst=st.integers(0, 2**33),
    vel=st.integers(0, 300),
    cog=st.integers(0, 359),
    acc=st.integers(0, 5000),
)
def test_location_round_trip(
    lat: float, lon: float, tst: int, vel: int, cog: int, acc: int
) -> None:
    body = msgspec.json.encode(
        {
            "_type": "location",
            "lat": lat,
            "lon": lon,
            "tst": tst,
            "vel": vel,
            "cog": cog,
            "acc": acc,
            "tid": "JP",
        }
    )
    position = only_position(parse_owntracks_mqtt("owntracks/jane/phone", body), "jane/phone")
    assert position == Position(
        ts=tst * 1000, lat=lat, lon=lon, speed_kmh=vel, heading_deg=cog, accuracy_m=acc
    )
