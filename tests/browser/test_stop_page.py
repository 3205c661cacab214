"""The passengers' next-bus pages in headless Chromium, with the demo network imported and
buses' fixes stored (as tests/test_api_gtfs.py does): a stop's page shows the arrivals its JSON
gives and follows them on the next poll; the stop search finds a stop by part of its name and
opens it, and sorts by distance from the phone's position; an unknown stop is a translated 404;
every locale (Arabic right to left, Tamazight in Tifinagh); the QR sheet's codes decode
(zxing-cpp) to the stops' page addresses. Phone-sized screenshots under RASD_TEST_ARTIFACTS."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from telemetry.gtfs.geometry import Shape
from telemetry.i18n import Locale
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.reference import import_network
from telemetry.topics import Fleet
from tests.browser.test_crew_app import PHONE, QR_PIXELS
from tests.browser.test_i18n_pages import ARABIC, READY, _check, _maps_stay_left_to_right
from tests.browser.test_pages import WAIT_MS
from tests.support.api_process import ApiProcess
from tests.support.api_server import fix, now_utc, register_devices, store
from tests.support.database import open_db
from tests.test_api_gtfs import _drive, _network_running_all_day

STOP = "douar-laskar"  # line A, about 3.5 km from Massira: ahead of B-1 and of B-2
# The page's data as drawn: per line card, its line, direction, towards-text and buses.
# Chromium keeps a headless tab visible: the page is told otherwise, as a phone would tell it.
VISIBILITY = """(state) => {
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
  document.dispatchEvent(new Event("visibilitychange"));
}"""
DRAWN = """() => [...document.querySelectorAll('#lines .line')].map((li) => ({
  route_id: li.dataset.route, direction_id: Number(li.dataset.direction),
  towards: li.querySelector('.towards').textContent,
  buses: [...li.querySelectorAll('.times li[data-vehicle]')].map(
    (b) => [b.dataset.vehicle, b.textContent])}))"""


def _leaving(device: str, shape: Shape, metres: float, left: datetime, now: datetime) -> list[Any]:
    """A bus that waited at line A's first terminus, left at ``left`` and has driven
    ``metres`` by ``now`` (a fix every 10 s)."""
    a = shape.points[0]
    waited = [fix(device, left - timedelta(minutes=k), *a, route="A") for k in range(1, 6)]
    return waited + _drive(device, shape, 0.0, metres, left, now)


def _city(migrated: Settings, tmp_path: Path) -> Shape:
    """The demo network in service all day; B-1 on its way from Massira (2.5 km out after
    8 minutes), B-2 on its way back from Bab Doukkala; B-3 registered, not yet seen."""
    network = _network_running_all_day(tmp_path)
    with open_db(migrated) as conn:
        import_network(conn, network)
    register_devices(
        migrated,
        *(DeviceRecord(device_id=f"B-{k}", fleet=Fleet.BUS, route="A") for k in (1, 2, 3)),
    )
    shape = Shape(network.shapes["A"])
    now = now_utc().replace(microsecond=0)
    left = now - timedelta(minutes=8)
    b = shape.points[-1]
    rows = _leaving("B-1", shape, 2500.0, left, now)
    rows += [fix("B-2", left - timedelta(minutes=k), *b, route="A") for k in range(1, 6)]
    rows += _drive("B-2", shape, shape.length_m, shape.length_m - 2500.0, left, now)
    store(migrated, positions=rows)
    return shape


def _arrivals(api: ApiProcess, stop: str) -> dict[str, Any]:
    answer = httpx.get(f"{api.url}/stops/{stop}/arrivals.json")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def _minutes(text: str) -> int:
    """The minutes a French time says ("dans 4 min"; "à l'approche": 0)."""
    if text == "à l'approche":
        return 0
    found = re.fullmatch(r"dans (\d+) min", text)
    assert found, text
    return int(found.group(1))


def test_a_stops_page_shows_its_next_buses_and_follows_them(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    shape = _city(migrated, tmp_path)
    api = start_api(migrated)
    page = browser_context.new_page()
    page.set_viewport_size(PHONE)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The page's timers run on a clock the test moves: "the next poll" is 20 s of it away.
    page.clock.install()
    page.goto(f"{api.url}/stops/{STOP}?lang=fr")
    page.wait_for_function(READY["stop"], timeout=WAIT_MS)
    expected = _arrivals(api, STOP)
    # The page lists the lines as riders read them (5, 22, A), each direction after the other.
    expected["lines"].sort(key=lambda line: (len(line["route_id"]), line["route_id"]))
    drawn = page.evaluate(DRAWN)
    assert page.locator("#stop-name").inner_text() == expected["name"] == "Douar Laskar"
    assert [(d["route_id"], d["direction_id"]) for d in drawn] == [
        (line["route_id"], line["direction_id"]) for line in expected["lines"]
    ]
    assert [d["towards"] for d in drawn] == [
        f"vers {line['headsign']}" for line in expected["lines"]
    ]
    towards = {(d["route_id"], d["direction_id"]): d["buses"] for d in drawn}
    # B-1 comes from Massira towards Bab Doukkala, B-2 the other way, each the only one.
    assert [b for b, _ in towards["A", 0]] == ["B-1"] and [b for b, _ in towards["A", 1]] == ["B-2"]
    for line in expected["lines"]:
        shown = towards[line["route_id"], line["direction_id"]]
        assert [b for b, _ in shown] == [b["vehicle_id"] for b in line["arrivals"]][:3]
        for (_, text), bus in zip(shown, line["arrivals"], strict=False):
            # Read a moment apart, the page and the test may sit either side of a minute.
            assert abs(_minutes(text) - bus["in_s"] // 60) <= 1, (text, bus)
    others = [d for d in drawn if d["route_id"] != "A"]
    assert all(not d["buses"] for d in others)  # lines 5, 22 and 66: nobody on their way
    none = page.locator("#lines .line .none")
    assert none.count() == len(others) and (
        not others or none.first.inner_text() == "Aucun bus attendu"
    )
    assert re.fullmatch(r"mis à jour il y a \d+ s", page.locator("#status").inner_text())
    assert page.locator("#stop-lines").inner_text() == "Lignes : " + " · ".join(
        dict.fromkeys(line["route_id"] for line in expected["lines"])
    )

    # A third bus leaves Massira: the next poll shows it behind B-1.
    now = now_utc().replace(microsecond=0)
    store(migrated, positions=_leaving("B-3", shape, 900.0, now - timedelta(minutes=3), now))
    polls = page.evaluate("window.rasdStop.polls")
    page.clock.run_for(20_000)
    page.wait_for_function(f"() => window.rasdStop.polls > {polls}", timeout=WAIT_MS)
    page.wait_for_function(
        "() => document.querySelector("
        "'.line[data-route=A][data-direction=\"0\"] [data-vehicle=B-3]')",
        timeout=WAIT_MS,
    )
    drawn = {(d["route_id"], d["direction_id"]): d["buses"] for d in page.evaluate(DRAWN)}
    assert [b for b, _ in drawn["A", 0]] == ["B-1", "B-3"]

    # A hidden tab does not poll; shown again, it polls at once.
    polls = page.evaluate("window.rasdStop.polls")
    page.evaluate(VISIBILITY, "hidden")
    page.clock.run_for(120_000)
    assert page.evaluate("window.rasdStop.polls") == polls
    page.evaluate(VISIBILITY, "visible")
    page.wait_for_function(f"() => window.rasdStop.polls > {polls}", timeout=WAIT_MS)
    # Offline, the last times stay and the page says they may be old; back online, it polls.
    browser_context.set_offline(True)
    page.clock.run_for(20_000)
    status = page.locator("#status")
    status.filter(has_text="Pas de connexion").wait_for(timeout=WAIT_MS)
    assert "mis à jour il y a" in status.inner_text()
    assert page.locator("#lines [data-vehicle='B-3']").count() == 1
    browser_context.set_offline(False)
    page.wait_for_function("() => !window.rasdStop.failed", timeout=WAIT_MS)
    assert "Pas de connexion" not in status.inner_text()

    # The public default is Arabic, right to left; the minutes in Arabic words.
    browser_context.clear_cookies()  # forget ?lang=fr, remembered like a switcher's choice
    page.set_extra_http_headers({"Accept-Language": "de-DE,de;q=0.9"})  # not spoken here
    page.goto(f"{api.url}/stops/{STOP}")
    page.wait_for_function(READY["stop"], timeout=WAIT_MS)
    assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == [
        "ar-MA",
        "rtl",
    ]
    first = page.locator(
        "#lines .line[data-route='A'][data-direction='0'] .times li"
    ).first.inner_text()
    assert ARABIC.search(first) and ("بعد" in first or first == "تصل الآن"), first
    page.evaluate("document.fonts.ready")
    page.screenshot(path=str(artifacts / "stop-page-phone-ar.png"), full_page=True)
    assert errors == []


def test_the_stop_pages_in_every_locale_and_an_unknown_stop(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    _city(migrated, tmp_path)
    api = start_api(migrated)
    page = browser_context.new_page()
    page.set_viewport_size(PHONE)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for locale in Locale:
        page.goto(f"{api.url}/stops/{STOP}?lang={locale.value}")
        _check(page, "stop", locale, artifacts)
        page.goto(f"{api.url}/stops?lang={locale.value}")
        _check(page, "stops", locale, artifacts)
        if locale is Locale.AR:
            _maps_stay_left_to_right(page, "map")
    # A stop the network does not have: a 404 page that says so, in Arabic by default.
    browser_context.clear_cookies()  # forget the switcher's last choice
    page.set_extra_http_headers({"Accept-Language": "de-DE,de;q=0.9"})  # not spoken here
    answer = page.goto(f"{api.url}/stops/no-such-stop")
    assert answer is not None and answer.status == 404
    page.wait_for_function(READY["stop"], timeout=WAIT_MS)
    assert page.locator("#unknown").is_visible()
    assert page.locator("#stop-name").inner_text() == "المحطة غير موجودة"
    assert page.locator("#lines .line").count() == 0
    assert errors == []


def test_the_stop_search_finds_a_stop_by_part_of_its_name_and_the_nearest_ones(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    _city(migrated, tmp_path)
    api = start_api(migrated)
    page = browser_context.new_page()
    page.set_viewport_size(PHONE)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{api.url}/stops?lang=fr")
    page.wait_for_function(READY["stops"], timeout=WAIT_MS)
    listed = httpx.get(f"{api.url}/stops.json").json()
    assert page.locator("#map .leaflet-interactive").count() == len(listed) > 50
    page.locator("#q").press_sequentially("mézou")  # accents and case do not matter
    page.locator("#results a").first.wait_for(timeout=WAIT_MS)
    found = page.locator("#results a").evaluate_all("(as) => as.map((a) => a.dataset.stopId)")
    names = {s["stop_id"]: s["name"] for s in listed}
    assert "ain-mezouar" in found
    assert all("mezouar" in names[f].lower() for f in found)
    page.locator("#q").fill("no stop is called this")
    page.locator("#found").filter(has_text="Aucun arrêt ne porte ce nom.").wait_for(timeout=WAIT_MS)
    page.locator("#q").fill("ain mezou")
    page.locator("#results a[data-stop-id='ain-mezouar']").click()
    page.wait_for_url(f"{api.url}/stops/ain-mezouar", timeout=WAIT_MS)
    page.wait_for_function(READY["stop"], timeout=WAIT_MS)
    assert page.locator("#stop-name").inner_text() == "Ain Mezouar"
    assert page.locator("#lines .line").count() >= 2

    # Near me: standing at Douar Laskar, it comes first, the nearest others after it.
    stop = next(s for s in listed if s["stop_id"] == STOP)
    browser_context.grant_permissions(["geolocation"])
    browser_context.set_geolocation({"latitude": stop["lat"], "longitude": stop["lon"]})
    page.goto(f"{api.url}/stops?lang=fr")
    page.wait_for_function(READY["stops"], timeout=WAIT_MS)
    page.locator("#locate").click()
    page.locator("#results a").first.wait_for(timeout=WAIT_MS)
    first = page.locator("#results a").first
    assert first.get_attribute("data-stop-id") == STOP
    assert "à 0 m" in first.inner_text()
    page.screenshot(path=str(artifacts / "stop-search-phone-fr.png"), full_page=True)
    assert errors == []


def test_the_qr_sheet_codes_open_the_stop_pages(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    _city(migrated, tmp_path)
    api = start_api(migrated)
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{api.url}/stops/qr-sheet?line=A&lang=fr")
    page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=WAIT_MS)
    figures = page.locator("#sheet figure.qr")
    line_a = {
        "massira", "tafilalet", "iziki", "douar-laskar", "ain-mezouar", "gare-oncf",
        "grande-poste", "bab-doukkala",
    }  # fmt: skip
    assert {f.get_attribute("data-stop-id") for f in figures.all()} == line_a
    page.screenshot(path=str(artifacts / "stop-qr-sheet-A.png"), full_page=True)
    for figure in figures.all():
        pixels = figure.locator("img").evaluate(QR_PIXELS)
        image = np.array(pixels["grey"], dtype=np.uint8).reshape(pixels["height"], pixels["width"])
        (code,) = zxingcpp.read_barcodes(image)
        assert code.format == zxingcpp.BarcodeFormat.QRCode
        assert code.text == f"{api.url}/stops/{figure.get_attribute('data-stop-id')}"
    assert httpx.get(f"{api.url}/stops/no-such-stop/qr.svg").status_code == 404
    page.goto(f"{api.url}/stops/qr-sheet?stop={STOP}&lang=fr")
    page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=WAIT_MS)
    assert [f.get_attribute("data-stop-id") for f in figures.all()] == [STOP]
    assert errors == []
