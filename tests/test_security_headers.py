"""The browser security headers: the pure policy builders (tile sources, WebSocket sources,
Swagger UI's nonce) and the ASGI middleware on a small app (HTML, JSON, a streamed body and a
WebSocket pass through it untouched but for the headers)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import Message
from starlette.websockets import WebSocket

from api.security_headers import (
    is_html,
    page_policy,
    swagger_page,
    tile_source,
    websocket_sources,
)
from api.security_middleware import SecurityHeaders

OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


def _directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        assert name not in parsed, f"{name} twice"
        parsed[name] = sources
    return parsed


# -- the pure builders ------------------------------------------------------------------------


def test_tile_sources_follow_the_configured_template() -> None:
    assert tile_source(OSM) == "https://tile.openstreetmap.org"
    assert tile_source("https://{s}.tile.example.org/{z}/{x}/{y}.png") == (
        "https://*.tile.example.org"
    )
    assert tile_source("http://127.0.0.1:8081/{z}/{x}/{y}.png") == "http://127.0.0.1:8081"
    assert tile_source("https://tiles-{s}.example.org/{z}.png") == "https:"
    for same_origin_or_none in ("", "   ", "/tiles/{z}/{x}/{y}.png", "tiles/{z}.png"):
        assert tile_source(same_origin_or_none) is None
    for garbage in ("https://a;b/x", "https://user@host/x", "javascript:alert(1)"):
        assert tile_source(garbage) is None


def test_page_policy_holds_every_required_directive() -> None:
    policy = _directives(page_policy(tile_url=OSM, host="127.0.0.1:8080"))
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:", "blob:", "https://tile.openstreetmap.org"]
    assert policy["connect-src"] == ["'self'", "ws://127.0.0.1:8080", "wss://127.0.0.1:8080"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    no_tiles = _directives(page_policy(tile_url="", host=None))
    assert no_tiles["img-src"] == ["'self'", "data:", "blob:"]
    assert no_tiles["connect-src"] == ["'self'"]


def test_a_malformed_host_header_never_reaches_the_policy() -> None:
    assert websocket_sources("[::1]:8080") == ("ws://[::1]:8080", "wss://[::1]:8080")
    for bad in ("a b", "x; script-src *", "évil", "", "host:port", "a/b"):
        assert websocket_sources(bad) == ()


@given(st.text(max_size=80), st.one_of(st.none(), st.text(max_size=80)))
def test_no_input_adds_a_directive(tile_url: str, host: str | None) -> None:
    """Whatever the tile setting and Host header, the policy keeps its ten directives, each
    source free of separators."""
    policy = _directives(page_policy(tile_url=tile_url, host=host))
    assert len(policy) == 10
    for sources in policy.values():
        for source in sources:
            keyword = re.fullmatch(r"'[a-z-]+'", source)
            assert keyword or not any(c in source for c in ",;'\""), source


def test_swagger_page_nonces_its_inline_scripts_and_allows_only_its_assets() -> None:
    html = (
        '<link rel="stylesheet" href="https://assets.example.net/ui@5/ui.css">'
        '<link rel="shortcut icon" href="https://img.example.org/favicon.png">'
        '<script src="https://assets.example.net/ui@5/bundle.js"></script>'
        "<script>const ui = Bundle({url: '/openapi.json'})</script>"
    )
    page, policy = swagger_page(html, nonce="n0nce")
    assert '<script nonce="n0nce">const ui' in page
    assert '<script src="https://assets.example.net/ui@5/bundle.js">' in page
    directives = _directives(policy)
    assert directives["script-src"] == [
        "'self'",
        "'nonce-n0nce'",
        "https://assets.example.net",
        "https://img.example.org",
    ]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-eval'" not in policy


def test_html_media_types() -> None:
    assert is_html("text/html; charset=utf-8")
    assert is_html(" TEXT/HTML")
    assert not is_html("application/json")
    assert not is_html("")


# -- the middleware -----------------------------------------------------------------------------


async def _page(_: object) -> HTMLResponse:
    return HTMLResponse("<p>page</p>")


async def _json(_: object) -> JSONResponse:
    return JSONResponse({"ok": True})


async def _own_policy(_: object) -> HTMLResponse:
    return HTMLResponse("<p>docs</p>", headers={"Content-Security-Policy": "default-src 'none'"})


async def _stream(_: object) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"chunk {i}\n".encode()

    return StreamingResponse(chunks(), media_type="text/csv")


async def _echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()


def _app() -> SecurityHeaders:
    app = Starlette(
        routes=[
            Route("/page", _page),
            Route("/json", _json),
            Route("/docs", _own_policy),
            Route("/stream", _stream),
            WebSocketRoute("/ws", _echo),
        ]
    )
    return SecurityHeaders(app, tile_url=OSM)


async def test_middleware_marks_pages_and_every_other_answer() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://rasd.test:8080") as client:
        page = await client.get("/page")
        policy = _directives(page.headers["content-security-policy"])
        assert policy["connect-src"] == ["'self'", "ws://rasd.test:8080", "wss://rasd.test:8080"]
        assert page.headers["x-frame-options"] == "DENY"
        for answer in (page, await client.get("/json"), await client.get("/missing")):
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "no-referrer"
        api = await client.get("/json")
        assert "content-security-policy" not in api.headers
        assert "x-frame-options" not in api.headers
        docs = await client.get("/docs")
        assert docs.headers.get_list("content-security-policy") == ["default-src 'none'"]
        stream = await client.get("/stream")
        assert stream.text == "chunk 0\nchunk 1\nchunk 2\n"
        assert stream.headers["x-content-type-options"] == "nosniff"


async def test_middleware_lets_websockets_through() -> None:
    """A WebSocket session driven by raw ASGI messages: accepted, echoed, closed, unchanged."""
    incoming: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "ping"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "scheme": "ws",
        "query_string": b"",
        "headers": [(b"host", b"rasd.test")],
        "client": ("127.0.0.1", 5000),
        "server": ("rasd.test", 80),
        "subprotocols": [],
        "asgi": {"version": "3.0", "spec_version": "2.4"},
    }
    await _app()(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[0].get("headers", []) == []
    assert sent[1]["text"] == "ping"
