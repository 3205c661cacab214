"""MQTT v5 intake: one paho client, its network thread and its reconnects, for every service.

Persistent (the ingestor, the alerts workers): a session the broker keeps, in a shared
subscription, whose messages are acknowledged by hand after the work they caused is committed;
messages land in an in-memory inbox that the service drains. Non-persistent (the API's live
feed): a clean session that ends with the connection, messages acknowledged on receipt and
handed to a callback in the network thread, since a live view wants the newest data, not a
replay of what it missed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from prometheus_client import Counter, Gauge

from telemetry.backoff import Backoff
from telemetry.mqtt_client import KEEPALIVE_S, Handlers, new_client
from telemetry.settings import Settings

log = structlog.get_logger("telemetry.mqtt_intake")


@dataclass(slots=True)
class Inbound:
    """One received message, with what is needed to acknowledge it later."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    received: float  # wall clock (UTC epoch seconds) when it arrived
    arrived: float  # monotonic, for batch age
    generation: int  # which connection delivered it; acks never cross connections

    @property
    def received_at(self) -> datetime:
        """Arrival time as an aware datetime."""
        return datetime.fromtimestamp(self.received, UTC)


@dataclass(frozen=True, slots=True)
class IntakeOptions:
    """What a service's intake subscribes to and how the broker keeps its session."""

    client_id: str
    topic_filter: str | tuple[str, ...]  # one filter, or several subscribed together
    session_expiry_s: int = 0
    receive_maximum: int = 65535
    wake_at: int = 1  # inbox length that wakes the consumer early
    thread_name: str = "mqtt-intake"
    # False: clean start, no session after the connection, acks sent by paho on receipt.
    persistent: bool = True
    qos: int = 1  # subscription QoS

    @property
    def filters(self) -> tuple[str, ...]:
        """The topic filters as a tuple."""
        return (self.topic_filter,) if isinstance(self.topic_filter, str) else self.topic_filter


class MqttIntake:
    """Owns the paho client and its network thread; use as a context manager.

    With ``handler`` every message is passed to it in the network thread (keep it short)
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
        self.generation = 0
        self._connects = connects
        self._connected = connected
        self._clock = clock
        self._handler = handler
        self._accepting = True
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sub_mid: int | None = None
        self._was_up = False  # subscribed during the current connection
        handlers = Handlers(
            connected=self._on_connect,
            disconnected=self._on_disconnect,
            subscribed=self._on_subscribe,
            message=self._on_message,
        )
        client = new_client(
            settings,
            options.client_id,
            handlers,
            reconnect_on_failure=False,
            manual_ack=options.persistent,
        )
        self.client = client

    @property
    def client_id(self) -> str:
        """The stable MQTT client id (the broker keeps the session under it)."""
        return self.options.client_id

    @property
    def topic_filter(self) -> str | tuple[str, ...]:
        """The (shared) subscription this process joins."""
        return self.options.topic_filter

    def start(self) -> None:
        """Start the network thread; it connects, and reconnects, until ``close``."""
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
        self.client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.client._reset_sockets()  # paho leaves its socketpair open otherwise

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
        return taken

    def ack(self, messages: list[Inbound]) -> int:
        """Acknowledge handled messages delivered on the current connection; returns how many."""
        generation = self.generation
        sent = 0
        for message in messages:
            if message.qos and message.generation == generation:
                self.client.ack(message.mid, message.qos)
                sent += 1
        return sent

    # -- network thread ---------------------------------------------------------------------

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self.options.persistent:
            # Without a session expiry interval an MQTT v5 session dies with the connection.
            props.SessionExpiryInterval = self.options.session_expiry_s
        props.ReceiveMaximum = self.options.receive_maximum
        return props

    def _run(self) -> None:
        backoff = Backoff(base=0.2, cap=30.0)
        while not self._stopping.is_set():
            try:
                self.client.connect(
                    self.settings.mqtt_host,
                    self.settings.mqtt_port,
                    keepalive=KEEPALIVE_S,
                    clean_start=not self.options.persistent,
                    properties=self._connect_properties(),
                )
            except OSError as exc:
                delay = backoff.next_delay()
                log.warning("broker_unreachable", error=str(exc), retry_in_s=round(delay, 2))
                self._stopping.wait(delay)
                continue
            self.client.loop_forever(retry_first_connection=False)
            if self._stopping.is_set():
                break
            if self._was_up:
                backoff.reset()
            self._was_up = False
            delay = backoff.next_delay()
            log.warning("broker_connection_lost", retry_in_s=round(delay, 2))
            self._stopping.wait(delay)

    def _on_connect(self, reason_code: ReasonCode, session_present: bool) -> None:
        if reason_code.is_failure:
            log.error("broker_refused_connection", reason=str(reason_code))
            self.client.disconnect()
            return
        self.generation += 1
        if self._connects is not None:
            self._connects.inc()
        log.info(
            "broker_connected",
            client_id=self.client_id,
            session_present=session_present,
            generation=self.generation,
        )
        options = SubscribeOptions(qos=self.options.qos)
        _, self._sub_mid = self.client.subscribe([(f, options) for f in self.options.filters])

    def _on_subscribe(self, mid: int, reason_codes: list[ReasonCode]) -> None:
        if mid != self._sub_mid:
            return
        if any(rc.is_failure for rc in reason_codes):
            log.error(
                "subscription_refused",
                filter=self.topic_filter,
                reasons=[str(rc) for rc in reason_codes],
            )
            return
        self._was_up = True
        self.subscribed.set()
        if self._connected is not None:
            self._connected.set(1)
        log.info("subscribed", filter=self.topic_filter)

    def _on_disconnect(self, reason_code: ReasonCode) -> None:
        self.subscribed.clear()
        if self._connected is not None:
            self._connected.set(0)
        if not self._stopping.is_set():
            log.warning("broker_disconnected", reason=str(reason_code))

    def _on_message(self, message: mqtt.MQTTMessage) -> None:
        if not self._accepting:
            return  # not acked: the broker keeps it for this session and redelivers it
        inbound = Inbound(
            message.mid,
            message.qos,
            message.topic,
            bytes(message.payload),
            self._clock(),
            time.monotonic(),
            self.generation,
        )
        if self._handler is not None:
            self._handler(inbound)
            return
        self.inbox.append(inbound)
        if len(self.inbox) >= self.options.wake_at:
            self.wake.set()
