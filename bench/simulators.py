"""``python -m bench.simulators``: how fast the generator feeds Mosquitto at QoS 1.

Measures, for a few seconds each: the generation rate alone (JSON lines to /dev/null), then
publishing at QoS 1 (every PUBACK awaited) with 1 and 2 processes, each simulating its shard
of the city. Publishes under a throw-away prefix, to a broker on this machine only.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
import uuid
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from typing import IO, Final

from bench.harness import BenchmarkError
from simulators.clock import parse_start
from simulators.engine import Engine, Shard
from simulators.errors import SimulatorError
from simulators.outputs import StdoutSink
from simulators.publish import MqttPublisher
from simulators.scenario import load_scenario
from telemetry.settings import Settings

_LOCAL_HOSTS: Final = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Job:
    """What one benchmark process does."""

    scenario: str
    shard: Shard
    seconds: float
    warmup: float
    prefix: str
    connections: int
    window: int
    protocol: str


def _engine(job: Job) -> Engine:
    scenario = load_scenario(job.scenario)
    return Engine(
        scenario,
        seed=scenario.seed,
        start=parse_start(scenario.start),
        duration=None,
        prefix=job.prefix,
        shard=job.shard,
    )


def generate(job: Job) -> tuple[int, float]:
    """Messages written as JSON lines to /dev/null in ``job.seconds``, and the time taken."""
    messages = _engine(job).messages()
    warm_until = time.monotonic() + job.warmup
    for _ in messages:  # the first minutes plan every bus's day so far: not steady state
        if time.monotonic() >= warm_until:
            break
    with open(os.devnull, "w") as devnull:
        sink = StdoutSink(devnull)
        began = time.monotonic()
        deadline = began + job.seconds
        for message in messages:
            sink.send(message)
            if sink.count % 512 == 0 and time.monotonic() >= deadline:
                break
        sink.finish()
    return sink.count, time.monotonic() - began


def publish(job: Job, barrier: Barrier | None = None) -> tuple[int, float]:
    """Messages published and acknowledged in ``job.seconds`` (plus the final flush)."""
    messages = _engine(job).messages()
    warm_until = time.monotonic() + job.warmup
    for _ in messages:
        if time.monotonic() >= warm_until:
            break
    settings = Settings(topic_prefix=job.prefix)
    with MqttPublisher(
        settings,
        connections=job.connections,
        window=job.window,
        protocol=job.protocol,
        name="rasd-bench",
    ) as publisher:
        if barrier is not None:
            barrier.wait()
        began = time.monotonic()
        deadline = began + job.seconds
        count = 0
        for message in messages:
            publisher.publish(message.device_id, message.topic, message.payload)
            count += 1
            if count % 512 == 0 and time.monotonic() >= deadline:
                break
        publisher.flush()
        elapsed = time.monotonic() - began
        if publisher.acked != count:
            raise BenchmarkError(f"{count - publisher.acked} messages not acknowledged")
    return count, elapsed


def _worker(job: Job, barrier: Barrier, results: multiprocessing.Queue[tuple[int, float]]) -> None:
    results.put(publish(job, barrier))


def publish_parallel(job: Job, processes: int) -> tuple[int, float]:
    """``processes`` publishers, each with its shard, started together; (total, slowest)."""
    if processes == 1:
        return publish(job)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    results: multiprocessing.Queue[tuple[int, float]] = context.Queue()
    workers = [
        context.Process(
            target=_worker,
            args=(
                Job(
                    job.scenario,
                    Shard(k, processes),
                    job.seconds,
                    job.warmup,
                    job.prefix,
                    job.connections,
                    job.window,
                    job.protocol,
                ),
                barrier,
                results,
            ),
        )
        for k in range(processes)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=job.seconds + job.warmup + 120) for _ in workers]
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise BenchmarkError(f"benchmark process exited with {worker.exitcode}")
    return sum(n for n, _ in outcomes), max(t for _, t in outcomes)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.simulators", description=__doc__)
    parser.add_argument("--scenario", default="city")
    parser.add_argument("--seconds", type=float, default=4.0, help="per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="generation before timing")
    parser.add_argument("--processes", default="1,2", help="comma-separated, e.g. 1,2,4")
    parser.add_argument("--connections", type=int, default=2, help="per process")
    parser.add_argument("--window", type=int, default=1000, help="in flight per connection")
    parser.add_argument("--protocol", choices=("5", "3.1.1"), default="5")
    return parser


def main(argv: list[str] | None = None, out: IO[str] | None = None) -> int:
    """Run the benchmark and print one line per measurement."""
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    settings = Settings()
    if settings.mqtt_host not in _LOCAL_HOSTS:
        print(
            f"error: benchmark only against a local broker, not {settings.mqtt_host}",
            file=sys.stderr,
        )
        return 2
    job = Job(
        args.scenario,
        Shard(),
        args.seconds,
        args.warmup,
        f"bench/{uuid.uuid4().hex[:8]}/v1",
        args.connections,
        args.window,
        args.protocol,
    )
    try:
        count, elapsed = generate(job)
        alone = count / elapsed
        print(f"generator alone (JSON lines to /dev/null): {alone:,.0f} msg/s", file=out)
        for processes in (int(p) for p in args.processes.split(",")):
            count, elapsed = publish_parallel(job, processes)
            rate = count / elapsed
            print(
                f"MQTT {args.protocol} QoS 1, {processes} process(es) x {args.connections} "
                f"connections: {rate:,.0f} msg/s ({count:,} acked in {elapsed:.1f} s; "
                f"{rate / alone:.2f} of generation alone)",
                file=out,
                flush=True,
            )
    except (SimulatorError, BenchmarkError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
