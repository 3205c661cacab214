"""Idle: a truck stopped in one place too long, away from its depot (devices.lat/lon)."""

from __future__ import annotations

from alerts.catalog import Catalog
from alerts.config import VehicleThresholds
from alerts.effects import AlertKey
from alerts.lifecycle import Lifecycle
from alerts.observations import Position, iso
from telemetry.geometry import haversine_m
from telemetry.reference_data import Asset
from telemetry.topics import Fleet

KIND = "idle"


class IdleRule:
    """Tracks where and since when each truck has been standing."""

    def __init__(self, life: Lifecycle, catalog: Catalog, thresholds: VehicleThresholds) -> None:
        self._life = life
        self._catalog = catalog
        self._t = thresholds
        self._anchor: dict[str, tuple[float, float, float]] = {}  # device -> (since, lat, lon)

    def observe(self, position: Position, moving: bool, asset: Asset | None) -> None:
        """Judge one truck fix (in device-time order)."""
        device = position.device_id
        key = AlertKey(KIND, device)
        if moving:
            self._anchor.pop(device, None)
            self._life.fall(key, position.ts, "moving again")
            return
        anchor = self._anchor.get(device)
        if anchor is None or (
            haversine_m(anchor[1], anchor[2], position.lat, position.lon) > self._t.idle_radius_m
        ):
            self._anchor[device] = (position.ts, position.lat, position.lon)
            self._life.fall(key, position.ts, "moved away")
            return
        since = anchor[0]
        if position.ts - since < self._t.idle_max_s:
            return
        if (
            asset is not None
            and asset.lat is not None
            and asset.lon is not None
            and haversine_m(asset.lat, asset.lon, anchor[1], anchor[2])
            <= self._t.idle_home_radius_m
        ):
            return  # parked at the depot
        minutes = (position.ts - since) / 60
        self._life.rise(
            key,
            position.ts,
            self._catalog.subject(device, Fleet.TRUCK),
            f"{device} standing for {minutes:.0f} min",
            {"since": iso(since), "lat": anchor[1], "lon": anchor[2]},
        )
