"""Fixtures of the browser tests: the API as a real ``python -m api`` process, headless system
Chromium through Playwright (never a downloaded browser), and a screenshot directory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from telemetry.settings import Settings
from tests.support.api_process import ApiProcess

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("RASD_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots are kept (``RASD_TEST_ARTIFACTS``, default ``artifacts/`` in the repo)."""
    path = Path(os.environ.get("RASD_TEST_ARTIFACTS", ROOT / "artifacts")) / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


# What every browser test's API runs with.
API_ENV = {
    "RASD_API_TILE_URL": "",  # no network in tests: outlines only
    "RASD_API_REGISTRY_REFRESH_S": "1",
    "RASD_API_AUTH_CACHE_S": "0",
}


@pytest.fixture
def start_api(tmp_path: Path) -> Iterator[Callable[..., ApiProcess]]:
    """Factory for API processes, stopped at teardown."""
    procs: list[ApiProcess] = []

    def start(settings: Settings, **env: str) -> ApiProcess:
        log = tmp_path / f"api-{len(procs)}.log"
        proc = ApiProcess(settings, log, port=None, **(API_ENV | env))
        procs.append(proc)
        return proc.start()

    yield start
    for proc in procs:
        proc.shutdown()


# Reports every Content-Security-Policy violation of a page (and its frames) to the console,
# where CspWatch collects it beside Chromium's own "Refused to ..." messages.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => console.error(
  "securitypolicyviolation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
  " in " + e.documentURI));
"""


class CspWatch:
    """The CSP violations seen by every page of a browser context; none may be left over when
    the test ends, so every browser test also checks that its pages pass the CSP."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def attach(self, context: Any) -> None:
        """Watch every page ``context`` opens from now on."""
        context.add_init_script(script=REPORT_CSP_VIOLATIONS)
        context.on("page", lambda page: page.on("console", self._console))

    def _console(self, message: Any) -> None:
        text = str(message.text)
        if "Content Security Policy" in text or text.startswith("securitypolicyviolation:"):
            self.seen.append(text)

    def take(self) -> list[str]:
        """The violations seen so far, forgotten (for a test that expects some)."""
        seen, self.seen = self.seen, []
        return seen


@pytest.fixture
def csp_watch() -> CspWatch:
    """The browser context's CSP violations (a test expecting some takes them)."""
    return CspWatch()


@pytest.fixture
def browser_context(tmp_path: Path, csp_watch: CspWatch) -> Iterator[Any]:
    """A fresh headless Chromium profile (the system browser, driven by Playwright); fails
    the test if a page saw a Content-Security-Policy violation it did not expect."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install the Debian packages chromium chromium-driver")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        csp_watch.attach(context)
        try:
            yield context
        finally:
            context.close()
    assert csp_watch.take() == [], "Content-Security-Policy violations"
