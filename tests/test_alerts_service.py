"""``python -m alerts`` end to end on the real broker and database: MQTT in, NOTIFY out,
ops endpoints, SIGTERM, and kill -9 with catch-up from what the ingestor stored meanwhile."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from telemetry.alert_events import AlertEvent, AlertEventType, parse_event
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage import alerts as store
from telemetry.storage.devices import upsert_devices
from telemetry.storage.reference import collection_rounds, route_shapes
from telemetry.topics import Fleet
from tests.support.alerts import thresholds_file
from tests.support.alerts_process import AlertsProcess
from tests.support.database import count, open_db
from tests.support.env import settings_env
from tests.support.ingest_process import IngestProcess
from tests.support.publisher import Publisher
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services

LIGHTS = [f"L-{i:02d}" for i in range(1, 13)]  # L-01..06 on C-1, L-07..12 on C-2


def _prepare(settings: Settings) -> None:
    records = [
        DeviceRecord(
            device_id=d,
            fleet=Fleet.LIGHT,
            district="medina",
            circuit="C-1" if i < 6 else "C-2",
            rated_w=60.0,
            lat=31.62417 + i * 1e-4,
            lon=-7.99343,
        )
        for i, d in enumerate(LIGHTS)
    ]
    records.append(DeviceRecord(device_id="T-1", fleet=Fleet.TRUCK, district="menara"))
    with open_db(settings) as conn:
        upsert_devices(conn, records)


def _ms(t: float | None = None) -> int:
    return int((time.time() if t is None else t) * 1000)


def _fault(settings: Settings, device: str, fault: str, active: bool, ts: int) -> tuple[str, bytes]:
    body = {"ts": ts, "fault": fault, "active": active}
    return f"{settings.topic_prefix}/light/{device}/fault", json.dumps(body).encode()


def _fix(settings: Settings, device: str, ts: int, speed: float) -> tuple[str, bytes]:
    body = {"ts": ts, "lat": 31.60, "lon": -8.04, "speed_kmh": speed}
    return f"{settings.topic_prefix}/truck/{device}/position", json.dumps(body).encode()


@pytest.fixture
def start_alerts(tmp_path: Path) -> Iterator[Callable[..., AlertsProcess]]:
    """Factory for alerts child processes (quick thresholds); killed at teardown if running."""
    procs: list[AlertsProcess] = []
    quick = thresholds_file(
        tmp_path / "thresholds.toml",
        clear_hold_s="0",
        offline_after_s="5",
        truck_offline_after_s="5",
        hold_s="0.5",
    )

    def start(settings: Settings, *, wait_healthy: bool = True, **env: str) -> AlertsProcess:
        env = {"RASD_ALERTS_THRESHOLDS_FILE": str(quick), **env}
        proc = AlertsProcess(settings, tmp_path / f"alerts-{len(procs)}.log", **env)
        procs.append(proc)
        return proc.start(wait_healthy=wait_healthy)

    yield start
    for proc in procs:
        proc.close()


@pytest.fixture
def listener(migrated: Settings) -> Iterator[psycopg.Connection]:
    """LISTEN on the schema's alerts channel."""
    with open_db(migrated) as conn:
        store.listen(conn, migrated.database_schema)
        yield conn


def _next_events(conn: psycopg.Connection, n: int) -> list[AlertEvent]:
    events: list[AlertEvent] = []
    deadline = time.monotonic() + 30
    while len(events) < n and time.monotonic() < deadline:
        events += [
            parse_event(x.payload) for x in conn.notifies(timeout=1, stop_after=n - len(events))
        ]
    assert len(events) == n, events
    return events


def _rows(settings: Settings) -> list[tuple[str, str, str, int]]:
    with open_db(settings) as conn:
        return [
            (r[0], r[1], r[2], r[3])
            for r in conn.execute(
                "SELECT kind, asset_key, state, device_count FROM alerts ORDER BY kind, asset_key"
            ).fetchall()
        ]


def test_fault_to_notify_resolve_metrics_and_sigterm(
    migrated: Settings,
    listener: psycopg.Connection,
    publisher: Publisher,
    start_alerts: Callable[..., AlertsProcess],
) -> None:
    _prepare(migrated)
    alerts = start_alerts(migrated)
    now = _ms()
    publisher.publish_all([_fault(migrated, "L-01", "lampFailure", True, now)])
    (opened,) = _next_events(listener, 1)
    assert opened.event is AlertEventType.OPEN
    assert opened.kind == "lampFailure"
    assert opened.device_id == "L-01"
    assert opened.district == "medina"
    assert opened.crew == "light-medina"
    publisher.publish_all([_fault(migrated, "L-01", "lampFailure", False, now + 1000)])
    (resolved,) = _next_events(listener, 1)
    assert (resolved.event, resolved.alert_id) == (AlertEventType.RESOLVE, opened.alert_id)
    with open_db(migrated) as conn:
        alert = store.get_alert(conn, opened.alert_id)
        assert alert is not None
        assert alert.resolution == "cleared"
        assert alert.opened_at == datetime.fromtimestamp(now / 1000, UTC)
        assert [h.event for h in store.alert_history(conn, opened.alert_id)] == ["open", "resolve"]
    status, body = alerts.http_get("/metrics")
    assert status == 200
    assert 'rasd_alerts_changes_total{op="open"} 1.0' in body
    assert alerts.stop() == 0
    assert '"event": "drained"' in alerts.log_path.read_text()


def test_kill_9_then_restart_catches_up_without_duplicates(
    migrated: Settings,
    publisher: Publisher,
    start_ingest: Callable[..., IngestProcess],
    start_alerts: Callable[..., AlertsProcess],
) -> None:
    _prepare(migrated)
    start_ingest(migrated)
    alerts = start_alerts(migrated)
    t0 = _ms()
    publisher.publish_all([_fault(migrated, "L-01", "lampFailure", True, t0)])
    wait_until(lambda: _rows(migrated) == [("lampFailure", "L-01", "open", 1)], what="first alert")
    # A truck on its round reports, then goes quiet; the worker dies before noticing.
    publisher.publish_all([_fix(migrated, "T-1", _ms(), 30.0)])
    wait_until(lambda: count(migrated, "vehicle_positions") == 1, what="fix stored")
    alerts.kill()
    # While the worker is down: a redelivered fault, a fault that starts and ends, a circuit
    # tripping (6 lights); the ingestor stores them, the broker keeps them for the worker.
    t1 = _ms()
    down = [_fault(migrated, "L-01", "lampFailure", True, t0)]
    down += [_fault(migrated, "L-02", "relayFailure", True, t1)]
    down += [_fault(migrated, "L-02", "relayFailure", False, t1 + 2000)]
    down += [_fault(migrated, d, "supplyLoss", True, t1 + 10) for d in LIGHTS[6:]]
    publisher.publish_all(down)
    wait_until(lambda: count(migrated, "light_faults") == 9, what="faults stored")
    with open_db(migrated) as conn:
        row = conn.execute("SELECT received_at FROM vehicle_positions").fetchone()
    assert row is not None
    silent_since = row[0].timestamp()
    wait_until(lambda: time.time() > silent_since + 6, what="the truck silent long enough")
    start_alerts(migrated)
    expected = [
        ("circuit_outage", "circuit:C-2", "open", 6),
        ("lampFailure", "L-01", "open", 1),
        ("relayFailure", "L-02", "resolved", 1),
        ("vehicle_offline", "T-1", "open", 1),
    ]
    wait_until(lambda: _rows(migrated) == expected, timeout=60, what=f"alerts {expected}")
    with open_db(migrated) as conn:
        offline = store.list_alerts(conn, store.AlertFilter(kinds=["vehicle_offline"])).items[0]
    # Opened when the silence began (+5 s), by whichever receipt clock saw the fix.
    assert abs(offline.opened_at.timestamp() - (silent_since + 5)) < 1.0


def test_sla_breach_escalates_once_with_an_event(
    migrated: Settings,
    listener: psycopg.Connection,
    publisher: Publisher,
    tmp_path: Path,
    start_alerts: Callable[..., AlertsProcess],
) -> None:
    _prepare(migrated)
    tight = thresholds_file(
        tmp_path / "tight.toml", cabinetDoorOpen='{ severity = "high", sla_hours = 0.0003 }'
    )
    start_alerts(
        migrated,
        RASD_ALERTS_THRESHOLDS_FILE=str(tight),
        RASD_ALERTS_ESCALATION_INTERVAL_S="0.2",
    )
    publisher.publish_all([_fault(migrated, "L-03", "cabinetDoorOpen", True, _ms())])
    opened, escalated = _next_events(listener, 2)
    assert opened.event is AlertEventType.OPEN
    assert opened.severity.value == "high"
    assert (escalated.event, escalated.alert_id) == (AlertEventType.ESCALATE, opened.alert_id)
    assert escalated.severity.value == "critical"
    with open_db(migrated) as conn:
        history = store.alert_history(conn, opened.alert_id)
    assert [h.event.value for h in history] == ["open", "escalate"]


def _cli(
    settings: Settings, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alerts", *args],
        env=settings_env(settings),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )


def test_routes_import_and_check(migrated: Settings, tmp_path: Path) -> None:
    good = {
        "routes": {"A": [[31.617, -8.066], [31.624, -8.044], [31.628, -8.030]]},
        "rounds": [
            {
                "round": "T-1",
                "shift_start": "21:00",
                "shift_end": "04:00",
                "points": [
                    {"lat": 31.634, "lon": -7.999, "label": "Bab Doukkala"},
                    {"lat": 31.63, "lon": -8.0},
                ],
            }
        ],
    }
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(good))
    done = _cli(migrated, "routes", "import", str(path))
    assert done.returncode == 0, done.stderr
    assert "1 routes, 0 stops, 0 line stop sequences, 0 schedule bands and 1 rounds" in done.stdout
    with open_db(migrated) as conn:
        assert route_shapes(conn)["A"][0] == (31.617, -8.066)
        (round_,) = collection_rounds(conn).values()
    assert [p.label for p in round_.points] == ["Bab Doukkala", None]
    assert round_.points[1].radius_m == 40.0
    bad = {"routes": {"B": [[31.6, -8.0]]}, "rounds": [{"round": "X", "points": []}]}
    refused = _cli(migrated, "routes", "import", "-", stdin=json.dumps(bad))
    assert refused.returncode == 1
    assert "routes.B" in refused.stderr
    assert "rounds.0.shift_start" in refused.stderr
    with open_db(migrated) as conn:
        assert set(route_shapes(conn)) == {"A"}  # nothing of the bad file was imported
    assert _cli(migrated, "check").returncode == 0
