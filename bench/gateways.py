"""Gateway benchmark: ``python -m bench.gateways [--trackers N] [--osmand-rps R] [--seconds S]``.

Runs ``python -m ingest.gateways`` as a child process on the local broker and database (a
schema and topic prefix of its own), then from two load processes, on asyncio: ``--trackers``
Teltonika connections each sending a Codec 8E packet of 4 records every ``--interval`` s (random
phase), and OsmAnd GETs at ``--osmand-rps``. A ``mosquitto_sub`` takes the published messages,
as ingest would. Prints records/s acknowledged (so through to PUBACK), device-ack latency
p50/p99 per protocol, the gateway's memory per connection and CPU; and, as the baseline, the
PUBACK latency of the same broker for a plain MqttSession publisher measured in this process
right before, so the gateway's figures read as ratios on this noisy shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness.services import cpu_seconds, rss_kib
from telemetry.migrate import migrate
from telemetry.mqtt_session.client import MqttSession
from telemetry.protocols.teltonika import (
    IO_IGNITION,
    IO_MOVEMENT,
    AvlRecord,
    encode_avl_packet,
    encode_imei,
)
from telemetry.registry import DeviceRecord
from tests.support.api_server import register_devices
from tests.support.database import drop_schema
from tests.support.env import unique_settings
from tests.support.gateway_process import GatewayProcess
from tests.support.gateways import gateway_overrides


@dataclass(kw_only=True)
class Latencies:
    """Seconds from send to acknowledgement, per protocol."""

    samples: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    def add(self, protocol: str, seconds: float) -> None:
        """One acknowledged message."""
        self.samples.setdefault(protocol, []).append(seconds)

    def fail(self, protocol: str) -> None:
        """One message not acknowledged."""
        self.failures[protocol] = self.failures.get(protocol, 0) + 1


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def imei_of(i: int) -> str:
    """A 15-digit IMEI for tracker ``i``."""
    return f"35{i:013d}"


def records(i: int, n: int) -> list[AvlRecord]:
    """``n`` fresh records of tracker ``i``."""
    now = time.time_ns() // 1_000_000
    return [
        AvlRecord(
            timestamp_ms=now - 1000 * (n - k),
            priority=0,
            longitude_e7=-80000000 + i,
            latitude_e7=316300000 + k,
            altitude_m=460,
            angle_deg=90,
            satellites=9,
            speed_kmh=25,
            event_io_id=0,
            io={IO_IGNITION: 1, IO_MOVEMENT: 1},
        )
        for k in range(n)
    ]


async def tracker(
    i: int, port: int, interval: float, until: float, stats: Latencies, opened: list[int]
) -> None:
    """One tracker: handshake, then a 4-record packet every ``interval`` s until ``until``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(encode_imei(imei_of(i)))
        if await reader.readexactly(1) != b"\x01":
            raise RuntimeError(f"IMEI {imei_of(i)} refused")
        opened[0] += 1
        await asyncio.sleep(random.uniform(0, interval))
        while time.monotonic() < until:
            started = time.perf_counter()
            writer.write(encode_avl_packet(records(i, 4)))
            try:
                async with asyncio.timeout(30):
                    ack = await reader.readexactly(4)
                stats.add("teltonika", time.perf_counter() - started)
                assert int.from_bytes(ack, "big") == 4
            except TimeoutError:
                stats.fail("teltonika")
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - started)))
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def osmand(port: int, rps: float, until: float, stats: Latencies, devices: int) -> None:
    """OsmAnd GETs at ``rps`` requests a second over keep-alive connections, as phones send."""
    connections = max(1, min(100, int(rps // 10)))
    async with asyncio.TaskGroup() as tasks:
        for c in range(connections):
            tasks.create_task(_osmand_connection(port, rps / connections, until, stats, c, devices))


async def _osmand_connection(
    port: int, rps: float, until: float, stats: Latencies, index: int, devices: int
) -> None:
    # A bare HTTP/1.1 client: an HTTP library would spend more CPU than the gateway measured.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.sleep(random.uniform(0, 1 / rps))
    n = 0
    start = time.monotonic()
    try:
        while time.monotonic() < until:
            device = (index + n * 100) % devices
            query = (
                f"id=phone-{device}&lat=31.63&lon={-8.0 + device * 1e-5:.6f}"
                f"&timestamp={time.time_ns() // 1_000_000}&speed=10"
            )
            started = time.perf_counter()
            writer.write(f"GET /?{query} HTTP/1.1\r\nHost: gw\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if head.startswith(b"HTTP/1.1 200"):
                stats.add("osmand", time.perf_counter() - started)
            else:
                stats.fail("osmand")
            n += 1
            await asyncio.sleep(max(0.0, start + n / rps - time.monotonic()))
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def broker_baseline(url: str, prefix: str, count: int) -> list[float]:
    """PUBACK latencies of a plain session publishing ``count`` messages, 50 at a time."""
    settings = unique_settings(mqtt_url=url, topic_prefix=prefix)
    latencies: list[float] = []
    async with MqttSession(settings, client_id=f"bench-baseline-{os.getpid()}") as session:
        await session.wait_connected()
        payload = b'{"ts":0,"lat":31.63,"lon":-8.0}' * 4
        for _ in range(count // 50):
            started = time.perf_counter()
            futures = [
                session.publish_nowait(f"{prefix}/truck/T-x/position", payload) for _ in range(50)
            ]
            for future in futures:
                await future
                latencies.append(time.perf_counter() - started)
    return latencies


@contextlib.contextmanager
def subscriber(prefix: str) -> Iterator[None]:
    """``mosquitto_sub`` on the prefix, as ingest: the broker has someone to deliver to."""
    proc = subprocess.Popen(
        ["mosquitto_sub", "-q", "1", "-t", f"{prefix}/#"], stdout=subprocess.DEVNULL
    )
    try:
        time.sleep(0.5)
        yield
    finally:
        proc.terminate()
        proc.wait()


async def load(args: argparse.Namespace) -> None:
    """One load-generator process (``--role``): drive the gateway, print the latencies as JSON."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stats = Latencies()
    opened = [0]
    until = time.monotonic() + args.seconds
    async with asyncio.TaskGroup() as tasks:
        if args.role == "teltonika":
            for i in range(args.trackers):
                tasks.create_task(tracker(i, args.port, args.interval, until, stats, opened))
                if i % 100 == 99:
                    await asyncio.sleep(0.05)  # trackers do not all dial at once
        else:
            tasks.create_task(osmand(args.port, args.osmand_rps, until, stats, args.phones))
    print(json.dumps({"samples": stats.samples, "failures": stats.failures, "opened": opened[0]}))


def _generator(args: argparse.Namespace, role: str, port: int) -> subprocess.Popen[bytes]:
    # Each load in a process of its own: one Python process cannot drive both and measure.
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.gateways",
            "--role",
            role,
            "--port",
            str(port),
            "--trackers",
            str(args.trackers),
            "--interval",
            str(args.interval),
            "--osmand-rps",
            str(args.osmand_rps),
            "--phones",
            str(args.phones),
            "--seconds",
            str(args.seconds),
        ],
        stdout=subprocess.PIPE,
    )


async def run(args: argparse.Namespace) -> None:
    """The whole benchmark."""
    settings = unique_settings(**gateway_overrides(log_level="WARNING"))
    migrate(settings)
    devices = [
        DeviceRecord(device_id=f"T-{i:05d}", fleet="truck", external_id=imei_of(i))
        for i in range(args.trackers)
    ] + [
        DeviceRecord(device_id=f"P-{i:05d}", fleet="bus", external_id=f"phone-{i}")
        for i in range(args.phones)
    ]
    register_devices(settings, *devices)
    log = Path(tempfile.mkdtemp(prefix="rasd-bench-gw-")) / "gateways.log"
    gateways = GatewayProcess(settings, log)
    stats = Latencies()
    try:
        with subscriber(settings.topic_prefix):
            baseline = await broker_baseline(settings.mqtt_url, settings.topic_prefix, 5000)
            with gateways:
                assert gateways.proc is not None
                pid = gateways.proc.pid
                rss_idle = rss_kib(pid)
                cpu_before = cpu_seconds(pid)
                loads = [
                    _generator(args, "teltonika", settings.gateway_teltonika_port),
                    _generator(args, "osmand", settings.gateway_osmand_port),
                ]
                await asyncio.sleep(args.seconds * 0.75)
                rss_busy = rss_kib(pid)
                outputs = [p.communicate(timeout=args.seconds + 120)[0] for p in loads]
                cpu = cpu_seconds(pid) - cpu_before
    finally:
        drop_schema(settings)
    opened = 0
    for output in outputs:
        result = json.loads(output)
        opened += result["opened"]
        for protocol, values in result["samples"].items():
            stats.samples.setdefault(protocol, []).extend(values)
        for protocol, failed in result["failures"].items():
            stats.failures[protocol] = stats.failures.get(protocol, 0) + failed
    report(args, stats, baseline, opened, rss_idle, rss_busy, cpu)


def report(
    args: argparse.Namespace,
    stats: Latencies,
    baseline: list[float],
    opened: int,
    rss_idle: int,
    rss_busy: int,
    cpu: float,
) -> None:
    """Print the figures."""
    base_p50 = statistics.median(baseline)
    print(f"trackers connected: {opened} of {args.trackers}; duration {args.seconds:.0f} s")
    print(
        f"baseline: plain MQTT publish -> PUBACK (50 in flight), p50 {base_p50 * 1000:.2f} ms, "
        f"p99 {percentile(baseline, 0.99) * 1000:.2f} ms"
    )
    offered = {
        "teltonika": args.trackers * 4 / args.interval,
        "osmand": args.osmand_rps,
    }
    for protocol, per_message in (("teltonika", 4), ("osmand", 1)):
        samples = stats.samples.get(protocol, [])
        rate = len(samples) * per_message / args.seconds
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        print(
            f"{protocol}: {rate:,.0f} records/s acknowledged (offered {offered[protocol]:,.0f}), "
            f"not acked {stats.failures.get(protocol, 0)}, ack p50 {p50 * 1000:.1f} ms "
            f"(x{p50 / base_p50:.1f} baseline), p99 {p99 * 1000:.1f} ms (x{p99 / base_p50:.1f})"
        )
    per_conn = (rss_busy - rss_idle) / max(1, opened)
    print(
        f"gateway memory: {rss_idle / 1024:.0f} MiB idle, {rss_busy / 1024:.0f} MiB busy, "
        f"{per_conn:.1f} KiB per tracker connection; CPU {cpu:.1f} s in {args.seconds:.0f} s "
        f"({100 * cpu / args.seconds:.0f} % of a core)"
    )


def main() -> int:
    """Parse arguments and run."""
    parser = argparse.ArgumentParser(prog="python -m bench.gateways", description=__doc__)
    parser.add_argument("--trackers", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=10.0, help="s between packets")
    parser.add_argument("--osmand-rps", type=float, default=500.0)
    parser.add_argument("--phones", type=int, default=500, help="OsmAnd devices")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--role", choices=("teltonika", "osmand"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    asyncio.run(load(args) if args.role else run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
