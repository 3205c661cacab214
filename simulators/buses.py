"""City buses: trips along their line with dwell at stops, layovers, service hours, AVL reports."""

from __future__ import annotations

import itertools
import json

from simulators.clock import is_ramadan, local_midnight, local_seconds_of_day, utc_offset_s
from simulators.messages import Message, position_json
from simulators.motion import Leg, drive, stay
from simulators.routes import Line
from simulators.scenario import BusConfig, Scenario
from simulators.timestamps import rfc3339_offset
from simulators.tracker import Tracker, poisson

_COMMERCIAL_MS = 15 / 3.6  # city-facts: urban mean commercial speed, for staggering only
_PEAKS = ((7.5, 9.0), (12.0, 14.0), (17.5, 19.5))  # local hours [S]: ~08:00, midday, 17:30-19:30
_RED_LIGHT_P = 0.35


def hhmm_seconds(text: str) -> float:
    """``"06:00"`` -> seconds after midnight."""
    hours, minutes = text.split(":")
    return int(hours) * 3600.0 + int(minutes) * 60.0


def round_trip_s(line: Line, config: BusConfig) -> float:
    """The planned time of one round trip, layovers included: buses of a line leave the
    terminus this divided by their count apart (the scheduled headway)."""
    layover = sum(config.layover_min) / 2 * 60
    return 2 * (line.length_m / _COMMERCIAL_MS + layover)


class Bus(Tracker):
    """One bus on one line; reports every 10 s moving, 60 s stopped, hourly when parked."""

    def __init__(
        self,
        device_id: str,
        topic: str,
        line: Line,
        index: int,
        count: int,
        scenario: Scenario,
        seed: int,
        start: float,
    ) -> None:
        self.line = line
        self.config = scenario.buses
        self._reverse = line.shape.reversed()
        length = line.length_m
        self._back_stops = tuple(length - d for d in reversed(line.stop_distances))
        self._back_speeds = tuple(reversed(line.section_speed))
        self._stop_points = [line.shape.at(d)[:2] for d in line.stop_distances]
        self._back_points = self._stop_points[::-1]
        self._route_json = json.dumps(line.line_id)
        cycle = round_trip_s(line, self.config)
        self._stagger = cycle * index / max(1, count)  # even headways at the morning start
        self._service_start = hhmm_seconds(self.config.service_start)
        self._service_end = hhmm_seconds(self.config.service_end)
        if self._service_end <= self._service_start:
            self._service_end += 86_400.0
        super().__init__(device_id, topic, scenario, seed, start, local_time=True)
        # Plan from 03:00 local, when every bus is parked, so a run starting at any time
        # finds buses where the day's service would have put them.
        midnight = local_midnight(start)
        anchor = midnight + 3 * 3600.0
        if anchor > start:
            anchor = local_midnight(midnight - 7200.0) + 3 * 3600.0
        self._plan_t = anchor
        self._at_a = True
        self._parked = True
        self._day_end = anchor

    def _next_departure(self, t: float) -> float:
        midnight = local_midnight(t)
        dep = midnight + self._service_start + self._stagger
        if dep <= t:
            dep = local_midnight(midnight + 86_400.0 + 7200.0) + self._service_start + self._stagger
        return dep

    def plan(self) -> list[Leg]:
        """Park until service starts, then trips back and forth until service ends at A."""
        t = self._plan_t
        if not self._parked and self._at_a and t >= self._day_end:
            self._parked = True
        if self._parked:
            dep = self._next_departure(t)
            lat, lon = self.line.shape.points[0]
            self._parked = False
            self._at_a = True
            self._day_end = local_midnight(dep) + self._service_end
            self._plan_t = dep
            return [stay(t, dep - t, lat, lon, parked=True)]
        legs = self._trip(t, forward=self._at_a)
        self._at_a = not self._at_a
        self._plan_t = legs[-1].t1
        return legs

    def _peak(self, t: float) -> bool:
        hour = local_seconds_of_day(t) / 3600.0
        return any(a <= hour < b for a, b in _PEAKS)

    def _dwell(self, mean_passengers: float) -> float:
        rng = self.motion_rng
        boarding, alighting = poisson(rng, mean_passengers), poisson(rng, mean_passengers)
        return min(90.0, max(10.0, 5.0 + max(2.0 * alighting, 3.0 * boarding)))

    def _trip(self, t0: float, *, forward: bool) -> list[Leg]:
        rng = self.motion_rng
        path = self.line.shape if forward else self._reverse
        stops = self.line.stop_distances if forward else self._back_stops
        points = self._stop_points if forward else self._back_points
        speeds = self.line.section_speed if forward else self._back_speeds
        # Rush hour, judged once per trip: slower traffic and fuller stops.
        peak = self._peak(t0)
        congestion = 0.8 if peak else 1.0
        passengers = (6.0 if peak else 2.5) * (1.5 if self.line.kind == "brt" else 1.0)
        legs: list[Leg] = []
        t = t0
        last = len(stops) - 2
        for i, (a, b) in enumerate(itertools.pairwise(stops)):
            mean, sd = speeds[i]
            speed = min(60.0, max(5.0, rng.gauss(mean, sd) * congestion))
            if b - a > 300 and rng.random() < _RED_LIGHT_P:
                mid = a + (b - a) * rng.uniform(0.3, 0.8)
                legs.append(drive(t, path, a, mid, speed))
                lat, lon, _ = path.at(mid)
                legs.append(stay(legs[-1].t1, rng.uniform(10.0, 45.0), lat, lon))
                t = legs[-1].t1
                a = mid
            legs.append(drive(t, path, a, b, speed))
            t = legs[-1].t1
            lat, lon = points[i + 1]
            if i < last:
                legs.append(stay(t, self._dwell(passengers), lat, lon))
            else:
                legs.append(stay(t, rng.uniform(*self.config.layover_min) * 60.0, lat, lon))
            t = legs[-1].t1
        return legs

    def step(self, now: float, out: list[Message]) -> None:
        """Record (and send) one fix at ``now`` and schedule the next."""
        t = int(now)
        state = self.true_state(t)
        config = self.config
        interval = self.interval(
            t, state, config.report_moving_s, config.report_stopped_s, config.report_parked_s
        )
        fix = self.receiver.read(t, state, is_ramadan(t))
        if fix is not None:
            self.seq += 1
            ts = '"' + rfc3339_offset(fix.ts, utc_offset_s(t)) + '"'
            payload = position_json(
                ts,
                fix.lat,
                fix.lon,
                fix.speed_kmh,
                fix.heading_deg,
                fix.accuracy_m,
                self._route_json,
                self.seq,
            )
            self.send(t, payload, fix.labels, fix.rejects, interval, out)
        self.next_time = float(t + interval)
