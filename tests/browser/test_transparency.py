"""The public transparency page in headless Chromium: charts and tables drawn from the open-data
feeds of the seeded city (no token), a period asked for in the address, the download links,
and the tables alone when the chart library is missing. Screenshots under artifacts/browser/."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from telemetry.settings import Settings
from tests.support.api_process import ApiProcess
from tests.support.open_data_city import refresh, seed_city

WAIT_MS = 60_000
SECTIONS = ("lights-now", "lights-daily", "repairs", "energy", "waste", "buses", "complaints")


def _cells(page: Any, section: str) -> list[list[str]]:
    rows: list[list[str]] = page.evaluate(
        """(id) => [...document.querySelectorAll(`#${id} tbody tr`)].map(
               (tr) => [...tr.children].map((c) => c.textContent))""",
        section,
    )
    return rows


def test_transparency_page_draws_the_feeds(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
) -> None:
    seed_city(migrated)
    # Playwright's sync API runs an event loop in this thread: refresh in another one.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, refresh(migrated)).result().ran
    # No background refresh: the seeded October 2025 stays exactly as materialised.
    api = start_api(migrated, RASD_API_OPENDATA_REFRESH_S="0")
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{api.url}/transparency?from=2025-10&to=2025-11")
    page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=WAIT_MS)
    assert errors == []
    assert page.evaluate("window.rasdCharts.length") == len(SECTIONS)
    for section in SECTIONS:
        assert page.locator(f"#{section}.failed").count() == 0, section
        assert page.locator(f"#{section}.empty").count() == 0, section
        assert page.locator(f"#{section} canvas").get_attribute("aria-label")
        links = page.locator(f"#{section} .downloads a")
        assert links.count() == 2
    assert page.locator("#lights-now .total.faulty strong").text_content() == "2"
    assert ["Arma", "medina", "2", "1", "6", "5", "2"] in [row[1:] for row in _cells(page, "waste")]
    assert ["2025-10", "medina", "5", "3", "7.6"] in _cells(page, "repairs")
    assert ["2025-10", "Streetlight out", "3", "2", "4", "5.6"] in _cells(page, "complaints")
    href = page.locator("#buses .downloads a", has_text="CSV").get_attribute("href")
    assert href == "/open-data/v1/bus-service-monthly.csv?from=2025-10&to=2025-11&lang=en"
    page.locator("#waste details").evaluate("(d) => d.open = true")
    page.screenshot(path=str(artifacts / "transparency.png"), full_page=True)

    # The same page without the chart library: the tables are the figures.
    page.route("**/vendor/chartjs/**", lambda route: route.abort())
    page.goto(f"{api.url}/transparency?from=2025-10&to=2025-11")
    page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=WAIT_MS)
    assert page.evaluate("window.rasdCharts.length") == 0
    assert page.locator("details[open]").count() == len(SECTIONS)
    assert ["2025-10", "medina", "5", "3", "7.6"] in _cells(page, "repairs")
    page.screenshot(path=str(artifacts / "transparency-tables-only.png"), full_page=True)
