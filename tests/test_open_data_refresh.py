"""The refresh of the materialised open-data days on the real database: incremental from the
watermark, idempotent, late readings within the recheck window, one process at a time under the
advisory lock, the lifespan's background task, and the command."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from api.open_data.refresh import ForcedRange
from telemetry.db import conninfo
from telemetry.decoding import EnergyRow, FaultRow
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage import open_data as store
from telemetry.storage.devices import upsert_devices
from telemetry.storage.readings import Batch, ReadingStore
from telemetry.topics import Fleet
from tests.support.api_server import ApiServer, eventually
from tests.support.database import open_db
from tests.support.env import settings_env
from tests.support.open_data_city import D1, NOW, TZ, D, _fix, local, refresh, refresher, seed_city

ROOT = Path(__file__).resolve().parents[1]
TABLES = (
    "open_data_light_status_daily",
    "open_data_light_faults_eod",
    "open_data_waste_rounds",
    "open_data_bus_service_daily",
)


def snapshot(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every materialised row, in key order."""
    with open_db(settings) as conn:
        return {
            table: conn.execute(
                psycopg.sql.SQL("SELECT * FROM {} ORDER BY 1, 2").format(
                    psycopg.sql.Identifier(table)
                )
            ).fetchall()
            for table in TABLES
        }


async def _bus_trips(settings: Settings, line: str) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(conninfo(settings), autocommit=True) as conn:
        rows = await store.bus_service(conn, "day", D - timedelta(days=5), D1, [line])
    return {r.period.isoformat(): r.trips for r in rows}


async def test_refresh_is_incremental_idempotent_and_rechecks_late_readings(
    migrated: Settings,
) -> None:
    seed_city(migrated)
    day_before = NOW - timedelta(days=1)  # only day (and night) D is complete
    first = await refresh(migrated, day_before, opendata_recheck_days=1)
    assert first.ran
    assert first.days == {
        "light_status": [D - timedelta(days=2), D - timedelta(days=1), D],
        "waste_rounds": [D],
        "bus_service": [D],
    }
    before = snapshot(migrated)
    again = await refresh(migrated, day_before, opendata_recheck_days=1)
    assert again.days == {"light_status": [], "waste_rounds": [], "bus_service": []}
    assert snapshot(migrated) == before

    # A late trip on line S on day D (a backlog sent after the day was materialised).
    with open_db(migrated) as conn:
        back = [
            _fix(
                "B-3", local(D, 11) + timedelta(seconds=10 * i), 31.710 - 0.001 * i, -8.1, 40.0, "S"
            )
            for i in range(11)
        ]
        ReadingStore(conn).write(Batch(positions=back))
    assert (await _bus_trips(migrated, "S")) == {D.isoformat(): 1}

    # Day D+1 completes: it is materialised, and day D (the recheck window) recomputed.
    nxt = await refresh(migrated, NOW, opendata_recheck_days=1)
    assert nxt.days == {"light_status": [D, D1], "waste_rounds": [D, D1], "bus_service": [D, D1]}
    assert (await _bus_trips(migrated, "S")) == {D.isoformat(): 2}
    async with await psycopg.AsyncConnection.connect(conninfo(migrated), autocommit=True) as conn:
        states = await store.feed_states(conn)
        assert {s.watermark for s in states.values()} == {D1 + timedelta(days=1)}
        assert await store.materialised_days(conn, "light_status") == [
            D - timedelta(days=2) + timedelta(days=i) for i in range(4)
        ]

    # Recomputing everything gives the same rows: the per-day refresh is idempotent.
    after = snapshot(migrated)
    full = await refresher(migrated, NOW).refresh_once(forced=ForcedRange(D, D1))
    assert full.days == {"light_status": [D, D1], "waste_rounds": [D, D1], "bus_service": [D, D1]}
    assert snapshot(migrated) == after


async def test_only_one_session_refreshes_at_a_time(migrated: Settings) -> None:
    seed_city(migrated)
    async with await psycopg.AsyncConnection.connect(conninfo(migrated), autocommit=True) as other:
        assert await store.try_refresh_lock(other)
        busy = await refresh(migrated)
        assert not busy.ran and busy.days == {}
        assert snapshot(migrated)["open_data_bus_service_daily"] == []
        await store.refresh_unlock(other)
    done = await refresh(migrated)
    assert done.ran and done.days["bus_service"] == [D, D1]


async def test_a_new_time_zone_recomputes_the_days(migrated: Settings) -> None:
    seed_city(migrated)
    await refresh(migrated)
    report = await refresh(migrated, timezone="UTC")
    async with await psycopg.AsyncConnection.connect(conninfo(migrated), autocommit=True) as conn:
        states = await store.feed_states(conn)
    assert states["light_status"].timezone == "UTC"
    assert states["bus_service"].timezone == "UTC"
    assert report.days["light_status"][0] == D - timedelta(days=2)  # from the first day again
    assert report.days["waste_rounds"] == []  # rounds keep their own time zones


async def test_the_api_refreshes_in_the_background(migrated: Settings) -> None:
    now = datetime.now(UTC)
    today = now.astimezone(TZ).date()
    start = local(today - timedelta(days=2), 0)
    with open_db(migrated) as conn:
        upsert_devices(conn, [DeviceRecord(device_id="L-1", fleet=Fleet.LIGHT, district="medina")])
        ReadingStore(conn).write(
            Batch(
                energy=[
                    EnergyRow("L-1", start, start, 1.0, None, None, None, None, True, None, None)
                ],
                faults=[FaultRow("L-1", start, start, "lampFailure", True, None)],
            )
        )
    yesterday = (today - timedelta(days=1)).isoformat()

    async def materialised() -> bool:
        async with server.client() as client:
            answer = await client.get("/open-data/v1/lights-status-daily.json")
        return any(r["date"] == yesterday and r["faulty"] == 1 for r in answer.json()["rows"])

    async with ApiServer(migrated, opendata_refresh_s=0.2) as server:
        await eventually(materialised, within_s=60, what="yesterday materialised")
    # Leaving the block awaited the server's shutdown: the refresh task was cancelled with it.


def _command(settings: Settings, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "api", "opendata", *args],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_command_refreshes_a_range_and_reports_the_watermarks(migrated: Settings) -> None:
    seed_city(migrated)
    out = _command(migrated, "refresh", "--from", D.isoformat(), "--to", D1.isoformat())
    assert f"bus_service: 2 days ({D} .. {D1})" in out
    status = _command(migrated, "status")
    assert f"bus_service\t{D1 + timedelta(days=1)}\tAfrica/Casablanca" in status
    assert snapshot(migrated)["open_data_waste_rounds"]
