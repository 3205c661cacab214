"""What one API process keeps for GTFS: the static feed, rebuilt from the database at most
every ``RASD_API_GTFS_STATIC_REFRESH_S``, and each live bus's trip matching state, fed with
the fixes stored since the previous request (docs/gtfs.md)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from api.config import ApiSettings
from telemetry.gtfs.feed import StaticFeed, build_feed
from telemetry.gtfs.matching import BusState, Fix, TripInstance, current_trip, observe_all
from telemetry.gtfs.network import network_of
from telemetry.gtfs.records import FeedConfig
from telemetry.gtfs.runtimes import PERIODS
from telemetry.storage.gtfs import fixes_after, link_travel_times
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


def read_static(
    conn: psycopg.Connection, api: ApiSettings, now: datetime, *, learn: bool = True
) -> StaticFeed:
    """The static feed of the stored network, with run times learned from the stored traces
    of the last ``gtfs_learn_days`` (``learn`` False: default speeds, a read of the network
    tables only)."""
    network = network_of(
        bus_stops(conn), line_stops(conn), line_schedules(conn), route_shapes(conn)
    )
    learned = []
    if learn and api.gtfs_learn_days > 0:
        learned = link_travel_times(
            conn,
            since=now - timedelta(days=api.gtfs_learn_days),
            until=now,
            timezone=api.timezone,
            periods=[(p.name, p.start_s) for p in PERIODS],
        )
    today = now.astimezone(ZoneInfo(api.timezone)).date()
    return build_feed(network, feed_config(api, today), learned)


def _geometry(feed: StaticFeed) -> tuple[bytes, bytes]:
    return feed.files["shapes.txt"], feed.files["frequencies.txt"]


async def _read(sync_pool: ConnectionPool, api: ApiSettings, *, learn: bool) -> StaticFeed:
    def read() -> StaticFeed:
        with sync_pool.connection(timeout=api.db_timeout_s) as conn:
            return read_static(conn, api, datetime.now(UTC), learn=learn)

    return await asyncio.to_thread(read)


@dataclass(kw_only=True)
class GtfsState:
    """One process's GTFS state for one schema. The export (learned run times: a scan of
    the stored traces) and the matching's timetable (the network tables only, so a live
    feed never waits for that scan) are refreshed separately; their ids are the same."""

    export: StaticFeed | None = None
    export_at: float = -math.inf
    export_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    timetable: StaticFeed | None = None
    timetable_at: float = -math.inf
    buses: dict[str, BusState] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def static_feed(self, sync_pool: ConnectionPool, api: ApiSettings) -> StaticFeed:
        """The exported feed, rebuilt (in a thread) when older than the refresh period."""
        async with self.export_lock:
            fresh = time.monotonic() < self.export_at + api.gtfs_static_refresh_s
            if self.export is None or not fresh:
                self.export = await _read(sync_pool, api, learn=True)
                self.export_at = time.monotonic()
            return self.export

    async def _timetable(self, sync_pool: ConnectionPool, api: ApiSettings) -> StaticFeed:
        fresh = time.monotonic() < self.timetable_at + api.gtfs_timetable_refresh_s
        if self.timetable is not None and fresh:
            return self.timetable
        feed = await _read(sync_pool, api, learn=False)
        if self.timetable is None or _geometry(self.timetable) != _geometry(feed):
            # Progress along a changed shape means nothing: match again from the history.
            self.buses.clear()
        self.timetable, self.timetable_at = feed, time.monotonic()
        return feed

    async def trips(
        self,
        pool: AsyncConnectionPool,
        sync_pool: ConnectionPool,
        api: ApiSettings,
        buses: list[LatestPosition],
        now: datetime,
    ) -> dict[str, TripInstance]:
        """The trip instance of every bus on one, after taking in its newly stored fixes."""
        async with self.lock:
            feed = await self._timetable(sync_pool, api)
            listed = {b.device_id for b in buses if b.route in feed.lines}
            self.buses = {k: v for k, v in self.buses.items() if k in listed}
            after = {}
            for device in listed:
                seen = self.buses.get(device)
                after[device] = seen.time if seen is not None and seen.time else now - HISTORY
            async with pool.connection(timeout=api.db_timeout_s) as conn:
                fixes = await fixes_after(conn, after, until=now)
            by_bus: dict[str, list[Fix]] = defaultdict(list)
            for f in fixes:
                by_bus[f.device_id].append(Fix(time=f.time, lat=f.lat, lon=f.lon, route=f.route))
            for device, new in by_bus.items():
                self.buses[device] = observe_all(self.buses.get(device, BusState()), new, feed)
            out = {}
            for device, state in self.buses.items():
                trip = current_trip(state, now)
                if trip is not None:
                    out[device] = trip
            return out
