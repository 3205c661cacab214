"""Runs one Rasd service (``python -m <module>``) as a real child process for tests."""

from __future__ import annotations

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


class ServiceProcess:
    """A child service with an ops port; ``stop()`` sends SIGTERM, ``kill()`` SIGKILL."""

    module = ""
    healthy_timeout = 30.0

    def __init__(self, settings: Settings, log_path: Path, port: int, **env: str) -> None:
        self.settings = settings
        self.log_path = log_path
        self.port = port
        self.env = settings_env(settings) | env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait_healthy: bool = True) -> ServiceProcess:
        """Start the process and, by default, wait for ``/healthz`` to answer 200."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=self.env,
                stdout=log,
                stderr=log,
                cwd=Path(__file__).resolve().parents[2],
            )
        if wait_healthy:
            wait_until(self.healthy, timeout=self.healthy_timeout, what=f"{self.module} /healthz")
        return self

    def healthy(self) -> bool:
        """True when ``/healthz`` answers 200; fails the test if the process died."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"{self.module} exited with {self.proc.returncode}: {self.log_tail()}"
            )
        return self.http_get("/healthz")[0] == 200

    def http_get(self, path: str) -> tuple[int, str]:
        """GET one of the ops endpoints; (status, body), status 0 when nothing answers."""
        url = f"http://127.0.0.1:{self.port}{path}"
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
        self.proc.kill()
        self.proc.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the process's log, for failure messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Kill the process if it still runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
