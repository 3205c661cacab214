"""The static feed of the network: one trip per line, direction and slice of service (a
service band cut at the periods of the day), each a frequency-based trip with typical run
times. Ids come from line, direction, stop ids and times, never from row order, so an unchanged
network exports the same ids (and, with the same learned times, the same bytes)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from telemetry.gtfs import csvzip
from telemetry.gtfs.geometry import Shape, place_stops
from telemetry.gtfs.records import (
    Agency,
    Calendar,
    Feed,
    FeedConfig,
    FeedInfo,
    Frequency,
    LinkTime,
    Network,
    NetworkLine,
    NetworkStop,
    Route,
    ShapePoint,
    Stop,
    StopTime,
    Trip,
)
from telemetry.gtfs.runtimes import RunTimes, period_at, slices

SERVICE_ID = "daily"
DIRECTIONS = (0, 1)  # 0: from the line's first terminus (A), 1: back towards it


@dataclass(frozen=True, slots=True, kw_only=True)
class TripPattern:
    """One frequency-based trip as the live matching needs it: its window of start times
    (service-day seconds), and each stop's distance along the direction's shape and time
    after the start."""

    trip_id: str
    route_id: str
    direction_id: int
    start_s: int
    end_s: int
    stop_ids: tuple[str, ...]
    stop_dist_m: tuple[float, ...]
    stop_offset_s: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LineTimetable:
    """A line in the feed: its shape from terminus A and its trips in both directions."""

    route_id: str
    shape: Shape
    trips: tuple[TripPattern, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StaticFeed:
    """The feed's rows, its files, and the timetable the live matching reads."""

    feed: Feed
    files: Mapping[str, bytes]
    timezone: str
    lines: Mapping[str, LineTimetable]

    @property
    def version(self) -> str:
        """``feed_version``: a hash of every file but feed_info.txt."""
        return self.feed.feed_info[0].feed_version

    def zip(self) -> bytes:
        """The feed as a zip archive."""
        return csvzip.zip_bytes(self.files)


def shape_id(route_id: str, direction_id: int) -> str:
    """The shape of a line in one direction."""
    return f"{route_id}-{direction_id}"


def trip_id(route_id: str, direction_id: int, start_s: int) -> str:
    """A line's trip in one direction for the slice of service starting at ``start_s``."""
    hours, rest = divmod(start_s, 3600)
    return f"{route_id}-{direction_id}-{hours:02d}{rest // 60:02d}"


def _round(value: float) -> float:
    return round(value, 2)


@dataclass(frozen=True, slots=True)
class _Placed:
    route_id: str
    shape: Shape  # direction 0
    stops: tuple[NetworkStop, ...]  # direction 0 order
    dist_m: tuple[float, ...]  # along ``shape``


def _place(line: NetworkLine, stops: Mapping[str, NetworkStop]) -> _Placed | None:
    known = [stops[s] for s in line.stop_ids if s in stops]
    if len(known) < 2 or not line.bands:
        return None
    try:
        shape = Shape(line.shape) if len(set(line.shape)) >= 2 else None
    except ValueError:
        shape = None
    if shape is None:
        try:
            shape = Shape([(s.lat, s.lon) for s in known])
        except ValueError:
            return None
    dist = place_stops(shape, [(s.lat, s.lon) for s in known])
    kept = [(s, d) for s, d in zip(known, dist, strict=True) if not math.isnan(d)]
    # A stop placed twice at one rounded distance would read as going backwards.
    unique: list[tuple[NetworkStop, float]] = []
    for stop, d in kept:
        if not unique or _round(d) > _round(unique[-1][1]):
            unique.append((stop, d))
    if len(unique) < 2:
        return None
    return _Placed(line.route_id, shape, tuple(s for s, _ in unique), tuple(d for _, d in unique))


def build_feed(
    network: Network, config: FeedConfig, learned: Iterable[LinkTime] = ()
) -> StaticFeed:
    """The static GTFS of ``network``: lines with fewer than two known stops or no service
    band are left out."""
    runtimes = RunTimes(learned)
    placed = sorted(
        (p for line in network.lines if (p := _place(line, network.stops)) is not None),
        key=lambda p: p.route_id,
    )
    bands = {line.route_id: line.bands for line in network.lines}
    routes: list[Route] = []
    shapes: list[ShapePoint] = []
    trips: list[Trip] = []
    stop_times: list[StopTime] = []
    frequencies: list[Frequency] = []
    lines: dict[str, LineTimetable] = {}
    used: set[str] = set()
    for line in placed:
        rid = line.route_id
        used.update(s.stop_id for s in line.stops)
        first, last = line.stops[0], line.stops[-1]
        routes.append(
            Route(
                route_id=rid,
                agency_id=config.agency_id,
                route_short_name=rid,
                route_long_name=f"{first.name} – {last.name}",
            )
        )
        patterns: list[TripPattern] = []
        for direction in DIRECTIONS:
            shape = line.shape if direction == 0 else line.shape.reversed()
            if direction == 0:
                order, dist = line.stops, line.dist_m
            else:
                order = line.stops[::-1]
                dist = tuple(max(0.0, line.shape.length_m - d) for d in line.dist_m[::-1])
            sid = shape_id(rid, direction)
            shapes.extend(
                ShapePoint(
                    shape_id=sid,
                    shape_pt_lat=round(lat, 6),
                    shape_pt_lon=round(lon, 6),
                    shape_pt_sequence=k + 1,
                    shape_dist_traveled=_round(d),
                )
                for k, ((lat, lon), d) in enumerate(
                    zip(shape.points, shape.cumulative, strict=True)
                )
            )
            for band in sorted(bands[rid], key=lambda b: b.start_s):
                for start, end, _ in slices(band.start_s, band.end_s):
                    tid = trip_id(rid, direction, start)
                    trips.append(
                        Trip(
                            route_id=rid,
                            service_id=SERVICE_ID,
                            trip_id=tid,
                            trip_headsign=order[-1].name,
                            direction_id=direction,
                            shape_id=sid,
                        )
                    )
                    frequencies.append(
                        Frequency(
                            trip_id=tid, start_time=start, end_time=end, headway_secs=band.headway_s
                        )
                    )
                    offsets = [0]
                    for k in range(1, len(order)):
                        at = start + offsets[-1]
                        offsets.append(
                            offsets[-1]
                            + runtimes.seconds(
                                rid,
                                order[k - 1].stop_id,
                                order[k].stop_id,
                                dist[k] - dist[k - 1],
                                period_at(at),
                            )
                        )
                    stop_times.extend(
                        StopTime(
                            trip_id=tid,
                            arrival_time=start + offset,
                            departure_time=start + offset,
                            stop_id=stop.stop_id,
                            stop_sequence=k + 1,
                            timepoint=0,
                            shape_dist_traveled=_round(d),
                        )
                        for k, (stop, d, offset) in enumerate(
                            zip(order, dist, offsets, strict=True)
                        )
                    )
                    patterns.append(
                        TripPattern(
                            trip_id=tid,
                            route_id=rid,
                            direction_id=direction,
                            start_s=start,
                            end_s=end,
                            stop_ids=tuple(s.stop_id for s in order),
                            stop_dist_m=tuple(dist),
                            stop_offset_s=tuple(offsets),
                        )
                    )
        lines[rid] = LineTimetable(route_id=rid, shape=line.shape, trips=tuple(patterns))
    stops = tuple(
        Stop(
            stop_id=s.stop_id, stop_name=s.name, stop_lat=round(s.lat, 6), stop_lon=round(s.lon, 6)
        )
        for s in sorted((network.stops[i] for i in used), key=lambda s: s.stop_id)
    )
    feed = Feed(
        agency=(
            Agency(
                agency_id=config.agency_id,
                agency_name=config.agency_name,
                agency_url=config.agency_url,
                agency_timezone=config.timezone,
                agency_lang=config.lang,
            ),
        ),
        routes=tuple(routes),
        stops=stops,
        shapes=tuple(shapes),
        trips=tuple(trips),
        stop_times=tuple(stop_times),
        frequencies=tuple(frequencies),
        calendar=(
            Calendar(
                service_id=SERVICE_ID,
                monday=1,
                tuesday=1,
                wednesday=1,
                thursday=1,
                friday=1,
                saturday=1,
                sunday=1,
                start_date=config.start_date,
                end_date=config.end_date,
            ),
        ),
        feed_info=(),
    )
    files = _files(feed)
    info = FeedInfo(
        feed_publisher_name=config.publisher_name,
        feed_publisher_url=config.publisher_url,
        feed_lang=config.lang,
        feed_start_date=config.start_date,
        feed_end_date=config.end_date,
        feed_version=csvzip.digest(files),
        feed_contact_email=config.contact_email,
        feed_contact_url=config.contact_url,
    )
    files["feed_info.txt"] = csvzip.table_bytes([info], FeedInfo)
    feed = dataclasses.replace(feed, feed_info=(info,))
    return StaticFeed(feed=feed, files=files, timezone=config.timezone, lines=lines)


def _files(feed: Feed) -> dict[str, bytes]:
    tables = {
        "agency.txt": (feed.agency, Agency),
        "routes.txt": (feed.routes, Route),
        "stops.txt": (feed.stops, Stop),
        "shapes.txt": (feed.shapes, ShapePoint),
        "trips.txt": (feed.trips, Trip),
        "stop_times.txt": (feed.stop_times, StopTime),
        "frequencies.txt": (feed.frequencies, Frequency),
        "calendar.txt": (feed.calendar, Calendar),
    }
    return {name: csvzip.table_bytes(rows, kind) for name, (rows, kind) in tables.items()}
