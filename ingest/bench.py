"""Drain-rate benchmark: ``python -m ingest.bench [--messages N]``.

Loads N QoS 1 messages (a city mix of positions, energy and faults, some batched) into four
offline persistent sessions on a private Mosquitto, then times, one after the other:
1. ``mosquitto_sub -q 1 -c`` draining its queue (the C client: the ceiling);
2. a bare paho-mqtt client draining its queue with manual acks and doing nothing else;
2b. a bare MqttSession (Rasd's asyncio client, which the ingestor runs on) doing the same;
3. Rasd's ingestor draining its queue into the database (rows committed, acks sent);
4. the same with two ingest processes sharing the subscription.
Publishing (MqttSession, QoS 1) happens before any timing, so the publisher's CPU never
competes with a consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.errors import BenchmarkError
from telemetry.db import conninfo
from telemetry.migrate import migrate
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.alerts import drop_schema
from telemetry.storage.bench_data import time_series_rows
from telemetry.storage.devices import upsert_devices
from telemetry.topics import Fleet

PREFIX = "bench/v1"
FILTER = f"{PREFIX}/#"
SESSION_ID = "bench-session"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_broker() -> Iterator[int]:
    """A Mosquitto on a free loopback port with queue limits lifted; yields the port."""
    port = _free_port()
    folder = Path(tempfile.mkdtemp(prefix="rasd-bench-mosquitto-"))
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "persistence false",
        "max_queued_messages 0",
        "max_queued_bytes 0",
        "max_inflight_messages 0",
        "log_dest none",
    ]
    if os.geteuid() == 0:
        lines.append("user root")
    (folder / "mosquitto.conf").write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(folder / "mosquitto.conf")])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class Traffic:
    """The generated messages and the rows they must produce."""

    messages: list[tuple[str, bytes]]
    rows: int
    devices: list[DeviceRecord]


def city_mix(count: int, seed: int = 7) -> Traffic:
    """Positions (buses 1 Hz-ish, trucks, 5 % of truck messages batched), energy, faults."""
    rng = random.Random(seed)
    buses = [f"B-{i:03d}" for i in range(250)]
    trucks = [f"T-ARM-{i:03d}" for i in range(120)]
    lights = [f"L-GUE-{i:05d}" for i in range(5000)]
    devices = (
        [DeviceRecord(device_id=d, fleet=Fleet.BUS) for d in buses]
        + [DeviceRecord(device_id=d, fleet=Fleet.TRUCK) for d in trucks]
        + [DeviceRecord(device_id=d, fleet=Fleet.LIGHT) for d in lights]
    )
    now_ms = int(datetime.now(UTC).timestamp() * 1000) - 3_600_000
    tick: dict[str, int] = {}
    messages: list[tuple[str, bytes]] = []
    rows = 0

    def next_ts(device: str) -> int:
        tick[device] = tick.get(device, 0) + 1
        return now_ms - tick[device] * 1000

    for _ in range(count):
        roll = rng.random()
        if roll < 0.60:
            bus = rng.choice(buses)
            body: object = {
                "ts": next_ts(bus),
                "lat": 31.6 + rng.random() / 20,
                "lon": -8.0 - rng.random() / 20,
                "speed_kmh": rng.uniform(0, 50),
                "heading_deg": rng.uniform(0, 359),
                "accuracy_m": 4.0,
                "route": "A",
                "seq": tick[bus],
            }
            topic = f"{PREFIX}/bus/{bus}/position"
            rows += 1
        elif roll < 0.75:
            truck = rng.choice(trucks)
            topic = f"{PREFIX}/truck/{truck}/position"
            size = 10 if rng.random() < 0.05 else 1
            fixes = [
                {
                    "ts": next_ts(truck),
                    "lat": 31.65,
                    "lon": -8.04,
                    "speed_kmh": rng.uniform(0, 40),
                    "seq": tick[truck],
                }
                for _ in range(size)
            ]
            body = fixes if size > 1 else fixes[0]
            rows += size
        elif roll < 0.99:
            light = rng.choice(lights)
            topic = f"{PREFIX}/light/{light}/energy"
            body = {
                "ts": next_ts(light),
                "energy_wh": 1000.0 + tick[light] * 15,
                "power_w": 60.0,
                "voltage_v": 229.5,
                "current_a": 0.27,
                "power_factor": 0.96,
                "lamp_on": True,
                "dim_pct": 70,
                "seq": tick[light],
            }
            rows += 1
        else:
            light = rng.choice(lights)
            topic = f"{PREFIX}/light/{light}/fault"
            body = {"ts": next_ts(light), "fault": "lampFailure", "active": rng.random() < 0.5}
            rows += 1
        messages.append((topic, json.dumps(body).encode()))
    return Traffic(messages, rows, devices)


def _paho(client_id: str, port: int, *, manual_ack: bool = False) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 20000
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    return client


def make_session(client_id: str, port: int, topic_filter: str) -> None:
    """Create a persistent session subscribed at QoS 1, then leave it offline."""
    client = _paho(client_id, port)
    done = threading.Event()
    client.on_subscribe = lambda *a: done.set()
    client.loop_start()
    client.subscribe(topic_filter, qos=1)
    if not done.wait(10):
        raise BenchmarkError("no SUBACK")
    client.disconnect()
    client.loop_stop()


def publish(port: int, messages: list[tuple[str, bytes]]) -> float:
    """Publish at QoS 1, waiting for every PUBACK; returns seconds taken."""
    from bench.mqtt_session_drain import publish_all  # deferred: it imports this module

    return asyncio.run(publish_all(port, messages))


def _mosquitto_sub(port: int, *extra: str) -> list[str]:
    """The C client on the bench's persistent session (id bench-sub, QoS 1), plus ``extra``."""
    return [
        "mosquitto_sub",
        *("-p", str(port), "-V", "mqttv5", "-i", "bench-sub", "-c", "-x", "3600"),
        *("-q", "1", "-t", FILTER, *extra),
    ]


def drain_mosquitto_sub(port: int, count: int) -> float:
    """The C client's drain time for ``count`` queued messages."""
    started = time.perf_counter()
    subprocess.run(
        _mosquitto_sub(port, "-C", str(count)),
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )
    return time.perf_counter() - started


def drain_paho(port: int, count: int) -> float:
    """A bare paho client acking each message by hand as it arrives."""
    received = 0
    done = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        nonlocal received
        client.ack(message.mid, message.qos)
        received += 1
        if received == count:
            done.set()

    started = time.perf_counter()
    client = _paho("bench-paho", port, manual_ack=True)
    client.on_message = on_message
    client.loop_start()
    if not done.wait(600):
        raise BenchmarkError(f"paho drained only {received} of {count}")
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return elapsed


def drain_session(port: int, count: int) -> float:
    """A bare MqttSession: ``receive_batch``, one ``ack`` per message (one write a turn)."""
    from bench.mqtt_session_drain import drain_batches  # deferred: it imports this module

    return asyncio.run(drain_batches(port, count, SESSION_ID))


def _rows(settings: Settings) -> tuple[int, datetime | None]:
    with psycopg.connect(conninfo(settings), autocommit=True) as conn:
        return time_series_rows(conn)


def drain_ingest(settings: Settings, group: str, client_ids: list[str], rows: int) -> float:
    """Run ingest processes until every row is committed; seconds from first receive to last."""
    procs: list[subprocess.Popen[bytes]] = []
    profilers: list[subprocess.Popen[bytes]] = []
    for index, client_id in enumerate(client_ids):
        env = dict(os.environ)
        env.update(
            {
                "RASD_MQTT_URL": settings.mqtt_url,
                "RASD_DATABASE_URL": settings.database_url,
                "RASD_DATABASE_SCHEMA": settings.database_schema,
                "RASD_TOPIC_PREFIX": PREFIX,
                "RASD_INGEST_SHARE_GROUP": group,
                "RASD_INGEST_CLIENT_ID": client_id,
                "RASD_INGEST_HTTP_PORT": str(_free_port()),
                "RASD_LOG_LEVEL": "WARNING",
                "RASD_INGEST_INSTANCE": str(index),
            }
        )
        proc = subprocess.Popen([sys.executable, "-m", "ingest"], env=env)
        procs.append(proc)
        profile_dir = os.environ.get("RASD_BENCH_PROFILE")
        if profile_dir:  # py-spy samples each ingest process, to look before tuning
            out = Path(profile_dir, f"{client_id}.txt")
            profilers.append(
                subprocess.Popen(
                    [
                        "py-spy",
                        "record",
                        "--format",
                        "raw",
                        "-r",
                        "250",
                        "--nonblocking",
                        "-o",
                        str(out),
                        "--pid",
                        str(proc.pid),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    try:
        deadline = time.monotonic() + 900
        while True:
            stored, first = _rows(settings)
            if stored >= rows:
                finished = datetime.now(UTC)
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise BenchmarkError(f"ingest stored {stored} of {rows} rows")
            time.sleep(0.02)
        assert first is not None
        return (finished - first).total_seconds()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
        for profiler in profilers:
            profiler.wait(60)


def _bench_settings(port: int, schema: str) -> Settings:
    base = Settings()
    return Settings(
        mqtt_url=f"mqtt://127.0.0.1:{port}",
        database_url=os.environ.get(
            "RASD_BENCH_DATABASE_URL", base.database_url.rsplit("/", 1)[0] + "/rasd_bench"
        ),
        database_schema=schema,
        topic_prefix=PREFIX,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the four drains and print msg/s and ratios."""
    parser = argparse.ArgumentParser(
        prog="python -m ingest.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args(argv)
    count = args.messages
    traffic = city_mix(count)
    tag = f"{os.getpid()}"
    with private_broker() as port:
        one = _bench_settings(port, f"bench_one_{tag}")
        two = _bench_settings(port, f"bench_two_{tag}")
        for settings in (one, two):
            migrate(settings)
            with psycopg.connect(conninfo(settings), autocommit=True) as conn:
                upsert_devices(conn, traffic.devices)
        subprocess.run(
            _mosquitto_sub(port, "-W", "1"),
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        make_session("bench-paho", port, FILTER)
        make_session(SESSION_ID, port, FILTER)
        make_session("bench-one-0", port, f"$share/bench-one/{FILTER}")
        make_session("bench-two-0", port, f"$share/bench-two/{FILTER}")
        make_session("bench-two-1", port, f"$share/bench-two/{FILTER}")
        print(
            f"loading {count} messages ({traffic.rows} rows) into 5 offline sessions ...",
            flush=True,
        )
        load_s = publish(port, traffic.messages)
        print(f"  published in {load_s:.1f} s ({count / load_s:,.0f} msg/s)", flush=True)
        results = {
            "1 mosquitto_sub -q 1 -c": drain_mosquitto_sub(port, count),
            "2 paho, manual acks": drain_paho(port, count),
            "2b MqttSession, manual acks": drain_session(port, count),
            "3 rasd ingest x1": drain_ingest(one, "bench-one", ["bench-one-0"], traffic.rows),
            "4 rasd ingest x2": drain_ingest(
                two, "bench-two", ["bench-two-0", "bench-two-1"], traffic.rows
            ),
        }
        for settings in (one, two):
            with psycopg.connect(conninfo(settings), autocommit=True) as conn:
                drop_schema(conn, settings.database_schema)
    rate = {name: count / seconds for name, seconds in results.items()}
    print(f"\n{count} messages, {traffic.rows} rows, {os.cpu_count()} cores")
    for name, seconds in results.items():
        print(f"  {name:<28} {seconds:7.2f} s  {rate[name]:>9,.0f} msg/s")
    r1, r2, r2b, r3, r4 = (rate[k] for k in results)
    print(
        f"  ratio 3/1 = {r3 / r1:.2f}   3/2 = {r3 / r2:.2f}   3/2b = {r3 / r2b:.2f}"
        f"   4/3 = {r4 / r3:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
