"""Which storage backend a schema uses: TimescaleDB or plain partitioned PostgreSQL."""

from __future__ import annotations

from enum import StrEnum

import psycopg

from telemetry.errors import MigrationError
from telemetry.settings import TimescaleMode


class Backend(StrEnum):
    """The storage backend recorded for a schema at its first migration."""

    PLAIN = "plain"
    TIMESCALE = "timescale"


def timescale_loadable(conn: psycopg.Connection) -> bool:
    """True when the server has TimescaleDB installed and preloaded."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        return True
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if not available:
        return False
    row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    return row is not None and "timescaledb" in str(row[0])


def choose_backend(conn: psycopg.Connection, mode: TimescaleMode) -> Backend:
    """Pick the backend for a new schema from the setting and what the server offers."""
    if mode is TimescaleMode.OFF:
        return Backend.PLAIN
    if timescale_loadable(conn):
        return Backend.TIMESCALE
    if mode is TimescaleMode.ON:
        raise MigrationError(
            "RASD_TIMESCALEDB=on but the timescaledb extension is not installed and preloaded "
            "(shared_preload_libraries) on this server"
        )
    return Backend.PLAIN


def recorded_backend(conn: psycopg.Connection) -> Backend:
    """The backend a migrated schema was built for."""
    try:
        row = conn.execute("SELECT value FROM rasd_meta WHERE key = 'backend'").fetchone()
    except psycopg.errors.UndefinedTable:
        raise MigrationError("schema is not migrated: run `python -m telemetry migrate`") from None
    if row is None:
        raise MigrationError("schema has no recorded backend: run `python -m telemetry migrate`")
    return Backend(row[0])
