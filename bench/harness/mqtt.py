"""MQTT for the benchmarks: a private broker with queue limits lifted, offline persistent
sessions, QoS 1 preloading, the reference drains, and a publisher on the usual settings."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.harness import BenchmarkError
from telemetry.mqtt_client import Handlers, new_client
from telemetry.mqtt_session.client import MqttSession
from telemetry.settings import Settings
from tests.broker_instance import MosquittoInstance

RECEIVE_MAXIMUM: Final = 20_000
# A broker that queues everything for offline sessions: the drains measure consumers, never
# the broker dropping messages at its default limits.
_LIFTED_LIMITS: Final = """\
listener 1883
allow_anonymous true
persistence false
max_queued_messages 0
max_queued_bytes 0
max_inflight_messages 0
"""


@contextmanager
def private_broker() -> Iterator[int]:
    """A Mosquitto on a free loopback port with queue limits lifted; yields the port."""
    with private_broker_instance() as broker:
        yield broker.port


@contextmanager
def private_broker_instance() -> Iterator[MosquittoInstance]:
    """The same broker as ``private_broker``, as its instance (port and pid, for CPU use)."""
    with MosquittoInstance(_LIFTED_LIMITS) as broker:
        yield broker


def _local(port: int) -> Settings:
    return Settings(mqtt_url=f"mqtt://127.0.0.1:{port}")


def paho_client(client_id: str, port: int, *, manual_ack: bool = False) -> mqtt.Client:
    """A paho MQTT v5 client resuming its persistent session (1 h expiry, 20,000 in flight)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    return client


def make_session(client_id: str, port: int, topic_filter: str) -> None:
    """Create a persistent session subscribed at QoS 1, then leave it offline."""
    client = paho_client(client_id, port)
    done = threading.Event()
    client.on_subscribe = lambda *a: done.set()
    client.loop_start()
    client.subscribe(topic_filter, qos=1)
    if not done.wait(10):
        raise BenchmarkError("no SUBACK")
    client.disconnect()
    client.loop_stop()


def mosquitto_sub(port: int, topic_filter: str, *extra: str) -> list[str]:
    """The C client on the persistent session ``bench-sub`` (QoS 1), plus ``extra``."""
    return [
        "mosquitto_sub",
        *("-p", str(port), "-V", "mqttv5", "-i", "bench-sub", "-c", "-x", "3600"),
        *("-q", "1", "-t", topic_filter, *extra),
    ]


def make_mosquitto_sub_session(port: int, topic_filter: str) -> None:
    """Create the C client's persistent session (it waits 1 s for messages, then leaves)."""
    subprocess.run(
        mosquitto_sub(port, topic_filter, "-W", "1"),
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def drain_mosquitto_sub(port: int, topic_filter: str, count: int) -> float:
    """The C client's drain time for ``count`` queued messages."""
    started = time.perf_counter()
    subprocess.run(
        mosquitto_sub(port, topic_filter, "-C", str(count)),
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=600,
    )
    return time.perf_counter() - started


def drain_paho(port: int, count: int, client_id: str = "bench-paho") -> float:
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
    client = paho_client(client_id, port, manual_ack=True)
    client.on_message = on_message
    client.loop_start()
    if not done.wait(600):
        raise BenchmarkError(f"paho drained only {received} of {count}")
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return elapsed


def queued_session(port: int, client_id: str, topic_filter: str) -> MqttSession:
    """An MqttSession resuming the persistent session ``client_id`` on ``topic_filter``."""
    return MqttSession(
        _local(port),
        client_id=client_id,
        clean_start=False,
        session_expiry_s=3600,
        receive_maximum=RECEIVE_MAXIMUM,
        subscriptions=[(topic_filter, 1)],
    )


async def drain_batches(port: int, count: int, client_id: str, topic_filter: str) -> float:
    """Seconds to drain ``count`` queued messages by ``receive_batch``, acking each."""
    started = time.perf_counter()
    async with queued_session(port, client_id, topic_filter) as session:
        received = 0
        async with asyncio.timeout(600):
            while received < count:
                batch = await session.receive_batch(5000)
                for message in batch:
                    session.ack(message)
                received += len(batch)
        elapsed = time.perf_counter() - started
        if session.stats.acks_dropped or session.stats.connection_losses:
            raise BenchmarkError(f"unexpected session trouble: {session.stats}")
    return elapsed


async def publish_all(port: int, messages: list[tuple[str, bytes]]) -> float:
    """Publish at QoS 1, 20,000 in flight, waiting for every PUBACK; returns seconds taken."""
    started = time.perf_counter()
    async with MqttSession(_local(port), client_id="bench-rasd-pub", clean_start=True) as session:
        for start in range(0, len(messages), RECEIVE_MAXIMUM):
            window = messages[start : start + RECEIVE_MAXIMUM]
            codes = await asyncio.gather(*(session.publish_nowait(t, p) for t, p in window))
            if max(codes) >= 0x80:
                raise BenchmarkError(f"publish refused: {max(codes):#x}")
    return time.perf_counter() - started


@contextmanager
def settings_publisher(settings: Settings, *, max_inflight: int = 20) -> Iterator[mqtt.Client]:
    """A connected paho client on the settings' broker, account and TLS (as the services'),
    its network thread running."""
    client = new_client(settings, "", Handlers())
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(0)
    client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=30)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()
        client._reset_sockets()
