"""Which local days (nights) a refresh pass materialises (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class RoundShift(Protocol):
    """When a round's shift runs, local time in its time zone (storage's ``RoundShift``)."""

    @property
    def shift_start(self) -> time: ...

    @property
    def shift_end(self) -> time: ...

    @property
    def timezone(self) -> str: ...


def last_complete_day(now: datetime, tz: ZoneInfo, settle: timedelta) -> date:
    """The newest local day that ended at least ``settle`` before ``now``."""
    return (now - settle).astimezone(tz).date() - timedelta(days=1)


def shift_end(night: date, shift: RoundShift) -> datetime:
    """When a round's shift that starts on ``night`` ends (an end at or before the start is on
    the next day, as the missed_collection rule reads it)."""
    zone = ZoneInfo(shift.timezone)
    end_day = night if shift.shift_end > shift.shift_start else night + timedelta(days=1)
    return datetime.combine(end_day, shift.shift_end, zone)


def last_complete_night(
    now: datetime, shifts: Sequence[RoundShift], settle: timedelta
) -> date | None:
    """The newest night all of whose shifts ended at least ``settle`` before ``now`` (None
    without rounds)."""
    if not shifts:
        return None
    night = now.date() + timedelta(days=1)
    while any(shift_end(night, s) > now - settle for s in shifts):
        night -= timedelta(days=1)
    return night


def days_to_refresh(
    watermark: date | None,
    first_day: date | None,
    last_complete: date | None,
    recheck_days: int,
) -> list[date]:
    """The days to (re)compute, oldest first: nothing while no new day is complete; else the
    new days, preceded by the ``recheck_days`` before the watermark (late readings); on the
    first pass every day from the first one with data."""
    if last_complete is None:
        return []
    if watermark is None:
        start = first_day
    elif watermark <= last_complete:
        start = watermark - timedelta(days=recheck_days)
        if first_day is not None:
            start = max(start, min(first_day, watermark))
    else:
        return []
    if start is None or start > last_complete:
        return []
    return days_between(start, last_complete)


def days_between(first: date, last: date) -> list[date]:
    """Every day in [first, last]."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
