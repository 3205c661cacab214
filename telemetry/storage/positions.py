"""Vehicle position reads: the newest fix of every vehicle and one vehicle's track."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Final, NamedTuple

import psycopg
from psycopg.rows import args_row

from telemetry.storage._rows import filter_values

# vehicle_latest is kept by a trigger (migration 0006); the registry gives fleet and labels.
# A route in the position message wins over the registered one (buses change lines).
_LATEST: Final = """
SELECT v.device_id, d.fleet, d.label, coalesce(v.route, d.route) AS route, d.district,
       v.time, v.received_at, v.lat, v.lon, v.speed_kmh, v.heading_deg, v.accuracy_m
FROM vehicle_latest v
JOIN devices d ON d.device_id = v.device_id
WHERE d.fleet IN ('bus', 'truck')
  AND (%(fleets)s::text[] IS NULL OR d.fleet = ANY(%(fleets)s))
  AND (%(routes)s::text[] IS NULL OR coalesce(v.route, d.route) = ANY(%(routes)s))
  AND (%(districts)s::text[] IS NULL OR d.district = ANY(%(districts)s))
  AND (%(ids)s::text[] IS NULL OR v.device_id = ANY(%(ids)s))
  AND (%(south)s::float8 IS NULL OR v.lat BETWEEN %(south)s AND %(north)s)
  AND (%(west)s::float8 IS NULL OR v.lon BETWEEN %(west)s AND %(east)s)
  AND (%(since)s::timestamptz IS NULL OR v.time >= %(since)s)
ORDER BY v.device_id
"""

_TRACK: Final = """
SELECT time, lat, lon, speed_kmh, heading_deg, accuracy_m, route
FROM vehicle_positions
WHERE device_id = %(id)s AND time >= %(start)s AND time < %(end)s
ORDER BY time
LIMIT %(limit)s
"""

# Downsampled: the last fix of each time bucket of ``step`` (so a 24 h track becomes at most
# 24 h / step points), read with the (device_id, time) primary key in one pass.
_TRACK_BUCKETED: Final = """
SELECT time, lat, lon, speed_kmh, heading_deg, accuracy_m, route FROM (
    SELECT DISTINCT ON (date_bin(%(step)s, time, %(start)s))
           time, lat, lon, speed_kmh, heading_deg, accuracy_m, route
    FROM vehicle_positions
    WHERE device_id = %(id)s AND time >= %(start)s AND time < %(end)s
    ORDER BY date_bin(%(step)s, time, %(start)s), time DESC
) b
ORDER BY time
LIMIT %(limit)s
"""


class LatestPosition(NamedTuple):
    """A vehicle's newest stored fix with its registry details."""

    device_id: str
    fleet: str
    label: str | None
    route: str | None
    district: str | None
    time: datetime
    received_at: datetime
    lat: float
    lon: float
    speed_kmh: float | None
    heading_deg: float | None
    accuracy_m: float | None


class TrackPoint(NamedTuple):
    """One stored fix of a track."""

    time: datetime
    lat: float
    lon: float
    speed_kmh: float | None
    heading_deg: float | None
    accuracy_m: float | None
    route: str | None


async def latest_positions(
    conn: psycopg.AsyncConnection,
    *,
    fleets: Collection[str] | None = None,
    routes: Collection[str] | None = None,
    districts: Collection[str] | None = None,
    device_ids: Collection[str] | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    since: datetime | None = None,
) -> list[LatestPosition]:
    """Newest fix of every matching vehicle; ``bbox`` is (west, south, east, north)."""
    west, south, east, north = bbox if bbox is not None else (None, None, None, None)
    params = {
        "fleets": filter_values(fleets),
        "routes": filter_values(routes),
        "districts": filter_values(districts),
        "ids": filter_values(device_ids),
        "west": west,
        "south": south,
        "east": east,
        "north": north,
        "since": since,
    }
    # Binary results: thousands of timestamps and floats decode markedly faster than as text.
    async with conn.cursor(row_factory=args_row(LatestPosition), binary=True) as cur:
        await cur.execute(_LATEST, params)
        return await cur.fetchall()


async def track(
    conn: psycopg.AsyncConnection,
    device_id: str,
    start: datetime,
    end: datetime,
    limit: int,
    step: timedelta | None = None,
) -> list[TrackPoint]:
    """A vehicle's fixes in [start, end), oldest first; with ``step``, one per time bucket."""
    params = {"id": device_id, "start": start, "end": end, "limit": limit, "step": step}
    async with conn.cursor(row_factory=args_row(TrackPoint), binary=True) as cur:
        await cur.execute(_TRACK if step is None else _TRACK_BUCKETED, params)
        return await cur.fetchall()
