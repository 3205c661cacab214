"""Devices silent since before the service's first start (never heard, or heard only before the
catch-up window) are reported; devices taken out of service (deleted from the registry) are
not; a restart or a person's resolution does not bring the same silence back."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg

from alerts.catalog import Catalog
from alerts.catchup import rebuild
from alerts.config import AlertsConfig, load_thresholds
from alerts.effects import Raise
from alerts.engine import Engine
from alerts.observations import Energy
from alerts.partition import Partition
from telemetry.decoding import EnergyRow, PositionRow
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.solar import elevation_deg
from telemetry.storage import alerts as alert_store
from telemetry.storage.devices import upsert_devices
from telemetry.storage.maintenance import ensure_partitions
from telemetry.storage.readings import Batch, ReadingStore
from telemetry.storage.reference import assets_changed_since, registered_ids
from telemetry.topics import Fleet
from tests.support.alerts import EVENING, Outcome, engine, light, stored_alerts
from tests.support.database import open_db

DEPOT = (31.668, -8.040)
HOUR = 3600.0
TRUCK_OFFLINE_S = load_thresholds().vehicles.truck_offline_after_s


def _energy(device: str, at: float) -> EnergyRow:
    """A healthy light's report: lit only while the Sun is down, so no run raises day-burning."""
    t = datetime.fromtimestamp(at, UTC)
    lit = elevation_deg(at, 31.62, -7.99) < 0.0
    return EnergyRow(device, t, t, 1000.0, 60.0 if lit else 0.0, 230.0, 0.27, 0.95, lit, 100.0, 1)


def _fix(device: str, at: float, lat: float, lon: float, speed: float) -> PositionRow:
    t = datetime.fromtimestamp(at, UTC)
    return PositionRow(device, t, t, lat, lon, speed, None, 5.0, None, 1)


def _start(conn: psycopg.Connection, read: psycopg.Connection, now: float) -> int:
    """A worker (re)starting at ``now``: fresh engine over the registry, catch-up, commit."""
    assets, _ = assets_changed_since(conn, None)
    engine = Engine(load_thresholds(), Catalog(assets))
    report = rebuild(read, conn, engine, partition=Partition(), config=AlertsConfig(), now=now)
    return report.seeded


def test_devices_silent_since_before_the_first_start_are_reported(migrated: Settings) -> None:
    now = float(int(time.time()))  # whole seconds: stored times keep microseconds only
    with open_db(migrated) as conn, open_db(migrated) as read:
        upsert_devices(
            conn,
            [
                DeviceRecord(device_id="L-OLD", fleet=Fleet.LIGHT, lat=31.62, lon=-7.99),
                DeviceRecord(device_id="L-NEW", fleet=Fleet.LIGHT, lat=31.62, lon=-7.99),
                DeviceRecord(device_id="L-LIVE", fleet=Fleet.LIGHT, lat=31.62, lon=-7.99),
                DeviceRecord(device_id="L-GONE", fleet=Fleet.LIGHT, lat=31.62, lon=-7.99),
                DeviceRecord(device_id="T-1", fleet=Fleet.TRUCK, lat=DEPOT[0], lon=DEPOT[1]),
                DeviceRecord(device_id="T-HOME", fleet=Fleet.TRUCK, lat=DEPOT[0], lon=DEPOT[1]),
                DeviceRecord(device_id="T-NEVER", fleet=Fleet.TRUCK, lat=DEPOT[0], lon=DEPOT[1]),
            ],
        )
        # Registered five hours ago and never heard since.
        conn.execute(
            "UPDATE devices SET created_at = now() - interval '5 hours' WHERE device_id = 'L-NEW'"
        )
        registered_new = conn.execute(
            "SELECT created_at FROM devices WHERE device_id = 'L-NEW'"
        ).fetchone()
        assert registered_new is not None
        three_days = now - 72 * HOUR
        for table in ("vehicle_positions", "light_energy", "light_faults"):
            lo = datetime.fromtimestamp(three_days - HOUR, UTC)
            ensure_partitions(conn, table, lo, datetime.fromtimestamp(now + HOUR, UTC))
        batch = Batch(
            energy=[
                _energy("L-OLD", three_days),
                _energy("L-GONE", three_days),
                _energy("L-LIVE", now - 600),
            ],
            positions=[
                # Last heard driving mid-round 12 h ago (before the positions window): offline.
                _fix("T-1", now - 12 * HOUR - 30, 31.63, -8.00, 20.0),
                _fix("T-1", now - 12 * HOUR, 31.631, -8.00, 18.0),
                # Back at the depot, engine off: going quiet is normal.
                _fix("T-HOME", now - 12 * HOUR - 30, 31.667, -8.04, 15.0),
                _fix("T-HOME", now - 12 * HOUR, DEPOT[0], DEPOT[1], 0.0),
            ],
        )
        ReadingStore(conn).write(batch)
        # L-GONE is taken out of service: deleted from the registry.
        conn.execute("DELETE FROM devices WHERE device_id = 'L-GONE'")
        assert "L-GONE" not in registered_ids(conn)

        assert _start(conn, read, now) == 4  # L-OLD, L-NEW, T-1, T-HOME
        got = stored_alerts(conn)
        assert got == {
            Outcome("silent_light", "L-OLD", three_days + 2700, None),
            Outcome("silent_light", "L-NEW", registered_new[0].timestamp() + 2700, None),
            Outcome("vehicle_offline", "T-1", now - 12 * HOUR + TRUCK_OFFLINE_S, None),
        }

        # A restart finds the same silences and opens nothing more.
        _start(conn, read, now + 60)
        assert stored_alerts(conn) == got
        # A person resolves one (e.g. the light was removed for repair): a restart keeps it so.
        old = alert_store.list_alerts(conn, alert_store.AlertFilter(device_id="L-OLD")).items[0]
        alert_store.resolve(conn, old.alert_id, "crew-7", "pole removed")
        _start(conn, read, now + 120)
        again = stored_alerts(conn)
        assert {(o.kind, o.asset_key) for o in again} == {(o.kind, o.asset_key) for o in got}
        assert len(again) == len(got)


def test_a_device_deleted_while_running_is_no_longer_judged_silent() -> None:
    eng = engine(light("L-1"), light("L-2"))
    eng.observe(Energy("L-1", EVENING, EVENING, 60.0, True, 100.0))
    eng.observe(Energy("L-2", EVENING, EVENING, 60.0, True, 100.0))
    assert eng.catalog.retain({"L-2"}) == ["L-1"]
    eng.tick(EVENING + timedelta(hours=2).total_seconds())
    raised = [e.key.asset_key for e in eng.take() if isinstance(e, Raise)]
    assert raised == ["L-2"]
