"""Operator map at city scale: ``python -m bench.map_render [--screenshot PATH]``.

Registers 2,000 vehicles and 72,000 lights (with a position each and a reading for most
lights) in a schema of its own on the test database, runs ``python -m api`` and opens the map
in headless system Chromium (software rendering, as the browser tests drive it); once every
vehicle and light is on the map it times, in the page, a redraw of the vehicles canvas, a
rebuild of the lights' spatial index and the rendering of one light tile (figures in
docs/api.md).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from bench.harness.services import cli_token
from telemetry.decoding import EnergyRow
from telemetry.migrate import migrate
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.topics import Fleet
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS
from tests.support.api_process import ApiProcess
from tests.support.api_server import fix, register_devices, store
from tests.support.database import drop_schema
from tests.support.env import unique_settings

# Generous: a loaded 2-core machine renders 74,000 points in software.
WAIT_MS = 120_000

# Timed in the page, so that only the drawing code is measured (no protocol round trips).
_FIGURES = """() => {
    const v = window.rasd.vehicles;
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) v._draw();
    const draw = (performance.now() - t0) / 20;
    const l = window.rasd.lights;
    const t1 = performance.now();
    l.setData(l.data);
    const index = performance.now() - t1;
    const c = document.createElement('canvas');
    const t2 = performance.now();
    for (const z of [12, 14, 16]) {
        const p = window.rasd.map.project([31.62, -8.0], z).divideBy(256).floor();
        p.z = z;
        l.createTile(p);
    }
    const tile = (performance.now() - t2) / 3;
    return {draw, index, tile,
            load: performance.getEntriesByType('navigation')[0].duration};
}"""


def seed_city(settings: Settings) -> None:
    """2,000 vehicles with a fix now, 72,000 lights of which 49 in 50 have a reading."""
    lights = [
        DeviceRecord(
            device_id=f"L-{i:06d}",
            fleet=Fleet.LIGHT,
            district="menara",
            circuit=f"C-{i // 40:04d}",
            lat=31.56 + (i % 300) * 5e-4,
            lon=-8.10 + (i // 300) * 8e-4,
        )
        for i in range(72_000)
    ]
    vehicles = [
        DeviceRecord(
            device_id=f"V-{i:04d}", fleet=Fleet.BUS if i % 3 else Fleet.TRUCK, route=str(i % 25)
        )
        for i in range(2_000)
    ]
    register_devices(settings, *lights, *vehicles)
    now = datetime.now(UTC)
    store(
        settings,
        positions=[
            fix(
                v.device_id,
                now,
                31.58 + (i % 50) * 2e-3,
                -8.08 + (i // 50) * 4e-3,
                route=v.route,
                heading=float(i % 360),
            )
            for i, v in enumerate(vehicles)
        ],
        energy=[
            EnergyRow(
                light.device_id,
                now,
                now,
                1000.0,
                40.0,
                None,
                None,
                None,
                i % 7 != 0,
                50.0 if i % 5 == 0 else 100.0,
                None,
            )
            for i, light in enumerate(lights)
            if i % 50 != 0
        ],
    )


def measure(url: str, profile: Path, screenshot: Path) -> dict[str, Any]:
    """Open the map at ``url`` in headless Chromium, wait for the whole city, time the drawing."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            page = context.new_page()
            page.goto(url)
            page.wait_for_function(
                "() => window.rasd && window.rasd.vehicles.vehicles.size === 2000 && "
                "window.rasd.lights.data.ids.length === 72000",
                timeout=WAIT_MS,
            )
            figures: dict[str, Any] = page.evaluate(_FIGURES)
            page.screenshot(path=str(screenshot))
        finally:
            context.close()
    return figures


def main(argv: list[str] | None = None) -> int:
    """Seed the city, serve it, measure the map and print one line of figures."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.map_render",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--screenshot", type=Path, default=Path(tempfile.gettempdir(), "rasd-map-city-scale.png")
    )
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"error: {CHROMIUM} is absent: install the Debian packages chromium chromium-driver")
        return 2
    settings = unique_settings()
    migrate(settings)
    work = Path(tempfile.mkdtemp(prefix="rasd-bench-map-"))
    api = ApiProcess(
        settings,
        work / "api.log",
        RASD_API_TILE_URL="",  # no network: district outlines only, as in the browser tests
        RASD_API_REGISTRY_REFRESH_S="1",
        RASD_API_AUTH_CACHE_S="0",
    )
    try:
        seed_city(settings)
        api.start()
        token = cli_token(settings, "operator", "map render bench")
        figures = measure(f"{api.url}/#token={token}", work / "chromium-profile", args.screenshot)
    finally:
        api.shutdown()
        drop_schema(settings)
    print(
        f"\nmap at city scale (2,000 vehicles, 72,000 lights, headless Chromium, "
        f"software rendering): vehicles canvas redraw {figures['draw']:.1f} ms, "
        f"lights index rebuild {figures['index']:.1f} ms, one light tile {figures['tile']:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
