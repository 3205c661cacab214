"""``/ws/positions`` over real sockets, fed by the real broker: snapshot, live frames, filters,
refusals, heartbeats, a client that stops reading, and several API processes at once."""

from __future__ import annotations

import asyncio
import base64
import json
import operator
import os
import socket
import struct
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from typing import Any

import httpx
import pytest

from api.auth import Role
from api.config import ApiSettings
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.topics import Channel, Fleet, topic_name
from tests.support.api_server import (
    ApiServer,
    Frames,
    api_server,
    closed_with,
    fix,
    make_token,
    now_utc,
    position_payload,
    register_devices,
    store,
    ws_connect,
)
from tests.support.publisher import Publisher

# 100 ms frames and 1 s heartbeats keep the tests short. Devices are registered before the
# server starts: the live feed skips fixes of devices its registry does not know yet.
FAST = {"ws_frame_ms": 100, "ws_heartbeat_s": 1.0}


@pytest.fixture
async def api(migrated: Settings) -> AsyncIterator[ApiServer]:
    """The API on the test schema (for tests that register nothing)."""
    async for server in api_server(migrated, **FAST):
        yield server


def _topic(settings: Settings, fleet: Fleet, device_id: str) -> str:
    return topic_name(settings.topic_prefix, fleet, device_id, Channel.POSITION)


async def _publish(publisher: Publisher, messages: list[tuple[str, bytes]]) -> None:
    await asyncio.to_thread(publisher.publish_all, messages)


async def test_snapshot_then_live_positions_from_the_broker(
    migrated: Settings, publisher: Publisher
) -> None:
    register_devices(
        migrated,
        DeviceRecord(device_id="B-001", fleet=Fleet.BUS, route="1"),
        DeviceRecord(device_id="B-002", fleet=Fleet.BUS, route="3"),
    )
    now = now_utc()
    store(migrated, positions=[fix("B-001", now - timedelta(seconds=20), 31.63, -8.01, "1")])
    token = await make_token(migrated, Role.OPERATOR)
    async with (
        ApiServer(migrated, **FAST) as api,
        await ws_connect(api.ws_url("/ws/positions", token=token)) as ws,
    ):
        frames = Frames(ws)
        snapshot = await frames.next()
        assert snapshot["type"] == "snapshot"
        assert [v["id"] for v in snapshot["vehicles"]] == ["B-001"]
        assert snapshot["frame_ms"] == 100 and snapshot["stale_after_s"] > 0
        await _publish(
            publisher,
            [
                (
                    _topic(migrated, Fleet.BUS, "B-002"),
                    position_payload(now, 31.64, -8.02, heading_deg=45.0, route="3"),
                ),
                (_topic(migrated, Fleet.BUS, "B-001"), position_payload(now, 31.635, -8.015)),
            ],
        )
        await frames.until(
            lambda: (
                "B-002" in frames.vehicles
                and frames.vehicles["B-001"]["lat"] == pytest.approx(31.635)
            ),
            what="both buses live",
        )
        live = frames.vehicles["B-002"]
        assert live["fleet"] == "bus" and live["route"] == "3" and live["heading_deg"] == 45.0
        assert frames.vehicles["B-001"]["route"] == "1"  # from the registry
        assert frames.frames[-1]["type"] == "positions"


async def test_filters_by_fleet_route_and_bbox(migrated: Settings, publisher: Publisher) -> None:
    register_devices(
        migrated,
        DeviceRecord(device_id="B-001", fleet=Fleet.BUS, route="1"),
        DeviceRecord(device_id="B-002", fleet=Fleet.BUS, route="3"),
        DeviceRecord(device_id="T-001", fleet=Fleet.TRUCK),
    )
    token = await make_token(migrated, Role.OPERATOR)
    async with ApiServer(migrated, **FAST) as api:
        await _filters(migrated, api, publisher, token)


async def _filters(migrated: Settings, api: ApiServer, publisher: Publisher, token: str) -> None:
    box = "-8.03,31.62,-8.00,31.64"
    urls = {
        "trucks": api.ws_url("/ws/positions", token=token, fleet="truck"),
        "route3": api.ws_url("/ws/positions", token=token, route="3"),
        "boxed": api.ws_url("/ws/positions", token=token, bbox=box),
    }
    clients = {name: Frames(await ws_connect(url)) for name, url in urls.items()}
    try:
        for frames in clients.values():
            assert (await frames.next())["type"] == "snapshot"
        now = now_utc()
        await _publish(
            publisher,
            [
                (_topic(migrated, Fleet.BUS, "B-001"), position_payload(now, 31.63, -8.01)),
                (_topic(migrated, Fleet.BUS, "B-002"), position_payload(now, 31.70, -7.95)),
                (_topic(migrated, Fleet.TRUCK, "T-001"), position_payload(now, 31.631, -8.011)),
            ],
        )
        await clients["trucks"].until(lambda: "T-001" in clients["trucks"].vehicles)
        await clients["route3"].until(lambda: "B-002" in clients["route3"].vehicles)
        boxed = clients["boxed"]
        await boxed.until(lambda: {"B-001", "T-001"} <= set(boxed.vehicles))
        # B-001 leaves the box: the boxed client gets that last fix, outside, then nothing.
        later = now + timedelta(seconds=1)
        await _publish(
            publisher,
            [
                (_topic(migrated, Fleet.BUS, "B-001"), position_payload(later, 31.70, -7.95)),
                (_topic(migrated, Fleet.TRUCK, "T-001"), position_payload(later, 31.632, -8.012)),
            ],
        )
        await boxed.until(lambda: boxed.vehicles["T-001"]["lat"] == pytest.approx(31.632))
        await boxed.until(lambda: boxed.vehicles["B-001"]["lat"] == pytest.approx(31.70))
        assert set(clients["trucks"].vehicles) == {"T-001"}
        assert set(clients["route3"].vehicles) == {"B-002"}
        assert "B-002" not in boxed.vehicles
    finally:
        for frames in clients.values():
            await frames.ws.close()


async def test_refusals_close_with_a_reason(migrated: Settings, api: ApiServer) -> None:
    crew = await make_token(migrated, Role.CREW, ["medina"])
    operator = await make_token(migrated, Role.OPERATOR)
    code, error = await closed_with(api.ws_url("/ws/positions"))
    assert code == 4401 and error is not None and error["code"] == "unauthenticated"
    code, _ = await closed_with(api.ws_url("/ws/positions", token="rasd_unknown-token-value"))
    assert code == 4401
    code, error = await closed_with(api.ws_url("/ws/positions", token=crew))
    assert code == 4403 and error is not None and "crew" in error["message"]
    code, error = await closed_with(api.ws_url("/ws/positions", token=operator, bbox="1,2"))
    assert code == 4400 and error is not None and "bbox" in error["message"]
    for bad in ("5", "10001", "fast"):
        code, error = await closed_with(
            api.ws_url("/ws/positions", token=operator, interval_ms=bad)
        )
        assert code == 4400 and error is not None, bad
        assert "interval_ms" in error["message"] and "10000" in error["message"], bad
    code, _ = await closed_with(api.ws_url("/ws/positions", token=operator, fleet="light"))
    assert code == 4400


async def test_a_client_may_ask_for_slower_frames(migrated: Settings, api: ApiServer) -> None:
    # The default meets the latency target (docs/api.md); a map that wants fewer frames asks.
    assert ApiSettings().ws_frame_ms <= 50
    token = await make_token(migrated, Role.OPERATOR)
    async with await ws_connect(api.ws_url("/ws/positions", token=token, interval_ms="250")) as ws:
        snapshot = await Frames(ws).next()
        assert snapshot["type"] == "snapshot" and snapshot["frame_ms"] == 250


async def test_heartbeat_and_ping(migrated: Settings, api: ApiServer) -> None:
    token = await make_token(migrated, Role.OPERATOR)
    async with await ws_connect(api.ws_url("/ws/positions", token=token)) as ws:
        frames = Frames(ws)
        assert (await frames.next())["type"] == "snapshot"
        await frames.until(lambda: frames.frames[-1]["type"] == "heartbeat", what="heartbeat")
        await ws.send(json.dumps({"type": "ping"}))
        await frames.until(lambda: frames.frames[-1]["type"] == "pong", what="pong")


async def test_invalid_broker_messages_are_skipped(
    migrated: Settings, publisher: Publisher
) -> None:
    register_devices(migrated, DeviceRecord(device_id="B-001", fleet=Fleet.BUS))
    token = await make_token(migrated, Role.OPERATOR)
    async with (
        ApiServer(migrated, **FAST) as api,
        await ws_connect(api.ws_url("/ws/positions", token=token)) as ws,
    ):
        frames = Frames(ws)
        await frames.next()
        now = now_utc()
        await _publish(
            publisher,
            [
                (_topic(migrated, Fleet.BUS, "B-001"), b"{not json"),
                (_topic(migrated, Fleet.BUS, "B-001"), position_payload(now, 0.0, 0.0)),
                (_topic(migrated, Fleet.BUS, "B-404"), position_payload(now, 31.6, -8.0)),
                (_topic(migrated, Fleet.TRUCK, "B-001"), position_payload(now, 31.6, -8.0)),
                (_topic(migrated, Fleet.BUS, "B-001"), position_payload(now, 31.61, -8.01)),
            ],
        )
        await frames.until(lambda: "B-001" in frames.vehicles)
        assert set(frames.vehicles) == {"B-001"}
        assert frames.vehicles["B-001"]["lat"] == pytest.approx(31.61)
        async with httpx.AsyncClient(base_url=api.base_url) as client:
            metrics = (await client.get("/metrics")).text
    invalid = next(
        line for line in metrics.splitlines() if line.startswith("rasd_api_live_invalid_total")
    )
    assert float(invalid.split()[-1]) >= 4


async def test_every_api_process_streams_the_live_positions(
    migrated: Settings, publisher: Publisher
) -> None:
    register_devices(migrated, DeviceRecord(device_id="T-001", fleet=Fleet.TRUCK))
    token = await make_token(migrated, Role.OPERATOR)
    async with ApiServer(migrated, **FAST) as one, ApiServer(migrated, **FAST) as two:
        clients = [
            Frames(await ws_connect(server.ws_url("/ws/positions", token=token)))
            for server in (one, two)
        ]
        try:
            for frames in clients:
                await frames.next()
            await _publish(
                publisher,
                [
                    (
                        _topic(migrated, Fleet.TRUCK, "T-001"),
                        position_payload(now_utc(), 31.7, -8.07),
                    )
                ],
            )
            for frames in clients:
                await frames.until(partial(operator.contains, frames.vehicles, "T-001"))
        finally:
            for frames in clients:
                await frames.ws.close()


class StalledClient:
    """A WebSocket client over a raw socket with a tiny receive buffer that reads only when told,
    so the server's sends to it block (the slow client of the issue)."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(1)  # byte by byte: leave frames in the kernel
        assert self.buffer.startswith(b"HTTP/1.1 101"), self.buffer
        self.buffer = b""

    def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the stalled client")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def frame(self) -> dict[str, Any] | None:
        """Read one server frame; JSON for text frames, None for control frames."""
        head = self._exactly(2)
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._exactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._exactly(8))[0]
        payload = self._exactly(length)
        if opcode == 0x8:
            raise ConnectionError(f"server closed: {payload[:2].hex()} {payload[2:]!r}")
        return json.loads(payload) if opcode == 0x1 else None

    def close(self) -> None:
        """Drop the connection."""
        self.sock.close()


async def test_a_client_that_stops_reading_never_slows_the_others(
    migrated: Settings, publisher: Publisher
) -> None:
    vehicles = [f"B-{i:04d}" for i in range(400)]
    register_devices(migrated, *(DeviceRecord(device_id=v, fleet=Fleet.BUS) for v in vehicles))
    token = await make_token(migrated, Role.OPERATOR)
    rounds = 8
    base = now_utc() - timedelta(minutes=1)

    def round_messages(r: int) -> list[tuple[str, bytes]]:
        t = base + timedelta(seconds=r)
        return [
            (_topic(migrated, Fleet.BUS, v), position_payload(t, 31.6 + i * 1e-4, -8.0 + r * 1e-3))
            for i, v in enumerate(vehicles)
        ]

    def final(vehicle: dict[str, Any]) -> bool:
        return bool(vehicle["lon"] == pytest.approx(-8.0 + (rounds - 1) * 1e-3))

    async with ApiServer(
        migrated, ws_frame_ms=100, ws_ping_s=300.0, ws_send_timeout_s=300.0
    ) as api:
        stalled = await asyncio.to_thread(
            StalledClient, api.api.port, f"/ws/positions?token={token}"
        )
        async with await ws_connect(api.ws_url("/ws/positions", token=token)) as ws:
            fast = Frames(ws)
            await fast.next()
            for r in range(rounds):
                await _publish(publisher, round_messages(r))
            # The reading client gets every vehicle's last fix while the other reads nothing.
            await fast.until(
                lambda: (
                    len(fast.vehicles) == len(vehicles)
                    and all(final(v) for v in fast.vehicles.values())
                ),
                within_s=60,
                what="the final round on the reading client",
            )
        # Now the stalled client reads: what piled up was coalesced, newest fix per vehicle.
        seen: dict[str, dict[str, Any]] = {}
        items = 0

        def drain() -> None:
            nonlocal items
            while not (len(seen) == len(vehicles) and all(final(v) for v in seen.values())):
                frame = stalled.frame()
                for vehicle in (frame or {}).get("vehicles", ()):
                    seen[vehicle["id"]] = vehicle
                    items += 1

        await asyncio.to_thread(drain)
        stalled.close()
        published = rounds * len(vehicles)
        assert items < published, f"{items} items for {published} published: nothing coalesced"


def test_stalled_client_frame_reader_handles_extended_lengths() -> None:
    """The raw reader above decodes 16- and 64-bit payload lengths (it is test code too)."""
    left, right = socket.socketpair()
    with left, right:
        body = json.dumps({"type": "positions", "vehicles": [{"id": "x" * 70000}]}).encode()
        right.sendall(bytes([0x81, 127]) + struct.pack("!Q", len(body)) + body)
        client = StalledClient.__new__(StalledClient)
        client.sock, client.buffer = left, b""
        frame = client.frame()
        assert frame is not None and frame["vehicles"][0]["id"] == "x" * 70000
