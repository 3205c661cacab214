"""Synthetic city data for the benchmarks: seeding, counting and analysing a throwaway schema.

Only the benchmarks (``python -m bench.<name>``) call this; never run it against a live schema.
It lives here, not in ``telemetry.storage``: the shipped product never seeds a fake city.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, LiteralString

import psycopg
from psycopg import sql

PositionRow = tuple[str, datetime, datetime, float, float, float, float]
EnergyRow = tuple[str, datetime, datetime, float, float, bool]

# Open data, registry: lights, trucks with their rounds, buses with their lines.
_OD_REGISTRY: Final[tuple[LiteralString, ...]] = (
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
)

# Open data, a year at the level the feeds read; %(first)s is the first local day, %(days)s
# how many, [%(start)s, %(end)s) their UTC bounds.
_OD_YEAR: Final[tuple[LiteralString, ...]] = (
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
)

# Open data, one raw day (UTC bounds %(lo)s, %(hi)s; trucks from %(night)s) for the baselines.
_OD_RAW_DAY: Final[tuple[LiteralString, ...]] = (
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
)

_STAGE: Final = (
    "CREATE TEMP TABLE IF NOT EXISTS bench_stage (LIKE vehicle_positions) ON COMMIT DELETE ROWS"
)
_COPY_STAGE: Final = (
    "COPY bench_stage (device_id, time, received_at, lat, lon, speed_kmh, heading_deg) FROM STDIN"
)
# Through the table's insert path (trigger included), as the ingestor's staging does.
_FROM_STAGE: Final = "INSERT INTO vehicle_positions SELECT * FROM bench_stage"
_COPY_ENERGY: Final = (
    "COPY light_energy (device_id, time, received_at, energy_wh, power_w, lamp_on) FROM STDIN"
)
# force: a policy run racing the load (right after migrate) may already have declared part of
# the window up to date.
_REFRESH_AGGREGATE: Final = (
    "CALL refresh_continuous_aggregate('light_energy_hourly', NULL, %s, force => true)"
)
_TIME_SERIES_ROWS: Final = (
    "SELECT (SELECT count(*) FROM vehicle_positions) + (SELECT count(*) FROM light_energy)"
    " + (SELECT count(*) FROM light_faults), least("
    "(SELECT min(received_at) FROM vehicle_positions),"
    "(SELECT min(received_at) FROM light_energy))"
)
_COMPLAINT_LINKS: Final = (
    "SELECT c.service_code, c.link_state, count(*) FROM complaints c GROUP BY 1, 2 ORDER BY 1, 2"
)
_EVIDENCE_VERDICTS: Final = (
    "SELECT kind, verdict, count(*) FROM complaint_evidence GROUP BY 1, 2 ORDER BY 1, 2"
)
_ALERT_KINDS: Final = "SELECT kind, count(*) FROM alerts GROUP BY 1 ORDER BY 1"


@dataclass(frozen=True, slots=True)
class Seeded:
    """One seeding statement: its label (the statement's first three words) and rows written."""

    label: str
    rows: int


def _seed(
    conn: psycopg.Connection, statements: Sequence[LiteralString], params: dict[str, Any]
) -> Iterator[Seeded]:
    for statement in statements:
        cur = conn.execute(statement, params)
        yield Seeded(" ".join(statement.split()[:3]), cur.rowcount)


def seed_open_data_registry(conn: psycopg.Connection, districts: Sequence[str]) -> Iterator[Seeded]:
    """72,000 lights, 120 trucks with 40-point rounds, 250 buses on 25 lines; one per statement."""
    yield from _seed(conn, _OD_REGISTRY, {"districts": list(districts)})


def seed_open_data_year(
    conn: psycopg.Connection,
    districts: Sequence[str],
    services: Sequence[str],
    first: date,
    days: int,
    start: datetime,
    end: datetime,
) -> Iterator[Seeded]:
    """``days`` local days from ``first`` (UTC [start, end)) of feed rows and their watermarks."""
    params = {
        "districts": list(districts),
        "services": list(services),
        "first": first,
        "days": days,
        "start": start,
        "end": end,
    }
    yield from _seed(conn, _OD_YEAR, params)


def seed_open_data_raw_day(
    conn: psycopg.Connection, lo: datetime, hi: datetime, night: datetime
) -> Iterator[Seeded]:
    """One raw day [lo, hi): the lights' last hour, 720 faults, a truck night, a day of buses."""
    yield from _seed(conn, _OD_RAW_DAY, {"lo": lo, "hi": hi, "night": night})


def stage_positions(conn: psycopg.Connection, rows: Iterable[PositionRow]) -> int:
    """COPY fixes into a temporary staging table, then insert them, in one transaction."""
    count = 0
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_STAGE)
        with cur.copy(_COPY_STAGE) as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        cur.execute(_FROM_STAGE)
    return count


def copy_light_energy(conn: psycopg.Connection, rows: Iterable[EnergyRow]) -> int:
    """COPY meter readings straight into ``light_energy``; returns how many."""
    count = 0
    with conn.cursor() as cur, cur.copy(_COPY_ENERGY) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def refresh_energy_aggregate(conn: psycopg.Connection, until: datetime) -> None:
    """TimescaleDB: force the hourly energy continuous aggregate up to ``until`` (autocommit)."""
    conn.execute(_REFRESH_AGGREGATE, (until,))


def analyze(conn: psycopg.Connection, tables: Iterable[str]) -> None:
    """Planner statistics for ``tables``, as autovacuum would gather them in production."""
    for table in tables:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


def time_series_rows(conn: psycopg.Connection) -> tuple[int, datetime | None]:
    """Rows in the three time-series tables, and the earliest position or energy receive time."""
    row = conn.execute(_TIME_SERIES_ROWS).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def complaint_link_counts(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    """Complaints per (service code, link state)."""
    return [(str(s), str(st), int(n)) for s, st, n in conn.execute(_COMPLAINT_LINKS).fetchall()]


def evidence_verdict_counts(conn: psycopg.Connection) -> list[tuple[str, str, int]]:
    """Complaint evidence per (kind, verdict)."""
    return [(str(k), str(v), int(n)) for k, v, n in conn.execute(_EVIDENCE_VERDICTS).fetchall()]


def alert_kind_counts(conn: psycopg.Connection) -> list[tuple[str, int]]:
    """Alerts per kind."""
    return [(str(k), int(n)) for k, n in conn.execute(_ALERT_KINDS).fetchall()]
