"""``python -m bench.open_data``: latency of the open-data feeds over a year of data.

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
import itertools
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

from api.open_data.feeds import BY_NAME, MAX_TRIP, STOP_KMH, TERMINUS_M
from api.open_data.shaping import DayRange, csv_text, shape_rows
from bench import seed_data
from telemetry.db import conninfo
from telemetry.migrate import migrate
from telemetry.settings import Settings
from telemetry.storage import open_data as store
from telemetry.storage.backend import Backend, recorded_backend
from telemetry.storage.energy import group_energy
from telemetry.storage.maintenance import ensure_partitions
from tests.support.database import drop_schema

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
            drop_schema(settings)


def _local(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, datetime.min.time(), zone).astimezone(UTC)


def generate(settings: Settings, first: date, days: int) -> date:
    """The registry, a year of feed-level rows, and one raw day (returned) for the baselines."""
    zone = ZoneInfo(TZ)
    raw = first + timedelta(days=days - 1)
    start, end = _local(first, zone), _local(first + timedelta(days=days), zone)
    lo, hi = _local(raw, zone), _local(raw + timedelta(days=1), zone)
    with psycopg.connect(conninfo(settings), autocommit=True) as conn:
        if recorded_backend(conn) is Backend.PLAIN:
            for table in ("vehicle_positions", "light_energy", "light_faults"):
                ensure_partitions(conn, table, lo - timedelta(days=1), hi + timedelta(days=2))
        steps = itertools.chain(
            seed_data.seed_open_data_registry(conn, DISTRICTS),
            seed_data.seed_open_data_year(conn, DISTRICTS, SERVICES, first, days, start, end),
            seed_data.seed_open_data_raw_day(conn, lo, hi, lo + timedelta(hours=21)),
        )
        t0 = time.perf_counter()
        for step in steps:
            print(f"  {step.label:<40} {step.rows:>10,} rows {time.perf_counter() - t0:6.1f} s")
            t0 = time.perf_counter()
        seed_data.analyze(
            conn,
            (
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
            ),
        )
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
    parser = argparse.ArgumentParser(prog="python -m bench.open_data", description=__doc__)
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
