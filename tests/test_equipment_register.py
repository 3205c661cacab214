"""The equipment register in the database: CLI import/export round trips, all-or-nothing
imports checked against the register, part swaps in the history, faults and operating hours."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest

from telemetry.decoding import EnergyRow, FaultRow
from telemetry.equipment.files import parse_assets_csv, parse_models_csv, tree_order
from telemetry.equipment.ngsi_ld import read_entities
from telemetry.equipment.records import AssetKind, EquipmentImportError
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.devices import upsert_devices
from telemetry.storage.equipment import (
    all_assets,
    all_models,
    asset_history,
    import_assets,
    import_models,
)
from telemetry.storage.readings import Batch, ReadingStore
from telemetry.topics import Fleet
from tests.support.database import count
from tests.support.env import settings_env
from tests.test_equipment_files import ASSETS, MODELS

TZ = ZoneInfo("Africa/Casablanca")


def _cli(
    settings: Settings, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telemetry", "assets", *args],
        env=settings_env(settings),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _lights(conn: psycopg.Connection, *ids: str) -> None:
    upsert_devices(conn, [DeviceRecord(device_id=d, fleet=Fleet.LIGHT) for d in ids])


@pytest.fixture
def register(db: psycopg.Connection) -> psycopg.Connection:
    """A schema holding the two lights, the catalogue and the small register of ASSETS."""
    _lights(db, "L-MED-00001", "L-MED-00002")
    import_models(db, parse_models_csv(MODELS))
    import_assets(db, parse_assets_csv(ASSETS))
    return db


def test_cli_round_trips_csv_geojson_and_ngsi_ld(
    migrated: Settings, db: psycopg.Connection, tmp_path: Path
) -> None:
    _lights(db, "L-MED-00001", "L-MED-00002")
    (tmp_path / "models.csv").write_text(MODELS)
    (tmp_path / "assets.csv").write_text(ASSETS)
    done = _cli(migrated, "import-models", str(tmp_path / "models.csv"))
    assert done.returncode == 0 and "3 models imported" in done.stdout, done.stderr
    done = _cli(migrated, "import", str(tmp_path / "assets.csv"))
    assert done.returncode == 0, done.stderr
    assert "8 assets imported: 8 new, 0 changed, 0 unchanged" in done.stdout
    expected = tree_order(parse_assets_csv(ASSETS).assets)

    csv_out = _cli(migrated, "export")
    assert csv_out.returncode == 0 and parse_assets_csv(csv_out.stdout).assets == expected
    models_out = _cli(migrated, "export-models")
    assert parse_models_csv(models_out.stdout) == all_models(db)

    geojson = tmp_path / "assets.geojson"
    assert _cli(migrated, "export", "--format", "geojson", str(geojson)).returncode == 0
    # The GeoJSON export imports again as a no-op: same assets, nothing changed.
    again = _cli(migrated, "import", str(geojson))
    assert again.returncode == 0 and "0 new, 0 changed, 8 unchanged" in again.stdout
    assert sorted(all_assets(db), key=lambda a: a.asset_id) == sorted(
        expected, key=lambda a: a.asset_id
    )

    ngsi = _cli(migrated, "export", "--format", "ngsi-ld")
    assert ngsi.returncode == 0
    entities = json.loads(ngsi.stdout)
    assets, models = read_entities(entities)
    assert {a.asset_id for a in assets} == {"CAB-0001", "LUM-MED-00001", "LUM-MED-00002"}
    assert [a for a in expected if a.kind in (AssetKind.CABINET, AssetKind.LUMINAIRE)] == (
        tree_order(assets)
    )
    assert [m.model_id for m in models] == ["LUM-LED-40"]
    # The luminaire's installation event is its dateLastLampChange (Streetlight/schema.json).
    light = next(e for e in entities if e["id"] == "urn:ngsi-ld:Streetlight:LUM-MED-00001")
    assert light["dateLastLampChange"]["value"] == {
        "@type": "DateTime",
        "@value": "2018-03-02T00:00:00+00:00",  # local midnight: Morocco was on UTC+0 then
    }


def test_a_bad_file_imports_nothing_and_names_its_lines(
    migrated: Settings, db: psycopg.Connection
) -> None:
    _lights(db, "L-MED-00001", "L-MED-00002")
    import_models(db, parse_models_csv(MODELS))
    bad = ASSETS.replace("OLC-MED-00001,controller,LUM-MED-00001", "OLC-MED-00001,controller,P-X")
    bad = bad.replace("2018-03-02,2028-03-02,31.6344", "2018-03-02,2008-03-02,31.6344")
    done = _cli(migrated, "import", "-", stdin=bad)
    assert done.returncode == 1
    assert "line 7: warranty_until: before installed_on" in done.stderr
    assert count(migrated, "equipment_assets") == 0
    # Tree problems only show once every row is good on its own: the lines are still named.
    bad = ASSETS.replace("OLC-MED-00001,controller,LUM-MED-00001", "OLC-MED-00001,controller,P-X")
    done = _cli(migrated, "import", "-", stdin=bad)
    assert done.returncode == 1
    assert "line 9: parent_id P-X of OLC-MED-00001 is no asset" in done.stderr
    assert count(migrated, "equipment_assets") == 0 and count(migrated, "equipment_events") == 0


def test_imports_are_checked_against_the_register(register: psycopg.Connection) -> None:
    db = register
    before = all_assets(db)
    cases = [
        # a child of an asset already in the register, of the wrong kind
        (
            "asset_id,kind,parent_id\nP-2,pole,LUM-MED-00001\n",
            "line 2: pole P-2 must hang from circuit",
        ),
        # re-kinding an asset would strand its children
        (
            "asset_id,kind,parent_id\nP-MED-00001,luminaire,C-001\n",
            "in the register: luminaire LUM-MED-00001 must hang from circuit or pole, not from "
            "luminaire P-MED-00001",
        ),
        ("asset_id,kind,parent_id,device_id\nP-2,pole,C-001,L-9\n", "line 2: device_id L-9 is"),
        (
            "asset_id,kind,parent_id,device_id\nP-2,pole,C-001,L-MED-00001\n",
            "line 2: device_id L-MED-00001 belongs to asset LUM-MED-00001 in the register",
        ),
        (
            "asset_id,kind,parent_id,model_id\nLUM-3,luminaire,C-001,DRV-D4I\n",
            "line 2: model_id DRV-D4I is a driver model, not a luminaire",
        ),
        (
            "asset_id,kind,parent_id,model_id\nLUM-3,luminaire,C-001,NOPE\n",
            "line 2: model_id NOPE is not in the catalogue",
        ),
        (
            "asset_id,kind,meter_id\nCAB-0002,cabinet,RDM-0001\n",
            "line 2: meter_id RDM-0001 belongs to asset CAB-0001 in the register",
        ),
    ]
    for text, message in cases:
        with pytest.raises(EquipmentImportError) as e:
            import_assets(db, parse_assets_csv(text))
        assert message in str(e.value), text
    assert all_assets(db) == before
    # A model's kind cannot change under the assets that use it.
    rekinded = MODELS.replace("DRV-D4I,driver,", "DRV-D4I,controller,")
    with pytest.raises(EquipmentImportError, match="a model's kind changed while assets use it"):
        import_models(db, parse_models_csv(rekinded))
    assert all_models(db) == sorted(parse_models_csv(MODELS), key=lambda m: m.model_id)
    # Moving a device from one asset to another in one file is fine (constraints deferred).
    moved = (
        "asset_id,kind,parent_id,device_id,model_id\n"
        "LUM-MED-00001,luminaire,P-MED-00001,L-MED-00002,LUM-LED-40\n"
        "LUM-MED-00002,luminaire,C-002,L-MED-00001,LUM-LED-40\n"
    )
    done = import_assets(db, parse_assets_csv(moved))
    assert done.updated == 2


def test_part_swaps_and_faults_and_hours_make_the_history(register: psycopg.Connection) -> None:
    db = register
    start = (datetime.now(UTC) - timedelta(days=2)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    # 25 readings 15 min apart: lamp on for the first 16, so 16 quarter-hours burning; the
    # last one says on again, but the next reading comes 3 h 45 min later: a gap, not counted.
    energy = [
        EnergyRow(
            "L-MED-00001", start + timedelta(minutes=15 * k), start, 10.0 * k,
            40.0 if k < 16 else 0.0, None, None, None, k < 16, 100.0, k,
        )
        for k in range(25)
    ]  # fmt: skip
    energy[-1] = energy[-1]._replace(lamp_on=True)
    energy.append(energy[-1]._replace(time=start + timedelta(hours=9, minutes=45)))
    faults = [
        FaultRow("L-MED-00001", start + timedelta(hours=1), start, "lampFailure", True, None),
        FaultRow("L-MED-00001", start + timedelta(hours=2), start, "lampFailure", False, None),
        FaultRow("L-MED-00002", start, start, "supplyLoss", True, "fuse"),
    ]
    ReadingStore(db).write(Batch(energy=energy, faults=faults))

    luminaire = asset_history(db, "LUM-MED-00001")
    assert luminaire is not None and luminaire.operating_hours is not None
    assert luminaire.operating_hours.device_id == "L-MED-00001"
    assert luminaire.operating_hours.hours == pytest.approx(4.0)
    assert luminaire.operating_hours.since == datetime(2018, 3, 2, tzinfo=TZ)
    month = start.astimezone(TZ).date().replace(day=1)
    assert [(m.month, m.hours) for m in luminaire.operating_hours.months] == [(month, 4.0)]
    assert [(e.kind, e.asset_id, e.fault) for e in luminaire.entries] == [
        ("installed", "DRV-MED-00001", None),  # same day: by asset id
        ("installed", "LUM-MED-00001", None),
        ("installed", "OLC-MED-00001", None),
        ("fault_started", "LUM-MED-00001", "lampFailure"),
        ("fault_ended", "LUM-MED-00001", "lampFailure"),
    ]

    # The driver is measured by its luminaire's light; a swap restarts its hours.
    swap_day = datetime.now(TZ).date()
    swapped = ASSETS.replace("DR18-1,Enertika,HAA-2016-LED,2018-03-02,2023-03-02", (
        f"DR26-9,Enertika,HAA-2016-LED,{swap_day},{swap_day + timedelta(days=1825)}"
    ))  # fmt: skip
    done = import_assets(db, parse_assets_csv(swapped))
    assert (done.created, done.updated, done.unchanged, done.events) == (0, 1, 7, 2)
    driver = asset_history(db, "DRV-MED-00001")
    assert driver is not None and driver.asset.serial == "DR26-9"
    parts = [(e.kind, e.serial) for e in driver.entries if e.source == "import"]
    assert parts == [("installed", "DR18-1"), ("removed", "DR18-1"), ("installed", "DR26-9")]
    removed = next(e for e in driver.entries if e.kind == "removed")
    assert removed.at == datetime.combine(swap_day, datetime.min.time(), TZ)
    assert removed.detail == "replaced by serial DR26-9"
    assert driver.operating_hours is not None and driver.operating_hours.hours == 0.0
    assert [e.fault for e in driver.entries if e.source == "telemetry"] == ["lampFailure"] * 2

    # A cabinet's history gathers everything below it; hours only come with one device.
    cabinet = asset_history(db, "CAB-0001")
    assert cabinet is not None and cabinet.operating_hours is None
    faults_seen = {(e.asset_id, e.fault) for e in cabinet.entries if e.source == "telemetry"}
    assert faults_seen == {("LUM-MED-00001", "lampFailure"), ("LUM-MED-00002", "supplyLoss")}
    assert asset_history(db, "NOPE") is None


def test_the_device_cabinet_view_walks_up_the_tree(register: psycopg.Connection) -> None:
    rows = register.execute(
        "SELECT device_id, asset_id, circuit_id, cabinet_id FROM equipment_device_cabinets "
        "ORDER BY device_id"
    ).fetchall()
    assert rows == [
        ("L-MED-00001", "LUM-MED-00001", "C-001", "CAB-0001"),
        ("L-MED-00002", "LUM-MED-00002", "C-002", "CAB-0001"),
    ]


def test_cli_history_prints_json(migrated: Settings, register: psycopg.Connection) -> None:
    done = _cli(migrated, "history", "OLC-MED-00001")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["asset"]["serial"] == "NC18-1" and body["entries"][0]["kind"] == "installed"
    assert body["operating_hours"]["device_id"] == "L-MED-00001"
    missing = _cli(migrated, "history", "NOPE")
    assert missing.returncode == 1 and "no asset NOPE" in missing.stderr
    assert date.fromisoformat(body["asset"]["installed_on"]) == date(2018, 3, 2)
