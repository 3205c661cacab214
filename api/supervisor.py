"""Supervised background jobs: one named task each in a TaskGroup, restarted with backoff.

A job is a coroutine factory: a run that raises is logged and started afresh after a jittered,
growing delay (reset once a run has stayed up a while); a run that returns is done. Leaving
``supervised`` cancels every task and awaits it; an error a job raises while being cancelled is
logged, never lost, and does not stop the others from shutting down.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from telemetry.backoff import Backoff

log = structlog.get_logger("api.supervisor")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


@dataclass(frozen=True, kw_only=True)
class Job:
    """One background loop: the task's name and what starts a fresh run of it."""

    name: str
    run: Callable[[], Coroutine[Any, Any, None]]


@dataclass(frozen=True, kw_only=True)
class RestartPolicy:
    """How long to wait before restarting a failed run; injectable sleep and clock for tests."""

    # The first restart waits base_s (as the fixed delay before it did); repeated failures
    # back off towards cap_s, so a job failing at once does not spin.
    base_s: float = 2.0
    cap_s: float = 60.0
    # A run that lasted this long was healthy: its failure starts the backoff over.
    healthy_after_s: float = 60.0
    sleep: Sleep = asyncio.sleep
    clock: Clock = time.monotonic
    rng: random.Random = field(default_factory=random.Random)


async def keep_running(job: Job, policy: RestartPolicy) -> None:
    """Run ``job`` until it returns or is cancelled, restarting it after each error."""
    backoff = Backoff(base=policy.base_s, cap=policy.cap_s, rng=policy.rng)
    task = asyncio.current_task()
    while True:
        started = policy.clock()
        try:
            await job.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if task is not None and task.cancelling():
                # Failed while shutting down: say so, and end as cancelled like the others.
                log.exception("background_task_failed_on_shutdown", task=job.name, error=repr(exc))
                raise asyncio.CancelledError from exc
            if policy.clock() - started >= policy.healthy_after_s:
                backoff.reset()
            delay = backoff.next_delay()
            log.exception(
                "background_task_failed",
                task=job.name,
                error=repr(exc),
                restart_in_s=round(delay, 3),
                failures=backoff.attempts,
            )
            await policy.sleep(delay)
        else:
            log.info("background_task_finished", task=job.name)
            return


@contextlib.asynccontextmanager
async def supervised(
    jobs: Sequence[Job], policy: RestartPolicy | None = None
) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run every job as a task named after it while the block runs; on leaving, cancel them
    all and wait until each has ended."""
    policy = policy or RestartPolicy()
    failure: Exception | None = None
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(keep_running(job, policy), name=job.name) for job in jobs]
        try:
            yield tasks
        except Exception as exc:
            # Raised below, once every task has ended: raised in here, the TaskGroup would wrap
            # the block's own error in an ExceptionGroup.
            failure = exc
        finally:
            for task in tasks:
                task.cancel()
    if failure is not None:
        raise failure
