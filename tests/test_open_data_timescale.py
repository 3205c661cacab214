"""Open data on TimescaleDB (a throwaway cluster that preloads it) gives the same figures as on
plain PostgreSQL: migration 0013 has one body for both backends.

Skipped, with the reason, when the extension is not installed for this PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import psycopg
import pytest

from telemetry.db import conninfo
from telemetry.migrate import migrate
from telemetry.settings import Settings, TimescaleMode
from telemetry.storage import open_data as store
from telemetry.storage.backend import Backend, recorded_backend
from tests.support.database import open_db
from tests.support.env import unique_settings
from tests.support.open_data_city import TZ, refresh, seed_city
from tests.support.pg_cluster import PostgresCluster, timescale_installed
from tests.test_open_data_refresh import snapshot

pytestmark = [
    pytest.mark.timescaledb,
    pytest.mark.skipif(
        not timescale_installed(),
        reason="TimescaleDB extension not installed for this PostgreSQL "
        "(no timescaledb.control); the plain PostgreSQL backend is tested instead",
    ),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    """One TimescaleDB-enabled cluster for this module."""
    with PostgresCluster(timescale=True) as instance:
        yield instance


async def _on_read(settings: Settings) -> dict[str, list[Any]]:
    start = datetime(2025, 9, 1, tzinfo=TZ)
    end = datetime(2025, 12, 1, tzinfo=TZ)
    tz = "Africa/Casablanca"
    async with await psycopg.AsyncConnection.connect(conninfo(settings), autocommit=True) as conn:
        return {
            "energy": await store.energy_by_district(conn, "day", start, end, tz),
            "repairs": await store.fault_repairs(conn, start, end, tz),
            "complaints": await store.complaint_stats(conn, start, end, tz),
            "bus": await store.bus_service(conn, "month", date(2025, 9, 1), date(2025, 11, 30)),
        }


async def test_both_backends_give_the_same_figures(
    cluster: PostgresCluster, migrated: Settings
) -> None:
    # The seeded city lives in autumn 2025: with the default 90-day retention the extension's
    # background job may drop its positions between the seeding and the refresh.
    tsdb = unique_settings(
        database_url=cluster.url, timescaledb=TimescaleMode.ON, retention_positions_days=3650
    )
    migrate(tsdb)
    with open_db(tsdb) as conn:
        assert recorded_backend(conn) is Backend.TIMESCALE
    for settings in (migrated, tsdb):
        seed_city(settings)
        report = await refresh(settings)
        assert report.ran
    assert snapshot(tsdb) == snapshot(migrated)
    assert snapshot(tsdb)["open_data_bus_service_daily"]
    assert await _on_read(tsdb) == await _on_read(migrated)
