"""Open data: reads of the public feeds and the refresh of their materialised days.

The materialised tables and the per-day functions are in migration 0013; energy comes from the
circuit/district rollups (0008), repair times from resolved light alerts (0004), complaint
figures from the complaints table (0011, never its contacts). Every read returns aggregates only.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final, Literal

import psycopg

from telemetry.storage._rows import fetch_all, filter_values
from telemetry.storage.energy import ROLLUP_WATERMARK

MaterialisedFeed = Literal["light_status", "waste_rounds", "bus_service"]
MATERIALISED: Final[tuple[MaterialisedFeed, ...]] = ("light_status", "waste_rounds", "bus_service")
Unit = Literal["day", "month"]

# Light alerts that are not a repair of the lighting: a light that stopped talking still
# lights the street, and an energy anomaly is a measurement. Every other light alert kind (the
# faults lights report, supply losses, outages, day burning) is a fault to repair.
NOT_REPAIRS: Final = ("silent_light", "energy_anomaly")
# Resolutions that end a repair: the telemetry saw the fault end, or a crew resolved it. An
# alert resolved by being grouped into an outage alert is counted there, not on its own.
REPAIR_RESOLUTIONS: Final = ("cleared", "manual")

# One lock per schema for the whole refresh pass: several API processes share the work.
_TRY_LOCK: Final = "SELECT pg_try_advisory_lock(hashtext(current_schema() || '.open_data'))"
_LOCK: Final = "SELECT pg_advisory_lock(hashtext(current_schema() || '.open_data'))"
_UNLOCK: Final = "SELECT pg_advisory_unlock(hashtext(current_schema() || '.open_data'))"

_STATES: Final = "SELECT feed, watermark, timezone, refreshed_at FROM open_data_state ORDER BY feed"

# The first local day holding data each feed is computed from.
_FIRST_POSITION_DAY: Final = (
    "SELECT ((SELECT min(time) FROM vehicle_positions) AT TIME ZONE %s)::date"
)
_FIRST_DAY: Final[dict[MaterialisedFeed, str]] = {
    "light_status": "SELECT (least((SELECT min(time) FROM light_energy), "
    "(SELECT min(time) FROM light_faults)) AT TIME ZONE %s)::date",
    "waste_rounds": _FIRST_POSITION_DAY,
    "bus_service": _FIRST_POSITION_DAY,
}

# The watermark as a scalar subquery, not a join: a join's row estimate (the one-row state table
# before its first ANALYZE is assumed to hold thousands) made the planner JIT-compile the query,
# 140 ms of a 175 ms answer. An hour bucket starts on a whole UTC hour and the local offsets
# are whole hours, so the local day of its start is the day of the whole hour (one time zone
# conversion per row instead of the two of date_trunc(unit, ts, tz)).
_ENERGY: Final = """
SELECT date_trunc(%(unit)s, r.bucket AT TIME ZONE %(tz)s)::date AS period, r.key AS district,
       sum(r.energy_wh) AS energy_wh, max(r.lights)::integer AS lights,
       count(*)::integer AS hours
FROM energy_hourly_rollup r
WHERE r.scope = 'district' AND r.bucket >= %(start)s
  AND r.bucket < least(%(end)s, (SELECT watermark FROM energy_rollup_state))
  AND (%(districts)s::text[] IS NULL OR r.key = ANY(%(districts)s))
GROUP BY 1, 2 ORDER BY 1, 2
"""

# The API's classification of a light now (api/lightstatus.py), counted per district.
_LIGHTS_NOW: Final = """
SELECT nullif(coalesce(d.district, ''), '') AS district, count(*)::integer AS lights,
       count(*) FILTER (WHERE f.device_id IS NULL AND l.time >= %(since)s)::integer
           AS in_service,
       count(*) FILTER (WHERE f.device_id IS NOT NULL)::integer AS faulty,
       count(*) FILTER (WHERE f.device_id IS NULL AND (l.time IS NULL OR l.time < %(since)s))
           ::integer AS silent
FROM devices d
LEFT JOIN light_latest l ON l.device_id = d.device_id
LEFT JOIN (SELECT DISTINCT device_id FROM light_fault_state WHERE active) f
       ON f.device_id = d.device_id
WHERE d.fleet = 'light'
  AND (%(districts)s::text[] IS NULL OR coalesce(d.district, '') = ANY(%(districts)s))
GROUP BY 1 ORDER BY 1 NULLS FIRST
"""

_LIGHTS_DAILY: Final = """
SELECT day AS period, nullif(district, '') AS district, lights, in_service, faulty, silent,
       faulty_during_day
FROM open_data_light_status_daily
WHERE day >= %(first)s AND day <= %(last)s
  AND (%(districts)s::text[] IS NULL OR district = ANY(%(districts)s))
ORDER BY day, district
"""

_REPAIRS: Final = """
SELECT (date_trunc('month', a.resolved_at, %(tz)s) AT TIME ZONE %(tz)s)::date AS period,
       a.district, count(*)::integer AS repairs,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY a.hours) AS median_hours,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY a.hours) AS p90_hours
FROM (
    SELECT resolved_at, district,
           greatest(0, extract(epoch FROM resolved_at - opened_at))::float8 / 3600 AS hours
    FROM alerts
    WHERE asset_kind = 'light' AND resolved_at IS NOT NULL
      AND resolved_at >= %(start)s AND resolved_at < %(end)s
      AND resolution = ANY(%(resolutions)s) AND kind <> ALL(%(excluded)s)
      AND (%(districts)s::text[] IS NULL OR coalesce(district, '') = ANY(%(districts)s))
) a
GROUP BY 1, 2 ORDER BY 1, 2 NULLS FIRST
"""

# Received: complaints requested in the month. Closed: complaints closed in the month, with
# their handling times (requested -> closed). Only the complaints table: never its contacts.
_COMPLAINTS: Final = """
WITH received AS (
    SELECT (date_trunc('month', requested_at, %(tz)s) AT TIME ZONE %(tz)s)::date AS period,
           service_code, count(*)::integer AS received
    FROM complaints
    WHERE requested_at >= %(start)s AND requested_at < %(end)s
      AND (%(services)s::text[] IS NULL OR service_code = ANY(%(services)s))
    GROUP BY 1, 2
), closed AS (
    SELECT (date_trunc('month', closed_at, %(tz)s) AT TIME ZONE %(tz)s)::date AS period,
           service_code, count(*)::integer AS closed,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY hours) AS median_hours,
           percentile_cont(0.9) WITHIN GROUP (ORDER BY hours) AS p90_hours
    FROM (
        SELECT closed_at, service_code,
               greatest(0, extract(epoch FROM closed_at - requested_at))::float8 / 3600 AS hours
        FROM complaints
        WHERE closed_at >= %(start)s AND closed_at < %(end)s
          AND (%(services)s::text[] IS NULL OR service_code = ANY(%(services)s))
    ) c
    GROUP BY 1, 2
)
SELECT coalesce(r.period, c.period) AS period, coalesce(r.service_code, c.service_code)
           AS service_code,
       coalesce(r.received, 0) AS received, coalesce(c.closed, 0) AS closed,
       c.median_hours, c.p90_hours
FROM received r FULL JOIN closed c ON c.period = r.period AND c.service_code = r.service_code
ORDER BY 1, 2
"""

_WASTE: Final = """
SELECT CASE WHEN %(unit)s = 'day' THEN night
            ELSE date_trunc('month', night::timestamp)::date END AS period,
       nullif(operator, '') AS operator, nullif(district, '') AS district,
       count(*)::integer AS planned, count(*) FILTER (WHERE visited = points)::integer AS completed,
       sum(points)::integer AS points, sum(visited)::integer AS points_visited,
       count(DISTINCT night)::integer AS nights
FROM open_data_waste_rounds
WHERE night >= %(first)s AND night <= %(last)s
  AND (%(operators)s::text[] IS NULL OR operator = ANY(%(operators)s))
  AND (%(districts)s::text[] IS NULL OR district = ANY(%(districts)s))
GROUP BY 1, 2, 3 ORDER BY 1, 2 NULLS FIRST, 3 NULLS FIRST
"""

_BUS: Final = """
SELECT CASE WHEN %(unit)s = 'day' THEN day
            ELSE date_trunc('month', day::timestamp)::date END AS period,
       route AS line, sum(km) AS km, sum(trips)::integer AS trips,
       max(vehicles)::integer AS vehicles, count(*)::integer AS days
FROM open_data_bus_service_daily
WHERE day >= %(first)s AND day <= %(last)s
  AND (%(lines)s::text[] IS NULL OR route = ANY(%(lines)s))
GROUP BY 1, 2 ORDER BY 1, 2
"""


@dataclass(frozen=True, slots=True)
class FeedState:
    """A materialised feed's watermark: days before it are materialised (None: none yet)."""

    feed: str
    watermark: date | None
    timezone: str
    refreshed_at: datetime | None


@dataclass(frozen=True, slots=True)
class RoundShift:
    """When a round's shift runs, local time in its time zone."""

    shift_start: time
    shift_end: time
    timezone: str


@dataclass(frozen=True, slots=True)
class EnergyRow:
    """A district's lighting consumption in one local day or month."""

    period: date
    district: str
    energy_wh: float
    lights: int  # most lights reporting in any hour of the period
    hours: int  # hours of the period with data


@dataclass(frozen=True, slots=True)
class LightsNowRow:
    """A district's lights by status now."""

    district: str | None
    lights: int
    in_service: int
    faulty: int
    silent: int


@dataclass(frozen=True, slots=True)
class LightsDailyRow:
    """A district's lights by status at the end of a local day."""

    period: date
    district: str | None
    lights: int
    in_service: int
    faulty: int
    silent: int
    faulty_during_day: int


@dataclass(frozen=True, slots=True)
class RepairRow:
    """Repairs of light faults completed in a local month, and how long they took."""

    period: date
    district: str | None
    repairs: int
    median_hours: float
    p90_hours: float


@dataclass(frozen=True, slots=True)
class ComplaintRow:
    """Complaints of one service received and closed in a local month."""

    period: date
    service_code: str
    received: int
    closed: int
    median_hours: float | None
    p90_hours: float | None


@dataclass(frozen=True, slots=True)
class WasteRow:
    """Collection rounds planned and completed per night or month, operator and district."""

    period: date
    operator: str | None
    district: str | None
    planned: int
    completed: int
    points: int
    points_visited: int
    nights: int


@dataclass(frozen=True, slots=True)
class BusRow:
    """Bus service delivered on a line in a local day or month."""

    period: date
    line: str
    km: float
    trips: int
    vehicles: int  # buses on the line that day (a month: the most on any day)
    days: int  # days with service in the period


# -- refresh -----------------------------------------------------------------------------------


async def try_refresh_lock(conn: psycopg.AsyncConnection) -> bool:
    """Take the schema's open-data refresh lock for this session unless another session has it."""
    cur = await conn.execute(_TRY_LOCK)
    row = await cur.fetchone()
    return bool(row and row[0])


async def refresh_lock(conn: psycopg.AsyncConnection) -> None:
    """Wait for the schema's open-data refresh lock and hold it for this session."""
    await conn.execute(_LOCK)


async def refresh_unlock(conn: psycopg.AsyncConnection) -> None:
    """Release the refresh lock this session holds."""
    await conn.execute(_UNLOCK)


async def feed_states(conn: psycopg.AsyncConnection) -> dict[str, FeedState]:
    """Every materialised feed's state, by feed."""
    return {s.feed: s for s in await fetch_all(conn, FeedState, _STATES)}


async def reset_feed(conn: psycopg.AsyncConnection, feed: MaterialisedFeed, tz: str) -> None:
    """Forget a feed's materialised days; the next refresh computes them in time zone ``tz``."""
    await conn.execute("SELECT rasd_open_data_reset(%s, %s)", (feed, tz))


async def first_data_day(
    conn: psycopg.AsyncConnection, feed: MaterialisedFeed, tz: str
) -> date | None:
    """The local day of the oldest reading the feed is computed from (None: no readings)."""
    cur = await conn.execute(_FIRST_DAY[feed], (tz,))
    row = await cur.fetchone()
    return row[0] if row else None


async def round_shifts(conn: psycopg.AsyncConnection) -> list[RoundShift]:
    """The shift of every collection round that has points."""
    return await fetch_all(
        conn,
        RoundShift,
        "SELECT shift_start, shift_end, timezone FROM collection_rounds r "
        "WHERE EXISTS (SELECT 1 FROM collection_points p WHERE p.round = r.round)",
    )


async def refresh_light_day(
    conn: psycopg.AsyncConnection, day: date, tz: str, silent_after: timedelta
) -> None:
    """Materialise the lights' status of one local day (one transaction, autocommit ``conn``)."""
    await conn.execute("SELECT rasd_open_data_light_day(%s, %s, %s)", (day, tz, silent_after))


async def refresh_rounds_night(conn: psycopg.AsyncConnection, night: date, stop_kmh: float) -> None:
    """Materialise the collection rounds of one night (shifts starting on ``night``)."""
    await conn.execute("SELECT rasd_open_data_rounds_night(%s, %s)", (night, stop_kmh))


async def refresh_bus_day(
    conn: psycopg.AsyncConnection, day: date, tz: str, terminus_m: float, max_trip: timedelta
) -> None:
    """Materialise the bus service of one local day."""
    await conn.execute(
        "SELECT rasd_open_data_bus_day(%s, %s, %s, %s)", (day, tz, terminus_m, max_trip)
    )


async def materialised_days(conn: psycopg.AsyncConnection, feed: MaterialisedFeed) -> list[date]:
    """The days a feed has materialised, oldest first."""
    cur = await conn.execute("SELECT day FROM open_data_days WHERE feed = %s ORDER BY day", (feed,))
    return [row[0] for row in await cur.fetchall()]


# -- feed reads --------------------------------------------------------------------------------


async def energy_by_district(
    conn: psycopg.AsyncConnection,
    unit: Unit,
    start: datetime,
    end: datetime,
    tz: str,
    districts: Collection[str] | None = None,
) -> list[EnergyRow]:
    """Lighting consumption per district and local day or month for materialised hours in
    [start, end) (the rollups' hours before their watermark; no live hour)."""
    params = {
        "unit": unit,
        "tz": tz,
        "start": start,
        "end": end,
        "districts": filter_values(districts),
    }
    return await fetch_all(conn, EnergyRow, _ENERGY, params)


async def energy_until(conn: psycopg.AsyncConnection) -> datetime | None:
    """Hours before this are in the energy rollups (None: none yet)."""
    cur = await conn.execute(ROLLUP_WATERMARK)
    row = await cur.fetchone()
    return row[0] if row else None


async def lights_now(
    conn: psycopg.AsyncConnection,
    now: datetime,
    silent_after: timedelta,
    districts: Collection[str] | None = None,
) -> list[LightsNowRow]:
    """Lights per district: faulty, else silent (no reading for ``silent_after``), else in
    service."""
    params = {"since": now - silent_after, "districts": filter_values(districts)}
    return await fetch_all(conn, LightsNowRow, _LIGHTS_NOW, params)


async def lights_daily(
    conn: psycopg.AsyncConnection,
    first: date,
    last: date,
    districts: Collection[str] | None = None,
) -> list[LightsDailyRow]:
    """Materialised lights by status per district at the end of each day in [first, last]."""
    params = {"first": first, "last": last, "districts": filter_values(districts)}
    return await fetch_all(conn, LightsDailyRow, _LIGHTS_DAILY, params)


async def fault_repairs(
    conn: psycopg.AsyncConnection,
    start: datetime,
    end: datetime,
    tz: str,
    districts: Collection[str] | None = None,
) -> list[RepairRow]:
    """Light fault repairs resolved in [start, end) per local month and district: count,
    median and 90th percentile of opened -> resolved, in hours."""
    params = {
        "tz": tz,
        "start": start,
        "end": end,
        "districts": filter_values(districts),
        "resolutions": list(REPAIR_RESOLUTIONS),
        "excluded": list(NOT_REPAIRS),
    }
    return await fetch_all(conn, RepairRow, _REPAIRS, params)


async def complaint_stats(
    conn: psycopg.AsyncConnection,
    start: datetime,
    end: datetime,
    tz: str,
    services: Collection[str] | None = None,
) -> list[ComplaintRow]:
    """Complaints per local month and service: received, closed, and the median and 90th
    percentile handling time (requested -> closed, hours) of those closed."""
    params = {"tz": tz, "start": start, "end": end, "services": filter_values(services)}
    return await fetch_all(conn, ComplaintRow, _COMPLAINTS, params)


async def waste_rounds(
    conn: psycopg.AsyncConnection,
    unit: Unit,
    first: date,
    last: date,
    *,
    operators: Collection[str] | None = None,
    districts: Collection[str] | None = None,
) -> list[WasteRow]:
    """Materialised rounds planned and completed per night (or month), operator and district,
    for nights in [first, last]."""
    params = {
        "unit": unit,
        "first": first,
        "last": last,
        "operators": filter_values(operators),
        "districts": filter_values(districts),
    }
    return await fetch_all(conn, WasteRow, _WASTE, params)


async def bus_service(
    conn: psycopg.AsyncConnection,
    unit: Unit,
    first: date,
    last: date,
    lines: Collection[str] | None = None,
) -> list[BusRow]:
    """Materialised bus km, trips and vehicles per line and day (or month) in [first, last]."""
    params = {"unit": unit, "first": first, "last": last, "lines": filter_values(lines)}
    return await fetch_all(conn, BusRow, _BUS, params)
