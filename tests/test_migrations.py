"""Migrations: database creation, idempotence, backend bookkeeping."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from psycopg import sql

from telemetry.migrate import Migration, load_migrations, migrate
from telemetry.settings import Settings, TimescaleMode
from telemetry.storage.backend import Backend
from tests.conftest import database_url_with
from tests.support.database import drop_schema, open_db
from tests.support.env import TEST_DATABASE_URL, unique_settings


def test_migrate_twice_applies_nothing_the_second_time(settings: Settings) -> None:
    try:
        first = migrate(settings)
        second = migrate(settings)
        assert [m.version for m in first] == [m.version for m in load_migrations(Backend.PLAIN)]
        assert second == []
        with open_db(settings) as conn:
            versions = [
                r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")
            ]
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                )
            }
        assert versions == [m.version for m in first]
        assert {"devices", "dead_letters"} <= tables
    finally:
        drop_schema(settings)


def test_migrate_creates_the_database() -> None:
    name = f"rasd_mig_{uuid.uuid4().hex[:8]}"
    settings = unique_settings(database_url=database_url_with(name))
    try:
        assert migrate(settings)
        with open_db(settings) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
    finally:
        _drop_database(name)


def _drop_database(name: str) -> None:
    with psycopg.connect(database_url_with("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def test_concurrent_migrates_on_databases_that_do_not_exist_yet() -> None:
    # What a new machine does: two test workers, or ingest, alerts and the API booting together,
    # all migrating a database nobody has created yet. Before the fix, losers of the CREATE
    # DATABASE race died with UniqueViolation on pg_database_datname_index.
    names = [f"rasd_fresh_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    runs = []
    for i in range(12):
        settings = unique_settings(database_url=database_url_with(names[i % 2]))
        if i % 4 < 2:  # half share one schema (racing on it too), half have their own
            settings = settings.model_copy(update={"database_schema": "shared_first"})
        runs.append(settings)
    start = threading.Barrier(len(runs))

    def run(settings: Settings) -> list[Migration]:
        start.wait(timeout=60)
        return migrate(settings)

    try:
        with ThreadPoolExecutor(len(runs)) as pool:
            results = [f.result(timeout=300) for f in [pool.submit(run, s) for s in runs]]
        applied = {len(r) for r in results}
        assert applied <= {0, len(load_migrations(Backend.PLAIN))}
        for name in names:
            with psycopg.connect(database_url_with(name)) as conn:
                row = conn.execute("SELECT count(*) FROM shared_first.schema_migrations").fetchone()
            assert row == (len(load_migrations(Backend.PLAIN)),)
    finally:
        for name in names:
            _drop_database(name)


def test_migrate_with_a_maximum_age_of_years_makes_only_recent_partitions(
    make_settings: Callable[..., Settings],
) -> None:
    # A city back-filling 14 years of history: migrate used to make a partition for every day of
    # the window and ran out of shared memory. Old readings get partitions as they arrive.
    migrated = make_settings(max_age_s=14 * 365 * 86400)
    with open_db(migrated) as conn:
        if conn.execute("SELECT value FROM rasd_meta WHERE key = 'backend'").fetchone() != (
            "plain",
        ):
            pytest.skip("partitions are TimescaleDB's chunks on this schema")
        made = conn.execute(
            "SELECT count(*) FROM rasd_partitions WHERE parent_table = 'vehicle_positions'"
        ).fetchone()
    assert made is not None and 8 <= made[0] <= 8 + 1 + migrated.partitions_ahead_days + 1


def test_plain_backend_has_the_contract_columns(migrated: Settings, db: psycopg.Connection) -> None:
    expected = {
        "vehicle_positions": [
            "device_id",
            "time",
            "received_at",
            "lat",
            "lon",
            "speed_kmh",
            "heading_deg",
            "accuracy_m",
            "route",
            "seq",
        ],
        "light_energy": [
            "device_id",
            "time",
            "received_at",
            "energy_wh",
            "power_w",
            "voltage_v",
            "current_a",
            "power_factor",
            "lamp_on",
            "dim_pct",
            "seq",
        ],
        "light_faults": ["device_id", "time", "received_at", "fault", "active", "detail"],
    }
    for table, columns in expected.items():
        got = [
            r[0]
            for r in db.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s "
                "ORDER BY ordinal_position",
                (table,),
            )
        ]
        assert got == columns
    for column in ("received_at", "topic", "payload", "reason"):
        assert db.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() "
            "AND table_name = 'dead_letters' AND column_name = %s",
            (column,),
        ).fetchone()
    assert db.execute(
        "SELECT data_type FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = 'dead_letters' AND column_name = 'payload'"
    ).fetchone() == ("bytea",)


def test_timescale_on_without_extension_is_a_clear_error(
    make_settings: Callable[..., Settings],
) -> None:
    with psycopg.connect(TEST_DATABASE_URL.rsplit("/", 1)[0] + "/postgres") as conn:
        preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    if preload and "timescaledb" in str(preload[0]):
        pytest.skip("the shared server preloads TimescaleDB, so 'on' succeeds here")
    settings = unique_settings(timescaledb=TimescaleMode.ON)
    with pytest.raises(Exception, match="timescaledb extension is not installed"):
        migrate(settings)
    drop_schema(settings)
