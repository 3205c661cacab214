"""Benchmarks of the API (figures in docs/api.md): ``python -m bench.api live|queries|energy``.

* ``live``: publish-to-WebSocket latency. A ``python -m api`` process, N WebSocket clients, and
  a publisher sending position reports at city load (250 buses every 10 s, 120 trucks every
  30 s, about 29 messages/s) or a multiple of it. Latency is the client's receive time minus
  the report's ``ts`` (set at publish time): broker, decode, board, frame wait, send, parse.
* ``queries``: latest positions of every vehicle and one bus's 24 h track, after loading a day
  of city traffic into the database.
* ``energy``: a district's daily energy for a year, after loading a year of hourly meter
  readings (run it against TimescaleDB for the figure the issue asks for).

Each run uses its own schema and topic prefix (dropped afterwards unless ``--keep``), on the
database and broker of the usual ``RASD_*`` settings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import websockets

from api.auth import Role, new_token, token_digest
from bench.harness.mqtt import settings_publisher
from bench.seed_data import (
    EnergyRow,
    PositionRow,
    analyze,
    copy_light_energy,
    refresh_energy_aggregate,
    stage_positions,
)
from telemetry.db import conninfo
from telemetry.migrate import migrate
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.backend import Backend, recorded_backend
from telemetry.storage.energy import group_energy, refresh_energy_rollups
from telemetry.storage.maintenance import ensure_partitions
from telemetry.storage.positions import latest_positions, track
from telemetry.storage.tokens import insert_token
from tests.support.api_process import ApiProcess
from tests.support.api_server import register_devices
from tests.support.database import drop_schema

CITY_BUSES, CITY_TRUCKS = 250, 120
BUS_EVERY_S, TRUCK_EVERY_S = 10.0, 30.0


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> str:
    """p50 / p99 / max in ms."""
    return (
        f"p50 {percentile(values, 0.5):7.1f} ms  p99 {percentile(values, 0.99):7.1f} ms  "
        f"max {max(values, default=float('nan')):7.1f} ms  (n={len(values)})"
    )


@contextmanager
def bench_schema(base: Settings, keep: bool) -> Iterator[Settings]:
    """A fresh migrated schema and topic prefix for one run."""
    tag = uuid.uuid4().hex[:8]
    settings = base.model_copy(
        update={"database_schema": f"bench_{tag}", "topic_prefix": f"bench/{tag}/v1"}
    )
    migrate(settings)
    try:
        yield settings
    finally:
        if not keep:
            drop_schema(settings)


def fleet_devices(scale: float) -> list[DeviceRecord]:
    """The city's buses and trucks times ``scale``."""
    buses = [
        DeviceRecord(device_id=f"B-{i:05d}", fleet="bus", route=str(i % 25 + 1))
        for i in range(round(CITY_BUSES * scale))
    ]
    trucks = [
        DeviceRecord(device_id=f"T-{i:05d}", fleet="truck", district="menara")
        for i in range(round(CITY_TRUCKS * scale))
    ]
    return buses + trucks


def operator_token(settings: Settings) -> str:
    """A fresh operator token in the bench schema."""
    token = new_token()

    async def store() -> None:
        async with await psycopg.AsyncConnection.connect(conninfo(settings), autocommit=True) as c:
            await insert_token(c, token_digest(token), Role.OPERATOR.value, [], "bench")

    asyncio.run(store())
    return token


# -- live ----------------------------------------------------------------------------------------


def _period(device: DeviceRecord) -> float:
    return BUS_EVERY_S if device.fleet == "bus" else TRUCK_EVERY_S


@dataclass
class _Due:
    at: float
    period: float
    device: DeviceRecord


class Publisher(threading.Thread):
    """Publishes every vehicle at its period (QoS 0), with ``ts`` = the publish time."""

    def __init__(self, settings: Settings, devices: list[DeviceRecord]) -> None:
        super().__init__(daemon=True, name="bench-publisher")
        self.settings = settings
        self.devices = devices
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        with settings_publisher(self.settings) as client:
            self._publish(client)

    def _publish(self, client: mqtt.Client) -> None:
        start = time.monotonic()
        # Spread first reports over each vehicle's period, as real trackers are.
        schedule = [
            _Due(start + _period(d) * (i / len(self.devices)), _period(d), d)
            for i, d in enumerate(self.devices)
        ]
        prefix = self.settings.topic_prefix
        while not self.stop.is_set():
            now = time.monotonic()
            due = [s for s in schedule if s.at <= now]
            for item in due:
                device = item.device
                ts = int(time.time() * 1000)
                payload = json.dumps(
                    {
                        "ts": ts,
                        "lat": 31.6 + (ts % 1000) * 1e-5,
                        "lon": -8.0,
                        "speed_kmh": 20.0,
                        "heading_deg": 90.0,
                    }
                )
                client.publish(
                    f"{prefix}/{device.fleet}/{device.device_id}/position", payload, qos=0
                )
                item.at += item.period
                self.sent += 1
            wait = min(s.at for s in schedule) - time.monotonic()
            if wait > 0:
                self.stop.wait(min(wait, 0.05))


@dataclass
class Probe:
    """Latencies seen by the clients that parse frames."""

    latencies: list[float] = field(default_factory=list)
    frames: int = 0
    measuring: bool = False


async def client(
    url: str, probe: Probe | None, stop: asyncio.Event, ready: Callable[[], None]
) -> None:
    """One WebSocket client; probes parse frames and record latencies, others just read."""
    async with websockets.connect(url, open_timeout=120, max_size=2**26, ping_interval=None) as ws:
        ready()
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 1.0)
            except TimeoutError:
                continue
            if probe is None:
                continue
            received = time.time() * 1000
            frame = json.loads(raw)
            if frame.get("type") != "positions" or not probe.measuring:
                continue
            probe.frames += 1
            for vehicle in frame["vehicles"]:
                sent = datetime.fromisoformat(vehicle["ts"].replace("Z", "+00:00"))
                probe.latencies.append(received - sent.timestamp() * 1000)


def start_api(settings: Settings, port: int, log: Path) -> ApiProcess:
    """``python -m api`` for the bench schema on ``port``, waiting for /readyz."""
    api = ApiProcess(
        settings,
        log,
        port=port,
        RASD_API_WS_MAX_CLIENTS="20000",
        RASD_LOG_LEVEL="WARNING",
    )
    try:
        return api.start()
    except BaseException:
        api.close()
        raise


async def live_round(url: str, clients: int, probes: int, warmup_s: float, seconds: float) -> Probe:
    """Connect clients, measure for ``seconds`` after ``warmup_s``, disconnect."""
    probe = Probe()
    stop = asyncio.Event()
    connected = 0

    def ready() -> None:
        nonlocal connected
        connected += 1

    tasks = []
    for i in range(clients):
        tasks.append(asyncio.create_task(client(url, probe if i < probes else None, stop, ready)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # do not stampede the accept queue
    while connected < clients:
        await asyncio.sleep(0.1)
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise SystemExit(f"client failed: {failed[0].exception()!r}")
    await asyncio.sleep(warmup_s)
    probe.measuring = True
    await asyncio.sleep(seconds)
    probe.measuring = False
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return probe


def run_live(args: argparse.Namespace, base: Settings) -> None:
    """Publish-to-WebSocket latency for each load and client count."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asked = f"{args.interval_ms} ms" if args.interval_ms else "the server's default"
    print(
        f"live: frame interval {asked}, {args.seconds:.0f} s per round, "
        f"{args.probes} parsing clients, {os.cpu_count()} CPUs shared by api, broker, clients"
    )
    for scale in args.loads:
        with bench_schema(base, args.keep) as settings:
            devices = fleet_devices(scale)
            register_devices(settings, *devices)
            token = operator_token(settings)
            port = args.port
            proc = start_api(settings, port, Path(args.log))
            publisher = Publisher(settings, devices)
            publisher.start()
            try:
                rate = sum(
                    1 / (BUS_EVERY_S if d.fleet == "bus" else TRUCK_EVERY_S) for d in devices
                )
                for count in args.clients:
                    url = f"ws://127.0.0.1:{port}/ws/positions?token={token}"
                    if args.interval_ms:
                        url += f"&interval_ms={args.interval_ms}"
                    probe = asyncio.run(
                        live_round(url, count, min(args.probes, count), args.warmup, args.seconds)
                    )
                    print(
                        f"  load x{scale:g} ({len(devices)} vehicles, {rate:.0f} msg/s), "
                        f"{count:5d} clients: {summary(probe.latencies)}"
                    )
            finally:
                publisher.stop.set()
                publisher.join(10)
                proc.stop(30)


# -- queries -------------------------------------------------------------------------------------


def load_positions(settings: Settings, devices: list[DeviceRecord], hours: float) -> int:
    """A day of fixes (buses every 10 s, trucks every 30 s) written through COPY + the trigger."""
    end = datetime.now(UTC)
    start = end - timedelta(hours=hours)
    rows = 0
    with psycopg.connect(conninfo(settings), autocommit=True) as conn:
        if _plain(conn):
            ensure_partitions(
                conn, "vehicle_positions", start - timedelta(days=1), end + timedelta(days=1)
            )
        chunk = timedelta(hours=1)
        t0 = start
        while t0 < end:
            t1 = min(end, t0 + chunk)
            rows += stage_positions(conn, _fixes(devices, t0, t1))
            t0 = t1
    return rows


def _fixes(devices: list[DeviceRecord], t0: datetime, t1: datetime) -> Iterator[PositionRow]:
    for d in devices:
        period = BUS_EVERY_S if d.fleet == "bus" else TRUCK_EVERY_S
        t = t0
        while t < t1:
            yield (d.device_id, t, t, 31.6, -8.0, 20.0, 90.0)
            t += timedelta(seconds=period)


def _plain(conn: psycopg.Connection) -> bool:
    return recorded_backend(conn) is Backend.PLAIN


def run_queries(args: argparse.Namespace, base: Settings) -> None:
    """Latest positions and a 24 h track, on the storage functions and over HTTP."""
    with bench_schema(base, args.keep) as settings:
        devices = fleet_devices(args.scale)
        register_devices(settings, *devices)
        started = time.perf_counter()
        rows = load_positions(settings, devices, args.hours)
        print(
            f"queries: loaded {rows} fixes of {len(devices)} vehicles over {args.hours:g} h "
            f"in {time.perf_counter() - started:.0f} s"
        )

        # One connection reused, as the pool does; the connect is not part of a query.
        async def on_one(body: Callable[[psycopg.AsyncConnection], Awaitable[Any]]) -> list[float]:
            async with await psycopg.AsyncConnection.connect(
                conninfo(settings), autocommit=True, prepare_threshold=None
            ) as conn:
                await body(conn)
                out = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    await body(conn)
                    out.append((time.perf_counter() - t) * 1000)
                return out

        end = datetime.now(UTC)
        latest_ms = asyncio.run(on_one(lambda c: latest_positions(c)))
        track_ms = asyncio.run(
            on_one(lambda c: track(c, "B-00000", end - timedelta(hours=24), end, 100_000))
        )
        print(f"  latest position of {len(devices)} vehicles (SQL + rows): {summary(latest_ms)}")
        print(
            f"  one bus's 24 h track ({int(24 * 3600 / BUS_EVERY_S)} fixes):       "
            f"{summary(track_ms)}"
        )
        proc = start_api(settings, args.port, Path(args.log))
        try:
            token = operator_token(settings)
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(
                base_url=f"http://127.0.0.1:{args.port}", headers=headers, timeout=30
            ) as http:

                def get(path: str, **params: str) -> list[float]:
                    http.get(path, params=params).raise_for_status()
                    out = []
                    for _ in range(args.repeat):
                        t = time.perf_counter()
                        http.get(path, params=params).raise_for_status()
                        out.append((time.perf_counter() - t) * 1000)
                    return out

                print(
                    f"  GET /api/v1/vehicles/positions:                "
                    f"{summary(get('/api/v1/vehicles/positions'))}"
                )
                day = {"start": (end - timedelta(hours=24)).isoformat(), "end": end.isoformat()}
                print(
                    f"  GET /api/v1/vehicles/B-00000/track (24 h):      "
                    f"{summary(get('/api/v1/vehicles/B-00000/track', **day))}"
                )
        finally:
            proc.stop(30)


# -- energy --------------------------------------------------------------------------------------


def _readings(
    lights: list[DeviceRecord],
    history: int,
    days: int,
    start: datetime,
    hour: datetime,
    now: datetime,
) -> Iterator[EnergyRow]:
    """A year of hourly readings for a sample of the district's lights (the rollup's size does
    not depend on how many lights feed it), then 4 readings an hour for every light over the
    last 3 hours and, whatever the minute, 4 so far in the current one: the end-of-hour worst
    case of what a read aggregates after the watermarks."""
    recent = hour - timedelta(hours=3)
    this_hour = [hour + (now - hour) * (k + 1) / 5 for k in range(4)]
    for light in lights[:history]:
        t, meter = start, 0.0
        while t < recent:
            meter += 60.0
            yield (light.device_id, t, t, meter, 60.0, True)
            t += timedelta(hours=1)
    quarters = [recent + timedelta(minutes=5 + 15 * q) for q in range(12)]
    for i, light in enumerate(lights):
        meter = 60.0 * 24 * days if i < history else 0.0
        for t in quarters + this_hour:
            meter += 15.0
            yield (light.device_id, t, t, meter, 60.0, True)


def run_energy(args: argparse.Namespace, base: Settings) -> None:
    """A district's daily energy for a year, in the steady state the jobs keep: continuous
    aggregate materialised up to an hour ago, rollups up to the current hour, raw after."""
    with bench_schema(base, args.keep) as settings:
        now = datetime.now(UTC)
        hour = now.replace(minute=0, second=0, microsecond=0)
        start = hour - timedelta(days=args.days)
        lights = [
            DeviceRecord(
                device_id=f"L-{i:06d}",
                fleet="light",
                district="menara",
                circuit=f"C-{i // 40:04d}",
            )
            for i in range(args.district_lights)
        ]
        register_devices(settings, *lights)
        with psycopg.connect(conninfo(settings), autocommit=True) as conn:
            backend = "plain" if _plain(conn) else "timescale"
            if backend == "plain":
                ensure_partitions(
                    conn, "light_energy", start - timedelta(days=8), now + timedelta(days=1)
                )
            loaded = time.perf_counter()
            rows = copy_light_energy(
                conn, _readings(lights, args.history_lights, args.days, start, hour, now)
            )
            # Planner statistics, as autovacuum would have gathered them in production.
            analyze(conn, ("devices", "light_energy"))
            print(
                f"energy ({backend}): loaded {rows} readings in "
                f"{time.perf_counter() - loaded:.0f} s; {args.history_lights} lights with a "
                f"{args.days}-day history, {len(lights)} lights in the district"
            )
            if backend == "timescale":
                t0 = time.perf_counter()
                refresh_energy_aggregate(conn, hour - timedelta(hours=1))
                print(
                    f"  continuous aggregate refreshed to 1 h ago in "
                    f"{time.perf_counter() - t0:.0f} s (the policy's end_offset)"
                )

        async def materialise(until: datetime) -> None:
            # The refresh starts at least(from, watermark): asking for the hours up to
            # ``until`` makes each call continue from the watermark, max_span at a time, as
            # the job does.
            async with await psycopg.AsyncConnection.connect(
                conninfo(settings), autocommit=True
            ) as conn:
                mark = await refresh_energy_rollups(conn, until, until)
                while mark is None or mark < until:
                    moved = await refresh_energy_rollups(conn, until, until)
                    if moved is None or (mark is not None and moved <= mark):
                        raise SystemExit(f"rollup watermark stuck at {mark}")
                    mark = moved

        async def run(realtime: bool) -> tuple[list[float], float]:
            async with await psycopg.AsyncConnection.connect(
                conninfo(settings), autocommit=True, prepare_threshold=None
            ) as conn:
                out, total = [], 0.0
                for i in range(args.repeat + 1):
                    t = time.perf_counter()
                    periods = await group_energy(
                        conn,
                        "district",
                        "menara",
                        "day",
                        start,
                        hour + timedelta(days=1),
                        "Africa/Casablanca",
                        realtime=realtime,
                    )
                    if i:
                        out.append((time.perf_counter() - t) * 1000)
                    assert not realtime or len(periods) >= args.days
                    total = sum(p.energy_wh for p in periods)
                return out, total

        days = args.days
        if args.no_rollup:
            on_read, _ = asyncio.run(run(True))
            print(f"  district daily energy for {days} days, all on read: {summary(on_read)}")
            return
        t0 = time.perf_counter()
        asyncio.run(materialise(hour - timedelta(hours=1)))
        with psycopg.connect(conninfo(settings), autocommit=True) as conn:
            analyze(conn, ("energy_hourly_rollup", "energy_rollup_lights"))
        print(f"  rollups materialised up to an hour ago in {time.perf_counter() - t0:.0f} s")
        behind, total_behind = asyncio.run(run(True))
        asyncio.run(materialise(hour))
        steady, total = asyncio.run(run(True))
        materialised, _ = asyncio.run(run(False))
        if abs(total - total_behind) > 1e-6 * max(1.0, total):
            raise SystemExit(f"totals differ: {total} Wh vs {total_behind} Wh an hour behind")
        print(f"  district daily energy for {days} days up to now ({total / 1000:.0f} kWh):")
        print(f"    rollups to the current hour (steady state): {summary(steady)}")
        print(f"    rollups an hour behind (2 live hours):      {summary(behind)}")
        print(f"    materialised hours only:                    {summary(materialised)}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench schema")
    parser.add_argument("--port", type=int, default=18080, help="port of the benched API")
    parser.add_argument("--log", default="/tmp/rasd-bench-api.log", help="API log file")
    parser.add_argument("--repeat", type=int, default=50, help="query repetitions")
    sub = parser.add_subparsers(dest="command", required=True)
    live = sub.add_parser("live", help="publish-to-WebSocket latency")
    live.add_argument(
        "--loads",
        type=lambda s: [float(x) for x in s.split(",")],
        default=[1.0, 10.0],
        help="multiples of city load (default 1,10)",
    )
    live.add_argument(
        "--clients",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 100, 1000],
        help="client counts (default 1,100,1000)",
    )
    live.add_argument("--probes", type=int, default=20, help="clients that parse frames")
    live.add_argument(
        "--interval-ms",
        type=int,
        default=None,
        help="frame interval the clients ask for (default: the server's, RASD_API_WS_FRAME_MS)",
    )
    live.add_argument("--seconds", type=float, default=20.0, help="measured seconds per round")
    live.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    queries = sub.add_parser("queries", help="latest positions and a 24 h track")
    queries.add_argument(
        "--scale",
        type=float,
        default=2000 / (CITY_BUSES + CITY_TRUCKS),
        help="multiple of the city's fleet (default: 2,000 vehicles)",
    )
    queries.add_argument("--hours", type=float, default=24.0)
    energy = sub.add_parser("energy", help="a district's daily energy for a year")
    energy.add_argument("--days", type=int, default=365)
    energy.add_argument("--district-lights", type=int, default=26_000)
    energy.add_argument("--history-lights", type=int, default=200)
    energy.add_argument("--no-rollup", action="store_true", help="measure on-read only")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = _parser().parse_args(argv)
    base = Settings()
    {"live": run_live, "queries": run_queries, "energy": run_energy}[args.command](args, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
