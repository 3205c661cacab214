"""Runs ``python -m ingest`` as a real child process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from telemetry.settings import Settings
from tests.support.env import settings_env
from tests.support.waiting import wait_until


class IngestProcess:
    """A child ingest process; ``stop()`` sends SIGTERM, ``kill()`` sends SIGKILL."""

    def __init__(self, settings: Settings, log_path: Path, **env_overrides: str) -> None:
        self.settings = settings
        self.log_path = log_path
        self.env = settings_env(settings) | env_overrides
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait_healthy: bool = True) -> IngestProcess:
        """Start the process and, by default, wait for ``/healthz`` to answer 200."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingest"],
            env=self.env,
            stdout=log,
            stderr=log,
            cwd=Path(__file__).resolve().parents[2],
        )
        log.close()
        if wait_healthy:
            wait_until(self.healthy, timeout=30, what="ingest /healthz")
        return self

    def healthy(self) -> bool:
        """True when ``/healthz`` answers 200."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"ingest exited with {self.proc.returncode}: {self.log_tail()}")
        return self.http_get("/healthz")[0] == 200

    def http_get(self, path: str) -> tuple[int, str]:
        """GET one of the ops endpoints; (status, body), status 0 when nothing answers."""
        url = f"http://127.0.0.1:{self.settings.ingest_http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode()
        except OSError:
            return 0, ""

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the process's log, for failure messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> IngestProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
