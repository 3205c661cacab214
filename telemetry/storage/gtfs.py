"""GTFS reads: median link travel times and stop dwells learned from the stored bus traces
(static feed run times, arrival predictions), each bus's fixes after a given time (live trip
matching), and the open alerts passengers should hear of (service alerts). The network itself is
read with ``telemetry.storage.reference``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final, NamedTuple

import psycopg
from psycopg.rows import args_row

from telemetry.gtfs.records import LinkTime, StopDwell

# A fix within ``radius`` of one of its line's stops is a visit to that stop: fixes and stops
# meet on a grid of cells at least the radius wide (a hash join, linear in the fixes), then the
# exact distance is checked. Consecutive fixes at one stop make one visit (gaps and islands);
# a visit followed by the visit of the next (or previous) stop of the line is one passage of
# that link, timed from arrival to arrival (dwell included), or from leaving a first terminus
# (its layover is not part of the run). Medians per link and period of the day's start.
_VISITS: Final = """
WITH grid AS (
    SELECT %(radius)s / 111195.0 AS clat,
           %(radius)s / (111195.0 * cos(radians(coalesce(avg(lat), 0)))) AS clon
    FROM bus_stops
),
stops AS (
    SELECT ls.route, ls.seq, ls.stop_id, s.lat, s.lon,
           ls.seq = 0 AS first_a,
           ls.seq = max(ls.seq) OVER (PARTITION BY ls.route) AS last_a
    FROM line_stops ls JOIN bus_stops s ON s.stop_id = ls.stop_id
),
cells AS (
    SELECT st.*, floor(st.lat / g.clat)::bigint + dy AS cy,
           floor(st.lon / g.clon)::bigint + dx AS cx
    FROM stops st CROSS JOIN grid g
    CROSS JOIN generate_series(-1, 1) AS dy CROSS JOIN generate_series(-1, 1) AS dx
),
near AS (
    SELECT p.device_id, p.time, c.route, c.seq, c.stop_id, c.first_a, c.last_a
    FROM vehicle_positions p
    JOIN devices d ON d.device_id = p.device_id AND d.fleet = 'bus'
    CROSS JOIN grid g
    JOIN cells c ON c.route = coalesce(p.route, d.route)
     AND c.cy = floor(p.lat / g.clat)::bigint AND c.cx = floor(p.lon / g.clon)::bigint
    WHERE p.time >= %(since)s AND p.time < %(until)s
      AND ((p.lat - c.lat) * 111195.0) ^ 2
        + ((p.lon - c.lon) * 111195.0 * cos(radians(c.lat))) ^ 2 <= %(radius)s ^ 2
),
marked AS (
    SELECT n.*,
           CASE WHEN lag(stop_id) OVER w IS DISTINCT FROM stop_id
                  OR lag(route) OVER w IS DISTINCT FROM route
                  OR time - lag(time) OVER w > interval '10 minutes' THEN 1 ELSE 0 END AS fresh
    FROM near n WINDOW w AS (PARTITION BY device_id ORDER BY time)
),
islands AS (
    SELECT m.*, sum(fresh) OVER (PARTITION BY device_id ORDER BY time) AS visit FROM marked m
),
visits AS (
    SELECT device_id, visit, route, seq, stop_id, bool_or(first_a) AS first_a,
           bool_or(last_a) AS last_a, min(time) AS t_in, max(time) AS t_out
    FROM islands GROUP BY device_id, visit, route, seq, stop_id
)
"""

_LINK_TIMES: Final = (
    _VISITS
    + """,
links AS (
    SELECT v.*, lead(route) OVER w AS next_route, lead(seq) OVER w AS next_seq,
           lead(stop_id) OVER w AS next_stop, lead(t_in) OVER w AS next_in
    FROM visits v WINDOW w AS (PARTITION BY device_id ORDER BY t_in)
),
samples AS (
    SELECT route, stop_id AS from_stop, next_stop AS to_stop, departed,
           extract(epoch FROM next_in - departed) AS seconds
    FROM (
        SELECT l.*,
               CASE WHEN (next_seq = seq + 1 AND first_a) OR (next_seq = seq - 1 AND last_a)
                    THEN t_out ELSE t_in END AS departed
        FROM links l
        WHERE next_route = route AND abs(next_seq - seq) = 1
    ) s
    WHERE next_in - departed BETWEEN interval '1 second' AND interval '1 hour'
)
SELECT route, from_stop, to_stop,
       width_bucket(extract(epoch FROM (departed AT TIME ZONE %(tz)s)::time)::float8,
                    %(bounds)s::float8[]) AS period,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median_s,
       count(*) AS samples
FROM samples
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
"""
)

# A stop's dwell: the time a bus stays within the radius of an intermediate stop of its line
# (first to last fix of one visit; termini hold layovers, not dwells), median per stop and
# period of the day's arrival. A visit of one fix counts as zero: the bus went straight by.
_DWELL_TIMES: Final = (
    _VISITS
    + """
SELECT route, stop_id,
       width_bucket(extract(epoch FROM (t_in AT TIME ZONE %(tz)s)::time)::float8,
                    %(bounds)s::float8[]) AS period,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t_out - t_in)) AS median_s,
       count(*) AS samples
FROM visits
WHERE NOT first_a AND NOT last_a AND t_out - t_in <= interval '10 minutes'
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
"""
)

_FIXES_AFTER: Final = """
SELECT w.device_id, f.time, f.lat, f.lon, f.route, f.speed_kmh
FROM unnest(%(ids)s::text[], %(after)s::timestamptz[]) AS w(device_id, after)
JOIN devices d ON d.device_id = w.device_id
CROSS JOIN LATERAL (
    SELECT p.time, p.lat, p.lon, coalesce(p.route, d.route) AS route, p.speed_kmh
    FROM vehicle_positions p
    WHERE p.device_id = w.device_id AND p.time > w.after AND p.time >= %(floor)s
      AND p.time <= %(until)s
    ORDER BY p.time
    LIMIT %(limit)s
) f
ORDER BY w.device_id, f.time
"""


def link_travel_times(
    conn: psycopg.Connection,
    *,
    since: datetime,
    until: datetime,
    timezone: str,
    periods: Sequence[tuple[str, int]],
    radius_m: float = 50.0,
) -> list[LinkTime]:
    """Median stop-to-stop times of every line from the traces in [since, until), by period
    of the local day; ``periods`` are (name, start second after midnight), in order from 0."""
    params = {
        "since": since,
        "until": until,
        "tz": timezone,
        "radius": radius_m,
        "bounds": [float(start) for _, start in periods],
    }
    with conn.cursor() as cur:
        rows = cur.execute(_LINK_TIMES, params).fetchall()
    return [
        LinkTime(
            route_id=route,
            from_stop=from_stop,
            to_stop=to_stop,
            period=periods[bucket - 1][0],
            median_s=float(median),
            samples=int(samples),
        )
        for route, from_stop, to_stop, bucket, median, samples in rows
        if 1 <= bucket <= len(periods)
    ]


def stop_dwell_times(
    conn: psycopg.Connection,
    *,
    since: datetime,
    until: datetime,
    timezone: str,
    periods: Sequence[tuple[str, int]],
    radius_m: float = 50.0,
) -> list[StopDwell]:
    """Median time buses of each line spend within ``radius_m`` of each of its intermediate
    stops, from the traces in [since, until), by period of the local day (as
    ``link_travel_times``)."""
    params = {
        "since": since,
        "until": until,
        "tz": timezone,
        "radius": radius_m,
        "bounds": [float(start) for _, start in periods],
    }
    with conn.cursor() as cur:
        rows = cur.execute(_DWELL_TIMES, params).fetchall()
    return [
        StopDwell(
            route_id=route,
            stop_id=stop_id,
            period=periods[bucket - 1][0],
            median_s=float(median),
            samples=int(samples),
        )
        for route, stop_id, bucket, median, samples in rows
        if 1 <= bucket <= len(periods)
    ]


class BusFix(NamedTuple):
    """One stored fix of a bus, with the line it reported (or is registered on)."""

    device_id: str
    time: datetime
    lat: float
    lon: float
    route: str | None
    speed_kmh: float | None = None


async def fixes_after(
    conn: psycopg.AsyncConnection,
    after: Mapping[str, datetime],
    *,
    until: datetime,
    limit: int = 2000,
) -> list[BusFix]:
    """Each given vehicle's fixes with ``after[id] < time <= until``, oldest first, at most
    ``limit`` per vehicle (read by the (device_id, time) key)."""
    if not after:
        return []
    ids = sorted(after)
    params = {
        "ids": ids,
        "after": [after[i] for i in ids],
        "floor": min(after.values()),
        "until": until,
        "limit": limit,
    }
    async with conn.cursor(row_factory=args_row(BusFix), binary=True) as cur:
        await cur.execute(_FIXES_AFTER, params)
        return await cur.fetchall()


class BusAlert(NamedTuple):
    """An open alert on a bus, with its line, and how many buses that line has."""

    alert_id: int
    kind: str
    device_id: str
    route: str
    opened_at: datetime
    line_buses: int


# Alerts whose condition still holds (not cleared, not resolved): what passengers see is the
# street now, not the operators' queue.
_BUS_ALERTS: Final = """
WITH open AS (
    SELECT a.alert_id, a.kind, a.device_id, coalesce(a.details->>'route', d.route) AS route,
           a.opened_at
    FROM alerts a JOIN devices d ON d.device_id = a.device_id
    WHERE a.asset_kind = 'bus' AND a.state <> 'resolved' AND a.cleared_at IS NULL
      AND a.kind = ANY(%(kinds)s)
),
fleet AS (
    SELECT route, count(*) AS buses FROM devices
    WHERE fleet = 'bus' AND route IN (SELECT route FROM open) GROUP BY route
)
SELECT o.alert_id, o.kind, o.device_id, o.route, o.opened_at, coalesce(f.buses, 0)
FROM open o LEFT JOIN fleet f USING (route)
WHERE o.route IS NOT NULL
ORDER BY o.route, o.opened_at, o.alert_id
"""


async def open_bus_alerts(conn: psycopg.AsyncConnection, kinds: Sequence[str]) -> list[BusAlert]:
    """Uncleared, unresolved alerts of ``kinds`` on buses, by line then age, each with the
    number of buses registered on its line."""
    async with conn.cursor(row_factory=args_row(BusAlert)) as cur:
        await cur.execute(_BUS_ALERTS, {"kinds": list(kinds)})
        return await cur.fetchall()
