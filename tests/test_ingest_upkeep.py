"""Upkeep materialises the circuit/district energy rollups on plain PostgreSQL, by hand
(``run_upkeep``) and inside a running ingestor."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from telemetry.db import conninfo
from telemetry.decoding import EnergyRow
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.backend import Backend
from telemetry.storage.energy import group_energy
from telemetry.storage.maintenance import run_upkeep
from telemetry.topics import Fleet
from tests.support.api_server import register_devices, store
from tests.support.ingest_process import IngestProcess
from tests.support.waiting import wait_until
from tests.test_api_lights import expected_hourly

NOW = datetime.now(UTC)
HOUR = NOW.replace(minute=0, second=0, microsecond=0)
FIRST = HOUR - timedelta(days=2)
LIGHTS = ("L-A", "L-B", "L-C")


def _hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _seed(settings: Settings) -> list[EnergyRow]:
    """Three lights of district "north" reporting every 15 minutes for two days, up to now."""
    register_devices(
        settings,
        *(
            DeviceRecord(device_id=d, fleet=Fleet.LIGHT, district="north", circuit=f"C-{d}")
            for d in LIGHTS
        ),
    )
    rows = []
    for n, device in enumerate(LIGHTS):
        meter, t = 0.0, FIRST + timedelta(minutes=4 + n)
        while t < NOW:
            meter += 10.0 + n
            rows.append(EnergyRow(device, t, t, meter, 40.0, None, None, None, True, 100.0, None))
            t += timedelta(minutes=15)
    store(settings, energy=rows)
    return rows


def _district_hours(rows: list[EnergyRow], before: datetime) -> dict[datetime, float]:
    want: dict[datetime, float] = defaultdict(float)
    for hours in expected_hourly(rows).values():
        for bucket, wh in hours.items():
            if bucket < before:
                want[bucket] += wh
    return dict(want)


async def _materialised(settings: Settings) -> dict[datetime, float]:
    """The district's hours as the rollups hold them (no hour computed on read)."""
    async with await psycopg.AsyncConnection.connect(conninfo(settings), autocommit=True) as conn:
        periods = await group_energy(
            conn,
            "district",
            "north",
            "hour",
            FIRST,
            HOUR + timedelta(hours=1),
            "UTC",
            realtime=False,
        )
    return {p.period: p.energy_wh for p in periods}


async def test_upkeep_fills_the_rollups_on_plain_postgresql(
    migrated: Settings, db: psycopg.Connection
) -> None:
    rows = _seed(migrated)
    assert await _materialised(migrated) == {}  # migrate leaves the rollups to upkeep
    report = run_upkeep(db, migrated, NOW)
    assert report.backend is Backend.PLAIN
    assert report.rollup_watermark == HOUR  # every whole hour, not the current one
    assert await _materialised(migrated) == pytest.approx(_district_hours(rows, HOUR))
    assert run_upkeep(db, migrated, NOW).rollup_watermark == HOUR
    lookback = db.execute("SELECT count(*) FROM energy_rollup_lights").fetchone()
    assert lookback == (len(LIGHTS),)


async def test_late_readings_reach_the_rollups_when_the_watermark_enters_a_new_day(
    migrated: Settings, db: psycopg.Connection
) -> None:
    rows = _seed(migrated)
    yesterday = _hour(NOW) - timedelta(hours=_hour(NOW).hour + 2)  # 22:00 UTC the day before
    assert run_upkeep(db, migrated, yesterday + timedelta(minutes=30)).rollup_watermark == (
        yesterday
    )
    # A reading that arrives late for an hour well before the 3-hour lookback.
    old = FIRST + timedelta(hours=5, minutes=50)
    late = EnergyRow("L-A", old, NOW, 10_000.0, 40.0, None, None, None, True, 100.0, None)
    store(migrated, energy=[late])
    before = await _materialised(migrated)
    assert before[_hour(old)] == pytest.approx(_district_hours(rows, HOUR)[_hour(old)])
    assert run_upkeep(db, migrated, NOW).rollup_watermark == HOUR
    after = await _materialised(migrated)
    assert after == pytest.approx(_district_hours([*rows, late], HOUR))
    assert after[_hour(old)] > before[_hour(old)]


def test_the_ingestor_keeps_the_rollups(
    migrated: Settings, start_ingest: Callable[..., IngestProcess]
) -> None:
    _seed(migrated)
    ingest = start_ingest(migrated)
    wait_until(
        lambda: "rasd_ingest_upkeep_passes_total 1.0" in ingest.http_get("/metrics")[1],
        what="the ingestor's first upkeep pass",
    )
    with psycopg.connect(conninfo(migrated)) as conn:
        row = conn.execute("SELECT watermark FROM energy_rollup_state").fetchone()
    assert row is not None and row[0] >= HOUR
