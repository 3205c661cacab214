"""Shapes at city scale: lengths on the sphere, and a point's progress along a polyline.

Each segment is measured with the haversine formula; a point is projected onto a segment in
a local equirectangular plane (around the shape's mean latitude), which over tens of km stays
within a fraction of a percent of the sphere.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from telemetry.geometry import EARTH_RADIUS_M, LatLon, haversine_m

_KY: Final = math.radians(1.0) * EARTH_RADIUS_M


@dataclass(frozen=True, slots=True, kw_only=True)
class Projection:
    """Where a point falls on a shape: metres along it, and metres away from it."""

    along_m: float
    offset_m: float


class Shape:
    """A polyline with its cumulative distances (consecutive duplicate points dropped)."""

    __slots__ = ("_kx", "_lat0", "_xy", "cumulative", "points")

    def __init__(self, points: Sequence[LatLon]) -> None:
        kept: list[LatLon] = []
        for lat, lon in points:
            point = (float(lat), float(lon))
            if not kept or kept[-1] != point:
                kept.append(point)
        if len(kept) < 2:
            raise ValueError("a shape needs two distinct points")
        self.points: tuple[LatLon, ...] = tuple(kept)
        cumulative = [0.0]
        for a, b in itertools.pairwise(kept):
            cumulative.append(cumulative[-1] + haversine_m(a[0], a[1], b[0], b[1]))
        self.cumulative: tuple[float, ...] = tuple(cumulative)
        self._lat0 = sum(p[0] for p in kept) / len(kept)
        self._kx = _KY * math.cos(math.radians(self._lat0))
        self._xy = tuple(self._plane(lat, lon) for lat, lon in kept)

    @property
    def length_m(self) -> float:
        """Total length in metres."""
        return self.cumulative[-1]

    def reversed(self) -> Shape:
        """The same road driven the other way."""
        return Shape(self.points[::-1])

    def _plane(self, lat: float, lon: float) -> tuple[float, float]:
        return lon * self._kx, (lat - self._lat0) * _KY

    def _segment(self, i: int, px: float, py: float) -> tuple[float, float]:
        """(fraction along segment i, planar distance) of the point's foot on it."""
        (ax, ay), (bx, by) = self._xy[i], self._xy[i + 1]
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        u = 0.0 if length2 == 0.0 else ((px - ax) * dx + (py - ay) * dy) / length2
        u = max(0.0, min(1.0, u))
        return u, math.hypot(px - (ax + u * dx), py - (ay + u * dy))

    def project(
        self, lat: float, lon: float, *, from_m: float = 0.0, near_m: float | None = None
    ) -> Projection:
        """The nearest point of the shape at or beyond ``from_m`` metres along it; with
        ``near_m``, segments within 2 km of that progress win over farther ones (a road
        that passes itself twice)."""
        px, py = self._plane(lat, lon)
        first = max(0, bisect.bisect_right(self.cumulative, from_m) - 1)
        best: tuple[float, float, float] | None = None  # (rank, offset, along)
        for i in range(first, len(self.points) - 1):
            u, offset = self._segment(i, px, py)
            start, end = self.cumulative[i], self.cumulative[i + 1]
            along = start + u * (end - start)
            if along < from_m:
                along = from_m
                foot = self.at(from_m)
                offset = haversine_m(lat, lon, foot[0], foot[1])
            rank = offset
            if near_m is not None and abs(along - near_m) > 2000.0:
                rank += 1e6
            if best is None or rank < best[0]:
                best = (rank, offset, along)
        assert best is not None
        return Projection(along_m=best[2], offset_m=best[1])

    def at(self, along_m: float) -> LatLon:
        """The point ``along_m`` metres from the start (clamped to the ends)."""
        if along_m <= 0.0:
            return self.points[0]
        if along_m >= self.length_m:
            return self.points[-1]
        i = bisect.bisect_right(self.cumulative, along_m) - 1
        start, end = self.cumulative[i], self.cumulative[i + 1]
        u = (along_m - start) / (end - start) if end > start else 0.0
        (lat_a, lon_a), (lat_b, lon_b) = self.points[i], self.points[i + 1]
        return lat_a + u * (lat_b - lat_a), lon_a + u * (lon_b - lon_a)


def place_stops(shape: Shape, stops: Sequence[LatLon], *, min_gap_m: float = 1.0) -> list[float]:
    """Each stop's distance along ``shape``, in driving order and strictly increasing by at
    least ``min_gap_m`` (NaN for a stop that cannot come after the previous one)."""
    placed: list[float] = []
    floor = 0.0
    first = True
    for lat, lon in stops:
        start = floor if first else floor + min_gap_m
        if start > shape.length_m:
            placed.append(math.nan)
            continue
        along = shape.project(lat, lon, from_m=start).along_m
        placed.append(along)
        floor = along
        first = False
    return placed
