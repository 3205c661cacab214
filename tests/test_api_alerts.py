"""Alerts over REST and ``/ws/alerts``: filters, district scopes, the lifecycle by role, and live
changes through PostgreSQL NOTIFY. Alerts are opened with the alerts service's own storage
function, as its engine does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from api.auth import Role
from telemetry.alert_events import Severity
from telemetry.alert_records import Alert, NewAlert
from telemetry.settings import Settings
from telemetry.storage.alerts import open_alert
from telemetry.topics import Fleet
from tests.support.api_server import (
    ApiServer,
    api_server,
    closed_with,
    make_token,
    now_utc,
    ws_connect,
)
from tests.support.database import open_db


@pytest.fixture
async def api(migrated: Settings) -> AsyncIterator[ApiServer]:
    """The API on the test schema."""
    async for server in api_server(migrated, ws_heartbeat_s=1.0):
        yield server


def _open(
    settings: Settings,
    device: str,
    district: str,
    kind: str = "lampFailure",
    severity: Severity = Severity.MEDIUM,
    minutes_ago: int = 10,
) -> Alert:
    with open_db(settings) as conn:
        alert = open_alert(
            conn,
            NewAlert(
                kind=kind,
                asset_kind=Fleet.LIGHT,
                asset_key=device,
                opened_at=now_utc() - timedelta(minutes=minutes_ago),
                severity=severity,
                device_id=device,
                district=district,
                summary=f"{kind} on {device}",
                lat=31.62,
                lon=-7.99,
            ),
        )
    assert alert is not None
    return alert


def _ids(body: dict[str, Any]) -> list[int]:
    return [a["alert_id"] for a in body["items"]]


async def test_list_filters_and_district_scopes(migrated: Settings, api: ApiServer) -> None:
    med1 = _open(migrated, "L-MED-00001", "medina", minutes_ago=30)
    med2 = _open(
        migrated, "L-MED-00002", "medina", kind="supplyLoss", severity=Severity.HIGH, minutes_ago=20
    )
    gue = _open(migrated, "L-GUE-00001", "gueliz", minutes_ago=10)
    operator = await make_token(migrated, Role.OPERATOR)
    crew = await make_token(migrated, Role.CREW, ["medina"], label="team A")
    async with api.client(operator) as client:
        everything = (await client.get("/api/v1/alerts")).json()
        assert _ids(everything) == [gue.alert_id, med2.alert_id, med1.alert_id]
        kinds = await client.get("/api/v1/alerts", params={"kind": "supplyLoss"})
        assert _ids(kinds.json()) == [med2.alert_id]
        high = await client.get("/api/v1/alerts", params={"severity": "high,critical"})
        assert _ids(high.json()) == [med2.alert_id]
        paged = (await client.get("/api/v1/alerts", params={"limit": 2})).json()
        assert len(paged["items"]) == 2 and paged["next_cursor"]
        rest = await client.get("/api/v1/alerts", params={"cursor": paged["next_cursor"]})
        assert _ids(rest.json()) == [med1.alert_id]
        detail = (await client.get(f"/api/v1/alerts/{gue.alert_id}")).json()
        assert detail["district"] == "gueliz" and detail["history"][0]["event"] == "open"
        assert detail["escalation_level"] == 0 and "next_escalation_at" in detail
        assert (await client.get("/api/v1/alerts/999999")).status_code == 404
        assert (await client.get("/api/v1/alerts", params={"state": "lost"})).status_code == 422
        assert (await client.get("/api/v1/alerts", params={"cursor": "@@"})).status_code == 422
    async with api.client(crew) as client:
        mine = (await client.get("/api/v1/alerts")).json()
        assert _ids(mine) == [med2.alert_id, med1.alert_id]
        other = await client.get("/api/v1/alerts", params={"district": "gueliz"})
        assert other.status_code == 403 and "gueliz" in other.json()["error"]["message"]
        foreign = await client.get(f"/api/v1/alerts/{gue.alert_id}")
        assert foreign.status_code == 403
        assert (await client.post(f"/api/v1/alerts/{gue.alert_id}/acknowledge")).status_code == 403
        assert (await client.get("/api/v1/devices")).status_code == 403


async def test_lifecycle_by_role(migrated: Settings, api: ApiServer) -> None:
    alert = _open(migrated, "L-MED-00042", "medina")
    operator = await make_token(migrated, Role.OPERATOR, label="desk")
    crew = await make_token(migrated, Role.CREW, ["medina"], label="team A")
    path = f"/api/v1/alerts/{alert.alert_id}"
    async with api.client(operator) as desk, api.client(crew) as team:
        assert (await desk.post(f"{path}/acknowledge")).status_code == 403
        assert (await desk.post(f"{path}/resolve")).status_code == 403
        acked = await team.post(f"{path}/acknowledge", json={"note": "on our way"})
        assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
        assert acked.json()["acknowledged_by"] == "crew:team A"
        again = await team.post(f"{path}/acknowledge")
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
        assert (await team.post(f"{path}/assign", json={"assignee": "x"})).status_code == 403
        given = await desk.post(f"{path}/assign", json={"assignee": "Youssef"})
        assert given.status_code == 200 and given.json()["assignee"] == "Youssef"
        assert (await desk.post(f"{path}/assign", json={})).status_code == 422
        done = await team.post(f"{path}/resolve", json={"note": "lamp replaced"})
        assert done.status_code == 200 and done.json()["state"] == "resolved"
        assert (await team.post(f"{path}/resolve")).status_code == 409
        history = (await team.get(path)).json()["history"]
        assert [h["event"] for h in history] == ["open", "ack", "assign", "resolve"]
        assert history[-1]["note"] == "lamp replaced" and history[-1]["actor"] == "crew:team A"
        open_only = await desk.get("/api/v1/alerts", params={"unresolved": "true"})
        assert _ids(open_only.json()) == []


async def _frame(ws: Any, wanted: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if frame["type"] == wanted:
            return frame


async def test_ws_alerts_snapshot_then_live_changes(migrated: Settings, api: ApiServer) -> None:
    first = _open(migrated, "L-MED-00001", "medina")
    _open(migrated, "L-GUE-00001", "gueliz")
    crew = await make_token(migrated, Role.CREW, ["medina", "annakhil"])
    operator = await make_token(migrated, Role.OPERATOR)
    async with await ws_connect(api.ws_url("/ws/alerts", token=crew)) as ws:
        snapshot = await _frame(ws, "snapshot")
        assert [a["alert_id"] for a in snapshot["alerts"]] == [first.alert_id]
        _open(migrated, "L-GUE-00002", "gueliz")  # another district: never sent to this crew
        second = _open(migrated, "L-MED-00002", "medina", kind="supplyLoss")
        opened = await _frame(ws, "alert")
        assert opened["event"] == "open" and opened["alert"]["alert_id"] == second.alert_id
        assert opened["alert"]["lat"] == 31.62
        async with api.client(crew) as team:
            await team.post(f"/api/v1/alerts/{second.alert_id}/acknowledge")
        acked = await _frame(ws, "alert")
        assert acked["event"] == "ack" and acked["alert"]["state"] == "acknowledged"
        await ws.send(json.dumps({"type": "ping"}))
        assert (await _frame(ws, "pong"))["type"] == "pong"
    kinds = api.ws_url("/ws/alerts", token=operator, kind="supplyLoss")
    async with await ws_connect(kinds) as ws:
        snapshot = await _frame(ws, "snapshot")
        assert [a["kind"] for a in snapshot["alerts"]] == ["supplyLoss"]
    code, error = await closed_with(api.ws_url("/ws/alerts", token=crew, district="gueliz"))
    assert code == 4403 and error is not None and "gueliz" in error["message"]
    code, _ = await closed_with(api.ws_url("/ws/alerts"))
    assert code == 4401
