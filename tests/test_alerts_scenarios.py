"""Scenario tests with the simulators' scripted events: exactly the expected alerts, no more.

The simulator's messages are decoded as the services decode them and fed to the engine with
their simulated send time as receipt time; effects go to the real database through the
real store. A second run crashes mid-scenario, misses a stretch of traffic that only the
"ingestor" stored, restarts through ``alerts.catchup`` and gets the very same alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from alerts.catalog import Catalog
from alerts.catchup import rebuild
from alerts.config import AlertsConfig, load_thresholds
from alerts.engine import Engine
from alerts.observations import from_decoded
from alerts.partition import Partition
from alerts.store import apply
from simulators.clock import parse_start
from simulators.devices import build_devices, registry_records
from simulators.engine import Engine as SimEngine
from simulators.messages import Message
from simulators.routes import LINES
from simulators.scenario import Scenario
from telemetry.decoding import Limits, MessageDecoder
from telemetry.settings import Settings
from telemetry.storage.assets import assets_changed_since, route_shapes, upsert_route_shapes
from telemetry.storage.devices import upsert_devices
from telemetry.storage.readings import Batch, ReadingStore
from telemetry.topics import parse_topic
from tests.support.database import open_db

PREFIX = "rasd/v1"
BUS_LINES = ["A", "11", "19"]
START = "2025-12-19T19:00:00+01:00"  # after dusk, buses in service, trucks at their depots
DURATION = 2 * 3600.0
EVENTS = [
    "+5m L-MED-00014 lampFailure",
    "+10m C-002 supply_loss 20m",
    "+15m L-GUE-00009 lampUnexpectedOn 30m",
    "+20m L-ANN-00007 comm_loss 70m",
    "+25m B-002 gps_loss 15m",
    "+30m T-ARM-001 comm_loss 20m",
    "+35m L-SYB-00006 cabinetDoorOpen 2m",
    "+40m L-MEN-00001 supply_loss 5m",
    "+50m L-GUE-00029 relayFailure 1m",
    "+53m L-GUE-00029 relayFailure 1m",
]


def scenario() -> Scenario:
    """A small quiet city: no random faults, no defects; only the scripted events happen."""
    return Scenario.model_validate(
        {
            "name": "alerts-test",
            "buses": {"count": 4, "lines": BUS_LINES},
            "trucks": {"count": 3},
            "lights": {"count": 200, "fault_rate_multiplier": 0.0},
            "defects": {"enabled": False},
            "events": EVENTS,
        }
    )


@dataclass(frozen=True)
class Outcome:
    """One alert as the scenario's verdict sees it."""

    kind: str
    asset_key: str
    opened: float
    resolved: float | None
    devices: int = 1
    flaps: int = 0


def _alerts(conn: psycopg.Connection) -> set[Outcome]:
    assert route_shapes(conn), "the route rule must be armed in these scenarios"
    rows = conn.execute(
        "SELECT kind, asset_key, opened_at, resolved_at, device_count, flap_count FROM alerts"
    ).fetchall()
    return {
        Outcome(
            r[0], r[1], r[2].timestamp(), None if r[3] is None else r[3].timestamp(), r[4], r[5]
        )
        for r in rows
    }


class Driver:
    """Feeds simulator messages through decoding, the engine and the store."""

    def __init__(self, settings: Settings, messages: list[Message], *, ingest: bool) -> None:
        self.conn = open_db(settings)
        self.read = open_db(settings)
        self.messages = messages
        self.decoder = MessageDecoder(Limits(prefix=PREFIX, max_age=timedelta(days=3650)))
        self.config = AlertsConfig()
        records = registry_records(build_devices(scenario()), scenario())
        upsert_devices(self.conn, records)
        # The lines' real shapes: buses following them must never look off route.
        upsert_route_shapes(self.conn, {line: LINES[line].shape.points for line in BUS_LINES})
        self.fleets = {r.device_id: r.fleet for r in records}
        self.readings = ReadingStore(self.conn) if ingest else None
        self.engine = self.fresh_engine()

    def fresh_engine(self) -> Engine:
        assets, _ = assets_changed_since(self.conn, None)
        return Engine(load_thresholds(), Catalog(assets))

    def close(self) -> None:
        self.conn.close()
        self.read.close()

    def decode(self, message: Message) -> Any:
        received = datetime.fromtimestamp(message.at, UTC)
        return self.decoder.decode(message.topic, message.payload, received, self.fleets)

    def store_readings(self, messages: list[Message]) -> None:
        """What the ingestor stores for these messages."""
        assert self.readings is not None
        batch = Batch()
        for message in messages:
            batch.add(self.decode(message))
        self.readings.write(batch)

    def feed(self, messages: list[Message]) -> None:
        """The alerts worker's live path: tick, observe, commit effects with the checkpoint."""
        for message in messages:
            fleet = parse_topic(message.topic, PREFIX).fleet
            self.engine.tick(message.at)
            self.engine.observe_all(from_decoded(self.decode(message), fleet))
            self.commit()
        self.commit(always=True)

    def commit(self, *, always: bool = False) -> None:
        effects = self.engine.take()
        if effects or always:
            apply(self.conn, effects, worker=self.config.worker, checkpoint=self.engine.now)

    def finish(self, at: float) -> set[Outcome]:
        self.engine.tick(at)
        self.commit(always=True)
        return _alerts(self.conn)


@pytest.fixture(scope="module")
def run() -> tuple[float, list[Message]]:
    """The simulated scenario: start time and every message in send order."""
    start = parse_start(START)
    sim = SimEngine(scenario(), seed=3, start=start, duration=DURATION, prefix=PREFIX)
    return start, list(sim.messages())


def _last_before(messages: list[Message], device: str, t: float) -> float:
    return max(m.at for m in messages if m.device_id == device and m.at < t)


def _first_after(messages: list[Message], device: str, t: float) -> float:
    return min(m.at for m in messages if m.device_id == device and m.at >= t)


def expected(start: float, messages: list[Message]) -> set[Outcome]:
    """The alerts the scripted events must produce, and nothing else."""
    m = 60.0
    circuit = build_devices(scenario()).lights
    c002 = sum(1 for c in circuit.circuit.tolist() if circuit.circuit_ids[c] == "C-002")
    silent_from = _last_before(messages, "L-ANN-00007", start + 20 * m) + 2700
    bus_last = _last_before(messages, "B-002", start + 25 * m)
    bus_back = _first_after(messages, "B-002", start + 26 * m)
    return {
        Outcome("lampFailure", "L-MED-00014", start + 5 * m, None),
        Outcome("circuit_outage", "circuit:C-002", start + 10 * m, start + 30 * m, devices=c002),
        Outcome("lampUnexpectedOn", "L-GUE-00009", start + 15 * m, start + 45 * m),
        Outcome("communicationFailure", "L-ANN-00007", start + 20 * m, start + 90 * m),
        Outcome("silent_light", "L-ANN-00007", silent_from, start + 90 * m),
        Outcome("vehicle_offline", "B-002", bus_last + 600, bus_back),
        Outcome("cabinetDoorOpen", "L-SYB-00006", start + 35 * m, start + 37 * m),
        Outcome("supplyLoss", "L-MEN-00001", start + 40 * m, start + 45 * m),
        Outcome("relayFailure", "L-GUE-00029", start + 50 * m, start + 54 * m, flaps=1),
    }


@pytest.fixture
def driver(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Driver]]:
    """Factory of drivers on fresh schemas, closed at teardown."""
    made: list[Driver] = []

    def make(messages: list[Message], *, ingest: bool = False) -> Driver:
        d = Driver(make_settings(), messages, ingest=ingest)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def test_scripted_events_yield_exactly_the_expected_alerts(
    run: tuple[float, list[Message]], driver: Callable[..., Driver]
) -> None:
    start, messages = run
    d = driver(messages)
    d.feed(messages)
    got = d.finish(start + DURATION)
    assert got == expected(start, messages)


def test_restart_mid_scenario_gives_the_same_alerts(
    run: tuple[float, list[Message]], driver: Callable[..., Driver]
) -> None:
    start, messages = run
    crash = start + 28 * 60  # mid circuit outage, mid bus gap, mid light silence
    back = start + 52 * 60  # after the single supply loss and the first relay blip
    before = [m for m in messages if m.at < crash]
    down = [m for m in messages if crash <= m.at < back]
    after = [m for m in messages if m.at >= back]
    d = driver(messages, ingest=True)
    d.store_readings(before)
    d.feed(before[:-1])
    # Crash: the last message was received but its effects never committed (nor acked).
    d.store_readings(down)  # the ingestor kept storing while the alerts worker was down
    d.engine = d.fresh_engine()
    report = rebuild(d.read, d.conn, d.engine, partition=Partition(), config=d.config, now=back - 1)
    assert report.restored >= 3
    assert report.replayed > len(down)
    # The broker redelivers what was never acked (here: from the crash on), then live traffic.
    d.store_readings(after)
    d.feed(before[-1:] + down + after)
    got = d.finish(start + DURATION)
    assert got == expected(start, messages)


def test_catch_up_does_not_call_devices_silent_past_what_was_stored(
    run: tuple[float, list[Message]], driver: Callable[..., Driver]
) -> None:
    # Ingestor and alerts both down for two hours: the traffic of that time is still queued in
    # the broker, so the stored readings end early. Catch-up must not judge silence past them.
    start, messages = run
    first_hour = [m for m in messages if m.at < start + 3600]
    d = driver(messages, ingest=True)
    d.store_readings(first_hour)
    report = rebuild(
        d.read, d.conn, d.engine, partition=Partition(), config=d.config, now=start + 3 * 3600
    )
    assert report.newest is not None
    assert report.newest < start + 3600
    silent = [o for o in _alerts(d.conn) if o.kind in ("silent_light", "vehicle_offline")]
    # The bus that really lost its fixes within the stored hour, and nothing judged later.
    assert ("vehicle_offline", "B-002") in {(o.kind, o.asset_key) for o in silent}
    assert all(o.opened <= report.newest for o in silent)
    assert len(silent) <= 2
