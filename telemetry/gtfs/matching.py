"""Which trip instance of the static feed a live bus is running (pure): from the line it is
assigned to and its progress along that line's shape, fix after fix.

A bus waiting at a terminus has finished its run; when it leaves the terminus it starts a run
in the direction away from it, and the moment it left (its last fix at the terminus) is the
trip instance's ``start_time``, which then never changes (GTFS-Realtime: the start time of an
``exact_times=0`` trip is the first departure and is immutable). The trip is the line's
frequency-based trip in that direction whose service window holds that start. A bus that turns
back mid-route starts a run the other way from where it turned. A bus first seen mid-route
(no history) gets its direction from its next moves and a start estimated from the timetable's
run times. No trip: a line the static feed does not know, a bus off its shape (held, and
resumed if it comes back within ``lost_after_s``), parked at a terminus beyond the layover
grace, silent too long, or on a run that starts outside the line's service.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from telemetry.gtfs.csvzip import gtfs_time
from telemetry.gtfs.feed import LineTimetable, StaticFeed, TripPattern


@dataclass(frozen=True, slots=True, kw_only=True)
class TripInstance:
    """A GTFS-Realtime trip descriptor of a frequency-based trip."""

    route_id: str
    direction_id: int
    trip_id: str
    start_time: str  # HH:MM:SS after the service day's noon minus 12 h (may pass 24:00:00)
    start_date: str  # YYYYMMDD, the service day


@dataclass(frozen=True, slots=True, kw_only=True)
class Fix:
    """A bus position as the matching reads it."""

    time: datetime
    lat: float
    lon: float
    route: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MatchRules:
    """Distances and delays of the matching."""

    terminus_m: float = 150.0  # within this of a line's end (along it) the bus is at it
    off_route_m: float = 150.0  # farther than this from the shape: not on it
    lost_after_s: float = 900.0  # off the shape this long ends the run
    silence_s: float = 1800.0  # no fix this long: the run is forgotten
    layover_grace_s: float = 1200.0  # the finished trip stays this long at the terminus
    turn_m: float = 300.0  # moving back this far from the farthest point: turned around
    trend_m: float = 60.0  # progress needed to tell the direction of a bus seen mid-route


class Phase(StrEnum):
    """Where a bus is in its round of trips."""

    UNKNOWN = "unknown"
    TERMINUS = "terminus"
    RUNNING = "running"


@dataclass(frozen=True, slots=True, kw_only=True)
class BusState:
    """What the matching remembers of one bus between fixes."""

    route_id: str | None = None
    phase: Phase = Phase.UNKNOWN
    time: datetime | None = None  # newest fix taken in
    along_m: float | None = None  # newest on-shape progress from terminus A
    end: int | None = None  # TERMINUS: 0 at A, 1 at B
    arrived: datetime | None = None  # TERMINUS: first fix there
    last_inside: datetime | None = None  # TERMINUS: newest fix there
    direction: int | None = None  # RUNNING
    extreme_m: float = 0.0  # RUNNING: farthest progress in the run's direction
    extreme_time: datetime | None = None
    anchor_m: float | None = None  # UNKNOWN: first on-shape progress
    off_route_since: datetime | None = None
    trip: TripInstance | None = None


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def service_seconds(instant: datetime, day: date, timezone: str) -> float:
    """Seconds from the service day's reference (local noon minus 12 h) to ``instant``."""
    noon = datetime.combine(day, time(12), tzinfo=_zone(timezone)).astimezone(UTC)
    return (instant - (noon - timedelta(hours=12))).total_seconds()


def trip_instance(
    line: LineTimetable, direction: int, started: datetime, timezone: str
) -> TripInstance | None:
    """The instance of the line's trip in ``direction`` whose window holds ``started`` (the
    local day's service first, then the previous day's, for runs after midnight)."""
    local = started.astimezone(_zone(timezone)).date()
    for day in (local, local - timedelta(days=1)):
        s = int(service_seconds(started, day, timezone))
        for pattern in line.trips:
            if pattern.direction_id == direction and pattern.start_s <= s < pattern.end_s:
                return TripInstance(
                    route_id=line.route_id,
                    direction_id=direction,
                    trip_id=pattern.trip_id,
                    start_time=gtfs_time(s),
                    start_date=day.strftime("%Y%m%d"),
                )
    return None


def run_offset_s(pattern: TripPattern, dist_m: float) -> float:
    """Typical seconds from the trip's start to ``dist_m`` along its shape."""
    dists, offsets = pattern.stop_dist_m, pattern.stop_offset_s
    if dist_m <= dists[0]:
        return float(offsets[0])
    if dist_m >= dists[-1]:
        return float(offsets[-1])
    k = bisect.bisect_right(dists, dist_m) - 1
    u = (dist_m - dists[k]) / (dists[k + 1] - dists[k])
    return offsets[k] + u * (offsets[k + 1] - offsets[k])


def _estimated_start(
    line: LineTimetable, direction: int, along_m: float, now: datetime, timezone: str
) -> datetime:
    patterns = [p for p in line.trips if p.direction_id == direction]
    local = now.astimezone(_zone(timezone)).date()
    s = service_seconds(now, local, timezone)
    pattern = next((p for p in patterns if p.start_s <= s < p.end_s), patterns[0])
    dist = along_m if direction == 0 else line.shape.length_m - along_m
    return now - timedelta(seconds=run_offset_s(pattern, dist))


def observe(
    state: BusState, fix: Fix, feed: StaticFeed, rules: MatchRules = MatchRules()
) -> BusState:
    """The state after one more fix (an older or equal time than the newest: ignored)."""
    if state.time is not None and fix.time <= state.time:
        return state
    line = feed.lines.get(fix.route) if fix.route is not None else None
    if line is None:
        return BusState(route_id=fix.route, time=fix.time)
    if state.route_id != fix.route or (
        state.time is not None and (fix.time - state.time).total_seconds() > rules.silence_s
    ):
        state = BusState(route_id=fix.route)
    shape = line.shape
    projection = shape.project(fix.lat, fix.lon, near_m=state.along_m)
    if projection.offset_m > rules.off_route_m:
        since = state.off_route_since or fix.time
        if (fix.time - since).total_seconds() > rules.lost_after_s:
            return BusState(route_id=fix.route, time=fix.time, off_route_since=since)
        return dataclasses.replace(state, time=fix.time, off_route_since=since)
    state = dataclasses.replace(state, off_route_since=None)
    along = projection.along_m
    length = shape.length_m
    zone = min(rules.terminus_m, length / 4)
    end = 0 if along <= zone else 1 if along >= length - zone else None
    tz = feed.timezone
    if end is not None:
        return _at_terminus(state, fix, end, along, zone, rules)
    if state.phase is Phase.TERMINUS:
        assert state.end is not None and state.last_inside is not None
        return _running(state, fix, along, state.end, state.last_inside, line, tz)
    if state.phase is Phase.RUNNING:
        assert state.direction is not None and state.extreme_time is not None
        sign = 1.0 if state.direction == 0 else -1.0
        if sign * (along - state.extreme_m) > 0:
            return dataclasses.replace(
                state, time=fix.time, along_m=along, extreme_m=along, extreme_time=fix.time
            )
        if sign * (state.extreme_m - along) > rules.turn_m:
            return _running(state, fix, along, 1 - state.direction, state.extreme_time, line, tz)
        return dataclasses.replace(state, time=fix.time, along_m=along)
    if state.anchor_m is None:
        return dataclasses.replace(state, time=fix.time, along_m=along, anchor_m=along)
    if abs(along - state.anchor_m) < rules.trend_m:
        return dataclasses.replace(state, time=fix.time, along_m=along)
    direction = 0 if along > state.anchor_m else 1
    started = _estimated_start(line, direction, along, fix.time, tz)
    return _running(state, fix, along, direction, started, line, tz)


def _at_terminus(
    state: BusState, fix: Fix, end: int, along: float, zone: float, rules: MatchRules
) -> BusState:
    if state.phase is Phase.TERMINUS and state.end == end:
        return dataclasses.replace(state, time=fix.time, along_m=along, last_inside=fix.time)
    trip = None
    if state.phase is Phase.RUNNING:
        # Direction 0 leaves A (end 0), direction 1 leaves B (end 1).
        if end == state.direction:
            # Back at the terminus it left: GPS noise at the zone's edge keeps the run; a
            # real trip out and back ends it, with no trip (it ran none of the line).
            if abs(state.extreme_m - along) <= zone + rules.turn_m:
                return dataclasses.replace(state, time=fix.time, along_m=along)
        else:
            trip = state.trip
    return BusState(
        route_id=state.route_id,
        phase=Phase.TERMINUS,
        time=fix.time,
        along_m=along,
        end=end,
        arrived=fix.time,
        last_inside=fix.time,
        trip=trip,
    )


def _running(
    state: BusState,
    fix: Fix,
    along: float,
    direction: int,
    started: datetime,
    line: LineTimetable,
    timezone: str,
) -> BusState:
    return BusState(
        route_id=state.route_id,
        phase=Phase.RUNNING,
        time=fix.time,
        along_m=along,
        direction=direction,
        extreme_m=along,
        extreme_time=fix.time,
        trip=trip_instance(line, direction, started, timezone),
    )


def observe_all(
    state: BusState, fixes: Iterable[Fix], feed: StaticFeed, rules: MatchRules = MatchRules()
) -> BusState:
    """The state after ``fixes`` (in time order), one by one."""
    for fix in fixes:
        state = observe(state, fix, feed, rules)
    return state


def current_trip(
    state: BusState, now: datetime, rules: MatchRules = MatchRules()
) -> TripInstance | None:
    """The trip instance to publish for the bus at ``now``, if it is on one."""
    if state.time is None or state.off_route_since is not None:
        return None
    if (now - state.time).total_seconds() > rules.silence_s:
        return None
    if state.phase is Phase.RUNNING:
        return state.trip
    if (
        state.phase is Phase.TERMINUS
        and state.arrived is not None
        and (now - state.arrived).total_seconds() <= rules.layover_grace_s
    ):
        return state.trip
    return None
