"""REST API on the real database: tokens and refusals, devices, latest positions, tracks."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from api.auth import Role
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.topics import Fleet
from tests.support.api_server import (
    ApiServer,
    api_server,
    fix,
    make_token,
    now_utc,
    register_devices,
    store,
)
from tests.support.env import settings_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def api(migrated: Settings) -> AsyncIterator[ApiServer]:
    """The API on the test schema."""
    async for server in api_server(migrated):
        yield server


def _city(settings: Settings) -> None:
    register_devices(
        settings,
        DeviceRecord(device_id="B-001", fleet=Fleet.BUS, route="1", label="line 1 bus 1"),
        DeviceRecord(device_id="B-002", fleet=Fleet.BUS, route="3"),
        DeviceRecord(device_id="B-003", fleet=Fleet.BUS, route="3"),
        DeviceRecord(device_id="T-ARM-001", fleet=Fleet.TRUCK, district="gueliz"),
        DeviceRecord(device_id="L-MED-00001", fleet=Fleet.LIGHT, district="medina", circuit="C-1"),
    )


def _error(body: dict[str, object]) -> dict[str, object]:
    error = body["error"]
    assert isinstance(error, dict)
    return error


def test_tokens_command_prints_a_token_for_shell_scripts(migrated: Settings) -> None:
    env = settings_env(migrated) | {"RASD_API_PORT": "8123"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api", "tokens", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    made = run("create", "--role", "operator", "--label", "night desk")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("rasd_") and "\n" not in token
    url = run("create", "--role", "crew", "--district", "medina", "--print-url")
    assert url.returncode == 0, url.stderr
    assert url.stdout.strip().startswith("http://127.0.0.1:8123/crew#token=rasd_")
    refused = run("create", "--role", "crew")
    assert refused.returncode == 2 and "--district" in refused.stderr
    listed = run("list")
    assert "night desk" in listed.stdout and token not in listed.stdout
    assert run("revoke", "1").returncode == 0
    rows = [line.split("\t") for line in run("list").stdout.splitlines()[1:]]
    revoked_at = {row[0]: row[-1] for row in rows}
    assert revoked_at["1"] != "-" and revoked_at["2"] == "-"
    assert run("revoke", "99").returncode == 1


async def test_tokens_are_required_and_roles_are_enforced(
    migrated: Settings, api: ApiServer
) -> None:
    _city(migrated)
    operator = await make_token(migrated, Role.OPERATOR)
    crew = await make_token(migrated, Role.CREW, ["medina"])
    admin = await make_token(migrated, Role.ADMIN)
    async with api.client() as anonymous:
        missing = await anonymous.get("/api/v1/devices")
        assert missing.status_code == 401
        assert _error(missing.json())["code"] == "unauthenticated"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        bad = await anonymous.get("/api/v1/devices", headers={"Authorization": "Bearer rasd_nope"})
        assert bad.status_code == 401
    async with api.client(crew) as client:
        refused = await client.get("/api/v1/vehicles/positions")
        assert refused.status_code == 403
        assert "« crew » ne permet pas : read city" in str(_error(refused.json())["message"])
    async with api.client(operator) as client:
        assert (await client.get("/api/v1/devices")).status_code == 200
        put = await client.put("/api/v1/devices/B-009", json={"fleet": "bus"})
        assert put.status_code == 403
        assert (await client.get("/api/v1/tokens")).status_code == 403
        # PostgreSQL text cannot hold NUL: the client's error, answered as such.
        nul = await client.get("/api/v1/devices", params={"district": "med\x00ina"})
        assert nul.status_code == 422 and "NUL" in str(_error(nul.json())["message"])
    async with api.client(admin) as client:
        created = await client.put("/api/v1/devices/B-009", json={"fleet": "bus", "route": "9"})
        assert created.status_code == 201 and created.json()["route"] == "9"
        replaced = await client.put("/api/v1/devices/B-009", json={"fleet": "bus", "route": "8"})
        assert replaced.status_code == 200 and replaced.json()["route"] == "8"
        made = await client.post("/api/v1/tokens", json={"role": "operator", "label": "temp"})
        assert made.status_code == 201
        new = made.json()
        assert new["token"].startswith("rasd_")
        revoked = await client.delete(f"/api/v1/tokens/{new['token_id']}")
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        no_crew_district = await client.post("/api/v1/tokens", json={"role": "crew"})
        assert no_crew_district.status_code == 422
        listed = (await client.get("/api/v1/tokens")).json()
        assert all("token" not in row for row in listed)
    async with api.client(new["token"]) as client:
        assert (await client.get("/api/v1/devices")).status_code == 401


async def test_devices_filter_page_and_detail(migrated: Settings, api: ApiServer) -> None:
    _city(migrated)
    token = await make_token(migrated, Role.OPERATOR)
    async with api.client(token) as client:
        buses = (await client.get("/api/v1/devices", params={"fleet": "bus", "limit": 2})).json()
        assert [d["device_id"] for d in buses["items"]] == ["B-001", "B-002"]
        assert buses["next_after"] == "B-002"
        rest = await client.get(
            "/api/v1/devices", params={"fleet": "bus", "limit": 2, "after": buses["next_after"]}
        )
        assert [d["device_id"] for d in rest.json()["items"]] == ["B-003"]
        assert rest.json()["next_after"] is None
        route3 = await client.get(
            "/api/v1/devices", params=[("route", "3"), ("fleet", "bus,truck")]
        )
        assert [d["device_id"] for d in route3.json()["items"]] == ["B-002", "B-003"]
        medina = await client.get("/api/v1/devices", params={"district": "medina"})
        assert [d["device_id"] for d in medina.json()["items"]] == ["L-MED-00001"]
        detail = (await client.get("/api/v1/devices/B-001")).json()
        assert detail["label"] == "line 1 bus 1" and detail["fleet"] == "bus"
        assert (await client.get("/api/v1/devices/B-404")).status_code == 404
        bad_fleet = await client.get("/api/v1/devices", params={"fleet": "tram"})
        assert bad_fleet.status_code == 422
        assert "unknown fleet tram" in str(_error(bad_fleet.json())["message"])
        too_big = await client.get("/api/v1/devices", params={"limit": 100000})
        assert too_big.status_code == 422
        bad_id = await client.get("/api/v1/devices/no%20spaces")
        assert bad_id.status_code == 422


async def test_latest_positions_with_filters_staleness_and_geojson(
    migrated: Settings, api: ApiServer
) -> None:
    _city(migrated)
    now = now_utc()
    store(
        migrated,
        positions=[
            fix("B-001", now - timedelta(seconds=30), 31.6300, -8.0100, route="1"),
            fix("B-001", now - timedelta(seconds=5), 31.6310, -8.0110, route="1"),
            fix("B-002", now - timedelta(minutes=10), 31.6400, -8.0300),
            fix("T-ARM-001", now - timedelta(seconds=20), 31.6600, -8.0400),
            # A late fix older than the stored one must not replace it.
            fix("B-001", now - timedelta(minutes=5), 31.6000, -8.0000, route="1"),
        ],
    )
    token = await make_token(migrated, Role.OPERATOR)
    async with api.client(token) as client:
        body = (await client.get("/api/v1/vehicles/positions")).json()
        by_id = {v["id"]: v for v in body["vehicles"]}
        assert set(by_id) == {"B-001", "B-002", "T-ARM-001"}
        assert by_id["B-001"]["lat"] == pytest.approx(31.631)
        assert by_id["B-001"]["stale"] is False and by_id["B-002"]["stale"] is True
        assert by_id["B-002"]["route"] == "3"  # from the registry when the fix has none
        trucks = (await client.get("/api/v1/vehicles/positions", params={"fleet": "truck"})).json()
        assert [v["id"] for v in trucks["vehicles"]] == ["T-ARM-001"]
        boxed = await client.get(
            "/api/v1/vehicles/positions", params={"bbox": "-8.02,31.62,-8.0,31.635"}
        )
        assert [v["id"] for v in boxed.json()["vehicles"]] == ["B-001"]
        routed = await client.get("/api/v1/vehicles/positions", params={"route": "3"})
        assert [v["id"] for v in routed.json()["vehicles"]] == ["B-002"]
        geo = await client.get("/api/v1/vehicles/positions", params={"format": "geojson"})
        assert geo.headers["content-type"].startswith("application/geo+json")
        feature = next(f for f in geo.json()["features"] if f["id"] == "B-001")
        assert feature["geometry"]["coordinates"] == pytest.approx([-8.011, 31.631])
        accept = await client.get(
            "/api/v1/vehicles/positions", headers={"Accept": "application/geo+json"}
        )
        assert accept.json()["type"] == "FeatureCollection"
        for bad, words in (
            ("1,2,3", "west,south,east,north"),
            ("-8,31,-9,32", "west must be <= east"),
            ("a,b,c,d", "not a number"),
            ("-8,95,-7,96", "latitudes"),
        ):
            answer = await client.get("/api/v1/vehicles/positions", params={"bbox": bad})
            assert answer.status_code == 422, bad
            assert words in str(_error(answer.json())["message"])
        assert (
            await client.get("/api/v1/vehicles/positions", params={"fleet": "light"})
        ).status_code == 422


async def test_track_range_downsampling_and_geojson(migrated: Settings, api: ApiServer) -> None:
    _city(migrated)
    now = now_utc().replace(microsecond=0)
    start = now - timedelta(hours=1)
    store(
        migrated,
        positions=[
            fix("B-001", start + timedelta(seconds=10 * i), 31.62 + i * 1e-4, -8.0, route="1")
            for i in range(360)
        ],
    )
    token = await make_token(migrated, Role.OPERATOR)
    async with api.client(token) as client:
        full = (await client.get("/api/v1/vehicles/B-001/track")).json()
        assert full["count"] == 359 or full["count"] == 360  # the default is the last hour
        assert full["downsampled"] is False
        times = [p["ts"] for p in full["points"]]
        assert times == sorted(times)
        window = {"start": start.isoformat(), "end": (start + timedelta(minutes=10)).isoformat()}
        ten = (await client.get("/api/v1/vehicles/B-001/track", params=window)).json()
        assert ten["count"] == 60
        thin = await client.get(
            "/api/v1/vehicles/B-001/track",
            params={"start": start.isoformat(), "end": now.isoformat(), "max_points": 12},
        )
        thin_body = thin.json()
        assert thin_body["downsampled"] is True and 2 <= thin_body["count"] <= 12
        # The last fix of the range survives downsampling (each bucket keeps its last fix).
        assert thin_body["points"][-1]["ts"] == full["points"][-1]["ts"]
        geo = await client.get(
            "/api/v1/vehicles/B-001/track", params={**window, "format": "geojson"}
        )
        line = geo.json()["features"][0]
        assert line["geometry"]["type"] == "LineString"
        assert len(line["geometry"]["coordinates"]) == 60 == len(line["properties"]["times"])
        assert line["geometry"]["coordinates"][0] == pytest.approx([-8.0, 31.62])
        assert (await client.get("/api/v1/vehicles/B-404/track")).status_code == 404
        light = await client.get("/api/v1/vehicles/L-MED-00001/track")
        assert light.status_code == 404
        too_long = await client.get(
            "/api/v1/vehicles/B-001/track",
            params={"start": (now - timedelta(days=30)).isoformat(), "end": now.isoformat()},
        )
        assert too_long.status_code == 422
        assert "longer than" in str(_error(too_long.json())["message"])
        naive = await client.get(
            "/api/v1/vehicles/B-001/track", params={"start": "2026-01-01T00:00:00"}
        )
        assert naive.status_code == 422 and "UTC offset" in str(_error(naive.json())["message"])
        # Year 1: a default hour back would overflow; refused as out of range, not a 500.
        ancient = await client.get(
            "/api/v1/vehicles/B-001/track", params={"end": "0001-01-01T00:00:00Z"}
        )
        assert ancient.status_code == 422
        assert "between 1970 and 2099" in str(_error(ancient.json())["message"])
        backwards = await client.get(
            "/api/v1/vehicles/B-001/track",
            params={"start": now.isoformat(), "end": start.isoformat()},
        )
        assert backwards.status_code == 422
        garbage = await client.get("/api/v1/vehicles/B-001/track", params={"start": "yesterday"})
        assert garbage.status_code == 422
        assert _error(garbage.json())["code"] == "invalid_request"
