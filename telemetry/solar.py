"""Where the Sun is: NOAA's general solar position equations, written once (pure).

Good to about a minute for sunrise and sunset and a few tenths of a degree in elevation, far
finer than a photocell. Longitudes are degrees east (Marrakech is about -8); times are UTC
epoch seconds or aware datetimes.

The equations use arithmetic and the ``cos``/``sin`` they are given, so the same code serves
one place at a time with floats and ``math`` (the alert rules) and a whole fleet of lights at
once with numpy arrays and ``np.cos``/``np.sin`` (the simulators). This module itself needs
nothing beyond the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    #: A float, or a numpy array of them (operations broadcast).
    Real = TypeVar("Real", float, npt.NDArray[np.float64])
else:
    Real = TypeVar("Real")

#: Geometric horizon plus refraction and the Sun's radius: the standard sunrise altitude.
SUNRISE_ELEVATION_DEG: Final = -0.833
_DAY_S: Final = 86_400.0
_EPOCH_2000: Final = 946_684_800.0  # 2000-01-01T00:00:00Z
_TROPICAL_YEAR_DAYS: Final = 365.2422
_RADIANS_PER_DEGREE: Final = math.pi / 180.0


def declination_and_eqtime(
    t: Real, cos: Callable[[Real], Real], sin: Callable[[Real], Real]
) -> tuple[Real, Real]:
    """Solar declination (radians) and equation of time (minutes) at UTC epoch seconds ``t``,
    with ``cos``/``sin`` from ``math`` (floats) or numpy (arrays)."""
    # Fractional year angle; counting from 2000 keeps it continuous across years, and the
    # tropical year drifts less than a minute of sunrise per decade.
    g = 2.0 * math.pi * (((t - _EPOCH_2000) / _DAY_S) % _TROPICAL_YEAR_DAYS) / _TROPICAL_YEAR_DAYS
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * cos(g)
        - 0.032077 * sin(g)
        - 0.014615 * cos(2 * g)
        - 0.040849 * sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * cos(g)
        + 0.070257 * sin(g)
        - 0.006758 * cos(2 * g)
        + 0.000907 * sin(2 * g)
        - 0.002697 * cos(3 * g)
        + 0.00148 * sin(3 * g)
    )
    return decl, eqtime


def sin_elevation(
    t: Real,
    sin_lat: Real,
    cos_lat: Real,
    lon_deg: Real,
    cos: Callable[[Real], Real] = math.cos,  # type: ignore[assignment]
    sin: Callable[[Real], Real] = math.sin,  # type: ignore[assignment]
) -> Real:
    """Sine of the Sun's elevation at UTC epoch ``t``; with arrays, times (e.g. a row)
    broadcast against places (a column)."""
    decl, eqtime = declination_and_eqtime(t, cos, sin)
    minutes_utc = (t % _DAY_S) / 60.0
    hour_angle = ((minutes_utc + eqtime + 4.0 * lon_deg) / 4.0 - 180.0) * _RADIANS_PER_DEGREE
    return sin_lat * sin(decl) + cos_lat * cos(decl) * cos(hour_angle)


def elevation_deg(t: float, lat: float, lon: float) -> float:
    """The Sun's elevation above the horizon, in degrees, at UTC epoch ``t`` and a place."""
    phi = math.radians(lat)
    sin_el = sin_elevation(t, math.sin(phi), math.cos(phi), lon)
    return math.degrees(math.asin(max(-1.0, min(1.0, sin_el))))


def elevation_at(when: datetime, lat: float, lon: float) -> float:
    """``elevation_deg`` for an aware datetime."""
    return elevation_deg(when.timestamp(), lat, lon)


def sunrise_sunset(day: date, lat: float, lon: float) -> tuple[datetime, datetime] | None:
    """UTC sunrise and sunset on the UTC date ``day``; None when the Sun does not rise or set."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    decl, eqtime = declination_and_eqtime(midnight.timestamp() + _DAY_S / 2, math.cos, math.sin)
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
