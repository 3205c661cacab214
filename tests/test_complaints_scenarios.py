"""Scenarios with the simulators: what the simulated city reports is stored as the ingestor
stores it and judged by the alerts engine (``tests.support.alerts.ScenarioDriver``), then
citizens complain, through Open311 on the real API or through a platform import.

* A failed lamp plus a complaint near it: one alert (the lamp's) with the complaint attached;
  the crew resolves it through the API and the citizen sees the request closed.
* A street skipped by a truck (the ``skip_collection`` scripted event on the network file's
  rounds): the complaint gets "no service" evidence and the missed-collection alert, one alert
  whether the alerts engine or the complaint saw the miss first; a complaint about a point the
  truck did collect gets the truck's passage instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from api.auth import Role
from simulators.clock import parse_start
from simulators.devices import build_devices, registry_records
from simulators.engine import Engine as SimEngine
from simulators.messages import Message
from simulators.network import network_file
from simulators.scenario import Scenario
from telemetry.geometry import haversine_m
from telemetry.settings import Settings
from telemetry.topics import Fleet
from tests.support.alerts import ScenarioDriver
from tests.support.api_server import ApiServer, eventually, make_token
from tests.support.env import settings_env

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _simulate(scenario: Scenario, start: str, hours: float) -> tuple[float, list[Message]]:
    t0 = parse_start(start)
    sim = SimEngine(scenario, seed=7, start=t0, duration=hours * 3600, prefix="rasd/v1")
    return t0, list(sim.messages())


Driven = tuple[ScenarioDriver, Settings]


@pytest.fixture
def driver(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Driven]]:
    """Factory of scenario drivers (store + alerts engine) on fresh schemas."""
    made: list[ScenarioDriver] = []

    def make(scenario: Scenario) -> Driven:
        settings = make_settings()
        d = ScenarioDriver(settings, scenario, ingest=True)
        made.append(d)
        return d, settings

    yield make
    for d in made:
        d.close()


# -- a failed lamp ------------------------------------------------------------------------------

EVENING = "2025-12-19T20:00:00+01:00"


def lamp_scenario(events: list[str]) -> Scenario:
    """60 quiet lights (no random faults, no defects), no vehicles."""
    return Scenario.model_validate(
        {
            "name": "complaints-lamp",
            "buses": {"count": 0},
            "trucks": {"count": 0},
            "lights": {"count": 60, "fault_rate_multiplier": 0.0},
            "defects": {"enabled": False},
            "events": events,
        }
    )


async def test_failed_lamp_and_complaint_make_one_alert_closed_by_the_crew(
    driver: Callable[..., Driven],
) -> None:
    quiet = lamp_scenario([])
    lights = [r for r in registry_records(build_devices(quiet), quiet) if r.fleet is Fleet.LIGHT]
    lamp = lights[len(lights) // 2]
    assert lamp.lat is not None and lamp.lon is not None and lamp.district
    scenario = lamp_scenario([f"+20m {lamp.device_id} lampFailure"])
    t0, messages = _simulate(scenario, EVENING, 1.0)
    d, settings = driver(scenario)
    d.store_readings(messages)
    d.feed(messages)
    d.finish(t0 + 3600)
    alerts = d.conn.execute("SELECT alert_id, kind, device_id FROM alerts").fetchall()
    assert [(a[1], a[2]) for a in alerts] == [("lampFailure", lamp.device_id)]
    fault_alert = alerts[0][0]
    reporter = await make_token(settings, Role.REPORTER, label="city app")
    crew = await make_token(settings, Role.CREW, [lamp.district], label="team A")
    async with ApiServer(settings, complaint_sweep_s=0.3) as api:
        async with api.client() as client:
            # About 8 m from the lamp, as a citizen standing under it would report.
            form = {
                "api_key": reporter,
                "service_code": "streetlight_out",
                "lat": str(lamp.lat + 0.00005),
                "long": str(lamp.lon + 0.00005),
                "description": "Dark since yesterday",
                "email": "citizen@example.ma",
            }
            created = await client.post("/open311/v2/requests.json", data=form, headers=FORM)
            assert created.status_code == 201, created.text
            request_id = created.json()[0]["service_request_id"]
        async with api.client(crew) as client:

            async def attached() -> dict[str, Any] | None:
                got = (await client.get(f"/api/v1/complaints/{request_id}")).json()
                return got if got["alert_id"] is not None else None

            complaint = await eventually(attached, what="the complaint attached to an alert")

            assert complaint is not None
            assert complaint["alert_id"] == fault_alert
            assert complaint["verdict"] == "confirms"
            evidence = complaint["evidence"][0]
            assert (evidence["asset_key"], evidence["verdict"]) == (lamp.device_id, "confirms")
            assert evidence["details"]["open_faults"][0]["fault"] == "lampFailure"
            alert = (await client.get(f"/api/v1/alerts/{fault_alert}")).json()
            assert alert["details"]["complaints"] == [request_id]
            assert d.conn.execute("SELECT count(*) FROM alerts").fetchone() == (1,)
            done = await client.post(
                f"/api/v1/alerts/{fault_alert}/resolve", json={"note": "LED module replaced"}
            )
            assert done.status_code == 200
        async with api.client() as client:
            public = (await client.get(f"/open311/v2/requests/{request_id}.json")).json()[0]
            assert public["status"] == "closed"
            assert public["status_notes"] == "Resolved by the municipal services."


# -- a street skipped by a truck ------------------------------------------------------------------

NIGHT = "2025-12-19T20:30:00+01:00"
NIGHT_HOURS = 8.5  # past the 04:00 shift end and the alerts' collection grace
SKIPPER = "T-ARM-001"
MORNING = "2025-12-20T08:15:00+01:00"


def night_scenario(skip: str | None = None) -> Scenario:
    """Three trucks (the collecting ones drive their rounds), 40 lights; no defects."""
    return Scenario.model_validate(
        {
            "name": "complaints-night",
            "buses": {"count": 0},
            "trucks": {"count": 3},
            "lights": {"count": 40, "fault_rate_multiplier": 0.0},
            "defects": {"enabled": False},
            "events": [] if skip is None else [f"+10m {SKIPPER} skip_collection {skip}"],
        }
    )


def _points(truck: str) -> list[dict[str, Any]]:
    scenario = night_scenario()
    rounds = network_file(scenario, build_devices(scenario))["rounds"]
    points: list[dict[str, Any]] = next(r["points"] for r in rounds if r["round"] == truck)
    return points


def _isolated(points: list[dict[str, Any]], far_m: float) -> list[int]:
    """Points of a round farther than ``far_m`` from all its other points."""
    return [
        i
        for i, p in enumerate(points)
        if all(
            haversine_m(p["lat"], p["lon"], q["lat"], q["lon"]) > far_m
            for q in points
            if q is not p
        )
    ]


def _cli(settings: Settings, *argv: str) -> None:
    """``python -m api ARGV`` in a child process, as an operator would run it."""
    done = subprocess.run(
        [sys.executable, "-m", "api", *argv],
        env=settings_env(settings),
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("order", ["engine_first", "complaint_first"])
def test_skipped_street_gives_no_service_evidence_and_one_missed_collection_alert(
    driver: Callable[..., Driven],
    tmp_path: Path,
    order: str,
) -> None:
    points = _points(SKIPPER)
    # The collection linking radius is 150 m: the skipped point and the served one must each
    # be alone within it, so each complaint is about one point only.
    isolated = _isolated(points, 400.0)
    assert len(isolated) >= 2, "the layout needs two isolated points on the round"
    skipped, served = points[isolated[0]], points[isolated[1]]
    scenario = night_scenario(str(isolated[0]))
    t0, messages = _simulate(scenario, NIGHT, NIGHT_HOURS)
    d, settings = driver(scenario)
    d.store_readings(messages)
    if order == "engine_first":
        d.feed(messages)
        d.finish(t0 + NIGHT_HOURS * 3600)
    # The national platform's export of the next morning: one complaint at each point.
    export = [
        {"id": "CH-SKIP", "date": MORNING, "category": "Collecte non effectuee",
         "description": "Bins still full", "lat": skipped["lat"] + 0.0002,
         "lon": skipped["lon"], "status": "nouvelle"},
        {"id": "CH-DONE", "date": MORNING, "category": "Collecte non effectuee",
         "lat": served["lat"], "lon": served["lon"] + 0.0002, "status": "nouvelle"},
    ]  # fmt: skip
    path = tmp_path / "chikaya.json"
    path.write_text(json.dumps(export), "utf-8")
    _cli(settings, "complaints", "import", str(path))
    _cli(settings, "complaints", "link")
    if order == "complaint_first":
        d.feed(messages)
        d.finish(t0 + NIGHT_HOURS * 3600)
    rows = d.conn.execute(
        "SELECT c.external_id, e.kind, e.asset_key, e.verdict, e.observed_at, c.alert_id "
        "FROM complaints c JOIN complaint_evidence e USING (complaint_id) "
        "WHERE e.kind IN ('no_service', 'truck_passage') ORDER BY c.external_id"
    ).fetchall()
    alerts = d.conn.execute("SELECT alert_id, kind, asset_key, details FROM alerts").fetchall()
    assert [(a[1], a[2]) for a in alerts] == [("missed_collection", SKIPPER)]
    alert_id, details = alerts[0][0], alerts[0][3]
    (done_row, skip_row) = rows
    assert skip_row[:4] == ("CH-SKIP", "no_service", SKIPPER, "confirms")
    assert skip_row[5] == alert_id
    assert done_row[:4] == ("CH-DONE", "truck_passage", SKIPPER, "refutes")
    assert done_row[5] is None
    # The truck's stop at the served point happened that night, during the shift.
    passage_at: datetime = done_row[4]
    assert t0 <= passage_at.timestamp() <= t0 + NIGHT_HOURS * 3600
    label = skipped["label"]
    assert details["shift 2025-12-19"] == [label] and details["round"] == SKIPPER
    complaint_ids = d.conn.execute(
        "SELECT complaint_id FROM complaints WHERE external_id = 'CH-SKIP'"
    ).fetchone()
    assert complaint_ids is not None and details["complaints"] == [complaint_ids[0]]
