"""Live positions from the broker: each API process subscribes on its own (no shared group).

A clean, non-persistent QoS 0 intake (telemetry.mqtt_intake): a live view wants the newest
fix, not a replay of what was missed while disconnected (the snapshot on connect comes from
the database). Messages are validated with the ingestor's decoder; invalid ones are skipped
here (the ingestor dead-letters them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

from api.live.board import VehiclePosition
from api.live.registry import VehicleRegistry
from telemetry.decoding import Limits, MessageDecoder
from telemetry.mqtt_intake import Inbound, IntakeOptions, MqttIntake
from telemetry.settings import Settings
from telemetry.topics import Channel, Fleet, topic_name

Deliver = Callable[[list[VehiclePosition]], None]


def position_filters(prefix: str) -> list[str]:
    """The two subscriptions: every bus and every truck position."""
    return [topic_name(prefix, fleet, "+", Channel.POSITION) for fleet in (Fleet.BUS, Fleet.TRUCK)]


def feed_client_id(client_prefix: str) -> str:
    """Unique per process: host, pid and a random part (several workers per host)."""
    host = socket.gethostname().split(".")[0][:20]
    return f"{client_prefix}-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class MqttFeed:
    """A non-persistent intake whose messages are decoded in its network thread and handed,
    as fixes, to the event loop."""

    def __init__(
        self,
        settings: Settings,
        registry: VehicleRegistry,
        deliver: Deliver,
        loop: asyncio.AbstractEventLoop,
        client_prefix: str,
        on_invalid: Callable[[], None] | None = None,
    ) -> None:
        self.registry = registry
        self.deliver = deliver
        self.loop = loop
        self.on_invalid = on_invalid
        self.decoder = MessageDecoder(Limits.from_settings(settings))
        self.client_id = feed_client_id(client_prefix)
        options = IntakeOptions(
            client_id=self.client_id,
            topic_filter=tuple(position_filters(settings.topic_prefix)),
            persistent=False,
            qos=0,
            thread_name="api-mqtt",
        )
        self.intake = MqttIntake(settings, options, handler=self._on_message)

    @property
    def subscribed(self) -> threading.Event:
        """Set while connected and subscribed."""
        return self.intake.subscribed

    def start(self) -> None:
        """Connect in the background (the broker may be down now), reconnecting until stopped."""
        self.intake.start()

    def stop(self) -> None:
        """Disconnect and join the network thread."""
        self.intake.close()

    # -- network thread ---------------------------------------------------------------------

    def _on_message(self, message: Inbound) -> None:
        registry = self.registry
        fleets = registry.fleets
        decoded = self.decoder.decode(message.topic, message.payload, message.received_at, fleets)
        if decoded.dead_letters:
            unknown = any(d.reason_code == "unknown_device" for d in decoded.dead_letters)
            self._call(self._invalid, unknown)
        if not decoded.positions:
            return
        info = registry.info
        # A device the decoder accepted is registered, or new under RASD_AUTO_REGISTER.
        fleet = fleets.get(decoded.positions[0].device_id) or (
            decoded.new_device[1] if decoded.new_device else None
        )
        if fleet is None:
            return
        batch: list[VehiclePosition] = []
        for row in decoded.positions:
            known = info.get(row.device_id)
            batch.append(
                VehiclePosition(
                    device_id=row.device_id,
                    fleet=fleet.value,
                    route=row.route or (known.route if known else None),
                    district=known.district if known else None,
                    label=known.label if known else None,
                    time=row.time,
                    lat=row.lat,
                    lon=row.lon,
                    speed_kmh=row.speed_kmh,
                    heading_deg=row.heading_deg,
                )
            )
        self._call(self.deliver, batch)

    def _invalid(self, unknown_device: bool) -> None:
        if unknown_device:
            self.registry.unknown_seen()
        if self.on_invalid is not None:
            self.on_invalid()

    def _call(self, func: Callable[..., None], *args: Any) -> None:
        # RuntimeError: the event loop is closed, the API is shutting down.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(func, *args)
