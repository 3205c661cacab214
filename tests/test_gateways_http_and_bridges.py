"""OsmAnd, OwnTracks, Traccar forwarding and LoRaWAN uplinks through the real gateway, broker,
ingest and database: each protocol's input lands as the expected rows, exactly once; bad input
is answered with a reason and dead-lettered."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from telemetry.protocols.lorawan_uplink import encode_chirpstack_uplink
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.devices import upsert_devices
from tests.support.database import open_db
from tests.support.env import TEST_MQTT_URL
from tests.support.gateway_process import GatewayProcess
from tests.support.gateways import bridged_topic, gateway_overrides
from tests.support.ingest_process import IngestProcess
from tests.support.publisher import Publisher
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
DEV_EUI = "0004a30b001c0530"
DEVICES = [
    DeviceRecord(device_id="B-7", fleet="bus", external_id="123456"),
    DeviceRecord(device_id="T-9", fleet="truck", external_id="ahmed/phone"),
    DeviceRecord(device_id="T-10", fleet="truck", external_id="traccar-42"),
    DeviceRecord(device_id="L-1", fleet="light", external_id=DEV_EUI),
]


@pytest.fixture
def city(
    make_settings: Callable[..., Settings],
    start_ingest: Callable[..., IngestProcess],
    tmp_path: Path,
) -> Iterator[tuple[Settings, httpx.Client, psycopg.Connection]]:
    """Registered devices, ingest and the gateways running, an HTTP client on the OsmAnd port."""
    settings = make_settings(**gateway_overrides())
    with open_db(settings) as conn:
        upsert_devices(conn, DEVICES)
        start_ingest(settings)
        gateways = GatewayProcess(settings, tmp_path / "gateways.log")
        with (
            gateways,
            httpx.Client(
                base_url=f"http://127.0.0.1:{settings.gateway_osmand_port}", timeout=30
            ) as client,
        ):
            yield settings, client, conn


def _count(conn: psycopg.Connection, table: str, device_id: str) -> int:
    queries = {
        "vehicle_positions": "SELECT count(*) FROM vehicle_positions WHERE device_id = %s",
        "light_energy": "SELECT count(*) FROM light_energy WHERE device_id = %s",
        "light_faults": "SELECT count(*) FROM light_faults WHERE device_id = %s",
    }
    row = conn.execute(queries[table], (device_id,)).fetchone()
    return int(row[0]) if row else 0


def _dead(conn: psycopg.Connection, code: str) -> list[tuple[str, bytes, str]]:
    rows = conn.execute(
        "SELECT topic, payload, reason FROM dead_letters WHERE reason_code = %s ORDER BY id",
        (code,),
    ).fetchall()
    return [(str(r[0]), bytes(r[1]), str(r[2])) for r in rows]


def test_osmand_fixes_are_stored_once_and_bad_requests_explained(
    city: tuple[Settings, httpx.Client, psycopg.Connection],
) -> None:
    _, client, conn = city
    ts = int(NOW.timestamp())
    query = {"id": "123456", "lat": "31.6295", "lon": "-7.9811", "timestamp": str(ts)}
    query |= {"speed": "10", "bearing": "45.5", "accuracy": "5"}
    assert client.get("/", params=query).status_code == 200
    assert client.post("/", params=query).status_code == 200  # a resend: stored once
    wait_until(lambda: _count(conn, "vehicle_positions", "B-7") == 1, what="the OsmAnd fix")
    lat, lon, speed, heading, accuracy = (
        conn.execute(
            "SELECT lat, lon, speed_kmh, heading_deg, accuracy_m FROM vehicle_positions "
            "WHERE device_id = 'B-7'"
        ).fetchone()
        or ()
    )
    assert (lat, lon, heading, accuracy) == (31.6295, -7.9811, 45.5, 5.0)
    assert speed == pytest.approx(18.52)  # 10 knots

    missing = client.get("/", params={"id": "123456", "lat": "31.6"})
    assert missing.status_code == 400 and "lon" in missing.text
    unknown = client.get("/", params=query | {"id": "999"})
    assert unknown.status_code == 403 and "999" in unknown.text
    wait_until(lambda: _dead(conn, "unknown_identity"), what="dead letter of the unknown id")
    assert _dead(conn, "invalid")[0][0] == "gateway/osmand/123456"


def test_owntracks_over_http_and_mqtt_and_traccar_forwarding(
    city: tuple[Settings, httpx.Client, psycopg.Connection],
) -> None:
    settings, client, conn = city
    tst = int(NOW.timestamp())
    location = {"_type": "location", "lat": 31.64, "lon": -8.0, "tst": tst, "vel": 25, "acc": 8}
    headers = {"X-Limit-U": "ahmed", "X-Limit-D": "phone"}
    answer = client.post("/owntracks", json=location, headers=headers)
    assert answer.status_code == 200 and answer.json() == []
    transition = {"_type": "transition", "event": "enter", "tst": tst, "lat": 31.6, "lon": -8.0}
    assert client.post("/owntracks", json=transition, headers=headers).json() == []
    with Publisher(TEST_MQTT_URL) as pub:
        later = location | {"tst": tst + 60}
        pub.publish_all([(bridged_topic(settings, "owntracks/ahmed/phone"), json.dumps(later))])
    wait_until(lambda: _count(conn, "vehicle_positions", "T-9") == 2, what="two OwnTracks fixes")

    forwarded = {
        "position": {
            "deviceId": 7,
            "fixTime": NOW.isoformat(),
            "valid": True,
            "latitude": 31.61,
            "longitude": -8.02,
            "speed": 5.0,
            "course": 180.0,
            "accuracy": 12.0,
            "attributes": {},
        },
        "device": {"id": 7, "uniqueId": "traccar-42", "name": "Compactor"},
    }
    assert client.post("/traccar", json=forwarded).status_code == 200
    wait_until(lambda: _count(conn, "vehicle_positions", "T-10") == 1, what="forwarded fix")
    invalid = forwarded | {"position": forwarded["position"] | {"valid": False}}
    assert client.post("/traccar", json=invalid).status_code == 400
    assert wait_until(lambda: _dead(conn, "no_fix"), what="no_fix dead letter")


def test_chirpstack_uplinks_become_energy_and_faults_on_change(
    city: tuple[Settings, httpx.Client, psycopg.Connection],
) -> None:
    settings, _, conn = city

    def uplink(i: int, status: int, *, eui: str = DEV_EUI) -> tuple[str, bytes]:
        topic, body = encode_chirpstack_uplink(
            dev_eui=eui,
            time_ms=int((NOW - timedelta(hours=1) + timedelta(minutes=5 * i)).timestamp() * 1000),
            f_port=2,
            f_cnt=i,
            data=b"\x01",
            decoded={
                "energy_kwh": 12.5 + i * 0.01,
                "power_w": 40.0,
                "lamp_on": True,
                "dim_level": 254,
                "status": status,
            },
            profile_name="DALI lighting node",
        )
        return bridged_topic(settings, topic), body

    # A lamp that fails and recovers again and again, and one uplink delivered twice: every
    # change is one fault event, in order, however concurrently the bridge handles them.
    statuses = [0b10 * (i % 2) for i in range(10)]
    with Publisher(TEST_MQTT_URL) as pub:
        pub.publish_all(
            [uplink(i, status) for i, status in enumerate(statuses)] + [uplink(1, 0b10)]
        )
        pub.publish_all([uplink(3, 0, eui="ffffffffffffffff")])
    wait_until(lambda: _count(conn, "light_energy", "L-1") == 10, what="ten energy readings")
    wait_until(lambda: _count(conn, "light_faults", "L-1") == 9, what="nine lamp-failure changes")
    faults = conn.execute(
        "SELECT fault, active FROM light_faults WHERE device_id = 'L-1' ORDER BY time"
    ).fetchall()
    assert faults == [("lampFailure", i % 2 == 1) for i in range(1, 10)]
    energy = conn.execute(
        "SELECT energy_wh, dim_pct FROM light_energy WHERE device_id = 'L-1' ORDER BY time"
    ).fetchone()
    assert energy is not None and energy[0] == pytest.approx(12500.0)
    assert energy[1] == pytest.approx(100.0)
    unknown = wait_until(lambda: _dead(conn, "unknown_identity"), what="unknown DevEUI")
    assert unknown[0][0] == "gateway/chirpstack/ffffffffffffffff"


def test_things_stack_uplink_becomes_an_energy_reading_and_unmapped_ones_are_kept(
    city: tuple[Settings, httpx.Client, psycopg.Connection],
) -> None:
    settings, _, conn = city
    # Shaped as The Things Stack's documented uplink (lorawan-stack-docs,
    # doc/content/integrations/data-formats/_index.md), for the registered node.
    received = (NOW - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")

    def uplink(port: int, decoded: Mapping[str, object]) -> bytes:
        return json.dumps(
            {
                "end_device_ids": {
                    "device_id": "pole-17",
                    "application_ids": {"application_id": "lighting"},
                    "dev_eui": DEV_EUI.upper(),
                },
                "received_at": received,
                "uplink_message": {
                    "f_port": port,
                    "f_cnt": 31,
                    "frm_payload": "AQ==",
                    "decoded_payload": decoded,
                    "received_at": received,
                    "version_ids": {"brand_id": "example", "model_id": "dali-node"},
                },
            }
        ).encode()

    topic = bridged_topic(settings, "v3/lighting@city/devices/pole-17/up")
    reading = {"energy_kwh": 3.25, "power_w": 36.0, "voltage_v": 229.0, "lamp_on": True}
    with Publisher(TEST_MQTT_URL) as pub:
        pub.publish_all([(topic, uplink(2, reading)), (topic, uplink(9, reading))])
    wait_until(lambda: _count(conn, "light_energy", "L-1") == 1, what="the TTS reading")
    stored = conn.execute(
        "SELECT energy_wh, voltage_v FROM light_energy WHERE device_id = 'L-1'"
    ).fetchone()
    assert stored == (3250.0, 229.0)
    unmapped = wait_until(lambda: _dead(conn, "unmapped_uplink"), what="the port-9 uplink")
    assert unmapped[0][1] == uplink(9, reading) and "9" in unmapped[0][2]
