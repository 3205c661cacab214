"""The API test harness's own smoke tests: a real server answers through it."""

from __future__ import annotations

from api.auth import Role
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.topics import Fleet
from tests.support.api_server import ApiServer, make_token, register_devices


async def test_open_endpoints_answer_without_a_token(migrated: Settings) -> None:
    async with ApiServer(migrated) as server, server.client() as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = (await client.get("/readyz")).json()
        assert ready["status"] == "ready", ready
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200 and "rasd_api_ws_clients" in metrics.text
        spec = (await client.get("/openapi.json")).json()
        assert "/api/v1/vehicles/positions" in spec["paths"]
        assert "/api/v1/alerts/{alert_id}/resolve" in spec["paths"]


async def test_device_registry_is_reachable_through_the_harness(migrated: Settings) -> None:
    register_devices(migrated, DeviceRecord(device_id="B-1", fleet=Fleet.BUS, route="1"))
    token = await make_token(migrated, Role.OPERATOR)
    async with ApiServer(migrated) as server, server.client(token) as client:
        answer = await client.get("/api/v1/devices/B-1")
        assert answer.status_code == 200 and answer.json()["route"] == "1"
