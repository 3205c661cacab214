"""GPS receiver realism and deliberate defects (city-facts section 6), one vehicle at a time.

``Receiver`` turns a true position into what a tracker reports: noise by area, drift when
standing, multipath jumps, fix loss, (0, 0) fixes and bad clocks. ``Uplink`` decides when
a record reaches the broker: coverage gaps with a backlog flush, late and out-of-order
delivery, duplicates. Both are pure: they draw from the random stream they are given.
"""

from __future__ import annotations

import math
import random
from typing import Final, NamedTuple

from simulators.city import Area, area_of
from simulators.motion import State
from simulators.scenario import DefectConfig, GpsConfig
from telemetry.geometry import offset

# Defect labels carried by messages (never in payloads).
MULTIPATH: Final = "multipath"
NULL_ISLAND: Final = "null_island"
FUTURE_TS: Final = "future_ts"
EPOCH_GARBAGE: Final = "epoch_garbage"
TZ_BUG: Final = "tz_bug"
CLOCK_SKEW: Final = "clock_skew"
DUPLICATE: Final = "duplicate"
OUT_OF_ORDER: Final = "out_of_order"
LATE: Final = "late"
COVERAGE_GAP: Final = "coverage_gap"

#: Defects the ingestor must refuse (dead letter); every other defect it stores or absorbs.
REJECTED: Final = frozenset({NULL_ISLAND, FUTURE_TS, EPOCH_GARBAGE, TZ_BUG})

_GPS_EPOCH_S: Final = 315_964_800  # 1980-01-06, what a tracker with no time fix may send
_HEADING_MIN_KMH: Final = 5.0  # heading is meaningless below walking pace


class Fix(NamedTuple):
    """One tracker record before it is written as JSON."""

    lat: float
    lon: float
    speed_kmh: float
    heading_deg: float | None
    accuracy_m: float
    ts: int  # the device's clock, UTC epoch seconds
    labels: tuple[str, ...]
    rejects: int  # 1 when the ingestor must refuse this record


class Receiver:
    """A tracker's GPS and clock."""

    __slots__ = (
        "_drift_e",
        "_drift_n",
        "_rng",
        "defects",
        "gps",
        "gps_off_until",
        "skew_label",
        "skew_s",
        "tz_bug",
    )

    def __init__(
        self, gps: GpsConfig, defects: DefectConfig, rng: random.Random, *, local_time: bool
    ) -> None:
        self.gps = gps
        self.defects = defects
        self._rng = rng
        self._drift_e = 0.0
        self._drift_n = 0.0
        self.gps_off_until = -math.inf  # scripted GPS loss
        bad_clock = defects.enabled and rng.random() < defects.bad_clock_devices
        if bad_clock:
            lo, hi = defects.bad_clock_skew_s
            self.skew_s = round(rng.uniform(lo, hi)) * rng.choice((-1, 1))
        else:
            self.skew_s = round(rng.gauss(0.0, gps.typical_skew_s))
        self.skew_label: tuple[str, ...] = (CLOCK_SKEW,) if bad_clock else ()
        # Only trackers that write local time can get Morocco's Ramadan switch wrong.
        self.tz_bug = local_time and defects.enabled and rng.random() < defects.tz_bug_devices

    def read(self, t: int, state: State, ramadan: bool) -> Fix | None:
        """The record for true state ``state`` at ``t``; None when there is no fix."""
        if t < self.gps_off_until:
            return None
        rng = self._rng
        defects = self.defects
        on = defects.enabled
        area = area_of(state.lat, state.lon)
        medina = area is Area.MEDINA
        if on and medina and rng.random() < defects.fix_loss_medina:
            return None
        gps = self.gps
        sigma = (
            gps.medina_sigma_m
            if medina
            else gps.avenue_sigma_m
            if area is Area.AVENUE
            else gps.open_sigma_m
        )
        labels: list[str] = list(self.skew_label)
        east = north = 0.0
        if gps.noise:
            if state.moving:
                self._drift_e = self._drift_n = 0.0
                east, north = rng.gauss(0.0, sigma), rng.gauss(0.0, sigma)
            else:
                # A standing receiver wanders slowly instead of jumping around.
                self._drift_e = self._bounded(self._drift_e + rng.gauss(0.0, gps.drift_sigma_m))
                self._drift_n = self._bounded(self._drift_n + rng.gauss(0.0, gps.drift_sigma_m))
                east = self._drift_e + rng.gauss(0.0, sigma / 2)
                north = self._drift_n + rng.gauss(0.0, sigma / 2)
        if on and rng.random() < (defects.multipath_medina if medina else defects.multipath):
            jump = rng.uniform(*defects.multipath_offset_m)
            angle = rng.uniform(0.0, 2 * math.pi)
            east += jump * math.sin(angle)
            north += jump * math.cos(angle)
            labels.append(MULTIPATH)
        lat, lon = (
            offset(state.lat, state.lon, east, north) if east or north else (state.lat, state.lon)
        )
        accuracy = round(max(sigma, 1.0) * rng.uniform(1.5, 2.5), 1)
        speed = 0.0
        heading: float | None = None
        if state.moving:
            speed = max(0.0, state.speed_kmh + rng.gauss(0.0, gps.speed_noise_kmh))
            if speed >= _HEADING_MIN_KMH:
                heading = (state.heading_deg + rng.gauss(0.0, gps.heading_noise_deg)) % 360.0
        ts = t + self.skew_s
        rejects = 0
        if on:
            if rng.random() < defects.zero_coords:
                lat = lon = 0.0
                labels.append(NULL_ISLAND)
                rejects = 1
            draw = rng.random()
            if draw < defects.future_ts:
                ts += round(rng.uniform(*defects.future_ts_s))
                labels.append(FUTURE_TS)
                rejects = 1
            elif draw < defects.future_ts + defects.epoch_garbage:
                ts = rng.choice((0, _GPS_EPOCH_S))
                labels.append(EPOCH_GARBAGE)
                rejects = 1
            elif self.tz_bug and ramadan:
                ts += 3600
                labels.append(TZ_BUG)
                rejects = 1
        return Fix(lat, lon, speed, heading, accuracy, ts, tuple(labels), rejects)

    def _bounded(self, value: float) -> float:
        limit = self.gps.drift_max_m
        return max(-limit, min(limit, value))


class Delivery(NamedTuple):
    """When one copy of a message reaches the broker, and why it is unusual."""

    at: float
    labels: tuple[str, ...]


class Uplink:
    """A tracker's GSM link: coverage gaps, late, out-of-order and duplicated deliveries."""

    __slots__ = ("_defects", "_forced", "_gap", "_rng")

    def __init__(self, defects: DefectConfig, rng: random.Random, start: float) -> None:
        self._defects = defects
        self._rng = rng
        self._forced: list[tuple[float, float]] = []
        self._gap = self._next_gap(start)

    def _next_gap(self, after: float) -> tuple[float, float]:
        rate = self._defects.coverage_gap_per_day if self._defects.enabled else 0.0
        if rate <= 0:
            return math.inf, math.inf
        begin = after + self._rng.expovariate(rate / 86_400.0)
        return begin, begin + self._rng.uniform(*self._defects.coverage_gap_s)

    def force_gap(self, start: float, end: float) -> None:
        """A scripted loss of communication."""
        self._forced.append((start, end))

    def gap_end(self, t: float) -> float | None:
        """When the gap covering ``t`` ends (messages wait for it), or None when connected."""
        end: float | None = None
        for begin, stop in self._forced:
            if begin <= t < stop:
                end = stop if end is None else max(end, stop)
        while self._gap[1] <= t:
            self._gap = self._next_gap(self._gap[1])
        if self._gap[0] <= t:
            end = self._gap[1] if end is None else max(end, self._gap[1])
        return end

    def newest_first(self) -> bool:
        """Whether a backlog goes out newest record first (trackers do either)."""
        return self._defects.enabled and self._rng.random() < 0.5

    def deliveries(self, at: float, interval: float) -> list[Delivery]:
        """The copies of a message ready at ``at`` (``interval``: the tracker's period)."""
        defects = self._defects
        if not defects.enabled:
            return [Delivery(at, ())]
        rng = self._rng
        draw = rng.random()
        if draw < defects.late:
            first = Delivery(at + rng.uniform(*defects.late_delay_s), (LATE,))
        elif draw < defects.late + defects.out_of_order:
            first = Delivery(at + interval * rng.uniform(1.5, 3.5), (OUT_OF_ORDER,))
        else:
            first = Delivery(at, ())
        if rng.random() < defects.duplicate:
            return [first, Delivery(first.at + rng.uniform(1.0, 30.0), (*first.labels, DUPLICATE))]
        return [first]
