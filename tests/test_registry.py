"""Device registry CSV: parsing rules and the import/export commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from telemetry.errors import RegistryImportError
from telemetry.registry import parse_devices_csv, render_devices_csv
from telemetry.settings import Settings
from telemetry.storage.devices import all_devices, upsert_devices
from telemetry.topics import Fleet
from tests.support.env import settings_env

GOOD = """device_id,fleet,label,route,district,circuit,rated_w,lat,lon,operator
B-001,bus,Bus 1,A,gueliz,,,31.63,-8.01,Supratours
L-MED-00042,light,,,medina,C-112,40,31.628,-7.988,
T-ARM-001,truck,Compactor 1,R-GUE-1,gueliz,,,,,Arma
"""


def test_parse_and_render_round_trip() -> None:
    records = parse_devices_csv(GOOD)
    assert [r.fleet for r in records] == [Fleet.BUS, Fleet.LIGHT, Fleet.TRUCK]
    assert records[1].rated_w == 40 and records[1].circuit == "C-112"
    assert parse_devices_csv(render_devices_csv(records)) == records


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("device_id,colour\nB-1,red\n", "unknown columns"),
        ("device_id,label\nB-1,x\n", "missing"),
        ("device_id,fleet\nB 1,bus\n", "line 2: device_id"),
        ("device_id,fleet\nB-1,tram\n", "line 2: fleet"),
        ("device_id,fleet,lat\nB-1,bus,91\n", "line 2: lat"),
        ("device_id,fleet\nB-1,bus\nB-1,bus\n", "repeats line 2"),
        ("device_id,fleet,external_id\nB-1,bus,35\nB-2,bus,35\n", "line 3: external_id 35 repeats"),
        ("device_id,fleet,external_id\nB-1,bus,has space\n", "line 2: external_id"),
    ],
)
def test_bad_files_import_nothing(text: str, message: str) -> None:
    with pytest.raises(RegistryImportError, match=message):
        parse_devices_csv(text)


def _cli(
    settings: Settings, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telemetry", *args],
        env=settings_env(settings),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_import_then_export_upserts_by_id(migrated: Settings, tmp_path: Path) -> None:
    path = tmp_path / "devices.csv"
    path.write_text(GOOD)
    assert _cli(migrated, "devices", "import", str(path)).returncode == 0
    changed = GOOD.replace("Bus 1,A", "Bus 1 renamed,12")
    done = _cli(migrated, "devices", "import", "-", stdin=changed)
    assert done.returncode == 0, done.stderr
    exported = _cli(migrated, "devices", "export")
    assert exported.returncode == 0
    records = parse_devices_csv(exported.stdout)
    assert len(records) == 3
    assert records[0].label == "Bus 1 renamed" and records[0].route == "12"


def test_import_of_a_bad_file_is_an_error_and_changes_nothing(migrated: Settings) -> None:
    done = _cli(migrated, "devices", "import", "-", stdin="device_id,fleet\nB-1,bus\nB-2,tram\n")
    assert done.returncode == 1 and "line 3: fleet" in done.stderr
    assert _cli(migrated, "devices", "export").stdout.strip().count("\n") == 0


def test_external_ids_are_unique_across_devices_and_may_move(db: psycopg.Connection) -> None:
    imei_a, imei_b = "356307042441013", "352093081452251"
    upsert_devices(
        db,
        parse_devices_csv(f"device_id,fleet,external_id\nT-1,truck,{imei_a}\nT-2,truck,{imei_b}\n"),
    )
    # One import may swap two trackers between trucks (the constraint is checked at commit).
    swapped = f"device_id,fleet,external_id\nT-1,truck,{imei_b}\nT-2,truck,{imei_a}\n"
    upsert_devices(db, parse_devices_csv(swapped))
    rows = db.execute("SELECT device_id, external_id FROM devices ORDER BY 1").fetchall()
    assert rows == [("T-1", imei_b), ("T-2", imei_a)]
    with pytest.raises(RegistryImportError, match="already belongs to another device"):
        upsert_devices(db, parse_devices_csv(f"device_id,fleet,external_id\nT-3,truck,{imei_a}\n"))
    assert db.execute("SELECT count(*) FROM devices").fetchone() == (2,)
    exported = parse_devices_csv(render_devices_csv(all_devices(db)))
    assert {r.device_id: r.external_id for r in exported} == {"T-1": imei_b, "T-2": imei_a}
