"""Where the Sun is: NOAA's general solar position equations (pure, scalar, no dependencies).

Good to about a minute for sunrise and sunset and a few tenths of a degree in elevation, far
finer than a photocell. Longitudes are degrees east (Marrakech is about -8); times are UTC
epoch seconds or aware datetimes.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Final

#: Geometric horizon plus refraction and the Sun's radius: the standard sunrise altitude.
SUNRISE_ELEVATION_DEG: Final = -0.833
_DAY_S: Final = 86_400.0
_EPOCH_2000: Final = 946_684_800.0  # 2000-01-01T00:00:00Z
_TROPICAL_YEAR_DAYS: Final = 365.2422


def _declination_and_eqtime(t: float) -> tuple[float, float]:
    """Solar declination (radians) and equation of time (minutes) at UTC epoch seconds ``t``."""
    # Fractional year angle; counting from 2000 keeps it continuous across years.
    g = 2.0 * math.pi * (((t - _EPOCH_2000) / _DAY_S) % _TROPICAL_YEAR_DAYS) / _TROPICAL_YEAR_DAYS
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )
    return decl, eqtime


def elevation_deg(t: float, lat: float, lon: float) -> float:
    """The Sun's elevation above the horizon, in degrees, at UTC epoch ``t`` and a place."""
    decl, eqtime = _declination_and_eqtime(t)
    minutes_utc = (t % _DAY_S) / 60.0
    hour_angle = math.radians((minutes_utc + eqtime + 4.0 * lon) / 4.0 - 180.0)
    phi = math.radians(lat)
    sin_el = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(hour_angle)
    return math.degrees(math.asin(max(-1.0, min(1.0, sin_el))))


def elevation_at(when: datetime, lat: float, lon: float) -> float:
    """``elevation_deg`` for an aware datetime."""
    return elevation_deg(when.timestamp(), lat, lon)


def sunrise_sunset(day: date, lat: float, lon: float) -> tuple[datetime, datetime] | None:
    """UTC sunrise and sunset on the UTC date ``day``; None when the Sun does not rise or set."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    decl, eqtime = _declination_and_eqtime(midnight.timestamp() + _DAY_S / 2)
    phi = math.radians(lat)
    cos_h = (math.sin(math.radians(SUNRISE_ELEVATION_DEG)) - math.sin(phi) * math.sin(decl)) / (
        math.cos(phi) * math.cos(decl)
    )
    if not -1.0 <= cos_h <= 1.0:
        return None  # polar day or night
    h = math.degrees(math.acos(cos_h))
    rise_min = 720.0 - 4.0 * (lon + h) - eqtime
    set_min = 720.0 - 4.0 * (lon - h) - eqtime
    return midnight + timedelta(minutes=rise_min), midnight + timedelta(minutes=set_min)
