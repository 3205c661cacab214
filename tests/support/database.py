"""Direct reads of a test schema."""

from __future__ import annotations

import psycopg
from psycopg import sql

from telemetry.db import conninfo
from telemetry.settings import Settings


def open_db(settings: Settings) -> psycopg.Connection:
    """An autocommit connection on the test schema."""
    return psycopg.connect(conninfo(settings, app="rasd-test"), autocommit=True)


def count(settings: Settings, table: str) -> int:
    """Rows in one table of the test schema."""
    with open_db(settings) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
    return int(row[0]) if row else 0


def drop_schema(settings: Settings) -> None:
    """Remove the test schema and everything in it."""
    with open_db(settings) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(settings.database_schema)
            )
        )
