"""Time ranges of requests: defaults, limits, alignment to local periods (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

Unit = Literal["hour", "day", "month"]


class RangeError(ValueError):
    """A time range is malformed or too long; the message says how."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open UTC interval [start, end)."""

    start: datetime
    end: datetime

    @property
    def span(self) -> timedelta:
        """end - start."""
        return self.end - self.start


#: The times a request may name. Nothing Rasd stores lies outside, and it keeps the arithmetic
#: of ranges (a default span back, the next local month) inside what ``datetime`` can hold.
EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)


def require_aware(name: str, value: datetime | None) -> datetime | None:
    """Refuse naive datetimes (a time without an offset is ambiguous) and times outside
    [EARLIEST, LATEST)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise RangeError(f"{name} needs a UTC offset, e.g. 2026-01-01T00:00:00+01:00 or ...Z")
    if not EARLIEST <= value < LATEST:
        raise RangeError(f"{name} must lie between {EARLIEST.year} and {LATEST.year - 1}")
    return value


def resolve_range(
    start: datetime | None,
    end: datetime | None,
    *,
    now: datetime,
    default_span: timedelta,
    max_span: timedelta,
) -> TimeRange:
    """Fill a missing end with ``now`` and a missing start with ``end - default_span``; check it."""
    require_aware("start", start)
    require_aware("end", end)
    end_ = (end or now).astimezone(UTC)
    start_ = (start or end_ - default_span).astimezone(UTC)
    if start_ >= end_:
        raise RangeError("start must be before end")
    if end_ - start_ > max_span:
        raise RangeError(f"range is {end_ - start_}, longer than the {max_span} allowed")
    return TimeRange(start_, end_)


def bucket_step(span: timedelta, max_points: int) -> timedelta:
    """The bucket width that cuts ``span`` into at most ``max_points`` buckets (>= 1 ms)."""
    step = span / max_points
    return max(step, timedelta(milliseconds=1)) + timedelta(microseconds=1)


def floor_local(moment: datetime, unit: Unit, tz: ZoneInfo) -> datetime:
    """The start of the local hour, day or month containing ``moment``, in UTC."""
    local = moment.astimezone(tz)
    if unit == "hour":
        local = local.replace(minute=0, second=0, microsecond=0)
    elif unit == "day":
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        local = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return local.astimezone(UTC)


def next_local(moment: datetime, unit: Unit, tz: ZoneInfo) -> datetime:
    """The start of the local period after the one that starts at ``moment``."""
    local = moment.astimezone(tz)
    if unit == "hour":
        return (moment + timedelta(hours=1)).astimezone(UTC)
    if unit == "day":
        following = (local.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=tz)
    else:
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        following = local.replace(tzinfo=None, year=year, month=month, day=1).replace(tzinfo=tz)
    return floor_local(following, unit, tz)


def periods_between(start: datetime, end: datetime, unit: Unit, tz: ZoneInfo) -> int:
    """How many local periods [start, end) spans once aligned outward."""
    count = 0
    cursor = floor_local(start, unit, tz)
    while cursor < end:
        cursor = next_local(cursor, unit, tz)
        count += 1
    return count


def energy_range(
    start: datetime | None,
    end: datetime | None,
    unit: Unit,
    tz: ZoneInfo,
    *,
    now: datetime,
    max_periods: int,
) -> TimeRange:
    """[start, end) widened to whole local periods; defaults to the last 24 periods."""
    require_aware("start", start)
    require_aware("end", end)
    end_ = end or now
    if start is None:
        begin = floor_local(end_, unit, tz)
        for _ in range(23):
            begin = floor_local(begin - timedelta(seconds=1), unit, tz)
        start_ = begin
    else:
        start_ = start
    if start_ >= end_:
        raise RangeError("start must be before end")
    aligned_start = floor_local(start_, unit, tz)
    aligned_end = floor_local(end_, unit, tz)
    if aligned_end < end_:
        aligned_end = next_local(aligned_end, unit, tz)
    # Cheap upper bound first, so a 1000-year request is refused without iterating.
    rough = (aligned_end - aligned_start) / {
        "hour": timedelta(hours=1),
        "day": timedelta(hours=23),
        "month": timedelta(days=28),
    }[unit]
    if (
        rough > max_periods * 1.2 + 2
        or periods_between(aligned_start, aligned_end, unit, tz) > max_periods
    ):
        raise RangeError(f"range covers more than {max_periods} {unit}s")
    return TimeRange(aligned_start, aligned_end)
