"""End to end on the real broker (and database): publishing, recording, replaying into ingest."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from simulators.clock import parse_start
from simulators.engine import Engine
from simulators.record import read_recording
from simulators.scenario import load_scenario
from telemetry.registry import parse_devices_csv
from telemetry.settings import Settings
from telemetry.storage.devices import upsert_devices
from telemetry.topics import subscription_filter
from tests.support.database import count, open_db
from tests.support.env import settings_env
from tests.support.ingest_process import IngestProcess
from tests.support.publisher import Publisher
from tests.support.waiting import wait_until
from tests.test_simulators_recording import DEVICES, RECORDING, expected

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.services


@contextmanager
def collecting(settings: Settings) -> Iterator[list[tuple[str, bytes]]]:
    """Everything published under the settings' prefix while the block runs."""
    received: list[tuple[str, bytes]] = []
    ready = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_connect(
        c: mqtt.Client, u: Any, f: mqtt.ConnectFlags, rc: ReasonCode, p: Properties | None
    ) -> None:
        c.subscribe(subscription_filter(settings.topic_prefix), options=SubscribeOptions(qos=1))

    def on_subscribe(
        c: mqtt.Client, u: Any, mid: int, rcs: list[ReasonCode], p: Properties | None
    ) -> None:
        ready.set()

    def on_message(c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
        received.append((message.topic, bytes(message.payload)))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    try:
        assert ready.wait(10), "subscription not acknowledged"
        yield received
    finally:
        client.disconnect()
        client.loop_stop()


def _simulators(settings: Settings, *args: str) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(
        [sys.executable, "-m", "simulators", *args],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result


def test_run_publishes_every_message_over_shared_connections(settings: Settings) -> None:
    scenario = load_scenario("smoke")
    engine = Engine(
        scenario,
        seed=3,
        start=parse_start(scenario.start),
        duration=300.0,
        prefix=settings.topic_prefix,
    )
    wanted = Counter((m.topic, m.payload) for m in engine.messages())
    with collecting(settings) as received:
        result = _simulators(
            settings,
            "run",
            "smoke",
            "--fast",
            "--seed",
            "3",
            "--duration",
            "5m",
            "--connections",
            "3",
            "--window",
            "50",
        )
        wait_until(
            lambda: len(received) >= sum(wanted.values()),
            timeout=30,
            what="every published message",
        )
    assert Counter(received) == wanted
    assert b"messages in" in result.stderr


def test_record_captures_broker_traffic_and_replays_it(
    settings: Settings, publisher: Publisher, tmp_path: Path
) -> None:
    path = tmp_path / "captured.jsonl.gz"
    messages = [
        (
            f"{settings.topic_prefix}/bus/B-{n:03d}/position",
            f'{{"ts":"2025-12-19T20:00:{n:02d}Z","lat":31.6,"lon":-8.0}}'.encode(),
        )
        for n in range(20)
    ]
    recorder = subprocess.Popen(
        [sys.executable, "-m", "simulators", "record", str(path), "--count", "20"],
        cwd=ROOT,
        env=settings_env(settings),
        stderr=subprocess.PIPE,
    )
    try:
        assert recorder.stderr is not None
        assert recorder.stderr.readline().startswith(b"recording ")
        publisher.publish_all(messages)
        assert recorder.wait(30) == 0
    finally:
        if recorder.poll() is None:
            recorder.kill()
            recorder.wait()
        if recorder.stderr is not None:
            recorder.stderr.close()
    header, records = read_recording(path)
    assert header.prefix == settings.topic_prefix
    assert header.source == "broker"
    captured = list(records)
    assert [(r.topic, r.payload) for r in captured] == messages
    assert all(a.t <= b.t for a, b in itertools.pairwise(captured))
    # Replay keeps the recorded timestamps when asked, and prints instead of publishing.
    out = _simulators(settings, "replay", str(path), "--fast", "--keep-time", "--stdout")
    lines = out.stdout.decode().splitlines()
    assert len(lines) == 20
    assert '"ts":"2025-12-19T20:00:00Z"' in lines[0]


def _received(ingest: IngestProcess) -> int:
    status, body = ingest.http_get("/metrics")
    match = re.search(r"^rasd_ingest_messages_received_total ([0-9.e+]+)$", body, re.M)
    return int(float(match.group(1))) if status == 200 and match else 0


def test_replaying_the_shipped_recording_stores_the_expected_rows(
    migrated: Settings, start_ingest: Callable[..., IngestProcess]
) -> None:
    with open_db(migrated) as conn:
        upsert_devices(conn, parse_devices_csv(DEVICES.read_text("utf-8")))
    ingest = start_ingest(migrated)
    result = _simulators(migrated, "replay", str(RECORDING), "--fast", "--connections", "2")
    assert b"replayed" in result.stderr
    documented = expected()

    def counts() -> dict[str, int]:
        return {table: count(migrated, table) for table in documented["counts"]}

    wait_until(
        lambda: _received(ingest) >= documented["messages"] and counts() == documented["counts"],
        timeout=60,
        what=f"ingest to store {documented['counts']}",
    )
    assert counts() == documented["counts"]


def test_registry_command_feeds_the_telemetry_import(migrated: Settings, tmp_path: Path) -> None:
    csv = tmp_path / "devices.csv"
    _simulators(migrated, "registry", "smoke", "-o", str(csv))
    subprocess.run(
        [sys.executable, "-m", "telemetry", "devices", "import", str(csv)],
        cwd=ROOT,
        env=settings_env(migrated),
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert count(migrated, "devices") == len(parse_devices_csv(DEVICES.read_text("utf-8")))


def test_devices_can_publish_with_their_own_accounts(settings: Settings, tmp_path: Path) -> None:
    scenario = tmp_path / "three.toml"
    scenario.write_text(
        'name = "three"\nstart = "2025-12-19T10:00:00+01:00"\n'
        '[buses]\ncount = 3\nlines = ["A"]\n[trucks]\ncount = 0\n[lights]\ncount = 0\n',
        "utf-8",
    )
    credentials = tmp_path / "credentials.json"
    credentials.write_text('{"B-001": "s1", "B-002": "s2", "B-003": "s3"}', "utf-8")
    loaded = load_scenario(str(scenario))
    engine = Engine(
        loaded,
        seed=1,
        start=parse_start(loaded.start),
        duration=120.0,
        prefix=settings.topic_prefix,
    )
    wanted = Counter((m.topic, m.payload) for m in engine.messages())
    with collecting(settings) as received:
        _simulators(
            settings,
            "run",
            str(scenario),
            "--fast",
            "--duration",
            "2m",
            "--device-credentials",
            str(credentials),
            "--protocol",
            "3.1.1",
        )
        wait_until(lambda: len(received) >= sum(wanted.values()), timeout=30, what="positions")
    assert Counter(received) == wanted
    assert {topic.split("/")[-2] for topic, _ in received} == {"B-001", "B-002", "B-003"}


def test_real_time_pacing_publishes_in_order(settings: Settings) -> None:
    scenario = load_scenario("smoke")
    start = "2025-12-19T21:00:00+01:00"
    engine = Engine(
        scenario, seed=1, start=parse_start(start), duration=120.0, prefix=settings.topic_prefix
    )
    wanted = [(m.topic, m.payload) for m in engine.messages()]
    with collecting(settings) as received:
        _simulators(
            settings,
            "run",
            "smoke",
            "--speed",
            "600",
            "--duration",
            "2m",
            "--start",
            start,
            "--seed",
            "1",
            "--connections",
            "1",
        )
        wait_until(lambda: len(received) >= len(wanted), timeout=30, what="all messages")
    assert received == wanted
