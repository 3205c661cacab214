"""A service with nothing to do costs next to nothing: connected to the broker and the
database, with no traffic and no client, each of ingest, alerts and the API must sleep. (A
watcher in the API that spun its event loop once burned a whole core per API process, and
starved requests on a loaded machine.)"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from telemetry.settings import Settings
from tests.support.alerts_process import AlertsProcess
from tests.support.api_process import ApiProcess
from tests.support.ingest_process import IngestProcess
from tests.support.service_process import ServiceProcess

pytestmark = pytest.mark.services

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _api(settings: Settings, log: Path) -> ServiceProcess:
    return ApiProcess(settings, log).start()


def _ingest(settings: Settings, log: Path) -> ServiceProcess:
    return IngestProcess(settings, log).start()


def _alerts(settings: Settings, log: Path) -> ServiceProcess:
    return AlertsProcess(settings, log).start()


@pytest.mark.parametrize("start", [_api, _ingest, _alerts], ids=["api", "ingest", "alerts"])
def test_an_idle_service_sleeps(
    start: Callable[[Settings, Path], ServiceProcess], migrated: Settings, tmp_path: Path
) -> None:
    proc = start(migrated, tmp_path / "service.log")
    try:
        assert proc.proc is not None
        time.sleep(2.0)  # past the start-up work (first registry load, first sweeps)
        before, started = cpu_seconds(proc.proc.pid), time.monotonic()
        time.sleep(5.0)
        used = cpu_seconds(proc.proc.pid) - before
        wall = time.monotonic() - started
    finally:
        proc.close()
    # Its own CPU time, not wall time: other load on the machine does not inflate it. Idle
    # upkeep (live frames, broker watch, heartbeats, metadata refresh) is a few per cent.
    assert used < 0.25 * wall, f"{proc.module}: {used:.2f} s of CPU in {wall:.1f} s idle"
