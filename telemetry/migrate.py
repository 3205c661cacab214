"""Versioned SQL migrations: `NNNN_name.sql` for all, `NNNN_name.<backend>.sql` for one backend."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import psycopg
import structlog
from psycopg import sql

from telemetry.db import connect, ensure_database
from telemetry.errors import MigrationError
from telemetry.settings import Settings
from telemetry.storage.backend import Backend, choose_backend
from telemetry.storage.maintenance import run_upkeep

log = structlog.get_logger("telemetry.migrate")

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(plain|timescale))?\.sql$")
# One lock id for every migrate on a database, so concurrent runs (CI workers) take turns.
_MIGRATE_LOCK = 0x52415344  # "RASD"

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    variant    text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS rasd_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One version's SQL for the chosen backend."""

    version: int
    name: str
    variant: str
    text: str

    @property
    def checksum(self) -> str:
        """SHA-256 of the SQL text, to notice a migration edited after it was applied."""
        return hashlib.sha256(self.text.encode()).hexdigest()


def load_migrations(backend: Backend) -> list[Migration]:
    """Every migration version, with the file that applies to ``backend`` (or none)."""
    by_version: dict[int, dict[str, tuple[str, str]]] = {}
    for entry in resources.files("telemetry.migrations").iterdir():
        match = _FILE_RE.match(entry.name)
        if not match:
            continue
        version, name, variant = int(match[1]), match[2], match[3] or "all"
        by_version.setdefault(version, {})[variant] = (name, entry.read_text(encoding="utf-8"))
    migrations = []
    for version in sorted(by_version):
        files = by_version[version]
        if "all" in files and len(files) > 1:
            raise MigrationError(f"migration {version:04d} has both a common and a backend file")
        chosen = files.get(backend.value) or files.get("all")
        if chosen is None:
            name = next(iter(files.values()))[0]
            migrations.append(Migration(version, name, "skipped", ""))
        else:
            variant = backend.value if backend.value in files else "all"
            migrations.append(Migration(version, chosen[0], variant, chosen[1]))
    return migrations


def _backend_for(conn: psycopg.Connection, settings: Settings) -> Backend:
    row = conn.execute("SELECT value FROM rasd_meta WHERE key = 'backend'").fetchone()
    if row is not None:
        return Backend(row[0])
    backend = choose_backend(conn, settings.timescaledb)
    if backend is Backend.TIMESCALE:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb WITH SCHEMA public")
    conn.execute("INSERT INTO rasd_meta (key, value) VALUES ('backend', %s)", (backend.value,))
    return backend


def migrate(settings: Settings) -> list[Migration]:
    """Create the database and schema if needed and apply pending migrations; idempotent."""
    ensure_database(settings)
    applied_now: list[Migration] = []
    with connect(settings, app="rasd-migrate", autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATE_LOCK,))
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                        sql.Identifier(settings.database_schema)
                    )
                )
                conn.execute(_BOOKKEEPING)
                backend = _backend_for(conn, settings)
            done = {
                int(v): c
                for v, c in conn.execute("SELECT version, checksum FROM schema_migrations")
            }
            for migration in load_migrations(backend):
                if migration.version in done:
                    if (
                        migration.variant != "skipped"
                        and done[migration.version] != migration.checksum
                    ):
                        log.warning(
                            "migration_changed_after_apply",
                            version=migration.version,
                            name=migration.name,
                        )
                    continue
                with conn.transaction():
                    if migration.text:
                        conn.execute(migration.text.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, variant, checksum) "
                        "VALUES (%s, %s, %s, %s)",
                        (migration.version, migration.name, migration.variant, migration.checksum),
                    )
                applied_now.append(migration)
                log.info(
                    "migration_applied",
                    version=migration.version,
                    name=migration.name,
                    variant=migration.variant,
                )
            # Rollups are left to the ingestor's upkeep: a first one over years of readings
            # would hold every other migrate waiting on the lock.
            run_upkeep(conn, settings, energy_rollups=False)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATE_LOCK,))
    return applied_now
