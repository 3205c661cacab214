"""Errors the MQTT session raises on purpose (all derive from :class:`MqttSessionError`)."""

from __future__ import annotations

from telemetry.errors import TelemetryError


def reason_name(code: int, names: dict[int, str]) -> str:
    """``NAME (0xNN)`` for an MQTT reason code, or ``0xNN`` when the code is unknown."""
    name = names.get(code)
    return f"{name} (0x{code:02X})" if name else f"0x{code:02X}"


class MqttSessionError(TelemetryError):
    """Base class of the MQTT session's errors."""


class ConnectError(MqttSessionError):
    """The broker could not be reached or the connection could not be set up (TCP, TLS)."""


class TlsConfigError(ConnectError):
    """The TLS settings are unusable (missing or unreadable CA, certificate or key file)."""


class TlsVerificationError(ConnectError):
    """The broker's certificate did not verify against the configured CAs (or its host name)."""


class ConnectRefused(ConnectError):
    """The broker answered CONNECT with a failure reason code (e.g. bad credentials)."""

    def __init__(self, reason_code: int, reason: str, detail: str | None = None) -> None:
        text = f"broker refused the connection: {reason}"
        super().__init__(f"{text}: {detail}" if detail else text)
        self.reason_code = reason_code
        self.reason = reason


class SubscribeRefused(MqttSessionError):
    """The broker answered SUBSCRIBE with a failure code for at least one filter."""

    def __init__(self, refused: dict[str, str]) -> None:
        listed = ", ".join(f"{pattern}: {reason}" for pattern, reason in refused.items())
        super().__init__(f"broker refused subscriptions: {listed}")
        self.refused = refused


class PublishRefused(MqttSessionError):
    """The broker answered a QoS 1 PUBLISH with a PUBACK reason code of 0x80 or more."""

    def __init__(self, topic: str, reason_code: int, reason: str) -> None:
        super().__init__(f"broker refused publish on {topic!r}: {reason}")
        self.topic = topic
        self.reason_code = reason_code
        self.reason = reason


class ProtocolViolation(MqttSessionError):
    """The broker sent bytes or a packet the protocol does not allow; the connection is dropped.

    ``reason_code`` is the DISCONNECT reason we send: 0x81 malformed, 0x82 protocol error,
    0x93 Receive Maximum exceeded.
    """

    def __init__(self, detail: str, *, reason_code: int = 0x82) -> None:
        super().__init__(detail)
        self.reason_code = reason_code


class SessionClosed(MqttSessionError):
    """The session is closed (or closing): nothing more can be published or received."""


class PublishAbandoned(SessionClosed):
    """The session closed before this publish was acknowledged: the broker may have it or not."""
