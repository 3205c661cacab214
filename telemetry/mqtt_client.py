"""The one place a Rasd paho client is built: version 2 callbacks, login, TLS.

paho calls back with five positional arguments, most of them unused; :class:`Handlers` takes
just what a service looks at, so the services' callbacks stay short and typed. For ``mqtts://``
the TLS context is :func:`telemetry.mqtt_session.tls.client_ssl_context`, the one the asyncio
session uses: one place decides which brokers every Rasd client trusts.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from telemetry.mqtt_session.tls import client_ssl_context, describe_trust
from telemetry.settings import Settings

KEEPALIVE_S: Final = 30


class BrokerTlsError(OSError):
    """The TLS handshake with the broker failed; the message names the broker and its trust.

    An ``OSError``, as paho's own connection failures are, so that every caller's existing
    "broker unreachable" path (log, back off, retry) handles it too.
    """


class _TlsNamingClient(mqtt.Client):
    """A paho client whose TLS failures say which broker and which CAs were involved."""

    def __init__(
        self,
        trust: str,
        *,
        client_id: str,
        protocol: MQTTProtocolVersion,
        reconnect_on_failure: bool,
    ) -> None:
        super().__init__(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            reconnect_on_failure=reconnect_on_failure,
        )
        self._trust = trust  # e.g. "CA file '/etc/rasd/broker-ca.crt'", for error messages

    def _ssl_wrap_socket(self, tcp_sock: socket.socket) -> ssl.SSLSocket:
        # Replaces paho's own (2.x): that one leaves the TLS socket of a failed handshake open,
        # one leaked descriptor per retry, and its error does not say which CAs were used. Our
        # context always checks the host name, so paho's fallbacks for old Pythons are moot.
        context = self._ssl_context
        assert context is not None  # tls_set_context ran: paho calls this only then
        host, port = self._host, self._port
        tls_sock = context.wrap_socket(
            tcp_sock, server_hostname=host, do_handshake_on_connect=False
        )
        try:
            tls_sock.settimeout(self._connect_timeout)
            tls_sock.do_handshake()
        except ssl.SSLCertVerificationError as exc:
            tls_sock.close()
            raise BrokerTlsError(
                f"TLS: the certificate of broker {host}:{port} failed verification "
                f"against {self._trust}: {exc.verify_message}"
            ) from exc
        except ssl.SSLError as exc:
            tls_sock.close()
            raise BrokerTlsError(f"TLS handshake with broker {host}:{port} failed: {exc}") from exc
        except BaseException:
            tls_sock.close()
            raise
        return tls_sock


@dataclass(frozen=True, slots=True)
class Handlers:
    """What a client wants to hear of; a handler left None leaves paho's callback unset."""

    connected: Callable[[ReasonCode, bool], None] | None = None  # CONNACK, session present
    disconnected: Callable[[ReasonCode], None] | None = None
    subscribed: Callable[[int, list[ReasonCode]], None] | None = None  # SUBACK mid, codes
    published: Callable[[ReasonCode], None] | None = None  # PUBACK (QoS 1)
    message: Callable[[mqtt.MQTTMessage], None] | None = None


def new_client(
    settings: Settings,
    client_id: str,
    handlers: Handlers,
    *,
    account: tuple[str, str] | None = None,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
    reconnect_on_failure: bool = True,
) -> mqtt.Client:
    """A paho client logged in as ``account`` (username, password), else as the settings say.

    Over ``mqtts://`` it verifies the broker's certificate and host name; an unreadable CA,
    certificate or key file raises ``TlsConfigError`` here, a failed handshake raises
    :class:`BrokerTlsError` from ``connect``.
    """
    client = _TlsNamingClient(
        describe_trust(settings),
        client_id=client_id,
        protocol=protocol,
        reconnect_on_failure=reconnect_on_failure,
    )
    if settings.mqtt_tls:
        client.tls_set_context(client_ssl_context(settings))
    secret = settings.mqtt_password
    username, password = account or (
        settings.mqtt_username,
        secret.get_secret_value() if secret is not None else None,
    )
    if username:
        client.username_pw_set(username, password)
    _attach(client, handlers)
    return client


def _attach(client: mqtt.Client, handlers: Handlers) -> None:
    # Bound to locals so that mypy knows, inside each lambda, the handler is not None. paho's
    # callback attributes take its version 1 signatures too, so mypy leaves the lambdas'
    # arguments untyped: the handlers they forward to are what is checked.
    connected, disconnected = handlers.connected, handlers.disconnected
    subscribed, published, message = handlers.subscribed, handlers.published, handlers.message
    if connected is not None:
        client.on_connect = lambda _c, _u, flags, code, _p: connected(code, flags.session_present)
    if disconnected is not None:
        client.on_disconnect = lambda _c, _u, _flags, code, _p: disconnected(code)
    if subscribed is not None:
        client.on_subscribe = lambda _c, _u, mid, codes, _p: subscribed(mid, codes)
    if published is not None:
        client.on_publish = lambda _c, _u, _mid, code, _p: published(code)
    if message is not None:
        client.on_message = lambda _c, _u, received: message(received)
