"""Every simulated payload satisfies device contract v1, except the defects injected on
purpose, which the decoder refuses exactly as many times as the simulator says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulators.gps_defects import (
    CLOCK_SKEW,
    COVERAGE_GAP,
    DUPLICATE,
    EPOCH_GARBAGE,
    FUTURE_TS,
    LATE,
    MULTIPATH,
    NULL_ISLAND,
    OUT_OF_ORDER,
    REJECTED,
    TZ_BUG,
)
from telemetry.contract import REPORT_MODEL
from telemetry.decoding import Limits, MessageDecoder
from telemetry.topics import Channel
from tests.support.simulation import (
    PREFIX,
    elements,
    received_at,
    registry_of,
    run,
    small_scenario,
)

KNOWN_LABELS = {
    MULTIPATH,
    NULL_ISLAND,
    FUTURE_TS,
    EPOCH_GARBAGE,
    TZ_BUG,
    CLOCK_SKEW,
    DUPLICATE,
    OUT_OF_ORDER,
    LATE,
    COVERAGE_GAP,
}
NOISY = {
    "zero_coords": 0.02,
    "future_ts": 0.02,
    "epoch_garbage": 0.01,
    "bad_clock_devices": 0.3,
    "tz_bug_devices": 0.5,
    "duplicate": 0.05,
    "out_of_order": 0.05,
    "late": 0.02,
    "late_delay_s": [300.0, 900.0],
    "coverage_gap_per_day": 20.0,
    "coverage_gap_s": [60.0, 300.0],
}
# Any hour of 2025-2026, which includes two Ramadans (UTC+0) and the switches around them.
starts = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2026, 12, 31),
    timezones=st.just(UTC),
).map(lambda d: d.replace(second=0, microsecond=0).isoformat())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32), start=starts)
def test_every_message_is_valid_or_a_marked_defect(seed: int, start: str) -> None:
    scenario = small_scenario(defects=NOISY, lights={"count": 80, "fault_rate_multiplier": 3000.0})
    engine, messages = run(scenario, seed=seed, start=start, duration=1200.0)
    registry = registry_of(engine.devices)
    decoder = MessageDecoder(Limits(prefix=PREFIX))
    assert messages
    for message in messages:
        labels = set(message.defect.split(",")) if message.defect else set()
        assert labels <= KNOWN_LABELS, message
        decoded = decoder.decode(message.topic, message.payload, received_at(message), registry)
        assert len(decoded.dead_letters) == message.rejects, (message, decoded.dead_letters)
        if message.rejects:
            assert labels & REJECTED, message
        stored = len(decoded.positions) + len(decoded.energy) + len(decoded.faults)
        assert stored + message.rejects == len(elements(message))
        if message.defect is None:
            model = REPORT_MODEL[Channel(message.topic.rsplit("/", 1)[1])]
            for element in elements(message):
                model.model_validate(element)


def test_defects_switched_off_leave_clean_traffic() -> None:
    scenario = small_scenario(defects={**NOISY, "enabled": False})
    engine, messages = run(scenario, duration=1800.0)
    assert messages
    assert all(m.defect is None and m.rejects == 0 for m in messages)
    decoder = MessageDecoder(Limits(prefix=PREFIX))
    registry = registry_of(engine.devices)
    for message in messages:
        assert not decoder.decode(
            message.topic, message.payload, received_at(message), registry
        ).dead_letters


def test_timestamps_are_never_ahead_of_sending_except_injected() -> None:
    scenario = small_scenario(defects=NOISY)
    _, messages = run(scenario, seed=3, duration=1800.0)
    limit = timedelta(minutes=5)
    for message in messages:
        if message.rejects:
            continue
        sent = received_at(message)
        for element in elements(message):
            ts = element["ts"]
            when = (
                datetime.fromtimestamp(ts / 1000, UTC)
                if isinstance(ts, int)
                else datetime.fromisoformat(ts)
            )
            assert when <= sent + limit, message


def test_the_ramadan_clock_change_mid_run() -> None:
    """Morocco moves to UTC+0 at 03:00 on 2026-02-15: devices follow, nothing breaks."""
    scenario = small_scenario(defects={"enabled": False}, trucks={"count": 0})
    engine, messages = run(scenario, start="2026-02-15T01:30:00+01:00", duration=3 * 3600.0)
    decoder = MessageDecoder(Limits(prefix=PREFIX))
    registry = registry_of(engine.devices)
    offsets = set()
    for message in messages:
        decoded = decoder.decode(message.topic, message.payload, received_at(message), registry)
        assert not decoded.dead_letters
        for element in elements(message):
            if message.topic.endswith("/position"):
                offsets.add(element["ts"][-6:])
    assert offsets == {"+01:00", "+00:00"}
