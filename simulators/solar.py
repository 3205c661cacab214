"""Sun position (NOAA general solar position equations): elevation, sunrise and sunset.

Accurate to about a minute for sunrise/sunset, far better than a photocell. ``lon`` is
degrees east (Marrakech is about -8). Times are UTC epoch seconds.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Geometric horizon plus refraction and the Sun's radius: the standard sunrise altitude.
SUNRISE_ELEVATION_DEG: Final = -0.833


def _year_angle(t: FloatArray) -> FloatArray:
    # Fractional year in radians; days since 2000-01-01 work because the formula is periodic
    # and the tropical year drifts less than a minute of sunrise per decade.
    days = (t - 946_684_800.0) / 86_400.0
    return 2.0 * math.pi * ((days % 365.2422) / 365.2422)


def declination_and_eqtime(t: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Solar declination (radians) and equation of time (minutes) at UTC epoch seconds."""
    g = _year_angle(t)
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * np.cos(g)
        - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g)
        - 0.040849 * np.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )
    return decl, eqtime


def sin_elevation(
    t: FloatArray, sin_lat: FloatArray, cos_lat: FloatArray, lon_deg: FloatArray
) -> FloatArray:
    """Sine of the Sun's elevation; broadcasts times (e.g. a row) against places (a column)."""
    decl, eqtime = declination_and_eqtime(t)
    minutes_utc = (t % 86_400.0) / 60.0
    hour_angle = np.radians((minutes_utc + eqtime + 4.0 * lon_deg) / 4.0 - 180.0)
    result: FloatArray = sin_lat * np.sin(decl) + cos_lat * np.cos(decl) * np.cos(hour_angle)
    return result


def elevation_deg(t: float, lat: float, lon: float) -> float:
    """The Sun's elevation above the horizon in degrees at one place and time."""
    phi = math.radians(lat)
    s = sin_elevation(
        np.array([t]), np.array([math.sin(phi)]), np.array([math.cos(phi)]), np.array([lon])
    )
    return math.degrees(math.asin(max(-1.0, min(1.0, float(s[0])))))


def sunrise_sunset(day_noon_utc: float, lat: float, lon: float) -> tuple[float, float]:
    """UTC epoch seconds of sunrise and sunset on the day containing ``day_noon_utc``."""
    midnight = day_noon_utc - day_noon_utc % 86_400.0
    decl_a, eqtime_a = declination_and_eqtime(np.array([midnight + 43_200.0]))
    decl, eqtime = float(decl_a[0]), float(eqtime_a[0])
    phi = math.radians(lat)
    cos_h = (math.sin(math.radians(SUNRISE_ELEVATION_DEG)) - math.sin(phi) * math.sin(decl)) / (
        math.cos(phi) * math.cos(decl)
    )
    h = math.degrees(math.acos(max(-1.0, min(1.0, cos_h))))
    rise = 720.0 - 4.0 * (lon + h) - eqtime
    set_ = 720.0 - 4.0 * (lon - h) - eqtime
    return midnight + rise * 60.0, midnight + set_ * 60.0
