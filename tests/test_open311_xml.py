"""Open311 GeoReport v2 in XML against the real server: every endpoint by its ``.xml``
extension, parsed with ElementTree; the spec's element shapes, the same filters, status codes,
api_key and rate-limit refusals as JSON, errors as ``<errors>``, no contact details, and the
same values as the JSON answer for the same request."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from api.auth import Role
from telemetry.complaints.records import Contact, NewComplaint, Status
from telemetry.settings import Settings
from telemetry.storage import complaints as store
from tests.support.api_server import ApiServer, make_token, now_utc
from tests.support.database import open_db
from tests.test_open311_api import (
    CONTACT,
    FORM,
    REQUEST_FIELDS,
    _count,
    _leaks,
    _lights,
    _post_form,
)

XML = "text/xml; charset=utf-8"
V2 = "/open311/v2"
SERVICE_FIELDS = [
    "service_code", "service_name", "description", "metadata", "type", "keywords", "group",
]  # fmt: skip
# The spec's order of a request's elements (the JSON object has the same order).
REQUEST_ORDER = [
    "service_request_id", "status", "status_notes", "service_name", "service_code",
    "description", "agency_responsible", "service_notice", "requested_datetime",
    "updated_datetime", "expected_datetime", "address", "address_id", "zipcode", "lat", "long",
    "media_url",
]  # fmt: skip
LIST: tuple[str, str] = ("service_requests", "request")  # root and item of requests
Record = dict[str, str | None]


@pytest.fixture
async def api(migrated: Settings) -> AsyncIterator[ApiServer]:
    """The API on a schema with ten lights in the Médina (those of test_open311_api)."""
    _lights(migrated)
    async with ApiServer(migrated) as server:
        yield server


def _document(response: httpx.Response, status: int) -> ET.Element:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == XML
    assert response.content.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.fromstring(response.content)


def _records(response: httpx.Response, root: str, item: str, status: int = 200) -> list[Record]:
    """The items of a list document, each as {element: text}; empty elements are None."""
    document = _document(response, status)
    assert document.tag == root and document.text is None
    records = []
    for element in document:
        assert element.tag == item
        assert all(len(child) == 0 for child in element)  # flat, as the spec has it
        records.append({child.tag: child.text for child in element})
    return records


def _error(response: httpx.Response, status: int) -> str:
    """The description of the one ``<error>`` of an ``<errors>`` answer."""
    (error,) = _records(response, "errors", "error", status)
    assert list(error) == ["code", "description"] and error["code"] == str(status)
    assert error["description"]
    return error["description"]


def _as_xml(record: dict[str, Any]) -> Record:
    """A JSON record as its XML elements carry it: null is empty, true is "true"."""
    out: Record = {}
    for key, value in record.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = None if value is None else str(value)
    return out


async def _post_xml(client: httpx.AsyncClient, form: dict[str, str]) -> httpx.Response:
    return await client.post(f"{V2}/requests.xml", data=form, headers=FORM)


async def _ids(client: httpx.AsyncClient, **params: str) -> list[int]:
    response = await client.get(f"{V2}/requests.xml", params=params)
    return sorted(int(r["service_request_id"] or 0) for r in _records(response, *LIST))


async def test_services_in_xml(api: ApiServer) -> None:
    async with api.client() as client:
        listed = _records(await client.get(f"{V2}/services.xml"), "services", "service")
        as_json = (await client.get(f"{V2}/services.json")).json()
        assert listed == [_as_xml(s) for s in as_json]
        assert all(list(s) == SERVICE_FIELDS for s in listed)
        lights = next(s for s in listed if s["service_code"] == "streetlight_out")
        assert lights["metadata"] == "false" and lights["type"] == "realtime"
        assert lights["group"] == "lighting" and "lampadaire" in (lights["keywords"] or "")
        in_city = await client.get(f"{V2}/services.xml", params={"jurisdiction_id": "marrakech.ma"})
        assert _records(in_city, "services", "service") == listed
        elsewhere = await client.get(f"{V2}/services.xml", params={"jurisdiction_id": "fes.ma"})
        assert "jurisdiction_id" in _error(elsewhere, 404)
        definition = _document(await client.get(f"{V2}/services/bus_late.xml"), 200)
        assert definition.tag == "service_definition"
        assert [(e.tag, e.text, len(e)) for e in definition] == [
            ("service_code", "bus_late", 0),
            ("attributes", None, 0),
        ]
        assert "potholes" in _error(await client.get(f"{V2}/services/potholes.xml"), 404)


async def test_post_in_xml_and_its_refusals(migrated: Settings, api: ApiServer) -> None:
    reporter = await make_token(migrated, Role.REPORTER)
    operator = await make_token(migrated, Role.OPERATOR)
    async with api.client() as client:
        created = await _post_xml(client, _post_form(reporter))
        (answer,) = _records(created, *LIST, status=201)
        assert list(answer) == ["service_request_id", "service_notice", "account_id"]
        assert answer["account_id"] is None and not _leaks(created.text)
        request_id = int(answer["service_request_id"] or 0)
        assert request_id >= 1 and "crew" in (answer["service_notice"] or "")
        assert "not provided" in _error(await _post_xml(client, _post_form("")), 403)
        bad_key = await _post_xml(client, _post_form("rasd_" + "x" * 43))
        assert "Invalid api_key" in _error(bad_key, 403)
        assert "operator" in _error(await _post_xml(client, _post_form(operator)), 403)
        as_json = await client.post(f"{V2}/requests.xml", json=_post_form(reporter))
        assert "x-www-form-urlencoded" in _error(as_json, 400)
        refusals = [
            ({"service_code": ""}, 400, "service_code"),
            ({"service_code": "potholes"}, 404, "potholes"),
            ({"lat": "", "long": "", "address_string": ""}, 400, "location"),
            ({"lat": "91"}, 400, "lat"),
            ({"jurisdiction_id": "rabat.ma"}, 404, "jurisdiction_id"),
            ({"phone": "call me"}, 400, "phone"),
        ]
        for fields, status, words in refusals:
            refused = await _post_xml(client, _post_form(reporter, **fields))
            assert words in _error(refused, status), fields
        # What was posted in XML reads back like any request, in both formats.
        assert await _ids(client) == [request_id]
        one = (await client.get(f"{V2}/requests/{request_id}.json")).json()[0]
        assert one["description"] == _post_form(reporter)["description"]
    assert _count(migrated, "complaints") == 1
    assert _count(migrated, "complaint_contacts") == 1


async def test_post_in_xml_is_rate_limited(migrated: Settings) -> None:
    _lights(migrated)
    reporter = await make_token(migrated, Role.REPORTER)
    limits = {"open311_rate_per_key": 1, "open311_rate_window_s": 10**8}
    async with ApiServer(migrated, **limits) as server, server.client() as client:
        assert (await _post_xml(client, _post_form(reporter))).status_code == 201
        limited = await _post_xml(client, _post_form(reporter))
        assert "at most 1" in _error(limited, 429)
        assert int(limited.headers["Retry-After"]) > 0
    assert _count(migrated, "complaints") == 1


def _seed(settings: Settings, now: datetime) -> dict[str, int]:
    """Four requests: two recent bus ones (open, closed), a month-old waste one, an old one."""
    wanted: dict[str, tuple[str, int, Status]] = {
        "recent_open": ("bus_late", 1, "open"),
        "recent_closed": ("bus_late", 2, "closed"),
        "month": ("missed_collection", 30, "open"),
        "old": ("bus_late", 120, "open"),
    }
    ids = {}
    with open_db(settings) as conn:
        for name, (code, age, status) in wanted.items():
            when = now - timedelta(days=age)
            new = NewComplaint(
                source="open311",
                service_code=code,
                requested_at=when,
                address="Bab Doukkala",
                status=status,
            )
            ids[name] = store.insert_complaint(conn, new, Contact()).complaint_id
    return ids


async def test_get_requests_in_xml_filters_and_errors(migrated: Settings, api: ApiServer) -> None:
    now = now_utc()
    ids = _seed(migrated, now)
    async with api.client() as client:
        assert await _ids(client) == sorted(
            [ids["recent_open"], ids["recent_closed"], ids["month"]]
        )
        assert await _ids(client, status="closed") == [ids["recent_closed"]]
        assert await _ids(client, service_code="missed_collection,bus_late", status="open") == (
            sorted([ids["recent_open"], ids["month"]])
        )
        start, end = (
            (now - timedelta(days=150)).isoformat(),
            (now - timedelta(days=100)).isoformat(),
        )
        assert await _ids(client, start_date=start, end_date=end) == [ids["old"]]
        both = f"{ids['old']},{ids['month']}"
        assert await _ids(client, service_request_id=both, status="closed") == (
            sorted([ids["old"], ids["month"]])
        )
        listed = await client.get(f"{V2}/requests.xml")
        assert all(list(r) == REQUEST_ORDER for r in _records(listed, *LIST))
        assert set(REQUEST_ORDER) == REQUEST_FIELDS
        base = f"{V2}/requests.xml"
        span = {"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-12-01T00:00:00Z"}
        assert "90 days" in _error(await client.get(base, params=span), 400)
        naive = await client.get(base, params={"start_date": "2025-01-01T00:00:00"})
        assert "time zone" in _error(naive, 400)
        assert "status" in _error(await client.get(base, params={"status": "pending"}), 400)
        juris = await client.get(base, params={"jurisdiction_id": "casablanca.ma"})
        assert "jurisdiction_id" in _error(juris, 404)
        one = _records(await client.get(f"{V2}/requests/{ids['old']}.xml"), *LIST)
        assert [r["service_request_id"] for r in one] == [str(ids["old"])]
        assert "not found" in _error(await client.get(f"{V2}/requests/999999.xml"), 404)
        assert "not found" in _error(await client.get(f"{V2}/requests/abc.xml"), 404)
        assert "no Open311" in _error(await client.get(f"{V2}/nothing-here.xml"), 404)
        # Other extensions are not resources: a JSON 404, as for any unknown path.
        unknown = await client.get(f"{V2}/services.csv")
        assert unknown.status_code == 404 and unknown.json()[0]["code"] == 404


async def test_xml_and_json_carry_the_same_values(migrated: Settings, api: ApiServer) -> None:
    reporter = await make_token(migrated, Role.REPORTER)
    operator = await make_token(migrated, Role.OPERATOR)
    # Markup characters, Arabic, and the CRLF a browser's textarea sends all survive.
    text = "Lamp <b>dark</b> & pole leaning\r\nالمصباح مطفأ منذ ثلاث ليال"
    address_only = _post_form(reporter, service_code="illegal_dumping", lat="", long="")
    async with api.client() as client:
        posted = await _post_xml(client, _post_form(reporter, description=text))
        first = _records(posted, *LIST, status=201)[0]["service_request_id"]
        second = (await _post_xml(client, address_only)).status_code
        assert first is not None and second == 201
    async with api.client(operator) as client:
        # XML 1.0 cannot carry a control character: it reads as U+FFFD, all else is equal.
        closing = {"note": "Pole straightened; lamp replaced \x07 today."}
        closed = await client.post(f"/api/v1/complaints/{first}/close", json=closing)
        assert closed.status_code == 200, closed.text
    resources: list[tuple[str, dict[str, str], tuple[str, str]]] = [
        ("services", {}, ("services", "service")),
        ("requests", {}, LIST),
        ("requests", {"status": "closed"}, LIST),
        ("requests", {"service_code": "illegal_dumping"}, LIST),
        (f"requests/{first}", {}, LIST),
    ]
    async with api.client() as client:
        for resource, params, shape in resources:
            as_json = await client.get(f"{V2}/{resource}.json", params=params)
            as_xml = await client.get(f"{V2}/{resource}.xml", params=params)
            expected = [_as_xml(r) for r in as_json.json()]
            for r in expected:
                notes = r.get("status_notes")
                if notes is not None:
                    r["status_notes"] = notes.replace("\x07", "\ufffd")
            got = _records(as_xml, *shape)
            assert got and got == expected, (resource, params)
            assert [list(r) for r in got] == [list(r) for r in as_json.json()]
            assert not _leaks(as_xml.text), resource
        (mine,) = _records(await client.get(f"{V2}/requests/{first}.xml"), *LIST)
    assert mine["description"] == text and mine["status"] == "closed"
    assert mine["status_notes"] == "Pole straightened; lamp replaced \ufffd today."
    assert mine["requested_datetime"] and mine["requested_datetime"].endswith("+01:00")
    assert mine["lat"] is not None and mine["address_id"] is None and mine["zipcode"] is None
    assert CONTACT["email"] not in mine.values()
