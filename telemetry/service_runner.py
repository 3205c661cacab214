"""How ingest and alerts run: a blocking worker thread beside the ops HTTP port, until a signal.

Both services own the same shape of resources: an MQTT intake feeding a worker that runs in a
thread (it blocks on psycopg and on the intake), a small ops server, and optional periodic
tasks. This module owns the tasks, the signal handlers and the drain order, so the two stay
identical.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, Protocol

import structlog

from telemetry.ops_http import OwnSignalsServer


class DrainableWorker(Protocol):
    """A worker whose ``run`` blocks until ``request_stop`` and returns once it has drained."""

    def run(self) -> None:
        """Process until asked to stop, then finish in-flight work."""

    def request_stop(self) -> None:
        """Ask ``run`` to drain and return; safe from another thread."""


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM/SIGINT while the block runs."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def run_until_stopped(
    worker: DrainableWorker,
    server: OwnSignalsServer,
    stop: asyncio.Event,
    *,
    name: str,
    started: Callable[[], None],
    extra: Mapping[str, Callable[[], Coroutine[Any, Any, None]]] | None = None,
) -> None:
    """Run ``worker`` (in a thread), ``server`` and ``extra`` tasks until ``stop``, then drain.

    The worker drains first (commit, ack) and only then does the ops port close, so health
    checks see the service until its work is safe. A worker that dies stops everything.
    """
    log = structlog.get_logger(name)
    async with asyncio.TaskGroup() as tasks:
        worker_task = tasks.create_task(asyncio.to_thread(worker.run), name=name)
        tasks.create_task(server.serve(), name="ops-http")
        for task_name, make in (extra or {}).items():
            tasks.create_task(make(), name=task_name)

        async def stop_when_asked() -> None:
            await stop.wait()
            log.info("stopping", reason="signal")
            worker.request_stop()
            await worker_task
            server.should_exit = True

        tasks.create_task(stop_when_asked(), name="stopper")
        started()
        await asyncio.wait([worker_task], return_when=asyncio.FIRST_COMPLETED)
        stop.set()
