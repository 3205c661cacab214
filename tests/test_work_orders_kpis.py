"""Maintenance KPIs on hand-made data with known answers: a small register, alerts with their
first fault and first healthy readings, a citizen complaint, energy readings of a light burning
in daylight; the month is December 2025 in Marrakech (UTC+1, 744 hours)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from telemetry.alert_events import Severity
from telemetry.alert_records import NewAlert, NewMember
from telemetry.equipment.files import AssetFile
from telemetry.equipment.records import Asset, AssetKind, EquipmentModel, ModelKind
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.alerts import clear_alert, open_alert
from telemetry.storage.devices import upsert_devices
from telemetry.storage.equipment import import_assets, import_models
from telemetry.storage.maintenance import ensure_partitions
from telemetry.storage.maintenance_kpis import maintenance_kpis
from telemetry.topics import Fleet
from tests.support.env import settings_env

MONTH = "2025-12"
HOURS = 744.0  # 31 days, no clock change in Morocco in December


def t(day: int, hour: int = 0) -> datetime:
    """A UTC instant in December 2025."""
    return datetime(2025, 12, day, hour, tzinfo=UTC)


def _register(db: psycopg.Connection) -> None:
    lights = [("L-1", "medina", "C-1"), ("L-2", "medina", "C-1"), ("L-3", "medina", "C-1")]
    lights += [("L-4", "medina", "C-1"), ("L-5", "gueliz", "C-2")]
    upsert_devices(
        db,
        [
            DeviceRecord(
                device_id=d,
                fleet=Fleet.LIGHT,
                district=district,
                circuit=circuit,
                rated_w=40.0,
                lat=31.62,
                lon=-7.99,
            )
            for d, district, circuit in lights
        ],
    )
    import_models(
        db,
        [
            EquipmentModel(
                model_id="LUM-A",
                kind=ModelKind.LUMINAIRE,
                manufacturer="Atlas",
                model="A40",
                rated_power_w=40.0,
            ),
            EquipmentModel(
                model_id="DRV-A", kind=ModelKind.DRIVER, manufacturer="Nour", model="D150"
            ),
        ],
    )
    warranty = {"LUM-1": date(2030, 1, 1), "LUM-2": date(2020, 1, 1), "DRV-3": date(2026, 1, 1)}
    assets = [
        Asset(asset_id="CAB-1", kind=AssetKind.CABINET, district="medina"),
        Asset(asset_id="C-1", kind=AssetKind.CIRCUIT, parent_id="CAB-1", district="medina"),
        Asset(asset_id="C-2", kind=AssetKind.CIRCUIT, parent_id="CAB-1", district="gueliz"),
    ]
    for device, district, circuit in lights:
        n = device[2:]
        assets += [
            Asset(asset_id=f"P-{n}", kind=AssetKind.POLE, parent_id=circuit, district=district),
            Asset(
                asset_id=f"LUM-{n}",
                kind=AssetKind.LUMINAIRE,
                parent_id=f"P-{n}",
                device_id=device,
                model_id="LUM-A",
                serial=f"S-LUM-{n}",
                supplier="Enertika",
                project_id="HAA",
                installed_on=date(2018, 3, 1),
                warranty_until=warranty.get(f"LUM-{n}", date(2018, 3, 2)),
                district=district,
            ),
            Asset(
                asset_id=f"DRV-{n}",
                kind=AssetKind.DRIVER,
                parent_id=f"LUM-{n}",
                model_id="DRV-A",
                serial=f"S-DRV-{n}",
                supplier="Enertika",
                project_id="HAA",
                installed_on=date(2018, 3, 1),
                warranty_until=warranty.get(f"DRV-{n}", date(2018, 3, 2)),
                district=district,
            ),
        ]
    import_assets(db, AssetFile(assets=assets, where={a.asset_id: a.asset_id for a in assets}))


def _alert(
    db: psycopg.Connection,
    kind: str,
    key: str,
    opened: datetime,
    cleared: datetime,
    *,
    device: str | None,
    district: str,
    members: Sequence[NewMember] = (),
) -> int:
    alert = open_alert(
        db,
        NewAlert(
            kind=kind,
            asset_kind=Fleet.LIGHT,
            asset_key=key,
            opened_at=opened,
            severity=Severity.HIGH,
            device_id=device,
            district=district,
            members=members,
        ),
    )
    assert alert is not None
    assert clear_alert(db, key, kind, cleared) is not None
    return alert.alert_id


@pytest.fixture
def city(db: psycopg.Connection) -> psycopg.Connection:
    """The hand-made month."""
    _register(db)
    _alert(db, "lampFailure", "L-1", t(5, 10), t(5, 20), device="L-1", district="medina")
    a2 = _alert(db, "lampFailure", "L-2", t(10), t(12), device="L-2", district="medina")
    _alert(db, "controlGearFailure", "L-3", t(15), t(19), device="L-3", district="medina")
    members = [NewMember(device_id=f"L-{i}", circuit="C-1", since=t(20, 18)) for i in range(1, 5)]
    _alert(
        db,
        "circuit_outage",
        "circuit:C-1",
        t(20, 18),
        t(20, 20),
        device=None,
        district="medina",
        members=members,
    )
    _alert(db, "day_burning", "L-5", t(19, 10), t(19, 12), device="L-5", district="gueliz")
    # Outside the month: counted nowhere.
    before = t(1) - timedelta(days=3)
    _alert(
        db,
        "lampFailure",
        "L-4",
        before,
        before + timedelta(hours=5),
        device="L-4",
        district="medina",
    )
    # A citizen reported L-2 before the telemetry saw it; another reported L-4 alone.
    citizen = open_alert(
        db,
        NewAlert(
            kind="citizen_report",
            asset_kind=Fleet.LIGHT,
            asset_key="L-4",
            opened_at=t(25),
            severity=Severity.MEDIUM,
            device_id="L-4",
            district="medina",
        ),
    )
    assert citizen is not None
    for alert_id, at in ((a2, t(9, 20)), (citizen.alert_id, t(25))):
        db.execute(
            "INSERT INTO complaints (source, service_code, requested_at, alert_id) "
            "VALUES ('open311', 'streetlight_out', %s, %s)",
            (at, alert_id),
        )
    # L-5 lit every 15 minutes from 09:00 to 13:00 UTC on the 19th (local 10:00-14:00).
    ensure_partitions(db, "light_energy", t(18), t(21))
    db.cursor().executemany(
        "INSERT INTO light_energy (device_id, time, received_at, energy_wh, power_w, lamp_on) "
        "VALUES ('L-5', %s, %s, 0, 40, true)",
        [(t(19, 9) + timedelta(minutes=15 * i),) * 2 for i in range(17)],
    )
    return db


def test_city_kpis_have_their_known_values(city: psycopg.Connection) -> None:
    k = maintenance_kpis(city, MONTH)
    assert (k.light_points, k.outages) == (5, 7)  # 3 dark singles + 4 lights of the outage
    assert k.outages_per_1000 == 1400.0
    repairs = {(r.district, r.kind): r for r in k.repairs}
    lamp = repairs[(None, "lampFailure")]
    assert (lamp.repairs, lamp.p50_h, lamp.p90_h, lamp.within_48h) == (2, 10.0, 48.0, 1.0)
    gear = repairs[("medina", "controlGearFailure")]
    assert (gear.p50_h, gear.p90_h, gear.within_48h) == (96.0, 96.0, 0.0)
    assert repairs[("medina", "circuit_outage")].p90_h == 2.0
    # 5 telemetry faults (L-2 reported by a citizen first) and 1 fault only a citizen saw.
    assert (k.detection.faults, k.detection.telemetry_first) == (6, 4)
    assert k.detection.share == pytest.approx(4 / 6)
    mtbf = {
        name: [(g.group, g.parts, g.failures, g.mtbf_h) for g in groups]
        for name, groups in k.between_failures.items()
    }
    assert mtbf == {
        "luminaire_model": [("LUM-A", 5, 3, 5 * HOURS / 3)],
        "driver_model": [("DRV-A", 5, 1, 5 * HOURS)],
        "tender": [("HAA", 5, 3, 5 * HOURS / 3)],
    }
    assert (k.day_burning_hours, k.day_burning_lights) == (2.0, 1)
    assert [(c.asset_id, c.fault) for c in k.warranty_claims] == [
        ("LUM-1", "lampFailure"),
        ("DRV-3", "controlGearFailure"),
    ]
    assert [(c.supplier, c.project_id, c.claims) for c in k.claims_by_supplier] == [
        ("Enertika", "HAA", 2)
    ]


def test_a_districts_kpis_count_its_lights_only(city: psycopg.Connection) -> None:
    k = maintenance_kpis(city, MONTH, district="medina")
    assert (k.light_points, k.outages, k.outages_per_1000) == (4, 7, 1750.0)
    assert k.day_burning_hours == 0.0
    assert (k.detection.faults, k.detection.telemetry_first) == (5, 3)
    gueliz = maintenance_kpis(city, MONTH, district="gueliz")
    assert (gueliz.light_points, gueliz.outages, gueliz.warranty_claims) == (1, 0, [])
    assert maintenance_kpis(city, "2025-11").outages == 1


def test_the_nightly_command_prints_the_months_kpis(
    city: psycopg.Connection, migrated: Settings
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "telemetry", "maintenance", "kpis", "--month", MONTH],
        env=settings_env(migrated),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout)["outages"] == 7
