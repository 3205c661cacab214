"""The pages' Content-Security-Policy in headless Chromium: the map and the crew board load and
go live with no violation (every browser test checks that too, through ``csp_watch``), the
policy is enforced (markup with a style attribute is refused and reported), and a page of
another origin that frames the crew board gets Chromium's refusal. Screenshots in artifacts/."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from api.auth import Role
from telemetry.settings import Settings
from tests.browser.conftest import CspWatch
from tests.browser.test_pages import WAIT_MS, _token
from tests.support.api_process import ApiProcess
from tests.support.env import free_port

# Arrow functions, not expressions: Playwright polls an expression with eval, which the pages'
# CSP (no 'unsafe-eval') refuses.
LIVE = "() => document.getElementById('status').textContent === 'live'"


class _PageServer(ThreadingHTTPServer):
    """A server of one page, ``html``."""

    html = ""


class _FramingPage(BaseHTTPRequestHandler):
    """Answers every GET with the server's page: a page of another origin."""

    def do_GET(self) -> None:
        assert isinstance(self.server, _PageServer)
        body = self.server.html.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test's output is enough."""


@pytest.fixture
def other_origin() -> Iterator[Callable[[str], str]]:
    """Serves a given HTML page from a second local port (another origin); returns its URL."""
    server = _PageServer(("127.0.0.1", free_port()), _FramingPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def serve(html: str) -> str:
        server.html = html
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_map_and_crew_board_go_live_without_violations(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    csp_watch: CspWatch,
    artifacts: Path,
) -> None:
    api = start_api(migrated)
    operator = _token(migrated, Role.OPERATOR)
    crew = _token(migrated, Role.CREW, ["medina"])
    page = browser_context.new_page()
    page.goto(f"{api.url}/#token={operator}")
    page.wait_for_function(LIVE, timeout=WAIT_MS)
    # The light-status legend is coloured through the CSSOM (no style attribute).
    swatch = page.locator("#light-statuses label span").first
    assert swatch.evaluate("(s) => getComputedStyle(s).backgroundColor") != "rgba(0, 0, 0, 0)"
    assert page.locator(".district-label").count() == 5
    page.screenshot(path=str(artifacts / "csp-map.png"))
    board = browser_context.new_page()
    board.goto(f"{api.url}/crew#token={crew}")
    board.wait_for_function(LIVE, timeout=WAIT_MS)
    board.screenshot(path=str(artifacts / "csp-crew.png"))
    assert csp_watch.take() == []

    # The policy is enforced, and the watch sees it: a style attribute in markup is refused.
    board.evaluate(
        "document.getElementById('scope').innerHTML = '<b id=\"styled\" style=\"color: red\">x</b>'"
    )
    board.wait_for_function("() => document.getElementById('styled') !== null")
    assert (
        board.evaluate("getComputedStyle(document.getElementById('styled')).color")
        != "rgb(255, 0, 0)"
    )
    page.wait_for_timeout(500)  # the console message arrives asynchronously
    refused = csp_watch.take()
    assert any("style-src" in text for text in refused), refused


def test_another_origin_cannot_frame_the_crew_board(
    migrated: Settings,
    start_api: Callable[..., ApiProcess],
    browser_context: Any,
    csp_watch: CspWatch,
    other_origin: Callable[[str], str],
    artifacts: Path,
) -> None:
    api = start_api(migrated)
    # /healthz (JSON, not a page: no frame-ancestors) is the control: it does render framed.
    url = other_origin(
        "<!doctype html><title>framing</title>"
        f'<iframe id="crew" src="{api.url}/crew" width="600" height="300"></iframe>'
        f'<iframe id="health" src="{api.url}/healthz" width="300" height="100"></iframe>'
    )
    page = browser_context.new_page()
    page.goto(url)
    page.wait_for_load_state("load")
    health = page.frame_locator("#health").locator("body")
    health.wait_for(timeout=WAIT_MS)
    assert '"ok"' in health.inner_text()
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts / "csp-framed-crew-refused.png"))
    crew_frame = page.locator("#crew").element_handle().content_frame()
    assert crew_frame is not None
    assert not crew_frame.url.startswith(api.url), crew_frame.url  # an error page instead
    refused = csp_watch.take()
    assert any("frame-ancestors" in text for text in refused), refused
