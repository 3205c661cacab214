"""The one ASGI middleware that puts the browser security headers on every HTTP answer.

Pure ASGI (not BaseHTTPMiddleware): it only rewrites ``http.response.start``, so streamed
bodies and WebSockets pass untouched."""

from __future__ import annotations

import functools

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.security_headers import COMMON_HEADERS, FRAME_OPTIONS, is_html, page_policy

# Distinct Host headers whose page policy is kept (a handful in practice: name, address, proxy).
POLICY_CACHE_SIZE = 64


class SecurityHeaders:
    """Adds ``COMMON_HEADERS`` to every answer and, to HTML pages, the page CSP and
    ``X-Frame-Options``; a CSP a route set itself (``/docs``) is kept."""

    def __init__(self, app: ASGIApp, *, tile_url: str) -> None:
        self.app = app
        self.policy = functools.lru_cache(maxsize=POLICY_CACHE_SIZE)(
            functools.partial(_page_policy, tile_url)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON_HEADERS:
                    headers.setdefault(name, value)
                if is_html(headers.get("content-type", "")):
                    headers.setdefault("Content-Security-Policy", self.policy(host))
                    headers.setdefault(*FRAME_OPTIONS)
            await send(message)

        await self.app(scope, receive, send_wrapper)


def _page_policy(tile_url: str, host: str | None) -> str:
    return page_policy(tile_url=tile_url, host=host)
