"""``MqttSession``: the asyncio shell around :class:`SessionCore`, with reconnects.

Everything the session starts runs in a TaskGroup it owns (``mqtt-session:<id>`` keeps the
connection up, ``mqtt-keepalive:<id>`` pings per connection); leaving the ``async with``
cancels and awaits all of it. Reading is an ``asyncio.Protocol`` (``data_received`` hands
whole socket reads to the core: no stream buffer, no reader task); writing is coalesced, one
``transport.write`` per event-loop turn for everything queued in it (acks, publishes, pings).

Closing: queued acks and a normal DISCONNECT are written (the broker keeps the session for
``session_expiry_s``), then the connection is closed. Exit does not wait for publishes still
awaiting PUBACK: their futures fail with :class:`PublishAbandoned` and ``abandoned`` lists
them (a warning logs the count). A caller that wants them settled awaits
``wait_published()`` (under its own timeout) before leaving.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self, cast

import structlog

from telemetry.backoff import Backoff
from telemetry.mqtt_session.core import SessionCore, SessionOptions
from telemetry.mqtt_session.errors import (
    ConnectError,
    ConnectRefused,
    ProtocolViolation,
    PublishAbandoned,
    PublishRefused,
    SessionClosed,
    SubscribeRefused,
    TlsConfigError,
    TlsVerificationError,
)
from telemetry.mqtt_session.events import (
    BrokerDisconnected,
    Connected,
    ConnectionRefused,
    Event,
    Message,
    ProtocolFailure,
    PublishAcknowledged,
    Subscribed,
    SubscriptionRefused,
)
from telemetry.mqtt_session.tls import client_ssl_context, describe_trust
from telemetry.settings import Settings

log = structlog.get_logger("telemetry.mqtt_session")

PublishFuture = asyncio.Future[int]
# Raised from __aenter__ when the first connection attempt meets them; later, logged and retried.
_REFUSALS: Final = (ConnectRefused, SubscribeRefused, TlsConfigError, TlsVerificationError)


@dataclass(kw_only=True, frozen=True, slots=True)
class SessionStats:
    """A snapshot of the session's counters and queues, for metrics."""

    messages_received: int
    acks_sent: int
    acks_dropped: int
    publishes_sent: int
    publishes_acknowledged: int
    publishes_refused: int
    retransmissions: int
    connects: int
    reconnects: int
    connection_losses: int
    protocol_violations: int
    receive_maximum_overruns: int
    in_flight: int
    waiting: int
    unacked_incoming: int
    inbox: int


@dataclass(kw_only=True, frozen=True, slots=True)
class AbandonedPublish:
    """A publish the session closed on before its PUBACK; ``written``: it reached the socket."""

    topic: str
    payload: bytes
    written: bool


def _quiet_future(loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
    """A future whose exception nobody may read, without asyncio logging that it was not."""
    future: asyncio.Future[None] = loop.create_future()
    future.add_done_callback(lambda done: done.cancelled() or done.exception())
    return future


class _Link(asyncio.Protocol):
    """One network connection; its protocol callbacks go to the session."""

    def __init__(self, session: MqttSession, loop: asyncio.AbstractEventLoop) -> None:
        self.session = session
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = loop.create_future()
        self.connack = _quiet_future(loop)
        self.suback = _quiet_future(loop)
        self.connected: Connected | None = None
        self.keepalive_task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.session._on_link_made(self)

    def data_received(self, data: bytes) -> None:
        self.session._on_data(self, data)

    def eof_received(self) -> bool | None:
        return None  # the broker closed its side: close ours too

    def connection_lost(self, exc: Exception | None) -> None:
        self.session._on_link_lost(self, exc)

    def close(self) -> None:
        """Close after the write buffer drains."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """Close now, dropping whatever is unwritten."""
        if self.transport is not None:
            self.transport.abort()


class MqttSession:
    """An MQTT v5 client session (async context manager): QoS 1 publishes, manual acks.

    ``__aenter__`` makes the first connection attempt: a refusal (credentials, ACL,
    subscription, TLS verification, TLS files) raises there; an unreachable broker does not,
    the session keeps retrying with jittered backoff and ``wait_connected()`` tells when it is
    up. After that, every loss reconnects by itself, re-subscribes and retransmits the
    publishes still awaiting PUBACK with DUP=1.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str,
        clean_start: bool = False,
        session_expiry_s: int = 0,
        receive_maximum: int = 65535,
        keepalive_s: int = 30,
        subscriptions: Sequence[tuple[str, int]] = (),
        max_packet_size: int | None = None,
        connect_timeout_s: float = 10.0,
        close_timeout_s: float = 5.0,
        reconnect_base_s: float = 0.2,
        reconnect_cap_s: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._settings = settings
        self._options = SessionOptions(
            client_id=client_id,
            clean_start=clean_start,
            session_expiry_s=session_expiry_s,
            receive_maximum=receive_maximum,
            keepalive_s=keepalive_s,
            username=settings.mqtt_username,
            password=(
                settings.mqtt_password.get_secret_value()
                if settings.mqtt_password is not None
                else None
            ),
            subscriptions=tuple(subscriptions),
            max_packet_size=max_packet_size,
        )
        self._core: SessionCore[PublishFuture] = SessionCore(self._options)
        self._ssl = ssl_context
        self._connect_timeout_s = connect_timeout_s
        self._close_timeout_s = close_timeout_s
        self._backoff = Backoff(base=reconnect_base_s, cap=reconnect_cap_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._group: asyncio.TaskGroup | None = None
        self._runner: asyncio.Task[None] | None = None
        self._first_attempt: asyncio.Future[None] | None = None
        self._link: _Link | None = None
        self._connected = asyncio.Event()
        self._inbox_ready = asyncio.Event()
        self._settled = asyncio.Event()  # nothing in flight or waiting
        self._settled.set()
        self._flush_pending = False
        self._closing = False
        self._connect_waiters: set[asyncio.Future[None]] = set()
        self._abandoned: tuple[AbandonedPublish, ...] = ()
        self._reconnects = 0
        self._connection_losses = 0
        self.last_error: Exception | None = None

    # -- public API -------------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        """The MQTT client id the broker keeps the session under."""
        return self._options.client_id

    @property
    def connected(self) -> asyncio.Event:
        """Set while connected and subscribed (read it, wait on it; never set or clear it)."""
        return self._connected

    @property
    def generation(self) -> int:
        """Number of the current (or last) connection; messages carry the one they came on."""
        return self._core.generation

    @property
    def abandoned(self) -> tuple[AbandonedPublish, ...]:
        """After exit: the publishes that had no PUBACK when the session closed."""
        return self._abandoned

    @property
    def stats(self) -> SessionStats:
        """Counters and queue lengths now."""
        core, counters = self._core, self._core.counters
        return SessionStats(
            messages_received=counters.messages_received,
            acks_sent=counters.acks_sent,
            acks_dropped=counters.acks_dropped,
            publishes_sent=counters.publishes_sent,
            publishes_acknowledged=counters.publishes_acknowledged,
            publishes_refused=counters.publishes_refused,
            retransmissions=counters.retransmissions,
            connects=counters.connects,
            reconnects=self._reconnects,
            connection_losses=self._connection_losses,
            protocol_violations=counters.protocol_violations,
            receive_maximum_overruns=counters.receive_maximum_overruns,
            in_flight=core.in_flight,
            waiting=core.waiting,
            unacked_incoming=core.unacked_incoming,
            inbox=len(core.inbox),
        )

    async def wait_connected(self) -> None:
        """Return once connected and subscribed; raises SessionClosed if the session ends first."""
        if self._connected.is_set():
            return
        if self._closing or self._loop is None:
            raise SessionClosed("the session is not open")
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._connect_waiters.add(waiter)
        try:
            await waiter
        finally:
            self._connect_waiters.discard(waiter)

    def publish_nowait(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> PublishFuture:
        """Queue a publish; the future gets the PUBACK reason code (< 0x80).

        It fails with PublishRefused (reason >= 0x80) or PublishAbandoned (session closed
        first). QoS 0 futures resolve at once. Raises ValueError for a forbidden topic.
        """
        loop = self._loop
        if loop is None or self._closing:
            raise SessionClosed("the session is not open")
        future: PublishFuture = loop.create_future()
        self._core.publish(topic, payload, qos=qos, retain=retain, tag=future)
        if qos == 0:
            future.set_result(0)
        self._settled.clear()
        self._schedule_flush()
        return future

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> int:
        """Publish and return once the broker acknowledged it (the PUBACK reason code, < 0x80).

        Raises PublishRefused for a reason code >= 0x80; waits across reconnects (wrap it in
        ``asyncio.timeout`` to bound that). Cancelling the wait does not unsend the message.
        """
        return await self.publish_nowait(topic, payload, qos=qos, retain=retain)

    async def wait_published(self) -> None:
        """Return once no publish is in flight or waiting (e.g. before leaving the session)."""
        await self._settled.wait()

    def messages(self) -> _MessageStream:
        """Incoming messages in arrival order (``async for``); ends when the session closes."""
        return _MessageStream(self)

    async def receive_batch(self, max_items: int) -> list[Message]:
        """Wait for at least one message and return up to ``max_items``; [] once closed."""
        inbox = self._core.inbox
        while not inbox:
            if self._closing:
                return []
            self._inbox_ready.clear()
            await self._inbox_ready.wait()
        take = min(max_items, len(inbox))
        popleft = inbox.popleft
        return [popleft() for _ in range(take)]

    def ack(self, message: Message) -> bool:
        """Queue the PUBACK for ``message`` (written with the others of this loop turn).

        False when nothing is sent: QoS 0, already acked, or its connection is gone (the broker
        redelivers it on the new one).
        """
        if self._core.ack(message):
            self._schedule_flush()
            return True
        return False

    def pause_reading(self) -> bool:
        """Stop reading the current connection (the broker keeps what it has not sent);
        False when there is none. Mosquitto 2.0 does not keep to our Receive Maximum once
        acks flow, so a consumer bounds its backlog with this, not with flow control alone."""
        link = self._link
        if link is None or link.transport is None or link.transport.is_closing():
            return False
        link.transport.pause_reading()
        return True

    def resume_reading(self) -> None:
        """Read the current connection again (a new connection always reads)."""
        link = self._link
        if link is not None and link.transport is not None and not link.transport.is_closing():
            link.transport.resume_reading()

    def is_current(self, message: Message) -> bool:
        """Whether ``message`` came on the current connection (so its ack will count)."""
        return self._core.is_current(message)

    # -- context manager ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._group is not None or self._closing:
            raise RuntimeError("an MqttSession is entered once")
        loop = self._loop = asyncio.get_running_loop()
        if self._settings.mqtt_tls and self._ssl is None:
            self._ssl = client_ssl_context(self._settings)
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._group = group
        first = self._first_attempt = loop.create_future()
        self._runner = group.create_task(self._run(), name=f"mqtt-session:{self.client_id}")
        try:
            await first
        except BaseException:
            await self._shutdown()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown()

    async def _shutdown(self) -> None:
        self._closing = True
        self._inbox_ready.set()  # wake consumers: they see _closing
        self._wake_connect_waiters(SessionClosed("the session closed before it connected"))
        group = self._group
        try:
            await self._say_goodbye()
        finally:
            if self._runner is not None:
                self._runner.cancel()
            if group is not None:
                self._group = None
                # Not the body's exception: TaskGroup would wrap it in an ExceptionGroup. A
                # crashed child task still surfaces here (as an ExceptionGroup), as it should.
                try:
                    await group.__aexit__(None, None, None)
                finally:
                    self._abandon()

    async def _say_goodbye(self) -> None:
        link = self._link
        data = self._core.close()
        if link is None or link.transport is None:
            return
        if data:
            link.transport.write(data)
        link.close()
        try:
            async with asyncio.timeout(self._close_timeout_s):
                await asyncio.shield(link.lost)
        except TimeoutError:
            link.abort()

    def _abandon(self) -> None:
        pending = self._core.abandon()
        self._connected.clear()
        self._settled.set()
        if not pending:
            return
        abandoned = []
        for record in pending:
            future = record.tag
            if not future.done():
                future.set_exception(
                    PublishAbandoned(f"session closed before the PUBACK for {record.topic!r}")
                )
            abandoned.append(
                AbandonedPublish(
                    topic=record.topic, payload=record.payload, written=record.sent_generation > 0
                )
            )
        self._abandoned = tuple(abandoned)
        log.warning(
            "mqtt_publishes_abandoned",
            client_id=self.client_id,
            count=len(abandoned),
            written=sum(1 for item in abandoned if item.written),
        )

    # -- connection upkeep (task mqtt-session:<id>) -----------------------------------------

    async def _run(self) -> None:
        while not self._closing:
            link: _Link | None = None
            try:
                link = await self._open_link()
                await self._handshake(link)
                self._backoff.reset()
                self._settle_first_attempt()
                await link.lost
            except _REFUSALS as exc:
                self.last_error = exc
                first = self._first_attempt
                if first is not None and not first.done():
                    first.set_exception(exc)
                    return
                log.error("mqtt_connect_refused", client_id=self.client_id, error=str(exc))
            except (ConnectError, ProtocolViolation, OSError, TimeoutError) as exc:
                self.last_error = exc
                if not self._closing:
                    log.warning("mqtt_connect_failed", client_id=self.client_id, error=str(exc))
                self._settle_first_attempt()
            finally:
                if link is not None:
                    self._drop_link(link)
            if self._closing:
                return
            await asyncio.sleep(self._backoff.next_delay())

    def _settle_first_attempt(self) -> None:
        first = self._first_attempt
        if first is not None and not first.done():
            first.set_result(None)

    async def _open_link(self) -> _Link:
        loop = asyncio.get_running_loop()
        settings = self._settings
        host, port = settings.mqtt_host, settings.mqtt_port
        link = _Link(self, loop)
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                await loop.create_connection(
                    lambda: link,
                    host,
                    port,
                    ssl=self._ssl,
                    server_hostname=host if self._ssl is not None else None,
                )
        except ssl.SSLCertVerificationError as exc:
            raise TlsVerificationError(
                f"TLS: the certificate of broker {host}:{port} failed verification against "
                f"{describe_trust(settings)}: {exc.verify_message}"
            ) from exc
        except ssl.SSLError as exc:
            raise ConnectError(f"TLS handshake with broker {host}:{port} failed: {exc}") from exc
        except TimeoutError as exc:
            link.abort()
            raise ConnectError(
                f"broker {host}:{port}: no connection within {self._connect_timeout_s} s"
            ) from exc
        except OSError as exc:
            raise ConnectError(f"cannot reach broker {host}:{port}: {exc}") from exc
        return link

    async def _handshake(self, link: _Link) -> None:
        async with asyncio.timeout(self._connect_timeout_s):
            await link.connack
        connected = link.connected
        assert connected is not None
        if self._core.counters.connects > 1:
            self._reconnects += 1
        log.info(
            "mqtt_connected",
            client_id=self.client_id,
            session_present=connected.session_present,
            receive_maximum=connected.receive_maximum,
            retransmitting=connected.retransmitting,
            generation=self._core.generation,
        )
        assert self._group is not None
        link.keepalive_task = self._group.create_task(
            self._keep_alive(link), name=f"mqtt-keepalive:{self.client_id}"
        )
        if self._options.subscriptions:
            async with asyncio.timeout(self._connect_timeout_s):
                await link.suback
        self._connected.set()
        self._wake_connect_waiters(None)

    def _wake_connect_waiters(self, error: Exception | None) -> None:
        for waiter in self._connect_waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    def _drop_link(self, link: _Link) -> None:
        if link.keepalive_task is not None:
            link.keepalive_task.cancel()
        if link is self._link:
            self._forget_link(link)
        link.abort()

    def _forget_link(self, link: _Link) -> None:
        self._link = None
        self._core.connection_lost()
        self._connected.clear()
        if link.connected is not None:
            self._connection_losses += 1

    async def _keep_alive(self, link: _Link) -> None:
        loop = asyncio.get_running_loop()
        while link is self._link:
            delay = self._core.poll_keepalive(loop.time())
            if delay is None:
                log.warning("mqtt_keepalive_timeout", client_id=self.client_id)
                link.abort()
                return
            self._flush()
            await asyncio.sleep(delay)

    # -- protocol callbacks -------------------------------------------------------------------

    def _on_link_made(self, link: _Link) -> None:
        loop = asyncio.get_running_loop()
        if self._closing or link.transport is None:
            link.abort()
            return
        self._link = link
        self._core.connection_made(loop.time())
        link.transport.write(self._core.data_to_send(loop.time()))

    def _on_link_lost(self, link: _Link, exc: Exception | None) -> None:
        if link is self._link:
            self._forget_link(link)
            if not self._closing:
                log.warning(
                    "mqtt_connection_lost",
                    client_id=self.client_id,
                    error=str(exc) if exc else None,
                )
        lost = ConnectError("connection lost during the MQTT handshake")
        for future in (link.connack, link.suback):
            if not future.done():
                future.set_exception(lost)
        if not link.lost.done():
            link.lost.set_result(None)

    def _on_data(self, link: _Link, data: bytes) -> None:
        if link is not self._link:
            return
        core = self._core
        events = core.receive_data(data)
        for event in events:
            self._dispatch(link, event)
        if core.inbox:
            self._inbox_ready.set()
        self._schedule_flush()

    def _dispatch(self, link: _Link, event: Event[PublishFuture]) -> None:
        if isinstance(event, PublishAcknowledged):
            future = event.tag
            if not future.done():  # the caller may have stopped waiting (timeout, cancel)
                if event.reason_code < 0x80:
                    future.set_result(event.reason_code)
                else:
                    future.set_exception(
                        PublishRefused(event.topic, event.reason_code, event.reason)
                    )
            if not self._core.in_flight and not self._core.waiting:
                self._settled.set()
        elif isinstance(event, Connected):
            link.connected = event
            if not link.connack.done():
                link.connack.set_result(None)
        elif isinstance(event, ConnectionRefused):
            if not link.connack.done():
                link.connack.set_exception(
                    ConnectRefused(event.reason_code, event.reason, event.detail)
                )
        elif isinstance(event, Subscribed):
            if not link.suback.done():
                link.suback.set_result(None)
        elif isinstance(event, SubscriptionRefused):
            if not link.suback.done():
                link.suback.set_exception(SubscribeRefused(event.refused))
            link.close()
        elif isinstance(event, BrokerDisconnected):
            log.warning(
                "mqtt_broker_disconnected",
                client_id=self.client_id,
                reason=event.reason,
                detail=event.detail,
            )
            if not link.connack.done():
                link.connack.set_exception(ConnectError(f"broker disconnected: {event.reason}"))
            link.close()
        elif isinstance(event, ProtocolFailure):
            log.error("mqtt_protocol_violation", client_id=self.client_id, error=str(event.error))
            self._flush()  # the DISCONNECT naming the violation
            link.close()

    # -- writing ------------------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self._flush_pending and self._loop is not None:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_pending = False
        link = self._link
        if link is None or link.transport is None or link.transport.is_closing():
            return
        assert self._loop is not None
        data = self._core.data_to_send(self._loop.time())
        if data:
            link.transport.write(data)
        if not self._core.in_flight and not self._core.waiting:
            self._settled.set()


class _MessageStream:
    """``async for message in session.messages()``: pops the inbox, waits when it is empty."""

    __slots__ = ("_session",)

    def __init__(self, session: MqttSession) -> None:
        self._session = session

    def __aiter__(self) -> _MessageStream:
        return self

    async def __anext__(self) -> Message:
        session = self._session
        inbox = session._core.inbox
        while not inbox:
            if session._closing:
                raise StopAsyncIteration
            session._inbox_ready.clear()
            await session._inbox_ready.wait()
        if session._closing:
            raise StopAsyncIteration
        return inbox.popleft()
