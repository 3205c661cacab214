"""The finance and lighting departments' page (``/energy``) in headless Chromium, on a
reconciled month: a simulated Guéliz district (the simulators' lights metered hour by hour,
with an illegal tap, a dark circuit and an estimated bill) and a Médina cabinet. The totals
are the API's, the flagged cabinets carry their labels and open their evidence, the table
sorts, the CSV link downloads the API's CSV, a dispute summary opens in Arabic right to left;
the page in every locale, and phone-sized screenshots under RASD_TEST_ARTIFACTS."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import urllib.request
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from api.auth import Role
from telemetry.energy_accounting.month import last_day, reconcile_month
from telemetry.energy_accounting.reconcile import Thresholds
from telemetry.energy_accounting.tariffs import EXAMPLE_FILE, load_tariffs
from telemetry.i18n import Locale
from telemetry.i18n.catalogues import page_messages
from telemetry.settings import Settings
from telemetry.storage.energy_accounting import load_month, save_month
from tests.browser.test_i18n_pages import ARABIC, READY, _check
from tests.browser.test_pages import WAIT_MS, _get_json, _token
from tests.support.api_process import ApiProcess
from tests.support.database import open_db
from tests.support.energy_city import MONTH, Defects, build_district, seed_reconciliation

FRENCH = page_messages(Locale.FR, Locale.FR)
PHONE = {"width": 390, "height": 844}
#: What the seeded month flags, cabinet by cabinet (the scenario test's defects, scaled down).
FLAGGED = {
    "CAB-0001": ["dark_circuit"],
    "CAB-0002": ["unmetered_load"],
    "CAB-0004": ["estimated_bill"],
    "CAB-OD-1": ["estimated_bill"],
}
FIGURES = """() => [...document.querySelectorAll('#totals .figure')].map(
  (f) => [f.dataset.key, Number(f.dataset.value), f.querySelector('b').textContent])"""
CABINETS = """() => [...document.querySelectorAll('#cabinets tbody tr[data-cabinet]')].map(
  (tr) => [tr.dataset.cabinet,
           [...tr.querySelectorAll('button.flag')].map((b) => b.textContent)])"""


def _seed(settings: Settings) -> None:
    """November 2026 reconciled: 240 Guéliz lights under five cabinets, and a Médina one."""
    tariffs = load_tariffs(EXAMPLE_FILE)
    with open_db(settings) as db:
        build_district(
            db,
            tariffs,
            Defects(
                tap_w=600.0,
                tap_cabinet="CAB-0002",
                dark_circuit="C-001",
                dark_from=datetime.combine(
                    MONTH + timedelta(days=4), time(12), ZoneInfo("Africa/Casablanca")
                ),
                estimated_cabinet="CAB-0004",
            ),
            lights=240,
        )
        rows = reconcile_month(load_month(db, MONTH), tariffs)
        medina = seed_reconciliation(db)  # October 2025: moved to the seeded month
        rows.append(
            dataclasses.replace(
                medina, month=MONTH, bill_period_start=MONTH, bill_period_end=last_day(MONTH)
            )
        )
        save_month(db, MONTH, rows, tariff_source=str(EXAMPLE_FILE), thresholds=Thresholds())


def _started(migrated: Settings, start_api: Callable[..., ApiProcess]) -> tuple[ApiProcess, str]:
    _seed(migrated)
    return start_api(migrated), _token(migrated, Role.OPERATOR)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _expected_figures(totals: dict[str, Any], flagged: int) -> dict[str, float]:
    keys = ("modelled_kwh", "metered_kwh", "billed_kwh", "billed_dh", "recomputed_dh")
    return {k: totals[k] for k in keys} | {
        "saved_kwh": totals["dimming_saved_kwh"] + totals["retrofit_saved_kwh"],
        "saved_dh": totals["saved_dh"],
        "saved_co2_kg": totals["saved_co2_kg"],
        "flagged": flagged,
    }


def _fetch(url: str, token: str) -> bytes:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return bytes(answer.read())


def test_the_page_shows_the_reconciled_month_and_its_flagged_cabinets(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
) -> None:
    api, token = _started(migrated, start_api)
    body = _get_json(f"{api.url}/api/v1/energy/reconciliation?month=2026-11", token)
    assert {c["cabinet_id"]: [f["code"] for f in c["flags"]] for c in body["cabinets"]} == (
        {c["cabinet_id"]: [] for c in body["cabinets"]} | FLAGGED
    )
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_extra_http_headers({"Accept-Language": "de-DE,de;q=0.9"})  # not spoken here
    page.goto(f"{api.url}/energy?month=2026-11#token={token}")  # operators' default: French
    page.wait_for_function(READY["energy"], timeout=WAIT_MS)
    assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == [
        "fr-MA",
        "ltr",
    ]
    assert page.locator("#error").text_content() == ""

    # The city's totals are the API's, written the French way.
    figures = {key: (value, text) for key, value, text in page.evaluate(FIGURES)}
    expected = _expected_figures(body["city"], len(FLAGGED))
    assert {k: v for k, (v, _) in figures.items()} == expected
    for key in ("modelled_kwh", "metered_kwh", "billed_kwh"):
        assert _digits(figures[key][1]) == str(round(expected[key])), key
        assert figures[key][1].endswith(" kWh")
    assert _digits(figures["billed_dh"][1]) == f"{expected['billed_dh']:.2f}".replace(".", "")
    assert "," in figures["billed_dh"][1] and figures["billed_dh"][1].endswith(" DH")
    assert page.locator("#example-tariffs").is_visible()  # the example's invented prices

    # Per district: the table's rows and the chart's bars.
    districts = [d["key"] for d in body["districts"]]
    assert districts == ["gueliz", "medina"]
    assert (
        page.eval_on_selector_all(
            "#districts tbody tr", "(rows) => rows.map((r) => r.dataset.district)"
        )
        == districts
    )
    assert (
        page.locator('#districts tbody tr[data-district="gueliz"] th').text_content()
        == (FRENCH["label.district.gueliz"])
    )
    bars = page.evaluate("window.rasdEnergy.chart.data.datasets.map((d) => d.data)")
    assert bars == [
        [d[k] for d in body["districts"]] for k in ("modelled_kwh", "metered_kwh", "billed_kwh")
    ]

    # The cabinets: flagged first, each flag by its French label.
    shown = page.evaluate(CABINETS)
    assert {c for c, _ in shown} == {c["cabinet_id"] for c in body["cabinets"]}
    assert {c for c, _ in shown[: len(FLAGGED)]} == set(FLAGGED)
    labelled = {c: labels for c, labels in shown if labels}
    assert labelled == {
        c: [FRENCH[f"label.flag.{code}"] for code in codes] for c, codes in FLAGGED.items()
    }
    assert labelled["CAB-0002"] == ["Charge non comptée (branchement illicite ?)"]

    # A flag opens its evidence: the figures the finding rests on.
    tap = next(c for c in body["cabinets"] if c["cabinet_id"] == "CAB-0002")["flags"][0]
    page.locator('tr[data-cabinet="CAB-0002"] button.flag').click()
    evidence = page.locator("#evidence-CAB-0002")
    evidence.wait_for(timeout=WAIT_MS)
    section = page.locator("#cabinets-title").locator("xpath=..")
    section.screenshot(path=str(artifacts / "energy-evidence-fr-MA.png"))
    assert (
        page.locator('tr[data-cabinet="CAB-0002"] button.flag').get_attribute("aria-expanded")
        == "true"
    )
    assert evidence.locator('dt[data-key="excess_kwh"]').text_content() == "Excédent (kWh)"
    excess = evidence.locator('dt[data-key="excess_kwh"] + dd').text_content() or ""
    assert excess.replace("\u202f", "").replace(
        "\u00a0", ""
    ) == f"{tap['evidence']['excess_kwh']:.1f}".replace(".", ",")
    page.locator('tr[data-cabinet="CAB-0002"] button.flag').click()
    assert page.locator("#evidence-CAB-0002").count() == 0

    # Sorting: a figure's column sorts largest first, then smallest first.
    by_modelled = sorted(body["cabinets"], key=lambda c: (-c["modelled_kwh"], c["cabinet_id"]))
    page.locator('th[data-column="modelled_kwh"] button').click()
    assert [c for c, _ in page.evaluate(CABINETS)] == [c["cabinet_id"] for c in by_modelled]
    assert page.get_attribute('th[data-column="modelled_kwh"]', "aria-sort") == "descending"
    page.locator('th[data-column="modelled_kwh"] button').click()
    ascending = sorted(body["cabinets"], key=lambda c: (c["modelled_kwh"], c["cabinet_id"]))
    assert [c for c, _ in page.evaluate(CABINETS)] == [c["cabinet_id"] for c in ascending]
    page.locator("#only-flagged").check()
    assert {c for c, _ in page.evaluate(CABINETS)} == set(FLAGGED)

    # The CSV link downloads the API's own CSV.
    with page.expect_download() as download:
        page.locator("#csv").click()
    saved = Path(download.value.path()).read_bytes()
    assert download.value.suggested_filename == "energy-reconciliation_2026-11.csv"
    assert saved == _fetch(f"{api.url}/api/v1/energy/reconciliation.csv?month=2026-11", token)
    lines = list(csv.DictReader(io.StringIO(saved.decode("utf-8"))))
    assert {x["cabinet_id"]: x["flags"] for x in lines if x["flags"]} == {
        c: " ".join(codes) for c, codes in FLAGGED.items()
    }

    # Each flagged cabinet's dispute summary, in French and in Arabic (right to left).
    links = page.locator('tr[data-cabinet="CAB-0002"] td.dispute a')
    assert [links.nth(k).get_attribute("hreflang") for k in range(links.count())] == ["fr", "ar"]
    assert "lang=fr" in (links.nth(0).get_attribute("href") or "")
    assert page.locator('tr[data-cabinet="CAB-0003"] td.dispute a').count() == 0
    with browser_context.expect_page() as opened:
        links.nth(1).click()
    dispute = opened.value
    dispute.wait_for_load_state()
    assert dispute.evaluate("[document.documentElement.lang, document.documentElement.dir]") == [
        "ar",
        "rtl",
    ]
    assert dispute.locator('li[data-code="unmetered_load"]').count() == 1
    assert ARABIC.search(dispute.locator("h1").text_content() or "")
    dispute.close()

    # On a phone: nothing wider than the screen but the tables, which scroll sideways.
    page.set_viewport_size(PHONE)
    page.reload()  # as a phone opens it: the default order, nothing scrolled
    page.wait_for_function(READY["energy"], timeout=WAIT_MS)
    page.evaluate("document.fonts.ready")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    wrap = page.locator("#cabinets").locator("xpath=..")
    assert wrap.evaluate("(w) => w.scrollWidth > w.clientWidth && getComputedStyle(w).overflowX")
    page.screenshot(path=str(artifacts / "energy-phone-fr-MA.png"), full_page=True)
    # A flag opened far into the scrolled table shows its evidence on the screen, not off it.
    page.locator('tr[data-cabinet="CAB-0002"] button.flag').click()
    finding = page.locator('#evidence-CAB-0002 .finding[data-code="unmetered_load"]')
    finding.wait_for(timeout=WAIT_MS)
    assert wrap.evaluate("(w) => w.scrollLeft") > 0
    box = finding.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    finding.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "energy-phone-evidence-fr-MA.png"))
    assert errors == []


def test_the_page_in_every_locale_by_district_and_for_a_month_not_reconciled(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    artifacts: Path,
) -> None:
    api, token = _started(migrated, start_api)
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    for locale in Locale:
        page.goto(f"{api.url}/energy?month=2026-11&lang={locale.value}#token={token}")
        _check(page, "energy", locale, artifacts)
        if locale is Locale.AR:
            # The table reads right to left, the chart's first district is on the right.
            row = page.locator('#cabinets tbody tr[data-cabinet="CAB-0002"]')
            assert (
                row.locator("th").bounding_box()["x"] > row.locator("td").last.bounding_box()["x"]
            )
            assert page.evaluate("window.rasdEnergy.chart.options.scales.x.reverse") is True
            assert row.locator("button.flag").text_content() == "حمولة غير محتسبة (ربط غير قانوني؟)"
            page.set_viewport_size(PHONE)
            page.reload()
            page.wait_for_function(READY["energy"], timeout=WAIT_MS)
            page.evaluate("document.fonts.ready")
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            page.screenshot(path=str(artifacts / "energy-phone-ar-MA.png"), full_page=True)
            page.set_viewport_size({"width": 1400, "height": 900})

    # One district: the API's totals of that district, its cabinets, its CSV.
    one = _get_json(f"{api.url}/api/v1/energy/reconciliation?month=2026-11&district=medina", token)
    page.goto(f"{api.url}/energy?month=2026-11&district=medina&lang=fr-MA")
    page.wait_for_function(READY["energy"], timeout=WAIT_MS)
    assert page.locator("#period select").input_value() == "medina"
    figures = {key: value for key, value, _ in page.evaluate(FIGURES)}
    assert figures == _expected_figures(one["city"], 1)
    assert [c for c, _ in page.evaluate(CABINETS)] == ["CAB-OD-1"]
    assert "district=medina" in (page.locator("#csv").get_attribute("href") or "")
    assert (
        page.locator("#csv").get_attribute("download") == "energy-reconciliation_2026-11_medina.csv"
    )
    assert page.locator("#districts tfoot").count() == 0

    # A month nobody reconciled says so, and how.
    page.goto(f"{api.url}/energy?month=2026-10&lang=fr-MA")
    page.wait_for_function(READY["energy"], timeout=WAIT_MS)
    message = page.locator("#error").text_content() or ""
    assert "2026-10" in message and "rapproché" in message
    assert page.locator("#content").is_hidden()
    assert errors == []
