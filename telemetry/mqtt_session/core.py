"""The sans-I/O MQTT v5 session: bytes in, events and bytes out, no sockets and no asyncio.

One :class:`SessionCore` lives as long as the client; connections come and go under it
(``connection_made`` / ``connection_lost``). It owns what must survive a reconnect: packet
ids, QoS 1 publishes awaiting PUBACK (retransmitted with DUP=1 after the next CONNACK),
publishes waiting for the broker's Receive Maximum quota, and the inbox of received
messages. What belongs to one connection (acks not yet written, the set of incoming packet
ids not yet acked, the quota, keepalive timers) is dropped with it: the broker redelivers
whatever was not acked.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

import mqtt5

from telemetry.mqtt_session import framing
from telemetry.mqtt_session.errors import ProtocolViolation, reason_name
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

TagT = TypeVar("TagT")

MAX_PACKET_ID: Final = 65535


def _code_names(codes: type) -> dict[int, str]:
    # The codec's enums are pyo3 classes, not Python enums (not iterable, not hashable), even
    # though its stubs declare IntEnum: read their upper-case attributes.
    return {int(getattr(codes, name)): name for name in dir(codes) if name.isupper()}


_CONNACK_NAMES: Final = _code_names(mqtt5.ConnAckReasonCode)
_PUBACK_NAMES: Final = _code_names(mqtt5.PubAckReasonCode)
_SUBACK_NAMES: Final = _code_names(mqtt5.SubAckReasonCode)
_DISCONNECT_NAMES: Final = _code_names(mqtt5.DisconnectReasonCode)


class State(enum.Enum):
    """Where the current connection stands."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"  # CONNECT written, no CONNACK yet
    CONNECTED = "connected"  # CONNACK success: publishes and acks flow
    REFUSED = "refused"  # CONNACK failure
    BROKEN = "broken"  # protocol violation or broker DISCONNECT: the connection must go
    CLOSED = "closed"  # DISCONNECT written by us: the session is over


@dataclass(kw_only=True, frozen=True, slots=True)
class SessionOptions:
    """What CONNECT asks for and what is subscribed after every CONNACK."""

    client_id: str
    clean_start: bool = False
    session_expiry_s: int = 0
    receive_maximum: int = 65535
    keepalive_s: int = 30
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    subscriptions: tuple[tuple[str, int], ...] = ()
    max_packet_size: int | None = None  # what we accept from the broker (None: no limit)

    def __post_init__(self) -> None:
        if not 1 <= self.receive_maximum <= MAX_PACKET_ID:
            raise ValueError("receive_maximum must be 1..65535")
        if not 0 <= self.keepalive_s <= 65535:
            raise ValueError("keepalive_s must be 0..65535")
        if not 0 <= self.session_expiry_s <= 0xFFFFFFFF:
            raise ValueError("session_expiry_s must be 0..4294967295")
        for pattern, qos in self.subscriptions:
            if qos not in (0, 1):
                raise ValueError(f"subscription {pattern!r}: max QoS must be 0 or 1")


# -- state ----------------------------------------------------------------------------------


class PacketIds:
    """16-bit packet identifiers for our PUBLISH and SUBSCRIBE; never one still in use."""

    __slots__ = ("_in_use", "_next")

    def __init__(self) -> None:
        self._in_use: set[int] = set()
        self._next = 1

    def __len__(self) -> int:
        return len(self._in_use)

    def __contains__(self, packet_id: object) -> bool:
        return packet_id in self._in_use

    def allocate(self) -> int | None:
        """A free id (cycling upwards, so a just-freed id is not reused at once), or None."""
        if len(self._in_use) >= MAX_PACKET_ID:
            return None
        candidate = self._next
        while candidate in self._in_use:
            candidate = candidate % MAX_PACKET_ID + 1
        self._in_use.add(candidate)
        self._next = candidate % MAX_PACKET_ID + 1
        return candidate

    def release(self, packet_id: int) -> None:
        """Make ``packet_id`` free again."""
        self._in_use.discard(packet_id)


@dataclass(slots=True)
class Outgoing(Generic[TagT]):
    """A publish of ours, from ``publish`` until PUBACK (mutable: id and send bookkeeping)."""

    topic: str
    payload: bytes
    qos: int
    template: bytes  # encoded once; the packet id is stamped in when it is sent
    id_offset: int | None
    tag: TagT
    packet_id: int | None = None
    sent_generation: int = 0  # the connection it was last written on (0: never)


@dataclass(slots=True)
class Counters:
    """Running totals for metrics (mutable, owned by the core)."""

    messages_received: int = 0
    acks_sent: int = 0
    acks_dropped: int = 0  # for a lost connection, or a second ack of one message
    publishes_sent: int = 0
    publishes_acknowledged: int = 0
    publishes_refused: int = 0
    retransmissions: int = 0
    connects: int = 0
    protocol_violations: int = 0
    unknown_acks: int = 0
    receive_maximum_overruns: int = 0  # broker deliveries beyond our Receive Maximum


@dataclass(slots=True)
class _Connection:
    """What lives and dies with one network connection."""

    generation: int
    state: State = State.CONNECTING
    out: list[bytes] = field(default_factory=list)
    buffer: bytes = b""
    unacked: set[int] = field(default_factory=set)  # broker's QoS 1 ids delivered, not acked
    quota: int = 0
    resend: deque[int] = field(default_factory=deque)  # in-flight ids to write again
    subscribe_id: int | None = None
    keepalive_s: int = 0
    last_sent: float = 0.0
    ping_sent_at: float | None = None


class SessionCore(Generic[TagT]):
    """MQTT v5 client session state machine; ``TagT`` is what the caller attaches to a publish."""

    def __init__(self, options: SessionOptions) -> None:
        self.options = options
        self.counters = Counters()
        self.generation = 0
        self.inbox: deque[Message] = deque()
        self._ids = PacketIds()
        self._in_flight: dict[int, Outgoing[TagT]] = {}  # by packet id, in first-send order
        self._waiting: deque[Outgoing[TagT]] = deque()  # not yet written: no quota or offline
        self._conn: _Connection | None = None
        self._closed = False

    # -- introspection ----------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current connection's state."""
        if self._closed:
            return State.CLOSED
        return self._conn.state if self._conn is not None else State.DISCONNECTED

    @property
    def in_flight(self) -> int:
        """QoS 1 publishes written and not yet PUBACKed (including ones to retransmit)."""
        return len(self._in_flight)

    @property
    def waiting(self) -> int:
        """Publishes not yet written (offline, or no send quota left)."""
        return len(self._waiting)

    @property
    def unacked_incoming(self) -> int:
        """QoS 1 messages delivered on this connection and not yet acked."""
        return len(self._conn.unacked) if self._conn is not None else 0

    @property
    def send_quota(self) -> int:
        """How many more QoS 1 publishes the broker's Receive Maximum allows right now."""
        return self._conn.quota if self._conn is not None else 0

    def in_flight_ids(self) -> frozenset[int]:
        """Packet ids of our publishes awaiting PUBACK."""
        return frozenset(self._in_flight)

    def is_current(self, message: Message) -> bool:
        """Whether acking ``message`` would reach the broker (its connection is this one)."""
        conn = self._conn
        return conn is not None and message.generation == conn.generation

    # -- connection lifecycle ---------------------------------------------------------------

    def connection_made(self, now: float) -> None:
        """A new network connection: CONNECT is queued (call ``data_to_send``)."""
        if self._closed:
            raise ProtocolViolation("session is closed")
        self.generation += 1
        opts = self.options
        connect = mqtt5.ConnectPacket(
            opts.client_id,
            username=opts.username,
            password=opts.password.encode() if opts.password is not None else None,
            clean_start=opts.clean_start,
            keep_alive=opts.keepalive_s,
            session_expiry_interval=opts.session_expiry_s,
            receive_max=opts.receive_maximum,
            max_packet_size=opts.max_packet_size,
        )
        self._conn = _Connection(generation=self.generation, last_sent=now)
        self._conn.out.append(connect.write())

    def connection_lost(self) -> None:
        """The connection is gone: drop its acks and timers; in-flight publishes stay."""
        self._conn = None

    def close(self) -> bytes:
        """Queued acks and a normal DISCONNECT (the broker keeps the session); the session ends."""
        conn = self._conn
        data = b""
        if conn is not None and conn.state is State.CONNECTED:
            conn.out.append(mqtt5.DisconnectPacket().write())
            data = b"".join(conn.out)
            conn.out.clear()
        self._closed = True
        return data

    def abandon(self) -> list[Outgoing[TagT]]:
        """Every publish not yet PUBACKed (in flight, then waiting); the core forgets them."""
        pending = [*self._in_flight.values(), *self._waiting]
        for packet_id in self._in_flight:
            self._ids.release(packet_id)
        self._in_flight.clear()
        self._waiting.clear()
        return pending

    # -- outgoing ---------------------------------------------------------------------------

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, tag: TagT
    ) -> Outgoing[TagT]:
        """Queue a publish; it is written by ``data_to_send`` once connected and within quota.

        Raises ValueError for a topic or QoS the protocol forbids.
        """
        if self._closed:
            raise ProtocolViolation("session is closed")
        template, id_offset = framing.publish_template(topic, payload, qos=qos, retain=retain)
        outgoing = Outgoing(
            topic=topic, payload=payload, qos=qos, template=template, id_offset=id_offset, tag=tag
        )
        self._waiting.append(outgoing)
        return outgoing

    def ack(self, message: Message) -> bool:
        """Queue a PUBACK for ``message``; False (nothing queued) when it cannot or need not be.

        Dropped: QoS 0, a message of a lost connection (the broker redelivers it), or one
        already acked.
        """
        conn = self._conn
        packet_id = message.packet.packet_id
        if packet_id is None:
            return False
        if (
            conn is None
            or conn.state is not State.CONNECTED
            or message.generation != conn.generation
            or packet_id not in conn.unacked
        ):
            self.counters.acks_dropped += 1
            return False
        conn.unacked.remove(packet_id)
        conn.out.append(framing.encode_puback(packet_id))
        self.counters.acks_sent += 1
        return True

    def data_to_send(self, now: float) -> bytes:
        """Everything to write now, joined: CONNECT, SUBSCRIBE, resends, publishes, acks, pings."""
        conn = self._conn
        if conn is None:
            return b""
        if conn.state is State.CONNECTED:
            self._release_publishes(conn)
        if not conn.out:
            return b""
        data = b"".join(conn.out) if len(conn.out) > 1 else conn.out[0]
        conn.out.clear()
        conn.last_sent = now
        return data

    def _release_publishes(self, conn: _Connection) -> None:
        out = conn.out
        while conn.resend and conn.quota > 0:
            record = self._in_flight.get(conn.resend.popleft())
            if record is None or record.packet_id is None or record.id_offset is None:
                continue
            out.append(
                framing.stamp_publish(record.template, record.id_offset, record.packet_id, dup=True)
            )
            record.sent_generation = conn.generation
            conn.quota -= 1
            self.counters.retransmissions += 1
        if conn.resend:
            return  # keep the original order: nothing new before every resend is out
        waiting = self._waiting
        # One id stays free for the SUBSCRIBE of the next connection.
        while waiting:
            record = waiting[0]
            if record.id_offset is None:
                waiting.popleft()
                out.append(record.template)
                self.counters.publishes_sent += 1
                continue
            if conn.quota <= 0 or len(self._ids) >= MAX_PACKET_ID - 1:
                break
            packet_id = self._ids.allocate()
            if packet_id is None:
                break
            waiting.popleft()
            record.packet_id = packet_id
            record.sent_generation = conn.generation
            self._in_flight[packet_id] = record
            out.append(
                framing.stamp_publish(record.template, record.id_offset, packet_id, dup=False)
            )
            conn.quota -= 1
            self.counters.publishes_sent += 1

    def poll_keepalive(self, now: float) -> float | None:
        """Seconds until the next call, queueing PINGREQ when idle; None: the connection is dead.

        PINGREQ goes out when nothing was written for keepalive seconds; with no PINGRESP within
        keepalive seconds after it, the connection is considered lost.
        """
        conn = self._conn
        if conn is None or conn.state is not State.CONNECTED or conn.keepalive_s == 0:
            return 1.0
        keepalive = float(conn.keepalive_s)
        if conn.ping_sent_at is not None:
            overdue = conn.ping_sent_at + keepalive - now
            return None if overdue <= 0 else overdue
        idle = now - conn.last_sent
        if idle >= keepalive:
            conn.out.append(framing.PINGREQ)
            conn.ping_sent_at = now
            return keepalive
        return keepalive - idle

    # -- incoming ---------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Event[TagT]]:
        """Feed bytes from the network; messages go to ``inbox``, other happenings are returned."""
        conn = self._conn
        if conn is None or conn.state in (State.BROKEN, State.REFUSED, State.CLOSED):
            return []
        # A partial packet from the last read is rare and small: join it, else parse in place.
        buffer = conn.buffer + data if conn.buffer else data
        packets, used, violation = framing.read_packets(buffer, self.options.max_packet_size)
        conn.buffer = buffer[used:] if used < len(buffer) else b""
        events: list[Event[TagT]] = []
        handle_publish = self._on_publish
        for packet in packets:
            if type(packet) is mqtt5.PublishPacket:
                violation = handle_publish(conn, packet)
            else:
                violation = self._on_control(conn, packet, events)
            if violation is not None:
                break
        if violation is not None:
            self._fail(conn, violation, events)
        return events

    def _fail(
        self, conn: _Connection, violation: ProtocolViolation, events: list[Event[TagT]]
    ) -> None:
        self.counters.protocol_violations += 1
        if conn.state is State.CONNECTED:
            reason = mqtt5.DisconnectReasonCode(violation.reason_code)
            conn.out.append(mqtt5.DisconnectPacket(reason_code=reason).write())
        conn.state = State.BROKEN
        conn.buffer = b""
        events.append(ProtocolFailure(error=violation))

    def _on_publish(
        self, conn: _Connection, packet: mqtt5.PublishPacket
    ) -> ProtocolViolation | None:
        if conn.state is not State.CONNECTED:
            return ProtocolViolation("PUBLISH before CONNACK")
        qos = packet.qos
        if qos == mqtt5.QoS.AT_LEAST_ONCE:
            packet_id = packet.packet_id
            if not packet_id:
                return ProtocolViolation("QoS 1 PUBLISH without a packet id")
            unacked = conn.unacked
            if packet_id not in unacked:
                if len(unacked) >= self.options.receive_maximum:
                    # MQTT 5 (4.9) says disconnect with 0x93, but Mosquitto 2.0.11 sends one
                    # more than Receive Maximum after a burst of PUBACKs: dropping the link for
                    # that would cost redeliveries (or, in a clean session, the messages).
                    self.counters.receive_maximum_overruns += 1
                unacked.add(packet_id)
        elif qos != mqtt5.QoS.AT_MOST_ONCE:
            return ProtocolViolation("QoS 2 PUBLISH on a QoS 1 subscription")
        self.inbox.append(Message(packet, conn.generation))
        self.counters.messages_received += 1
        return None

    def _on_control(
        self, conn: _Connection, packet: mqtt5.Packet, events: list[Event[TagT]]
    ) -> ProtocolViolation | None:
        if isinstance(packet, mqtt5.PubAckPacket):
            if conn.state is not State.CONNECTED:
                return ProtocolViolation("PUBACK before CONNACK")
            self._on_puback(conn, packet, events)
        elif isinstance(packet, mqtt5.PingRespPacket):
            conn.ping_sent_at = None
        elif isinstance(packet, mqtt5.ConnAckPacket):
            return self._on_connack(conn, packet, events)
        elif isinstance(packet, mqtt5.SubAckPacket):
            self._on_suback(conn, packet, events)
        elif isinstance(packet, mqtt5.DisconnectPacket):
            code = int(packet.reason_code)
            conn.state = State.BROKEN
            events.append(
                BrokerDisconnected(
                    reason_code=code,
                    reason=reason_name(code, _DISCONNECT_NAMES),
                    detail=packet.reason_str,
                )
            )
        else:
            return ProtocolViolation(f"unexpected {type(packet).__name__} from the broker")
        return None

    def _on_connack(
        self, conn: _Connection, packet: mqtt5.ConnAckPacket, events: list[Event[TagT]]
    ) -> ProtocolViolation | None:
        if conn.state is not State.CONNECTING:
            return ProtocolViolation("second CONNACK")
        code = int(packet.reason_code)
        if code >= 0x80:
            conn.state = State.REFUSED
            events.append(
                ConnectionRefused(
                    reason_code=code,
                    reason=reason_name(code, _CONNACK_NAMES),
                    detail=packet.reason_str,
                )
            )
            return None
        self.counters.connects += 1
        conn.state = State.CONNECTED
        conn.quota = max(1, min(packet.receive_max, MAX_PACKET_ID))
        server_keepalive = packet.server_keep_alive
        conn.keepalive_s = (
            self.options.keepalive_s if server_keepalive is None else server_keepalive
        )
        # MQTT 5, 4.4: resend every unacknowledged PUBLISH with its original id. Also when the
        # broker lost the session (at-least-once: a copy is better than a loss).
        conn.resend.extend(self._in_flight)
        subscriptions = self.options.subscriptions
        if subscriptions:
            conn.subscribe_id = self._ids.allocate()
            assert conn.subscribe_id is not None  # one id is always kept free for it
            filters = [
                mqtt5.TopicFilter(pattern, max_qos=mqtt5.QoS(qos)) for pattern, qos in subscriptions
            ]
            conn.out.append(mqtt5.SubscribePacket(conn.subscribe_id, filters).write())
        events.append(
            Connected(
                session_present=packet.session_present,
                receive_maximum=conn.quota,
                keepalive_s=conn.keepalive_s,
                retransmitting=len(conn.resend),
                assigned_client_id=packet.assigned_client_id,
            )
        )
        return None

    def _on_suback(
        self, conn: _Connection, packet: mqtt5.SubAckPacket, events: list[Event[TagT]]
    ) -> None:
        if packet.packet_id != conn.subscribe_id:
            self.counters.unknown_acks += 1
            return
        self._ids.release(packet.packet_id)
        conn.subscribe_id = None
        codes = [int(code) for code in packet.reason_codes]
        patterns = [pattern for pattern, _ in self.options.subscriptions]
        refused = {
            pattern: reason_name(code, _SUBACK_NAMES)
            for pattern, code in zip(patterns, codes, strict=False)
            if code >= 0x80
        }
        if refused or len(codes) != len(patterns):
            events.append(SubscriptionRefused(refused=refused or {"*": "wrong SUBACK length"}))
        else:
            events.append(Subscribed(granted=tuple(codes)))

    def _on_puback(
        self, conn: _Connection, packet: mqtt5.PubAckPacket, events: list[Event[TagT]]
    ) -> None:
        packet_id = packet.packet_id
        record = self._in_flight.pop(packet_id, None)
        if record is None:
            self.counters.unknown_acks += 1
            return
        self._ids.release(packet_id)
        if record.sent_generation == conn.generation:
            conn.quota += 1
        elif packet_id in conn.resend:
            conn.resend.remove(packet_id)
        code = int(packet.reason_code)
        if code >= 0x80:
            self.counters.publishes_refused += 1
        else:
            self.counters.publishes_acknowledged += 1
        events.append(
            PublishAcknowledged(
                tag=record.tag,
                topic=record.topic,
                reason_code=code,
                reason=reason_name(code, _PUBACK_NAMES),
            )
        )
