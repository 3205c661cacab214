"""The API answers in the language asked for, against the real server: Open311 service lists
(``locale=``, ``Accept-Language``; English when nothing is asked, GeoReport's interoperable
default), request status notes and Open311 errors;
the operators' complaint view; error messages in French by default and in Arabic on request
(the ``code`` stays the machine's); the pages' catalogues and ``<html lang dir>``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.auth import Role
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.topics import Fleet
from tests.support.api_server import ApiServer, make_token, register_devices

LAT0, LON0 = 31.6300, -7.9900
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


@pytest.fixture
async def api(migrated: Settings) -> AsyncIterator[ApiServer]:
    """The API on a schema with a few Médina lights."""
    register_devices(
        migrated,
        *[
            DeviceRecord(device_id=f"L-MED-{i:05d}", fleet=Fleet.LIGHT, district="medina",
                         circuit="C-001", lat=LAT0 + i * 0.0003, lon=LON0, rated_w=80.0)
            for i in range(3)
        ],
    )  # fmt: skip
    async with ApiServer(migrated) as server:
        yield server


def _names(services: list[dict[str, str]]) -> dict[str, str]:
    return {s["service_code"]: s["service_name"] for s in services}


async def test_open311_services_in_the_requested_language(api: ApiServer) -> None:
    async with api.client() as client:
        arabic = await client.get("/open311/v2/services.json", params={"locale": "ar"})
        french = await client.get("/open311/v2/services.json", headers={"Accept-Language": "fr"})
        default = await client.get("/open311/v2/services.json")
        by_header = await client.get(
            "/open311/v2/services.json", headers={"Accept-Language": "zgh, ar;q=0.8"}
        )
        english = await client.get(
            "/open311/v2/services.json", headers={"Accept-Language": "en-GB,en;q=0.9"}
        )
        xml = await client.get("/open311/v2/services.xml", params={"locale": "ar-MA"})
    assert _names(arabic.json())["streetlight_out"] == "عمود إنارة مطفأ"
    assert arabic.json()[0]["service_code"] == "streetlight_out"  # codes stay codes
    assert _names(french.json())["illegal_dumping"] == "Dépôt sauvage"
    assert _names(by_header.json())["streetlight_out"] == "ⵜⴰⴼⴰⵡⵜ ⵏ ⵓⴱⵔⵉⴷ ⵜⵅⵙⵉ"
    assert _names(english.json())["streetlight_out"] == "Streetlight out"
    assert _names(default.json()) == _names(english.json())
    assert "<service_name>عمود إنارة مطفأ</service_name>" in xml.text


async def test_open311_requests_notices_notes_and_errors_follow_the_language(
    api: ApiServer, migrated: Settings
) -> None:
    reporter = await make_token(migrated, Role.REPORTER)
    operator = await make_token(migrated, Role.OPERATOR)
    form = {
        "api_key": reporter,
        "service_code": "streetlight_out",
        "lat": str(LAT0),
        "long": str(LON0),
        "description": "الضوء مطفأ أمام الحمام",
    }
    async with api.client() as client:
        posted = await client.post(
            "/open311/v2/requests.json", data=form, headers=FORM | {"Accept-Language": "ar"}
        )
        assert posted.status_code == 201, posted.text
        number = posted.json()[0]["service_request_id"]
        assert posted.json()[0]["service_notice"].startswith("يتم التحقق من حالة أقرب نقطة")
        async with api.client(operator) as desk:
            closed = await desk.post(f"/api/v1/complaints/{number}/close", json={})
            assert closed.status_code == 200, closed.text
            assert closed.json()["service_name"] == "Lampadaire éteint"
            assert closed.json()["status_notes"] == "Clôturée par les services communaux."
        one = await client.get(f"/open311/v2/requests/{number}.json", params={"locale": "ar"})
        assert one.json()[0]["status_notes"] == "أُغلقت من طرف المصالح الجماعية."
        assert one.json()[0]["service_name"] == "عمود إنارة مطفأ"
        assert one.json()[0]["status"] == "closed"
        missing = await client.get("/open311/v2/requests/99999.json", params={"locale": "fr"})
        refused = await client.post(
            "/open311/v2/requests.json?locale=ar", data=form | {"api_key": "nope"}, headers=FORM
        )
    assert missing.status_code == 404
    assert missing.json()[0]["description"] == "service_request_id 99999 introuvable"
    assert refused.status_code == 403
    assert refused.json()[0]["description"] == "api_key غير صالحة: تعذر تسجيل الشكاية."


async def test_error_messages_in_french_by_default_and_as_asked(
    api: ApiServer, migrated: Settings
) -> None:
    operator = await make_token(migrated, Role.OPERATOR)
    async with api.client() as anonymous, api.client(operator) as client:
        unauthenticated = await anonymous.get("/api/v1/alerts")
        french = await client.get("/api/v1/alerts/987654")
        arabic = await client.get("/api/v1/alerts/987654", headers={"Accept-Language": "ar"})
        english = await client.get("/api/v1/alerts/987654", params={"lang": "en"})
        remembered = await client.get(
            "/api/v1/alerts/987654", headers={"Cookie": "rasd_lang=ar-MA"}
        )
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["message"].startswith("jeton manquant")
    assert french.status_code == 404
    assert french.json()["error"] == {
        "status": 404, "code": "not_found", "message": "aucune alerte 987654"
    }  # fmt: skip
    assert arabic.json()["error"]["message"] == "لا يوجد إنذار رقم 987654"
    assert arabic.json()["error"]["code"] == "not_found"
    assert english.json()["error"]["message"] == "no alert 987654"
    assert remembered.json()["error"]["message"] == "لا يوجد إنذار رقم 987654"


async def test_open_data_titles_and_csv_headers_a_person_reads(api: ApiServer) -> None:
    async with api.client() as client:
        catalogue = await client.get("/open-data/v1/catalog.json")
        machine = await client.get("/open-data/v1/energy-monthly.csv")
        french = await client.get("/open-data/v1/energy-monthly.csv", params={"lang": "fr"})
        arabic = await client.get("/open-data/v1/fault-repairs-monthly.csv?lang=ar")
    feed = next(f for f in catalogue.json()["feeds"] if f["name"] == "energy-monthly")
    assert feed["titles"]["fr-MA"] == (
        "Consommation d'énergie de l'éclairage public par arrondissement et par mois"
    )
    assert feed["titles"]["zgh"].startswith("ⵜⴰⵣⵎⵔⵜ") and feed["name"] == "energy-monthly"
    assert catalogue.json()["titles"]["ar-MA"] == "البيانات المفتوحة لرصد"
    assert machine.text.splitlines()[0] == "month,district,energy_kwh,lights,hours"
    assert french.text.splitlines()[0].startswith("mois,arrondissement,énergie (kWh),")
    assert arabic.text.splitlines()[0] == (
        "الشهر,المقاطعة,الإصلاحات,المدة الوسيطة (h),المدة عند المئين 90 (h)"
    )


async def test_pages_get_lang_dir_and_their_catalogue(api: ApiServer) -> None:
    async with api.client() as client:
        public = await client.get("/transparency")
        public_fr = await client.get("/transparency", headers={"Accept-Language": "fr-FR"})
        operator = await client.get("/crew")
        chosen = await client.get("/", params={"lang": "zgh"}, headers={"Accept-Language": "ar"})
        catalogue = await client.get("/i18n/ar-MA.json", params={"audience": "public"})
        tamazight = await client.get("/i18n/zgh.json", params={"audience": "operator"})
        unknown = await client.get("/i18n/tlh.json")
    assert '<html lang="ar-MA" dir="rtl" data-audience="public">' in public.text
    assert public.headers["content-language"] == "ar-MA"
    assert '<html lang="fr-MA" dir="ltr"' in public_fr.text
    assert '<html lang="fr-MA" dir="ltr" data-audience="operator">' in operator.text
    assert '<html lang="zgh" dir="ltr"' in chosen.text
    body = catalogue.json()
    assert body["locale"] == "ar-MA" and body["dir"] == "rtl"
    assert body["messages"]["label.kind.lampFailure"] == "عطب في المصباح"
    assert "zero {" in body["messages"]["map.vehicles"]
    assert [loc["code"] for loc in body["locales"]] == ["ar-MA", "fr-MA", "zgh", "en"]
    messages = tamazight.json()["messages"]
    assert messages["map.title"] == "Rasd — carte en direct"  # no Tamazight: the French
    assert messages["lang.label"] == "ⵜⵓⵜⵍⴰⵢⵜ"
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


async def test_a_rate_limited_citizen_is_told_when_to_retry_in_arabic(migrated: Settings) -> None:
    reporter = await make_token(migrated, Role.REPORTER)
    # A window far longer than the test: no window boundary falls inside it.
    limits = {"open311_rate_per_key": 1, "open311_rate_window_s": 10**8}
    form = {"api_key": reporter, "service_code": "illegal_dumping", "lat": str(LAT0)}
    form |= {"long": str(LON0)}
    async with ApiServer(migrated, **limits) as server, server.client() as client:
        first = await client.post("/open311/v2/requests.json", data=form, headers=FORM)
        second = await client.post("/open311/v2/requests.json?locale=ar", data=form, headers=FORM)
    assert first.status_code == 201 and second.status_code == 429
    wait = int(second.headers["Retry-After"])
    text = second.json()[0]["description"]
    assert text.startswith("طلبات كثيرة جدًا من هذا المصدر (api_key): 1 على الأكثر")
    # The Arabic form for the wait: "ثوان" for 3 to 10 (mod 100), "ثانية" from 11 on.
    seconds = "ثوان" if 3 <= wait % 100 <= 10 else "ثانية"
    assert wait > 10 and text.endswith(f"ثانية؛ أعد المحاولة بعد {wait} {seconds}")
