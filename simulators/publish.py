"""Publishing to Mosquitto at QoS 1: few shared connections (or one per device), a bounded
in-flight window per connection, and a flush that waits for every PUBACK.

paho's network loop is driven from the publishing thread (no ``loop_start``): a background
thread would cost a wake-up and a thread switch per message, a third of the throughput.
"""

from __future__ import annotations

import select
import time
import zlib
from collections.abc import Mapping
from types import TracebackType

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from simulators.errors import PublishError
from telemetry.mqtt_client import KEEPALIVE_S, BrokerTlsError, Handlers, new_client
from telemetry.mqtt_session.errors import TlsConfigError
from telemetry.settings import Settings

PROTOCOLS = {"5": mqtt.MQTTv5, "3.1.1": mqtt.MQTTv311}
_SERVICE_EVERY = 32  # publishes between reads of PUBACKs
_RECONNECT_S = 1.0


class _Connection:
    """One MQTT v5 client whose socket this object services; counts unacknowledged messages."""

    def __init__(
        self,
        settings: Settings,
        client_id: str,
        account: tuple[str, str] | None,
        window: int,
        protocol: MQTTProtocolVersion,
    ) -> None:
        self.window = window
        self.outstanding = 0
        self.acked = 0
        self.refused = 0
        self._since_service = 0
        self._connected = False
        self._refusal: str | None = None
        self._next_reconnect = 0.0
        handlers = Handlers(
            connected=self._on_connect, disconnected=self._on_disconnect, published=self._on_publish
        )
        try:
            client = new_client(settings, client_id, handlers, account=account, protocol=protocol)
        except TlsConfigError as exc:
            raise PublishError(str(exc)) from None
        client.max_inflight_messages_set(window)
        client.max_queued_messages_set(0)
        self.client = client
        self._host, self._port = settings.mqtt_host, settings.mqtt_port

    def _on_connect(self, reason_code: ReasonCode, session_present: bool) -> None:
        if reason_code.is_failure:
            self._refusal = str(reason_code)
        else:
            self._connected = True

    def _on_disconnect(self, reason_code: ReasonCode) -> None:
        self._connected = False

    def _on_publish(self, reason_code: ReasonCode) -> None:
        self.outstanding -= 1
        if reason_code.is_failure:  # e.g. "Not authorized": the ACL refused the topic
            self.refused += 1
        else:
            self.acked += 1

    def open(self, timeout: float) -> None:
        """Connect and wait for the CONNACK."""
        try:
            self.client.connect(self._host, self._port, keepalive=KEEPALIVE_S)
        except BrokerTlsError as exc:
            raise PublishError(str(exc)) from None  # names the broker and the CA file
        except OSError as exc:
            raise PublishError(f"broker {self._host}:{self._port} unreachable: {exc}") from None
        deadline = time.monotonic() + timeout
        while not self._connected and self._refusal is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.service(min(left, 0.1))
        if not self._connected:
            raise PublishError(
                f"broker {self._host}:{self._port} refused the connection: "
                f"{self._refusal or 'no CONNACK'}"
            )

    def service(self, timeout: float = 0.0) -> None:
        """Read acknowledgements, write what is queued, keep alive; wait up to ``timeout``."""
        client = self.client
        sock = client.socket()
        if sock is None:
            self._reconnect(timeout)
            return
        if timeout > 0:
            writers = [sock] if client.want_write() else []
            select.select([sock], writers, [], timeout)
        rc = client.loop_read()
        if rc is MQTTErrorCode.MQTT_ERR_SUCCESS:
            rc = client.loop_write()
        if rc is MQTTErrorCode.MQTT_ERR_SUCCESS:
            rc = client.loop_misc()
        if rc is not MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._connected = False
            self._reconnect(timeout)

    def _reconnect(self, timeout: float) -> None:
        # paho keeps unacknowledged QoS 1 messages and sends them again after reconnecting.
        now = time.monotonic()
        if now < self._next_reconnect:
            time.sleep(min(timeout, self._next_reconnect - now))
            return
        self._next_reconnect = now + _RECONNECT_S
        try:
            self.client.reconnect()
        except OSError:
            return

    def publish(self, topic: str, payload: bytes) -> None:
        """Send one QoS 1 message, first waiting while the window is full."""
        while self.outstanding >= self.window:
            self.service(0.05)
        self.outstanding += 1
        self.client.publish(topic, payload, qos=1)
        self._since_service += 1
        if self._since_service >= _SERVICE_EVERY:
            self._since_service = 0
            self.service()

    def drain(self, deadline: float) -> bool:
        """Service until every message is acknowledged or the deadline passes."""
        while self.outstanding > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.service(min(left, 0.05))
        return True

    def close(self) -> None:
        """Disconnect cleanly."""
        self.client.disconnect()
        self.service()


class MqttPublisher:
    """Publishes device messages; a device always uses the same connection (order kept)."""

    def __init__(
        self,
        settings: Settings,
        *,
        connections: int = 1,
        window: int = 1000,
        credentials: Mapping[str, str] | None = None,
        name: str = "rasd-sim",
        protocol: str = "5",
    ) -> None:
        if connections < 1 or window < 1:
            raise PublishError("connections and window must be at least 1")
        if protocol not in PROTOCOLS:
            raise PublishError(f"MQTT protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
        # Real trackers mostly speak 3.1.1; its PUBACK costs paho less than v5's.
        self._protocol = PROTOCOLS[protocol]
        self.settings = settings
        self.window = window
        self._credentials = credentials
        self._name = f"{name}-{time.time_ns() % 10**12}"
        self._pool: list[_Connection] = []
        self._own: dict[str, _Connection] = {}
        self._count = 0 if credentials is not None else connections
        self._next_sweep = 0.0
        self.published = 0

    def __enter__(self) -> MqttPublisher:
        for index in range(self._count):
            connection = _Connection(
                self.settings,
                f"{self._name}-{index}",
                None,  # the service account of the settings
                self.window,
                self._protocol,
            )
            connection.open(10.0)
            self._pool.append(connection)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for connection in self._connections():
            connection.close()

    def _connections(self) -> list[_Connection]:
        return self._pool + list(self._own.values())

    def _for(self, device_id: str) -> _Connection:
        if self._credentials is None:
            return self._pool[zlib.crc32(device_id.encode()) % len(self._pool)]
        connection = self._own.get(device_id)
        if connection is None:
            password = self._credentials.get(device_id)
            if password is None:
                raise PublishError(f"no credentials for device {device_id}")
            # The device's own account: the broker's ACL sees exactly what it would in the field.
            connection = _Connection(
                self.settings,
                f"{device_id}-{self._name}",
                (device_id, password),
                max(10, self.window // 10),
                self._protocol,
            )
            connection.open(10.0)
            self._own[device_id] = connection
        return connection

    def publish(self, device_id: str, topic: str, payload: bytes) -> None:
        """Send one QoS 1 publish; blocks while that connection's window is full."""
        self._for(device_id).publish(topic, payload)
        self.published += 1
        if len(self._pool) + len(self._own) > 1 and self.published % 256 == 0:
            self._sweep()

    def _sweep(self) -> None:
        # Connections not published on lately still need their acks read and pings sent.
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + 1.0
            for connection in self._connections():
                connection.service()

    def idle(self, seconds: float) -> None:
        """Wait ``seconds`` while keeping every connection serviced (acks, keepalive)."""
        deadline = time.monotonic() + seconds
        connections = self._connections()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            step = min(left, 0.2) / max(1, len(connections))
            for connection in connections:
                connection.service(step)

    def flush(self, timeout: float = 120.0) -> None:
        """Wait until the broker acknowledged everything published so far."""
        deadline = time.monotonic() + timeout
        for connection in self._connections():
            if not connection.drain(deadline):
                raise PublishError(
                    f"{connection.outstanding} messages not acknowledged within {timeout} s"
                )

    @property
    def acked(self) -> int:
        """Messages the broker acknowledged."""
        return sum(c.acked for c in self._connections())

    @property
    def refused(self) -> int:
        """Messages the broker acknowledged with a failure code (ACL refusals)."""
        return sum(c.refused for c in self._connections())
