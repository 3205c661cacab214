"""Teltonika Codec 8 / 8E over TCP: the IMEI handshake, then AVL packets acknowledged with their
record count only once every record is published (PUBACK) or dead-lettered."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import structlog

from ingest.gateways.connections import ConnectionSet, DeviceConnection
from ingest.gateways.forwarder import AckClock, Forwarder, NotSafe
from ingest.gateways.identities import IdentityBook
from ingest.gateways.metrics import GatewayMetrics
from telemetry.protocols.reports import Refusal, group_reports
from telemetry.protocols.teltonika import (
    AvlPacket,
    BadPacket,
    ImeiReceived,
    ProtocolViolation,
    TeltonikaConnection,
    records_to_reports,
)
from telemetry.storage.devices import ExternalDevice
from telemetry.topics import Fleet

PROTOCOL = "teltonika"
log = structlog.get_logger("ingest.gateways.teltonika")


@dataclass(kw_only=True)
class TeltonikaGateway:
    """The TCP server: one task per tracker connection, owned and drained by ``connections``."""

    book: IdentityBook
    forwarder: Forwarder
    metrics: GatewayMetrics
    idle_timeout_s: float
    connections: ConnectionSet = field(default_factory=ConnectionSet)

    async def serve(self, host: str, port: int, started: asyncio.Event | None = None) -> None:
        """Accept trackers until cancelled, then drain their connections."""
        server = await asyncio.start_server(self._handle, host, port, limit=1 << 16)
        log.info("gateway_listening", protocol=PROTOCOL, host=host, port=port)
        if started is not None:
            started.set()
        try:
            await asyncio.Event().wait()
        finally:
            server.close()
            await self.connections.drain(grace_s=self.forwarder.ack_timeout_s)
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        conn = self.connections.add(task)
        gauge = self.metrics.connections.labels(PROTOCOL)
        gauge.inc()
        try:
            await self._converse(conn, reader, writer)
        except (TimeoutError, ConnectionError, NotSafe) as exc:
            log.info("tracker_disconnected", protocol=PROTOCOL, reason=repr(exc))
        except asyncio.CancelledError:
            # The drain closing an idle connection ends the task normally: asyncio's stream
            # server would otherwise log the cancellation as an error.
            if not conn.closing:
                raise
        finally:
            gauge.dec()
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _converse(
        self, conn: DeviceConnection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        session = TeltonikaConnection()
        device: ExternalDevice | None = None
        imei = ""
        while not conn.closing:
            async with asyncio.timeout(self.idle_timeout_s):
                data = await reader.read(1 << 16)
            if not data:
                return
            conn.busy = True
            try:
                for event in session.feed(data):
                    match event:
                        case ImeiReceived():
                            imei = event.imei
                            device = await self.book.resolve(PROTOCOL, imei, Fleet.TRUCK)
                            if device is None:
                                await self._refuse_identity(event)
                                writer.write(session.reject_imei())
                                await writer.drain()
                                return
                            writer.write(session.accept_imei())
                        case AvlPacket():
                            clock = AckClock.start(self.metrics, PROTOCOL)
                            positions, refusals = records_to_reports(imei, event)
                            await self.forwarder.deliver(
                                PROTOCOL, device, group_reports(imei, positions), refusals
                            )
                            writer.write(session.ack(event))
                            clock.acked()
                        case BadPacket() | ProtocolViolation():
                            # Never acknowledged: a tracker keeps the records and sends again;
                            # after a violation framing is lost and the connection closes.
                            refusal = Refusal(
                                reason_code=event.reason_code,
                                detail=event.detail,
                                raw=event.raw,
                                identity=imei or None,
                            )
                            await self.forwarder.refuse(
                                PROTOCOL, refusal, device.device_id if device else None
                            )
                            if isinstance(event, ProtocolViolation):
                                return
                await writer.drain()
            finally:
                conn.busy = False

    async def _refuse_identity(self, event: ImeiReceived) -> None:
        await self.forwarder.refuse(
            PROTOCOL,
            Refusal(
                reason_code="unknown_identity",
                detail=f"IMEI {event.imei} is no device's external_id in the registry",
                raw=event.raw,
                identity=event.imei,
            ),
        )
