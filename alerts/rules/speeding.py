"""Speeding: a vehicle above its fleet's limit for at least ``speeding_min_s`` (device time)."""

from __future__ import annotations

from alerts.catalog import Catalog
from alerts.config import VehicleThresholds
from alerts.effects import AlertKey
from alerts.lifecycle import Lifecycle
from alerts.observations import Position, iso
from telemetry.topics import Fleet

KIND = "speeding"


class SpeedingRule:
    """Tracks since when each vehicle has been over its limit, and its top speed."""

    def __init__(self, life: Lifecycle, catalog: Catalog, thresholds: VehicleThresholds) -> None:
        self._life = life
        self._catalog = catalog
        self._t = thresholds
        self._over: dict[str, tuple[float, float]] = {}  # device -> (since, top speed)

    def limit_kmh(self, fleet: Fleet) -> float:
        """The speed limit of a fleet."""
        if fleet is Fleet.TRUCK:
            return self._t.truck_speed_limit_kmh
        return self._t.bus_speed_limit_kmh

    def observe(self, position: Position, fleet: Fleet) -> None:
        """Judge one fix (in device-time order); fixes without a speed say nothing."""
        speed = position.speed_kmh
        if speed is None:
            return
        device = position.device_id
        key = AlertKey(KIND, device)
        limit = self.limit_kmh(fleet)
        if speed <= limit:
            self._over.pop(device, None)
            self._life.fall(key, position.ts, "speed back under the limit")
            return
        since, top = self._over.get(device, (position.ts, speed))
        top = max(top, speed)
        self._over[device] = (since, top)
        if position.ts - since < self._t.speeding_min_s:
            return
        self._life.rise(
            key,
            position.ts,
            self._catalog.subject(device, fleet),
            f"{device} at {top:.0f} km/h (limit {limit:.0f})",
            {
                "limit_kmh": limit,
                "top_kmh": round(top, 1),
                "since": iso(since),
                "lat": position.lat,
                "lon": position.lon,
            },
        )
