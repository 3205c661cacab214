"""Route deviation: a bus farther than ``route_max_distance_m`` from its route polyline for at
least ``route_min_s`` of driving (stopped fixes, e.g. at a depot, neither count nor clear)."""

from __future__ import annotations

import math
from typing import Final

from alerts.catalog import Catalog
from alerts.config import VehicleThresholds
from alerts.effects import AlertKey
from alerts.lifecycle import Lifecycle
from alerts.observations import Position, iso
from telemetry.geometry import EARTH_RADIUS_M, Polyline
from telemetry.reference_data import Asset
from telemetry.topics import Fleet

KIND = "route_deviation"

# A polyline measures in metres projected from degrees, at most this many per degree (of
# latitude; a degree of longitude is shorter).
_METRES_PER_DEGREE: Final = math.radians(1.0) * EARTH_RADIUS_M
_NEAR, _FAR, _EXACT = 0, 1, 2
_MAX_CELLS: Final = 1 << 16  # per route; forgotten all at once beyond it
_MAX_LINES: Final = 64  # routes are rebuilt on refresh: old ones are dropped beyond it


class _Cells:
    """A grid over the city telling, per cell, whether every point of it is within the
    distance limit of a route, beyond it, or too close to the limit to say without measuring.

    The distance to a polyline changes by at most the distance moved, so one distance
    measured at a cell's centre bounds it over the cell (half-diagonal ``reach``): the
    decision is the one a measurement at the point would give, and most fixes of a bus on
    its route need no measurement at all.
    """

    __slots__ = ("_cells", "_limit", "_line", "_reach", "_step")

    def __init__(self, line: Polyline, limit_m: float) -> None:
        self._line = line
        self._limit = limit_m
        self._step = limit_m / 4 / _METRES_PER_DEGREE  # degrees, both ways
        # Half-diagonal in metres, overestimated by 1 % against rounding.
        self._reach = math.sqrt(2.0) * self._step / 2 * _METRES_PER_DEGREE * 1.01
        self._cells: dict[tuple[int, int], int] = {}

    def classify(self, lat: float, lon: float) -> int:
        """_NEAR (within the limit), _FAR (beyond it) or _EXACT (measure the point)."""
        step = self._step
        key = (math.floor(lat / step), math.floor(lon / step))
        kind = self._cells.get(key)
        if kind is None:
            cells = self._cells
            if len(cells) >= _MAX_CELLS:
                cells.clear()
            centre = self._line.distance_m((key[0] + 0.5) * step, (key[1] + 0.5) * step)
            if centre + self._reach < self._limit:
                kind = _NEAR
            elif centre - self._reach > self._limit:
                kind = _FAR
            else:
                kind = _EXACT
            cells[key] = kind
        return kind


class RouteRule:
    """Tracks since when each bus has been off its route."""

    def __init__(self, life: Lifecycle, catalog: Catalog, thresholds: VehicleThresholds) -> None:
        self._life = life
        self._catalog = catalog
        self._t = thresholds
        self._off_since: dict[str, float] = {}
        self._cells: dict[Polyline, _Cells] = {}

    def _cells_of(self, line: Polyline) -> _Cells:
        cells = self._cells.get(line)
        if cells is None:
            if len(self._cells) >= _MAX_LINES:
                self._cells.clear()
            cells = self._cells[line] = _Cells(line, self._t.route_max_distance_m)
        return cells

    def observe(self, position: Position, moving: bool, asset: Asset | None) -> None:
        """Judge one bus fix (in device-time order); buses without a known shape are skipped."""
        line = self._catalog.route_of(asset, position.route)
        if line is None:
            return
        device = position.device_id
        key = AlertKey(KIND, device)
        kind = self._cells_of(line).classify(position.lat, position.lon)
        distance: float | None = None
        if kind == _EXACT:
            distance = line.distance_m(position.lat, position.lon)
            off_route = distance > self._t.route_max_distance_m
        else:
            off_route = kind == _FAR
        if not off_route:
            self._off_since.pop(device, None)
            self._life.fall(key, position.ts, "back on route")
            return
        if not moving:
            return
        since = self._off_since.setdefault(device, position.ts)
        if position.ts - since < self._t.route_min_s:
            return
        if distance is None:
            distance = line.distance_m(position.lat, position.lon)
        route = position.route or (asset.route if asset is not None else None)
        self._life.rise(
            key,
            position.ts,
            self._catalog.subject(device, Fleet.BUS),
            f"{device} {distance:.0f} m off route {route}",
            {
                "route": route,
                "distance_m": round(distance),
                "since": iso(since),
                "lat": position.lat,
                "lon": position.lon,
            },
        )
