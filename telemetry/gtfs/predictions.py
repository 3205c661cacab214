"""Arrival predictions for a bus on a trip of the static feed (pure): from its progress along
the trip's shape and the travel times learned from stored traces (by link and period of the
day), with a dwell model at stops; recomputed on every position.

A stop is reached when the bus enters its radius (the same radius the learning uses). The
learned link time runs from arriving at one stop to arriving at the next (its dwell included);
the learned dwell is the time spent inside a stop's radius, so the drive between two radii is
the link time minus the dwell. A bus between two stops has the share of that drive still ahead
of it; a bus inside a stop's radius has the rest of the dwell there, then the drive. Every
further stop adds its link time, taken in the period of the moment the bus is predicted to
leave the previous one. Times never lie in the past: a bus that should have arrived and has
not yet is late, and all its predictions move by that lateness.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from telemetry.gtfs.feed import TripPattern
from telemetry.gtfs.records import LinkTime, StopDwell
from telemetry.gtfs.runtimes import MAX_KMH, MIN_SAMPLES, Period, RunTimes, period_at

#: A stop's radius: inside it, a bus is at the stop (as ``storage.gtfs`` learns it).
STOP_RADIUS_M: Final = 50.0
#: Below this speed a fix says nothing of the pace to the next stop (at a light, in a queue).
MOVING_MS: Final = 5 / 3.6
#: How much of the drive to the next stop is timed at the bus's own speed (the rest at the
#: learned share of the link): a bus keeps much of its pace over one link, not over several.
OWN_PACE_WEIGHT: Final = 0.5
#: Dwell inside a stop's radius before any trace is learned: a brief stop and the approach and
#: pull-out within the radius (city buses board through one door; a few riders a stop).
DEFAULT_DWELL_S: Final = 20.0


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _local_seconds(instant: datetime, timezone: str) -> float:
    local = instant.astimezone(_zone(timezone))
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


class TravelModel:
    """Link and dwell times of every line: learned medians where the traces hold enough
    passages (``runtimes.MIN_SAMPLES``), defaults otherwise."""

    def __init__(self, links: Iterable[LinkTime] = (), dwells: Iterable[StopDwell] = ()) -> None:
        self._links = RunTimes(links)
        self._dwells: Mapping[tuple[str, str, str], float] = {
            (d.route_id, d.stop_id, d.period): d.median_s
            for d in dwells
            if d.samples >= MIN_SAMPLES and math.isfinite(d.median_s) and d.median_s >= 0
        }

    def link_s(
        self, route_id: str, from_stop: str, to_stop: str, distance_m: float, period: Period
    ) -> float:
        """Seconds from arriving at ``from_stop`` to arriving at ``to_stop``."""
        return float(self._links.seconds(route_id, from_stop, to_stop, distance_m, period))

    def dwell_s(self, route_id: str, stop_id: str, period: Period) -> float:
        """Seconds spent within the stop's radius."""
        return self._dwells.get((route_id, stop_id, period.name), DEFAULT_DWELL_S)


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """Where a bus on a trip is: metres along the trip's shape at ``time`` (its newest fix),
    and since when it has been inside the radius of the stop it is at (if any)."""

    dist_m: float
    time: datetime
    speed_ms: float | None = None  # the fix's own speed
    at_stop: int | None = None  # index in the pattern's stops
    at_stop_since: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrival:
    """A predicted arrival (entering the stop's radius) and departure at a stop of the trip;
    ``stop_sequence`` is the stop's in ``stop_times.txt``."""

    stop_id: str
    stop_sequence: int
    arrival: datetime
    departure: datetime


def stop_at(pattern: TripPattern, dist_m: float, radius_m: float = STOP_RADIUS_M) -> int | None:
    """The index of the stop whose radius (along the shape) holds ``dist_m``, if any (the
    farther one where two overlap: the bus has left the first)."""
    dists = pattern.stop_dist_m
    k = bisect.bisect_right(dists, dist_m + radius_m) - 1
    if k >= 0 and abs(dists[k] - dist_m) <= radius_m:
        return k
    return None


def advance(
    previous: Progress | None,
    pattern: TripPattern,
    dist_m: float,
    time: datetime,
    speed_kmh: float | None = None,
) -> Progress:
    """The progress after one more fix on the trip (``previous``: on the same trip instance):
    the stop it is at, and since when (its first fix inside that stop's radius)."""
    at = stop_at(pattern, dist_m)
    since = time
    if (
        at is not None
        and previous is not None
        and previous.at_stop == at
        and previous.at_stop_since is not None
    ):
        since = previous.at_stop_since
    return Progress(
        dist_m=dist_m,
        time=time,
        speed_ms=None if speed_kmh is None else speed_kmh / 3.6,
        at_stop=at,
        at_stop_since=since if at is not None else None,
    )


def _drive_s(model: TravelModel, pattern: TripPattern, k: int, period: Period) -> float:
    """Seconds from leaving stop ``k``'s radius to entering stop ``k + 1``'s."""
    ids, dists = pattern.stop_ids, pattern.stop_dist_m
    gap = dists[k + 1] - dists[k]
    link = model.link_s(pattern.route_id, ids[k], ids[k + 1], gap, period)
    # From the first terminus the learned time runs from leaving it: no dwell to take out.
    dwell = 0.0 if k == 0 else model.dwell_s(pattern.route_id, ids[k], period)
    fastest = max(0.0, gap - 2 * STOP_RADIUS_M) / (MAX_KMH / 3.6)
    return max(link - dwell, fastest, 1.0)


def predict(
    pattern: TripPattern,
    progress: Progress,
    model: TravelModel,
    now: datetime,
    timezone: str,
    *,
    limit: int | None = None,
) -> list[Arrival]:
    """Predicted arrivals at the stops still ahead of the bus (at most ``limit``), in trip
    order; arrivals strictly increase, each departure lies between its arrival and the next
    arrival, and none is before ``now`` (whole seconds)."""
    ids, dists = pattern.stop_ids, pattern.stop_dist_m
    n = len(ids)
    route = pattern.route_id
    t = progress.time
    at = progress.at_stop
    if at is not None:
        # Inside stop ``at``'s radius: the rest of its dwell, then the drive to the next.
        first = at + 1
        if first >= n:
            return []
        period = period_at(_local_seconds(t, timezone))
        since = progress.at_stop_since or t
        dwell = 0.0 if at == 0 else model.dwell_s(route, ids[at], period)
        left = since + timedelta(seconds=dwell)
        t = max(t, left) + timedelta(seconds=_drive_s(model, pattern, at, period))
    else:
        first = bisect.bisect_right(dists, progress.dist_m)
        if first >= n:
            return []
        if first > 0:  # before the first stop, the bus is about to reach it
            gap = dists[first] - dists[first - 1] - 2 * STOP_RADIUS_M
            ahead = dists[first] - STOP_RADIUS_M - progress.dist_m
            share = 1.0 if gap <= 0 else min(1.0, max(0.0, ahead / gap))
            period = period_at(_local_seconds(t, timezone))
            drive = share * _drive_s(model, pattern, first - 1, period)
            speed = progress.speed_ms
            if speed is not None and speed >= MOVING_MS:
                own = max(0.0, ahead) / speed
                drive = OWN_PACE_WEIGHT * own + (1 - OWN_PACE_WEIGHT) * drive
            t += timedelta(seconds=drive)
    last = n if limit is None else min(n, first + limit)
    times: list[tuple[float, float]] = []  # (arrival, departure) in epoch seconds
    arrival = departure = t.timestamp()
    for k in range(first, last):
        if k > first:
            period = period_at(_local_seconds(datetime.fromtimestamp(departure, UTC), timezone))
            arrival = departure + _drive_s(model, pattern, k - 1, period)
        period = period_at(_local_seconds(datetime.fromtimestamp(arrival, UTC), timezone))
        departure = arrival + (model.dwell_s(route, ids[k], period) if k < n - 1 else 0.0)
        times.append((arrival, departure))
    return _settle(pattern, first, times, now.timestamp())


def _settle(
    pattern: TripPattern, first: int, times: Sequence[tuple[float, float]], now: float
) -> list[Arrival]:
    """Whole seconds, late buses shifted to ``now`` at the earliest, strictly increasing."""
    if not times:
        return []
    late = max(0.0, math.ceil(now) - times[0][0])
    out: list[Arrival] = []
    floor = -math.inf
    for k, (arrival, departure) in enumerate(times):
        a = max(math.ceil(arrival + late), floor + 1)
        d = max(math.ceil(departure + late), a)
        out.append(
            Arrival(
                stop_id=pattern.stop_ids[first + k],
                stop_sequence=first + k + 1,
                arrival=datetime.fromtimestamp(a, UTC),
                departure=datetime.fromtimestamp(d, UTC),
            )
        )
        floor = d
    return out


def trip_distance(pattern_length_m: float, direction: int, along_m: float) -> float:
    """Metres along a trip's shape from a progress along its line's shape (from terminus A)."""
    return along_m if direction == 0 else max(0.0, pattern_length_m - along_m)
