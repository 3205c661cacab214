"""GTFS-Realtime VehiclePositions for the buses (pure: rows in, protobuf bytes out)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

from google.transit import gtfs_realtime_pb2

from telemetry.storage.positions import LatestPosition

MEDIA_TYPE: Final = "application/x-protobuf"
_KMH_TO_MS: Final = 1 / 3.6


def vehicle_positions_feed(buses: Iterable[LatestPosition], now: datetime) -> bytes:
    """A full-dataset FeedMessage with one VehiclePosition entity per bus."""
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.incrementality = gtfs_realtime_pb2.FeedHeader.FULL_DATASET
    feed.header.timestamp = int(now.timestamp())
    for bus in buses:
        entity = feed.entity.add()
        entity.id = bus.device_id
        vehicle = entity.vehicle
        vehicle.vehicle.id = bus.device_id
        if bus.label:
            vehicle.vehicle.label = bus.label
        if bus.route:
            # No GTFS static trips exist for Marrakech; the route alone identifies the line.
            vehicle.trip.route_id = bus.route
        vehicle.position.latitude = bus.lat
        vehicle.position.longitude = bus.lon
        if bus.heading_deg is not None:
            vehicle.position.bearing = bus.heading_deg
        if bus.speed_kmh is not None:
            vehicle.position.speed = bus.speed_kmh * _KMH_TO_MS
        vehicle.timestamp = int(bus.time.timestamp())
    data: bytes = feed.SerializeToString()
    return data
