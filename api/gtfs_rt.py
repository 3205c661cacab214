"""GTFS-Realtime VehiclePositions for the buses (pure: rows and matched trips in, protobuf
bytes out)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

from google.transit import gtfs_realtime_pb2

from telemetry.gtfs.matching import TripInstance
from telemetry.storage.positions import LatestPosition

MEDIA_TYPE: Final = "application/x-protobuf"
_KMH_TO_MS: Final = 1 / 3.6
_NO_TRIPS: Final[Mapping[str, TripInstance]] = {}


def vehicle_positions_feed(
    buses: Iterable[LatestPosition],
    now: datetime,
    trips: Mapping[str, TripInstance] = _NO_TRIPS,
) -> bytes:
    """A full-dataset FeedMessage with one VehiclePosition entity per bus; a bus matched to a
    trip instance of the static feed carries its descriptor (frequency-based, exact_times=0:
    UNSCHEDULED with start_time and start_date), any other bus none."""
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.incrementality = gtfs_realtime_pb2.FeedHeader.FULL_DATASET
    header_time = int(now.timestamp())
    feed.header.timestamp = header_time
    for bus in buses:
        entity = feed.entity.add()
        entity.id = bus.device_id
        vehicle = entity.vehicle
        vehicle.vehicle.id = bus.device_id
        if bus.label:
            vehicle.vehicle.label = bus.label
        trip = trips.get(bus.device_id)
        if trip is not None:
            vehicle.trip.trip_id = trip.trip_id
            vehicle.trip.route_id = trip.route_id
            vehicle.trip.direction_id = trip.direction_id
            vehicle.trip.start_time = trip.start_time
            vehicle.trip.start_date = trip.start_date
            vehicle.trip.schedule_relationship = (
                gtfs_realtime_pb2.TripDescriptor.ScheduleRelationship.UNSCHEDULED
            )
        vehicle.position.latitude = bus.lat
        vehicle.position.longitude = bus.lon
        if bus.heading_deg is not None:
            vehicle.position.bearing = bus.heading_deg
        if bus.speed_kmh is not None:
            vehicle.position.speed = bus.speed_kmh * _KMH_TO_MS
        # A device clock a little ahead must not date a fix after the feed itself.
        vehicle.timestamp = min(int(bus.time.timestamp()), header_time)
    data: bytes = feed.SerializeToString()
    return data
