"""Browser security headers of the API's answers: the pages' Content-Security-Policy and the
headers every answer carries. Pure: strings in, header values out (the ASGI side is
``api.security_middleware``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

# Every answer, pages and API alike. no-referrer: the pages' addresses carry tokens in their
# fragment, and nothing the pages link to needs to know where the reader came from.
COMMON_HEADERS: Final[tuple[tuple[str, str], ...]] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
# Pages only, beside the CSP's frame-ancestors for browsers that predate it.
FRAME_OPTIONS: Final = ("X-Frame-Options", "DENY")

# A Host header worth echoing into connect-src: a name or address and an optional port.
_HOST = re.compile(r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")
# A Leaflet URL template's subdomain placeholder, leftmost label only (CSP's only wildcard).
_SUBDOMAIN_TEMPLATE = re.compile(r"^\{[a-z]+\}\.")
# Swagger UI's page: its inline (src-less) script tags, and its external assets' addresses.
_INLINE_SCRIPT = re.compile(r"<script>", re.IGNORECASE)
_ASSET_URL = re.compile(r"""(?:src|href)=["'](https?://[^"']+)["']""", re.IGNORECASE)


def tile_source(tile_url: str) -> str | None:
    """The CSP source that lets the map load tiles from ``tile_url`` (a Leaflet URL template),
    or None when no external source is needed (no tiles, or tiles from this server)."""
    parts = urlsplit(tile_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None  # empty (no tiles) or a same-origin path: 'self' covers it
    host = _SUBDOMAIN_TEMPLATE.sub("", parts.netloc)
    wildcard = "*." if host != parts.netloc else ""
    if "{" in host:
        # A placeholder CSP cannot express: allow the scheme rather than break the map.
        return f"{parts.scheme}:"
    if not _HOST.fullmatch(host):
        return None  # not a host the browser would load tiles from either
    return f"{parts.scheme}://{wildcard}{host}"


def websocket_sources(host: str | None) -> tuple[str, ...]:
    """``ws://`` and ``wss://`` of the page's own host (behind a TLS proxy the page is https
    while the server sees http), or nothing when the Host header is absent or malformed."""
    if host is None or not _HOST.fullmatch(host):
        return ()
    return (f"ws://{host}", f"wss://{host}")


def _policy(directives: Iterable[tuple[str, Iterable[str]]]) -> str:
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives)


def page_policy(*, tile_url: str, host: str | None = None) -> str:
    """The Content-Security-Policy of the pages (map, crew board, transparency): scripts and
    styles from this server only, tiles from ``tile_url``'s origin, WebSockets to ``host``."""
    tiles = tile_source(tile_url)
    return _policy(
        (
            ("default-src", ["'self'"]),
            ("script-src", ["'self'"]),
            ("style-src", ["'self'"]),
            ("img-src", ["'self'", "data:", "blob:"] + ([tiles] if tiles else [])),
            ("connect-src", ["'self'", *websocket_sources(host)]),
            ("font-src", ["'self'"]),
            ("object-src", ["'none'"]),
            ("base-uri", ["'none'"]),
            ("form-action", ["'self'"]),
            ("frame-ancestors", ["'none'"]),
        )
    )


def swagger_page(html: str, *, nonce: str) -> tuple[str, str]:
    """Swagger UI's page (``/docs``) made to pass a CSP: its inline bootstrap scripts get
    ``nonce``; returns the page and its policy, which allows the origins of the page's own
    external assets (script, stylesheet, favicon) and nothing else."""
    marked = _INLINE_SCRIPT.sub(f'<script nonce="{nonce}">', html)
    external = sorted({o for url in _ASSET_URL.findall(html) if (o := _origin(url))})
    policy = _policy(
        (
            ("default-src", ["'self'"]),
            ("script-src", ["'self'", f"'nonce-{nonce}'", *external]),
            # Swagger UI's bundle applies inline styles; this page renders only our own
            # OpenAPI description, never user input.
            ("style-src", ["'self'", "'unsafe-inline'", *external]),
            ("img-src", ["'self'", "data:", *external]),
            ("connect-src", ["'self'"]),
            ("object-src", ["'none'"]),
            ("base-uri", ["'none'"]),
            ("form-action", ["'self'"]),
            ("frame-ancestors", ["'none'"]),
        )
    )
    return marked, policy


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def is_html(content_type: str) -> bool:
    """True for a ``text/html`` (or XHTML) media type, parameters aside."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("text/html", "application/xhtml+xml")
