"""The crews' app, the public asset page, the QR sheet and the KPI page in headless Chromium at a
phone's size, against the real API and database: a crew sees its orders nearest first, the
network is cut mid-shift, an order is started and completed with a part and a photo while
offline (queued, shown pending), and back online the outbox is replayed once: exactly one start
and one complete step, the part recorded once, the register updated. The public page a pole's
QR code opens files exactly one Open311 request, in Arabic; the QR sheet's codes decode
(zxing-cpp) to that page's address. Screenshots under RASD_TEST_ARTIFACTS."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import urllib.request
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from api.auth import Role
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage import work_orders as store
from telemetry.storage.alerts import get_alert
from telemetry.topics import Fleet
from tests.browser.conftest import ROOT
from tests.browser.test_pages import WAIT_MS, _token
from tests.support.api_process import ApiProcess
from tests.support.api_server import register_devices
from tests.support.database import open_db
from tests.support.env import settings_env

PHONE = {"width": 390, "height": 844}  # an iPhone 12-14 or a mid-range Android, CSS pixels
HERE = (31.6300, -7.9900)  # the crew, next to the second light
LIGHTS = {
    "L-MED-00042": (31.6258, -7.9892),  # about 470 m from the crew
    "L-MED-00043": (31.6302, -7.9903),  # about 35 m
}
REGISTER = """asset_id,kind,parent_id,device_id,serial,supplier,installed_on,lat,lon,district
CAB-0112,cabinet,,,CB-112,Enertika,2018-03-01,31.6260,-7.9890,medina
C-112,circuit,CAB-0112,,,,2018-03-01,,,medina
P-MED-00042,pole,C-112,,,,2005-06-01,31.6258,-7.9892,medina
LUM-MED-00042,luminaire,P-MED-00042,L-MED-00042,LU18-42,Enertika,2018-03-02,31.6258,-7.9892,medina
P-MED-00043,pole,C-112,,,,2005-06-01,31.6302,-7.9903,medina
LUM-MED-00043,luminaire,P-MED-00043,L-MED-00043,LU18-43,Enertika,2018-03-02,31.6302,-7.9903,medina
"""


def _png(width: int, height: int) -> bytes:
    """A camera-sized PNG (a gradient), written here: the app must shrink it to a JPEG."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    pixels[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    pixels[..., 2] = 128
    filtered = np.concatenate(
        [np.zeros((height, 1), dtype=np.uint8), pixels.reshape(height, width * 3)], axis=1
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(filtered.tobytes()))
        + chunk(b"IEND", b"")
    )


def crew_city(settings: Settings, tmp_path: Path) -> list[int]:
    """Two medina lights in the register, each with a lamp failure's order assigned to the
    crew; returns the order ids (the far light's first)."""
    register_devices(
        settings,
        *[
            DeviceRecord(
                device_id=d,
                fleet=Fleet.LIGHT,
                district="medina",
                circuit="C-112",
                lat=lat,
                lon=lon,
                rated_w=40,
            )
            for d, (lat, lon) in LIGHTS.items()
        ],
    )
    csv = tmp_path / "register.csv"
    csv.write_text(REGISTER)
    done = subprocess.run(
        [sys.executable, "-m", "telemetry", "assets", "import", str(csv)],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    ids = []
    opened = datetime.now(UTC) - timedelta(hours=3)
    with open_db(settings) as conn:
        for n, (device, (lat, lon)) in enumerate(LIGHTS.items()):
            row = conn.execute(
                "INSERT INTO alerts (kind, asset_kind, asset_key, device_id, circuit, district, "
                "severity, state, summary, lat, lon, opened_at, detected_at) VALUES "
                "('lampFailure', 'light', %s, %s, 'C-112', 'medina', 'high', 'open', "
                "'lamp failure', %s, %s, %s, %s) RETURNING alert_id",
                (device, device, lat, lon, opened + timedelta(minutes=n), opened),
            ).fetchone()
            assert row is not None
            alert = get_alert(conn, row[0])
            assert alert is not None
            order = store.open_for_alert(conn, alert)
            assert order is not None
            store.assign(conn, order.work_order_id, "crew-medina-1", "operator:dispatch")
            ids.append(order.work_order_id)
        conn.commit()
    return ids


def _get(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def _phone(context: Any, errors: list[str]) -> Any:
    page = context.new_page()
    page.set_viewport_size(PHONE)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


PENDING = "() => document.getElementById('outbox-bar').dataset.pending"


def test_the_crew_works_offline_and_every_action_is_applied_once(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    far, near = crew_city(migrated, tmp_path)
    api = start_api(migrated)
    crew = _token(migrated, Role.CREW, ["medina"])
    browser_context.grant_permissions(["geolocation"], origin=api.url)
    browser_context.set_geolocation({"latitude": HERE[0], "longitude": HERE[1]})
    errors: list[str] = []
    page = _phone(browser_context, errors)
    page.goto(f"{api.url}/crew#token={crew}")
    page.wait_for_function("() => window.rasdCrew !== undefined", timeout=WAIT_MS)
    page.wait_for_function(
        "() => document.getElementById('status').textContent === 'live'", timeout=WAIT_MS
    )
    page.wait_for_function("() => window.rasdCrew.position() !== null", timeout=WAIT_MS)
    cards = page.locator("#orders .order")
    cards.nth(1).wait_for(timeout=WAIT_MS)
    # Nearest first: the light 35 m away before the one 470 m away.
    assert [int(c.get_attribute("data-id")) for c in cards.all()] == [near, far]
    # The app shell is cached by the service worker for the next start without network.
    page.wait_for_function(
        "async () => (await navigator.serviceWorker.ready) && "
        "(await caches.match('/static/crew.js')) !== undefined",
        timeout=WAIT_MS,
    )
    page.screenshot(path=str(artifacts / "crew-app-orders.png"))

    # The network goes mid-shift (the Medina's narrow streets).
    browser_context.set_offline(True)
    page.wait_for_function("() => navigator.onLine === false")
    assert page.locator("#network").inner_text() == "offline"
    page.locator(f"#orders .order[data-id='{far}']").click()
    page.locator("#start").click()
    page.wait_for_function(f"{PENDING} === '1'")
    page.locator("#complete-form").wait_for()
    page.locator("#add-part").click()
    part = page.locator("#parts .part").first
    part.locator("[name=part]").fill("luminaire")
    part.locator("[name=removed_serial]").fill("LU18-42")
    part.locator("[name=installed_serial]").fill("NEW-LUM-42")
    page.locator("#minutes").fill("35")
    page.locator("#complete-note").fill("luminaire swapped")
    page.locator("#photo").set_input_files(
        files=[{"name": "pole.png", "mimeType": "image/png", "buffer": _png(2400, 1800)}]
    )
    page.locator("#photos img").wait_for()
    page.locator("#complete").click()
    page.wait_for_function(f"{PENDING} === '2'")
    # Each try to send fails at once (no network) and leaves its action waiting.
    page.wait_for_function(
        "() => [...document.querySelectorAll('#outbox-list li')].map((l) => l.dataset.state)"
        ".join() === 'pending,pending'"
    )
    assert page.locator(f"#orders .order[data-id='{far}']").get_attribute("data-state") == "done"
    assert page.locator(f"#orders .order[data-id='{far}'] .pending-badge").count() == 1
    page.screenshot(path=str(artifacts / "crew-app-offline-queued.png"), full_page=True)
    # Nothing reached the server yet.
    assert _get(f"{api.url}/api/v1/work-orders/{far}", crew)["state"] == "assigned"
    # Started again with no network: the shell comes from the service worker, the orders
    # and the outbox from IndexedDB.
    page.reload()
    page.wait_for_function("() => window.rasdCrew !== undefined", timeout=WAIT_MS)
    page.wait_for_function(f"{PENDING} === '2'")
    page.locator(f"#orders .order[data-id='{far}']").wait_for()
    assert page.locator("#order-source").inner_text() != ""

    # Back online: the `online` event, "sync now" and the timer may all replay; once each.
    browser_context.set_offline(False)
    page.locator("#sync-now").click()
    page.wait_for_function(f"{PENDING} === '0'", timeout=WAIT_MS)
    page.locator("#sync-now").click()
    page.wait_for_function(f"{PENDING} === '0'", timeout=WAIT_MS)
    assert page.locator("#outbox-list li").count() == 0
    page.screenshot(path=str(artifacts / "crew-app-synced.png"), full_page=True)

    detail = _get(f"{api.url}/api/v1/work-orders/{far}", crew)
    steps = [s["step"] for s in detail["steps"]]
    assert steps == ["open", "assign", "start", "complete"]
    assert detail["state"] == "done" and detail["crew_minutes"] == 35
    assert [(p["part"], p["removed_serial"], p["installed_serial"]) for p in detail["parts"]] == [
        ("luminaire", "LU18-42", "NEW-LUM-42")
    ]
    (photo,) = detail["photos"]
    assert photo["content_type"] == "image/jpeg" and photo["size"] <= 1024 * 1024
    with open_db(migrated) as conn:
        counts = conn.execute(
            "SELECT step, count(*) FROM work_order_steps WHERE work_order_id = %s GROUP BY step",
            (far,),
        ).fetchall()
        assert dict(counts) == {"open": 1, "assign": 1, "start": 1, "complete": 1}
        parts = conn.execute(
            "SELECT count(*) FROM work_order_parts WHERE work_order_id = %s", (far,)
        ).fetchone()
        assert parts == (1,)
        serial = conn.execute(
            "SELECT serial FROM equipment_assets WHERE asset_id = 'LUM-MED-00042'"
        ).fetchone()
        assert serial == ("NEW-LUM-42",)
        keys = conn.execute("SELECT count(*) FROM idempotency_keys").fetchone()
        assert keys == (2,)
    assert _get(f"{api.url}/api/v1/work-orders/{near}", crew)["state"] == "assigned"
    assert errors == []


def test_the_asset_page_files_one_open311_request_in_arabic(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    crew_city(migrated, tmp_path)
    reporter = _token(migrated, Role.REPORTER)
    api = start_api(migrated, RASD_API_PUBLIC_REPORT_KEY=reporter)
    errors: list[str] = []
    page = _phone(browser_context, errors)
    page.set_extra_http_headers({"Accept-Language": "de-DE,de;q=0.9"})  # Arabic by default
    page.goto(f"{api.url}/a/P-MED-00042")
    page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=WAIT_MS)
    assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == [
        "ar-MA",
        "rtl",
    ]
    assert page.locator("#asset-kind").inner_text() == "عمود الإنارة"
    assert page.locator("#asset-district").inner_text() == "المدينة"
    page.locator("textarea[name=description]").fill("المصباح مطفأ منذ يومين")
    page.locator("#send").click()
    sent = page.locator("#sent")
    sent.wait_for(timeout=WAIT_MS)
    page.screenshot(path=str(artifacts / "public-asset-report-sent.png"), full_page=True)
    assert "تم إرسال التبليغ" in sent.inner_text()
    assert page.locator("#report").is_hidden()  # one report: the form is gone
    with open_db(migrated) as conn:
        rows = conn.execute("SELECT service_code, description, lat, lon FROM complaints").fetchall()
    assert rows == [("streetlight_out", "[P-MED-00042] المصباح مطفأ منذ يومين", 31.6258, -7.9892)]
    assert int(sent.get_attribute("data-request-id") or 0) > 0
    # An unknown code: a 404 page that says so, no form.
    page.goto(f"{api.url}/a/P-NOPE-1")
    page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=WAIT_MS)
    assert page.locator("#unknown").is_visible() and page.locator("#report").is_hidden()
    assert errors == []


# The QR code's pixels, as the browser drew them, in grey levels (zxing-cpp reads numpy arrays).
QR_PIXELS = """(img) => {
  const scale = 4;
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth * scale;
  canvas.height = img.naturalHeight * scale;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const grey = [];
  for (let i = 0; i < data.length; i += 4) grey.push(data[i]);
  return { width: canvas.width, height: canvas.height, grey: grey };
}"""


def test_the_qr_sheet_codes_open_the_public_page_and_the_kpi_page_renders(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    crew_city(migrated, tmp_path)
    api = start_api(migrated)
    operator = _token(migrated, Role.OPERATOR)
    errors: list[str] = []
    page = browser_context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{api.url}/assets/qr-sheet?circuit=C-112&lang=fr#token={operator}")
    page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=WAIT_MS)
    figures = page.locator("#sheet figure.qr")
    assert [f.get_attribute("data-asset-id") for f in figures.all()] == [
        "P-MED-00042",
        "P-MED-00043",
    ]
    page.screenshot(path=str(artifacts / "qr-sheet-C-112.png"), full_page=True)
    for figure in figures.all():
        pixels = figure.locator("img").evaluate(QR_PIXELS)
        image = np.array(pixels["grey"], dtype=np.uint8).reshape(pixels["height"], pixels["width"])
        (code,) = zxingcpp.read_barcodes(image)
        assert code.format == zxingcpp.BarcodeFormat.QRCode
        assert code.text == f"{api.url}/a/{figure.get_attribute('data-asset-id')}"

    month = datetime.now(UTC).strftime("%Y-%m")
    page.goto(f"{api.url}/maintenance?month={month}#token={operator}")
    page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=WAIT_MS)
    assert page.locator("#kpi-error").inner_text() == ""
    assert page.evaluate("document.documentElement.lang") == "fr-MA"  # the operators' default
    figures_text = page.locator("#figures").inner_text()
    assert "Points lumineux" in figures_text and "2" in figures_text
    assert page.evaluate("window.rasdMaintenance.kpis.light_points") == 2
    assert page.locator("#repairs caption").count() == 1
    assert page.evaluate("window.rasdMaintenance.chart.config.type") == "bar"
    page.screenshot(path=str(artifacts / "maintenance-kpis.png"), full_page=True)
    assert errors == []
