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
import os
import subprocess
import sys
import tempfile
import time
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
    private_broker,
    publish_all,
)
from bench.harness.services import stop_all
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
            *("py-spy", "record", "--format", "raw", "-r", "250", "--nonblocking"),
            *("-o", str(out), "--pid", str(pid)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def drain_ingest(
    settings: Settings, group: str, client_ids: list[str], rows: int, log_dir: Path
) -> float:
    """Run ingest processes until every row is committed; seconds from first receive to last."""
    procs: list[IngestProcess] = []
    profilers: list[subprocess.Popen[bytes]] = []
    profile_dir = os.environ.get("RASD_BENCH_PROFILE")
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
            proc = IngestProcess(own, log_dir / f"{client_id}.log")
            procs.append(proc)
            # Not waiting for /healthz: the processes start together, as in production.
            proc.start(wait_healthy=False)
            if profile_dir:
                assert proc.proc is not None
                profilers.append(_profile(proc.proc.pid, Path(profile_dir, f"{client_id}.txt")))
        deadline = time.monotonic() + 900
        while True:
            stored, first = _rows(settings)
            if stored >= rows:
                finished = datetime.now(UTC)
                break
            if time.monotonic() > deadline or any(
                p.proc is not None and p.proc.poll() is not None for p in procs
            ):
                raise BenchmarkError(f"ingest stored {stored} of {rows} rows; logs in {log_dir}")
            time.sleep(0.02)
        assert first is not None
        return (finished - first).total_seconds()
    finally:
        stop_all(procs)
        for profiler in profilers:
            profiler.wait(60)


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
    with private_broker() as port:
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
            "1 mosquitto_sub -q 1 -c": drain_mosquitto_sub(port, FILTER, count),
            "2 paho, manual acks": drain_paho(port, count),
            "2b MqttSession, manual acks": asyncio.run(
                drain_batches(port, count, SESSION_ID, FILTER)
            ),
            "3 rasd ingest x1": drain_ingest(
                one, "bench-one", ["bench-one-0"], traffic.rows, log_dir
            ),
            "4 rasd ingest x2": drain_ingest(
                two, "bench-two", ["bench-two-0", "bench-two-1"], traffic.rows, log_dir
            ),
        }
        for settings in (one, two):
            drop_schema(settings)
    rate = {name: count / seconds for name, seconds in results.items()}
    print(f"\n{count} messages, {traffic.rows} rows, {os.cpu_count()} cores")
    for name, seconds in results.items():
        print(f"  {name:<28} {seconds:7.2f} s  {rate[name]:>9,.0f} msg/s")
    r1, r2, r2b, r3, r4 = (rate[k] for k in results)
    print(
        f"  ratio 3/1 = {r3 / r1:.2f}   3/2 = {r3 / r2:.2f}   3/2b = {r3 / r2b:.2f}"
        f"   4/3 = {r4 / r3:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
