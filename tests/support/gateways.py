"""Settings and helpers for gateway tests: the test's own ports and bridged topic filters."""

from __future__ import annotations

import socket
from typing import Any

from telemetry.settings import Settings
from tests.support.env import free_port


def gateway_overrides(**extra: Any) -> dict[str, Any]:
    """Free device-facing ports, and bridged filters under a prefix of the test's own, so that
    tests sharing the broker never hear each other's OwnTracks or LoRaWAN traffic."""
    tag = f"gw{free_port()}"
    values: dict[str, Any] = {
        "gateway_http_port": free_port(),
        "gateway_teltonika_port": free_port(),
        "gateway_osmand_port": free_port(),
        "gateway_listen_host": "127.0.0.1",
        "gateway_owntracks_topics": f"{tag}/owntracks/+/+",
        "gateway_chirpstack_topics": f"{tag}/application/+/device/+/event/up",
        "gateway_things_stack_topics": f"{tag}/v3/+/devices/+/up",
    }
    values.update(extra)
    return values


def bridged_topic(settings: Settings, protocol_topic: str) -> str:
    """A protocol's topic under the test's prefix (see ``gateway_overrides``)."""
    return settings.gateway_owntracks_topics.split("/", 1)[0] + "/" + protocol_topic


class TrackerSocket:
    """A raw TCP connection to the Teltonika gateway, as a tracker opens it."""

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(
            ("127.0.0.1", settings.gateway_teltonika_port), timeout=timeout
        )

    def send(self, data: bytes) -> None:
        """Write bytes."""
        self.sock.sendall(data)

    def read(self, size: int, timeout: float = 10.0) -> bytes:
        """Exactly ``size`` bytes, or fewer if the gateway closed the connection."""
        self.sock.settimeout(timeout)
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                break
            data += chunk
        return data

    def close(self) -> None:
        """Close the connection (a tracker losing coverage)."""
        self.sock.close()

    def __enter__(self) -> TrackerSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
