"""GTFS-Realtime VehiclePositions, TripUpdates and Alerts for the buses (pure: rows, matched
trips, predictions and alerts in, protobuf bytes out)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from google.transit import gtfs_realtime_pb2

from telemetry.gtfs.matching import TripInstance
from telemetry.gtfs.predictions import Arrival
from telemetry.storage.positions import LatestPosition

MEDIA_TYPE: Final = "application/x-protobuf"
_KMH_TO_MS: Final = 1 / 3.6
_NO_TRIPS: Final[Mapping[str, TripInstance]] = {}


def _message(now: datetime) -> gtfs_realtime_pb2.FeedMessage:
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.header.gtfs_realtime_version = "2.0"
    feed.header.incrementality = gtfs_realtime_pb2.FeedHeader.FULL_DATASET
    feed.header.timestamp = int(now.timestamp())
    return feed


def _describe(descriptor: gtfs_realtime_pb2.TripDescriptor, trip: TripInstance) -> None:
    """A frequency-based trip (exact_times=0): UNSCHEDULED, with start_time and start_date."""
    descriptor.trip_id = trip.trip_id
    descriptor.route_id = trip.route_id
    descriptor.direction_id = trip.direction_id
    descriptor.start_time = trip.start_time
    descriptor.start_date = trip.start_date
    descriptor.schedule_relationship = (
        gtfs_realtime_pb2.TripDescriptor.ScheduleRelationship.UNSCHEDULED
    )


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
            _describe(vehicle.trip, trip)
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


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictedTrip:
    """A bus on a trip instance and its predicted arrivals (in trip order)."""

    vehicle_id: str
    label: str | None
    trip: TripInstance
    arrivals: Sequence[Arrival]
    observed: datetime  # the fix the predictions start from


def trip_updates_feed(trips: Iterable[PredictedTrip], now: datetime) -> bytes:
    """A full-dataset FeedMessage with one TripUpdate per bus with arrivals ahead: the trip
    descriptor as VehiclePositions carries it, the vehicle, and each stop ahead with its
    stop_sequence and stop_id in ``stop_times.txt``, predicted arrival and departure times,
    all UNSCHEDULED (the trip is frequency-based). Trips without arrivals are left out."""
    feed = _message(now)
    header_time = feed.header.timestamp
    unscheduled = gtfs_realtime_pb2.TripUpdate.StopTimeUpdate.ScheduleRelationship.UNSCHEDULED
    for trip in trips:
        if not trip.arrivals:
            continue
        entity = feed.entity.add()
        entity.id = trip.vehicle_id
        update = entity.trip_update
        _describe(update.trip, trip.trip)
        update.vehicle.id = trip.vehicle_id
        if trip.label:
            update.vehicle.label = trip.label
        update.timestamp = min(int(trip.observed.timestamp()), header_time)
        for arrival in trip.arrivals:
            stop = update.stop_time_update.add()
            stop.stop_sequence = arrival.stop_sequence
            stop.stop_id = arrival.stop_id
            stop.arrival.time = int(arrival.arrival.timestamp())
            stop.departure.time = int(arrival.departure.timestamp())
            stop.schedule_relationship = unscheduled
    data: bytes = feed.SerializeToString()
    return data


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceAlert:
    """What passengers are told about one line (texts in the feed's language)."""

    alert_id: str
    route_id: str
    effect: int  # gtfs_realtime_pb2.Alert.Effect
    since: datetime
    header: str
    description: str


def service_alerts_feed(alerts: Iterable[ServiceAlert], now: datetime, lang: str) -> bytes:
    """A full-dataset FeedMessage with one Alert per line and condition, shown and in effect
    from when it began, naming the line (its route_id in ``routes.txt``)."""
    feed = _message(now)
    for alert in alerts:
        entity = feed.entity.add()
        entity.id = alert.alert_id
        body = entity.alert
        # Open-ended: the feed lists conditions that hold now (active_period is deprecated).
        body.communication_period.add().start = int(alert.since.timestamp())
        body.impact_period.add().start = int(alert.since.timestamp())
        body.informed_entity.add().route_id = alert.route_id
        body.cause = gtfs_realtime_pb2.Alert.Cause.UNKNOWN_CAUSE
        body.effect = alert.effect
        header = body.header_text.translation.add()
        header.text, header.language = alert.header, lang
        description = body.description_text.translation.add()
        description.text, description.language = alert.description, lang
    data: bytes = feed.SerializeToString()
    return data
