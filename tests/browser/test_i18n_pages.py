"""Every page in every locale, in headless Chromium: Arabic pages are ``dir="rtl"`` with
Arabic text and mirrored (Leaflet's container left to right, its controls on the right);
Tamazight pages render Tifinagh with the vendored Noto Sans Tifinagh; no English message of
the catalogues is left on a translated page; the language switcher's choice is remembered.
Screenshots ``i18n-<page>-<locale>.png`` under RASD_TEST_ARTIFACTS."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from api.auth import Role
from telemetry.i18n import Locale
from telemetry.i18n.catalogues import page_messages
from telemetry.settings import Settings
from tests.browser.test_crew_app import PHONE, crew_city
from tests.browser.test_pages import WAIT_MS, _token
from tests.support.api_process import ApiProcess
from tests.support.open_data_city import refresh, seed_city

ARABIC = re.compile(r"[\u0600-\u06FF]")
TIFINAGH = re.compile(r"[\u2D30-\u2D7F]")
ENGLISH = page_messages(Locale.EN, Locale.EN)

# What every page shows once drawn (its script sets these when it has finished).
READY = {
    "map": "() => window.rasd !== undefined && document.querySelector('#light-counts').textContent",
    "crew": "() => window.rasdCrew !== undefined",
    "transparency": "() => document.body.dataset.ready === 'true'",
    "asset": "() => document.body.dataset.ready === 'true'",
    "maintenance": "() => document.body.dataset.ready === 'true'",
    "qr-sheet": "() => document.body.dataset.ready === 'true'",
    "energy": "() => document.body.dataset.ready === 'true'",
    "stop": "() => document.body.dataset.ready === 'true'",  # /stops/<stop_id>
    "stops": "() => document.body.dataset.ready === 'true'",  # /stops, the stop search
}

VISIBLE_TEXT = """() => {
  const parts = [document.title];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const el = walk.currentNode.parentElement;
    if (el && el.closest("[hidden], script, style, .leaflet-control-attribution")) continue;
    if (el && el.checkVisibility && !el.checkVisibility()) continue;
    parts.push(walk.currentNode.textContent);
  }
  for (const el of document.querySelectorAll("[placeholder], [aria-label]")) {
    parts.push(el.getAttribute("placeholder") || "", el.getAttribute("aria-label") || "");
  }
  return parts.join("\\n");
}"""

TIFINAGH_FONT = """() => [...document.fonts].some(
  (f) => f.family.replace(/["']/g, "") === "Noto Sans Tifinagh" && f.status === "loaded")"""


def _english_left(text: str, locale: Locale) -> list[str]:
    """English catalogue messages (plain ones, of a word of four letters or more) that the
    page's visible text still holds while the locale says them otherwise."""
    own = page_messages(locale, Locale.FR)
    left = []
    for key, english in ENGLISH.items():
        if "{" in english or own[key] == english or not re.search(r"[A-Za-z]{4}", english):
            continue
        if english in own[key]:
            continue
        if re.search(r"(?<![\w-])" + re.escape(english) + r"(?![\w-])", text):
            left.append(f"{key}: {english}")
    return left


def _check(page: Any, name: str, locale: Locale, artifacts: Path) -> None:
    page.wait_for_function(READY[name], timeout=WAIT_MS)
    page.wait_for_function("() => document.documentElement.dataset.i18nReady === 'true'")
    page.evaluate("document.fonts.ready")
    page.screenshot(path=str(artifacts / f"i18n-{name}-{locale.value}.png"), full_page=True)
    root = page.evaluate("[document.documentElement.lang, document.documentElement.dir]")
    assert root == [locale.value, locale.direction]
    text = str(page.evaluate(VISIBLE_TEXT))
    assert page.locator("#lang-select").count() == 1
    assert page.locator("#lang-select").input_value() == locale.value
    if locale is not Locale.EN:
        assert _english_left(text, locale) == [], name
    if locale is Locale.AR:
        assert len(ARABIC.findall(text)) > 100
        assert page.evaluate("getComputedStyle(document.body).direction") == "rtl"
        family = page.evaluate("getComputedStyle(document.querySelector('h1')).fontFamily")
        assert "Noto Sans Arabic" in family
    if locale is Locale.ZGH and name == "transparency":
        assert len(TIFINAGH.findall(text)) > 200
    if locale is Locale.ZGH:
        assert TIFINAGH.search(text)  # the switcher's own name at least, on operator pages
        assert page.evaluate(TIFINAGH_FONT), "Noto Sans Tifinagh not loaded"
        assert page.evaluate("document.fonts.check(\"16px 'Noto Sans Tifinagh'\", 'ⵜⴰⵎⴰⵣⵉⵖⵜ')")


def _maps_stay_left_to_right(page: Any, element: str) -> None:
    assert page.evaluate(f"getComputedStyle(document.getElementById('{element}')).direction") == (
        "ltr"
    )
    assert page.locator(f"#{element} .leaflet-top.leaflet-right .leaflet-control-zoom").count() == 1


def _seeded(migrated: Settings, start_api: Callable[..., ApiProcess]) -> ApiProcess:
    seed_city(migrated)
    # Playwright's sync API runs an event loop in this thread: refresh in another one.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, refresh(migrated)).result().ran
    return start_api(migrated, RASD_API_OPENDATA_REFRESH_S="0")


def test_transparency_page_in_every_locale(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
) -> None:
    api = _seeded(migrated, start_api)
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for locale in Locale:
        page.goto(f"{api.url}/transparency?from=2025-10&to=2025-11&lang={locale.value}")
        _check(page, "transparency", locale, artifacts)
        if locale is Locale.AR:
            # Tables read right to left; a chart's first month is on the right.
            page.locator("#repairs details").evaluate("(d) => d.open = true")
            first = page.locator("#repairs tbody tr").first.locator("th")
            last = page.locator("#repairs tbody tr").first.locator("td").last
            assert first.bounding_box()["x"] > last.bounding_box()["x"]
            cell = page.locator("#energy tbody td").first.text_content() or ""
            assert not re.search(r"[\u0660-\u0669]", cell)  # Western digits
            assert page.evaluate("window.rasdCharts[1].options.scales.x.reverse") is True
        if locale is Locale.FR:
            # CLDR fr: the decimal comma.
            assert ["2025-10", "medina", "5", "3", "7,6"] in page.evaluate(
                """() => [...document.querySelectorAll('#repairs tbody tr')].map(
                     (tr) => [...tr.children].map((c) => c.textContent))"""
            )
    assert errors == []


def test_public_default_is_arabic_and_the_switcher_remembers(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
) -> None:
    api = start_api(migrated, RASD_API_OPENDATA_REFRESH_S="0")
    page = browser_context.new_page()
    page.set_extra_http_headers({"Accept-Language": "de-DE,de;q=0.9"})  # not spoken here
    page.goto(f"{api.url}/transparency")
    page.wait_for_function(READY["transparency"], timeout=WAIT_MS)
    assert page.evaluate("document.documentElement.dir") == "rtl"
    with page.expect_navigation():
        page.locator("#lang-select").select_option("zgh")
    page.wait_for_function(READY["transparency"], timeout=WAIT_MS)
    page.goto(f"{api.url}/transparency")  # no ?lang=: the remembered choice
    page.wait_for_function(READY["transparency"], timeout=WAIT_MS)
    assert page.evaluate("document.documentElement.lang") == "zgh"
    page.goto(f"{api.url}/crew")  # an operator page: the same remembered choice
    assert page.evaluate("document.documentElement.lang") == "zgh"


def test_operator_map_in_every_locale(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
) -> None:
    api = _seeded(migrated, start_api)
    operator = _token(migrated, Role.OPERATOR)
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for locale in Locale:
        page.goto(f"{api.url}/?lang={locale.value}#token={operator}")
        page.locator("#alerts .alert").first.wait_for(timeout=WAIT_MS)
        _check(page, "map", locale, artifacts)
        if locale is Locale.AR:
            _maps_stay_left_to_right(page, "map")
            aside = page.locator("aside").bounding_box()
            assert aside["x"] > page.locator("#map").bounding_box()["x"]  # the panel on the right
        if locale is Locale.FR:
            kinds = page.locator("#alerts .alert b[data-kind]").all_inner_texts()
            assert kinds and all(k and "_" not in k for k in kinds)
    assert errors == []


def test_crew_app_in_every_locale(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    api = _seeded(migrated, start_api)
    crew_city(migrated, tmp_path)  # two assigned work orders in medina
    crew = _token(migrated, Role.CREW, ["medina", "gueliz"])
    page = browser_context.new_page()
    page.set_viewport_size(PHONE)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for locale in Locale:
        page.goto(f"{api.url}/crew?lang={locale.value}#token={crew}")
        page.locator("#orders .order").first.wait_for(timeout=WAIT_MS)
        _check(page, "crew", locale, artifacts)
        if locale is Locale.AR:
            page.locator("#orders .order").first.click()
            _maps_stay_left_to_right(page, "asset-map")
            assert ARABIC.search(page.locator("#start").inner_text())
            kinds = page.locator("#orders .order b[data-kind]").all_inner_texts()
            assert kinds and all(ARABIC.search(k) for k in kinds)
    assert errors == []


def test_asset_and_maintenance_pages_in_every_locale(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    crew_city(migrated, tmp_path)
    operator = _token(migrated, Role.OPERATOR)
    reporter = _token(migrated, Role.REPORTER)
    api = start_api(migrated, RASD_API_PUBLIC_REPORT_KEY=reporter)
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for locale in Locale:
        page.goto(f"{api.url}/a/P-MED-00042?lang={locale.value}")
        _check(page, "asset", locale, artifacts)
        if locale is Locale.ZGH:  # a public page: every word in Tifinagh
            assert len(TIFINAGH.findall(str(page.evaluate(VISIBLE_TEXT)))) > 150
        page.goto(f"{api.url}/maintenance?lang={locale.value}#token={operator}")
        _check(page, "maintenance", locale, artifacts)
        if locale is Locale.AR:
            assert page.evaluate("window.rasdMaintenance.chart.options.scales.x.reverse") is True
        page.goto(f"{api.url}/assets/qr-sheet?circuit=C-112&lang={locale.value}#token={operator}")
        _check(page, "qr-sheet", locale, artifacts)
    assert errors == []
