"""Small-area geodesy for one city: distances, offsets, bearings, polylines, polygons."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Final

EARTH_RADIUS_M: Final = 6_371_008.8

LatLon = tuple[float, float]


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
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


class Polyline:
    """A path through (lat, lon) points, addressed by distance along it in metres."""

    __slots__ = ("_bearings", "cumulative", "length", "points")

    def __init__(self, points: Sequence[LatLon]) -> None:
        if len(points) < 2:
            raise ValueError("a polyline needs at least two points")
        self.points: tuple[LatLon, ...] = tuple(points)
        cumulative = [0.0]
        bearings = []
        for (a_lat, a_lon), (b_lat, b_lon) in zip(self.points, self.points[1:], strict=False):
            cumulative.append(cumulative[-1] + haversine_m(a_lat, a_lon, b_lat, b_lon))
            bearings.append(bearing_deg(a_lat, a_lon, b_lat, b_lon))
        self.cumulative: tuple[float, ...] = tuple(cumulative)
        self._bearings: tuple[float, ...] = tuple(bearings)
        self.length: float = cumulative[-1]

    def reversed(self) -> Polyline:
        """The same path travelled the other way."""
        return Polyline(self.points[::-1])

    def at(self, distance: float) -> tuple[float, float, float]:
        """(lat, lon, heading) at ``distance`` metres from the start, clamped to the ends."""
        cum = self.cumulative
        if distance <= 0:
            i = 0
            frac = 0.0
        elif distance >= self.length:
            i = len(cum) - 2
            frac = 1.0
        else:
            i = bisect_right(cum, distance) - 1
            span = cum[i + 1] - cum[i]
            frac = (distance - cum[i]) / span if span > 0 else 0.0
        (a_lat, a_lon), (b_lat, b_lon) = self.points[i], self.points[i + 1]
        return a_lat + (b_lat - a_lat) * frac, a_lon + (b_lon - a_lon) * frac, self._bearings[i]

    def distance_to(self, lat: float, lon: float) -> float:
        """Shortest distance in metres from a point to the path (local flat projection)."""
        per_lat, per_lon = metres_per_degree(lat)
        best = math.inf
        for (a_lat, a_lon), (b_lat, b_lon) in zip(self.points, self.points[1:], strict=False):
            ax, ay = (a_lon - lon) * per_lon, (a_lat - lat) * per_lat
            bx, by = (b_lon - lon) * per_lon, (b_lat - lat) * per_lat
            dx, dy = bx - ax, by - ay
            seg2 = dx * dx + dy * dy
            t = 0.0 if seg2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / seg2))
            px, py = ax + t * dx, ay + t * dy
            best = min(best, math.hypot(px, py))
        return best

    def locate(self, lat: float, lon: float) -> float:
        """Distance along the path of the path point closest to (lat, lon)."""
        per_lat, per_lon = metres_per_degree(lat)
        best = math.inf
        where = 0.0
        for i, ((a_lat, a_lon), (b_lat, b_lon)) in enumerate(
            zip(self.points, self.points[1:], strict=False)
        ):
            ax, ay = (a_lon - lon) * per_lon, (a_lat - lat) * per_lat
            bx, by = (b_lon - lon) * per_lon, (b_lat - lat) * per_lat
            dx, dy = bx - ax, by - ay
            seg2 = dx * dx + dy * dy
            t = 0.0 if seg2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / seg2))
            d = math.hypot(ax + t * dx, ay + t * dy)
            if d < best:
                best = d
                where = self.cumulative[i] + t * (self.cumulative[i + 1] - self.cumulative[i])
        return where
