"""Geometry on the city's scale (pure): great-circle distances, local offsets and bearings,
point-in-polygon, and route polylines measured against points.

A spherical Earth is enough here: across a city (tens of km) the local flat projections below
stay within a fraction of a percent of the sphere.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Final

EARTH_RADIUS_M: Final = 6_371_008.8
LatLon = tuple[float, float]


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres per degree of latitude and of longitude at ``lat`` (spherical Earth)."""
    per_lat = math.pi * EARTH_RADIUS_M / 180
    return per_lat, per_lat * math.cos(math.radians(lat))


def offset(lat: float, lon: float, east_m: float, north_m: float) -> LatLon:
    """The point ``east_m`` east and ``north_m`` north of (lat, lon)."""
    per_lat, per_lon = metres_per_degree(lat)
    return lat + north_m / per_lat, lon + east_m / per_lon


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial compass bearing from point 1 to point 2, in [0, 360)."""
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360.0


def point_in_polygon(lat: float, lon: float, polygon: Sequence[LatLon]) -> bool:
    """Even-odd rule on (lat, lon) vertices; fine for polygons a few km wide."""
    inside = False
    n = len(polygon)
    j = n - 1
    for i in range(n):
        yi, xi = polygon[i]
        yj, xj = polygon[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _segment_distance(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    if length2 == 0.0:
        return math.hypot(px - ax, py - ay)
    # Clamp the projection to the segment so the nearest point is an end when beyond it.
    u = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length2))
    return math.hypot(px - (ax + u * dx), py - (ay + u * dy))


class Polyline:
    """A route shape, projected once (equirectangular around its own mean latitude) for fast
    point distances."""

    __slots__ = ("_kx", "_lat0", "_lon0", "_xy", "points")
    _KY: Final = math.radians(1.0) * EARTH_RADIUS_M

    def __init__(self, points: Sequence[LatLon]) -> None:
        if not points:
            raise ValueError("a polyline needs at least one point")
        self.points: tuple[LatLon, ...] = tuple((float(lat), float(lon)) for lat, lon in points)
        self._lat0 = sum(p[0] for p in self.points) / len(self.points)
        self._lon0 = self.points[0][1]
        self._kx = self._KY * math.cos(math.radians(self._lat0))
        self._xy = tuple(self._project(lat, lon) for lat, lon in self.points)

    def _project(self, lat: float, lon: float) -> tuple[float, float]:
        return (lon - self._lon0) * self._kx, (lat - self._lat0) * self._KY

    def distance_m(self, lat: float, lon: float) -> float:
        """Metres from (lat, lon) to the nearest point of the polyline."""
        px, py = self._project(lat, lon)
        xy = self._xy
        if len(xy) == 1:
            return math.hypot(px - xy[0][0], py - xy[0][1])
        return min(
            _segment_distance(px, py, a[0], a[1], b[0], b[1]) for a, b in itertools.pairwise(xy)
        )
