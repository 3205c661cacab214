"""The device contract v1, one rejection rule at a time (pure: no services)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from telemetry.decoding import Decoded, Limits, MessageDecoder
from telemetry.errors import Rejection
from telemetry.topics import Channel, Fleet, Topic, parse_topic, topic_name

PREFIX = "rasd/v1"
NOW = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
REGISTRY = {"B-001": Fleet.BUS, "T-ARM-001": Fleet.TRUCK, "L-MED-00042": Fleet.LIGHT}
BUS = f"{PREFIX}/bus/B-001/position"
TRUCK = f"{PREFIX}/truck/T-ARM-001/position"
ENERGY = f"{PREFIX}/light/L-MED-00042/energy"
FAULT = f"{PREFIX}/light/L-MED-00042/fault"


def decode(
    topic: str,
    payload: object,
    *,
    auto_register: bool = False,
    registry: dict[str, Fleet] | None = None,
) -> Decoded:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    decoder = MessageDecoder(Limits(prefix=PREFIX, auto_register=auto_register))
    return decoder.decode(topic, raw, NOW, REGISTRY if registry is None else registry)


def codes(decoded: Decoded) -> list[str]:
    return [d.reason_code for d in decoded.dead_letters]


def test_position_full() -> None:
    out = decode(
        BUS,
        {
            "ts": "2026-11-25T21:59:58+01:00",
            "lat": 31.62583,
            "lon": -7.98944,
            "speed_kmh": 18.5,
            "heading_deg": 359.9,
            "accuracy_m": 4.2,
            "route": "A",
            "seq": 17,
        },
    )
    assert not out.dead_letters
    (row,) = out.positions
    assert row.device_id == "B-001"
    assert row.time == datetime(2026, 11, 25, 20, 59, 58, tzinfo=UTC)
    assert (row.lat, row.lon, row.speed_kmh, row.heading_deg, row.route, row.seq) == (
        31.62583,
        -7.98944,
        18.5,
        359.9,
        "A",
        17,
    )
    assert row.received_at == NOW


def test_truck_position_minimal_with_epoch_ms() -> None:
    out = decode(TRUCK, {"ts": NOW_MS - 1500, "lat": 31.7, "lon": -8.07})
    assert out.positions[0].time == NOW - timedelta(milliseconds=1500)
    assert out.positions[0].speed_kmh is None


def test_energy_and_fault() -> None:
    energy = decode(
        ENERGY,
        {
            "ts": NOW_MS,
            "energy_wh": 1234.5,
            "power_w": 60.2,
            "voltage_v": 229,
            "current_a": 0.27,
            "power_factor": 0.96,
            "lamp_on": True,
            "dim_pct": 70,
            "seq": 3,
        },
    )
    assert energy.energy[0].energy_wh == 1234.5 and energy.energy[0].lamp_on is True
    fault = decode(FAULT, {"ts": NOW_MS, "fault": "supplyLoss", "active": True, "detail": "C-112"})
    assert fault.faults[0].fault == "supplyLoss" and fault.faults[0].active is True


def test_batch_judges_each_element_alone() -> None:
    good = {"ts": NOW_MS, "lat": 31.6, "lon": -8.0}
    out = decode(
        BUS,
        [
            good,
            {"ts": NOW_MS + 1, "lat": 0, "lon": 0},
            {**good, "ts": NOW_MS + 2},
            {"ts": NOW_MS + 3, "lat": 95, "lon": 1},
        ],
    )
    assert len(out.positions) == 2
    assert [(d.reason_code, d.element_index) for d in out.dead_letters] == [
        ("null_island", 1),
        ("invalid", 3),
    ]
    assert json.loads(out.dead_letters[0].payload) == {"ts": NOW_MS + 1, "lat": 0, "lon": 0}


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        (BUS, b"\xff\xfe{}", "not_utf8"),
        (BUS, b"{not json", "not_json"),
        (BUS, b'{"ts": 1, "lat": NaN, "lon": 1}', "not_json"),
        (BUS, b'{"ts": 1, "lat": Infinity, "lon": 1}', "not_json"),
        (BUS, b"[]", "empty_batch"),
        (BUS, b'"hello"', "not_object"),
        (BUS, b"[1]", "not_object"),
        (BUS, {"lat": 31.6, "lon": -8.0}, "invalid"),
        (BUS, {"ts": NOW_MS, "lat": "31.6", "lon": -8.0}, "invalid"),
        (BUS, {"ts": 1.5e12, "lat": 31.6, "lon": -8.0}, "invalid"),
        (BUS, {"ts": "2026-11-25T21:00:00", "lat": 31.6, "lon": -8.0}, "invalid"),
        (BUS, {"ts": "yesterday at noon!!", "lat": 31.6, "lon": -8.0}, "invalid"),
        (BUS, {"ts": True, "lat": 31.6, "lon": -8.0}, "invalid"),
        (BUS, {"ts": NOW_MS, "lat": 90.5, "lon": -8.0}, "invalid"),
        (BUS, {"ts": NOW_MS, "lat": 31.6, "lon": -180.5}, "invalid"),
        (BUS, {"ts": NOW_MS, "lat": 31.6, "lon": -8.0, "speed_kmh": -1}, "invalid"),
        (BUS, {"ts": NOW_MS, "lat": 31.6, "lon": -8.0, "heading_deg": 360}, "invalid"),
        (BUS, {"ts": NOW_MS, "lat": 31.6, "lon": -8.0, "seq": -1}, "invalid"),
        (BUS, {"ts": NOW_MS, "lat": 31.6, "lon": -8.0, "seq": 2**63}, "invalid"),
        (BUS, {"ts": NOW_MS, "lat": 31.6, "lon": -8.0, "route": ""}, "invalid"),
        (BUS, {"ts": NOW_MS, "lat": 0, "lon": 0}, "null_island"),
        (BUS, {"ts": NOW_MS + 5 * 60_000 + 1, "lat": 31.6, "lon": -8.0}, "ts_future"),
        (BUS, {"ts": NOW_MS - 7 * 86_400_000 - 1, "lat": 31.6, "lon": -8.0}, "ts_too_old"),
        (ENERGY, {"ts": NOW_MS}, "invalid"),
        (ENERGY, {"ts": NOW_MS, "energy_wh": -1}, "invalid"),
        (ENERGY, {"ts": NOW_MS, "energy_wh": 1, "power_factor": 1.01}, "invalid"),
        (ENERGY, {"ts": NOW_MS, "energy_wh": 1, "dim_pct": 101}, "invalid"),
        (ENERGY, {"ts": NOW_MS, "energy_wh": 1, "lamp_on": "yes"}, "invalid"),
        (FAULT, {"ts": NOW_MS, "fault": "lampExploded", "active": True}, "invalid"),
        (FAULT, {"ts": NOW_MS, "fault": "lampFailure"}, "invalid"),
        (FAULT, {"ts": NOW_MS, "fault": "lampFailure", "active": 1}, "invalid"),
        (f"{PREFIX}/bus/B-001", {"ts": NOW_MS}, "unknown_topic"),
        (f"{PREFIX}/tram/B-001/position", {"ts": NOW_MS}, "unknown_topic"),
        (f"{PREFIX}/bus/B-001/energy", {"ts": NOW_MS}, "unknown_topic"),
        (f"{PREFIX}/bus/B 001/position", {"ts": NOW_MS}, "unknown_topic"),
        (f"{PREFIX}/bus/{'x' * 65}/position", {"ts": NOW_MS}, "unknown_topic"),
        ("other/v1/bus/B-001/position", {"ts": NOW_MS}, "unknown_topic"),
        (
            f"{PREFIX}/bus/B-999/position",
            {"ts": NOW_MS, "lat": 31.6, "lon": -8.0},
            "unknown_device",
        ),
        (
            f"{PREFIX}/truck/B-001/position",
            {"ts": NOW_MS, "lat": 31.6, "lon": -8.0},
            "fleet_mismatch",
        ),
    ],
)
def test_rejections(topic: str, payload: object, code: str) -> None:
    out = decode(topic, payload)
    assert codes(out) == [code]
    assert not (out.positions or out.energy or out.faults)
    letter = out.dead_letters[0]
    assert letter.reason.startswith(code + ": ") and len(letter.reason) > len(code) + 5
    assert letter.topic == topic


def test_payload_over_64_kib_is_refused_whole() -> None:
    element = {"ts": NOW_MS, "lat": 31.6, "lon": -8.0, "route": "x" * 60}
    payload = json.dumps([element] * 1000).encode()
    assert len(payload) > 64 * 1024
    out = decode(BUS, payload)
    assert codes(out) == ["too_large"] and out.dead_letters[0].payload == payload


def test_batch_of_more_than_1000_is_refused() -> None:
    payload = json.dumps([{"ts": NOW_MS + i, "lat": 1, "lon": 1} for i in range(1001)]).encode()
    out = decode(BUS, payload, registry=REGISTRY)
    assert codes(out) in (["batch_too_large"], ["too_large"])


def test_auto_register_names_the_topics_fleet() -> None:
    out = decode(
        f"{PREFIX}/truck/T-NEW-9/position",
        {"ts": NOW_MS, "lat": 31.7, "lon": -8.0},
        auto_register=True,
    )
    assert out.new_device == ("T-NEW-9", Fleet.TRUCK) and len(out.positions) == 1
    mismatch = decode(
        f"{PREFIX}/truck/B-001/position", {"ts": NOW_MS, "lat": 1, "lon": 1}, auto_register=True
    )
    assert codes(mismatch) == ["fleet_mismatch"]


def test_unknown_fields_are_ignored() -> None:
    out = decode(BUS, {"ts": NOW_MS, "lat": 31.6, "lon": -8.0, "satellites": 9})
    assert len(out.positions) == 1


def test_topic_round_trip() -> None:
    name = topic_name(PREFIX, Fleet.LIGHT, "L-1", Channel.FAULT)
    assert parse_topic(name, PREFIX) == Topic(Fleet.LIGHT, "L-1", Channel.FAULT)
    with pytest.raises(Rejection):
        parse_topic(f"{PREFIX}/light/L-1/position", PREFIX)
