"""Same scenario and seed -> the same messages, byte for byte; another seed -> others."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulators.clock import parse_start
from simulators.engine import Engine
from simulators.messages import Message
from simulators.scenario import load_scenario
from tests.support.simulation import run, small_scenario

ROOT = Path(__file__).resolve().parents[1]


def _wire(messages: list[Message]) -> list[tuple[float, str, bytes]]:
    return [(m.at, m.topic, m.payload) for m in messages]


def _where(message: Message) -> tuple[str, float, float]:
    body = json.loads(message.payload)
    return message.device_id, body["lat"], body["lon"]


def test_same_seed_same_bytes() -> None:
    scenario = small_scenario(lights={"fault_rate_multiplier": 2000.0})
    _, first = run(scenario, seed=42, duration=1800.0)
    _, second = run(scenario, seed=42, duration=1800.0)
    assert _wire(first) == _wire(second)
    assert [m.defect for m in first] == [m.defect for m in second]


def test_other_seed_other_messages() -> None:
    scenario = small_scenario()
    _, first = run(scenario, seed=1)
    _, second = run(scenario, seed=2)
    assert _wire(first) != _wire(second)


def test_defect_switch_does_not_move_vehicles() -> None:
    """Movement has its own random stream: turning defects off keeps the routes driven."""
    noisy = small_scenario(gps={"noise": False}, trucks={"count": 0}, lights={"count": 0})
    clean = small_scenario(
        gps={"noise": False}, trucks={"count": 0}, lights={"count": 0}, defects={"enabled": False}
    )
    _, a = run(noisy, seed=5, duration=600.0)
    _, b = run(clean, seed=5, duration=600.0)
    route_a = {_where(m) for m in a if m.defect is None or m.defect == "clock_skew"}
    route_b = {_where(m) for m in b}
    assert route_a
    assert route_a <= route_b


def test_cli_stdout_is_reproducible() -> None:
    command = [
        sys.executable,
        "-m",
        "simulators",
        "run",
        "smoke",
        "--fast",
        "--stdout",
        "--duration",
        "5m",
        "--seed",
        "11",
    ]
    outputs = [
        subprocess.run(command, cwd=ROOT, capture_output=True, check=True, timeout=120).stdout
        for _ in range(2)
    ]
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b"\n") > 100


@pytest.mark.slow
def test_ten_times_the_city_runs_in_one_process() -> None:
    scenario = load_scenario("city").model_copy(update={"scale": 10.0})
    engine = Engine(
        scenario, seed=1, start=parse_start(scenario.start), duration=60.0, prefix="rasd/v1"
    )
    assert len(engine.devices.lights) == 720_000
    assert len(engine.vehicles) == 3_700
    fleets = {m.topic.split("/")[2] for m in engine.messages()}
    assert fleets == {"bus", "truck", "light"}
