"""The one place a Rasd paho client is built: version 2 callbacks, login, broker address.

paho calls back with five positional arguments, most of them unused; :class:`Handlers` takes
just what a service looks at, so the services' callbacks stay short and typed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from telemetry.settings import Settings

KEEPALIVE_S: Final = 30


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
    manual_ack: bool = False,
    reconnect_on_failure: bool = True,
) -> mqtt.Client:
    """A paho client logged in as ``account`` (username, password), else as the settings say."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        reconnect_on_failure=reconnect_on_failure,
        manual_ack=manual_ack,
    )
    username, password = account or (settings.mqtt_username, settings.mqtt_password)
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
