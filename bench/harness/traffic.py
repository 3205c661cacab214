"""The city mix the MQTT benchmarks publish: positions, energy and faults, some batched."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from telemetry.registry import DeviceRecord
from telemetry.topics import Fleet

PREFIX = "bench/v1"
FILTER = f"{PREFIX}/#"


@dataclass(frozen=True)
class Traffic:
    """The generated messages and the rows they must produce."""

    messages: list[tuple[str, bytes]]
    rows: int
    devices: list[DeviceRecord]


def city_mix(count: int, seed: int = 7) -> Traffic:
    """Positions (buses 1 Hz-ish, trucks, 5 % of truck messages batched), energy, faults."""
    rng = random.Random(seed)
    buses = [f"B-{i:03d}" for i in range(250)]
    trucks = [f"T-ARM-{i:03d}" for i in range(120)]
    lights = [f"L-GUE-{i:05d}" for i in range(5000)]
    devices = (
        [DeviceRecord(device_id=d, fleet=Fleet.BUS) for d in buses]
        + [DeviceRecord(device_id=d, fleet=Fleet.TRUCK) for d in trucks]
        + [DeviceRecord(device_id=d, fleet=Fleet.LIGHT) for d in lights]
    )
    now_ms = int(datetime.now(UTC).timestamp() * 1000) - 3_600_000
    tick: dict[str, int] = {}
    messages: list[tuple[str, bytes]] = []
    rows = 0

    def next_ts(device: str) -> int:
        tick[device] = tick.get(device, 0) + 1
        return now_ms - tick[device] * 1000

    for _ in range(count):
        roll = rng.random()
        if roll < 0.60:
            bus = rng.choice(buses)
            body: object = {
                "ts": next_ts(bus),
                "lat": 31.6 + rng.random() / 20,
                "lon": -8.0 - rng.random() / 20,
                "speed_kmh": rng.uniform(0, 50),
                "heading_deg": rng.uniform(0, 359),
                "accuracy_m": 4.0,
                "route": "A",
                "seq": tick[bus],
            }
            topic = f"{PREFIX}/bus/{bus}/position"
            rows += 1
        elif roll < 0.75:
            truck = rng.choice(trucks)
            topic = f"{PREFIX}/truck/{truck}/position"
            size = 10 if rng.random() < 0.05 else 1
            fixes = [
                {
                    "ts": next_ts(truck),
                    "lat": 31.65,
                    "lon": -8.04,
                    "speed_kmh": rng.uniform(0, 40),
                    "seq": tick[truck],
                }
                for _ in range(size)
            ]
            body = fixes if size > 1 else fixes[0]
            rows += size
        elif roll < 0.99:
            light = rng.choice(lights)
            topic = f"{PREFIX}/light/{light}/energy"
            body = {
                "ts": next_ts(light),
                "energy_wh": 1000.0 + tick[light] * 15,
                "power_w": 60.0,
                "voltage_v": 229.5,
                "current_a": 0.27,
                "power_factor": 0.96,
                "lamp_on": True,
                "dim_pct": 70,
                "seq": tick[light],
            }
            rows += 1
        else:
            light = rng.choice(lights)
            topic = f"{PREFIX}/light/{light}/fault"
            body = {"ts": next_ts(light), "fault": "lampFailure", "active": rng.random() < 0.5}
            rows += 1
        messages.append((topic, json.dumps(body).encode()))
    return Traffic(messages, rows, devices)
