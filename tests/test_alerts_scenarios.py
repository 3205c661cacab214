"""Scenario tests with the simulators' scripted events: exactly the expected alerts, no more.

The simulator's messages are decoded as the services decode them and fed to the engine with
their simulated send time as receipt time; effects go to the real database through the
real store. A second run crashes mid-scenario, misses a stretch of traffic that only the
"ingestor" stored, restarts through ``alerts.catchup`` and gets the very same alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from alerts.catchup import rebuild
from alerts.partition import Partition
from simulators.clock import parse_start
from simulators.devices import build_devices
from simulators.engine import Engine as SimEngine
from simulators.messages import Message
from simulators.scenario import Scenario
from telemetry.settings import Settings
from tests.support.alerts import SIM_PREFIX as PREFIX
from tests.support.alerts import Outcome, ScenarioDriver, stored_alerts

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
def driver(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., ScenarioDriver]]:
    """Factory of drivers on fresh schemas, closed at teardown."""
    made: list[ScenarioDriver] = []

    def make(*, ingest: bool = False) -> ScenarioDriver:
        d = ScenarioDriver(make_settings(), scenario(), ingest=ingest)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


def test_scripted_events_yield_exactly_the_expected_alerts(
    run: tuple[float, list[Message]], driver: Callable[..., ScenarioDriver]
) -> None:
    start, messages = run
    d = driver()
    d.feed(messages)
    got = d.finish(start + DURATION)
    assert got == expected(start, messages)


def test_restart_mid_scenario_gives_the_same_alerts(
    run: tuple[float, list[Message]], driver: Callable[..., ScenarioDriver]
) -> None:
    start, messages = run
    d = driver(ingest=True)
    report = d.feed_with_restart(
        messages,
        crash=start + 28 * 60,  # mid circuit outage, mid bus gap, mid light silence
        back=start + 52 * 60,  # after the single supply loss and the first relay blip
    )
    assert report.restored >= 3
    assert report.replayed > 0
    got = d.finish(start + DURATION)
    assert got == expected(start, messages)


def test_catch_up_does_not_call_devices_silent_past_what_was_stored(
    run: tuple[float, list[Message]], driver: Callable[..., ScenarioDriver]
) -> None:
    # Ingestor and alerts both down for two hours: the traffic of that time is still queued in
    # the broker, so the stored readings end early. Catch-up must not judge silence past them.
    start, messages = run
    first_hour = [m for m in messages if m.at < start + 3600]
    d = driver(ingest=True)
    d.store_readings(first_hour)
    report = rebuild(
        d.read, d.conn, d.engine, partition=Partition(), config=d.config, now=start + 3 * 3600
    )
    assert report.newest is not None
    assert report.newest < start + 3600
    silent = [o for o in stored_alerts(d.conn) if o.kind in ("silent_light", "vehicle_offline")]
    # The bus that really lost its fixes within the stored hour, and nothing judged later.
    assert ("vehicle_offline", "B-002") in {(o.kind, o.asset_key) for o in silent}
    assert all(o.opened <= report.newest for o in silent)
    assert len(silent) <= 2
