"""MQTT over TLS with real brokers and a CA made at test time: the deploy config's two listeners,
the paho clients (simulators, recorder, and the services built on them), ingest, the gateways
and the simulators as child processes, and a broker certificate from the wrong CA refused with
an error naming the broker and the CA file."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from paho.mqtt.reasoncodes import ReasonCode

from simulators.errors import PublishError
from simulators.publish import MqttPublisher
from telemetry.mqtt_client import BrokerTlsError, Handlers, new_client
from telemetry.mqtt_credentials import write_password_file
from telemetry.mqtt_session.client import MqttSession
from telemetry.mqtt_session.errors import TlsConfigError
from telemetry.registry import DeviceRecord, parse_devices_csv
from telemetry.settings import Settings
from telemetry.storage.devices import upsert_devices
from tests.broker_instance import DEPLOY_CONFIG, MOSQUITTO, MosquittoInstance
from tests.support.database import count, open_db
from tests.support.env import settings_env, unique_settings
from tests.support.gateway_process import GatewayProcess
from tests.support.gateways import gateway_overrides
from tests.support.ingest_process import IngestProcess
from tests.support.tls import Pki, make_pki
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    shutil.which(MOSQUITTO) is None, reason="needs the mosquitto binary"
)
# How long a service refusing the broker's certificate has to say so.
REFUSAL_S = 20.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The test CA, a server certificate for localhost it signed, and an unrelated CA."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_broker(pki: Pki) -> Iterator[MosquittoInstance]:
    """A private Mosquitto whose only listener is TLS (anonymous logins, any topic)."""
    config = (
        "listener 8883\ncafile ca.crt\ncertfile server.crt\nkeyfile server.key\n"
        "tls_version tlsv1.2\nallow_anonymous true\n"
    )
    with MosquittoInstance(config, files=pki.broker_files()) as broker:
        yield broker


def tls_overrides(broker: MosquittoInstance, ca: Path, **extra: Any) -> dict[str, Any]:
    """Settings values that reach ``broker`` over TLS by name, trusting ``ca``."""
    return {"mqtt_url": broker.tls_url(), "mqtt_ca_file": str(ca), **extra}


def _position(ts: datetime, seq: int) -> bytes:
    return json.dumps(
        {"ts": int(ts.timestamp() * 1000), "lat": 31.63, "lon": -8.01, "seq": seq}
    ).encode()


def _log_names(log: str, *needles: str) -> bool:
    return all(needle in log for needle in needles)


# --- the deploy config ---------------------------------------------------------------------


def test_deploy_config_listens_for_tls_and_keeps_plain_mqtt_on_loopback() -> None:
    lines = [
        line.strip()
        for line in DEPLOY_CONFIG.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    listeners = [line for line in lines if line.startswith("listener ")]
    assert listeners == ["listener 8883", "listener 1883 127.0.0.1"]
    tls_block = lines[lines.index("listener 8883") : lines.index("listener 1883 127.0.0.1")]
    for option in (
        "cafile /etc/mosquitto/certs/ca.crt",
        "certfile /etc/mosquitto/certs/server.crt",
        "keyfile /etc/mosquitto/certs/server.key",
        "tls_version tlsv1.2",
        "require_certificate false",
    ):
        assert option in tls_block


async def test_deploy_config_takes_a_device_over_tls_and_ingest_on_loopback(pki: Pki) -> None:
    accounts = {"B-001": "bus-secret", "rasd-ingest": "ingest-secret"}
    with tempfile.TemporaryDirectory() as directory:
        passwd = Path(directory) / "passwd"
        write_password_file(passwd, accounts)
        password_text = passwd.read_text()
    with MosquittoInstance.from_deploy_config(
        password_file=password_text, tls_files=pki.broker_files()
    ) as broker:
        assert broker.tls_port is not None and broker.tls_port != broker.port
        plain = Settings(
            mqtt_url=broker.url, mqtt_username="rasd-ingest", mqtt_password="ingest-secret"
        )
        device = Settings(mqtt_url=broker.tls_url(), mqtt_ca_file=str(pki.ca))
        topic = "rasd/v1/bus/B-001/position"
        async with MqttSession(
            plain,
            client_id="tls-deploy-ingest",
            clean_start=True,
            subscriptions=[("$share/rasd-ingest/rasd/v1/+/+/+", 1)],
        ) as ingest:
            with MqttPublisher(device, credentials={"B-001": "bus-secret"}) as bus:
                bus.publish("B-001", topic, b'{"over":"tls"}')
                bus.flush(10)
                assert (bus.acked, bus.refused) == (1, 0)
            async with asyncio.timeout(10):
                (message,) = await ingest.receive_batch(1)
            assert (message.topic, message.payload) == (topic, b'{"over":"tls"}')


def test_deploy_config_without_certificates_runs_its_plain_listener_only() -> None:
    with MosquittoInstance.from_deploy_config() as broker:
        assert broker.tls_port is None
        assert len(broker.ports) == 1


# --- the paho clients ----------------------------------------------------------------------


def _connect_paho(settings: Settings) -> ReasonCode:
    """Connect a client from ``new_client`` and return its CONNACK reason code."""
    answered = threading.Event()
    codes: list[ReasonCode] = []

    def connected(code: ReasonCode, session_present: bool) -> None:
        codes.append(code)
        answered.set()

    client = new_client(
        settings, "tls-paho", Handlers(connected=connected), reconnect_on_failure=False
    )
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    try:
        assert answered.wait(10), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return codes[0]


def test_paho_clients_verify_the_broker_with_the_settings_ca(
    tls_broker: MosquittoInstance, pki: Pki
) -> None:
    code = _connect_paho(Settings(**tls_overrides(tls_broker, pki.ca)))
    assert not code.is_failure


def test_paho_clients_name_the_broker_and_the_ca_file_when_verification_fails(
    tls_broker: MosquittoInstance, pki: Pki
) -> None:
    settings = Settings(**tls_overrides(tls_broker, pki.other_ca))
    client = new_client(settings, "tls-paho-wrong-ca", Handlers(), reconnect_on_failure=False)
    with pytest.raises(BrokerTlsError) as refused:
        client.connect(settings.mqtt_host, settings.mqtt_port)
    assert isinstance(refused.value, OSError)  # the services' "unreachable" paths catch it
    assert f"localhost:{tls_broker.tls_port}" in str(refused.value)
    assert str(pki.other_ca) in str(refused.value)
    # The simulators' publisher says the same, as a PublishError (the CLI prints it).
    with pytest.raises(PublishError, match=str(pki.other_ca)), MqttPublisher(settings):
        pass


def test_paho_clients_name_an_unreadable_ca_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    settings = Settings(mqtt_url="mqtts://localhost:8883", mqtt_ca_file=str(missing))
    with pytest.raises(TlsConfigError, match=r"no-such-ca\.pem"):
        new_client(settings, "tls-paho-no-ca", Handlers())
    with pytest.raises(PublishError, match=r"no-such-ca\.pem"), MqttPublisher(settings):
        pass


def test_plain_mqtt_is_not_answered_on_the_tls_listener(tls_broker: MosquittoInstance) -> None:
    settings = Settings(mqtt_url=f"mqtt://127.0.0.1:{tls_broker.tls_port}")
    with pytest.raises(PublishError), MqttPublisher(settings):
        pass


# --- services as child processes -----------------------------------------------------------


@pytest.mark.services
def test_ingest_stores_what_was_published_over_tls(
    tls_broker: MosquittoInstance,
    pki: Pki,
    make_settings: Callable[..., Settings],
    start_ingest: Callable[..., IngestProcess],
) -> None:
    settings = make_settings(**tls_overrides(tls_broker, pki.ca))
    with open_db(settings) as conn:
        upsert_devices(conn, [DeviceRecord(device_id="B-001", fleet="bus")])
    start_ingest(settings)
    topic = f"{settings.topic_prefix}/bus/B-001/position"
    now = datetime.now(UTC) - timedelta(minutes=1)
    with MqttPublisher(settings) as publisher:
        for seq in range(5):
            publisher.publish("B-001", topic, _position(now + timedelta(seconds=seq), seq))
        publisher.flush(30)
    wait_until(lambda: count(settings, "vehicle_positions") == 5, what="5 fixes over TLS")


@pytest.mark.services
def test_gateways_publish_through_tls(
    tls_broker: MosquittoInstance,
    pki: Pki,
    make_settings: Callable[..., Settings],
    start_ingest: Callable[..., IngestProcess],
    tmp_path: Path,
) -> None:
    settings = make_settings(**tls_overrides(tls_broker, pki.ca, **gateway_overrides()))
    with open_db(settings) as conn:
        upsert_devices(conn, [DeviceRecord(device_id="B-7", fleet="bus", external_id="865321")])
    start_ingest(settings)
    with GatewayProcess(settings, tmp_path / "gateways.log"):
        ts = int(time.time()) - 60
        query = {"id": "865321", "lat": "31.6295", "lon": "-7.9811", "timestamp": str(ts)}
        answer = httpx.get(
            f"http://127.0.0.1:{settings.gateway_osmand_port}/", params=query, timeout=30
        )
        assert answer.status_code == 200, answer.text
        wait_until(lambda: count(settings, "vehicle_positions") == 1, what="the OsmAnd fix")


@pytest.mark.services
def test_simulators_publish_over_tls(
    tls_broker: MosquittoInstance,
    pki: Pki,
    make_settings: Callable[..., Settings],
    start_ingest: Callable[..., IngestProcess],
    tmp_path: Path,
) -> None:
    # The smoke scenario runs on 2025-12-19: ingest must accept a year-old back-fill.
    settings = make_settings(**tls_overrides(tls_broker, pki.ca, max_age_s=3 * 365 * 86400))
    csv = tmp_path / "smoke.csv"
    simulators = [sys.executable, "-m", "simulators"]
    env = settings_env(settings)
    subprocess.run(
        [*simulators, "registry", "smoke", "-o", str(csv)], cwd=ROOT, env=env, check=True
    )
    with open_db(settings) as conn:
        upsert_devices(conn, parse_devices_csv(csv.read_text()))
    start_ingest(settings)
    run = subprocess.run(
        [*simulators, "run", "smoke", "--fast", "--duration", "1m"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr.decode()
    wait_until(lambda: count(settings, "vehicle_positions") > 0, what="simulated fixes")


# --- the wrong CA --------------------------------------------------------------------------


def _wrong_ca(broker: MosquittoInstance, pki: Pki, **extra: Any) -> Settings:
    return unique_settings(**tls_overrides(broker, pki.other_ca, **extra))


@pytest.mark.services
def test_ingest_refuses_a_broker_certificate_from_another_ca_and_says_why(
    tls_broker: MosquittoInstance, pki: Pki, start_ingest: Callable[..., IngestProcess]
) -> None:
    settings = _wrong_ca(tls_broker, pki)
    ingest = start_ingest(settings, wait_healthy=False)
    assert ingest.proc is not None
    broker, ca = f"localhost:{tls_broker.tls_port}", str(pki.other_ca)
    wait_until(
        lambda: (
            ingest.proc is not None
            and (ingest.proc.poll() is not None or _log_names(ingest.log_tail(200), broker, ca))
        ),
        timeout=REFUSAL_S,
        what="ingest to refuse the broker's certificate",
    )
    log = ingest.log_tail(200)
    assert _log_names(log, broker, ca), log
    # Either it stopped with that error, or it keeps retrying (the broker's certificate may be
    # fixed there) and is never healthy meanwhile.
    status = wait_until(
        lambda: (
            ingest.proc is not None
            and (ingest.proc.poll() is not None or ingest.http_get("/healthz")[0])
        ),
        what="ingest's exit or its /healthz",
    )
    if ingest.proc.poll() is None:
        assert status == 503
    else:
        assert ingest.proc.returncode != 0


@pytest.mark.services
def test_gateways_refuse_a_broker_certificate_from_another_ca_and_exit(
    tls_broker: MosquittoInstance, pki: Pki, tmp_path: Path
) -> None:
    settings = _wrong_ca(tls_broker, pki, **gateway_overrides())
    gateways = GatewayProcess(settings, tmp_path / "gateways.log")
    try:
        gateways.start(wait_healthy=False)
        assert gateways.proc is not None
        returncode = gateways.proc.wait(REFUSAL_S)
        log = gateways.log_tail(200)
    finally:
        gateways.close()
    assert returncode != 0
    assert _log_names(log, f"localhost:{tls_broker.tls_port}", str(pki.other_ca)), log


def test_simulators_refuse_a_broker_certificate_from_another_ca_and_exit(
    tls_broker: MosquittoInstance, pki: Pki
) -> None:
    settings = _wrong_ca(tls_broker, pki)
    run = subprocess.run(
        [sys.executable, "-m", "simulators", "run", "smoke", "--fast", "--duration", "1m"],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 2
    stderr = run.stderr.decode()
    (error,) = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert error.startswith("error: TLS: the certificate of broker "), stderr
    assert _log_names(error, f"localhost:{tls_broker.tls_port}", str(pki.other_ca)), stderr
