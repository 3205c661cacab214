"""The API's background-task supervisor: restarts with growing delays, clean shutdown.

The delays are never waited for: the policy's sleep records them and returns, and its clock
is a counter the test moves, so nothing here depends on timing.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import MutableMapping, Sequence
from typing import Any

import pytest
from structlog.testing import capture_logs

from api.supervisor import Job, RestartPolicy, keep_running, supervised


class _Highest(random.Random):
    """Jitter that always picks the top of the range, so each delay is its ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


class _Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _policy(delays: list[float], clock: _Clock | None = None) -> RestartPolicy:
    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    return RestartPolicy(
        base_s=2.0,
        cap_s=60.0,
        healthy_after_s=60.0,
        sleep=sleep,
        clock=clock or _Clock(),
        rng=_Highest(),
    )


def _events(logs: Sequence[MutableMapping[str, Any]], event: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == event]


async def test_a_failing_job_is_restarted_after_growing_delays_until_it_runs() -> None:
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 3:
            raise RuntimeError(f"failure {runs}")

    delays: list[float] = []
    with capture_logs() as logs:
        await keep_running(Job(name="flaky", run=flaky), _policy(delays))
    assert runs == 4
    assert delays == [2.0, 4.0, 8.0]
    failed = _events(logs, "background_task_failed")
    assert [(e["task"], e["error"], e["failures"]) for e in failed] == [
        ("flaky", "RuntimeError('failure 1')", 1),
        ("flaky", "RuntimeError('failure 2')", 2),
        ("flaky", "RuntimeError('failure 3')", 3),
    ]
    assert all(e["log_level"] == "error" and e["exc_info"] for e in failed)
    assert [e["task"] for e in _events(logs, "background_task_finished")] == ["flaky"]


async def test_delays_stop_growing_at_the_cap() -> None:
    runs = 0

    async def failing() -> None:
        nonlocal runs
        runs += 1
        if runs <= 8:
            raise ValueError("again")

    delays: list[float] = []
    with capture_logs():
        await keep_running(Job(name="failing", run=failing), _policy(delays))
    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


async def test_a_run_that_stayed_up_starts_the_backoff_over() -> None:
    clock = _Clock()
    runs = 0

    async def job() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            clock.now += 61.0  # this run was healthy for a minute before it failed
        if runs <= 4:
            raise RuntimeError("lost")

    delays: list[float] = []
    with capture_logs():
        await keep_running(Job(name="job", run=job), _policy(delays, clock))
    assert delays == [2.0, 4.0, 2.0, 4.0]


async def test_every_task_is_named_and_leaving_cancels_and_awaits_them_all() -> None:
    started = {"registry": asyncio.Event(), "complaints": asyncio.Event()}
    cancelled: list[str] = []

    def forever(name: str) -> Job:
        async def run() -> None:
            started[name].set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(name)
                raise

        return Job(name=name, run=run)

    with capture_logs() as logs:
        async with supervised([forever("registry"), forever("complaints")], _policy([])) as tasks:
            assert [task.get_name() for task in tasks] == ["registry", "complaints"]
            await asyncio.wait_for(
                asyncio.gather(*(event.wait() for event in started.values())), 10
            )
            assert not any(task.done() for task in tasks)
    assert all(task.cancelled() for task in tasks)
    assert sorted(cancelled) == ["complaints", "registry"]
    assert not _events(logs, "background_task_failed_on_shutdown")


async def test_a_task_raising_on_cancel_is_logged_and_shutdown_completes() -> None:
    ready = asyncio.Event()
    calm_started, calm_ended = asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:
        ready.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise OSError("could not flush on the way out") from None

    async def calm() -> None:
        calm_started.set()
        try:
            await asyncio.Event().wait()
        finally:
            calm_ended.set()

    delays: list[float] = []
    jobs = [Job(name="stubborn", run=stubborn), Job(name="calm", run=calm)]
    with capture_logs() as logs:
        async with supervised(jobs, _policy(delays)) as tasks:
            await asyncio.wait_for(asyncio.gather(ready.wait(), calm_started.wait()), 10)
    assert all(task.done() for task in tasks)
    assert calm_ended.is_set()
    assert delays == []  # not restarted
    failed = _events(logs, "background_task_failed_on_shutdown")
    assert [(e["task"], e["error"]) for e in failed] == [
        ("stubborn", "OSError('could not flush on the way out')")
    ]
    assert failed[0]["log_level"] == "error" and failed[0]["exc_info"]
    assert not _events(logs, "background_task_failed")


async def test_an_error_of_the_block_comes_out_as_itself_after_the_tasks_ended() -> None:
    ended = asyncio.Event()

    async def run() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.set()

    async def start_and_fail() -> None:
        async with supervised([Job(name="job", run=run)], _policy([])):
            await asyncio.sleep(0)
            raise LookupError("startup failed")

    with capture_logs(), pytest.raises(LookupError, match="startup"):
        await start_and_fail()
    assert ended.is_set()
