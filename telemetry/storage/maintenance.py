"""Upkeep: partitions ahead, retention and the energy rollups on plain PostgreSQL; retention
policies on TimescaleDB (where background jobs keep the rollups)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from telemetry.settings import Settings
from telemetry.storage.backend import Backend, recorded_backend
from telemetry.storage.energy import catch_up_energy_rollups, rollup_watermark

TIME_SERIES_TABLES = ("vehicle_positions", "light_energy", "light_faults")

# Upkeep makes partitions only this far back; older readings (a back-fill within a maximum age
# of years) get theirs when they arrive, so the window never costs a partition per day ahead.
RECENT_PARTITIONS_BEHIND = timedelta(days=8)

# Hours recomputed on every pass, as TimescaleDB's 15-minute rollup job does (0009).
ROLLUP_LOOKBACK = timedelta(hours=3)


def retention_days(settings: Settings) -> dict[str, int]:
    """Days each time-series table keeps, from the RASD_RETENTION_* settings."""
    return {
        "vehicle_positions": settings.retention_positions_days,
        "light_energy": settings.retention_energy_days,
        "light_faults": settings.retention_faults_days,
    }


@dataclass(slots=True)
class UpkeepReport:
    """What one upkeep pass changed."""

    backend: Backend
    partitions_created: int = 0
    partitions_dropped: int = 0
    policies_set: list[str] = field(default_factory=list)
    dead_letters_deleted: int = 0
    rollup_watermark: datetime | None = None  # plain: energy rollups materialised before this


def ensure_partitions(conn: psycopg.Connection, table: str, start: datetime, end: datetime) -> int:
    """Create the partitions of ``table`` covering [start, end) (plain backend only)."""
    row = conn.execute("SELECT rasd_ensure_partitions(%s, %s, %s)", (table, start, end)).fetchone()
    return int(row[0]) if row else 0


def ensure_partitions_at(conn: psycopg.Connection, table: str, times: Sequence[datetime]) -> int:
    """Create the partitions of ``table`` that hold any of ``times`` (plain backend only)."""
    row = conn.execute("SELECT rasd_ensure_partitions_at(%s, %s)", (table, list(times))).fetchone()
    return int(row[0]) if row else 0


def _plain_upkeep(
    conn: psycopg.Connection, settings: Settings, now: datetime, report: UpkeepReport
) -> None:
    start = now - min(settings.max_age, RECENT_PARTITIONS_BEHIND) - timedelta(days=1)
    end = now + timedelta(days=settings.partitions_ahead_days)
    for table, days in retention_days(settings).items():
        with conn.transaction():
            report.partitions_created += ensure_partitions(conn, table, start, end)
            row = conn.execute(
                "SELECT rasd_drop_partitions_before(%s, %s)", (table, now - timedelta(days=days))
            ).fetchone()
            report.partitions_dropped += int(row[0]) if row else 0


def refresh_rollups(conn: psycopg.Connection, settings: Settings, now: datetime) -> datetime | None:
    """Plain backend: materialise the circuit/district energy rollups up to the current hour.

    Every pass recomputes the last few hours; when the watermark enters a new UTC day it also
    recomputes the window in which late readings are accepted (as the daily TimescaleDB job).
    """
    before = rollup_watermark(conn)
    mark = catch_up_energy_rollups(conn, now, ROLLUP_LOOKBACK)
    if before is not None and mark is not None and before.date() != mark.date():
        mark = catch_up_energy_rollups(conn, now, settings.max_age + timedelta(days=1))
    return mark


def _timescale_upkeep(conn: psycopg.Connection, settings: Settings, report: UpkeepReport) -> None:
    for table, days in retention_days(settings).items():
        wanted = timedelta(days=days)
        with conn.transaction():
            current = conn.execute(
                "SELECT (config->>'drop_after')::interval FROM timescaledb_information.jobs "
                "WHERE proc_name = 'policy_retention' AND hypertable_schema = current_schema() "
                "AND hypertable_name = %s",
                (table,),
            ).fetchone()
            if current is not None and current[0] == wanted:
                continue
            if current is not None:
                conn.execute("SELECT remove_retention_policy(%s::regclass)", (table,))
            conn.execute(
                "SELECT add_retention_policy(%s::regclass, drop_after => %s)", (table, wanted)
            )
            report.policies_set.append(table)


def run_upkeep(
    conn: psycopg.Connection,
    settings: Settings,
    now: datetime | None = None,
    *,
    energy_rollups: bool = True,
) -> UpkeepReport:
    """One upkeep pass; safe to run from several processes at once (autocommit connection).
    ``energy_rollups=False`` skips the rollups (a first one over years of readings is long)."""
    now = now or datetime.now(UTC)
    with conn.transaction():
        backend = recorded_backend(conn)
    report = UpkeepReport(backend)
    if backend is Backend.PLAIN:
        _plain_upkeep(conn, settings, now, report)
        if energy_rollups:
            report.rollup_watermark = refresh_rollups(conn, settings, now)
    else:
        _timescale_upkeep(conn, settings, report)
    with conn.transaction():
        cur = conn.execute(
            "DELETE FROM dead_letters WHERE received_at < %s",
            (now - timedelta(days=settings.retention_dead_letters_days),),
        )
        report.dead_letters_deleted = cur.rowcount
    return report
