"""``python -m bench.energy_accounting``: a whole city-month of energy accounting.

In a fresh schema of the ``RASD_*`` database (dropped afterwards unless ``--keep``), it
generates with server-side ``generate_series``:

* the registry and the equipment register: 72,000 lights (5 LED models, 6 districts) on
  1,800 circuits, one cabinet each with a meter number, contract and tariff; every fourth
  cabinet has its own meter device;
* the last full local month, at the level the reconciliation reads: each light's meter every
  12 hours from two days before the month to a day after (4.9 M readings), each cabinet meter
  every hour, the circuits' hourly rollups (1,800 x the month's hours, materialised: the
  watermark past the month) and one bill per cabinet.

Then it times, in this process, the month's reconciliation (reads, model of every light's
nights, flags, the stored result) and, as the baseline in the same run, a plain SQL sum over
the same readings and rollup hours (the smallest read any reconciliation has to make),
and prints both and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Final, LiteralString
from zoneinfo import ZoneInfo

import psycopg

from telemetry.db import conninfo
from telemetry.energy_accounting.month import last_day, local_window, reconcile_month, totals
from telemetry.energy_accounting.reconcile import Thresholds
from telemetry.energy_accounting.tariffs import EXAMPLE_FILE, load_tariffs
from telemetry.migrate import migrate
from telemetry.settings import Settings
from telemetry.storage.backend import Backend, recorded_backend
from telemetry.storage.energy_accounting import load_month, save_month
from telemetry.storage.maintenance import ensure_partitions
from tests.support.database import drop_schema

TZ: Final = ZoneInfo("Africa/Casablanca")
LIGHTS: Final = 72_000
PER_CIRCUIT: Final = 40
DISTRICTS: Final = ("medina", "gueliz", "menara", "annakhil", "sidi-youssef-ben-ali", "mechouar")

_SEED: Final[tuple[LiteralString, ...]] = (
    """INSERT INTO equipment_models (model_id, kind, manufacturer, model, rated_power_w,
                                     light_source)
       SELECT 'LUM-LED-' || w, 'luminaire', 'Bench', 'LED ' || w, w, 'LED'
       FROM unnest(ARRAY[40, 60, 90, 120, 150]) w""",
    """INSERT INTO devices (device_id, fleet, district, circuit, rated_w, lat, lon)
       SELECT 'L-' || i, 'light', (%(districts)s::text[])[1 + (i / 12000)],
              'C-' || (i / 40), (ARRAY[40, 60, 90, 120, 150])[1 + (i / 40) %% 5],
              31.56 + 0.0004 * (i %% 400), -8.08 + 0.0006 * (i / 400)
       FROM generate_series(0, %(lights)s - 1) i""",
    """INSERT INTO devices (device_id, fleet, label)
       SELECT 'M-' || k, 'light', 'cabinet meter'
       FROM generate_series(0, %(lights)s / 40 - 1, 4) k""",
    """INSERT INTO equipment_assets (asset_id, kind, district, meter_id, contracted_kw, tariff,
                                     device_id)
       SELECT 'CAB-' || k, 'cabinet', (%(districts)s::text[])[1 + (k * 40 / 12000)],
              'RDM-' || k, 9, 'eclairage_public_bt', CASE WHEN k %% 4 = 0 THEN 'M-' || k END
       FROM generate_series(0, %(lights)s / 40 - 1) k""",
    """INSERT INTO equipment_assets (asset_id, kind, parent_id)
       SELECT 'C-' || k, 'circuit', 'CAB-' || k FROM generate_series(0, %(lights)s / 40 - 1) k""",
    """INSERT INTO equipment_assets (asset_id, kind, parent_id, device_id, model_id)
       SELECT 'LU-' || i, 'luminaire', 'C-' || (i / 40), 'L-' || i,
              'LUM-LED-' || (ARRAY[40, 60, 90, 120, 150])[1 + (i / 40) %% 5]
       FROM generate_series(0, %(lights)s - 1) i""",
    # Meters every 12 hours: about 12 burning hours a day at three quarters of rated power.
    """INSERT INTO light_energy (device_id, time, received_at, energy_wh, lamp_on)
       SELECT 'L-' || i, t, t,
              1e6 + (ARRAY[40, 60, 90, 120, 150])[1 + (i / 40) %% 5] * 0.375
                    * extract(epoch FROM t - %(t0)s) / 3600, extract(hour FROM t) < 6
       FROM generate_series(0, %(lights)s - 1) i,
            generate_series(%(t0)s::timestamptz, %(t1)s::timestamptz, INTERVAL '12 hours') t""",
    """INSERT INTO light_energy (device_id, time, received_at, energy_wh, lamp_on)
       SELECT 'M-' || k, t, t,
              1e6 + 40 * (ARRAY[40, 60, 90, 120, 150])[1 + k %% 5] * 0.39
                    * extract(epoch FROM t - %(t0)s) / 3600, true
       FROM generate_series(0, %(lights)s / 40 - 1, 4) k,
            generate_series(%(t0)s::timestamptz, %(t1)s::timestamptz, INTERVAL '1 hour') t""",
    """INSERT INTO energy_hourly_rollup (scope, key, bucket, energy_wh, lights)
       SELECT 'circuit', 'C-' || k, h,
              CASE WHEN extract(hour FROM h) BETWEEN 7 AND 17 THEN 0
                   ELSE 40 * (ARRAY[40, 60, 90, 120, 150])[1 + k %% 5] * 0.7 END, 40
       FROM generate_series(0, %(lights)s / 40 - 1) k,
            generate_series(%(start)s::timestamptz, %(end)s::timestamptz - INTERVAL '1 hour',
                            INTERVAL '1 hour') h""",
    "UPDATE energy_rollup_state SET watermark = %(t1)s",
    """INSERT INTO energy_bills (meter_id, period_start, period_end, billed_kwh, amount_dh,
                                 estimated, bill_number)
       SELECT 'RDM-' || k, %(first)s, %(last)s, 400 + k %% 700, 600 + k %% 900, k %% 50 = 0,
              'F-' || k
       FROM generate_series(0, %(lights)s / 40 - 1) k""",
    "ANALYZE",
)

# The baseline: what the meters rose in the month and the circuits' hourly sums, as plain
# aggregates over the same rows the reconciliation reads.
_BASELINE: Final[tuple[LiteralString, ...]] = (
    """SELECT device_id, max(energy_wh) - min(energy_wh) FROM light_energy
       WHERE time >= %(start)s - INTERVAL '1 day' AND time < %(end)s GROUP BY device_id""",
    """SELECT key, max(energy_wh), sum(energy_wh) FROM energy_hourly_rollup
       WHERE scope = 'circuit' AND bucket >= %(start)s AND bucket < %(end)s GROUP BY key""",
)


@contextmanager
def bench_schema(base: Settings, keep: bool) -> Iterator[Settings]:
    """A fresh migrated schema for one run."""
    settings = base.model_copy(update={"database_schema": f"bench_ea_{uuid.uuid4().hex[:8]}"})
    migrate(settings)
    try:
        yield settings
    finally:
        if not keep:
            drop_schema(settings)


def previous_month(today: date) -> date:
    """The first day of the month before ``today``'s."""
    first = today.replace(day=1)
    return (first - timedelta(days=1)).replace(day=1)


def generate(conn: psycopg.Connection, month: date, lights: int) -> None:
    """Seed the city-month."""
    start, end = local_window(month, last_day(month))
    t0 = (start - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    t1 = end + timedelta(days=1)
    if recorded_backend(conn) is Backend.PLAIN:
        ensure_partitions(conn, "light_energy", t0 - timedelta(days=1), t1 + timedelta(days=1))
    params = {
        "districts": list(DISTRICTS),
        "lights": lights,
        "t0": t0,
        "t1": t1,
        "start": start,
        "end": end,
        "first": month,
        "last": last_day(month),
    }
    for statement in _SEED:
        conn.execute(statement, params)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.energy_accounting", description=__doc__)
    parser.add_argument("--lights", type=int, default=LIGHTS, help="lights (40 per cabinet)")
    parser.add_argument("--repeat", type=int, default=3, help="timed reconciliations")
    parser.add_argument("--keep", action="store_true", help="keep the bench schema")
    args = parser.parse_args(argv)
    month = previous_month(datetime.now(TZ).date())
    tariffs = load_tariffs(EXAMPLE_FILE)
    thresholds = Thresholds()
    with (
        bench_schema(Settings(), args.keep) as settings,
        psycopg.connect(conninfo(settings, app="rasd-bench"), autocommit=True) as conn,
    ):
        t = time.perf_counter()
        generate(conn, month, args.lights)
        print(
            f"schema {settings.database_schema}: {args.lights:,} lights, "
            f"{args.lights // PER_CIRCUIT:,} cabinets, {month:%Y-%m} generated in "
            f"{time.perf_counter() - t:.0f} s"
        )
        start, end = local_window(month, last_day(month))
        runs: list[tuple[float, float, float, float]] = []
        baselines: list[float] = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            for statement in _BASELINE:
                conn.execute(statement, {"start": start, "end": end}).fetchall()
            baselines.append(time.perf_counter() - t)
            t = time.perf_counter()
            data = load_month(conn, month, thresholds=thresholds)
            t_read = time.perf_counter()
            rows = reconcile_month(data, tariffs, thresholds=thresholds)
            t_model = time.perf_counter()
            save_month(conn, month, rows, tariff_source=str(EXAMPLE_FILE), thresholds=thresholds)
            t_save = time.perf_counter()
            runs.append((t_save - t, t_read - t, t_model - t_read, t_save - t_model))
        best = min(runs)
        baseline = min(baselines)
        city = totals(rows, "city")
        print(
            f"reconciled {city.cabinets:,} cabinets, {city.lights:,} lights, "
            f"{len(data.rises):,} meter rises; flags: {city.flags}"
        )
        print(
            f"reconciliation {best[0]:.1f} s (reads {best[1]:.1f} s, model and flags "
            f"{best[2]:.1f} s, store {best[3]:.1f} s); baseline plain SUM over the same "
            f"readings {baseline:.2f} s; ratio {best[0] / baseline:.1f}x"
        )
        print(f"at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, best of {args.repeat}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
