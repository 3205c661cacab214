"""The rule every gateway shares: refusals are stored, reports are published at QoS 1, and only
when both are safe (dead letters committed, every PUBACK received) may the device be answered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from ingest.gateways.metrics import GatewayMetrics
from telemetry.decoding import DeadLetter
from telemetry.mqtt_session.errors import MqttSessionError
from telemetry.protocols.reports import DeviceReports, Refusal
from telemetry.storage.dead_letters import store_dead_letters
from telemetry.storage.devices import ExternalDevice
from telemetry.topics import topic_name

log = structlog.get_logger("ingest.gateways")

_NO_MATCHING_SUBSCRIBERS = 0x10


class BrokerPublisher(Protocol):
    """What the forwarder needs of the MQTT session: a QoS 1 publish that returns on PUBACK."""

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1) -> int:
        """Publish and wait for the broker's acknowledgement; returns its reason code."""


class NotSafe(Exception):
    """What a device sent could not be made safe in time: do not acknowledge it."""


def dead_letter_topic(protocol: str, identity: str | None) -> str:
    """Where a gateway refusal is filed: ``gateway/<protocol>/<identity>``."""
    return f"gateway/{protocol}/{identity or '-'}"


@dataclass(kw_only=True)
class Forwarder:
    """Publishes contract v1 messages and files refusals for every gateway of one process."""

    broker: BrokerPublisher
    pool: AsyncConnectionPool
    prefix: str
    metrics: GatewayMetrics
    ack_timeout_s: float

    async def deliver(
        self,
        protocol: str,
        device: ExternalDevice | None,
        reports: Sequence[DeviceReports],
        refusals: Sequence[Refusal],
    ) -> None:
        """Make ``reports`` and ``refusals`` safe, or raise ``NotSafe`` (nothing is answered)."""
        try:
            async with asyncio.timeout(self.ack_timeout_s):
                await self._file(protocol, device, refusals)
                await self._publish(protocol, device, reports)
        except (TimeoutError, OSError, psycopg.Error, MqttSessionError) as exc:
            self.metrics.unacked.labels(protocol).inc()
            log.warning("gateway_not_safe", protocol=protocol, error=repr(exc))
            raise NotSafe(str(exc) or type(exc).__name__) from exc

    async def refuse(self, protocol: str, refusal: Refusal, device_id: str | None = None) -> None:
        """File one refusal that has no device behind it (an unknown identity, a bad frame)."""
        try:
            async with asyncio.timeout(self.ack_timeout_s):
                await self._store(protocol, [(refusal, device_id)])
        except (TimeoutError, OSError, psycopg.Error, MqttSessionError) as exc:
            raise NotSafe(str(exc) or type(exc).__name__) from exc

    async def _file(
        self, protocol: str, device: ExternalDevice | None, refusals: Sequence[Refusal]
    ) -> None:
        if refusals:
            device_id = device.device_id if device else None
            await self._store(protocol, [(r, device_id) for r in refusals])

    async def _store(self, protocol: str, refusals: Sequence[tuple[Refusal, str | None]]) -> None:
        now = datetime.now(UTC)
        letters = [
            DeadLetter(
                received_at=now,
                topic=dead_letter_topic(protocol, r.identity),
                payload=r.raw,
                reason=r.reason,
                reason_code=r.reason_code,
                device_id=device_id,
                element_index=r.element_index,
            )
            for r, device_id in refusals
        ]
        async with self.pool.connection() as conn:
            await store_dead_letters(conn, letters)
        for r, _ in refusals:
            self.metrics.refusals.labels(protocol, r.reason_code).inc()

    async def _publish(
        self, protocol: str, device: ExternalDevice | None, reports: Sequence[DeviceReports]
    ) -> None:
        if not reports:
            return
        assert device is not None, "reports need a resolved device"
        # All in flight at once; gather (not a TaskGroup) so that one refused publish raises
        # itself, not an ExceptionGroup, and the session keeps retrying the others.
        await asyncio.gather(
            *(
                self._publish_one(
                    topic_name(self.prefix, device.fleet, device.device_id, m.channel),
                    m.payload(),
                )
                for m in reports
            )
        )
        self.metrics.published.labels(protocol).inc(len(reports))
        self.metrics.reports.labels(protocol).inc(sum(len(m.reports) for m in reports))

    async def _publish_one(self, topic: str, payload: bytes) -> None:
        # A PUBACK saying nobody subscribes means the broker dropped the message (Mosquitto
        # 2.0, just restarted, before ingest has subscribed again): not safe, publish again.
        delay = 0.05
        while await self.broker.publish(topic, payload, qos=1) == _NO_MATCHING_SUBSCRIBERS:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


@dataclass(kw_only=True, slots=True)
class AckClock:
    """Times one device message from arrival to acknowledgement, for the ack-latency metric."""

    metrics: GatewayMetrics
    protocol: str
    started: float

    @classmethod
    def start(cls, metrics: GatewayMetrics, protocol: str) -> AckClock:
        """Start the clock as the message arrives (and count it received)."""
        metrics.received.labels(protocol).inc()
        return cls(metrics=metrics, protocol=protocol, started=time.perf_counter())

    def acked(self) -> None:
        """The device has been answered."""
        self.metrics.ack_seconds.labels(self.protocol).observe(time.perf_counter() - self.started)
