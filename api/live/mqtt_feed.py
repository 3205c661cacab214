"""Live positions from the broker: each API process subscribes on its own (no shared group).

A clean, non-persistent QoS 0 session: a live view wants the newest fix, not a replay of what
was missed while disconnected (the snapshot on connect comes from the database). Messages are
validated with the ingestor's decoder; invalid ones are skipped here (the ingestor
dead-letters them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from api.live.board import VehiclePosition
from api.live.registry import VehicleRegistry
from telemetry.decoding import Limits, MessageDecoder
from telemetry.settings import Settings
from telemetry.topics import Channel, Fleet, topic_name

log = structlog.get_logger("api.mqtt")

Deliver = Callable[[list[VehiclePosition]], None]


def position_filters(prefix: str) -> list[str]:
    """The two subscriptions: every bus and every truck position."""
    return [topic_name(prefix, fleet, "+", Channel.POSITION) for fleet in (Fleet.BUS, Fleet.TRUCK)]


def feed_client_id(client_prefix: str) -> str:
    """Unique per process: host, pid and a random part (several workers per host)."""
    host = socket.gethostname().split(".")[0][:20]
    return f"{client_prefix}-{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def limits_for(settings: Settings) -> Limits:
    """The contract limits of the settings (as the ingestor applies them)."""
    return Limits(
        prefix=settings.topic_prefix,
        max_payload_bytes=settings.max_payload_bytes,
        max_batch_items=settings.max_batch_items,
        max_age=settings.max_age,
        max_future=settings.max_future,
        auto_register=settings.auto_register,
    )


class MqttFeed:
    """Owns a paho client and its network thread; hands decoded fixes to the event loop."""

    def __init__(
        self,
        settings: Settings,
        registry: VehicleRegistry,
        deliver: Deliver,
        loop: asyncio.AbstractEventLoop,
        client_prefix: str,
        on_invalid: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.deliver = deliver
        self.loop = loop
        self.on_invalid = on_invalid
        self.subscribed = threading.Event()
        self.decoder = MessageDecoder(limits_for(settings))
        self.filters = position_filters(settings.topic_prefix)
        self.client_id = feed_client_id(client_prefix)
        self._sub_mid: int | None = None
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
        )
        if settings.mqtt_username:
            client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
        client.reconnect_delay_set(min_delay=1, max_delay=15)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client

    def start(self) -> None:
        """Connect in the background (the broker may be down now) and start the thread."""
        self.client.connect_async(
            self.settings.mqtt_host, self.settings.mqtt_port, keepalive=30, clean_start=True
        )
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect and join the network thread."""
        self.client.disconnect()
        self.client.loop_stop()

    # -- network thread ---------------------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker_refused_connection", reason=str(reason_code))
            return
        options = SubscribeOptions(qos=0)
        _, self._sub_mid = client.subscribe([(f, options) for f in self.filters])
        log.info("broker_connected", client_id=self.client_id)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if mid != self._sub_mid:
            return
        if any(rc.is_failure for rc in reason_codes):
            log.error("subscription_refused", reasons=[str(rc) for rc in reason_codes])
            return
        self.subscribed.set()
        log.info("subscribed", filters=self.filters)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.subscribed.clear()
        log.warning("broker_disconnected", reason=str(reason_code))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        registry = self.registry
        fleets = registry.fleets
        decoded = self.decoder.decode(
            message.topic, bytes(message.payload), datetime.now(UTC), fleets
        )
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
