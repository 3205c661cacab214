"""The paths simulated vehicles drive: (lat, lon) points addressed by distance along them."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from telemetry.geometry import LatLon, bearing_deg, haversine_m


class TravelPath:
    """A path through (lat, lon) points, addressed by distance along it in metres."""

    __slots__ = ("_bearings", "cumulative", "length", "points")

    def __init__(self, points: Sequence[LatLon]) -> None:
        if len(points) < 2:
            raise ValueError("a path needs at least two points")
        self.points: tuple[LatLon, ...] = tuple(points)
        cumulative = [0.0]
        bearings = []
        for (a_lat, a_lon), (b_lat, b_lon) in zip(self.points, self.points[1:], strict=False):
            cumulative.append(cumulative[-1] + haversine_m(a_lat, a_lon, b_lat, b_lon))
            bearings.append(bearing_deg(a_lat, a_lon, b_lat, b_lon))
        self.cumulative: tuple[float, ...] = tuple(cumulative)
        self._bearings: tuple[float, ...] = tuple(bearings)
        self.length: float = cumulative[-1]

    def reversed(self) -> TravelPath:
        """The same path travelled the other way."""
        return TravelPath(self.points[::-1])

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
