"""Run times between stops: the periods of the day, the default speeds, and the learned medians
that replace them once the stored traces hold enough passages."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from telemetry.gtfs.records import LinkTime

DAY_S: Final = 86_400


@dataclass(frozen=True, slots=True, kw_only=True)
class Period:
    """A band of local time (seconds after midnight) with its own typical speed."""

    name: str
    start_s: int
    end_s: int
    peak: bool


def _hm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60


# Marrakech's rush hours (city-facts section 2, as the simulator drives them): ~07:30-09:00,
# the midday return home 12:00-14:00 and 17:30-19:30.
PERIODS: Final = tuple(
    Period(name=name, start_s=_hm(a), end_s=_hm(b), peak=peak)
    for name, a, b, peak in (
        ("early", "00:00", "07:30", False),
        ("am-peak", "07:30", "09:00", True),
        ("morning", "09:00", "12:00", False),
        ("midday-peak", "12:00", "14:00", True),
        ("afternoon", "14:00", "17:30", False),
        ("pm-peak", "17:30", "19:30", True),
        ("evening", "19:30", "24:00", False),
    )
)
#: Commercial speeds (dwell included) before any trace is learned: city-facts gives ~15 km/h
#: for urban lines and 18 for the BRT; rush hour is about a fifth slower [A].
DEFAULT_KMH: Final = {False: 16.0, True: 13.0}
#: A learned median replaces the default only with this many passages behind it.
MIN_SAMPLES: Final = 5
#: No link is timed faster than this (a bus in town; also the validator's "fast travel" bound).
MAX_KMH: Final = 60.0


def period_at(seconds: float) -> Period:
    """The period a moment falls in (seconds after midnight, any day: taken modulo 24 h)."""
    s = seconds % DAY_S
    return next(p for p in PERIODS if p.start_s <= s < p.end_s)


def slices(start_s: int, end_s: int) -> list[tuple[int, int, Period]]:
    """``[start, end)`` cut at the period boundaries, as (start, end, period); an end before
    the start is on the next day (times past 24:00:00, as GTFS writes them)."""
    if end_s < start_s:
        end_s += DAY_S
    out: list[tuple[int, int, Period]] = []
    t = start_s
    while t < end_s:
        period = period_at(t)
        boundary = t - t % DAY_S + period.end_s
        stop = min(end_s, boundary)
        out.append((t, stop, period))
        t = stop
    return out


class RunTimes:
    """Seconds from one stop to the next: the learned median when there are enough passages,
    else the period's default speed; never faster than ``MAX_KMH``."""

    def __init__(self, learned: Iterable[LinkTime] = ()) -> None:
        self._learned: Mapping[tuple[str, str, str, str], LinkTime] = {
            (t.route_id, t.from_stop, t.to_stop, t.period): t
            for t in learned
            if t.samples >= MIN_SAMPLES and math.isfinite(t.median_s) and t.median_s > 0
        }

    def learned(self, route_id: str, from_stop: str, to_stop: str, period: Period) -> bool:
        """Whether this link in this period is timed from traces."""
        return (route_id, from_stop, to_stop, period.name) in self._learned

    def seconds(
        self, route_id: str, from_stop: str, to_stop: str, distance_m: float, period: Period
    ) -> int:
        """Whole seconds for the link departing in ``period`` (at least 1)."""
        fastest = distance_m / (MAX_KMH / 3.6)
        hit = self._learned.get((route_id, from_stop, to_stop, period.name))
        typical = hit.median_s if hit is not None else distance_m / (DEFAULT_KMH[period.peak] / 3.6)
        return max(1, math.ceil(max(typical, fastest)))
