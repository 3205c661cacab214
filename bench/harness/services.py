"""Rasd services for the benchmarks: stopping child processes, their resource use, tokens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from telemetry.settings import Settings
from tests.support.env import settings_env
from tests.support.service_process import ServiceProcess


def stop_all(processes: Iterable[ServiceProcess], timeout: float = 60) -> None:
    """SIGTERM every process still running at once, then wait for each (SIGKILL if it hangs)."""
    running = [p for p in processes if p.proc is not None and p.proc.poll() is None]
    for process in running:
        assert process.proc is not None
        process.proc.send_signal(signal.SIGTERM)
    for process in running:
        assert process.proc is not None
        try:
            process.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def cli_token(settings: Settings, role: str, label: str) -> str:
    """A new token made as an operator makes one: ``python -m api tokens create``."""
    create = ["tokens", "create", "--role", role, "--label", label]
    return subprocess.run(
        [sys.executable, "-m", "api", *create],
        env=settings_env(settings),
        capture_output=True,
        check=True,
        text=True,
    ).stdout.strip()


def rss_kib(pid: int) -> int:
    """Resident memory of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
