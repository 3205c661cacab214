"""Route deviation: a bus farther than ``route_max_distance_m`` from its route polyline for at
least ``route_min_s`` of driving (stopped fixes, e.g. at a depot, neither count nor clear)."""

from __future__ import annotations

from alerts.catalog import Catalog
from alerts.config import VehicleThresholds
from alerts.effects import AlertKey
from alerts.lifecycle import Lifecycle
from alerts.observations import Position, iso
from telemetry.reference_data import Asset
from telemetry.topics import Fleet

KIND = "route_deviation"


class RouteRule:
    """Tracks since when each bus has been off its route."""

    def __init__(self, life: Lifecycle, catalog: Catalog, thresholds: VehicleThresholds) -> None:
        self._life = life
        self._catalog = catalog
        self._t = thresholds
        self._off_since: dict[str, float] = {}

    def observe(self, position: Position, moving: bool, asset: Asset | None) -> None:
        """Judge one bus fix (in device-time order); buses without a known shape are skipped."""
        line = self._catalog.route_of(asset, position.route)
        if line is None:
            return
        device = position.device_id
        key = AlertKey(KIND, device)
        distance = line.distance_m(position.lat, position.lon)
        if distance <= self._t.route_max_distance_m:
            self._off_since.pop(device, None)
            self._life.fall(key, position.ts, "back on route")
            return
        if not moving:
            return
        since = self._off_since.setdefault(device, position.ts)
        if position.ts - since < self._t.route_min_s:
            return
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
