"""The msgspec fast path decodes exactly as the pydantic reference path: same rows, same dead
letters (codes, reasons, raw bytes, indexes), for any bytes and for near-valid reports."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.contract import FAULT_NAMES
from telemetry.decoding import Decoded, Limits, MessageDecoder
from telemetry.topics import Fleet

PREFIX = "rasd/v1"
NOW = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
REGISTRY = {"B-1": Fleet.BUS, "L-1": Fleet.LIGHT}
FAST = MessageDecoder(Limits(prefix=PREFIX, max_batch_items=20))
REFERENCE = MessageDecoder(Limits(prefix=PREFIX, max_batch_items=20), fast_path=False)
BUS = f"{PREFIX}/bus/B-1/position"
ENERGY = f"{PREFIX}/light/L-1/energy"
FAULT = f"{PREFIX}/light/L-1/fault"
TOPICS = st.sampled_from([BUS, ENERGY, FAULT, f"{PREFIX}/bus/L-1/position"])

# Values that sit on the contract's edges: wrong types, bounds, specials, big numbers.
EDGE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -0.0, 1, 1.0, 90, 90.0000001, 180, 359.999, 360, 2**63 - 1, 2**63]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "A", "12.5", "x" * 65, "lampFailure", "supplyLoss", "a\u0000"]),
    st.sampled_from(FAULT_NAMES),
    st.lists(st.integers(), max_size=2),
)
TS_VALUES = st.one_of(
    st.integers(NOW_MS - 8 * 86_400_000, NOW_MS + 600_000),
    st.sampled_from(
        [
            -1,
            0,
            253402300799999,
            253402300800000,
            True,
            1.5e12,
            str(NOW_MS),
            "2026-11-25T21:59:58+01:00",
            "2026-11-25T20:59:58Z",
            "2026-11-25T21:00:00",
            "2026-11-25 21:00:00+00:00",
            "yesterday at noon!!",
        ]
    ),
)
FIELDS = [
    "lat",
    "lon",
    "speed_kmh",
    "heading_deg",
    "accuracy_m",
    "route",
    "seq",
    "energy_wh",
    "power_w",
    "voltage_v",
    "current_a",
    "power_factor",
    "lamp_on",
    "dim_pct",
    "fault",
    "active",
    "detail",
    "extra",
]


def _report() -> st.SearchStrategy[dict[str, object]]:
    return st.builds(
        lambda ts, others: {"ts": ts, **others} if ts is not None else others,
        st.one_of(st.none(), TS_VALUES),
        st.dictionaries(st.sampled_from(FIELDS), EDGE_VALUES, max_size=8),
    )


def _plain(out: Decoded) -> tuple[object, ...]:
    return (out.positions, out.energy, out.faults, out.dead_letters, out.new_device)


@settings(max_examples=500, deadline=None)
@given(topic=TOPICS, report=_report())
def test_single_reports_decode_alike(topic: str, report: dict[str, object]) -> None:
    payload = json.dumps(report).encode()
    assert _plain(FAST.decode(topic, payload, NOW, REGISTRY)) == _plain(
        REFERENCE.decode(topic, payload, NOW, REGISTRY)
    )


@settings(max_examples=300, deadline=None)
@given(topic=TOPICS, batch=st.lists(_report(), max_size=22))
def test_batches_decode_alike(topic: str, batch: list[dict[str, object]]) -> None:
    payload = json.dumps(batch).encode()
    assert _plain(FAST.decode(topic, payload, NOW, REGISTRY)) == _plain(
        REFERENCE.decode(topic, payload, NOW, REGISTRY)
    )


@settings(max_examples=300, deadline=None)
@given(topic=TOPICS, payload=st.binary(max_size=200))
def test_arbitrary_bytes_decode_alike(topic: str, payload: bytes) -> None:
    assert _plain(FAST.decode(topic, payload, NOW, REGISTRY)) == _plain(
        REFERENCE.decode(topic, payload, NOW, REGISTRY)
    )


@settings(max_examples=200, deadline=None)
@given(
    lat=st.floats(-90, 90).filter(bool),
    lon=st.floats(-180, 180),
    ts=st.integers(NOW_MS - 6 * 86_400_000, NOW_MS),
    speed=st.floats(0, 1e300),
)
def test_valid_positions_take_the_fast_path_unchanged(
    lat: float, lon: float, ts: int, speed: float
) -> None:
    payload = json.dumps({"ts": ts, "lat": lat, "lon": lon, "speed_kmh": speed}).encode()
    fast = FAST.decode(BUS, payload, NOW, REGISTRY)
    assert _plain(fast) == _plain(REFERENCE.decode(BUS, payload, NOW, REGISTRY))
    assert len(fast.positions) == 1 and not fast.dead_letters


def test_special_payloads_decode_alike() -> None:
    good = {"ts": NOW_MS, "lat": 31.6, "lon": -8.0}
    payloads = [
        b'{"ts": 1, "lat": NaN, "lon": 1}',
        b'{"ts": %d, "lat": 31.6, "lon": -8.0, "speed_kmh": 1e400}' % NOW_MS,
        b'{"ts": %d, "lat": 31.6, "lon": -8.0, "route": "\\ud800"}' % NOW_MS,
        b'{"ts": %d, "lat": 31.6, "lon": -8.0, "lat": 1}' % NOW_MS,
        b'{"ts": %d, "lat": 31.6, "lon": -8.0} trailing' % NOW_MS,
        b' {"ts": %d, "lat": 31.6, "lon": -8.0}' % NOW_MS,
        b"\xef\xbb\xbf" + json.dumps(good).encode(),
        json.dumps([good] * 21).encode(),
        json.dumps([good, {**good, "lat": 0, "lon": 0, "satellites": 7}]).encode(),
        b"[]",
        b"[1]",
    ]
    for topic in (BUS, ENERGY):
        for payload in payloads:
            assert _plain(FAST.decode(topic, payload, NOW, REGISTRY)) == _plain(
                REFERENCE.decode(topic, payload, NOW, REGISTRY)
            ), payload
