"""The network file of a scenario: what the services must know about the city the simulator
drives (bus line shapes, stops and headways, truck rounds), pure.

Written by ``python -m simulators network SCENARIO`` and read by ``python -m alerts routes
import FILE.json`` (format: docs/simulators.md, validated by ``alerts/routes_file.py``). It
depends on the scenario only (``layout_seed`` and fleet sections), never on the run's seed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from simulators.buses import round_trip_s
from simulators.clock import CASABLANCA
from simulators.collection import COLLECTING
from simulators.devices import CityDevices
from simulators.routes import LINE_DEFINITIONS, LINES, Line
from simulators.scenario import Scenario
from telemetry.geometry import LatLon

#: Radius around a round point within which a stopped truck counts as having collected it:
#: stationary GPS error is at most ~25 m even in the Médina (drift 15 m, noise sigma 5 m).
POINT_RADIUS_M: Final = 40.0
_DIGITS: Final = 6


@dataclass(frozen=True, slots=True)
class Stop:
    """A bus stop: named stops are shared by every line through them."""

    stop_id: str
    name: str
    lat: float
    lon: float


def slug(name: str) -> str:
    """``"Bab Doukkala"`` -> ``"bab-doukkala"``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _here(point: LatLon) -> LatLon:
    return round(point[0], _DIGITS), round(point[1], _DIGITS)


def _stops_of(line: Line, known: dict[LatLon, Stop]) -> list[str]:
    """The stop ids of ``line`` in driving order, adding its new stops to ``known``."""
    waypoints = LINE_DEFINITIONS[line.line_id][1]
    names = {line.shape.cumulative[i]: w for i, w in enumerate(waypoints) if isinstance(w, str)}
    ids: list[str] = []
    previous = line.terminus_a
    for k, distance in enumerate(line.stop_distances):
        lat, lon, _ = line.shape.at(distance)
        where = _here((lat, lon))
        stop = known.get(where)
        if stop is None:
            name = names.get(distance)
            if name is not None:
                stop = Stop(slug(name), name, *where)
            else:
                following = next(n for d, n in sorted(names.items()) if d > distance)
                stop = Stop(f"{line.line_id}-{k:02d}", f"{previous} - {following}", *where)
            known[where] = stop
        if distance in names:
            previous = names[distance]
        ids.append(stop.stop_id)
    return ids


def bus_stops() -> tuple[dict[str, Stop], dict[str, list[str]]]:
    """Every stop of every line (ids stable whichever lines a scenario runs), and each
    line's stops in driving order from ``terminus_a``."""
    known: dict[LatLon, Stop] = {}
    sequences = {line_id: _stops_of(line, known) for line_id, line in LINES.items()}
    return {s.stop_id: s for s in known.values()}, sequences


def network_file(scenario: Scenario, devices: CityDevices) -> dict[str, Any]:
    """The routes file of this scenario's city, as JSON-ready data."""
    buses: dict[str, int] = {}
    for bus in devices.buses:
        buses[bus.line_id] = bus.count
    stops, sequences = bus_stops()
    config = scenario.buses
    used = sorted({stop_id for line_id in buses for stop_id in sequences[line_id]})
    trucks = scenario.trucks
    return {
        "routes": {
            line_id: [list(_here(p)) for p in LINES[line_id].shape.points] for line_id in buses
        },
        "stops": [
            {"stop_id": s.stop_id, "name": s.name, "lat": s.lat, "lon": s.lon}
            for s in (stops[i] for i in used)
        ],
        "line_stops": {line_id: sequences[line_id] for line_id in buses},
        "schedules": [
            {
                "route": line_id,
                "start_local": config.service_start,
                "end_local": config.service_end,
                "headway_s": round(round_trip_s(LINES[line_id], config) / count),
                "timezone": CASABLANCA.key,
            }
            for line_id, count in buses.items()
        ],
        "rounds": [
            {
                "round": truck.device_id,
                "shift_start": trucks.shift_start,
                "shift_end": trucks.shift_end,
                "timezone": CASABLANCA.key,
                "points": [
                    {"lat": lat, "lon": lon, "radius_m": POINT_RADIUS_M, "label": label}
                    for (lat, lon), label in zip(
                        truck.round.points, truck.round.labels, strict=False
                    )
                ],
            }
            for truck in devices.trucks
            if truck.kind in COLLECTING and truck.round.points
        ],
    }
