"""The pages in headless Chromium against real services: the operator map shows the simulated
fleet and a bus moves when a fix is published; a fault opens a work order that reaches the crews'
app live, and is started there. Screenshots are kept under RASD_TEST_ARTIFACTS (default
artifacts/)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from api.auth import Role
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.topics import Fleet
from tests.browser.conftest import ROOT
from tests.support.api_process import ApiProcess
from tests.support.api_server import register_devices
from tests.support.env import settings_env
from tests.support.ingest_process import IngestProcess
from tests.support.publisher import Publisher
from tests.support.waiting import wait_until

# Generous: a loaded 2-core machine runs the simulator, ingest, the API and Chromium at once.
WAIT_MS = 120_000


def _run(args: list[str], settings: Settings) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _token(settings: Settings, role: Role, districts: list[str] | None = None) -> str:
    """A token made the way the README's script makes one: ``python -m api tokens create``."""
    args = ["api", "tokens", "create", "--role", role.value, "--label", f"browser {role}"]
    for district in districts or []:
        args += ["--district", district]
    return _run(args, settings).strip()


def _get_json(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def _service_evening() -> str:
    """Yesterday 21:00 in Marrakech (buses in service, trucks on the night round), as the
    simulator's --start wants it: local time without an offset."""
    local = datetime.now(ZoneInfo("Africa/Casablanca")) - timedelta(days=1)
    return local.replace(hour=21, minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")


def _fix(lat: float, lon: float, at: datetime, **extra: Any) -> bytes:
    return json.dumps({"ts": int(at.timestamp() * 1000), "lat": lat, "lon": lon, **extra}).encode()


def test_operator_map_shows_the_simulated_fleet_and_a_bus_moves(
    migrated: Settings,
    start_ingest: Callable[..., IngestProcess],
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    publisher: Publisher,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    registry = tmp_path / "smoke.csv"
    _run(["simulators", "registry", "smoke", "-o", str(registry)], migrated)
    _run(["telemetry", "devices", "import", str(registry)], migrated)
    start_ingest(migrated)
    # The simulated evening is hours old: keep its vehicles coloured rather than greyed.
    api = start_api(migrated, RASD_API_STALE_AFTER_S="172800")
    token = _token(migrated, Role.OPERATOR)
    with (tmp_path / "simulator.log").open("wb") as log:
        simulator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simulators",
                "run",
                "smoke",
                "--start",
                _service_evening(),
                "--speed",
                "20",
                "--duration",
                "30m",
            ],
            env=settings_env(migrated),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        page = browser_context.new_page()
        page.goto(f"{api.url}/#token={token}")
        page.wait_for_function(
            "() => window.rasd && window.rasd.vehicles.vehicles.size >= 8 && "
            "[...window.rasd.vehicles.vehicles.values()].some(v => v.fleet === 'truck')",
            timeout=WAIT_MS,
        )
        page.wait_for_function("() => window.rasd.lights.data.ids.length >= 400", timeout=WAIT_MS)
        page.wait_for_function(
            "() => document.getElementById('status').textContent === 'live'", timeout=WAIT_MS
        )
        fleets = page.evaluate("[...window.rasd.vehicles.vehicles.values()].map(v => v.fleet)")
        assert {"bus", "truck"} <= set(fleets)
        assert page.locator(".district-label").count() == 5  # outlines without tiles
        page.screenshot(path=str(artifacts / "map-simulated-fleet.png"))

        before = page.evaluate("window.rasd.screenPoint('B-001')")
        assert before is not None
        now = datetime.now(UTC)
        publisher.publish_all(
            [
                (
                    f"{migrated.topic_prefix}/bus/B-001/position",
                    _fix(31.6240, -7.9900, now - timedelta(seconds=5), heading_deg=90.0),
                ),
                (
                    f"{migrated.topic_prefix}/bus/B-001/position",
                    _fix(31.62583, -7.98944, now, heading_deg=45.0, speed_kmh=12.0),
                ),
            ]
        )
        page.wait_for_function(
            "() => Math.abs(window.rasd.vehicles.vehicles.get('B-001').lat - 31.62583) < 1e-6",
            timeout=WAIT_MS,
        )
        page.wait_for_function(
            "(b) => { const p = window.rasd.screenPoint('B-001');"
            " return p.x !== b.x || p.y !== b.y; }",
            arg=before,
            timeout=WAIT_MS,
        )

        # Click the bus: its recent trail is drawn (both fixes stored by the ingestor).
        wait_until(
            lambda: (
                _get_json(f"{api.url}/api/v1/vehicles/B-001/track?max_points=500", token)["count"]
                >= 2
            ),
            timeout=60,
            what="two stored fixes of B-001",
        )
        page.evaluate("window.rasd.map.setView([31.62583, -7.98944], 16, {animate: false})")
        point = page.evaluate("window.rasd.screenPoint('B-001')")
        box = page.locator("#map").bounding_box()
        page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
        page.wait_for_function("() => window.rasd.trailPoints >= 2", timeout=WAIT_MS)
        page.screenshot(path=str(artifacts / "map-bus-moved-with-trail.png"))
    finally:
        simulator.terminate()
        simulator.wait(30)


def test_a_fault_opens_a_work_order_that_reaches_the_crew_app_live(
    migrated: Settings,
    start_ingest: Callable[..., IngestProcess],
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    publisher: Publisher,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    register_devices(
        migrated,
        DeviceRecord(
            device_id="L-MED-00042",
            fleet=Fleet.LIGHT,
            district="medina",
            circuit="C-112",
            lat=31.6258,
            lon=-7.9892,
            rated_w=40,
        ),
        DeviceRecord(
            device_id="L-GUE-00007",
            fleet=Fleet.LIGHT,
            district="gueliz",
            circuit="C-020",
            lat=31.638,
            lon=-8.012,
            rated_w=60,
        ),
    )
    start_ingest(migrated)
    api = start_api(migrated)
    crew = _token(migrated, Role.CREW, ["medina"])
    operator = _token(migrated, Role.OPERATOR)
    with (tmp_path / "alerts.log").open("wb") as log:
        alerts_service = subprocess.Popen(
            [sys.executable, "-m", "alerts"],
            env=settings_env(migrated),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        page = browser_context.new_page()
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(f"{api.url}/crew#token={crew}")
        page.wait_for_function(
            "() => document.getElementById('status').textContent === 'live'", timeout=WAIT_MS
        )
        now = datetime.now(UTC)
        # The whole path: a fault report -> ingest -> the alerts service (alert and work
        # order in one transaction) -> NOTIFY -> /ws/alerts -> the crews' app.
        fault = {
            "ts": int(now.timestamp() * 1000),
            "fault": "lampFailure",
            "active": True,
            "detail": "driver dead",
        }
        publisher.publish_all(
            [
                (f"{migrated.topic_prefix}/light/L-MED-00042/fault", json.dumps(fault)),
                (f"{migrated.topic_prefix}/light/L-GUE-00007/fault", json.dumps(fault)),
            ]
        )
        card = page.locator(".order", has_text="L-MED-00042")
        card.wait_for(timeout=WAIT_MS)
        assert page.locator(".order", has_text="L-GUE-00007").count() == 0  # not this crew's
        assert card.get_attribute("data-state") == "open"
        order_id = int(card.get_attribute("data-id") or 0)
        page.screenshot(path=str(artifacts / "crew-order-open.png"))
        # The desk assigns it: the change reaches the phone live, and the crew starts.
        assign = urllib.request.Request(
            f"{api.url}/api/v1/work-orders/{order_id}/assign",
            data=json.dumps({"assignee": "crew-medina-1"}).encode(),
            headers={"Authorization": f"Bearer {operator}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(assign, timeout=10) as answer:
            assert answer.status == 200
        page.locator(f".order[data-id='{order_id}'][data-state=assigned]").wait_for(timeout=WAIT_MS)
        page.locator(f".order[data-id='{order_id}']").click()
        page.locator("#start").click()
        page.locator("#complete-form").wait_for(timeout=WAIT_MS)
        page.wait_for_function(
            "() => document.getElementById('outbox-bar').dataset.pending === '0'",
            timeout=WAIT_MS,
        )
        detail = _get_json(f"{api.url}/api/v1/work-orders/{order_id}", crew)
        assert detail["state"] == "in_progress"
        assert [s["step"] for s in detail["steps"]] == ["open", "assign", "start"]
        assert detail["steps"][-1]["actor"] == "crew:browser crew"
        page.screenshot(path=str(artifacts / "crew-order-started.png"))
    finally:
        alerts_service.terminate()
        alerts_service.wait(30)
