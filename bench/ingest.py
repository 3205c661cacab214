"""Drain-rate benchmark: ``python -m bench.ingest [--messages N]``.

Loads N QoS 1 messages (a city mix of positions, energy and faults, some batched) into four
offline persistent sessions on a private Mosquitto, then times, one after the other:
1. ``mosquitto_sub -q 1 -c`` draining its queue (the C client: the ceiling);
2. a bare paho-mqtt client draining its queue with manual acks and doing nothing else;
2b. a bare MqttSession (Rasd's asyncio client, which the ingestor runs on) doing the same;
3. Rasd's ingestor draining its queue into the database (rows committed, acks sent);
4. the same with two ingest processes sharing the subscription.
Publishing (MqttSession, QoS 1) happens before any timing, so the publisher's CPU never
competes with a consumer.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench.harness import BenchmarkError
from bench.harness.mqtt import (
    drain_batches,
    drain_mosquitto_sub,
    drain_paho,
    make_mosquitto_sub_session,
    make_session,
    private_broker_instance,
    publish_all,
)
from bench.harness.services import cpu_seconds, stop_all
from bench.harness.traffic import FILTER, PREFIX, city_mix
from bench.seed_data import time_series_rows
from telemetry.db import conninfo
from telemetry.migrate import migrate
from telemetry.settings import Settings
from tests.support.api_server import register_devices
from tests.support.database import drop_schema
from tests.support.env import free_port
from tests.support.ingest_process import IngestProcess

SESSION_ID = "bench-session"


def _rows(settings: Settings) -> tuple[int, datetime | None]:
    with psycopg.connect(conninfo(settings), autocommit=True) as conn:
        return time_series_rows(conn)


def _profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling one ingest process, to look before tuning."""
    return subprocess.Popen(
        [
            # Beside this interpreter: .venv/bin is not on PATH when the bench runs as
            # .venv/bin/python -m bench.ingest.
            str(Path(sys.executable).with_name("py-spy")),
            *("record", "--format", "raw", "-r", "250", "--nonblocking"),
            *("-o", str(out), "--pid", str(pid)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass(kw_only=True)
class Drain:
    """One drain: seconds from first receive to last commit (or ack), CPU seconds per process."""

    seconds: float
    cpu: dict[str, float] = field(default_factory=dict)


class _RowsWritten:
    """Rows the ingest processes committed, read from their ``/metrics`` on kept-alive
    connections: a poll costs each ingest one small HTTP answer, where counting the tables
    every 20 ms (as this benchmark first did, on a new connection each time) took a
    PostgreSQL backend about as much CPU as the ingest being measured."""

    def __init__(self, ports: list[int]) -> None:
        self._ports = ports
        self._conns: dict[int, http.client.HTTPConnection] = {}
        self._answered: set[int] = set()
        self._since = time.monotonic()

    def _one(self, port: int) -> int | None:
        conn = self._conns.get(port)
        if conn is None:
            conn = self._conns[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/metrics")
            body = conn.getresponse().read().decode()
        except OSError:  # not listening yet, or the keep-alive was closed
            conn.close()
            del self._conns[port]
            return None
        self._answered.add(port)
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in body.splitlines()
            if line.startswith("rasd_ingest_rows_written_total{")
        )

    def total(self) -> int | None:
        """Rows committed by every process so far; None once a process has not answered for
        10 s (its ops port was taken by another job on the machine, say)."""
        counts = [self._one(port) for port in self._ports]
        never = any(port not in self._answered for port in self._ports)
        if never and time.monotonic() - self._since > 10:
            return None
        return sum(n or 0 for n in counts)

    def close(self) -> None:
        """Close the connections."""
        for conn in self._conns.values():
            conn.close()


def _backend_pids(settings: Settings) -> list[int]:
    """PostgreSQL backends of the running ingest processes (for their CPU use)."""
    with psycopg.connect(conninfo(settings), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'rasd-ingest%'"
        ).fetchall()
    return [int(pid) for (pid,) in rows]


def _cpu_of(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each process still running."""
    used = {}
    for pid in pids:
        try:
            used[pid] = cpu_seconds(pid)
        except FileNotFoundError:
            continue
    return used


def drain_ingest(
    settings: Settings,
    group: str,
    client_ids: list[str],
    rows: int,
    log_dir: Path,
    broker_pid: int,
) -> Drain:
    """Run ingest processes until every row is committed; seconds from first receive to last."""
    procs: list[IngestProcess] = []
    profilers: list[subprocess.Popen[bytes]] = []
    profile_dir = os.environ.get("RASD_BENCH_PROFILE")
    ports: list[int] = []
    written = _RowsWritten(ports)
    try:
        for index, client_id in enumerate(client_ids):
            own = settings.model_copy(
                update={
                    "ingest_share_group": group,
                    "ingest_client_id": client_id,
                    "ingest_http_port": free_port(),
                    "ingest_instance": str(index),
                    "log_level": "WARNING",
                }
            )
            ports.append(own.ingest_http_port)
            proc = IngestProcess(own, log_dir / f"{client_id}.log")
            procs.append(proc)
            # Not waiting for /healthz: the processes start together, as in production.
            proc.start(wait_healthy=False)
            if profile_dir:
                assert proc.proc is not None
                profilers.append(_profile(proc.proc.pid, Path(profile_dir, f"{client_id}.txt")))
        pids = {f"ingest {i}": p.proc.pid for i, p in enumerate(procs) if p.proc is not None}
        pids["mosquitto"] = broker_pid
        # CPU before the first commit: start-up (imports, connecting) is not the drain's.
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        backends: dict[int, float] = {}  # backend pid -> CPU seconds at the first commit
        counted_tables = False
        deadline = time.monotonic() + 900
        while True:
            polled = written.total()
            # No metrics from some process: count the tables (costs PostgreSQL CPU, said).
            stored = polled if polled is not None else _rows(settings)[0]
            if polled is None and not counted_tables:
                counted_tables = True
                print("  (an ingest's /metrics does not answer: counting the tables)", flush=True)
            if stored >= rows:
                finished = datetime.now(UTC)
                break
            if stored == 0:
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            elif not backends:
                backends = _cpu_of(_backend_pids(settings))
            if time.monotonic() > deadline or any(
                p.proc is not None and p.proc.poll() is not None for p in procs
            ):
                raise BenchmarkError(f"ingest stored {stored} of {rows} rows; logs in {log_dir}")
            # The end is seen up to this late (about 1 % of a drain); polling more often
            # costs the ingest measured more of its CPU.
            time.sleep(0.04)
        cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        # From the first commit seen on (a backend opened later: all of its CPU); the upkeep's
        # short-lived connections may be gone by then.
        now = _cpu_of(_backend_pids(settings))
        cpu["postgres (ingest backends)"] = sum(
            used - backends.get(pid, 0.0) for pid, used in now.items()
        )
        checked, first = _rows(settings)
        if checked != rows or first is None:
            raise BenchmarkError(f"the tables hold {checked} rows, the metrics said {stored}")
        return Drain(seconds=(finished - first).total_seconds(), cpu=cpu)
    finally:
        written.close()
        stop_all(procs)
        for profiler in profilers:
            profiler.wait(60)


def _timed(broker_pid: int, drain: Callable[[], float], own: str | None) -> Drain:
    """A reference drain with the CPU of the broker and of the consumer (``own``: this
    process, else the child it runs)."""
    broker = cpu_seconds(broker_pid)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    mine = time.process_time()
    seconds = drain()
    cpu = {"mosquitto": cpu_seconds(broker_pid) - broker}
    if own is None:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu["mosquitto_sub"] = (
            after.ru_utime - children.ru_utime + after.ru_stime - children.ru_stime
        )
    else:
        cpu[own] = time.process_time() - mine
    return Drain(seconds=seconds, cpu=cpu)


def _bench_settings(port: int, schema: str) -> Settings:
    base = Settings()
    return Settings(
        mqtt_url=f"mqtt://127.0.0.1:{port}",
        database_url=os.environ.get(
            "RASD_BENCH_DATABASE_URL", base.database_url.rsplit("/", 1)[0] + "/rasd_bench"
        ),
        database_schema=schema,
        topic_prefix=PREFIX,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the four drains and print msg/s and ratios."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args(argv)
    count = args.messages
    traffic = city_mix(count)
    tag = f"{os.getpid()}"
    log_dir = Path(tempfile.mkdtemp(prefix="rasd-bench-ingest-"))
    with private_broker_instance() as broker:
        port, broker_pid = broker.port, broker.pid
        assert broker_pid is not None
        one = _bench_settings(port, f"bench_one_{tag}")
        two = _bench_settings(port, f"bench_two_{tag}")
        for settings in (one, two):
            migrate(settings)
            register_devices(settings, *traffic.devices)
        make_mosquitto_sub_session(port, FILTER)
        make_session("bench-paho", port, FILTER)
        make_session(SESSION_ID, port, FILTER)
        make_session("bench-one-0", port, f"$share/bench-one/{FILTER}")
        make_session("bench-two-0", port, f"$share/bench-two/{FILTER}")
        make_session("bench-two-1", port, f"$share/bench-two/{FILTER}")
        print(
            f"loading {count} messages ({traffic.rows} rows) into 5 offline sessions ...",
            flush=True,
        )
        load_s = asyncio.run(publish_all(port, traffic.messages))
        print(f"  published in {load_s:.1f} s ({count / load_s:,.0f} msg/s)", flush=True)
        results = {
            "1 mosquitto_sub -q 1 -c": _timed(
                broker_pid, lambda: drain_mosquitto_sub(port, FILTER, count), None
            ),
            "2 paho, manual acks": _timed(broker_pid, lambda: drain_paho(port, count), "paho"),
            "2b MqttSession, manual acks": _timed(
                broker_pid,
                lambda: asyncio.run(drain_batches(port, count, SESSION_ID, FILTER)),
                "MqttSession",
            ),
            "3 rasd ingest x1": drain_ingest(
                one, "bench-one", ["bench-one-0"], traffic.rows, log_dir, broker_pid
            ),
            "4 rasd ingest x2": drain_ingest(
                two,
                "bench-two",
                ["bench-two-0", "bench-two-1"],
                traffic.rows,
                log_dir,
                broker_pid,
            ),
        }
        for settings in (one, two):
            drop_schema(settings)
    rate = {name: count / drain.seconds for name, drain in results.items()}
    print(f"\n{count} messages, {traffic.rows} rows, {os.cpu_count()} cores")
    for name, drain in results.items():
        print(f"  {name:<28} {drain.seconds:7.2f} s  {rate[name]:>9,.0f} msg/s")
    print("CPU seconds during each drain (share of one core over the drain's wall time):")
    for name, drain in results.items():
        used = ", ".join(
            f"{who} {cpu:.2f} ({cpu / drain.seconds:.0%})" for who, cpu in drain.cpu.items()
        )
        print(f"  {name:<28} {used}")
    r1, r2, r2b, r3, r4 = (rate[k] for k in results)
    print(
        f"  ratio 3/1 = {r3 / r1:.2f}   3/2 = {r3 / r2:.2f}   3/2b = {r3 / r2b:.2f}"
        f"   4/3 = {r4 / r3:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
