"""MqttSession against the real Mosquitto 2.0 (and private ones: restarts, passwords, TLS)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import ssl
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from telemetry.mqtt_credentials import password_line
from telemetry.mqtt_session.client import MqttSession
from telemetry.mqtt_session.errors import (
    ConnectError,
    ConnectRefused,
    PublishAbandoned,
    PublishRefused,
    TlsConfigError,
    TlsVerificationError,
)
from telemetry.mqtt_session.events import Message
from telemetry.settings import Settings
from tests.broker_instance import MOSQUITTO, MosquittoInstance
from tests.support.env import unique_settings
from tests.support.tls import Pki, make_pki

pytestmark = pytest.mark.skipif(
    shutil.which(MOSQUITTO) is None, reason="needs the mosquitto binary"
)

WAIT_S = 10.0
# Mosquitto 2.0.11 answers every refused login with 0x87 Not authorized (see test_broker_acl).
NOT_AUTHORIZED = 0x87


@dataclass(frozen=True, slots=True)
class Names:
    """One test's topic prefix and client-id stem, unique on the shared broker."""

    tag: str

    @property
    def prefix(self) -> str:
        """Topic prefix."""
        return f"test/{self.tag}/ms"

    def client(self, role: str) -> str:
        """A client id for ``role``."""
        return f"ms-{self.tag}-{role}"


@pytest.fixture
def names() -> Names:
    """Fresh names for one test."""
    return Names(uuid.uuid4().hex[:10])


def session(settings: Settings, client_id: str, **options: Any) -> MqttSession:
    """An MqttSession with short timeouts for tests."""
    options.setdefault("connect_timeout_s", 5.0)
    options.setdefault("close_timeout_s", 2.0)
    return MqttSession(settings, client_id=client_id, **options)


async def eventually(check: Callable[[], bool], within: float = WAIT_S) -> None:
    """Wait until ``check()`` holds (polled: the sessions' counters have no events)."""
    async with asyncio.timeout(within):
        # Polled (ASYNC110): ``check`` reads plain counters, which have no event to wait on.
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def collect(
    subscriber: MqttSession, count: int, *, ack: bool = True, within: float = WAIT_S
) -> list[Message]:
    """The next ``count`` messages (acked unless told otherwise)."""
    received: list[Message] = []
    async with asyncio.timeout(within):
        async for message in subscriber.messages():
            received.append(message)
            if ack:
                subscriber.ack(message)
            if len(received) == count:
                break
    return received


async def quiet_for(subscriber: MqttSession, seconds: float) -> list[Message]:
    """Whatever arrives within ``seconds`` (unacked)."""
    received: list[Message] = []
    try:
        async with asyncio.timeout(seconds):
            async for message in subscriber.messages():
                received.append(message)
    except TimeoutError:
        pass
    return received


async def forget_session(settings: Settings, client_id: str) -> None:
    """Delete a persistent session from the broker (clean start, expiry 0)."""
    async with session(settings, client_id, clean_start=True, session_expiry_s=0):
        pass


def only_this_task_left() -> bool:
    """No task but the test's own is alive (nothing the sessions started leaked)."""
    return asyncio.all_tasks() == {asyncio.current_task()}


# --- against the shared broker -------------------------------------------------------------


async def test_qos1_publish_is_acked_and_received_by_another_session(names: Names) -> None:
    settings = unique_settings()
    topic = f"{names.prefix}/one"
    async with (
        session(settings, names.client("sub"), subscriptions=[(f"{names.prefix}/#", 1)]) as sub,
        session(settings, names.client("pub")) as pub,
    ):
        assert sub.connected.is_set() and pub.connected.is_set()
        assert await pub.publish(topic, b"hello") == 0
        [message] = await collect(sub, 1)
        assert (message.topic, message.payload, message.qos, message.dup) == (
            topic,
            b"hello",
            1,
            False,
        )
        assert message.packet_id is not None
        assert pub.stats.publishes_acknowledged == 1
        assert sub.stats.acks_sent == 1
    assert only_this_task_left()


async def test_thousands_of_publish_futures_resolve_in_order_of_delivery(names: Names) -> None:
    settings = unique_settings()
    count = 3000
    async with (
        session(settings, names.client("sub"), subscriptions=[(f"{names.prefix}/#", 1)]) as sub,
        session(settings, names.client("pub")) as pub,
    ):
        # Consumed meanwhile: Mosquitto queues at most 1000 beyond its 20 in flight per client.
        receiving = asyncio.create_task(collect(sub, count))
        futures = [pub.publish_nowait(f"{names.prefix}/n", b"%d" % i) for i in range(count)]
        async with asyncio.timeout(WAIT_S):
            codes = await asyncio.gather(*futures)
        assert set(codes) == {0}
        received = await receiving
        assert [m.payload for m in received] == [b"%d" % i for i in range(count)]
        assert pub.stats.in_flight == 0
        await pub.wait_published()
    assert only_this_task_left()


async def test_acks_leave_in_one_write_and_unacked_messages_come_back(
    names: Names, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = unique_settings()
    client_id = names.client("durable")
    durable: dict[str, Any] = {
        "clean_start": False,
        "session_expiry_s": 600,
        "subscriptions": [(f"{names.prefix}/#", 1)],
    }
    try:
        async with (
            session(settings, client_id, **durable) as sub,
            session(settings, names.client("pub")) as pub,
        ):
            for index in range(10):
                await pub.publish(f"{names.prefix}/m", b"%d" % index)
            received = await collect(sub, 10, ack=False)
            link = sub._link
            assert link is not None and link.transport is not None
            writes: list[bytes] = []
            write = link.transport.write

            def counting_write(data: bytes | bytearray | memoryview) -> None:
                writes.append(bytes(data))
                write(data)

            monkeypatch.setattr(link.transport, "write", counting_write)
            for message in received[::2]:
                assert sub.ack(message)
            assert not sub.ack(received[0])  # never twice
            await asyncio.sleep(0.05)
            assert len(writes) == 1  # five PUBACKs, one socket write
            assert len(writes[0]) == 5 * 4
        async with session(settings, client_id, **durable) as sub:
            again = await collect(sub, 5)
            assert sorted(m.payload for m in again) == [b"1", b"3", b"5", b"7", b"9"]
            assert all(m.dup for m in again)
            assert await quiet_for(sub, 0.5) == []
        async with session(settings, client_id, **durable) as sub:
            assert await quiet_for(sub, 0.5) == []
    finally:
        await forget_session(settings, client_id)
    assert only_this_task_left()


async def test_shared_subscription_splits_the_stream_without_duplicates(names: Names) -> None:
    settings = unique_settings()
    shared = [(f"$share/g{names.tag}/{names.prefix}/#", 1)]
    count = 200
    async with (
        session(settings, names.client("a"), subscriptions=shared) as first,
        session(settings, names.client("b"), subscriptions=shared) as second,
        session(settings, names.client("pub")) as pub,
    ):
        await asyncio.gather(
            *(pub.publish_nowait(f"{names.prefix}/s", b"%d" % i) for i in range(count))
        )
        got: list[bytes] = []

        async def drain(member: MqttSession) -> None:
            async for message in member.messages():
                got.append(message.payload)
                member.ack(message)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(drain(first)), group.create_task(drain(second))]
            await eventually(lambda: len(got) >= count)
            await asyncio.sleep(0.2)
            for task in tasks:
                task.cancel()
        assert sorted(got) == sorted(b"%d" % i for i in range(count))
        assert first.stats.messages_received > 0 and second.stats.messages_received > 0
    assert only_this_task_left()


async def test_our_receive_maximum_bounds_what_the_broker_sends_unacked(names: Names) -> None:
    settings = unique_settings()
    limit, count = 5, 40
    async with (
        session(
            settings,
            names.client("slow"),
            receive_maximum=limit,
            subscriptions=[(f"{names.prefix}/#", 1)],
        ) as sub,
        session(settings, names.client("pub")) as pub,
    ):
        await asyncio.gather(
            *(pub.publish_nowait(f"{names.prefix}/r", b"%d" % i) for i in range(count))
        )
        held = await collect(sub, limit, ack=False)
        assert await quiet_for(sub, 0.7) == []  # the broker waits for our acks
        assert sub.stats.unacked_incoming == limit
        for message in held:
            sub.ack(message)
        rest = await collect(sub, count - limit)
        assert [m.payload for m in held + rest] == [b"%d" % i for i in range(count)]
        # Mosquitto 2.0.11 may send Receive Maximum + 1 right after a burst of acks: tolerated.
        assert sub.stats.protocol_violations == 0
        assert sub.stats.connection_losses == 0
    assert only_this_task_left()


async def test_keepalive_pings_keep_an_idle_connection_up(names: Names) -> None:
    settings = unique_settings()
    async with session(settings, names.client("idle"), keepalive_s=1) as idle:
        # Mosquitto drops a client silent for 1.5 keepalives; we stay idle for 3.5.
        await asyncio.sleep(3.5)
        assert idle.connected.is_set()
        assert idle.stats.connection_losses == 0
        assert idle.stats.connects == 1
        assert await idle.publish(f"{names.prefix}/still", b"up") < 0x80


async def test_a_broker_that_stops_answering_pings_is_left(names: Names) -> None:
    connects = 0
    handlers: set[asyncio.Task[object]] = set()

    async def mute_broker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connects
        connects += 1
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        await reader.read(1024)  # CONNECT
        writer.write(b"\x20\x03\x00\x00\x00")  # CONNACK success, then silence
        try:
            while await reader.read(1024):
                pass
        except asyncio.CancelledError:
            return  # ended by the test (below): a normal end, not an error to log
        finally:
            writer.close()

    server = await asyncio.start_server(mute_broker, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = unique_settings(mqtt_url=f"mqtt://127.0.0.1:{port}")
        async with session(settings, names.client("mute"), keepalive_s=1) as mute:
            await eventually(lambda: mute.stats.connection_losses >= 1, within=5.0)
            await eventually(lambda: connects >= 2, within=5.0)  # and it reconnects
    finally:
        server.close()
        # The fake broker's own connection tasks (asyncio 3.11's server does not await them)
        # are the test's to end, not the session's: only then is a leak the client's.
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
    assert only_this_task_left()


# --- private brokers -------------------------------------------------------------------------


@pytest.fixture
def persistent_broker() -> Iterator[MosquittoInstance]:
    """A private Mosquitto that keeps sessions across restarts."""
    with MosquittoInstance(
        "allow_anonymous true\npersistence true\nautosave_interval 1\n"
    ) as broker:
        yield broker


async def test_sessions_come_back_after_the_broker_restarts(
    names: Names, persistent_broker: MosquittoInstance
) -> None:
    settings = unique_settings(mqtt_url=persistent_broker.url)
    shared = [(f"$share/g/{names.prefix}/#", 1)]
    async with (
        session(
            settings,
            names.client("sub"),
            clean_start=False,
            session_expiry_s=600,
            subscriptions=shared,
        ) as sub,
        session(settings, names.client("pub"), reconnect_cap_s=1.0) as pub,
    ):
        await pub.publish(f"{names.prefix}/before", b"1")
        assert [m.payload for m in await collect(sub, 1)] == [b"1"]
        await asyncio.to_thread(persistent_broker.restart)
        await eventually(lambda: sub.stats.reconnects >= 1 and pub.stats.reconnects >= 1)
        await sub.wait_connected()
        await pub.wait_connected()
        # Mosquitto 2.0 does not restore shared subscriptions: only the re-sent one delivers.
        await pub.publish(f"{names.prefix}/after", b"2")
        assert [m.payload for m in await collect(sub, 1)] == [b"2"]

        # A publish in flight when the broker dies is retransmitted after the reconnect.
        pid = persistent_broker.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        pending = pub.publish_nowait(f"{names.prefix}/during", b"3")
        await asyncio.sleep(0.3)
        assert not pending.done()
        await asyncio.to_thread(persistent_broker.kill)
        await asyncio.to_thread(persistent_broker.restart)
        async with asyncio.timeout(WAIT_S):
            assert await pending < 0x80
        assert pub.stats.retransmissions >= 1
    assert only_this_task_left()


async def test_bad_credentials_raise_connect_refused(names: Names) -> None:
    files = {"passwd": password_line("alice", "secret") + "\n"}
    config = "allow_anonymous false\npassword_file passwd\n"
    with MosquittoInstance(config, files=files) as broker:
        wrong = unique_settings(mqtt_url=broker.url, mqtt_username="alice", mqtt_password="nope")
        with pytest.raises(ConnectRefused) as refused:
            async with session(wrong, names.client("intruder")):
                pass
        assert refused.value.reason_code == NOT_AUTHORIZED
        assert "NOT_AUTHORIZED (0x87)" in str(refused.value)
        anonymous = unique_settings(mqtt_url=broker.url)
        with pytest.raises(ConnectRefused):
            async with session(anonymous, names.client("anonymous")):
                pass
        right = unique_settings(mqtt_url=broker.url, mqtt_username="alice", mqtt_password="secret")
        async with session(right, names.client("alice")) as alice:
            assert await alice.publish(f"{names.prefix}/in", b"ok") < 0x80
    assert only_this_task_left()


async def test_a_publish_the_acl_denies_raises_publish_refused(names: Names) -> None:
    files = {"acl": "topic readwrite allowed/#\n"}
    with MosquittoInstance("allow_anonymous true\nacl_file acl\n", files=files) as broker:
        settings = unique_settings(mqtt_url=broker.url)
        async with session(settings, names.client("acl")) as client:
            with pytest.raises(PublishRefused) as refused:
                await client.publish("denied/x", b"no")
            assert refused.value.reason_code == NOT_AUTHORIZED
            assert "NOT_AUTHORIZED (0x87)" in str(refused.value)
            assert await client.publish("allowed/x", b"yes") < 0x80
            assert client.stats.publishes_refused == 1
            assert client.stats.connection_losses == 0
    assert only_this_task_left()


async def test_exit_reports_publishes_without_puback_and_leaves_no_task(
    names: Names, persistent_broker: MosquittoInstance
) -> None:
    settings = unique_settings(mqtt_url=persistent_broker.url)
    pid = persistent_broker.pid
    assert pid is not None
    async with session(settings, names.client("leaver"), close_timeout_s=0.5) as leaver:
        os.kill(pid, signal.SIGSTOP)
        pending = leaver.publish_nowait(f"{names.prefix}/lost", b"?")
        await asyncio.sleep(0.1)
    os.kill(pid, signal.SIGCONT)
    with pytest.raises(PublishAbandoned):
        await pending
    assert [(a.topic, a.written) for a in leaver.abandoned] == [(f"{names.prefix}/lost", True)]
    assert only_this_task_left()


# --- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Certificates made now with the openssl command."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@asynccontextmanager
async def tls_broker(pki: Pki) -> AsyncIterator[MosquittoInstance]:
    """A private Mosquitto whose only listener is TLS with the test CA's server certificate."""
    config = "listener 8883\ncafile ca.crt\ncertfile server.crt\nkeyfile server.key\n"
    with MosquittoInstance(config + "allow_anonymous true\n", files=pki.broker_files()) as broker:
        yield broker


async def test_messages_flow_through_a_tls_listener(names: Names, pki: Pki) -> None:
    async with tls_broker(pki) as broker:
        settings = unique_settings(
            mqtt_url=f"mqtts://127.0.0.1:{broker.port}", mqtt_ca_file=str(pki.ca)
        )
        assert settings.mqtt_tls
        async with (
            session(settings, names.client("sub"), subscriptions=[(f"{names.prefix}/#", 1)]) as sub,
            session(settings, names.client("pub")) as pub,
        ):
            await asyncio.gather(
                *(pub.publish_nowait(f"{names.prefix}/tls", b"%d" % i) for i in range(100))
            )
            received = await collect(sub, 100)
            assert [m.payload for m in received] == [b"%d" % i for i in range(100)]
    assert only_this_task_left()


async def test_a_broker_certificate_from_another_ca_is_refused_clearly(
    names: Names, pki: Pki
) -> None:
    async with tls_broker(pki) as broker:
        settings = unique_settings(
            mqtt_url=f"mqtts://127.0.0.1:{broker.port}", mqtt_ca_file=str(pki.other_ca)
        )
        with pytest.raises(TlsVerificationError) as refused:
            async with session(settings, names.client("wrong-ca")):
                pass
    error = refused.value
    assert isinstance(error, ConnectError)
    assert isinstance(error.__cause__, ssl.SSLCertVerificationError)
    assert f"127.0.0.1:{broker.port}" in str(error)
    assert str(pki.other_ca) in str(error)
    assert only_this_task_left()


async def test_a_missing_ca_file_is_named(names: Names, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    settings = unique_settings(mqtt_url="mqtts://127.0.0.1:8883", mqtt_ca_file=str(missing))
    with pytest.raises(TlsConfigError, match=r"no-such-ca\.pem"):
        async with session(settings, names.client("no-ca")):
            pass


async def test_an_unreachable_broker_does_not_fail_entry_and_is_retried(names: Names) -> None:
    with MosquittoInstance("allow_anonymous true\n") as broker:
        settings = unique_settings(mqtt_url=broker.url)
        broker.stop()
        async with session(settings, names.client("early"), reconnect_cap_s=0.5) as early:
            assert not early.connected.is_set()
            pending = early.publish_nowait(f"{names.prefix}/queued", b"q")
            await asyncio.to_thread(broker.restart)
            async with asyncio.timeout(WAIT_S):
                await early.wait_connected()
                assert await pending < 0x80
    assert only_this_task_left()
