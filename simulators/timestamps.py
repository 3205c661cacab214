"""Device timestamp formats: RFC 3339 in UTC or with an offset, and epoch milliseconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_RFC3339_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})([Tt ])(\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


@lru_cache(maxsize=8192)
def _date(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, tz=UTC).strftime("%Y-%m-%d")


def _clock(seconds: int, suffix: str) -> str:
    day, rem = divmod(seconds, 86_400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    return f"{_date(day)}T{hours:02d}:{minutes:02d}:{secs:02d}{suffix}"


def rfc3339_utc(t: int) -> str:
    """``2025-12-19T20:04:05Z`` for whole UTC epoch seconds."""
    return _clock(t, "Z")


def rfc3339_offset(t: int, offset_s: int) -> str:
    """``2025-12-19T21:04:05+01:00``: the same instant written in a local offset."""
    sign = "+" if offset_s >= 0 else "-"
    hours, rem = divmod(abs(offset_s), 3600)
    return _clock(t + offset_s, f"{sign}{hours:02d}:{rem // 60:02d}")


def epoch_ms(t: float) -> int:
    """Integer epoch milliseconds."""
    return round(t * 1000)


def shift_rfc3339(text: str, seconds: int) -> str | None:
    """The same timestamp moved by ``seconds``, written in the same style; None if unparseable."""
    match = _RFC3339_RE.match(text)
    if match is None:
        return None
    date_s, sep, clock_s, fraction, zone = match.groups()
    try:
        parsed = datetime.fromisoformat(f"{date_s}T{clock_s}{fraction or ''}{zone.upper()}")
    except ValueError:
        return None
    tz = parsed.tzinfo or UTC
    try:
        moved = (parsed + timedelta(seconds=seconds)).astimezone(tz)
    except OverflowError:
        return None
    out = moved.strftime("%Y-%m-%d") + sep + moved.strftime("%H:%M:%S")
    if fraction:
        digits = len(fraction) - 1
        micro = f"{moved.microsecond:06d}"
        out += "." + (micro[:digits] if digits <= 6 else micro + "0" * (digits - 6))
    return out + zone
