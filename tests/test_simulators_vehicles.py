"""Buses and trucks: routes, service hours, reporting periods, batches, defects and events."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from typing import Any

import pytest

from simulators.city import DEPOTS, LANDFILL, TRANSFER_STATION
from simulators.clock import local_seconds_of_day, parse_start
from simulators.collection import TruckKind
from simulators.engine import Engine
from simulators.messages import Message
from simulators.routes import LINES
from telemetry.decoding import Limits, MessageDecoder
from telemetry.geometry import Polyline, haversine_m
from tests.support.simulation import (
    PREFIX,
    elements,
    received_at,
    registry_of,
    run,
    small_scenario,
    ts_seconds,
)

ALL_LINES = list(LINES)
DAYTIME = "2025-12-19T10:00:00+01:00"
CLEAN = {"enabled": False}


def _records(messages: list[Message]) -> dict[str, list[dict[str, Any]]]:
    by_device: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in messages:
        by_device[message.device_id].extend(elements(message))
    for records in by_device.values():
        records.sort(key=lambda r: ts_seconds(r["ts"]))
    return by_device


def test_buses_stay_near_their_routes() -> None:
    scenario = small_scenario(
        buses={"count": 25, "lines": ALL_LINES}, trucks={"count": 0}, lights={"count": 0}
    )
    _, messages = run(scenario, start=DAYTIME, duration=3600.0)
    shapes = {name: Polyline(line.shape.points) for name, line in LINES.items()}
    checked = 0
    for message in messages:
        if message.defect and {"multipath", "null_island"} & set(message.defect.split(",")):
            continue
        body = json.loads(message.payload)
        # Médina noise is sigma 10 m per axis; drift at a stop adds up to 15 m.
        assert shapes[body["route"]].distance_m(body["lat"], body["lon"]) < 80, body
        checked += 1
    assert checked > 3000


def test_bus_reporting_periods() -> None:
    scenario = small_scenario(
        buses={"count": 25, "lines": ALL_LINES},
        trucks={"count": 0},
        lights={"count": 0},
        defects=CLEAN,
    )
    _, messages = run(scenario, start=DAYTIME, duration=3600.0)
    moving = stopped = 0
    for records in _records(messages).values():
        for before, after in itertools.pairwise(records):
            gap = ts_seconds(after["ts"]) - ts_seconds(before["ts"])
            if before["speed_kmh"] > 0:
                assert gap == 10
                moving += 1
            else:
                assert 0 < gap <= 60  # sooner when the bus pulls away
                stopped += 1
    assert moving > 5 * stopped > 0


def test_buses_keep_service_hours() -> None:
    scenario = small_scenario(
        buses={"count": 25, "lines": ALL_LINES},
        trucks={"count": 0},
        lights={"count": 0},
        defects=CLEAN,
        gps={"noise": False},
    )
    _, messages = run(scenario, start="2025-12-20T01:30:00+01:00", duration=6 * 3600.0)
    moving_hours = set()
    for message in messages:
        body = json.loads(message.payload)
        if body["speed_kmh"] > 0:
            moving_hours.add(int(local_seconds_of_day(message.at) // 3600))
    assert moving_hours, "buses never left the terminus"
    assert min(moving_hours) == 6  # nobody moves between the last trip and 06:00
    # Parked buses report hourly.
    night = [m for m in messages if local_seconds_of_day(m.at) < 5 * 3600]
    assert len(night) <= 25 * 4


def test_trucks_do_night_rounds_in_batches() -> None:
    scenario = small_scenario(
        buses={"count": 0},
        trucks={"count": 8, "shift_start": "21:00"},
        lights={"count": 0},
        defects=CLEAN,
        gps={"noise": False},
    )
    engine, messages = run(scenario, start="2025-12-19T20:00:00+01:00", duration=11 * 3600.0)
    kinds = {t.device_id: t for t in engine.devices.trucks}
    sent: dict[str, list[float]] = defaultdict(list)
    for message in messages:
        batch = json.loads(message.payload)
        assert isinstance(batch, list)
        assert 1 <= len(batch) <= 100
        assert [r["ts"] for r in batch] == sorted(r["ts"] for r in batch)
        assert all(isinstance(r["ts"], int) for r in batch)  # Teltonika-style epoch ms
        sent[message.device_id].append(message.at)
    for times in sent.values():
        assert all(b - a >= 119 for a, b in itertools.pairwise(times))
    records = _records(messages)
    reached: dict[str, set[str]] = defaultdict(set)
    for device_id, rows in records.items():
        for row in rows:
            for name, place in (("transfer", TRANSFER_STATION), ("landfill", LANDFILL)):
                if haversine_m(row["lat"], row["lon"], *place) < 300:
                    reached[device_id].add(name)
        moving = [b["ts"] - a["ts"] for a, b in itertools.pairwise(rows) if a["speed_kmh"] > 0]
        assert moving
        assert all(gap == 30_000 for gap in moving)
    for device_id, spec in kinds.items():
        if spec.kind in (TruckKind.COMPACTOR, TruckKind.SATELLITE):
            assert "transfer" in reached[device_id], device_id
        if spec.kind is TruckKind.HOOK_LIFT:
            assert "landfill" in reached[device_id], device_id
        if spec.kind is not TruckKind.WASHER:
            last = records[device_id][-1]
            assert haversine_m(last["lat"], last["lon"], *DEPOTS[spec.operator]) < 50


def test_scripted_gps_loss_silences_a_bus() -> None:
    scenario = small_scenario(defects=CLEAN, events=["+2m B-001 gps_loss 5m"])
    engine, messages = run(scenario, duration=900.0)
    times = [ts_seconds(r["ts"]) - engine.start for r in _records(messages)["B-001"]]
    assert any(t < 120 for t in times)
    assert any(t >= 420 for t in times)
    assert not any(120 <= t < 420 for t in times)


def test_scripted_comm_loss_flushes_a_truck_backlog() -> None:
    scenario = small_scenario(
        defects=CLEAN, trucks={"shift_start": "20:00"}, events=["+5m T-ARM-001 comm_loss 10m"]
    )
    engine, messages = run(scenario, duration=1800.0)
    mine = [m for m in messages if m.device_id == "T-ARM-001"]
    relative = [m.at - engine.start for m in mine]
    assert not any(300 <= t < 900 for t in relative)
    backlog = [m for m in mine if m.defect and "coverage_gap" in m.defect]
    assert backlog
    held = [ts_seconds(r["ts"]) - engine.start for m in backlog for r in elements(m)]
    assert any(300 <= t < 900 for t in held)
    assert min(m.at for m in backlog) - engine.start >= 900


@pytest.mark.parametrize(
    ("switch", "label"),
    [
        ("duplicate", "duplicate"),
        ("out_of_order", "out_of_order"),
        ("late", "late"),
        ("zero_coords", "null_island"),
        ("future_ts", "future_ts"),
        ("epoch_garbage", "epoch_garbage"),
    ],
)
def test_defect_rates_match_their_switch(switch: str, label: str) -> None:
    rates = dict.fromkeys(
        (
            "multipath",
            "multipath_medina",
            "fix_loss_medina",
            "zero_coords",
            "future_ts",
            "epoch_garbage",
            "bad_clock_devices",
            "tz_bug_devices",
            "duplicate",
            "out_of_order",
            "late",
            "coverage_gap_per_day",
        ),
        0.0,
    )
    rates[switch] = 0.1
    scenario = small_scenario(
        buses={"count": 25, "lines": ALL_LINES},
        trucks={"count": 0},
        lights={"count": 0},
        defects={**rates, "late_delay_s": [60, 120]},
    )
    _, messages = run(scenario, start=DAYTIME, duration=3600.0)
    marked = sum(1 for m in messages if m.defect == label)
    originals = len(messages) - (marked if label == "duplicate" else 0)
    share = marked / originals
    tolerance = 4 * (0.1 * 0.9 / originals) ** 0.5
    assert abs(share - 0.1) < tolerance, (share, originals)
    assert all(m.defect in (None, label) for m in messages)


def test_out_of_order_messages_really_arrive_out_of_order() -> None:
    rates = {"out_of_order": 0.1, "duplicate": 0.0, "late": 0.0, "coverage_gap_per_day": 0.0}
    scenario = small_scenario(
        buses={"count": 10, "lines": ALL_LINES},
        trucks={"count": 0},
        lights={"count": 0},
        defects=rates,
    )
    _, messages = run(scenario, start=DAYTIME, duration=1800.0)
    newest: dict[str, float] = {}
    overtaken = 0
    for message in messages:
        ts = ts_seconds(json.loads(message.payload)["ts"])
        if ts < newest.get(message.device_id, 0) and message.defect == "out_of_order":
            overtaken += 1
        newest[message.device_id] = max(ts, newest.get(message.device_id, 0))
    marked = sum(1 for m in messages if m.defect == "out_of_order")
    assert overtaken >= 0.8 * marked > 0


def test_ramadan_clock_bug_is_an_hour_ahead_and_refused() -> None:
    only_tz = {
        "tz_bug_devices": 1.0,
        "future_ts": 0.0,
        "epoch_garbage": 0.0,
        "zero_coords": 0.0,
        "late": 0.0,
        "out_of_order": 0.0,
        "duplicate": 0.0,
        "coverage_gap_per_day": 0.0,
        "bad_clock_devices": 0.0,
        "multipath": 0.0,
        "multipath_medina": 0.0,
    }
    scenario = small_scenario(trucks={"count": 0}, lights={"count": 0}, defects=only_tz)
    engine, messages = run(scenario, start="2026-03-01T20:00:00+00:00", duration=600.0)
    decoder = MessageDecoder(Limits(prefix=PREFIX))
    registry = registry_of(engine.devices)
    assert messages
    for message in messages:
        assert message.defect == "tz_bug"
        body = json.loads(message.payload)
        assert body["ts"].endswith("+00:00")  # Ramadan: Morocco is on UTC+0
        assert ts_seconds(body["ts"]) - message.at == pytest.approx(3600, abs=10)
        decoded = decoder.decode(message.topic, message.payload, received_at(message), registry)
        assert [d.reason_code for d in decoded.dead_letters] == ["ts_future"]
    _, december = run(scenario, duration=600.0)
    assert all(m.defect is None for m in december)


def test_an_endless_outage_does_not_stop_an_endless_run() -> None:
    scenario = small_scenario(events=["+1m B-001 comm_loss"], lights={"count": 0})
    engine = Engine(scenario, seed=1, start=parse_start(DAYTIME), duration=None, prefix=PREFIX)
    seen: set[str] = set()
    for message in engine.messages():
        if message.at > engine.start + 1800:
            break
        if message.at > engine.start + 120:
            seen.add(message.device_id)
    assert "B-001" not in seen
    assert {"B-002", "B-003", "B-004"} <= seen
