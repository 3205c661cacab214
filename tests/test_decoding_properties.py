"""Property-based tests of the decoder: it never raises and accounts for every element."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.decoding import Limits, MessageDecoder
from telemetry.topics import Fleet

PREFIX = "rasd/v1"
NOW = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
REGISTRY = {"B-1": Fleet.BUS, "L-1": Fleet.LIGHT}
DECODER = MessageDecoder(Limits(prefix=PREFIX))
TOPICS = st.sampled_from(
    [
        f"{PREFIX}/bus/B-1/position",
        f"{PREFIX}/light/L-1/energy",
        f"{PREFIX}/light/L-1/fault",
        f"{PREFIX}/bus/L-1/position",
        f"{PREFIX}/x/y",
        "elsewhere/bus/B-1/position",
    ]
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)


def _total(out: object) -> int:
    return sum(len(getattr(out, f)) for f in ("positions", "energy", "faults", "dead_letters"))


@settings(max_examples=300, deadline=None)
@given(topic=TOPICS, payload=st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(topic: str, payload: bytes) -> None:
    out = DECODER.decode(topic, payload, NOW, REGISTRY)
    assert _total(out) >= 1
    for letter in out.dead_letters:
        assert letter.reason and letter.reason_code


@settings(max_examples=300, deadline=None)
@given(topic=TOPICS, document=JSON_VALUES)
def test_arbitrary_json_is_stored_or_dead_lettered(topic: str, document: object) -> None:
    out = DECODER.decode(topic, json.dumps(document).encode(), NOW, REGISTRY)
    if isinstance(document, list) and len(document) > 0 and topic == f"{PREFIX}/bus/B-1/position":
        assert _total(out) == len(document)
    else:
        assert _total(out) >= 1


positions = st.fixed_dictionaries(
    {
        "ts": st.integers(NOW_MS - 6 * 86_400_000, NOW_MS + 4 * 60_000),
        "lat": st.floats(-90, 90).filter(lambda v: v != 0),
        "lon": st.floats(-180, 180),
    },
    optional={
        "speed_kmh": st.floats(0, 200),
        "heading_deg": st.floats(0, 359.99),
        "accuracy_m": st.floats(0, 500),
        "route": st.text("A1239", min_size=1, max_size=5),
        "seq": st.integers(0, 2**63 - 1),
    },
)


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(positions, min_size=1, max_size=50))
def test_valid_positions_all_stored_with_their_values(batch: list[dict[str, object]]) -> None:
    out = DECODER.decode(f"{PREFIX}/bus/B-1/position", json.dumps(batch).encode(), NOW, REGISTRY)
    assert not out.dead_letters
    assert len(out.positions) == len(batch)
    for row, sent in zip(out.positions, batch, strict=True):
        assert row.lat == sent["lat"] and row.lon == sent["lon"]
        assert row.time == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
            milliseconds=int(str(sent["ts"]))
        )
        assert row.seq == sent.get("seq")


@settings(max_examples=200, deadline=None)
@given(offset_s=st.integers(-30 * 86_400, 30 * 86_400))
def test_time_window(offset_s: int) -> None:
    payload = json.dumps({"ts": NOW_MS + offset_s * 1000, "lat": 31.6, "lon": -8.0}).encode()
    out = DECODER.decode(f"{PREFIX}/bus/B-1/position", payload, NOW, REGISTRY)
    if offset_s > 300:
        assert [d.reason_code for d in out.dead_letters] == ["ts_future"]
    elif offset_s < -7 * 86_400:
        assert [d.reason_code for d in out.dead_letters] == ["ts_too_old"]
    else:
        assert len(out.positions) == 1
