"""What one API process keeps for GTFS: the static feed and the travel model learned with it,
rebuilt from the database every ``RASD_API_GTFS_STATIC_REFRESH_S`` in the background, and each live
bus's trip matching state and progress, fed with the fixes stored since the previous request,
from which its arrivals are predicted (docs/gtfs.md)."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from api.config import ApiSettings
from api.gtfs_rt import PredictedTrip
from telemetry.gtfs.feed import StaticFeed, TripPattern, build_feed
from telemetry.gtfs.matching import BusState, Fix, Phase, TripInstance, current_trip, observe
from telemetry.gtfs.network import network_of
from telemetry.gtfs.predictions import (
    Arrival,
    Progress,
    TravelModel,
    advance,
    predict,
    trip_distance,
)
from telemetry.gtfs.records import FeedConfig, LinkTime, StopDwell
from telemetry.gtfs.runtimes import PERIODS
from telemetry.storage.gtfs import BusFix, fixes_after, link_travel_times, stop_dwell_times
from telemetry.storage.positions import LatestPosition
from telemetry.storage.reference import bus_stops, line_schedules, line_stops, route_shapes

#: A bus first seen by this process is matched from this much of its stored track: enough to
#: hold its last terminus (the longest run and a layover).
HISTORY: Final = timedelta(hours=2)


def feed_config(api: ApiSettings, today: date) -> FeedConfig:
    """The agency and publisher of the feed; the calendar covers this year and the next."""
    return FeedConfig(
        agency_id="".join(c if c.isalnum() else "-" for c in api.gtfs_agency_name.lower()),
        agency_name=api.gtfs_agency_name,
        agency_url=api.gtfs_agency_url,
        timezone=api.timezone,
        lang=api.gtfs_lang,
        publisher_name=api.gtfs_publisher_name,
        publisher_url=api.gtfs_publisher_url,
        contact_email=api.gtfs_contact_email,
        contact_url=api.gtfs_publisher_url,
        start_date=date(today.year, 1, 1),
        end_date=date(today.year + 1, 12, 31),
    )


def read_learned(
    conn: psycopg.Connection, api: ApiSettings, now: datetime
) -> tuple[list[LinkTime], list[StopDwell]]:
    """Link and dwell medians of the stored traces of the last ``gtfs_learn_days``."""
    if api.gtfs_learn_days <= 0:
        return [], []
    since = now - timedelta(days=api.gtfs_learn_days)
    periods = [(p.name, p.start_s) for p in PERIODS]
    return (
        link_travel_times(conn, since=since, until=now, timezone=api.timezone, periods=periods),
        stop_dwell_times(conn, since=since, until=now, timezone=api.timezone, periods=periods),
    )


def read_static(
    conn: psycopg.Connection,
    api: ApiSettings,
    now: datetime,
    learned: list[LinkTime] | None = None,
) -> StaticFeed:
    """The static feed of the stored network, with ``learned`` run times (None: default
    speeds, a read of the network tables only)."""
    network = network_of(
        bus_stops(conn), line_stops(conn), line_schedules(conn), route_shapes(conn)
    )
    today = now.astimezone(ZoneInfo(api.timezone)).date()
    return build_feed(network, feed_config(api, today), learned or ())


def _geometry(feed: StaticFeed) -> tuple[bytes, bytes]:
    return feed.files["shapes.txt"], feed.files["frequencies.txt"]


async def _read(
    sync_pool: ConnectionPool, api: ApiSettings, *, learn: bool
) -> tuple[StaticFeed, TravelModel]:
    def read() -> tuple[StaticFeed, TravelModel]:
        now = datetime.now(UTC)
        with sync_pool.connection(timeout=api.db_timeout_s) as conn:
            if not learn:
                return read_static(conn, api, now), TravelModel()
            links, dwells = read_learned(conn, api, now)
            return read_static(conn, api, now, links), TravelModel(links, dwells)

    return await asyncio.to_thread(read)


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveTrip:
    """A bus on a trip instance now, and its predicted arrivals at the stops ahead (none at
    the terminus it finished at)."""

    device_id: str
    trip: TripInstance
    arrivals: tuple[Arrival, ...]
    observed: datetime  # its newest fix


@dataclass(frozen=True, slots=True, kw_only=True)
class Live:
    """Every bus on a trip at ``now``, and the timetable they were matched against."""

    now: datetime
    feed: StaticFeed
    trips: dict[str, LiveTrip]


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """One second's live buses, their trips and their predictions, shared by the three feeds."""

    buses: list[LatestPosition]  # those with predictions last, in ``predicted``'s order
    live: Live
    predicted: list[PredictedTrip]


@dataclass(kw_only=True)
class GtfsState:
    """One process's GTFS state for one schema. The export (learned run times: a scan of
    the stored traces) and the matching's timetable (the network tables only, so a live
    feed never waits for that scan) are refreshed separately; their ids are the same."""

    export: StaticFeed | None = None
    model: TravelModel | None = None  # learned with the export
    export_at: float = -math.inf
    export_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wanted: asyncio.Event = field(default_factory=asyncio.Event)  # a first call came
    timetable: StaticFeed | None = None
    timetable_at: float = -math.inf
    patterns: dict[str, TripPattern] = field(default_factory=dict)
    buses: dict[str, BusState] = field(default_factory=dict)
    progress: dict[str, tuple[TripInstance, Progress]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    snapshot: Snapshot | None = None  # the feeds' cache, valid until ``snapshot_until``
    snapshot_until: float = -math.inf

    async def static_feed(self, sync_pool: ConnectionPool, api: ApiSettings) -> StaticFeed:
        """The exported feed. Only a process's first call waits for it to be built (in a
        thread); from then on ``keep_fresh`` rebuilds it when due while the previous one is
        served, since the scan of the traces takes minutes at city scale."""
        if self.export is None:
            self.wanted.set()
            async with self.export_lock:
                if self.export is None:
                    await self._rebuild(sync_pool, api)
        assert self.export is not None
        return self.export

    async def travel_model(self, sync_pool: ConnectionPool, api: ApiSettings) -> TravelModel:
        """The model learned with the export; only the first call waits for it."""
        if self.model is None:
            await self.static_feed(sync_pool, api)
        assert self.model is not None
        return self.model

    async def keep_fresh(self, sync_pool: ConnectionPool, api: ApiSettings) -> None:
        """Rebuild the export and its model every ``gtfs_static_refresh_s`` once something has
        asked for them (a process that never serves GTFS never scans the traces). Runs as a
        supervised job: a failed rebuild keeps the previous feed and is retried."""
        while True:
            await self.wanted.wait()
            due = self.export_at + api.gtfs_static_refresh_s - time.monotonic()
            if due > 0:
                await asyncio.sleep(due)
            async with self.export_lock:
                if time.monotonic() >= self.export_at + api.gtfs_static_refresh_s:
                    await self._rebuild(sync_pool, api)

    async def _rebuild(self, sync_pool: ConnectionPool, api: ApiSettings) -> None:
        self.export, self.model = await _read(sync_pool, api, learn=True)
        self.export_at = time.monotonic()
        self.snapshot = None  # predicted with the model just replaced

    async def _timetable(self, sync_pool: ConnectionPool, api: ApiSettings) -> StaticFeed:
        fresh = time.monotonic() < self.timetable_at + api.gtfs_timetable_refresh_s
        if self.timetable is not None and fresh:
            return self.timetable
        feed, _ = await _read(sync_pool, api, learn=False)
        if self.timetable is None or _geometry(self.timetable) != _geometry(feed):
            # Progress along a changed shape means nothing: match again from the history.
            self.buses.clear()
            self.progress.clear()
        self.timetable, self.timetable_at = feed, time.monotonic()
        self.patterns = {p.trip_id: p for line in feed.lines.values() for p in line.trips}
        return feed

    def _take(self, device: str, fix: BusFix, feed: StaticFeed) -> None:
        """One more fix of a bus: its matching state, then its progress along its trip."""
        state = observe(
            self.buses.get(device, BusState()),
            Fix(time=fix.time, lat=fix.lat, lon=fix.lon, route=fix.route),
            feed,
        )
        self.buses[device] = state
        trip = state.trip
        if (
            trip is None
            or state.phase is not Phase.RUNNING
            or state.time != fix.time
            or state.off_route_since is not None
            or state.along_m is None
            or trip.trip_id not in self.patterns
        ):
            if state.time == fix.time:
                self.progress.pop(device, None)
            return
        pattern = self.patterns[trip.trip_id]
        dist = trip_distance(
            feed.lines[trip.route_id].shape.length_m, trip.direction_id, state.along_m
        )
        seen = self.progress.get(device)
        previous = seen[1] if seen is not None and seen[0] == trip else None
        self.progress[device] = (trip, advance(previous, pattern, dist, fix.time, fix.speed_kmh))

    async def live(
        self,
        pool: AsyncConnectionPool,
        sync_pool: ConnectionPool,
        api: ApiSettings,
        buses: list[LatestPosition],
        now: datetime,
    ) -> Live:
        """Every bus on a trip instance, with its predicted arrivals (by the learned model once
        ``travel_model`` has learned it, default times before), after taking in its newly
        stored fixes one by one."""
        model = self.model or TravelModel()
        async with self.lock:
            feed = await self._timetable(sync_pool, api)
            listed = {b.device_id for b in buses if b.route in feed.lines}
            self.buses = {k: v for k, v in self.buses.items() if k in listed}
            self.progress = {k: v for k, v in self.progress.items() if k in listed}
            after = {}
            for device in listed:
                seen = self.buses.get(device)
                after[device] = seen.time if seen is not None and seen.time else now - HISTORY
            async with pool.connection(timeout=api.db_timeout_s) as conn:
                fixes = await fixes_after(conn, after, until=now)
            for f in fixes:
                self._take(f.device_id, f, feed)
            out = {}
            for device, state in self.buses.items():
                trip = current_trip(state, now)
                if trip is None or state.time is None:
                    continue
                arrivals: list[Arrival] = []
                on = self.progress.get(device)
                if state.phase is Phase.RUNNING and on is not None and on[0] == trip:
                    pattern = self.patterns[trip.trip_id]
                    arrivals = predict(pattern, on[1], model, now, feed.timezone)
                out[device] = LiveTrip(
                    device_id=device, trip=trip, arrivals=tuple(arrivals), observed=state.time
                )
            return Live(now=now, feed=feed, trips=out)
