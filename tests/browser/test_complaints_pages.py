"""Citizens' complaints in headless Chromium: a complaint POSTed through Open311 shows on the
operator's map (a marker and the list, with what the telemetry says), and the work order of the
alert it opened reaches the crews' app. Screenshots under RASD_TEST_ARTIFACTS."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api.auth import Role
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.topics import Fleet
from tests.browser.test_pages import WAIT_MS, _token
from tests.support.api_process import ApiProcess
from tests.support.api_server import register_devices

LAT0, LON0 = 31.6258, -7.9892


def _post(url: str, form: dict[str, str]) -> int:
    body = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(
        f"{url}/open311/v2/requests.json",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201
        return int(json.loads(answer.read())[0]["service_request_id"])


def test_a_complaint_shows_on_the_map_and_the_crew_board(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
) -> None:
    register_devices(
        migrated,
        *[
            DeviceRecord(
                device_id=f"L-MED-{i:05d}",
                fleet=Fleet.LIGHT,
                district="medina",
                circuit="C-112",
                lat=LAT0 + i * 0.0003,
                lon=LON0,
                rated_w=40,
            )
            for i in range(5)
        ],
    )
    api = start_api(migrated, RASD_API_COMPLAINT_SWEEP_S="0.5")
    reporter = _token(migrated, Role.REPORTER)
    operator = _token(migrated, Role.OPERATOR)
    crew = _token(migrated, Role.CREW, ["medina"])
    request_id = _post(
        api.url,
        {
            "api_key": reporter,
            "service_code": "streetlight_out",
            "lat": str(LAT0 + 0.00061),
            "long": str(LON0),
            "description": "Dark in front of the hammam",
        },
    )
    page = browser_context.new_page()
    page.goto(f"{api.url}/#token={operator}")
    item = page.locator(f".complaint[data-id='{request_id}']")
    item.wait_for(timeout=WAIT_MS)
    assert "Streetlight out" in item.inner_text()
    page.locator(".complaint-icon").first.wait_for(timeout=WAIT_MS)
    item.click()
    page.screenshot(path=str(artifacts / "map-citizen-complaint.png"))
    # The complaint's alert opened a work order in its linking transaction: the crews' app
    # shows it.
    board = browser_context.new_page()
    board.set_viewport_size({"width": 390, "height": 844})
    board.goto(f"{api.url}/crew#token={crew}")
    card = board.locator(".order", has=board.locator("b[data-kind=citizen_report]"))
    card.wait_for(timeout=WAIT_MS)
    assert "L-MED-0000" in card.inner_text()
    board.screenshot(path=str(artifacts / "crew-citizen-complaint.png"))
