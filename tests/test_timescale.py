"""The TimescaleDB backend, on a throwaway cluster that preloads the extension.

Skipped, with the reason, when the extension is not installed for this PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from telemetry.db import connect
from telemetry.decoding import EnergyRow, PositionRow
from telemetry.migrate import migrate
from telemetry.settings import Settings, TimescaleMode
from telemetry.storage.backend import Backend, recorded_backend
from telemetry.storage.energy import hourly_energy
from telemetry.storage.maintenance import run_upkeep
from telemetry.storage.readings import Batch, ReadingStore
from telemetry.topics import Fleet
from tests.conftest import register
from tests.support.database import count
from tests.support.env import unique_settings
from tests.support.ingest_process import IngestProcess
from tests.support.pg_cluster import PostgresCluster, timescale_installed
from tests.support.publisher import Publisher
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.timescaledb,
    pytest.mark.skipif(
        not timescale_installed(),
        reason="TimescaleDB extension not installed for this PostgreSQL "
        "(no timescaledb.control); the plain PostgreSQL backend is tested instead",
    ),
]

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    """One TimescaleDB-enabled cluster for this module (schemas keep tests apart)."""
    with PostgresCluster(timescale=True) as instance:
        yield instance


@pytest.fixture
def tsdb(cluster: PostgresCluster) -> Settings:
    settings = unique_settings(database_url=cluster.url, timescaledb=TimescaleMode.ON)
    migrate(settings)
    return settings


def _energy_rows(start: datetime) -> list[EnergyRow]:
    return [
        EnergyRow(
            "L-1",
            start + timedelta(minutes=15 * i),
            NOW,
            500.0 + 15.0 * i,
            60.0,
            230.0,
            0.26,
            0.95,
            True,
            100.0,
            i,
        )
        for i in range(16)
    ]


def test_hypertables_compression_retention_and_aggregate(tsdb: Settings) -> None:
    with connect(tsdb, autocommit=True) as conn:
        assert recorded_backend(conn) is Backend.TIMESCALE
        hypertables: dict[str, bool] = dict(
            conn.execute(
                "SELECT hypertable_name, compression_enabled "
                "FROM timescaledb_information.hypertables "
                "WHERE hypertable_schema = current_schema()"
            ).fetchall()
        )
        assert hypertables == {
            "vehicle_positions": True,
            "light_energy": True,
            "light_faults": False,
        }
        intervals: dict[str, timedelta] = dict(
            conn.execute(
                "SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions "
                "WHERE hypertable_schema = current_schema()"
            ).fetchall()
        )
        assert intervals["vehicle_positions"] == timedelta(hours=6)
        assert intervals["light_energy"] == timedelta(days=7)
        jobs = {
            (r[0], r[1]): r[2]
            for r in conn.execute(
                "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs "
                "WHERE hypertable_schema = current_schema()"
            ).fetchall()
        }
        assert jobs[("policy_retention", "vehicle_positions")]["drop_after"] == "90 days"
        assert ("policy_compression", "light_energy") in jobs
        assert conn.execute(
            "SELECT 1 FROM timescaledb_information.continuous_aggregates "
            "WHERE view_schema = current_schema() AND view_name = 'light_energy_hourly'"
        ).fetchone()


def test_retention_setting_changes_the_policy(tsdb: Settings) -> None:
    shorter = tsdb.model_copy(update={"retention_positions_days": 30})
    with connect(shorter, autocommit=True) as conn:
        report = run_upkeep(conn, shorter)
        assert report.policies_set == ["vehicle_positions"]
        drop_after = conn.execute(
            "SELECT config->>'drop_after' FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_retention' AND hypertable_schema = current_schema() "
            "AND hypertable_name = 'vehicle_positions'"
        ).fetchone()
        assert drop_after == ("30 days",)
        assert run_upkeep(conn, shorter).policies_set == []


def test_writes_dedup_and_hourly_energy_match_plain_postgres(
    tsdb: Settings, make_settings: Callable[..., Settings]
) -> None:
    plain = make_settings(timescaledb=TimescaleMode.OFF)
    start = NOW.replace(minute=0, second=0) - timedelta(hours=5)
    results = {}
    for settings in (tsdb, plain):
        with connect(settings, autocommit=True) as conn:
            store = ReadingStore(conn)
            batch = Batch(
                energy=_energy_rows(start),
                positions=[PositionRow("B-1", NOW, NOW, 31.6, -8.0, None, None, None, None, None)],
            )
            assert store.write(batch).inserted == {"vehicle_positions": 1, "light_energy": 16}
            assert store.write(batch).inserted == {"vehicle_positions": 0, "light_energy": 0}
            results[store.backend] = hourly_energy(conn, ["L-1"], start, start + timedelta(hours=4))
    assert results[Backend.TIMESCALE] == results[Backend.PLAIN]
    assert [h.energy_wh for h in results[Backend.PLAIN]] == [45.0, 60.0, 60.0, 60.0]


def test_aggregate_refresh_keeps_results(tsdb: Settings) -> None:
    start = NOW.replace(minute=0, second=0) - timedelta(hours=5)
    with connect(tsdb, autocommit=True) as conn:
        ReadingStore(conn).write(Batch(energy=_energy_rows(start)))
        before = hourly_energy(conn, ["L-1"], start, start + timedelta(hours=4))
        conn.execute("CALL refresh_continuous_aggregate('light_energy_hourly', NULL, NULL)")
        assert hourly_energy(conn, ["L-1"], start, start + timedelta(hours=4)) == before


def test_ingest_end_to_end_on_timescaledb(
    tsdb: Settings, start_ingest: Callable[..., IngestProcess], publisher: Publisher
) -> None:
    register(tsdb, ("B-001", Fleet.BUS))
    start_ingest(tsdb)
    ms = int(NOW.timestamp() * 1000)
    topic = f"{tsdb.topic_prefix}/bus/B-001/position"
    messages = [
        (topic, json.dumps({"ts": ms - 1000 * i, "lat": 31.6, "lon": -8.0}).encode())
        for i in range(200)
    ]
    publisher.publish_all(messages + messages[:50])
    wait_until(lambda: count(tsdb, "vehicle_positions") == 200, what="200 rows on TimescaleDB")


def test_schema_uses_the_extension_in_public(tsdb: Settings) -> None:
    with psycopg.connect(tsdb.database_url) as conn:
        assert conn.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'timescaledb'"
        ).fetchone() == ("public",)
