"""Open311 GeoReport v2 against the real server: a third-party GeoReport client
(``georeport`` from PyPI) reads services and requests; the spec's POST example drives
creation with httpx; status codes and the error list; api_key and rate-limit refusals that
hold across two API processes; nothing stored half; no contact details on any public
endpoint; the operators' and crews' views."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
from georeport import GeoReport
from psycopg import sql

from api.auth import Role
from telemetry.complaints.records import Contact, NewComplaint
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage import complaints as store
from telemetry.topics import Fleet
from tests.support.api_server import ApiServer, eventually, make_token, now_utc, register_devices
from tests.support.database import open_db
from tests.support.env import settings_env

LAT0, LON0 = 31.6300, -7.9900
STEP = 0.0003
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
CONTACT = {
    "email": "amina.contact-marker@example.ma",
    "device_id": "dev-marker-77",
    "account_id": "acct-marker-42",
    "first_name": "Aminamarker",
    "last_name": "Elmarker",
    "phone": "+212611223344",
}


def _lights(settings: Settings, district: str = "medina") -> None:
    register_devices(
        settings,
        *[
            DeviceRecord(device_id=f"L-MED-{i:05d}", fleet=Fleet.LIGHT, district=district,
                         circuit="C-001", lat=LAT0 + i * STEP, lon=LON0, rated_w=80.0)
            for i in range(10)
        ],
    )  # fmt: skip


@pytest.fixture
async def api(migrated: Settings) -> AsyncIterator[ApiServer]:
    """The API on a schema with ten lights in the Médina, sweeping complaints often."""
    _lights(migrated)
    async with ApiServer(migrated, complaint_sweep_s=0.3) as server:
        yield server


def _post_form(api_key: str, **fields: str) -> dict[str, str]:
    # The spec's example request, adapted to this city's services.
    form = {
        "api_key": api_key,
        "jurisdiction_id": "marrakech.ma",
        "service_code": "streetlight_out",
        "lat": str(LAT0 + 4 * STEP),
        "long": str(LON0),
        "address_string": "Derb Dabachi, Medina, Marrakech",
        "description": "The lamp in front of number 12 has been dark for three nights",
        "media_url": "https://example.org/photo.jpg",
        **CONTACT,
    }
    form.update(fields)
    return {k: v for k, v in form.items() if v != ""}


async def _post(client: httpx.AsyncClient, form: dict[str, str]) -> httpx.Response:
    return await client.post("/open311/v2/requests.json", data=form, headers=FORM)


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, list) and len(body) == 1
    assert set(body[0]) == {"code", "description"} and body[0]["code"] == status
    description: str = body[0]["description"]
    return description


def _count(settings: Settings, table: str) -> int:
    with open_db(settings) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()
    assert row is not None
    return int(row[0])


REQUEST_FIELDS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code",
    "description", "agency_responsible", "service_notice", "requested_datetime",
    "updated_datetime", "expected_datetime", "address", "address_id", "zipcode", "lat", "long",
    "media_url",
}  # fmt: skip


async def test_georeport_client_reads_what_was_posted(migrated: Settings, api: ApiServer) -> None:
    reporter = await make_token(migrated, Role.REPORTER, label="city app")
    async with api.client() as client:
        created = await _post(client, _post_form(reporter))
        assert created.status_code == 201, created.text
        body = created.json()
        assert isinstance(body, list) and set(body[0]) == {
            "service_request_id", "service_notice", "account_id",
        }  # fmt: skip
        request_id = body[0]["service_request_id"]
        assert isinstance(request_id, int) and body[0]["account_id"] is None
        # Same id family for a second, address-only request (no coordinates: no_location).
        other = await _post(
            client, _post_form(reporter, service_code="illegal_dumping", lat="", long="")
        )
        assert other.status_code == 201
    geo = GeoReport(f"{api.base_url}/open311/v2", jurisdiction="marrakech.ma")
    services = await asyncio.to_thread(geo.get_service_list)
    assert "streetlight_out" in {s["service_code"] for s in services}
    listed = await asyncio.to_thread(geo.get_service_requests)
    assert {r["service_request_id"] for r in listed} == {
        request_id,
        other.json()[0]["service_request_id"],
    }
    for r in listed:
        assert set(r) == REQUEST_FIELDS
    only = await asyncio.to_thread(
        geo.get_service_requests, service_code="streetlight_out", status="open"
    )
    assert [r["service_request_id"] for r in only] == [request_id]
    one = await asyncio.to_thread(geo.get_service_request, str(request_id))
    assert one["status"] == "open" and one["service_name"] == "Streetlight out"
    assert one["lat"] == pytest.approx(LAT0 + 4 * STEP) and one["long"] == pytest.approx(LON0)
    assert one["requested_datetime"].endswith("+01:00")  # w3 format, the city's offset
    assert one["agency_responsible"].startswith("Commune de Marrakech")
    # The complaint is linked right away to the nearest light (a citizen report).
    async with api.client(await make_token(migrated, Role.OPERATOR)) as client:

        async def linked() -> dict[str, Any] | None:
            got = (await client.get(f"/api/v1/complaints/{request_id}")).json()
            return got if got["link_state"] == "linked" else None

        seen = await eventually(linked, what="the complaint linked")

        assert seen is not None
        assert seen["evidence"][0]["asset_key"] == "L-MED-00004"
        assert seen["alert_id"] is not None and seen["district"] == "medina"


async def test_post_refusals_store_nothing(migrated: Settings, api: ApiServer) -> None:
    reporter = await make_token(migrated, Role.REPORTER)
    operator = await make_token(migrated, Role.OPERATOR)
    async with api.client() as client:
        assert "api_key" in _error(await _post(client, _post_form("")), 403)
        assert "Invalid api_key" in _error(await _post(client, _post_form("rasd_" + "x" * 43)), 403)
        assert "operator" in _error(await _post(client, _post_form(operator)), 403)
        wrong_type = await client.post(
            "/open311/v2/requests.json", json=_post_form(reporter), headers={}
        )
        assert "x-www-form-urlencoded" in _error(wrong_type, 400)
        cases = [
            (_post_form(reporter, service_code=""), 400, "service_code"),
            (_post_form(reporter, service_code="potholes"), 404, "potholes"),
            (_post_form(reporter, lat="", long="", address_string=""), 400, "location"),
            (_post_form(reporter, long=""), 400, "lat and long"),
            (_post_form(reporter, jurisdiction_id="rabat.ma"), 404, "jurisdiction_id"),
            (_post_form(reporter, email="not-an-address"), 400, "email"),
            (_post_form(reporter, description="x" * 4001), 400, "4,000"),
            (_post_form(reporter, description="lamp\x00out"), 400, "control characters"),
        ]
        for form, status, words in cases:
            assert words in _error(await _post(client, form), status)
        huge = await client.post(
            "/open311/v2/requests.json", content=b"a=" + b"x" * 20_000, headers=FORM
        )
        assert "larger" in _error(huge, 400)
        # PostgreSQL text cannot hold NUL: a filter holding one is the client's error, not a 500.
        nul = await client.get("/open311/v2/requests.json", params={"service_code": "a\x00"})
        assert "NUL" in _error(nul, 400)
    assert _count(migrated, "complaints") == 0
    assert _count(migrated, "complaint_contacts") == 0


async def test_rate_limits_hold_across_two_api_processes(migrated: Settings) -> None:
    _lights(migrated)
    reporter = await make_token(migrated, Role.REPORTER)
    # A window far longer than the test, so that no window boundary falls inside it.
    window = {"open311_rate_window_s": 10**8}
    limits = {"open311_rate_per_key": 3, "open311_rate_per_address": 100, **window}
    async with ApiServer(migrated, **limits) as one, ApiServer(migrated, **limits) as two:
        answers = []
        for server in (one, two, one, two):
            async with server.client() as client:
                answers.append(await _post(client, _post_form(reporter)))
        assert [a.status_code for a in answers] == [201, 201, 201, 429]
        assert "at most 3" in _error(answers[-1], 429)
        assert int(answers[-1].headers["Retry-After"]) > 0
    assert _count(migrated, "complaints") == 3
    # Per client address: every request counts, even one with a bad key (4 so far).
    per_address = {"open311_rate_per_address": 6, "open311_rate_per_key": 100, **window}
    async with ApiServer(migrated, **per_address) as server, server.client() as client:
        assert (await _post(client, _post_form("rasd_" + "y" * 43))).status_code == 403
        assert (await _post(client, _post_form(reporter))).status_code == 201
        assert "address" in _error(await _post(client, _post_form(reporter)), 429)
    assert _count(migrated, "complaints") == 4


async def test_get_requests_filters_and_formats(migrated: Settings, api: ApiServer) -> None:
    now = now_utc()
    with open_db(migrated) as conn:
        ids = {}
        for name, code, days, status in [
            ("recent_open", "bus_late", 1, "open"),
            ("recent_closed", "bus_late", 2, "closed"),
            ("month", "missed_collection", 30, "open"),
            ("old", "bus_late", 120, "open"),
        ]:
            row = store.insert_complaint(
                conn,
                NewComplaint(source="open311", service_code=code,
                             requested_at=now - timedelta(days=days),
                             address="Jemaa el-Fna", status=status),  # type: ignore[arg-type]
                Contact(),
            )  # fmt: skip
            ids[name] = row.complaint_id
    base = "/open311/v2/requests.json"
    async with api.client() as client:

        async def got(**params: str) -> list[int]:
            response = await client.get(base, params=params)
            assert response.status_code == 200, response.text
            return sorted(r["service_request_id"] for r in response.json())

        assert await got() == sorted([ids["recent_open"], ids["recent_closed"], ids["month"]])
        assert await got(status="closed") == [ids["recent_closed"]]
        assert await got(service_code="missed_collection,bus_late", status="open") == sorted(
            [ids["recent_open"], ids["month"]]
        )
        start = (now - timedelta(days=150)).isoformat()
        end = (now - timedelta(days=100)).isoformat()
        assert await got(start_date=start, end_date=end) == [ids["old"]]
        assert await got(service_request_id=f"{ids['old']},{ids['month']}", status="closed") == (
            sorted([ids["old"], ids["month"]])
        )
        too_long = await client.get(
            base, params={"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-12-01T00:00:00Z"}
        )
        assert "90 days" in _error(too_long, 400)
        assert "time zone" in _error(
            await client.get(base, params={"start_date": "2025-01-01T00:00:00"}), 400
        )
        assert "between 1970 and 2099" in _error(
            await client.get(base, params={"end_date": "0001-01-05T00:00:00Z"}), 400
        )
        one = await client.get(f"/open311/v2/requests/{ids['old']}.json")
        assert one.status_code == 200 and [r["service_request_id"] for r in one.json()] == [
            ids["old"]
        ]
        assert one.headers["content-type"].startswith("application/json")
        assert "not found" in _error(await client.get("/open311/v2/requests/999999.json"), 404)
        assert "not found" in _error(await client.get("/open311/v2/requests/abc.json"), 404)
        assert "no Open311" in _error(await client.get("/open311/v2/services.csv"), 404)
        assert "no Open311" in _error(await client.get("/open311/v2/nothing-here"), 404)
        juris = await client.get(base, params={"jurisdiction_id": "casablanca.ma"})
        assert "jurisdiction_id" in _error(juris, 404)
        definition = await client.get("/open311/v2/services/bus_late.json")
        assert definition.json() == {"service_code": "bus_late", "attributes": []}
        assert _error(await client.get("/open311/v2/services/potholes.json"), 404)


def _leaks(text: str) -> list[str]:
    return [value for value in CONTACT.values() if value in text]


async def test_contact_details_never_leak(migrated: Settings, api: ApiServer) -> None:
    reporter = await make_token(migrated, Role.REPORTER)
    operator = await make_token(migrated, Role.OPERATOR)
    crew = await make_token(migrated, Role.CREW, ["medina"])
    admin = await make_token(migrated, Role.ADMIN)
    async with api.client() as client:
        created = await _post(client, _post_form(reporter))
        assert created.status_code == 201 and not _leaks(created.text)
        request_id = created.json()[0]["service_request_id"]
        public = [
            "/open311/v2/services.json",
            "/open311/v2/requests.json",
            f"/open311/v2/requests/{request_id}.json",
            f"/open311/v2/requests.json?service_request_id={request_id}",
        ]
        for path in public:
            response = await client.get(path)
            assert response.status_code == 200 and not _leaks(response.text), path
    with open_db(migrated) as conn:
        stored = conn.execute("SELECT email, phone FROM complaint_contacts").fetchall()
        assert stored == [(CONTACT["email"], CONTACT["phone"])]
        row = conn.execute("SELECT alert_id FROM complaints").fetchone()
    alert_id = row[0] if row else None
    for token in (operator, crew):
        async with api.client(token) as client:
            paths = ["/api/v1/complaints?evidence=true", f"/api/v1/complaints/{request_id}"]
            if alert_id is not None:
                paths += [f"/api/v1/alerts/{alert_id}", "/api/v1/alerts"]
            for path in paths:
                response = await client.get(path)
                assert response.status_code == 200, (path, response.text)
                assert not _leaks(response.text), path
    # Admins may see who filed it (to call them back); documented in docs/open311.md.
    async with api.client(admin) as client:
        detail = (await client.get(f"/api/v1/complaints/{request_id}")).json()
        assert detail["contact"]["email"] == CONTACT["email"]
        listed = await client.get("/api/v1/complaints")
        assert not _leaks(listed.text)


async def test_operator_and_crew_views(migrated: Settings, api: ApiServer) -> None:
    reporter = await make_token(migrated, Role.REPORTER)
    operator = await make_token(migrated, Role.OPERATOR, label="desk")
    medina = await make_token(migrated, Role.CREW, ["medina"])
    gueliz = await make_token(migrated, Role.CREW, ["gueliz"])
    async with api.client() as client:
        request_id = (await _post(client, _post_form(reporter))).json()[0]["service_request_id"]
    async with api.client(operator) as client:

        async def linked() -> bool:
            got = (await client.get(f"/api/v1/complaints/{request_id}")).json()
            return bool(got["link_state"] == "linked")

        await eventually(linked, what="the complaint linked")
        listed = (await client.get("/api/v1/complaints", params={"status": "open"})).json()
        assert [c["complaint_id"] for c in listed["items"]] == [request_id]
        assert listed["items"][0]["evidence"] is None
        assert listed["items"][0]["verdict"] == "unknown"  # no telemetry from that light yet
        box = await client.get("/api/v1/complaints", params={"bbox": "-8.1,31.5,-8.05,31.6"})
        assert box.json()["count"] == 0
        huge = await client.get("/api/v1/complaints", params={"alert_id": str(2**70)})
        assert huge.status_code == 422  # beyond bigint: refused, not a database error
        relinked = await client.post(f"/api/v1/complaints/{request_id}/relink")
        assert relinked.status_code == 200 and relinked.json()["evidence"]
    async with api.client(medina) as client:
        mine = (await client.get("/api/v1/complaints")).json()
        assert [c["complaint_id"] for c in mine["items"]] == [request_id]
        assert (await client.post(f"/api/v1/complaints/{request_id}/close")).status_code == 403
    async with api.client(gueliz) as client:
        assert (await client.get("/api/v1/complaints")).json()["count"] == 0
        assert (await client.get(f"/api/v1/complaints/{request_id}")).status_code == 403
    async with api.client(reporter) as client:
        assert (await client.get("/api/v1/complaints")).status_code == 403
    async with api.client(operator) as client:
        closed = await client.post(
            f"/api/v1/complaints/{request_id}/close", json={"note": "Duplicate of 12."}
        )
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        again = await client.post(f"/api/v1/complaints/{request_id}/close")
        assert again.status_code == 409
        assert (await client.get("/api/v1/complaints/424242")).status_code == 404
    async with api.client() as client:
        public = (await client.get(f"/open311/v2/requests/{request_id}.json")).json()[0]
        assert public["status"] == "closed" and public["status_notes"] == "Duplicate of 12."


async def test_reporter_tokens_from_the_command_line(migrated: Settings, api: ApiServer) -> None:
    env = settings_env(migrated) | {"PYTHONPATH": os.getcwd()}
    made = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "api", "tokens", "create", "--role", "reporter", "--label", "app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    token = made.stdout.strip()
    assert token.startswith("rasd_") and "(reporter)" in made.stderr
    async with api.client() as client:
        assert (await _post(client, _post_form(token))).status_code == 201
    with psycopg.connect(
        migrated.database_url, options=f"-c search_path={migrated.database_schema}"
    ) as conn:
        assert conn.execute("SELECT role FROM api_tokens").fetchall() == [("reporter",)]
