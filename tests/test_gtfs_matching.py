"""Matching live buses to trip instances of the static feed (pure): scripted scenarios (a bus
that changes direction at a terminus, one on a detour, out of service in several ways, a run
past midnight, a bus first seen mid-route or turning back), properties over random days of
driving, and a simulated morning of line A with every GPS defect."""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.routes_file import parse_routes
from simulators.devices import build_devices
from simulators.network import network_file
from telemetry.gtfs.feed import StaticFeed, build_feed
from telemetry.gtfs.geometry import Shape
from telemetry.gtfs.matching import (
    BusState,
    Fix,
    MatchRules,
    TripInstance,
    current_trip,
    observe,
    observe_all,
    service_seconds,
)
from telemetry.gtfs.network import network_of
from telemetry.gtfs.records import FeedConfig, Network, NetworkLine, NetworkStop, ServiceBand
from telemetry.reference_data import LineStop
from tests.support.simulation import elements, run, small_scenario, ts_seconds

CONFIG = FeedConfig(
    agency_id="supratours",
    agency_name="Supratours",
    agency_url="https://www.supratours.ma",
    timezone="Africa/Casablanca",
    lang="fr",
    publisher_name="Commune de Marrakech",
    publisher_url="https://www.marrakech.ma",
    start_date=date(2026, 1, 1),
    end_date=date(2027, 12, 31),
)
# A 3.6 km line due north from Bab Doukkala, six stops 720 m apart.
LAT0, LON = 31.6339, -7.999
STEP = 0.0065  # ~720 m of latitude
STOPS = {
    f"s{k}": NetworkStop(stop_id=f"s{k}", name=f"Stop {k}", lat=LAT0 + k * STEP, lon=LON)
    for k in range(6)
}
SHAPE = [(s.lat, s.lon) for s in STOPS.values()]
LENGTH = Shape(SHAPE).length_m
RULES = MatchRules()


def _feed(*bands: tuple[int, int]) -> StaticFeed:
    line = NetworkLine(
        route_id="L",
        shape=SHAPE,
        stop_ids=tuple(STOPS),
        bands=tuple(ServiceBand(start_s=a, end_s=b, headway_s=600) for a, b in bands),
    )
    return build_feed(Network(stops=STOPS, lines=[line]), CONFIG)


FEED = _feed((6 * 3600, 23 * 3600))
DAY = date(2026, 6, 10)  # Casablanca is UTC+1 then


def local(hh: int, mm: int = 0, ss: int = 0, day: date = DAY) -> datetime:
    """A moment of Marrakech's local time (UTC+1 in June), as UTC."""
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=UTC) - timedelta(hours=1)


def at(along_m: float, *, east_m: float = 0.0) -> tuple[float, float]:
    """The point ``along_m`` from terminus A, ``east_m`` off the line."""
    return LAT0 + along_m / 111_195.0, LON + east_m / (111_195.0 * math.cos(math.radians(LAT0)))


@dataclass
class Driver:
    """Writes the fixes of one bus: waits, drives, wanders."""

    t: datetime
    route: str | None = "L"
    along: float = 0.0
    every_s: float = 10.0

    def __post_init__(self) -> None:
        self.fixes: list[Fix] = []

    def _fix(self, east_m: float = 0.0) -> None:
        lat, lon = at(self.along, east_m=east_m)
        self.fixes.append(Fix(time=self.t, lat=lat, lon=lon, route=self.route))

    def last_at_terminus(self, *, before: datetime) -> datetime:
        """The newest fix before ``before`` within the terminus zone of either end, measured
        as the matching measures it: when the bus left that terminus."""
        shape = FEED.lines["L"].shape
        zone = RULES.terminus_m
        return max(
            f.time
            for f in self.fixes
            if f.time < before
            and not zone < shape.project(f.lat, f.lon).along_m < shape.length_m - zone
        )

    def wait(self, seconds: float, *, every_s: float = 60.0, east_m: float = 0.0) -> None:
        """Stand still, one fix every ``every_s`` (the first now)."""
        end = self.t + timedelta(seconds=seconds)
        while self.t < end:
            self._fix(east_m)
            self.t += timedelta(seconds=every_s)
        self.t = end

    def drive(self, to_m: float, speed_ms: float = 6.0) -> None:
        """Drive along the line to ``to_m``, a fix every ``every_s``, the last one there."""
        sign = 1.0 if to_m >= self.along else -1.0
        while sign * (to_m - self.along) > speed_ms * self.every_s:
            self.t += timedelta(seconds=self.every_s)
            self.along += sign * speed_ms * self.every_s
            self._fix()
        self.t += timedelta(seconds=abs(to_m - self.along) / speed_ms)
        self.along = to_m
        self._fix()

    def trips(self, feed: StaticFeed = FEED) -> list[tuple[Fix, TripInstance | None]]:
        """The published trip after each fix."""
        state, out = BusState(), []
        for f in self.fixes:
            state = observe(state, f, feed)
            out.append((f, current_trip(state, f.time)))
        return out


def test_a_bus_changes_direction_at_each_terminus() -> None:
    bus = Driver(local(7, 50))
    bus.wait(600)  # layover at A until 08:00
    bus.drive(LENGTH)  # ~10 min to B
    arrived_b = bus.t
    bus.wait(400)  # layover at B
    bus.drive(LENGTH / 2)
    left_b = bus.last_at_terminus(before=bus.t)
    bus.drive(0.0)
    seen = bus.trips()
    # Moving off at 08:00 at 6 m/s, its last fix within 150 m of A is at 08:00:20.
    at_a = [trip for f, trip in seen if f.time <= local(8, 0, 20)]
    assert at_a == [None] * len(at_a)  # before its first run: waiting, no trip
    out = {trip for f, trip in seen if local(8, 0, 20) < f.time <= arrived_b}
    assert out == {
        TripInstance(
            route_id="L",
            direction_id=0,
            trip_id="L-0-0730",
            start_time="08:00:20",
            start_date="20260610",
        )
    }
    # While it waits at B the finished trip stays: the vehicle is at its last stop.
    assert {trip for f, trip in seen if arrived_b <= f.time <= left_b} == out
    assert {trip for f, trip in seen if f.time > left_b} == {
        TripInstance(
            route_id="L",
            direction_id=1,
            trip_id="L-1-0730",
            start_time=(left_b + timedelta(hours=1)).strftime("%H:%M:%S"),
            start_date="20260610",
        )
    }


def test_a_detour_withholds_the_trip_and_resumes_it() -> None:
    bus = Driver(local(9, 0))
    bus.wait(120)
    bus.drive(1200)
    bus.t += timedelta(seconds=30)
    bus.wait(300, every_s=30, east_m=450)  # off the line, 450 m east, for 5 min
    bus.drive(LENGTH)
    seen = bus.trips()
    before = [trip for f, trip in seen if local(9, 2, 20) < f.time <= local(9, 5, 20)]
    off = [trip for f, trip in seen if abs(f.lon - LON) > 0.004]
    after = [trip for f, trip in seen if abs(f.lon - LON) < 1e-9 and f.time > local(9, 8)]
    assert before and off and after
    assert all(trip is None for trip in off)
    assert len(set(before)) == 1 and None not in before
    assert set(after) == set(before)  # the same trip instance: same start time


def test_a_bus_lost_off_its_line_starts_over() -> None:
    bus = Driver(local(9, 0))
    bus.wait(120)
    bus.drive(1200)
    bus.t += timedelta(seconds=60)
    bus.wait(RULES.lost_after_s + 300, every_s=60, east_m=800)  # gone to the depot
    bus.drive(2000)
    seen = bus.trips()
    first = seen[5][1]
    last = seen[-1][1]
    assert first is not None and last is not None
    # Seen again mid-route with no terminus behind it: direction from its moves, start
    # estimated from the timetable's run time to where it is.
    assert last.direction_id == 0 and last.start_time != first.start_time


def test_out_of_service_buses_get_no_trip() -> None:
    parked = Driver(local(22, 30))
    parked.wait(120)
    parked.drive(LENGTH)
    parked.wait(3 * 3600, every_s=600)  # parked at B for the night
    seen = parked.trips()
    assert seen[10][1] is not None  # its last run of the evening
    night = [trip for f, trip in seen if f.time > parked.t - timedelta(hours=2)]
    assert night and all(trip is None for trip in night)

    # Leaves after the service's end (23:00): a run outside every frequency window.
    late = Driver(local(23, 10))
    late.wait(120)
    late.drive(LENGTH / 2)
    assert all(trip is None for _, trip in late.trips())

    # A line the static feed does not have, or none at all.
    for route in ("no-such-line", None):
        other = Driver(local(9, 0), route=route)
        other.wait(120)
        other.drive(LENGTH)
        assert all(trip is None for _, trip in other.trips())

    # Silent for longer than the silence limit: nothing to publish.
    gone = Driver(local(9, 0))
    gone.wait(120)
    gone.drive(1000)
    state = observe_all(BusState(), gone.fixes, FEED)
    assert current_trip(state, gone.t) is not None
    assert current_trip(state, gone.t + timedelta(seconds=RULES.silence_s + 1)) is None


def test_a_run_after_midnight_belongs_to_the_previous_service_day() -> None:
    feed = _feed((22 * 3600, 1 * 3600))  # 22:00-01:00
    bus = Driver(local(0, 20, day=DAY + timedelta(days=1)))
    bus.wait(600)
    bus.drive(LENGTH / 2)
    trip = bus.trips(feed)[-1][1]
    assert trip == TripInstance(
        route_id="L",
        direction_id=0,
        trip_id="L-0-2400",
        start_time="24:30:20",
        start_date="20260610",
    )


def test_a_bus_seen_mid_route_and_one_turning_back() -> None:
    bus = Driver(local(10, 0), along=1500)
    bus.drive(1800)
    trip = bus.trips()[-1][1]
    assert trip is not None and trip.direction_id == 0
    # Started about as long ago as the timetable takes from A to where it first moved on.
    start = service_seconds(bus.fixes[0].time, DAY, "Africa/Casablanca")
    h, m, s = (int(x) for x in trip.start_time.split(":"))
    assert start - 900 < h * 3600 + m * 60 + s < start - 200

    turner = Driver(local(10, 0))
    turner.wait(120)
    turner.drive(2000)
    turned_at = turner.t
    turner.drive(500)
    seen = turner.trips()
    trip = seen[-1][1]
    assert trip is not None and trip.direction_id == 1
    assert trip.start_time == (turned_at + timedelta(hours=1)).strftime("%H:%M:%S")


@st.composite
def _days(draw: st.DrawFn) -> tuple[Driver, list[tuple[datetime, datetime, int]]]:
    """A bus doing a few round trips with random layovers, speeds and report intervals, and
    the true runs: (left the terminus, reached the other, direction)."""
    every = draw(st.sampled_from([5.0, 10.0, 20.0, 30.0]))
    bus = Driver(local(draw(st.integers(6, 20)), draw(st.integers(0, 59))), every_s=every)
    runs = []
    for k in range(draw(st.integers(1, 4))):
        bus.wait(draw(st.floats(60, 900)), every_s=draw(st.sampled_from([30.0, 60.0])))
        bus.drive(LENGTH if k % 2 == 0 else 0.0, speed_ms=draw(st.floats(3.0, 14.0)))
        runs.append((bus.last_at_terminus(before=bus.t), bus.t, k % 2))
    bus.wait(60)
    return bus, runs


@settings(max_examples=60, deadline=None)
@given(_days())
def test_every_run_is_matched_in_its_direction_from_its_departure(
    day: tuple[Driver, list[tuple[datetime, datetime, int]]],
) -> None:
    bus, runs = day
    seen = bus.trips()
    for left, reached, direction in runs:
        during = [trip for f, trip in seen if left < f.time < reached]
        starts = {trip.start_time if trip else None for trip in during}
        in_service = service_seconds(left, left.date(), "Africa/Casablanca") < 23 * 3600 - 3600
        if not during or not in_service:
            continue
        # One trip instance for the whole run (its start time never moves), in its direction,
        # starting when the bus left the terminus.
        assert len(starts) == 1, starts
        trip = during[0]
        assert trip is not None and trip.direction_id == direction
        assert trip.start_time == (left + timedelta(hours=1)).strftime("%H:%M:%S")


@settings(max_examples=40, deadline=None)
@given(_days(), st.integers(1, 50), st.booleans())
def test_fixes_taken_in_chunks_or_twice_give_the_same_state(
    day: tuple[Driver, list[tuple[datetime, datetime, int]]], cut: int, repeat: bool
) -> None:
    bus, _ = day
    whole = observe_all(BusState(), bus.fixes, FEED)
    k = cut % len(bus.fixes)
    part = observe_all(BusState(), bus.fixes[:k], FEED)
    # The ingestor may store a fix again or late: already-seen times change nothing.
    again = bus.fixes[:k] if repeat else bus.fixes[k // 2 : k]
    assert observe_all(part, [*again, *bus.fixes[k:]], FEED) == whole


def test_a_simulated_morning_of_line_a_with_gps_defects() -> None:
    """Four buses of line A from 05:50 to 09:30 as the simulator drives them (dwell, red
    lights, layovers, GPS noise, jumps, gaps, duplicates, late and out-of-order fixes)."""
    scenario = small_scenario(
        buses={"count": 4, "lines": ["A"]}, trucks={"count": 0}, lights={"count": 0}
    )
    devices = build_devices(scenario)
    parsed = parse_routes(json.dumps(network_file(scenario, devices)))
    stored = parsed.network()
    feed = build_feed(
        network_of(
            stored.stops,
            [
                LineStop(route=r, seq=k, stop_id=s)
                for r, ids in stored.line_stops.items()
                for k, s in enumerate(ids)
            ],
            stored.schedules,
            stored.shapes,
        ),
        CONFIG,
    )
    _, messages = run(scenario, start="2026-06-10T05:50:00+01:00", duration=3.7 * 3600)
    fixes: dict[str, list[Fix]] = defaultdict(list)
    for message in messages:
        if not message.topic.endswith("/position"):
            continue
        for record in elements(message):
            t = datetime.fromtimestamp(ts_seconds(record["ts"]), UTC)
            fixes[message.device_id].append(
                Fix(time=t, lat=record["lat"], lon=record["lon"], route=record.get("route"))
            )
    assert len(fixes) == 4
    for device, stream in fixes.items():
        state = BusState()
        runs: list[TripInstance] = []
        for f in sorted(stream, key=lambda f: f.time):  # as stored: by device time
            state = observe(state, f, feed)
            trip = current_trip(state, f.time)
            if trip is not None and (not runs or runs[-1] != trip):
                runs.append(trip)
        # Runs alternate directions, each once (no start time that moved), all on line A.
        assert len(runs) >= 3, (device, runs)
        assert all(t.route_id == "A" for t in runs)
        directions = [t.direction_id for t in runs]
        assert all(a != b for a, b in itertools.pairwise(directions)), runs
        assert len({(t.trip_id, t.start_time) for t in runs}) == len(runs)
