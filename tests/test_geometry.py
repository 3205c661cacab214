"""Geometry and Sun position, pure, with hypothesis."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.geometry import Polyline, haversine_m
from telemetry.solar import elevation_deg, sin_elevation, sunrise_sunset

# Points around Marrakech (wider operations box, city-facts section 1).
lats = st.floats(min_value=31.55, max_value=31.90)
lons = st.floats(min_value=-8.20, max_value=-7.90)
points = st.tuples(lats, lons)
lines = st.lists(points, min_size=1, max_size=8)


@given(a=points, b=points)
def test_haversine_is_a_symmetric_distance(a: tuple[float, float], b: tuple[float, float]) -> None:
    d = haversine_m(*a, *b)
    assert d >= 0
    assert math.isclose(d, haversine_m(*b, *a), rel_tol=1e-9, abs_tol=1e-6)
    assert haversine_m(*a, *a) == 0


@given(a=points, b=points, c=points)
def test_haversine_triangle_inequality(
    a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]
) -> None:
    assert haversine_m(*a, *c) <= haversine_m(*a, *b) + haversine_m(*b, *c) + 1e-6


@settings(max_examples=300)
@given(line=lines, p=points)
def test_distance_to_a_polyline_is_at_most_that_to_any_vertex(
    line: list[tuple[float, float]], p: tuple[float, float]
) -> None:
    d = Polyline(line).distance_m(*p)
    nearest_vertex = min(haversine_m(*p, *v) for v in line)
    assert 0 <= d <= nearest_vertex * 1.005 + 0.5


@settings(max_examples=300)
@given(line=st.lists(points, min_size=2, max_size=8), k=st.integers(0, 6), u=st.floats(0, 1))
def test_points_on_the_polyline_are_at_distance_zero(
    line: list[tuple[float, float]], k: int, u: float
) -> None:
    a, b = line[k % (len(line) - 1)], line[k % (len(line) - 1) + 1]
    on = (a[0] + u * (b[0] - a[0]), a[1] + u * (b[1] - a[1]))
    # Straight in lat/lon is straight in the local projection: exact up to rounding.
    assert Polyline(line).distance_m(*on) < 0.01


@settings(max_examples=200)
@given(a=points, b=points)
def test_projection_matches_the_sphere_at_city_scale(
    a: tuple[float, float], b: tuple[float, float]
) -> None:
    assert math.isclose(
        Polyline([a]).distance_m(*b), haversine_m(*a, *b), rel_tol=0.005, abs_tol=0.5
    )


def test_marrakech_sunrise_and_sunset() -> None:
    # UTC; Marrakech local time is UTC+1: summer sunset 20:40, winter sunrise 08:27 local.
    for day, rise, set_ in (
        (date(2025, 6, 21), (5, 27), (19, 40)),
        (date(2025, 12, 19), (7, 27), (17, 32)),
    ):
        times = sunrise_sunset(day, 31.62583, -7.98944)
        assert times is not None
        for got, (h, m) in zip(times, (rise, set_), strict=True):
            want = datetime(day.year, day.month, day.day, h, m, tzinfo=UTC)
            assert abs((got - want).total_seconds()) < 4 * 60, (got, want)
        assert abs(elevation_deg(times[0].timestamp(), 31.62583, -7.98944) + 0.833) < 0.1
    # At an equinox the day is 12 h plus ~8 min of refraction and solar disc, at any latitude.
    rise_e, set_e = sunrise_sunset(date(2025, 3, 20), 31.62583, -7.98944) or (None, None)
    assert rise_e is not None
    assert set_e is not None
    assert abs((set_e - rise_e).total_seconds() - (12 * 3600 + 8 * 60)) < 180


def test_no_sunrise_in_polar_night() -> None:
    assert sunrise_sunset(date(2025, 12, 21), 80.0, 0.0) is None


@settings(max_examples=300)
@given(
    t=st.floats(min_value=1.7e9, max_value=1.8e9),
    lat=st.floats(min_value=-60, max_value=60),
    lon=st.floats(min_value=-180, max_value=180),
)
def test_elevation_is_the_same_scalar_and_vectorised(t: float, lat: float, lon: float) -> None:
    # One coding of the NOAA equations: the rules run it on floats, the simulators on arrays.
    phi = np.radians(np.array([[lat]]))
    sin_el = sin_elevation(
        np.array([[t]]), np.sin(phi), np.cos(phi), np.array([[lon]]), np.cos, np.sin
    )
    vectorised = float(np.degrees(np.arcsin(np.clip(sin_el, -1.0, 1.0)))[0, 0])
    assert abs(elevation_deg(t, lat, lon) - vectorised) < 1e-9
