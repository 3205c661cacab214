"""MQTT v5 intake for every service: one :class:`MqttSession` in its own thread and event loop.

Persistent (the ingestor, the alerts workers): a session the broker keeps, in a shared
subscription, whose messages are acknowledged by hand after the work they caused is committed;
messages land in an in-memory inbox that the service's worker thread drains. The broker never
has more than Receive Maximum messages unacknowledged, so the inbox never holds more either:
flow control, not buffering. Non-persistent (the API's live feed): a clean session that ends
with the connection, messages acknowledged on receipt and handed to a callback in the intake's
thread, since a live view wants the newest data, not a replay of what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import structlog
from prometheus_client import Counter, Gauge

from telemetry.backoff import Backoff
from telemetry.mqtt_session.client import MqttSession
from telemetry.mqtt_session.errors import (
    ConnectRefused,
    SessionClosed,
    SubscribeRefused,
    TlsVerificationError,
)
from telemetry.mqtt_session.events import Message
from telemetry.mqtt_session.tls import client_ssl_context
from telemetry.settings import Settings

log = structlog.get_logger("telemetry.mqtt_intake")

KEEPALIVE_S: Final = 30
# How often the intake looks at the session's connection flag (it has no "lost" event); a
# reconnect in between is still seen, by its new generation.
WATCH_S: Final = 0.1
# What MqttSession raises from its first connection attempt instead of retrying by itself.
_REFUSALS: Final = (ConnectRefused, SubscribeRefused, TlsVerificationError)


# Not frozen: one is built per message on the hot path, and frozen dataclasses pay for every
# field in __init__.
@dataclass(slots=True)
class Inbound:
    """One received message, with what is needed to acknowledge it later."""

    mid: int  # the broker's packet id (0 for QoS 0)
    qos: int
    topic: str
    payload: bytes
    received: float  # wall clock (UTC epoch seconds) when it arrived
    arrived: float  # monotonic, for batch age
    generation: int  # which connection delivered it; acks never cross connections
    received_at: datetime  # ``received`` as an aware datetime (shared by one socket read)
    message: Message | None = None  # the session's record, which ``ack`` hands back


@dataclass(frozen=True, slots=True)
class IntakeOptions:
    """What a service's intake subscribes to and how the broker keeps its session."""

    client_id: str
    topic_filter: str | tuple[str, ...]  # one filter, or several subscribed together
    session_expiry_s: int = 0
    receive_maximum: int = 65535
    wake_at: int = 1  # inbox length that wakes the consumer early
    thread_name: str = "mqtt-intake"
    # False: clean start, no session after the connection, messages acked on receipt.
    persistent: bool = True
    qos: int = 1  # subscription QoS

    @property
    def filters(self) -> tuple[str, ...]:
        """The topic filters as a tuple."""
        return (self.topic_filter,) if isinstance(self.topic_filter, str) else self.topic_filter


class MqttIntake:
    """Owns the MQTT session, its thread and its event loop; use as a context manager.

    With ``handler`` every message is passed to it in the intake's thread (keep it short)
    instead of landing in the inbox.
    """

    def __init__(
        self,
        settings: Settings,
        options: IntakeOptions,
        *,
        connects: Counter | None = None,
        connected: Gauge | None = None,
        clock: Callable[[], float] = time.time,
        handler: Callable[[Inbound], None] | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.inbox: deque[Inbound] = deque()
        self.wake = threading.Event()
        self.subscribed = threading.Event()
        self._connects = connects
        self._connected = connected
        self._clock = clock
        self._handler = handler
        self._accepting = True
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._session: MqttSession | None = None
        # Generations of the sessions before this one: a refused first attempt makes a new
        # MqttSession, whose own count starts again at 1.
        self._generation_base = 0
        # Back-pressure when the broker sends past our Receive Maximum (Mosquitto 2.0.11 does,
        # after a burst of PUBACKs): the socket is not read while the inbox is this full.
        self._high_water = options.receive_maximum
        self._paused = False
        self._resume_pending = False
        # An unreadable CA, certificate or key file raises TlsConfigError here, at start-up.
        self._ssl: ssl.SSLContext | None = (
            client_ssl_context(settings) if settings.mqtt_tls else None
        )

    @property
    def client_id(self) -> str:
        """The stable MQTT client id (the broker keeps the session under it)."""
        return self.options.client_id

    @property
    def topic_filter(self) -> str | tuple[str, ...]:
        """The (shared) subscription this process joins."""
        return self.options.topic_filter

    @property
    def generation(self) -> int:
        """Number of the current (or last) connection; messages carry the one they came on."""
        session = self._session
        return self._generation_base + (session.generation if session is not None else 0)

    def start(self) -> None:
        """Start the intake's thread; it connects, and reconnects, until ``close``."""
        self._loop = asyncio.new_event_loop()
        self._stop_event = asyncio.Event()
        self._thread = threading.Thread(
            target=self._run, name=self.options.thread_name, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> MqttIntake:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stop_accepting(self) -> None:
        """Leave further deliveries unacked in the broker's session (they are redelivered)."""
        self._accepting = False
        self.wake.set()

    def close(self) -> None:
        """Send pending acks, disconnect cleanly (the session stays) and join the thread."""
        self._accepting = False
        self._stopping.set()
        loop, stop = self._loop, self._stop_event
        if loop is not None and stop is not None:
            # After every ack handed over before: call_soon_threadsafe keeps their order.
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def take(self, limit: int) -> list[Inbound]:
        """Up to ``limit`` messages of the current connection, oldest first."""
        inbox = self.inbox
        generation = self.generation
        taken = []
        for _ in range(min(limit, len(inbox))):
            message = inbox.popleft()
            # A message from a previous connection is redelivered on this one: skip the copy.
            if message.generation == generation:
                taken.append(message)
        if self._paused and not self._resume_pending:
            loop = self._loop
            if loop is not None and len(inbox) < self._high_water // 2:
                self._resume_pending = True
                with contextlib.suppress(RuntimeError):  # the loop has ended
                    loop.call_soon_threadsafe(self._resume_reading)
        return taken

    def ack(self, messages: list[Inbound]) -> int:
        """Acknowledge handled messages delivered on the current connection; returns how many.

        The acks go to the intake's loop in one hand-over, and out in one socket write.
        """
        generation = self.generation
        acks = [m for m in messages if m.qos and m.generation == generation]
        loop = self._loop
        if not acks or loop is None:
            return 0
        try:
            loop.call_soon_threadsafe(self._send_acks, acks)
        except RuntimeError:  # the loop has ended: the broker redelivers them
            return 0
        return len(acks)

    # -- the intake's thread and loop ----------------------------------------------------------

    def _run(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _new_session(self) -> MqttSession:
        options = self.options
        return MqttSession(
            self.settings,
            client_id=options.client_id,
            clean_start=not options.persistent,
            # Without a session expiry interval an MQTT v5 session dies with the connection.
            session_expiry_s=options.session_expiry_s if options.persistent else 0,
            receive_maximum=options.receive_maximum,
            keepalive_s=KEEPALIVE_S,
            subscriptions=[(f, options.qos) for f in options.filters],
            ssl_context=self._ssl,
        )

    async def _main(self) -> None:
        stop = self._stop_event
        assert stop is not None
        backoff = Backoff(base=0.2, cap=30.0)
        while not self._stopping.is_set():
            session = self._new_session()
            try:
                async with session:
                    self._session = session
                    await self._serve(session, stop)
                return
            except _REFUSALS as exc:
                # Later refusals are retried inside the session; the first one lands here.
                log.error("broker_refused_connection", client_id=self.client_id, error=str(exc))
            finally:
                self._session = None
                self._generation_base += session.generation
                self._mark_down(lost=False)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff.next_delay()):
                    await stop.wait()

    async def _serve(self, session: MqttSession, stop: asyncio.Event) -> None:
        tasks = [
            asyncio.create_task(self._receive(session), name=f"{self.options.thread_name}-rx"),
            asyncio.create_task(self._watch(session), name=f"{self.options.thread_name}-watch"),
        ]
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (*tasks, stopped):
                task.cancel()
            results = await asyncio.gather(*tasks, stopped, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                raise result

    async def _receive(self, session: MqttSession) -> None:
        limit = 65535
        while True:
            batch = await session.receive_batch(limit)
            if not batch:
                return  # the session closed
            self._deliver(session, batch)

    def _deliver(self, session: MqttSession, batch: list[Message]) -> None:
        if not self._accepting:
            return  # not acked: the broker keeps them for this session and redelivers them
        received = self._clock()
        received_at = datetime.fromtimestamp(received, UTC)
        arrived = time.monotonic()
        base = self._generation_base
        inbound: list[Inbound] = []
        append = inbound.append
        for m in batch:
            packet = m.packet
            packet_id = packet.packet_id
            # The session refuses QoS 2, so a packet id means QoS 1 (cheaper than the enum).
            append(
                Inbound(
                    packet_id or 0,
                    0 if packet_id is None else 1,
                    packet.topic,
                    packet.payload,
                    received,
                    arrived,
                    base + m.generation,
                    received_at,
                    m,
                )
            )
        handler = self._handler
        if handler is not None:
            for item in inbound:
                handler(item)
            if not self.options.persistent:
                for m in batch:
                    session.ack(m)
            return
        inbox = self.inbox
        inbox.extend(inbound)
        if len(inbox) >= self.options.wake_at:
            self.wake.set()
        if len(inbox) >= self._high_water and not self._paused:
            self._paused = session.pause_reading()
            if self._paused:
                log.debug("intake_paused", inbox=len(inbox), high_water=self._high_water)

    def _resume_reading(self) -> None:
        self._resume_pending = False
        self._paused = False
        if self._session is not None:
            self._session.resume_reading()

    def _send_acks(self, acks: list[Inbound]) -> None:
        session = self._session
        if session is None:
            return  # between sessions: the broker redelivers them
        generation = self.generation
        ack = session.ack
        for item in acks:
            if item.generation == generation and item.message is not None:
                ack(item.message)

    async def _watch(self, session: MqttSession) -> None:
        """Mirror the session's connection into ``subscribed``, the metrics and the logs."""
        while True:
            try:
                await session.wait_connected()
            except SessionClosed:
                return
            generation = self.generation
            self._mark_up(generation)
            # Polled (ASYNC110): this waits for the event to be cleared or the generation to
            # move on, and asyncio.Event can only be awaited until it is set.
            while session.connected.is_set() and self.generation == generation:  # noqa: ASYNC110
                await asyncio.sleep(WATCH_S)
            self._mark_down(lost=True)

    def _mark_up(self, generation: int) -> None:
        if self._connects is not None:
            self._connects.inc()
        log.info("broker_connected", client_id=self.client_id, generation=generation)
        self.subscribed.set()
        if self._connected is not None:
            self._connected.set(1)
        log.info("subscribed", filter=self.topic_filter)

    def _mark_down(self, *, lost: bool) -> None:
        was_up = self.subscribed.is_set()
        self.subscribed.clear()
        if self._connected is not None:
            self._connected.set(0)
        if lost and was_up and not self._stopping.is_set():
            log.warning("broker_connection_lost", client_id=self.client_id)
