"""Linking on the real database with hand-made telemetry: evidence rows, the alert a complaint
opens or joins, its status following the alert by every path (crew, auto-clear, grouping),
missed collections deduplicated with the alerts service, pending complaints swept later,
the platform import (idempotent, all or nothing) and the shared rate-limit counters."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from alerts.config import load_thresholds
from alerts.routes_file import parse_routes
from api.open311.linker_task import Linker
from telemetry.alert_events import Severity
from telemetry.alert_records import NewAlert, NewMember
from telemetry.complaints.matching import LinkRules, LinkState
from telemetry.complaints.records import ComplaintRow, Contact, NewComplaint
from telemetry.db import conninfo
from telemetry.decoding import EnergyRow, FaultRow, PositionRow
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage import complaints as store
from telemetry.storage.alerts import clear_alert, merge_into_group, open_alert, resolve
from telemetry.storage.devices import upsert_devices
from telemetry.storage.readings import Batch, ReadingStore
from telemetry.storage.reference import import_network
from telemetry.topics import Fleet
from tests.support.database import open_db
from tests.support.env import settings_env

ROOT = Path(__file__).resolve().parents[1]

NIGHT = datetime(2025, 12, 19, 21, 30, tzinfo=UTC)  # 22:30 in Marrakech
LAT0, LON0 = 31.6300, -7.9900
STEP = 0.0003  # ~33 m between lights along a street


def _lights(conn: psycopg.Connection, n: int = 10) -> None:
    upsert_devices(
        conn,
        [
            DeviceRecord(device_id=f"L-MED-{i:05d}", fleet=Fleet.LIGHT, district="medina",
                         circuit="C-001", lat=LAT0 + i * STEP, lon=LON0, rated_w=80.0)
            for i in range(n)
        ],
    )  # fmt: skip


def _energy(device: str, t: datetime, lit: bool) -> EnergyRow:
    return EnergyRow(device, t, t, 100.0, 80.0 if lit else 0.0, 230.0, 0.3, 0.95, lit, 100.0, 1)


def _linker(conn: psycopg.Connection) -> Linker:
    linker = Linker(LinkRules(), load_thresholds())
    linker.refresh(conn)
    return linker


def _complaint(
    conn: psycopg.Connection, code: str, lat: float | None, lon: float | None, at: datetime
) -> ComplaintRow:
    return store.insert_complaint(
        conn,
        NewComplaint(
            source="open311",
            service_code=code,
            requested_at=at,
            lat=lat,
            lon=lon,
            address=None if lat else "x",
        ),
        Contact(email="amina@example.ma", phone="+212600000000"),
    )


def _row(conn: psycopg.Connection, complaint_id: int) -> dict[str, Any]:
    cur = conn.execute(
        "SELECT status, status_notes, alert_id, link_state, district, link_note "
        "FROM complaints WHERE complaint_id = %s",
        (complaint_id,),
    )
    names = [d.name for d in cur.description or ()]
    row = cur.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def _evidence(conn: psycopg.Connection, complaint_id: int) -> list[tuple[str, str | None, str]]:
    rows = conn.execute(
        "SELECT kind, asset_key, verdict FROM complaint_evidence WHERE complaint_id = %s "
        "ORDER BY seq",
        (complaint_id,),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def _fault_alert(conn: psycopg.Connection, device: str, kind: str = "lampFailure") -> int:
    alert = open_alert(
        conn,
        NewAlert(kind=kind, asset_kind=Fleet.LIGHT, asset_key=device,
                 opened_at=NIGHT - timedelta(hours=1), severity=Severity.MEDIUM,
                 device_id=device, district="medina", circuit="C-001"),
    )  # fmt: skip
    assert alert is not None
    return alert.alert_id


def test_streetlight_out_joins_the_fault_alert_and_closes_with_it(db: psycopg.Connection) -> None:
    _lights(db)
    ReadingStore(db).write(
        Batch(
            energy=[_energy("L-MED-00004", NIGHT - timedelta(minutes=20), False),
                    _energy("L-MED-00005", NIGHT - timedelta(minutes=20), True)],
            faults=[FaultRow("L-MED-00004", NIGHT - timedelta(hours=1), NIGHT, "lampFailure",
                             True, None)],
        )
    )  # fmt: skip
    fault = _fault_alert(db, "L-MED-00004")
    linker = _linker(db)
    now = NIGHT + timedelta(minutes=1)
    # Between lights 4 and 5, a little nearer 5 (which is lit): the complaint is about 4.
    complaint = _complaint(db, "streetlight_out", LAT0 + 4.6 * STEP, LON0, NIGHT)
    decision = linker.link(db, complaint, now)
    assert decision.state is LinkState.LINKED
    assert _row(db, complaint.complaint_id)["alert_id"] == fault
    assert _evidence(db, complaint.complaint_id)[:2] == [
        ("nearest_light", "L-MED-00005", "refutes"),
        ("nearest_light", "L-MED-00004", "confirms"),
    ]
    details = db.execute("SELECT details FROM alerts WHERE alert_id = %s", (fault,)).fetchone()
    assert details is not None and details[0]["complaints"] == [complaint.complaint_id]
    assert db.execute("SELECT count(*) FROM alerts").fetchone() == (1,)
    # A second citizen about the same lamp joins the same alert.
    second = _complaint(db, "streetlight_out", LAT0 + 4 * STEP, LON0 + 0.0001, NIGHT)
    linker.link(db, second, now)
    assert _row(db, second.complaint_id)["alert_id"] == fault
    # The crew resolves the alert: both complaints close, with a generic note.
    resolve(db, fault, "crew:team A", "replaced the LED module; Youssef")
    for c in (complaint, second):
        row = _row(db, c.complaint_id)
        assert row["status"] == "closed"
        assert row["status_notes"] == "Resolved by the municipal services."


def test_citizen_report_grouping_and_auto_clear(db: psycopg.Connection) -> None:
    _lights(db)
    linker = _linker(db)
    now = NIGHT + timedelta(minutes=1)
    # No fault known: a citizen report is opened for the nearest light, for its crew.
    lone = _complaint(db, "damaged_pole", LAT0 + 2 * STEP, LON0, NIGHT)
    linker.link(db, lone, now)
    report = db.execute(
        "SELECT alert_id, kind, asset_key, crew, severity, sla_due_at FROM alerts"
    ).fetchone()
    assert report is not None and report[1:3] == ("citizen_report", "L-MED-00002")
    assert report[3] == "light-medina" and report[4] == "medium"
    assert report[5] == NIGHT + timedelta(hours=72)
    # A supply loss alert of light 7 absorbed by a circuit outage: its complaint follows.
    loss = _fault_alert(db, "L-MED-00007", "supplyLoss")
    dark = _complaint(db, "streetlight_out", LAT0 + 7 * STEP, LON0, NIGHT)
    linker.link(db, dark, now)
    assert _row(db, dark.complaint_id)["alert_id"] == loss
    group = open_alert(
        db,
        NewAlert(kind="circuit_outage", asset_kind=Fleet.LIGHT, asset_key="circuit:C-001",
                 opened_at=NIGHT - timedelta(minutes=50), severity=Severity.HIGH,
                 circuit="C-001", district="medina",
                 members=[NewMember(device_id=f"L-MED-{i:05d}", circuit="C-001",
                                    since=NIGHT - timedelta(minutes=50))
                          for i in (6, 7, 8)]),
    )  # fmt: skip
    assert group is not None
    merge_into_group(db, "L-MED-00007", "supplyLoss", "circuit:C-001", "circuit_outage", NIGHT)
    assert _row(db, dark.complaint_id) | {"alert_id": group.alert_id} == _row(db, dark.complaint_id)
    assert _row(db, dark.complaint_id)["status"] == "open"
    # A new complaint on a listed light joins the group directly.
    listed = _complaint(db, "streetlight_out", LAT0 + 8 * STEP, LON0, NIGHT)
    linker.link(db, listed, now)
    assert _row(db, listed.complaint_id)["alert_id"] == group.alert_id
    # The alerts service clears the outage: every complaint attached to it closes.
    clear_alert(db, "circuit:C-001", "circuit_outage", NIGHT + timedelta(hours=1))
    for c in (dark, listed):
        row = _row(db, c.complaint_id)
        assert row["status"] == "closed" and "telemetry" in row["status_notes"]
    assert _row(db, lone.complaint_id)["status"] == "open"


def test_far_from_everything_and_without_location(db: psycopg.Connection) -> None:
    _lights(db)
    linker = _linker(db)
    far = _complaint(db, "streetlight_out", 31.70, -8.10, NIGHT)
    linker.link(db, far, NIGHT)
    assert _row(db, far.complaint_id)["link_state"] == "no_asset"
    nowhere = _complaint(db, "streetlight_out", None, None, NIGHT)
    assert nowhere.link_state == "no_location"


ROUNDS = {
    "rounds": [
        {
            "round": "T-ARM-001",
            "shift_start": "21:00",
            "shift_end": "04:00",
            "timezone": "Africa/Casablanca",
            "points": [
                {"lat": 31.6340, "lon": -7.9990, "radius_m": 40, "label": "Bab Doukkala"},
                {"lat": 31.6360, "lon": -7.9990, "radius_m": 40, "label": "Derb Dabachi"},
            ],
        }
    ]
}
SHIFT_START = datetime(2025, 12, 19, 20, 0, tzinfo=UTC)  # 21:00 local
SHIFT_END = datetime(2025, 12, 20, 3, 0, tzinfo=UTC)


def _fix(device: str, t: datetime, lat: float, lon: float, speed: float) -> PositionRow:
    return PositionRow(device, t, t, lat, lon, speed, 0.0, 5.0, None, None)


def _round_and_truck(conn: psycopg.Connection) -> None:
    _lights(conn)
    upsert_devices(
        conn, [DeviceRecord(device_id="T-ARM-001", fleet=Fleet.TRUCK, district="medina")]
    )
    import_network(conn, parse_routes(json.dumps(ROUNDS)).network())
    # The truck stops at Bab Doukkala only, and drives past Derb Dabachi.
    ReadingStore(conn).write(
        Batch(
            positions=[
                _fix("T-ARM-001", SHIFT_START + timedelta(minutes=40), 31.6341, -7.9990, 0.0),
                _fix("T-ARM-001", SHIFT_START + timedelta(minutes=50), 31.6360, -7.9991, 35.0),
                _fix("T-ARM-001", SHIFT_START + timedelta(minutes=60), 31.6500, -7.9900, 0.0),
            ]
        )
    )


def test_waste_proof_of_service_and_missed_collection(db: psycopg.Connection) -> None:
    _round_and_truck(db)
    linker = _linker(db)
    morning = datetime(2025, 12, 20, 9, 0, tzinfo=UTC)
    served = _complaint(db, "missed_collection", 31.6343, -7.9985, morning)
    linker.link(db, served, morning)
    assert ("truck_passage", "T-ARM-001", "refutes") in _evidence(db, served.complaint_id)
    assert _row(db, served.complaint_id)["alert_id"] is None
    missed = _complaint(db, "missed_collection", 31.6362, -7.9988, morning)
    linker.link(db, missed, morning)
    evidence = _evidence(db, missed.complaint_id)
    assert ("no_service", "T-ARM-001", "confirms") in evidence
    alert = db.execute(
        "SELECT alert_id, kind, asset_key, opened_at, details, crew FROM alerts"
    ).fetchone()
    assert alert is not None and alert[1:4] == ("missed_collection", "T-ARM-001", SHIFT_END)
    assert alert[4]["shift 2025-12-19"] == ["Derb Dabachi"]
    assert alert[4]["complaints"] == [missed.complaint_id]
    assert _row(db, missed.complaint_id)["alert_id"] == alert[0]
    # The alerts service judging the same shift later finds that alert (one alert, not two).
    again = open_alert(
        db,
        NewAlert(kind="missed_collection", asset_kind=Fleet.TRUCK, asset_key="T-ARM-001",
                 opened_at=SHIFT_END, severity=Severity.MEDIUM, device_id="T-ARM-001"),
    )  # fmt: skip
    assert again is None
    assert db.execute("SELECT count(*) FROM alerts").fetchone() == (1,)


def test_pending_until_the_window_ends_then_swept(db: psycopg.Connection) -> None:
    _round_and_truck(db)
    linker = _linker(db)
    during = SHIFT_START + timedelta(hours=2)
    complaint = _complaint(db, "missed_collection", 31.6362, -7.9988, during)
    decision = linker.link(db, complaint, during)
    assert decision.state is LinkState.PENDING
    row = _row(db, complaint.complaint_id)
    assert row["link_state"] == "pending" and row["link_note"] == "collection window not over yet"
    assert _evidence(db, complaint.complaint_id)[0][0] == "collection_point"
    # Nothing is due before the window ends (and settles) ...
    report = linker.sweep(db, lambda: SHIFT_END)
    assert report.linked == 0 and _row(db, complaint.complaint_id)["link_state"] == "pending"
    # ... then the sweep judges it.
    report = linker.sweep(db, lambda: SHIFT_END + timedelta(hours=1))
    assert report.linked == 1
    assert _row(db, complaint.complaint_id)["link_state"] == "linked"
    assert ("no_service", "T-ARM-001", "confirms") in _evidence(db, complaint.complaint_id)


def test_buses_and_driving(db: psycopg.Connection) -> None:
    _lights(db)
    upsert_devices(
        db,
        [DeviceRecord(device_id=f"B-{i:03d}", fleet=Fleet.BUS, route="A") for i in range(3)],
    )
    network = {
        "stops": [{"stop_id": "bab-doukkala", "name": "Bab Doukkala", "lat": LAT0, "lon": LON0}],
        "line_stops": {"A": ["bab-doukkala"]},
        "schedules": [{"route": "A", "start_local": "06:00", "end_local": "23:00",
                       "headway_s": 600, "timezone": "Africa/Casablanca"}],
    }  # fmt: skip
    import_network(db, parse_routes(json.dumps(network)).network())
    at = datetime(2025, 12, 19, 9, 0, tzinfo=UTC)
    # Line A passed at -50 and -40 min, then nothing until +20 min: a 60 minute gap.
    ReadingStore(db).write(
        Batch(
            positions=[
                _fix("B-000", at - timedelta(minutes=50), LAT0, LON0 + 0.0001, 0.0),
                _fix("B-001", at - timedelta(minutes=40), LAT0, LON0, 0.0),
                _fix("B-002", at + timedelta(minutes=20), LAT0 + 0.0001, LON0, 0.0),
                _fix("B-002", at - timedelta(minutes=5), LAT0 + 0.0012, LON0, 75.0),
            ]
        )
    )
    linker = _linker(db)
    later = at + timedelta(hours=2)
    late = _complaint(db, "bus_late", LAT0 + 0.001, LON0, at)
    linker.link(db, late, later)
    assert _evidence(db, late.complaint_id) == [("bus_passages", "bab-doukkala", "confirms")]
    details = db.execute(
        "SELECT details FROM complaint_evidence WHERE complaint_id = %s", (late.complaint_id,)
    ).fetchone()
    assert details is not None and details[0]["gap_at_complaint_s"] == 3600
    assert _row(db, late.complaint_id)["district"] == "medina"
    fast = _complaint(db, "dangerous_driving", LAT0 + 0.0005, LON0, at)
    linker.link(db, fast, later)
    assert _evidence(db, fast.complaint_id)[0] == ("vehicle_speed", "B-002", "confirms")


async def test_rate_counters_add_up_across_connections(migrated: Settings) -> None:
    window = datetime(2026, 1, 1, 10, tzinfo=UTC)
    info = conninfo(migrated, app="rasd-test")
    async with (
        await psycopg.AsyncConnection.connect(info, autocommit=True) as a,
        await psycopg.AsyncConnection.connect(info, autocommit=True) as b,
    ):
        counts = [await store.hit_rate_counters(c, ["addr:1", "key:7"], window) for c in (a, b, a)]
        assert counts == [[1, 1], [2, 2], [3, 3]]
        later = window + timedelta(hours=1)
        assert await store.hit_rate_counters(b, ["addr:1"], later) == [1]
    with open_db(migrated) as conn:
        assert store.purge_rate_counters(conn, window + timedelta(minutes=30)) == 2


CSV = """id,date,category,description,address,lat,lon,status
CH-1,2025-12-19T22:10:00+01:00,lampadaire eteint,Rue sombre,,31.6306,-7.99,nouvelle
CH-2,2025-12-20T08:30:00+01:00,collecte non effectuee,,Derb Dabachi,,,en_cours
"""


def _run_cli(migrated: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m api ARGV`` in a child process (it configures logging for itself)."""
    return subprocess.run(
        [sys.executable, "-m", "api", *argv],
        env=settings_env(migrated),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_is_idempotent_and_all_or_nothing(migrated: Settings, tmp_path: Path) -> None:
    path = tmp_path / "chikaya.csv"
    path.write_text(CSV, "utf-8")
    first = _run_cli(migrated, "complaints", "import", str(path))
    assert first.returncode == 0, first.stderr
    assert "2 new, 0 closed, 0 unchanged" in first.stdout
    again = _run_cli(migrated, "complaints", "import", str(path))
    assert "0 new, 0 closed, 2 unchanged" in again.stdout
    path.write_text(CSV.replace("en_cours", "traitee"), "utf-8")
    closing = _run_cli(migrated, "complaints", "import", str(path))
    assert "0 new, 1 closed, 1 unchanged" in closing.stdout
    with open_db(migrated) as conn:
        rows = conn.execute(
            "SELECT external_id, source, service_code, status, link_state FROM complaints "
            "ORDER BY external_id"
        ).fetchall()
    assert rows == [
        ("CH-1", "chikaya", "streetlight_out", "open", "pending"),
        ("CH-2", "chikaya", "missed_collection", "closed", "no_location"),
    ]
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps([{"id": "CH-3", "date": "2025-12-19T22:10:00+01:00", "category": "bus_late",
                     "status": "open", "lat": 31.6, "lon": -8.0},
                    {"id": "CH-4", "date": "never", "category": "bus_late", "status": "open",
                     "lat": 31.6, "lon": -8.0}]),
        "utf-8",
    )  # fmt: skip
    refused = _run_cli(migrated, "complaints", "import", str(bad))
    assert refused.returncode == 1 and "item 2: date" in refused.stderr
    with open_db(migrated) as conn:
        assert conn.execute("SELECT count(*) FROM complaints").fetchone() == (2,)
        _lights(conn)
    # The link command links what is due (the imported streetlight complaint).
    linked = _run_cli(migrated, "complaints", "link")
    assert linked.returncode == 0 and "1 linked" in linked.stdout, linked.stderr
