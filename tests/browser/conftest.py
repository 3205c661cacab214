"""Fixtures of the browser tests: the API as a real ``python -m api`` process, headless system
Chromium through Playwright (never a downloaded browser), and a screenshot directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from telemetry.settings import Settings
from tests.support.env import free_port, settings_env
from tests.support.waiting import wait_until

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


class ApiProcess:
    """``python -m api`` on a free port with the test's settings."""

    def __init__(self, settings: Settings, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.env = (
            settings_env(settings)
            | {
                "RASD_API_PORT": str(self.port),
                "RASD_API_TILE_URL": "",  # no network in tests: outlines only
                "RASD_API_REGISTRY_REFRESH_S": "1",
                "RASD_API_AUTH_CACHE_S": "0",
            }
            | env
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:<port>."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiProcess:
        """Start and wait for ``/readyz``."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "api"], env=self.env, stdout=log, stderr=log, cwd=ROOT
            )
        wait_until(self.ready, timeout=60, what="API /readyz")
        return self

    def ready(self) -> bool:
        """True when /readyz answers 200."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"api exited with {self.proc.returncode}: {self.log_tail()}")
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=2) as answer:
                return int(answer.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def start_api(tmp_path: Path) -> Iterator[Callable[..., ApiProcess]]:
    """Factory for API processes, stopped at teardown."""
    procs: list[ApiProcess] = []

    def start(settings: Settings, **env: str) -> ApiProcess:
        proc = ApiProcess(settings, tmp_path / f"api-{len(procs)}.log", **env)
        procs.append(proc)
        return proc.start()

    yield start
    for proc in procs:
        proc.stop()


@pytest.fixture
def browser_context(tmp_path: Path) -> Iterator[Any]:
    """A fresh headless Chromium profile (the system browser, driven by Playwright)."""
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
        try:
            yield context
        finally:
            context.close()
