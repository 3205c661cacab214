"""Connections to the Rasd database: conninfo with the schema search path, database creation."""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from telemetry.settings import Settings


def conninfo(settings: Settings, *, dbname: str | None = None, app: str = "rasd") -> str:
    """A libpq conninfo for the configured database, with Rasd's schema first on the path."""
    extra: dict[str, str] = {
        "options": f"-c search_path={settings.database_schema},public",
        "application_name": app,
    }
    if dbname is not None:
        extra["dbname"] = dbname
    return make_conninfo(settings.database_url, **extra)


def database_name(settings: Settings) -> str:
    """The database named in ``RASD_DATABASE_URL``."""
    name = conninfo_to_dict(settings.database_url).get("dbname")
    return str(name) if name else "postgres"


def connect(
    settings: Settings, *, app: str = "rasd", autocommit: bool = False
) -> psycopg.Connection:
    """Open one synchronous connection to the Rasd database."""
    return psycopg.connect(conninfo(settings, app=app), autocommit=autocommit)


def ensure_database(settings: Settings) -> bool:
    """Create the configured database when it is missing; True when it was created.

    Safe when several processes start at once on a new machine: CREATE DATABASE has no
    IF NOT EXISTS, and two concurrent ones race on pg_database's unique index (the loser gets
    UniqueViolation, not DuplicateDatabase), so creators take turns under an advisory lock
    held in the maintenance database.
    """
    name = database_name(settings)
    with psycopg.connect(
        conninfo(settings, dbname="postgres", app="rasd-migrate"), autocommit=True
    ) as conn:
        if _database_exists(conn, name):
            return False
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (_CREATE_LOCK_PREFIX + name,))
        try:
            if _database_exists(conn, name):
                return False  # created by a concurrent migrate while this one waited
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_CREATE_LOCK_PREFIX + name,))


# Advisory locks are per database: every creator of one name locks the same key in `postgres`.
_CREATE_LOCK_PREFIX = "rasd-create-database:"


def _database_exists(conn: psycopg.Connection, name: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
    )
