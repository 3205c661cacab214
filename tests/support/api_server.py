"""Harness of the API tests: a real uvicorn server in the test's event loop on a free port,
tokens, seeding helpers and a WebSocket frame reader."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import psycopg
import uvicorn
import websockets
from websockets.asyncio.client import ClientConnection

from api.app import create_app
from api.auth import Role, new_token, token_digest
from api.config import ApiSettings
from telemetry.db import conninfo
from telemetry.decoding import EnergyRow, FaultRow, PositionRow
from telemetry.ops_http import OwnSignalsServer
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.devices import upsert_devices
from telemetry.storage.readings import Batch, ReadingStore
from telemetry.storage.tokens import insert_token
from tests.support.database import open_db
from tests.support.env import free_port

T = TypeVar("T")


class ApiServer:
    """``create_app`` served by uvicorn on 127.0.0.1:<free port> inside the running loop."""

    def __init__(self, settings: Settings, **api_overrides: Any) -> None:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": free_port(),
            "registry_refresh_s": 0.5,
            "auth_cache_s": 0.0,
            "ws_heartbeat_s": 5.0,
            "db_pool_min": 1,
            "db_pool_max": 4,
        }
        values.update(api_overrides)
        self.settings = settings
        self.api = ApiSettings(**values)
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>."""
        return f"http://{self.api.host}:{self.api.port}"

    def ws_url(self, path: str, **params: str | list[str]) -> str:
        """ws:// URL of a WebSocket route with query parameters."""
        query = urlencode(params, doseq=True)
        return f"ws://{self.api.host}:{self.api.port}{path}" + (f"?{query}" if query else "")

    async def __aenter__(self) -> ApiServer:
        app = create_app(self.settings, self.api)
        config = uvicorn.Config(
            app,
            host=self.api.host,
            port=self.api.port,
            ws="websockets-sansio",
            lifespan="on",
            log_level="warning",
            access_log=False,
            ws_ping_interval=self.api.ws_ping_s,
            ws_ping_timeout=self.api.ws_ping_s,
        )
        self.server = OwnSignalsServer(config)
        self.task = asyncio.create_task(self.server.serve())
        await eventually(self._ready, what="API /readyz", within_s=30)
        return self

    async def _ready(self) -> bool:
        assert self.task is not None
        if self.task.done():
            self.task.result()  # re-raise a startup failure
            raise AssertionError("API server exited during startup")
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as client:
                return (await client.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await asyncio.wait_for(self.task, 30)

    def client(self, token: str | None = None) -> httpx.AsyncClient:
        """An HTTP client for this server, sending ``token`` as a bearer token."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=30)


async def eventually(
    probe: Callable[[], Awaitable[T]], *, within_s: float = 30.0, what: str = ""
) -> T:
    """Await ``probe`` until it returns a truthy value; fail after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for {what or probe}")
        await asyncio.sleep(0.05)


async def make_token(
    settings: Settings, role: Role, districts: Iterable[str] = (), label: str | None = None
) -> str:
    """Store a new token for ``role`` and return it."""
    token = new_token()
    async with await psycopg.AsyncConnection.connect(
        conninfo(settings, app="rasd-test"), autocommit=True
    ) as conn:
        await insert_token(conn, token_digest(token), role.value, sorted(districts), label)
    return token


def register_devices(settings: Settings, *records: DeviceRecord) -> None:
    """Put full registry records (route, district, circuit, position) in the test schema."""
    with open_db(settings) as conn:
        upsert_devices(conn, list(records))


def store(
    settings: Settings,
    positions: Iterable[PositionRow] = (),
    energy: Iterable[EnergyRow] = (),
    faults: Iterable[FaultRow] = (),
) -> None:
    """Write readings the way the ingestor does (same store, same triggers)."""
    with open_db(settings) as conn:
        ReadingStore(conn).write(
            Batch(positions=list(positions), energy=list(energy), faults=list(faults))
        )


def fix(
    device_id: str,
    t: datetime,
    lat: float,
    lon: float,
    route: str | None = None,
    speed: float | None = 20.0,
    heading: float | None = 90.0,
) -> PositionRow:
    """A stored position row."""
    return PositionRow(device_id, t, t, lat, lon, speed, heading, 4.0, route, None)


def position_payload(t: datetime, lat: float, lon: float, **extra: Any) -> bytes:
    """A contract v1 position message."""
    return json.dumps({"ts": int(t.timestamp() * 1000), "lat": lat, "lon": lon, **extra}).encode()


class Frames:
    """Reads JSON frames from a WebSocket client and keeps the newest fix per vehicle."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.vehicles: dict[str, dict[str, Any]] = {}

    async def next(self, within_s: float = 30.0) -> dict[str, Any]:
        """The next frame (any type)."""
        raw = await asyncio.wait_for(self.ws.recv(), within_s)
        frame: dict[str, Any] = json.loads(raw)
        self.frames.append(frame)
        for vehicle in frame.get("vehicles", ()):
            self.vehicles[vehicle["id"]] = vehicle
        return frame

    async def until(self, done: Callable[[], bool], within_s: float = 30.0, what: str = "") -> None:
        """Read frames until ``done()`` holds."""
        deadline = time.monotonic() + within_s
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; last: {self.frames[-3:]}")
            try:
                await self.next(within_s=left)
            except TimeoutError:
                continue


async def ws_connect(url: str) -> ClientConnection:
    """Open a WebSocket client (the ``websockets`` library, over a real socket)."""
    return await websockets.connect(url, open_timeout=30, max_size=2**24)


async def closed_with(url: str) -> tuple[int | None, dict[str, Any] | None]:
    """Connect, read until the server closes; the close code and the error frame, if any."""
    error: dict[str, Any] | None = None
    async with websockets.connect(url, open_timeout=30) as ws:
        try:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if frame.get("type") == "error":
                    error = frame
        except websockets.ConnectionClosed as exc:
            return (exc.rcvd.code if exc.rcvd else None), error
    return None, error


def now_utc() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


async def api_server(settings: Settings, **overrides: Any) -> AsyncIterator[ApiServer]:
    """Body of the per-module ``api`` fixtures."""
    async with ApiServer(settings, **overrides) as server:
        yield server
