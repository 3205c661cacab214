"""Helpers shared by the simulator tests: small scenarios, runs and decoding outcomes."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from simulators.clock import parse_start
from simulators.devices import CityDevices
from simulators.engine import Engine
from simulators.messages import Message
from simulators.scenario import Scenario
from telemetry.decoding import Limits, MessageDecoder
from telemetry.topics import Fleet

PREFIX = "rasd/v1"
DECEMBER_NIGHT = "2025-12-19T20:55:00+01:00"


def small_scenario(**sections: Any) -> Scenario:
    """A few devices of each fleet; ``sections`` override whole sections or top-level keys."""
    base: dict[str, Any] = {
        "name": "test",
        "buses": {"count": 4, "lines": ["A", "11", "19"]},
        "trucks": {"count": 3, "shift_start": "20:30"},
        "lights": {"count": 120},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return Scenario.model_validate(base)


def run(
    scenario: Scenario,
    *,
    seed: int = 1,
    start: str = DECEMBER_NIGHT,
    duration: float = 900.0,
    prefix: str = PREFIX,
) -> tuple[Engine, list[Message]]:
    """Build an engine and collect every message of the run."""
    engine = Engine(scenario, seed=seed, start=parse_start(start), duration=duration, prefix=prefix)
    return engine, list(engine.messages())


def registry_of(devices: CityDevices) -> dict[str, Fleet]:
    """device id -> fleet, as the ingestor's registry would hold them."""
    fleets = {b.device_id: Fleet.BUS for b in devices.buses}
    fleets.update({t.device_id: Fleet.TRUCK for t in devices.trucks})
    fleets.update(dict.fromkeys(devices.lights.ids, Fleet.LIGHT))
    return fleets


def elements(message: Message) -> list[dict[str, Any]]:
    """The report objects of a message (one, or a batch)."""
    body = json.loads(message.payload)
    return body if isinstance(body, list) else [body]


def channel(message: Message) -> str:
    """``position``, ``energy`` or ``fault``."""
    return message.topic.rsplit("/", 1)[1]


def ts_seconds(value: Any) -> float:
    """A payload ``ts`` as UTC epoch seconds."""
    if isinstance(value, int):
        return value / 1000
    return datetime.fromisoformat(value).timestamp()


@dataclass
class Outcome:
    """What the ingestor would store for a stream of messages (primary keys de-duplicate)."""

    positions: set[tuple[str, float]] = field(default_factory=set)
    energy: set[tuple[str, float]] = field(default_factory=set)
    faults: set[tuple[str, float, str]] = field(default_factory=set)
    dead_letters: set[tuple[str, bytes, int | None]] = field(default_factory=set)

    def counts(self) -> dict[str, int]:
        """Row counts per table."""
        return {
            "vehicle_positions": len(self.positions),
            "light_energy": len(self.energy),
            "light_faults": len(self.faults),
            "dead_letters": len(self.dead_letters),
        }


def decode_outcome(
    messages: Iterable[tuple[str, bytes, datetime]], prefix: str, registry: dict[str, Fleet]
) -> Outcome:
    """Decode (topic, payload, received_at) triples as the ingestor does."""
    decoder = MessageDecoder(Limits(prefix=prefix))
    out = Outcome()
    for topic, payload, received in messages:
        decoded = decoder.decode(topic, payload, received, registry)
        out.positions.update((r.device_id, r.time.timestamp()) for r in decoded.positions)
        out.energy.update((r.device_id, r.time.timestamp()) for r in decoded.energy)
        out.faults.update((r.device_id, r.time.timestamp(), r.fault) for r in decoded.faults)
        out.dead_letters.update((d.topic, d.payload, d.element_index) for d in decoded.dead_letters)
    return out


def received_at(message: Message) -> datetime:
    """The server clock when a message is published at its simulated send time."""
    return datetime.fromtimestamp(message.at, UTC)
