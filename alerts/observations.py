"""What the rules consume: device readings as small records with float epoch times.

``ts`` is device time (the report's own timestamp), ``received`` is when it reached Rasd
(the clock silence and offline detection run on). Built from freshly decoded MQTT messages or
from stored rows during catch-up, so both paths feed the engine the same thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from telemetry.contract import parse_ts
from telemetry.decoding import DeadLetter, Decoded, EnergyRow, FaultRow, PositionRow
from telemetry.topics import Fleet

# Records, never changed once built, but not frozen: one is built per reading, and a frozen
# dataclass pays for each field in __init__ (twice the cost here). Equal and hashed by value.


@dataclass(slots=True, unsafe_hash=True)
class Position:
    """A GPS fix of a bus or truck."""

    device_id: str
    ts: float
    received: float
    lat: float
    lon: float
    speed_kmh: float | None = None
    route: str | None = None
    fleet: Fleet | None = None


@dataclass(slots=True, unsafe_hash=True)
class Energy:
    """A streetlight's meter reading and lamp state."""

    device_id: str
    ts: float
    received: float
    power_w: float | None = None
    lamp_on: bool | None = None
    dim_pct: float | None = None


@dataclass(slots=True, unsafe_hash=True)
class Fault:
    """A TALQ fault starting (``active``) or ending on a streetlight."""

    device_id: str
    ts: float
    received: float
    fault: str
    active: bool
    detail: str | None = None


@dataclass(slots=True, unsafe_hash=True)
class NullFix:
    """A (0, 0) fix: the ingestor dead-letters it, the faulty-tracker rule counts it."""

    device_id: str
    ts: float
    received: float


Observation = Position | Energy | Fault | NullFix


def _position(row: PositionRow, fleet: Fleet | None) -> Position:
    return Position(
        row.device_id,
        row.time.timestamp(),
        row.received_at.timestamp(),
        row.lat,
        row.lon,
        row.speed_kmh,
        row.route,
        fleet,
    )


def _energy(row: EnergyRow) -> Energy:
    return Energy(
        row.device_id,
        row.time.timestamp(),
        row.received_at.timestamp(),
        row.power_w,
        row.lamp_on,
        row.dim_pct,
    )


def _fault(row: FaultRow) -> Fault:
    return Fault(
        row.device_id,
        row.time.timestamp(),
        row.received_at.timestamp(),
        row.fault,
        row.active,
        row.detail,
    )


def null_fix(letter: DeadLetter) -> NullFix | None:
    """The (0, 0) fix a ``null_island`` dead letter holds, or None for any other letter."""
    if letter.reason_code != "null_island" or letter.device_id is None:
        return None
    try:
        element = json.loads(letter.payload)
        ts = parse_ts(element["ts"]).timestamp()
    except (ValueError, TypeError, KeyError):
        return None
    return NullFix(letter.device_id, ts, letter.received_at.timestamp())


def from_decoded(decoded: Decoded, fleet: Fleet | None = None) -> list[Observation]:
    """The observations of one decoded message, in device-time order (batches can be shuffled)."""
    out: list[Observation] = [_position(r, fleet) for r in decoded.positions]
    out += [_energy(r) for r in decoded.energy]
    out += [_fault(r) for r in decoded.faults]
    for letter in decoded.dead_letters:
        fix = null_fix(letter)
        if fix is not None:
            out.append(fix)
    if len(out) > 1:
        out.sort(key=_ts)
    return out


def from_row(row: PositionRow | EnergyRow | FaultRow | DeadLetter) -> Observation | None:
    """The observation of one stored row (catch-up), or None for an unusable dead letter."""
    if isinstance(row, PositionRow):
        return _position(row, None)
    if isinstance(row, EnergyRow):
        return _energy(row)
    if isinstance(row, FaultRow):
        return _fault(row)
    return null_fix(row)


def _ts(observation: Observation) -> float:
    return observation.ts


def iso(t: float) -> str:
    """A UTC epoch as compact ISO text for alert details."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
