"""Browser security headers on the real API: every page has the strict CSP and X-Frame-Options,
every answer (pages, REST, Open311, open data, feeds, static files, errors) nosniff and
no-referrer; /docs has its own nonce policy; the pages' HTML holds nothing a CSP would refuse."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from api.auth import Role
from api.routes.pages import STATIC_DIR
from telemetry.settings import Settings
from tests.support.api_server import ApiServer, make_token

PAGES = ("/", "/crew", "/transparency")
OPEN_ANSWERS = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/config.json",
    "/api/v1/devices",  # 401: refusals carry the headers too
    "/open311/v2/services.json",
    "/open311/v2/services.xml",
    "/open-data/v1/catalog.json",
    "/gtfs-rt/vehicle-positions.pb",
    "/static/map.js",
    "/static/vendor/leaflet/leaflet.css",
    "/no/such/path",
)


def _directives(policy: str) -> dict[str, list[str]]:
    return {name: sources for name, *sources in (p.split() for p in policy.split(";"))}


def _assert_common(headers: httpx.Headers, path: str) -> None:
    assert headers.get("x-content-type-options") == "nosniff", path
    assert headers.get("referrer-policy") == "no-referrer", path


async def test_every_page_has_the_strict_policy(migrated: Settings) -> None:
    async with ApiServer(migrated) as server, server.client() as client:
        tile_url = (await client.get("/config.json")).json()["tile_url"]
        for path in PAGES:
            answer = await client.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["content-type"].startswith("text/html"), path
            _assert_common(answer.headers, path)
            assert answer.headers["x-frame-options"] == "DENY", path
            policy = _directives(answer.headers["content-security-policy"])
            assert policy["default-src"] == ["'self'"], path
            assert policy["script-src"] == ["'self'"], path
            assert policy["style-src"] == ["'self'"], path
            assert policy["object-src"] == ["'none'"], path
            assert policy["base-uri"] == ["'none'"], path
            assert policy["form-action"] == ["'self'"], path
            assert policy["frame-ancestors"] == ["'none'"], path
            # The configured tiles (the default: OpenStreetMap's), and this server's sockets.
            assert "https://tile.openstreetmap.org" in policy["img-src"], tile_url
            assert {"data:", "blob:", "'self'"} <= set(policy["img-src"])
            host = server.base_url.removeprefix("http://")
            assert policy["connect-src"] == ["'self'", f"ws://{host}", f"wss://{host}"]


async def test_api_answers_carry_nosniff_and_no_referrer(migrated: Settings) -> None:
    token = await make_token(migrated, Role.OPERATOR)
    async with ApiServer(migrated) as server, server.client() as client:
        for path in OPEN_ANSWERS:
            answer = await client.get(path)
            assert answer.status_code < 500, (path, answer.status_code)
            _assert_common(answer.headers, path)
            assert "x-frame-options" not in answer.headers, path
            assert "content-security-policy" not in answer.headers, path
        assert (await client.get("/api/v1/devices")).status_code == 401
        authorised = await client.get(
            "/api/v1/devices", headers={"Authorization": f"Bearer {token}"}
        )
        assert authorised.status_code == 200
        _assert_common(authorised.headers, "/api/v1/devices")
        head = await client.head("/")
        _assert_common(head.headers, "HEAD /")


async def test_docs_page_has_its_own_nonce_policy(migrated: Settings) -> None:
    async with ApiServer(migrated) as server, server.client() as client:
        first, second = await client.get("/docs"), await client.get("/docs")
        assert first.status_code == 200
        _assert_common(first.headers, "/docs")
        assert first.headers["x-frame-options"] == "DENY"
        nonces = []
        for answer in (first, second):
            policy = _directives(answer.headers["content-security-policy"])
            (nonce,) = [s for s in policy["script-src"] if s.startswith("'nonce-")]
            nonces.append(nonce)
            inline = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", answer.text)
            assert inline and all(f'nonce="{nonce[7:-1]}"' in attrs for attrs in inline)
            assert policy["frame-ancestors"] == ["'none'"]
            assert "'unsafe-inline'" not in policy["script-src"]
        assert nonces[0] != nonces[1]  # one per answer
        assert "/openapi.json" in first.text
        for gone in ("/redoc", "/docs/oauth2-redirect"):
            assert (await client.get(gone)).status_code == 404, gone


class _InlineFinder(HTMLParser):
    """Collects what a strict CSP refuses in markup: inline scripts, handlers and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.refused.append("inline <script>")
        if tag == "style":
            self.refused.append("<style> element")
        self.refused += [f"{name}= on <{tag}>" for name in names if name.startswith("on")]
        if "style" in names:
            self.refused.append(f"style= on <{tag}>")
        for name, value in attrs:
            if name in ("href", "src", "action") and (value or "").startswith("javascript:"):
                self.refused.append(f"javascript: URL on <{tag}>")


@pytest.mark.parametrize("page", sorted(p.name for p in Path(STATIC_DIR).glob("*.html")))
def test_pages_hold_nothing_the_policy_refuses(page: str) -> None:
    finder = _InlineFinder()
    finder.feed((Path(STATIC_DIR) / page).read_text())
    assert finder.refused == []


@pytest.mark.parametrize("script", sorted(p.name for p in Path(STATIC_DIR).glob("*.js")))
def test_scripts_build_no_markup_with_style_attributes(script: str) -> None:
    """Markup the scripts build (innerHTML, Leaflet's html options) is refused the same way;
    colours go through the CSSOM (``el.style.x = ...``), which the CSP allows."""
    text = (Path(STATIC_DIR) / script).read_text()
    assert not re.search(r"""style\s*=\s*\\?["']""", text), script
    assert not re.search(r"""\son[a-z]+\s*=\s*\\?["']""", text), script
