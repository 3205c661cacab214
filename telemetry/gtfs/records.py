"""The rows of a GTFS Schedule feed, one dataclass per file (field order = column order), and
what Rasd's network gives to build them from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from telemetry.geometry import LatLon

# -- what the feed is built from -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkStop:
    """A bus stop of the network (``bus_stops``)."""

    stop_id: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceBand:
    """A line's headway over a band of local time, in seconds after midnight (an end before
    the start runs past midnight)."""

    start_s: int
    end_s: int
    headway_s: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkLine:
    """A line (``devices.route``): its shape from terminus A, its stops in driving order from
    A, and its service bands. An empty shape is drawn through the stops."""

    route_id: str
    shape: Sequence[LatLon] = ()
    stop_ids: Sequence[str] = ()
    bands: Sequence[ServiceBand] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Network:
    """Everything the static feed is made of."""

    stops: Mapping[str, NetworkStop] = field(default_factory=dict)
    lines: Sequence[NetworkLine] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkTime:
    """The median time from one stop of a line to the next, learned from stored traces, for
    departures in one period of the day (``runtimes.PERIODS``)."""

    route_id: str
    from_stop: str
    to_stop: str
    period: str
    median_s: float
    samples: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StopDwell:
    """The median time buses of a line stay within the radius of one of its intermediate
    stops, learned from stored traces, for arrivals in one period of the day."""

    route_id: str
    stop_id: str
    period: str
    median_s: float
    samples: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedConfig:
    """Who runs the buses and who publishes the feed."""

    agency_id: str
    agency_name: str
    agency_url: str
    timezone: str
    lang: str
    publisher_name: str
    publisher_url: str
    contact_email: str | None = None
    contact_url: str | None = None
    start_date: date
    end_date: date


# -- the feed's files ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Agency:
    """agency.txt"""

    agency_id: str
    agency_name: str
    agency_url: str
    agency_timezone: str
    agency_lang: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """routes.txt (route_type 3: bus)"""

    route_id: str
    agency_id: str
    route_short_name: str
    route_long_name: str
    route_type: int = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    """stops.txt (location_type 0: a stop where passengers board)"""

    stop_id: str
    stop_name: str
    stop_lat: float
    stop_lon: float
    location_type: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ShapePoint:
    """shapes.txt"""

    shape_id: str
    shape_pt_lat: float
    shape_pt_lon: float
    shape_pt_sequence: int
    shape_dist_traveled: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Trip:
    """trips.txt"""

    route_id: str
    service_id: str
    trip_id: str
    trip_headsign: str
    direction_id: int
    shape_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StopTime:
    """stop_times.txt; times are seconds after the service day's noon minus 12 h (timepoint
    0: run times are typical, the buses keep headways, not times)."""

    trip_id: str
    arrival_time: int
    departure_time: int
    stop_id: str
    stop_sequence: int
    timepoint: int
    shape_dist_traveled: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Frequency:
    """frequencies.txt (exact_times 0: headway-based service)"""

    trip_id: str
    start_time: int
    end_time: int
    headway_secs: int
    exact_times: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Calendar:
    """calendar.txt"""

    service_id: str
    monday: int
    tuesday: int
    wednesday: int
    thursday: int
    friday: int
    saturday: int
    sunday: int
    start_date: date
    end_date: date


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedInfo:
    """feed_info.txt"""

    feed_publisher_name: str
    feed_publisher_url: str
    feed_lang: str
    feed_start_date: date
    feed_end_date: date
    feed_version: str
    feed_contact_email: str | None
    feed_contact_url: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Feed:
    """A whole static feed, rows in a stable order."""

    agency: tuple[Agency, ...]
    routes: tuple[Route, ...]
    stops: tuple[Stop, ...]
    shapes: tuple[ShapePoint, ...]
    trips: tuple[Trip, ...]
    stop_times: tuple[StopTime, ...]
    frequencies: tuple[Frequency, ...]
    calendar: tuple[Calendar, ...]
    feed_info: tuple[FeedInfo, ...]
