"""A real MQTT v5 publisher for tests: QoS 1, returns once the broker acked everything."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from types import TracebackType
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class Publisher:
    """Publishes (topic, payload) pairs and waits for every PUBACK."""

    def __init__(
        self,
        url: str,
        client_id: str = "",
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 1883
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self._connected = threading.Event()
        self.client.on_connect = lambda *a: self._connected.set()

    def __enter__(self) -> Publisher:
        self.client.connect(self._host, self._port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise TimeoutError("publisher could not connect to the broker")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish_all(self, messages: Iterable[tuple[str, bytes | str]], timeout: float = 120) -> int:
        """Publish at QoS 1 and wait until the broker acknowledged each; returns the count."""
        infos = [self.client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout)
            if not info.is_published():
                raise TimeoutError("broker did not acknowledge a publish")
        return len(infos)
