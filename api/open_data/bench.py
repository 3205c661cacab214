"""``python -m api.open_data.bench``: latency of the open-data feeds over a year of data.

In a fresh schema of the ``RASD_*`` database (dropped afterwards unless ``--keep``), it
generates, with server-side ``generate_series`` (seconds, not hours of simulation):

* the registry: 72,000 lights in 6 districts, 120 trucks (3 operators) each with a round of 40
  points, 250 buses on 25 lines (3 stops each);
* a year (365 local days up to yesterday) at the level the feeds read: the district energy
  rollup (6 x 8,760 hours), the materialised days of lights (6 districts), rounds (120 a night)
  and bus lines (25 a day), 40,000 resolved light alerts (a third of them of kinds that are not
  repairs) and 30,000 complaints over 8 services;
* for the raw baselines, one day of raw readings at city scale: 72,000 lights' readings of
  the last hour of the day and 720 faults, a night of truck fixes (every 30 s over the 7-hour
  shift, 100,800 fixes), a day of bus fixes (every 10 s, 06:00-23:00, 1.5 M fixes).

Then it times, in this one process, each feed's storage read plus shaping of a year (daily
feeds: 365 days, monthly: 12 months) and, where a feed is materialised, the raw computation
of ONE day with the same SQL the refresh runs (a year computed on read would cost ~365 times
that, and positions older than their 90-day retention no longer exist to compute from).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from api.open_data.feeds import BY_NAME, MAX_TRIP, STOP_KMH, TERMINUS_M
from api.open_data.shaping import DayRange, csv_text, shape_rows
from telemetry.db import conninfo
from telemetry.migrate import migrate
from telemetry.settings import Settings
from telemetry.storage import open_data as store
from telemetry.storage.energy import group_energy

TZ: Final = "Africa/Casablanca"
DISTRICTS: Final = ("medina", "gueliz", "menara", "annakhil", "sidi-youssef-ben-ali", "mechouar")
SERVICES: Final = (
    "streetlight_out",
    "streetlight_day",
    "damaged_pole",
    "missed_collection",
    "overflowing_container",
    "illegal_dumping",
    "bus_late",
    "dangerous_driving",
)

# Registry: lights, trucks with their rounds, buses with their lines.
_REGISTRY: Final = [
    """INSERT INTO devices (device_id, fleet, district, circuit)
       SELECT 'L-' || i, 'light', (%(districts)s::text[])[1 + i %% 6], 'C-' || (i / 50)
       FROM generate_series(0, 71999) i""",
    """INSERT INTO devices (device_id, fleet, district, operator)
       SELECT 'T-' || r, 'truck', (%(districts)s::text[])[1 + r %% 6],
              (ARRAY['Arma', 'Mecomar', 'Averda'])[1 + r %% 3]
       FROM generate_series(0, 119) r""",
    """INSERT INTO collection_rounds (round, shift_start, shift_end)
       SELECT 'T-' || r, '21:00', '04:00' FROM generate_series(0, 119) r""",
    """INSERT INTO collection_points (round, seq, lat, lon, radius_m)
       SELECT 'T-' || r, p, 31.55 + 0.004 * (r %% 12) + 0.0008 * p, -8.10 + 0.01 * (r / 12), 40
       FROM generate_series(0, 119) r, generate_series(0, 39) p""",
    """INSERT INTO devices (device_id, fleet, route)
       SELECT 'B-' || b, 'bus', 'line-' || (b %% 25) FROM generate_series(0, 249) b""",
    """INSERT INTO bus_stops (stop_id, name, lat, lon)
       SELECT 'S-' || l || '-' || k, 'stop', 31.58 + 0.01 * k, -8.10 + 0.01 * l
       FROM generate_series(0, 24) l, generate_series(0, 2) k""",
    """INSERT INTO line_stops (route, seq, stop_id)
       SELECT 'line-' || l, k, 'S-' || l || '-' || k
       FROM generate_series(0, 24) l, generate_series(0, 2) k""",
]

# A year at the level the feeds read; %(first)s is the first local day, %(days)s how many.
_YEAR: Final = [
    """INSERT INTO energy_hourly_rollup (scope, key, bucket, energy_wh, lights)
       SELECT 'district', d, h, 12000 * 60 * (1 + (extract(hour FROM h)::int + 5) %% 24 / 12),
              12000
       FROM unnest(%(districts)s::text[]) d,
            generate_series(%(start)s::timestamptz, %(end)s::timestamptz - INTERVAL '1 hour',
                            INTERVAL '1 hour') h""",
    "UPDATE energy_rollup_state SET watermark = %(end)s",
    """INSERT INTO open_data_light_status_daily
       SELECT %(first)s::date + i, d, 12000, 11700 - i %% 50, 180 + i %% 50, 120, 240
       FROM generate_series(0, %(days)s - 1) i, unnest(%(districts)s::text[]) d""",
    """INSERT INTO open_data_waste_rounds
       SELECT %(first)s::date + i, 'T-' || r, (ARRAY['Arma', 'Mecomar', 'Averda'])[1 + r %% 3],
              (%(districts)s::text[])[1 + r %% 6], 40, CASE WHEN (r + i) %% 17 = 0 THEN 38
              ELSE 40 END, 1
       FROM generate_series(0, %(days)s - 1) i, generate_series(0, 119) r""",
    """INSERT INTO open_data_bus_service_daily
       SELECT %(first)s::date + i, 'line-' || l, 2150.0 + l, 200 + l %% 7, 10
       FROM generate_series(0, %(days)s - 1) i, generate_series(0, 24) l""",
    """INSERT INTO open_data_days (feed, day)
       SELECT f, %(first)s::date + i
       FROM generate_series(0, %(days)s - 1) i,
            unnest(ARRAY['light_status', 'waste_rounds', 'bus_service']) f""",
    "UPDATE open_data_state SET watermark = %(first)s::date + %(days)s, "
    "timezone = 'Africa/Casablanca'",
    """INSERT INTO alerts (kind, asset_kind, asset_key, device_id, district, severity, state,
                           opened_at, resolved_at, resolution)
       SELECT (ARRAY['lampFailure', 'relayFailure', 'supplyLoss', 'silent_light',
                     'energy_anomaly', 'day_burning'])[1 + i %% 6],
              'light', 'L-' || i, 'L-' || i, (%(districts)s::text[])[1 + i %% 6], 'high',
              'resolved', o, o + (1 + (i * 7919) %% 240) * INTERVAL '1 hour',
              (ARRAY['cleared', 'manual', 'cleared', 'grouped'])[1 + i %% 4]
       FROM generate_series(0, 39999) i,
            LATERAL (SELECT %(start)s::timestamptz
                            + (i * 0.999 / 40000) * (%(end)s::timestamptz - %(start)s) AS o) t""",
    """INSERT INTO complaints (source, external_id, service_code, status, requested_at,
                              closed_at, district)
       SELECT 'chikaya', 'B' || i, (%(services)s::text[])[1 + i %% 8],
              CASE WHEN i %% 5 = 0 THEN 'open' ELSE 'closed' END, o,
              CASE WHEN i %% 5 = 0 THEN NULL
                   ELSE o + (1 + (i::bigint * 104729) %% 300) * INTERVAL '1 hour' END,
              (%(districts)s::text[])[1 + i %% 6]
       FROM generate_series(0, 29999) i,
            LATERAL (SELECT %(start)s::timestamptz
                            + (i * 0.98 / 30000) * (%(end)s::timestamptz - %(start)s) AS o) t""",
]

# One raw day (%(day)s, local bounds %(lo)s, %(hi)s) for the baselines.
_RAW: Final = [
    """INSERT INTO light_energy (device_id, time, received_at, energy_wh, power_w, lamp_on)
       SELECT 'L-' || i, t, t, 1000, 60, true
       FROM generate_series(0, 71999) i,
            generate_series(%(hi)s::timestamptz - INTERVAL '1 hour',
                            %(hi)s::timestamptz - INTERVAL '1 second', INTERVAL '15 minutes') t
       WHERE i %% 100 <> 7""",
    """INSERT INTO light_faults (device_id, time, received_at, fault, active)
       SELECT 'L-' || (i * 100), %(lo)s::timestamptz + i * INTERVAL '1 minute',
              %(lo)s::timestamptz + i * INTERVAL '1 minute', 'lampFailure', true
       FROM generate_series(0, 719) i""",
    # Trucks: 21 fixes (30 s apart) per point, the first 4 stopped at it; every 5th truck
    # stops 1 km away from its point 7.
    """INSERT INTO vehicle_positions (device_id, time, received_at, lat, lon, speed_kmh)
       SELECT 'T-' || r, t, t,
              31.55 + 0.004 * (r %% 12) + 0.0008 * (k / 21)
                + CASE WHEN r %% 5 = 0 AND k / 21 = 7 THEN 0.01 ELSE 0 END
                + CASE WHEN k %% 21 < 4 THEN 0 ELSE 0.0008 * (k %% 21) / 21.0 END,
              -8.10 + 0.01 * (r / 12), CASE WHEN k %% 21 < 4 THEN 0 ELSE 20 END
       FROM generate_series(0, 119) r, generate_series(0, 839) k,
            LATERAL (SELECT %(night)s::timestamptz + k * INTERVAL '30 seconds' AS t) x""",
    # Buses: shuttling between their line's termini (2.2 km apart), a round trip every 10 min.
    """INSERT INTO vehicle_positions (device_id, time, received_at, lat, lon, speed_kmh)
       SELECT 'B-' || b, t, t,
              31.58 + 0.02 * (1 - abs(2 * ((extract(epoch FROM t)::bigint + 37 * b) %% 600)
                                      / 600.0 - 1)),
              -8.10 + 0.01 * (b %% 25), 27
       FROM generate_series(0, 249) b,
            generate_series(%(lo)s::timestamptz + INTERVAL '6 hours',
                            %(lo)s::timestamptz + INTERVAL '23 hours', INTERVAL '10 seconds') t""",
]


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@contextmanager
def bench_schema(base: Settings, keep: bool) -> Iterator[Settings]:
    """A fresh migrated schema for one run."""
    settings = base.model_copy(update={"database_schema": f"bench_od_{uuid.uuid4().hex[:8]}"})
    migrate(settings)
    try:
        yield settings
    finally:
        if not keep:
            with psycopg.connect(conninfo(base), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA {} CASCADE").format(
                        sql.Identifier(settings.database_schema)
                    )
                )


def _local(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)


def generate(settings: Settings, first: date, days: int) -> date:
    """The registry, a year of feed-level rows, and one raw day (returned) for the baselines."""
    zone = ZoneInfo(TZ)
    raw = first + timedelta(days=days - 1)
    params: dict[str, Any] = {
        "districts": list(DISTRICTS),
        "services": list(SERVICES),
        "first": first,
        "days": days,
        "start": _local(first, zone),
        "end": _local(first + timedelta(days=days), zone),
        "day": raw,
        "lo": _local(raw, zone),
        "hi": _local(raw + timedelta(days=1), zone),
        "night": _local(raw, zone) + timedelta(hours=21),
    }
    with psycopg.connect(conninfo(settings), autocommit=True) as conn:
        plain = conn.execute("SELECT value FROM rasd_meta WHERE key = 'backend'").fetchone()
        if plain is not None and plain[0] == "plain":
            for table in ("vehicle_positions", "light_energy", "light_faults"):
                conn.execute(
                    "SELECT rasd_ensure_partitions(%s, %s, %s)",
                    (table, params["lo"] - timedelta(days=1), params["hi"] + timedelta(days=2)),
                )
        for statement in (*_REGISTRY, *_YEAR, *_RAW):
            t0 = time.perf_counter()
            cur = conn.execute(statement.encode(), params)
            label = " ".join(statement.split()[:3])
            print(f"  {label:<40} {cur.rowcount:>10,} rows {time.perf_counter() - t0:6.1f} s")
        for table in (
            "devices",
            "energy_hourly_rollup",
            "open_data_light_status_daily",
            "open_data_waste_rounds",
            "open_data_bus_service_daily",
            "alerts",
            "complaints",
            "light_energy",
            "light_faults",
            "vehicle_positions",
        ):
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    return raw


async def timed(call: Callable[[], Awaitable[Any]], repeat: int) -> tuple[list[float], Any]:
    """Milliseconds of ``repeat`` calls after one warm-up, and the last result."""
    result = await call()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = await call()
        times.append((time.perf_counter() - t0) * 1000)
    return times, result


def line(name: str, times: list[float], rows: int | str) -> None:
    """One row of the results table."""
    print(
        f"| {name:<52} | {percentile(times, 0.5):9.1f} | {percentile(times, 0.99):9.1f} "
        f"| {rows!s:>8} |"
    )


async def measure(settings: Settings, first: date, days: int, raw: date, repeat: int) -> None:
    """Time every feed over the year, then the raw baselines of one day."""
    zone = ZoneInfo(TZ)
    year = DayRange(first, first + timedelta(days=days - 1))
    months = DayRange(year.first.replace(day=1), year.last)
    start, end = year.bounds(zone)
    mstart, mend = months.bounds(zone)
    async with await psycopg.AsyncConnection.connect(
        conninfo(settings), autocommit=True, prepare_threshold=None
    ) as conn:

        def feed(
            name: str, load: Callable[[], Awaitable[list[Any]]]
        ) -> Callable[[], Awaitable[str]]:
            async def call() -> str:
                extra = {"as_of": now} if name == "lights-status" else {}
                return csv_text(BY_NAME[name], shape_rows(BY_NAME[name], await load(), **extra))

            return call

        now = datetime.now(UTC)
        feeds: list[tuple[str, Callable[[], Awaitable[str]]]] = [
            (
                "energy-daily",
                feed("energy-daily", lambda: store.energy_by_district(conn, "day", start, end, TZ)),
            ),
            (
                "energy-monthly",
                feed(
                    "energy-monthly",
                    lambda: store.energy_by_district(conn, "month", mstart, mend, TZ),
                ),
            ),
            (
                "lights-status",
                feed("lights-status", lambda: store.lights_now(conn, now, timedelta(minutes=45))),
            ),
            (
                "lights-status-daily",
                feed(
                    "lights-status-daily", lambda: store.lights_daily(conn, year.first, year.last)
                ),
            ),
            (
                "fault-repairs-monthly",
                feed("fault-repairs-monthly", lambda: store.fault_repairs(conn, mstart, mend, TZ)),
            ),
            (
                "complaints-monthly",
                feed("complaints-monthly", lambda: store.complaint_stats(conn, mstart, mend, TZ)),
            ),
            (
                "waste-rounds-daily",
                feed(
                    "waste-rounds-daily",
                    lambda: store.waste_rounds(conn, "day", year.first, year.last),
                ),
            ),
            (
                "waste-rounds-monthly",
                feed(
                    "waste-rounds-monthly",
                    lambda: store.waste_rounds(conn, "month", months.first, months.last),
                ),
            ),
            (
                "bus-service-daily",
                feed(
                    "bus-service-daily",
                    lambda: store.bus_service(conn, "day", year.first, year.last),
                ),
            ),
            (
                "bus-service-monthly",
                feed(
                    "bus-service-monthly",
                    lambda: store.bus_service(conn, "month", months.first, months.last),
                ),
            ),
        ]
        print(f"\nfeeds over {year.first}..{year.last} (storage read + CSV), {repeat} runs each:")
        print(f"| {'feed':<52} | {'p50 ms':>9} | {'p99 ms':>9} | {'rows':>8} |")
        print(f"|{'-' * 54}|{'-' * 11}|{'-' * 11}|{'-' * 10}|")
        for name, call in feeds:
            times, text = await timed(call, repeat)
            line(name, times, text.count("\r\n") - 1)

        async def per_district() -> float:
            total = 0.0
            for district in DISTRICTS:
                periods = await group_energy(
                    conn, "district", district, "day", start, end, TZ, realtime=False
                )
                total += sum(p.energy_wh for p in periods)
            return total

        times, _ = await timed(per_district, repeat)
        line("  ref: energy.group_energy, one call per district", times, "")

        runs = max(3, repeat // 10)
        print(f"\nraw baselines: one day computed from raw readings, {runs} runs each:")
        print(
            f"| {'computation (writes that day)':<52} | {'p50 ms':>9} | {'p99 ms':>9} "
            f"| {'x365 s':>8} |"
        )
        print(f"|{'-' * 54}|{'-' * 11}|{'-' * 11}|{'-' * 10}|")
        raws: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            (
                "lights of one day, 72,000 lights",
                lambda: store.refresh_light_day(conn, raw, TZ, timedelta(minutes=45)),
            ),
            (
                "rounds of one night, 120 trucks x 40 points",
                lambda: store.refresh_rounds_night(conn, raw, STOP_KMH),
            ),
            (
                "bus service of one day, 250 buses",
                lambda: store.refresh_bus_day(conn, raw, TZ, TERMINUS_M, MAX_TRIP),
            ),
        ]
        for name, call_raw in raws:
            times, _ = await timed(call_raw, runs)
            print(
                f"| {name:<52} | {percentile(times, 0.5):9.1f} | {percentile(times, 0.99):9.1f} "
                f"| {statistics.median(times) * 365 / 1000:8.0f} |"
            )
        check = await store.waste_rounds(conn, "day", raw, raw)
        done = sum(r.completed for r in check)
        print(f"\n(check: on the raw night {done} of {sum(r.planned for r in check)} rounds done)")


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m api.open_data.bench", description=__doc__)
    parser.add_argument("--days", type=int, default=365, help="days of generated history")
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per feed")
    parser.add_argument("--keep", action="store_true", help="keep the bench schema")
    args = parser.parse_args(argv)
    base = Settings()
    today = datetime.now(ZoneInfo(TZ)).date()
    first = today - timedelta(days=args.days)
    with bench_schema(base, args.keep) as settings:
        print(f"schema {settings.database_schema}: generating {args.days} days from {first}")
        t0 = time.perf_counter()
        raw = generate(settings, first, args.days)
        print(f"generated in {time.perf_counter() - t0:.0f} s")
        asyncio.run(measure(settings, first, args.days, raw, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
