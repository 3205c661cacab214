"""Simulated time: parsing starts and durations, Marrakech local time, and real-time pacing."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

from simulators.errors import ScenarioError

#: Legal time: UTC+1 all year except UTC+0 during Ramadan (decree 2.18.855) [S].
CASABLANCA: Final = ZoneInfo("Africa/Casablanca")

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_S: Final = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | float | int) -> float:
    """Seconds from ``90``, ``"90s"``, ``"10m"``, ``"2h"``, ``"1d"`` or ``"1h30m"``."""
    if isinstance(text, int | float):
        if text < 0 or not math.isfinite(text):
            raise ScenarioError(f"duration {text!r} must be a finite number of seconds >= 0")
        return float(text)
    compact = text.strip().lower().replace(" ", "")
    if not compact:
        raise ScenarioError("empty duration")
    total = 0.0
    pos = 0
    for match in _DURATION_RE.finditer(compact):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    if pos != len(compact):
        raise ScenarioError(f"duration {text!r}: use seconds or a unit, e.g. 90, 10m, 2h, 1h30m")
    return total


def parse_start(text: str, now: float | None = None) -> float:
    """UTC epoch seconds from ``now``, ``now-1h`` / ``now+10m``, or ISO 8601 (an ISO time
    without offset is Marrakech local time)."""
    lowered = text.strip().lower()
    if lowered.startswith("now"):
        base = float(math.floor(time.time() if now is None else now))
        rest = lowered[3:].strip()
        if not rest:
            return base
        if rest[0] not in "+-":
            raise ScenarioError(f"start {text!r}: write now, now-1h or now+10m")
        delta = parse_duration(rest[1:])
        return base + delta if rest[0] == "+" else base - delta
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ScenarioError(f"start {text!r} is not 'now' or an ISO date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=CASABLANCA)
    return parsed.timestamp()


@lru_cache(maxsize=65_536)
def _offset_for_hour(hour: int) -> int:
    # Morocco changes its offset on whole hours, so one lookup per UTC hour is exact.
    offset = datetime.fromtimestamp(hour * 3600, tz=UTC).astimezone(CASABLANCA).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 3600


def utc_offset_s(t: float) -> int:
    """Marrakech's offset from UTC in seconds at UTC epoch ``t`` (3600, or 0 in Ramadan)."""
    return _offset_for_hour(int(t // 3600))


def local_seconds_of_day(t: float) -> float:
    """Seconds since local midnight in Marrakech."""
    return (t + utc_offset_s(t)) % 86_400.0


def local_midnight(t: float) -> float:
    """UTC epoch seconds of the local midnight that starts the day containing ``t``."""
    offset = utc_offset_s(t)
    return t - (t + offset) % 86_400.0


def is_ramadan(t: float) -> bool:
    """True during Ramadan, detected by Morocco switching to UTC+0 for it."""
    return utc_offset_s(t) == 0


def iso_local(t: float) -> str:
    """A readable Marrakech local time, for logs and headers."""
    return datetime.fromtimestamp(t, tz=CASABLANCA).isoformat()


class Pacer:
    """Holds back messages until their simulated time, scaled by ``speed``; None = no waiting."""

    def __init__(self, sim_start: float, speed: float | None) -> None:
        if speed is not None and speed <= 0:
            raise ScenarioError("speed must be positive")
        self.sim_start = sim_start
        self.speed = speed
        self._wall_start: float | None = None

    def wait(self, sim_time: float, idle: Callable[[float], None] = time.sleep) -> None:
        """Wait until ``sim_time`` is due in wall-clock terms, calling ``idle(seconds)``."""
        if self.speed is None:
            return
        now = time.monotonic()
        if self._wall_start is None:
            self._wall_start = now
        due = self._wall_start + (sim_time - self.sim_start) / self.speed
        if due > now:
            idle(due - now)


def ingest_window_warning(
    start: float,
    end: float | None,
    speed: float | None,
    now: float,
    max_age_s: float,
    max_future_s: float,
) -> str | None:
    """Why the ingestor would refuse a run's timestamps (older than it keeps, or running
    ahead of the wall clock), or None when they fit its window."""
    if start < now - max_age_s:
        return (
            f"start {iso_local(start)} is more than {max_age_s / 86400:g} days ago: the "
            "ingestor refuses such timestamps (use --start now, or now-1h with --fast)"
        )
    ahead = speed is None or speed > 1
    if ahead and (end is None or end > now + max_future_s):
        return (
            "simulated time will run ahead of the clock: timestamps more than "
            f"{max_future_s:g} s in the future are refused (with --fast, end the run by "
            "now, e.g. --start now-1h --duration 1h)"
        )
    return None
