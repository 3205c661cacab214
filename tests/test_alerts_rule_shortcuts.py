"""Shortcuts in the rules decide as the exact computation would (hypothesis): the route rule's
grid of cells, the day-burning rule's cached Sun elevations."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.config import load_thresholds
from alerts.lifecycle import Lifecycle
from alerts.rules.day_burning import _SPREAD_DEG, DayBurningRule
from alerts.rules.route import _EXACT, _FAR, _NEAR, _Cells
from telemetry.geometry import Polyline
from telemetry.solar import elevation_deg

CENTRE = (31.62583, -7.98944)  # Marrakesh, where the bench city lies

offsets = st.tuples(
    st.floats(min_value=-0.05, max_value=0.05), st.floats(min_value=-0.05, max_value=0.05)
)


@settings(max_examples=300, deadline=None)
@given(
    shape=st.lists(offsets, min_size=1, max_size=12),
    points=st.lists(offsets, min_size=1, max_size=40),
    limit_m=st.floats(min_value=5.0, max_value=2000.0),
)
def test_a_cell_decides_as_the_distance_at_the_point(
    shape: list[tuple[float, float]], points: list[tuple[float, float]], limit_m: float
) -> None:
    line = Polyline([(CENTRE[0] + a, CENTRE[1] + b) for a, b in shape])
    cells = _Cells(line, limit_m)
    for a, b in points:
        lat, lon = CENTRE[0] + a, CENTRE[1] + b
        kind = cells.classify(lat, lon)
        distance = line.distance_m(lat, lon)
        if kind == _NEAR:
            assert distance <= limit_m
        elif kind == _FAR:
            assert distance > limit_m
        else:
            assert kind == _EXACT


def test_points_on_and_far_from_the_route_need_no_measurement() -> None:
    line = Polyline([(CENTRE[0] + 0.001 * k, CENTRE[1]) for k in range(60)])
    cells = _Cells(line, 150.0)
    assert cells.classify(CENTRE[0] + 0.0205, CENTRE[1]) == _NEAR
    assert cells.classify(CENTRE[0] + 0.02, CENTRE[1] + 0.05) == _FAR


@settings(max_examples=500, deadline=None)
@given(
    ts=st.floats(min_value=0.0, max_value=4.1e9),  # 1970 to 2099
    lat=st.floats(min_value=-89.0, max_value=89.0),
    lon=st.floats(min_value=-180.0, max_value=180.0),
)
def test_the_cached_sun_is_within_its_spread_of_the_exact_one(
    ts: float, lat: float, lon: float
) -> None:
    thresholds = load_thresholds()
    rule = DayBurningRule(Lifecycle(thresholds), thresholds.lights)
    assert abs(rule._sky_near(ts, lat, lon) - elevation_deg(ts, lat, lon)) <= _SPREAD_DEG
