"""Maintenance KPIs' arithmetic (pure): the storage gathers telemetry timestamps, this turns them
into rates, percentiles, times between failures, day-burning hours and warranty claims."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from telemetry.months import next_month, parse_month
from telemetry.solar import elevation_deg

#: Faults that leave a light dark: each episode on a light is one outage.
DARK_KINDS: Final = frozenset({"lampFailure", "controlGearFailure", "relayFailure", "supplyLoss"})
#: Group alerts whose listed lights each count as one outage.
GROUP_KINDS: Final = frozenset({"circuit_outage", "district_outage"})
#: Equipment failures, and the part each one is charged to (time between failures, warranty).
FAILED_PART: Final = {
    "lampFailure": "luminaire",
    "controlGearFailure": "driver",
    "relayFailure": "controller",
    "communicationFailure": "controller",
}
#: Alerts citizens opened (Open311): faults the telemetry did not see first.
CITIZEN_KIND: Final = "citizen_report"
#: Day-burning alert kinds: Rasd's own rule and the TALQ fault a light may report itself.
DAY_BURNING_KINDS: Final = frozenset({"day_burning", "lampUnexpectedOn"})
#: Longest gap between two energy readings still counted (as in the operating hours).
MAX_GAP_S: Final = 3 * 3600.0


def month_bounds(month: str, timezone: str) -> tuple[datetime, datetime]:
    """The first instant of a ``YYYY-MM`` local month and of the next one (ValueError if bad)."""
    first = parse_month(month)
    zone = ZoneInfo(timezone)
    start = datetime.combine(first, time(), zone)
    after = datetime.combine(next_month(first), time(), zone)
    return start.astimezone(UTC), after.astimezone(UTC)


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` in (0, 1]): the smallest value with at least that
    share of values at or below it; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered) - 1e-9))
    return ordered[rank - 1]


def per_thousand(count: int, points: int) -> float | None:
    """``count`` per 1,000 ``points``; None without points."""
    return None if points <= 0 else count * 1000.0 / points


def share(part: int, whole: int) -> float | None:
    """``part`` over ``whole``; None when ``whole`` is 0."""
    return None if whole <= 0 else part / whole


@dataclass(frozen=True, kw_only=True)
class RepairSample:
    """One repaired fault: first fault reading to first healthy reading."""

    district: str | None
    kind: str
    hours: float


@dataclass(frozen=True, kw_only=True)
class RepairStat:
    """Repair times of one district (None: the whole city) and kind."""

    district: str | None
    kind: str
    repairs: int
    p50_h: float | None
    p90_h: float | None
    within_48h: float | None  # share repaired within 48 hours


def repair_stats(samples: Iterable[RepairSample]) -> list[RepairStat]:
    """p50 / p90 per district and kind, then per kind for the whole city (district None)."""
    groups: dict[tuple[str | None, str], list[float]] = defaultdict(list)
    for s in samples:
        groups[(s.district, s.kind)].append(s.hours)
        groups[(None, s.kind)].append(s.hours)
    out = []
    for (district, kind), hours in groups.items():
        out.append(
            RepairStat(
                district=district,
                kind=kind,
                repairs=len(hours),
                p50_h=percentile(hours, 0.5),
                p90_h=percentile(hours, 0.9),
                within_48h=share(sum(1 for h in hours if h <= 48.0), len(hours)),
            )
        )
    return sorted(out, key=lambda r: (r.district is None, r.district or "", r.kind))


@dataclass(frozen=True, kw_only=True)
class ServiceSample:
    """A part in service during the period: its group (a model or a tender), when it went in,
    and how many failures were charged to it in the period."""

    group: str
    installed: datetime | None  # None: before the period
    failures: int


@dataclass(frozen=True, kw_only=True)
class BetweenFailures:
    """Mean time between failures of one group over the period."""

    group: str
    parts: int
    failures: int
    service_h: float
    mtbf_h: float | None  # None: no failure in the period


def between_failures(
    samples: Iterable[ServiceSample], start: datetime, end: datetime
) -> list[BetweenFailures]:
    """Per group: service hours in [start, end) over failures (a fleet MTBF estimate)."""
    hours: dict[str, float] = defaultdict(float)
    failures: dict[str, int] = defaultdict(int)
    parts: dict[str, int] = defaultdict(int)
    for s in samples:
        since = start if s.installed is None else max(start, s.installed)
        if since >= end:
            continue
        hours[s.group] += (end - since).total_seconds() / 3600.0
        failures[s.group] += s.failures
        parts[s.group] += 1
    return [
        BetweenFailures(
            group=g,
            parts=parts[g],
            failures=failures[g],
            service_h=round(hours[g], 3),
            mtbf_h=None if failures[g] == 0 else round(hours[g] / failures[g], 3),
        )
        for g in sorted(hours)
    ]


@dataclass(frozen=True, kw_only=True)
class Reading:
    """A light's energy reading as the day-burning count needs it."""

    at: datetime
    lit: bool


def daylight_burning_hours(
    readings: Sequence[Reading],
    lat: float,
    lon: float,
    windows: Sequence[tuple[datetime, datetime]],
    *,
    min_elevation_deg: float = 3.0,
    max_gap_s: float = MAX_GAP_S,
) -> float:
    """Hours a light burned with the Sun up, inside ``windows`` (its day-burning alerts).

    Between two readings the light is taken as the first says; the Sun's elevation is judged
    at the interval's middle, and gaps longer than ``max_gap_s`` are not counted."""
    total = 0.0
    ordered = sorted(readings, key=lambda r: r.at)
    for here, after in itertools.pairwise(ordered):
        gap = (after.at - here.at).total_seconds()
        if not here.lit or gap <= 0 or gap > max_gap_s:
            continue
        for lo, hi in windows:
            a, b = max(lo, here.at), min(hi, after.at)
            if b <= a:
                continue
            middle = a + (b - a) / 2
            if elevation_deg(middle.timestamp(), lat, lon) >= min_elevation_deg:
                total += (b - a).total_seconds()
    return total / 3600.0


def under_warranty(failed_on: date, warranty_until: date | None) -> bool:
    """A failure on ``failed_on`` (local day) is a warranty claim while the part's warranty runs."""
    return warranty_until is not None and failed_on <= warranty_until


def clipped_hours(start: datetime, end: datetime | None, lo: datetime, hi: datetime) -> float:
    """Hours of [start, end) (end None: still running at ``hi``) inside [lo, hi)."""
    a, b = max(start, lo), min(end or hi, hi)
    return max(0.0, (b - a) / timedelta(hours=1))
