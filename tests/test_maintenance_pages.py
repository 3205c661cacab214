"""The maintenance pages over HTTP: the public asset page says what the asset is and nothing
personal or commercial (no serial, supplier or tender), in Arabic by default, with the public
reporter key it posts with; an unknown asset is a 404; a QR code carries exactly the page's
address (checked through segno's own encoder); the crews' app's manifest and service worker,
and every file of the app shell the worker caches, are served."""

from __future__ import annotations

import io
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import segno

from api.auth import Role
from api.routes.maintenance_pages import asset_url, qr_svg
from telemetry.settings import Settings
from tests.browser.test_crew_app import crew_city
from tests.support.api_server import ApiServer, api_server, make_token

FOREIGN = {"Accept-Language": "de-DE,de;q=0.9"}  # no locale of Rasd: the audience's default


@pytest.fixture
async def city(migrated: Settings, tmp_path: Path) -> Settings:
    """Two medina poles with their luminaires in the register."""
    crew_city(migrated, tmp_path)
    return migrated


@pytest.fixture
async def reporter(city: Settings) -> str:
    """The public page's reporter token."""
    return await make_token(city, Role.REPORTER, label="asset pages")


@pytest.fixture
async def api(city: Settings, reporter: str) -> AsyncIterator[ApiServer]:
    """The API with the public page's key configured."""
    async for server in api_server(city, public_report_key=reporter):
        yield server


async def test_the_public_page_shows_the_asset_and_nothing_private(
    api: ApiServer, reporter: str
) -> None:
    async with api.client() as client:
        page = await client.get("/a/LUM-MED-00042", headers=FOREIGN)
    assert page.status_code == 200
    html = page.text
    assert '<html lang="ar-MA" dir="rtl" data-audience="public">' in html
    assert page.headers["content-language"] == "ar-MA"
    assert 'data-asset-id="LUM-MED-00042"' in html and 'data-kind="luminaire"' in html
    # A luminaire without a district of its own takes its pole's; the key is the reporter's.
    assert 'data-district="medina"' in html and f'data-key="{reporter}"' in html
    assert 'data-lat="31.6258"' in html and 'data-lon="-7.9892"' in html
    for private in ("LU18-42", "Enertika", "HAA-2016", "L-MED-00042"):
        assert private not in html
    assert "content-security-policy" in page.headers
    async with api.client() as client:
        french = await client.get("/a/P-MED-00042?lang=fr")
        zgh = await client.get("/a/P-MED-00042", headers={"Accept-Language": "zgh"})
    assert '<html lang="fr-MA" dir="ltr"' in french.text
    assert '<html lang="zgh" dir="ltr"' in zgh.text


async def test_an_unknown_asset_is_a_404_page_and_a_bad_id_is_refused(api: ApiServer) -> None:
    async with api.client() as client:
        missing = await client.get("/a/P-NOPE-1")
        bad = await client.get("/a/not%20an%20id")
        no_code = await client.get("/a/P-NOPE-1/qr.svg")
    assert missing.status_code == 404 and 'data-asset-id=""' in missing.text
    assert bad.status_code == 422
    assert no_code.status_code == 404


async def test_a_qr_code_carries_exactly_the_public_page_address(api: ApiServer) -> None:
    async with api.client() as client:
        answer = await client.get("/a/P-MED-00042/qr.svg")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    url = f"{api.base_url}/a/P-MED-00042"
    assert asset_url(api.base_url + "/", "P-MED-00042") == url
    # The same encoder given the same payload draws the same code: the payload is that URL.
    assert answer.content == qr_svg(url)
    expected = io.BytesIO()
    segno.make_qr(url, error="m").save(expected, kind="svg", scale=4, border=4, xmldecl=False)
    assert answer.content == expected.getvalue()
    assert answer.content != qr_svg(f"{api.base_url}/a/P-MED-00043")


async def test_the_public_page_without_a_key_has_no_form(city: Settings) -> None:
    async for server in api_server(city):
        async with server.client() as client:
            page = await client.get("/a/P-MED-00042")
        assert page.status_code == 200 and 'data-key=""' in page.text


async def test_the_crew_app_installs_and_its_shell_is_served(api: ApiServer) -> None:
    async with api.client() as client:
        manifest = await client.get("/crew.webmanifest")
        worker = await client.get("/crew-sw.js")
        crew = await client.get("/crew")
        assert manifest.headers["content-type"] == "application/manifest+json"
        body = json.loads(manifest.content)
        assert (body["start_url"], body["scope"], body["display"]) == (
            "/crew",
            "/crew",
            "standalone",
        )
        for icon in body["icons"]:
            image = await client.get(icon["src"])
            assert image.status_code == 200 and image.headers["content-type"] == icon["type"]
        assert worker.headers["content-type"].startswith("text/javascript")
        assert worker.headers["cache-control"] == "no-cache"
        shell = re.search(r"const SHELL = \[(.*?)\];", worker.text, re.S)
        assert shell is not None
        urls = re.findall(r'"(/[^"]*)"', shell.group(1))
        assert "/crew" in urls and "/static/crew-outbox.js" in urls and len(urls) > 10
        for url in urls:
            assert (await client.get(url)).status_code == 200, url
        assert '<link rel="manifest" href="/crew.webmanifest">' in crew.text
        for page in ("/maintenance", "/assets/qr-sheet?circuit=C-112"):
            answer = await client.get(page, headers=FOREIGN)
            assert answer.status_code == 200
            assert '<html lang="fr-MA" dir="ltr" data-audience="operator">' in answer.text
