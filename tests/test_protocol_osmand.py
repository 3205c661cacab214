"""OsmAnd / Traccar Client: Traccar's decoder-test requests as vectors (query and JSON forms),
refusals naming the field, and properties (no input raises; query -> parse round-trips)."""

from __future__ import annotations

import json
import math
import urllib.parse

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.contract import PositionReport
from telemetry.protocols.osmand import parse_osmand
from telemetry.protocols.reports import Position, Refusal
from telemetry.protocols.tracker_fix import HttpRequestView, TrackerFix

RECEIVED_MS = 1_800_000_000_000
JSON_HEADERS = {"content-type": "application/json"}
FORM_HEADERS = {"content-type": "application/x-www-form-urlencoded"}


def get(target: str) -> HttpRequestView:
    """A GET as the HTTP layer hands it over: the query decoded ('+' is a space)."""
    query = urllib.parse.urlsplit(target).query
    pairs = tuple(urllib.parse.parse_qsl(query, keep_blank_values=True))
    return HttpRequestView(method="GET", query=pairs, headers={}, body=b"", received_ms=RECEIVED_MS)


def post(body: bytes, headers: dict[str, str]) -> HttpRequestView:
    return HttpRequestView(
        method="POST", query=(), headers=headers, body=body, received_ms=RECEIVED_MS
    )


def only_position(result: TrackerFix | Refusal, identity: str) -> Position:
    assert isinstance(result, TrackerFix), result
    assert result.identity == identity
    assert len(result.positions) == 1
    return result.positions[0]


def refusal(result: TrackerFix | Refusal) -> Refusal:
    assert isinstance(result, Refusal), result
    return result


# Query form. Vectors: traccar/traccar src/test/java/org/traccar/protocol/
# OsmAndProtocolDecoderTest.java, testDecodeQuery (requests verbatim; expected values ours).
QUERY_VECTORS: list[tuple[str, str, Position]] = [
    (
        "/?id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z"
        "&hdop=6.0&altitude=224.0&speed=0.0",
        "902064",
        Position(ts=1453920947000, lat=42.06288, lon=-88.23412, speed_kmh=0.0),
    ),
    (
        "/?id=902064&lat=42.06288&lon=-88.23412&timestamp=1442068686579&hdop=6.0"
        "&altitude=224.0&speed=0.0",
        "902064",
        Position(ts=1442068686579, lat=42.06288, lon=-88.23412, speed_kmh=0.0),
    ),
    (
        # yyyy-MM-dd HH:mm:ss: read as UTC (Traccar uses its server's zone).
        "/?lat=49.60688&lon=6.15788&timestamp=2014-06-04+09%3A10%3A11&altitude=384.7"
        "&speed=0.0&id=353861053849681",
        "353861053849681",
        Position(ts=1401873011000, lat=49.60688, lon=6.15788, speed_kmh=0.0),
    ),
    (
        "/?id=123456&timestamp=1377177267&lat=60.0&lon=30.0&speed=0.0&bearing=0.0"
        "&altitude=0&hdop=0.0",
        "123456",
        Position(ts=1377177267000, lat=60.0, lon=30.0, speed_kmh=0.0, heading_deg=0.0),
    ),
    (
        "/?id=123456&timestamp=1377177267&lat=60.0&lon=30.0",
        "123456",
        Position(ts=1377177267000, lat=60.0, lon=30.0),
    ),
    (
        # No timestamp: the server's clock, as Traccar does.
        "/?lat=60.0&lon=30.0&speed=0.0&heading=0.0&vacc=0&hacc=0&altitude=0&deviceid=123456",
        "123456",
        Position(ts=RECEIVED_MS, lat=60.0, lon=30.0, speed_kmh=0.0, heading_deg=0.0),
    ),
    (
        "/?id=861001000719969&lat=41.666667&lon=-0.883333&altitude=350.059479"
        "&speed=0.000000&batt=87",
        "861001000719969",
        Position(ts=RECEIVED_MS, lat=41.666667, lon=-0.883333, speed_kmh=0.0),
    ),
    (
        "/?id=123456&timestamp=1377177267&location=60.0,30.0",
        "123456",
        Position(ts=1377177267000, lat=60.0, lon=30.0),
    ),
    (
        # speed=40 knots is 74.08 km/h.
        "/?id=123456789012345&timestamp=1504763810&lat=40.7232948571&lon=-74.0061408571"
        "&bearing=7.19889788244&speed=40&ignition=true&rpm=933&fuel=24",
        "123456789012345",
        Position(
            ts=1504763810000,
            lat=40.7232948571,
            lon=-74.0061408571,
            speed_kmh=40 * 1.852,
            heading_deg=7.19889788244,
        ),
    ),
]


@pytest.mark.parametrize(("target", "identity", "expected"), QUERY_VECTORS)
def test_traccar_query_vectors(target: str, identity: str, expected: Position) -> None:
    assert only_position(parse_osmand(get(target)), identity) == expected


@pytest.mark.parametrize(("target", "identity", "expected"), QUERY_VECTORS)
def test_the_same_parameters_in_a_form_body(target: str, identity: str, expected: Position) -> None:
    body = urllib.parse.urlsplit(target).query.encode()
    assert only_position(parse_osmand(post(body, FORM_HEADERS)), identity) == expected


def test_traccar_vector_without_coordinates_is_refused() -> None:
    # OsmAndProtocolDecoderTest.testDecodeQuery, 1st request: Traccar fills in the last known
    # location; Rasd stores only what the device measured.
    target = (
        "/?id=123456&timestamp=1377177267&cell=257,02,16,2224&cell=257,02,16,2223,-90"
        "&wifi=00-14-22-01-23-45,-80&wifi=00-1C-B3-09-85-15,-70"
    )
    refused = refusal(parse_osmand(get(target)))
    assert (refused.reason_code, refused.identity) == ("invalid", "123456")
    assert "lat" in refused.detail


def test_traccar_vector_without_id_is_refused() -> None:
    # OsmAndProtocolDecoderTest.testDecodeQuery, 2nd request (verifyNull there).
    refused = refusal(parse_osmand(get("/?timestamp=1377177267&lat=60.0&lon=30.0")))
    assert refused.reason_code == "invalid"
    assert refused.detail == "id (or deviceid) is missing"
    assert refused.raw == b"timestamp=1377177267&lat=60.0&lon=30.0"


def test_a_form_body_is_kept_as_the_raw_bytes() -> None:
    body = b"id=7&lat=north&lon=30"
    refused = refusal(parse_osmand(post(body, FORM_HEADERS)))
    assert (refused.raw, refused.identity) == (body, "7")


@pytest.mark.parametrize(
    ("query", "reason_code", "detail_part"),
    [
        ("id=&lat=1&lon=2", "invalid", "id is empty"),
        ("id=7&lon=2", "invalid", "lat (or location=lat,lon) is missing"),
        ("id=7&lat=1", "invalid", "lon (or location=lat,lon) is missing"),
        ("id=7&lat=abc&lon=2", "invalid", "lat 'abc' is not a decimal number"),
        ("id=7&lat=NaN&lon=2", "invalid", "lat 'NaN'"),
        ("id=7&lat=1&lon=Infinity", "invalid", "lon 'Infinity'"),
        ("id=7&lat=91&lon=2", "invalid", "lat 91.0 is outside [-90, 90]"),
        ("id=7&lat=1&lon=-180.5", "invalid", "lon -180.5 is outside [-180, 180]"),
        ("id=7&lon=2&location=60.0", "invalid", "lon (or location=lat,lon) is missing"),
        ("id=7&lat=1&lon=2&speed=fast", "invalid", "speed 'fast'"),
        ("id=7&lat=1&lon=2&speed=-3", "invalid", "speed -5.556 is negative"),
        ("id=7&lat=1&lon=2&bearing=361", "invalid", "bearing 361.0 is outside [0, 360]"),
        ("id=7&lat=1&lon=2&heading=-1", "invalid", "bearing -1.0 is outside [0, 360]"),
        ("id=7&lat=1&lon=2&accuracy=-1", "invalid", "accuracy -1.0 is negative"),
        ("id=7&lat=1&lon=2&timestamp=yesterday", "invalid", "timestamp 'yesterday'"),
        ("id=7&lat=1&lon=2&timestamp=2016-01-27T18:55:47", "invalid", "has no UTC offset"),
        ("id=7&lat=1&lon=2&timestamp=-5", "invalid", "timestamp -5000 ms is outside"),
        ("id=7&lat=1&lon=2&valid=false", "no_fix", "valid='false'"),
        ("id=7&lat=1&lon=2&valid=0", "no_fix", "the device has no fix"),
    ],
)
def test_refusals_name_the_field(query: str, reason_code: str, detail_part: str) -> None:
    refused = refusal(parse_osmand(get("/?" + query)))
    assert refused.reason_code == reason_code
    assert detail_part in refused.detail


def test_heading_360_is_north_and_valid_true_is_a_fix() -> None:
    position = only_position(parse_osmand(get("/?id=7&lat=1&lon=2&bearing=360&valid=1")), "7")
    assert position.heading_deg == 0.0
    position = only_position(parse_osmand(get("/?id=7&lat=1&lon=2&valid=TRUE")), "7")
    assert position == Position(ts=RECEIVED_MS, lat=1.0, lon=2.0)


def test_accuracy_and_the_last_of_repeated_parameters() -> None:
    position = only_position(parse_osmand(get("/?id=1&id=2&lat=1&lon=2&lat=3&accuracy=4.5")), "2")
    assert position == Position(ts=RECEIVED_MS, lat=3.0, lon=2.0, accuracy_m=4.5)


def test_a_form_body_that_is_not_utf8() -> None:
    refused = refusal(parse_osmand(post(b"id=\xff&lat=1", FORM_HEADERS)))
    assert refused.reason_code == "not_utf8"


# JSON form. Vectors: traccar/traccar src/test/java/org/traccar/protocol/
# OsmAndProtocolDecoderTest.java, testDecodeJson (bodies verbatim). coords.speed is in m/s
# (OsmAndProtocolDecoder.decodeJson: UnitsConverter.knotsFromMps; https://traccar.org/osmand);
# a negative speed or heading is the location SDK's "unknown".
JSON_VECTORS: list[tuple[str, str, Position]] = [
    (
        '{"location":{"timestamp":"2025-06-15T13:45:12.862Z","coords":{"latitude":37.4219983,'
        '"longitude":-122.084,"accuracy":5,"speed":0,"heading":-1,"altitude":5},'
        '"is_moving":false,"odometer":0,"event":"motionchange","battery":{"level":1,'
        '"is_charging":false},"activity":{"type":"still"},"extras":{},'
        '"_":"&id=48241179&lat=37.4219983&lon=-122.084&timestamp=2025-06-15T13:45:12.862Z&"},'
        '"device_id":"48241179"}',
        "48241179",
        Position(ts=1749995112862, lat=37.4219983, lon=-122.084, speed_kmh=0.0, accuracy_m=5.0),
    ),
    (
        '{"location":{"timestamp":"2025-06-15T13:45:12.862Z","coords":{"latitude":37.4219983,'
        '"longitude":-122.084,"accuracy":5,"speed":0,"heading":-1,"altitude":5},'
        '"is_moving":false,"odometer":0,"event":"motionchange","battery":{"level":1,'
        '"is_charging":false},"activity":{"type":"still"},"extras":{"device_string_test":'
        '"long_device_id","device_bool_test":true,"device_bool_false_test":false,'
        '"device_integer_test":1,"device_double_test":1.345,'
        '"device_very_long_double_test":1763636.3442},'
        '"_":"&id=48241179&lat=37.4219983&lon=-122.084&timestamp=2025-06-15T13:45:12.862Z&"},'
        '"device_id":"48241179"}',
        "48241179",
        Position(ts=1749995112862, lat=37.4219983, lon=-122.084, speed_kmh=0.0, accuracy_m=5.0),
    ),
    (
        '{"location":{"extras":{},"mock":true,"coords":{"speed_accuracy":-1,"speed":-1,'
        '"longitude":-122.406417,"ellipsoidal_altitude":0,"floor":null,"heading_accuracy":-1,'
        '"latitude":37.785834000000001,"accuracy":5,"altitude_accuracy":-1,"altitude":0,'
        '"heading":-1},"is_moving":false,"age":188,"odometer":0,'
        '"uuid":"2FB04C65-99CF-42AB-8DD3-EBCB4B108BF8","event":"motionchange",'
        '"battery":{"level":-1,"is_charging":false},"activity":{"type":"unknown",'
        '"confidence":100},"timestamp":"2025-05-09T04:11:30.579Z"},"device_id":"658765"}',
        "658765",
        Position(ts=1746763890579, lat=37.785834, lon=-122.406417, accuracy_m=5.0),
    ),
    (
        '{"location":{"event":"motionchange","is_moving":false,'
        '"uuid":"0e9a2473-a9a7-4c00-997b-fb97d2154e75","timestamp":"2021-07-21T08:06:34.444Z",'
        '"odometer":0,"coords":{"latitude":-6.1148096,"longitude":106.6837015,"accuracy":3.8,'
        '"speed":18.67,"speed_accuracy":0.26,"heading":63,"heading_accuracy":0.28,'
        '"altitude":35.7,"altitude_accuracy":3.8},"activity":{"type":"still","confidence":100},'
        '"battery":{"is_charging":false,"level":0.79},"extras":{}},"device_id":"8737767034"}',
        "8737767034",
        Position(
            ts=1626854794444,
            lat=-6.1148096,
            lon=106.6837015,
            speed_kmh=18.67 * 3.6,
            heading_deg=63.0,
            accuracy_m=3.8,
        ),
    ),
]


@pytest.mark.parametrize(("body", "identity", "expected"), JSON_VECTORS)
def test_traccar_json_vectors(body: str, identity: str, expected: Position) -> None:
    result = parse_osmand(post(body.encode(), {"content-type": "application/json; charset=utf-8"}))
    assert only_position(result, identity) == expected


def test_a_batch_of_locations() -> None:
    first, second = (json.loads(body)["location"] for body, _, _ in JSON_VECTORS[2:])
    body = json.dumps(
        {"device_id": "9", "location": [first, {"timestamp": first["timestamp"]}, second]}
    )
    result = parse_osmand(post(body.encode(), JSON_HEADERS))
    assert isinstance(result, TrackerFix)
    assert [p.ts for p in result.positions] == [1746763890579, 1626854794444]


@pytest.mark.parametrize(
    ("document", "reason_code", "detail_part", "element_index"),
    [
        ({"location": {}}, "invalid", "device_id is missing", None),
        ({"device_id": 5, "location": {}}, "invalid", "device_id must be a string", None),
        ({"device_id": "5"}, "invalid", "location is missing", None),
        ({"device_id": "5", "location": 3}, "invalid", "must be an object or an array", None),
        ({"device_id": "5", "location": {}}, "invalid", "location.timestamp is missing", None),
        (
            {"device_id": "5", "location": {"timestamp": "2025-05-09T04:11:30.579Z"}},
            "no_fix",
            "no coords",
            None,
        ),
        (
            {"device_id": "5", "location": {"timestamp": "x", "coords": {}}},
            "invalid",
            "location.timestamp 'x' is not an ISO 8601 date-time",
            None,
        ),
        (
            {"device_id": "5", "location": {"timestamp": "2025-05-09T04:11:30Z", "coords": []}},
            "invalid",
            "location.coords must be an object",
            None,
        ),
        (
            {
                "device_id": "5",
                "location": {"timestamp": "2025-05-09T04:11:30Z", "coords": {"latitude": 1}},
            },
            "invalid",
            "location.coords.longitude is missing",
            None,
        ),
        (
            {
                "device_id": "5",
                "location": {
                    "timestamp": "2025-05-09T04:11:30Z",
                    "coords": {"latitude": "1", "longitude": 2},
                },
            },
            "invalid",
            "location.coords.latitude must be a number, not str",
            None,
        ),
        (
            {
                "device_id": "5",
                "location": {
                    "timestamp": "2025-05-09T04:11:30Z",
                    "coords": {"latitude": 1, "longitude": 2, "heading": 400},
                },
            },
            "invalid",
            "location.coords.heading 400.0 is outside [0, 360]",
            None,
        ),
        ({"device_id": "5", "location": []}, "empty_batch", "empty", None),
        ({"device_id": "5", "location": [7]}, "invalid", "location[0] is not an object", 0),
    ],
)
def test_json_refusals_name_the_field(
    document: object, reason_code: str, detail_part: str, element_index: int | None
) -> None:
    body = json.dumps(document).encode()
    refused = refusal(parse_osmand(post(body, JSON_HEADERS)))
    assert (refused.reason_code, refused.element_index) == (reason_code, element_index)
    assert detail_part in refused.detail
    assert refused.raw == body


@pytest.mark.parametrize(
    ("body", "reason_code"),
    [(b"\xff{}", "not_utf8"), (b"{", "not_json"), (b"NaN", "not_json"), (b"[]", "not_object")],
)
def test_json_bodies_that_are_not_objects(body: bytes, reason_code: str) -> None:
    assert refusal(parse_osmand(post(body, JSON_HEADERS))).reason_code == reason_code


# Properties.

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
param_names = st.sampled_from(
    [
        "id",
        "deviceid",
        "lat",
        "lon",
        "location",
        "timestamp",
        "speed",
        "bearing",
        "heading",
        "accuracy",
        "valid",
        "altitude",
        "batt",
    ]
) | st.text(max_size=6)
param_values = st.text(max_size=24) | st.from_regex(r"-?\d{1,14}(\.\d{0,8})?", fullmatch=True)


def assert_contract_position(result: TrackerFix | Refusal) -> None:
    assert isinstance(result, TrackerFix | Refusal)
    if isinstance(result, TrackerFix):
        assert result.identity
        for position in result.positions:
            PositionReport.model_validate_json(msgspec.json.encode(position))


@settings(max_examples=400)
@given(
    pairs=st.lists(st.tuples(param_names, param_values), max_size=10),
    received=st.integers(0, 2**41),
)
def test_any_query_pairs_never_raise(pairs: list[tuple[str, str]], received: int) -> None:
    request = HttpRequestView(
        method="GET", query=tuple(pairs), headers={}, body=b"", received_ms=received
    )
    assert_contract_position(parse_osmand(request))


@settings(max_examples=300)
@given(body=st.binary(max_size=200), json_body=st.booleans())
def test_any_body_never_raises(body: bytes, json_body: bool) -> None:
    assert_contract_position(parse_osmand(post(body, JSON_HEADERS if json_body else {})))


location_keys = st.sampled_from(["timestamp", "coords", "is_moving", "battery"])
coords_keys = st.sampled_from(["latitude", "longitude", "speed", "heading", "accuracy"])


@settings(max_examples=300)
@given(
    device_id=json_values | st.text(min_size=1, max_size=10),
    location=st.dictionaries(location_keys, json_values, max_size=4),
    batched=st.booleans(),
    coords=st.dictionaries(coords_keys, json_values | st.floats(-400, 400), max_size=5),
    with_coords=st.booleans(),
)
def test_any_json_values_never_raise(
    device_id: object,
    location: dict[str, object],
    batched: bool,
    coords: dict[str, object],
    with_coords: bool,
) -> None:
    if with_coords:
        location = {**location, "coords": coords}
    document = {"device_id": device_id, "location": [location, location] if batched else location}
    body = json.dumps(document).encode()
    assert_contract_position(parse_osmand(post(body, JSON_HEADERS)))


@given(
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    seconds=st.integers(0, 2**31 - 2),
    knots=st.floats(0, 500),
    bearing=st.floats(0, 360, exclude_max=True),
    accuracy=st.floats(0, 10_000),
)
def test_query_round_trip(
    lat: float, lon: float, seconds: int, knots: float, bearing: float, accuracy: float
) -> None:
    query = urllib.parse.urlencode(
        {
            "id": "bus 17",
            "lat": repr(lat),
            "lon": repr(lon),
            "timestamp": seconds,
            "speed": repr(knots),
            "bearing": repr(bearing),
            "accuracy": repr(accuracy),
        }
    )
    position = only_position(parse_osmand(get("/?" + query)), "bus 17")
    assert (position.ts, position.lat, position.lon) == (seconds * 1000, lat, lon)
    assert position.speed_kmh is not None
    assert math.isclose(position.speed_kmh, knots * 1.852)
    assert (position.heading_deg, position.accuracy_m) == (bearing, accuracy)
