"""Vehicle movement as a timeline of legs: driving along a path, or standing still."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

from simulators.paths import TravelPath
from telemetry.geometry import haversine_m


@dataclass(slots=True)
class Leg:
    """From ``t0`` to ``t1``: drive ``path`` from ``d0`` to ``d1`` m, or stand at (lat, lon)."""

    t0: float
    t1: float
    path: TravelPath | None
    d0: float
    d1: float
    lat: float
    lon: float
    parked: bool = False  # ignition off (out of service), not just stopped


def drive(t0: float, path: TravelPath, d0: float, d1: float, speed_kmh: float) -> Leg:
    """A leg driving ``path`` from ``d0`` to ``d1`` at a constant speed."""
    seconds = abs(d1 - d0) / (speed_kmh / 3.6)
    return Leg(t0, t0 + seconds, path, d0, d1, 0.0, 0.0)


def drive_to(
    t0: float, origin: tuple[float, float], target: tuple[float, float], speed_kmh: float
) -> Leg:
    """A straight leg between two points (trucks between collection points)."""
    if haversine_m(*origin, *target) < 1.0:
        return stay(t0, 1.0, *target)
    path = TravelPath([origin, target])
    return drive(t0, path, 0.0, path.length, speed_kmh)


def stay(t0: float, seconds: float, lat: float, lon: float, *, parked: bool = False) -> Leg:
    """A leg standing still."""
    return Leg(t0, t0 + seconds, None, 0.0, 0.0, lat, lon, parked)


class State(NamedTuple):
    """Where a vehicle truly is at one instant."""

    lat: float
    lon: float
    speed_kmh: float
    heading_deg: float
    moving: bool
    parked: bool
    leg_end: float


class Itinerary:
    """Legs in time order, extended on demand by a planner that appends more legs."""

    __slots__ = ("_heading", "_legs", "_planner")

    def __init__(self, planner: Callable[[], list[Leg]]) -> None:
        self._legs: deque[Leg] = deque()
        self._planner = planner
        self._heading = 0.0

    def hold(self, at: float, seconds: float) -> None:
        """Stand still from ``at`` for ``seconds`` where the vehicle is then; everything
        planned after ``at`` happens ``seconds`` later."""
        legs = self._legs
        while not legs or legs[-1].t1 <= at:
            legs.extend(self._planner())
        held: deque[Leg] = deque()
        for leg in legs:
            if leg.t1 <= at:
                held.append(leg)
            elif leg.t0 >= at:
                held.append(replace(leg, t0=leg.t0 + seconds, t1=leg.t1 + seconds))
            elif leg.path is None:
                held.append(replace(leg, t1=leg.t1 + seconds))
            else:
                head, tail = _split(leg, at)
                lat, lon, _ = leg.path.at(head.d1)
                held.append(head)
                held.append(stay(at, seconds, lat, lon))
                held.append(replace(tail, t0=at + seconds, t1=leg.t1 + seconds))
        self._legs = held

    def race(self, at: float, seconds: float, speed_kmh: float) -> float:
        """Drive on at ``speed_kmh`` from ``at`` for ``seconds`` without stopping (a parked
        leg ends the race); everything planned after happens that much earlier. Returns that
        shift (negative seconds)."""
        legs = self._legs
        while not legs or legs[-1].t1 <= at:
            legs.extend(self._planner())
        raced: deque[Leg] = deque()
        pending: deque[Leg] = deque()
        for leg in legs:
            if leg.t1 <= at:
                raced.append(leg)
            elif leg.t0 < at:
                head, tail = _split(leg, at)
                raced.append(head)
                pending.append(tail)
            else:
                pending.append(leg)
        end, mps = at + seconds, speed_kmh / 3.6
        t = original = at  # where the race is, in the raced and in the planned timeline
        while t < end:
            if not pending:
                pending.extend(self._planner())
            leg = pending[0]
            if leg.parked:
                break
            pending.popleft()
            original = leg.t1
            if leg.path is None:
                continue  # a stop it does not make
            fast = abs(leg.d1 - leg.d0) / mps
            if t + fast <= end:
                raced.append(replace(leg, t0=t, t1=t + fast))
                t += fast
                continue
            head, tail = _split(leg, leg.t0 + (leg.t1 - leg.t0) * (end - t) / fast)
            raced.append(replace(head, t0=t, t1=end))
            pending.appendleft(tail)  # the rest of the leg at its own pace
            original, t = tail.t0, end
        shift = t - original
        raced.extend(replace(leg, t0=leg.t0 + shift, t1=leg.t1 + shift) for leg in pending)
        self._legs = raced
        return shift

    def state_at(self, t: float) -> State:
        """The true position, speed and heading at ``t`` (never earlier than a previous call)."""
        legs = self._legs
        while True:
            while legs and legs[0].t1 <= t:
                done = legs.popleft()
                if done.path is not None:
                    self._heading = done.path.at(done.d1)[2]
            if legs:
                break
            legs.extend(self._planner())
        leg = legs[0]
        if leg.path is None:
            return State(leg.lat, leg.lon, 0.0, self._heading, False, leg.parked, leg.t1)
        span = leg.t1 - leg.t0
        frac = (t - leg.t0) / span if span > 0 else 1.0
        lat, lon, heading = leg.path.at(leg.d0 + (leg.d1 - leg.d0) * frac)
        if leg.d1 < leg.d0:
            heading = (heading + 180.0) % 360.0
        self._heading = heading
        speed = abs(leg.d1 - leg.d0) / span * 3.6 if span > 0 else 0.0
        return State(lat, lon, speed, heading, True, False, leg.t1)


def _split(leg: Leg, at: float) -> tuple[Leg, Leg]:
    """``leg`` cut at ``at`` (strictly inside it): before and after."""
    if leg.path is None:
        return replace(leg, t1=at), replace(leg, t0=at)
    d = leg.d0 + (leg.d1 - leg.d0) * (at - leg.t0) / (leg.t1 - leg.t0)
    return replace(leg, t1=at, d1=d), replace(leg, t0=at, d0=d)
