"""The open-data feeds over HTTP against the real database: the seeded city's known answers,
CSV and JSON alike, no personal data, clear 4xx, and the OpenAPI description."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from api.open_data.feeds import FEEDS, PERSONAL_COLUMNS, Feed
from telemetry.db import conninfo
from telemetry.migrate import migrate
from telemetry.settings import Settings
from telemetry.storage.energy import group_energy
from tests.support.api_server import ApiServer
from tests.support.database import drop_schema
from tests.support.env import unique_settings
from tests.support.open_data_city import (
    D1,
    EXPECTED_BUS_DAILY,
    EXPECTED_BUS_MONTHLY,
    EXPECTED_COMPLAINTS,
    EXPECTED_LIGHTS_DAILY,
    EXPECTED_LIGHTS_NOW,
    EXPECTED_REPAIRS,
    EXPECTED_WASTE_DAILY,
    EXPECTED_WASTE_MONTHLY,
    SECRETS,
    TZ,
    D,
    parse_csv,
    refresh,
    seed_city,
)

# Every feed's range over the seeded data (the "now" feed takes none).
RANGES: dict[str, dict[str, str]] = {
    f.name: {}
    if f.period == "now"
    else {"from": "2025-09", "to": "2025-11"}
    if f.period == "month"
    else {"from": "2025-10-01", "to": "2025-10-31"}
    for f in FEEDS
}


@pytest.fixture(scope="module")
def city() -> Iterator[Settings]:
    """One seeded, refreshed schema for the module's read-only tests."""
    settings = unique_settings()
    migrate(settings)
    try:
        seed_city(settings)
        report = asyncio.run(refresh(settings))
        assert report.ran and report.days["light_status"][-1] == D1, report
        yield settings
    finally:
        drop_schema(settings)


def _by(rows: list[dict[str, Any]], *keys: str) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        out[key if len(keys) > 1 else key[0]] = row
    return out


def _subset(row: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in expected}


async def _json(server: ApiServer, feed: str, **params: str) -> dict[str, Any]:
    async with server.client() as client:
        answer = await client.get(f"/open-data/v1/{feed}.json", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == "*"
    body: dict[str, Any] = answer.json()
    return body


async def test_feeds_give_the_known_answers(city: Settings) -> None:
    async with ApiServer(city, opendata_refresh_s=0) as server:
        lights = await _json(server, "lights-status-daily", **RANGES["lights-status-daily"])
        got = _by(lights["rows"], "date", "district")
        assert {k: _subset(got[k], v) for k, v in EXPECTED_LIGHTS_DAILY.items()} == (
            EXPECTED_LIGHTS_DAILY
        )
        assert lights["timezone"] == "Africa/Casablanca"
        assert lights["data_until"] == (D1 + timedelta(days=1)).isoformat()

        now = await _json(server, "lights-status")
        got = _by(now["rows"], "district")
        assert {k: _subset(got[k], v) for k, v in EXPECTED_LIGHTS_NOW.items()} == (
            EXPECTED_LIGHTS_NOW
        )
        assert datetime.fromisoformat(now["rows"][0]["as_of"]).utcoffset() is not None
        only = await _json(server, "lights-status", district="gueliz")
        assert [r["district"] for r in only["rows"]] == ["gueliz"]

        repairs = await _json(server, "fault-repairs-monthly", **RANGES["fault-repairs-monthly"])
        got = _by(repairs["rows"], "month", "district")
        assert {k: _subset(got[k], v) for k, v in EXPECTED_REPAIRS.items()} == EXPECTED_REPAIRS
        assert len(repairs["rows"]) == len(EXPECTED_REPAIRS)

        complaints = await _json(server, "complaints-monthly", **RANGES["complaints-monthly"])
        got = _by(complaints["rows"], "month", "service_code")
        assert got == {
            k: {"month": k[0], "service_code": k[1], **v} for k, v in EXPECTED_COMPLAINTS.items()
        }

        waste = await _json(server, "waste-rounds-daily", **RANGES["waste-rounds-daily"])
        got = _by(waste["rows"], "night", "operator", "district")
        assert {k: _subset(got[k], v) for k, v in EXPECTED_WASTE_DAILY.items()} == (
            EXPECTED_WASTE_DAILY
        )
        assert len(waste["rows"]) == len(EXPECTED_WASTE_DAILY)
        monthly = await _json(server, "waste-rounds-monthly", **RANGES["waste-rounds-monthly"])
        got = _by(monthly["rows"], "month", "operator", "district")
        assert {k: _subset(got[k], v) for k, v in EXPECTED_WASTE_MONTHLY.items()} == (
            EXPECTED_WASTE_MONTHLY
        )
        arma = await _json(
            server, "waste-rounds-daily", operator="Arma", **RANGES["waste-rounds-daily"]
        )
        assert {r["operator"] for r in arma["rows"]} == {"Arma"}

        for name, expected_rows, keys in (
            ("bus-service-daily", EXPECTED_BUS_DAILY, ("date", "line")),
            ("bus-service-monthly", EXPECTED_BUS_MONTHLY, ("month", "line")),
        ):
            bus = await _json(server, name, **RANGES[name])
            got = _by(bus["rows"], *keys)
            assert set(got) == set(expected_rows), name
            for key, expected in expected_rows.items():
                row = got[key]
                assert row["km"] == pytest.approx(expected["km"], abs=0.002), (name, key)
                assert _subset(row, expected) | {"km": expected["km"]} == expected, (name, key)
        line_a = await _json(server, "bus-service-daily", line="A", **RANGES["bus-service-daily"])
        assert [r["date"] for r in line_a["rows"]] == [D.isoformat(), D1.isoformat()]


async def test_energy_is_the_rollups_per_district(city: Settings) -> None:
    async with ApiServer(city, opendata_refresh_s=0) as server:
        daily = await _json(server, "energy-daily", **RANGES["energy-daily"])
        monthly = await _json(server, "energy-monthly", **RANGES["energy-monthly"])
    day = _by(daily["rows"], "date", "district")
    assert day[(D.isoformat(), "menara")]["energy_kwh"] == 4.8
    assert day[(D.isoformat(), "menara")]["lights"] == 2
    assert day[(D.isoformat(), "menara")]["hours"] == 24
    assert day[(D.isoformat(), "medina")]["energy_kwh"] == 0.0
    month = _by(monthly["rows"], "month", "district")
    for district in ("menara", "medina", "gueliz"):
        total = sum(r["energy_kwh"] for r in daily["rows"] if r["district"] == district)
        assert month[("2025-10", district)]["energy_kwh"] == pytest.approx(total, abs=1e-6)
    # The same figures as the operators' endpoint reading only materialised hours.
    async with await psycopg.AsyncConnection.connect(conninfo(city), autocommit=True) as conn:
        for district in ("menara", "medina"):
            periods = await group_energy(
                conn,
                "district",
                district,
                "day",
                datetime(2025, 10, 1, tzinfo=TZ),
                datetime(2025, 11, 1, tzinfo=TZ),
                "Africa/Casablanca",
                realtime=False,
            )
            ours = {r["date"]: r["energy_kwh"] for r in daily["rows"] if r["district"] == district}
            theirs = {
                p.period.astimezone(TZ).date().isoformat(): round(p.energy_wh / 1000, 3)
                for p in periods
            }
            assert ours == theirs


def _typed(feed: Feed, row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in feed.columns:
        text = row[column.name]
        if text == "":
            out[column.name] = None
        elif column.type == "integer":
            out[column.name] = int(text)
        elif column.type == "number":
            out[column.name] = float(text)
        else:
            out[column.name] = text
    return out


async def test_csv_and_json_hold_the_same_rows(city: Settings) -> None:
    async with ApiServer(city, opendata_refresh_s=0) as server, server.client() as client:
        for feed in FEEDS:
            params = RANGES[feed.name]
            as_json = (await client.get(f"/open-data/v1/{feed.name}.json", params=params)).json()
            answer = await client.get(f"/open-data/v1/{feed.name}.csv", params=params)
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/csv")
            assert "attachment" in answer.headers["content-disposition"]
            assert answer.text.splitlines()[0] == ",".join(feed.column_names)
            rows = [_typed(feed, r) for r in parse_csv(answer.text)]
            assert rows == as_json["rows"], feed.name
            assert rows, f"{feed.name} has no rows over the seeded data"
            assert [c["name"] for c in as_json["columns"]] == feed.column_names


async def test_no_answer_carries_personal_data(city: Settings) -> None:
    async with ApiServer(city, opendata_refresh_s=0) as server, server.client() as client:
        bodies = [(await client.get("/open-data/v1/catalog.json")).text]
        for feed in FEEDS:
            assert not set(feed.column_names) & PERSONAL_COLUMNS
            for fmt in ("csv", "json"):
                answer = await client.get(
                    f"/open-data/v1/{feed.name}.{fmt}", params=RANGES[feed.name]
                )
                bodies.append(answer.text)
    for body in bodies:
        for secret in SECRETS:
            assert secret not in body
        for device in ("T-1", "T-2", "B-1", "L2"):  # neither vehicles nor lights are named
            assert f'"{device}"' not in body and f",{device}," not in body


async def test_bad_requests_get_a_clear_4xx(city: Settings) -> None:
    cases = [
        ("energy-daily.json", {"from": "2025-10-10", "to": "2025-10-01"}, "from", "after"),
        ("energy-daily.csv", {"from": "2020-01-01", "to": "2025-10-01"}, "from", "days"),
        ("energy-monthly.json", {"from": "2000-01", "to": "2025-10"}, "from", "months"),
        ("bus-service-daily.json", {"from": "10/01/2025"}, "from", "YYYY-MM-DD"),
        ("bus-service-daily.json", {"to": "2025-02-30"}, "to", "valid"),
        ("waste-rounds-daily.json", {"distrct": "medina"}, "distrct", "unknown parameter"),
        ("lights-status.json", {"from": "2025-10-01"}, "from", "snapshot"),
        ("complaints-monthly.xml", {}, "format", "csv"),
        # Days outside 1970-2099 (the range arithmetic would overflow at year 1 or 9999).
        ("energy-daily.json", {"to": "0001-01-01"}, "to", "between 1970 and 2099"),
        ("energy-monthly.json", {"to": "9999-12"}, "to", "between 1970 and 2099"),
    ]
    server = ApiServer(city, opendata_refresh_s=0, opendata_max_days=400)
    async with server, server.client() as client:
        for path, params, parameter, words in cases:
            answer = await client.get(f"/open-data/v1/{path}", params=params)
            assert answer.status_code == 422, (path, params, answer.text)
            error = answer.json()["error"]
            assert error["code"] == "invalid_request"
            assert error["message"].startswith(parameter), error
            assert words in error["message"], error
        assert (await client.get("/open-data/v1/no-such-feed.json")).status_code == 404


async def test_openapi_and_catalogue_list_every_feed(city: Settings) -> None:
    async with ApiServer(city, opendata_refresh_s=0) as server, server.client() as client:
        spec = (await client.get("/openapi.json")).json()
        catalogue = (await client.get("/open-data/v1/catalog.json")).json()
        page = await client.get("/transparency")
    for feed in FEEDS:
        operation = spec["paths"][f"/open-data/v1/{feed.name}.{{format}}"]["get"]
        assert "open-data" in operation["tags"]
        assert "security" not in operation
        content = operation["responses"]["200"]["content"]
        assert set(content) == {"application/json", "text/csv"}
        row = content["application/json"]["schema"]["properties"]["rows"]["items"]
        assert list(row["properties"]) == feed.column_names
        names = {p["name"] for p in operation["parameters"]}
        assert {"format", "from", "to", *feed.filters} <= names
    assert [f["name"] for f in catalogue["feeds"]] == [f.name for f in FEEDS]
    assert catalogue["realtime"][0]["url"] == "/gtfs-rt/vehicle-positions.pb"
    assert catalogue["licence"]["name"]
    assert page.status_code == 200 and "chart" in page.text.lower()
    json.dumps(catalogue)
