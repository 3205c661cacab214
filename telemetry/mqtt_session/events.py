"""What the session core reports: received messages and the other happenings (pure records)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

import mqtt5

from telemetry.mqtt_session.errors import ProtocolViolation

TagT = TypeVar("TagT")


# Not frozen: one is built per received PUBLISH, and a frozen dataclass pays for every field
# in __init__ (0.9 against 0.25 us here). eq=False keeps it hashable, by identity.
@dataclass(slots=True, eq=False)
class Message:
    """One PUBLISH the broker delivered, on connection number ``generation``.

    A QoS 1 message is acknowledged only by ``ack``; an ack for an older generation is
    dropped, since the broker redelivers it on the current connection.
    """

    packet: mqtt5.PublishPacket
    generation: int

    @property
    def topic(self) -> str:
        """The topic name."""
        return self.packet.topic

    @property
    def payload(self) -> bytes:
        """The application payload."""
        return self.packet.payload

    @property
    def qos(self) -> int:
        """0 or 1."""
        return int(self.packet.qos)

    @property
    def packet_id(self) -> int | None:
        """The broker's packet id (QoS 1), None for QoS 0."""
        return self.packet.packet_id

    @property
    def dup(self) -> bool:
        """The broker says it may have sent this message before."""
        return self.packet.duplicate

    @property
    def retain(self) -> bool:
        """A retained message."""
        return self.packet.retain


# -- events ---------------------------------------------------------------------------------


@dataclass(kw_only=True, frozen=True, slots=True)
class Connected:
    """CONNACK success; ``retransmitting`` in-flight publishes go out again with DUP=1."""

    session_present: bool
    receive_maximum: int
    keepalive_s: int
    retransmitting: int
    assigned_client_id: str | None


@dataclass(kw_only=True, frozen=True, slots=True)
class ConnectionRefused:
    """CONNACK with a failure reason code."""

    reason_code: int
    reason: str
    detail: str | None


@dataclass(kw_only=True, frozen=True, slots=True)
class Subscribed:
    """SUBACK success for every filter: the granted QoS per filter."""

    granted: tuple[int, ...]


@dataclass(kw_only=True, frozen=True, slots=True)
class SubscriptionRefused:
    """SUBACK with a failure code for some filter: pattern -> reason."""

    refused: dict[str, str]


@dataclass(kw_only=True, frozen=True, slots=True)
class PublishAcknowledged(Generic[TagT]):
    """PUBACK for one of our QoS 1 publishes (``reason_code`` >= 0x80: refused)."""

    tag: TagT
    topic: str
    reason_code: int
    reason: str


@dataclass(kw_only=True, frozen=True, slots=True)
class BrokerDisconnected:
    """The broker sent DISCONNECT; the connection is over."""

    reason_code: int
    reason: str
    detail: str | None


@dataclass(kw_only=True, frozen=True, slots=True)
class ProtocolFailure:
    """The broker broke the protocol; a DISCONNECT with the reason is queued, then drop."""

    error: ProtocolViolation


Event: TypeAlias = (
    Connected
    | ConnectionRefused
    | Subscribed
    | SubscriptionRefused
    | PublishAcknowledged[TagT]
    | BrokerDisconnected
    | ProtocolFailure
)
