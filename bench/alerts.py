"""Alerts benchmark: rule throughput per worker, and fault-to-alert latency.

    python -m bench.alerts throughput [--minutes 15]
    python -m bench.alerts latency [--faults 200 --rate 110 --seconds 60]
    python -m bench.alerts chain [--faults 200 --rate 110 --seconds 60]

``throughput`` feeds a synthetic city (72,000 lights reporting every 15 min, 250 buses every
10 s, 120 trucks every 30 s, a few faults) through one worker's decoder and engine, in
process, and reports readings per second (decode + rules, and rules alone).

``latency`` runs ``python -m alerts`` as a child process on a throwaway schema of the
configured database (RASD_* settings) and broker, publishes city background traffic at
``--rate`` messages/s plus lampFailure faults, and times each fault from just before its
publish to the reception of its ``open`` NOTIFY (LISTEN on the alerts channel).

``chain`` runs the whole chain as child processes on a throwaway schema and topic prefix:
Mosquitto -> ``python -m ingest`` + ``python -m alerts`` -> ``python -m api``; it creates an
operator token with ``python -m api tokens create``, connects to ``/ws/alerts`` with the
``websockets`` client, and times each fault to its ``open`` NOTIFY and to its ``open`` frame
on the WebSocket (what an operator's map receives). Ports ``--port`` to ``--port + 2``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from websockets.sync.client import connect as ws_connect

from alerts.catalog import Catalog
from alerts.config import load_thresholds
from alerts.engine import Engine
from alerts.observations import Observation, from_decoded
from bench.harness.mqtt import settings_publisher
from bench.harness.services import cli_token, stop_all
from telemetry.alert_events import AlertEventType, parse_event
from telemetry.db import connect
from telemetry.decoding import Limits, MessageDecoder
from telemetry.gc_tuning import tune_gc
from telemetry.migrate import migrate
from telemetry.reference_data import Asset
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.alerts import listen
from telemetry.topics import Channel, Fleet, topic_name
from tests.support.alerts_process import AlertsProcess
from tests.support.api_process import ApiProcess
from tests.support.api_server import register_devices
from tests.support.database import drop_schema
from tests.support.ingest_process import IngestProcess
from tests.support.waiting import wait_until

DISTRICTS = ("menara", "gueliz", "annakhil", "medina", "sidi_youssef_ben_ali")
CENTRE = (31.62583, -7.98944)


@dataclass(frozen=True, slots=True)
class City:
    """The synthetic fleet: device ids and their registry rows."""

    lights: list[str]
    buses: list[str]
    trucks: list[str]

    def records(self) -> list[DeviceRecord]:
        """Registry rows (lights in circuits of 40, spread over the five districts)."""
        rows = [
            DeviceRecord(
                device_id=d,
                fleet=Fleet.LIGHT,
                district=DISTRICTS[i % len(DISTRICTS)],
                circuit=f"C-{i // 40:04d}",
                rated_w=60.0,
                lat=CENTRE[0] + (i % 300) * 1e-4,
                lon=CENTRE[1] + (i // 300) * 1e-4,
            )
            for i, d in enumerate(self.lights)
        ]
        rows += [DeviceRecord(device_id=b, fleet=Fleet.BUS, route="A") for b in self.buses]
        rows += [
            DeviceRecord(device_id=t, fleet=Fleet.TRUCK, lat=31.668, lon=-8.040)
            for t in self.trucks
        ]
        return rows

    def assets(self) -> list[Asset]:
        """The same rows as the engine's catalog sees them."""
        return [
            Asset(
                device_id=r.device_id,
                fleet=r.fleet,
                route=r.route,
                district=r.district,
                circuit=r.circuit,
                rated_w=r.rated_w,
                lat=r.lat,
                lon=r.lon,
            )
            for r in self.records()
        ]


def city(lights: int, buses: int, trucks: int) -> City:
    """A city of the given size."""
    return City(
        [f"L-{i:05d}" for i in range(lights)],
        [f"B-{i:03d}" for i in range(buses)],
        [f"T-{i:03d}" for i in range(trucks)],
    )


def traffic(
    c: City, prefix: str, start: float, seconds: float
) -> Iterator[tuple[float, str, bytes]]:
    """(send time, topic, payload) of ``seconds`` of city traffic, in time order."""
    events: list[tuple[float, str, bytes]] = []
    for i, d in enumerate(c.lights):
        t = start + (i * 900.0 / max(1, len(c.lights))) % 900.0
        while t < start + seconds:
            body = {
                "ts": int(t * 1000),
                "energy_wh": 1000.0 + t / 3600 * 60,
                "power_w": 60.0,
                "lamp_on": True,
                "dim_pct": 100,
            }
            events.append(
                (t, topic_name(prefix, Fleet.LIGHT, d, Channel.ENERGY), json.dumps(body).encode())
            )
            if i % 997 == 0 and t == start + (i * 900.0 / len(c.lights)) % 900.0:
                fault = {"ts": int(t * 1000), "fault": "lampFailure", "active": True}
                events.append(
                    (
                        t,
                        topic_name(prefix, Fleet.LIGHT, d, Channel.FAULT),
                        json.dumps(fault).encode(),
                    )
                )
            t += 900.0
    for fleet, devices, every in ((Fleet.BUS, c.buses, 10.0), (Fleet.TRUCK, c.trucks, 30.0)):
        for i, d in enumerate(devices):
            t = start + (i % int(every))
            k = 0
            while t < start + seconds:
                lat = CENTRE[0] + 0.0005 * (k % 400) + 0.001 * (i % 10)
                body = {"ts": int(t * 1000), "lat": lat, "lon": CENTRE[1], "speed_kmh": 20.0}
                events.append(
                    (t, topic_name(prefix, fleet, d, Channel.POSITION), json.dumps(body).encode())
                )
                t += every
                k += 1
    events.sort(key=lambda e: e[0])
    yield from events


# -- throughput ----------------------------------------------------------------------------------


def throughput(args: argparse.Namespace) -> None:
    """Readings per second through one worker's decoder and engine (no I/O)."""
    tune_gc()  # as ``python -m alerts`` does before it starts its workers and loads the city
    c = city(args.lights, args.buses, args.trucks)
    prefix = "bench/v1"
    start = datetime(2025, 12, 19, 21, 0, tzinfo=UTC).timestamp()  # night: lamps rightly on
    messages = list(traffic(c, prefix, start, args.minutes * 60.0))
    fleets = {a.device_id: a.fleet for a in c.assets()}
    decoder = MessageDecoder(Limits(prefix=prefix, max_age=timedelta(days=36500)))
    route = [(CENTRE[0] + 0.001 * k, CENTRE[1]) for k in range(60)]

    def fresh() -> Engine:
        return Engine(load_thresholds(), Catalog(c.assets(), routes={"A": route}))

    engine = fresh()
    began = time.perf_counter()
    began_cpu = time.process_time()
    decoded: list[list[Observation]] = []
    for at, topic, payload in messages:
        fleet = Fleet(topic[len(prefix) + 1 :].split("/", 1)[0])
        received = datetime.fromtimestamp(at, UTC)
        obs = from_decoded(decoder.decode(topic, payload, received, fleets), fleet)
        decoded.append(obs)
    decode_s = time.perf_counter() - began
    decode_cpu = time.process_time() - began_cpu
    engine = fresh()
    began = time.perf_counter()
    began_cpu = time.process_time()
    next_tick = start
    count = 0
    for (at, _, _), obs in zip(messages, decoded, strict=True):
        if at >= next_tick:
            engine.tick(at)
            next_tick = at + 1.0
        for o in obs:
            engine.observe(o)
        count += len(obs)
    engine.tick(start + args.minutes * 60.0)
    rules_s = time.perf_counter() - began
    rules_cpu = time.process_time() - began_cpu
    effects = engine.take()
    city_rate = len(messages) / (args.minutes * 60.0)
    print(
        f"city: {len(c.lights)} lights, {len(c.buses)} buses, {len(c.trucks)} trucks; "
        f"{len(messages)} messages over {args.minutes} min ({city_rate:.0f}/s), "
        f"{len(effects)} effects (digest {hashlib.sha256(repr(effects).encode()).hexdigest()[:12]})"
    )
    print(f"rules only:      {count / rules_s:,.0f} readings/s")
    print(
        f"decode + rules:  {count / (rules_s + decode_s):,.0f} readings/s "
        f"({(count / (rules_s + decode_s)) / city_rate:,.0f}x city load)"
    )
    # Per CPU second of this process: what a worker with a core of its own would do, and a
    # steadier figure than the wall clock on a machine shared with other jobs.
    print(
        f"per CPU second:  rules only {count / rules_cpu:,.0f}, "
        f"decode + rules {count / (rules_cpu + decode_cpu):,.0f} readings/s"
    )


# -- latency -------------------------------------------------------------------------------------


def _alerts_process(settings: Settings, log: Path, port: int, **env: str) -> AlertsProcess:
    """``python -m alerts`` on ``port``; loading a city's catalogue can take a while."""
    alerts = AlertsProcess(settings, log, RASD_ALERTS_HTTP_PORT=str(port), **env)
    alerts.healthy_timeout = 120.0
    return alerts


def latency(args: argparse.Namespace) -> None:
    """Fault publish -> open NOTIFY received, at city background load."""
    tag = uuid.uuid4().hex[:8]
    settings = Settings().model_copy(
        update={"database_schema": f"bench_{tag}", "topic_prefix": f"bench/{tag}/v1"}
    )
    c = city(args.lights, args.buses, args.trucks)
    migrate(settings)
    alerts = _alerts_process(settings, Path(args.log), args.port)
    try:
        register_devices(settings, *c.records())
        alerts.start()
        _measure(settings, c, args, [_NotifyHop(settings, {})])
    finally:
        stop_all([alerts])
        drop_schema(settings)


class _Hop:
    """A listener thread timing each fault's ``open`` alert at one point of the chain."""

    def __init__(self, name: str, published: dict[str, float]) -> None:
        self.name = name
        self.published = published
        self.latencies: list[float] = []
        self.ready = threading.Event()
        self.stop_at = float("inf")
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"bench-{name}", daemon=True)

    def start(self) -> None:
        """Start listening; returns once the listener is subscribed."""
        self._thread.start()
        if not self.ready.wait(30):
            raise SystemExit(f"{self.name}: could not subscribe ({self.error})")

    def opened(self, device_id: str | None, got: float) -> None:
        """An ``open`` event for ``device_id`` arrived at ``got``."""
        if device_id in self.published:
            self.latencies.append(got - self.published[device_id])

    def finished(self) -> bool:
        """Publishing is over and every fault was seen, or the grace time is over too."""
        if self.stop_at == float("inf"):
            return False
        return len(self.latencies) >= len(self.published) or time.time() > self.stop_at

    def join(self) -> None:
        """Wait for the listener to stop."""
        self._thread.join(20)

    def _run(self) -> None:
        try:
            self.listen()
        except BaseException as exc:  # reported by start() or in the summary
            self.error = exc
            self.ready.set()

    def listen(self) -> None:
        """Subscribe, set ``ready``, call ``opened`` until ``finished``."""
        raise NotImplementedError


class _NotifyHop(_Hop):
    """PostgreSQL LISTEN on the schema's alerts channel: what the alerts service commits."""

    def __init__(self, settings: Settings, published: dict[str, float]) -> None:
        super().__init__("NOTIFY", published)
        self.settings = settings

    def listen(self) -> None:
        """LISTEN until every fault's open event arrived."""
        with connect(self.settings, autocommit=True) as conn:
            listen(conn, self.settings.database_schema)
            self.ready.set()
            while not self.finished():
                for note in conn.notifies(timeout=0.5):
                    got = time.time()
                    event = parse_event(note.payload)
                    if event.event is AlertEventType.OPEN:
                        self.opened(event.device_id, got)


class _WebSocketHop(_Hop):
    """A ``/ws/alerts`` client of the API: what an operator's map receives."""

    def __init__(self, url: str, published: dict[str, float]) -> None:
        super().__init__("/ws/alerts", published)
        self.url = url

    def listen(self) -> None:
        """Read frames until every fault's open alert arrived."""
        with ws_connect(self.url, max_size=None) as ws:
            first = json.loads(ws.recv(timeout=30))
            if first.get("type") != "snapshot":
                raise RuntimeError(f"unexpected first frame {first}")
            self.ready.set()
            while not self.finished():
                try:
                    text = ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                got = time.time()
                frame = json.loads(text)
                if frame.get("type") == "alert" and frame.get("event") == "open":
                    alert = frame.get("alert") or {}
                    self.opened(alert.get("device_id"), got)


def _drive(
    settings: Settings, c: City, args: argparse.Namespace, published: dict[str, float]
) -> tuple[int, float]:
    """Publish background traffic at ``args.rate`` with ``args.faults`` lampFailure faults
    spread over ``args.seconds``; returns (background messages sent, seconds)."""
    prefix = settings.topic_prefix
    with settings_publisher(settings, max_inflight=1000) as pub:
        now = time.time()
        # City traffic repeated as often as the rate needs (timestamps are restamped anyway).
        background = itertools.chain.from_iterable(
            traffic(c, prefix, now + 60.0 * k, 60.0) for k in itertools.count()
        )
        rate = args.rate
        fault_every = args.seconds / args.faults
        victims = iter(c.lights[1::7])
        began = time.monotonic()
        sent = 0
        next_fault = began + 1.0
        for _, topic, payload in background:
            due = began + sent / rate
            while time.monotonic() < due:
                if time.monotonic() >= next_fault and len(published) < args.faults:
                    device = next(victims)
                    body = {"ts": int(time.time() * 1000), "fault": "lampFailure", "active": True}
                    topic_f = topic_name(prefix, Fleet.LIGHT, device, Channel.FAULT)
                    payload_f = json.dumps(body).encode()
                    published[device] = time.time()
                    pub.publish(topic_f, payload_f, qos=1)  # not waiting for the PUBACK
                    next_fault += fault_every
                time.sleep(0.0005)
            # Energy payloads carry their planned ts; restamp them to now for the decoder.
            body = json.loads(payload)
            body["ts"] = int(time.time() * 1000)
            pub.publish(topic, json.dumps(body).encode(), qos=1)
            sent += 1
            if time.monotonic() - began > args.seconds:
                break
        return sent, time.monotonic() - began


def _measure(settings: Settings, c: City, args: argparse.Namespace, hops: list[_Hop]) -> None:
    published = hops[0].published
    for hop in hops:
        hop.start()
    sent, elapsed = _drive(settings, c, args, published)
    for hop in hops:
        hop.stop_at = time.time() + 10
    for hop in hops:
        hop.join()
    print(
        f"background {sent / elapsed:.0f} msg/s for {elapsed:.0f} s "
        f"({len(c.lights)} lights, {len(c.buses)} buses, {len(c.trucks)} trucks registered)"
    )
    for hop in hops:
        lat = sorted(hop.latencies)
        if not lat:
            raise SystemExit(f"no alert events received on {hop.name} ({hop.error})")
        q = statistics.quantiles(lat, n=100, method="inclusive")
        print(
            f"fault publish -> {hop.name}: {len(lat)} of {len(published)} faults, "
            f"p50 {q[49] * 1000:.0f} ms, p95 {q[94] * 1000:.0f} ms, "
            f"p99 {q[98] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms"
        )


# -- the whole chain, to the operator's WebSocket -----------------------------------------------


def chain(args: argparse.Namespace) -> None:
    """Fault publish -> ``open`` frame on ``/ws/alerts``, through the real services."""
    tag = uuid.uuid4().hex[:8]
    ingest_port, alerts_port, api_port = args.port, args.port + 1, args.port + 2
    settings = Settings().model_copy(
        update={
            "database_schema": f"bench_{tag}",
            "topic_prefix": f"bench/{tag}/v1",
            "ingest_share_group": f"bench{tag}",
            "ingest_http_port": ingest_port,
            # The broker forgets the benchmark's sessions soon after it ends.
            "ingest_session_expiry_s": 300,
        }
    )
    c = city(args.lights, args.buses, args.trucks)
    migrate(settings)
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    api = ApiProcess(settings, log_dir / "api.log", port=api_port)
    services = [
        IngestProcess(settings, log_dir / "ingest.log"),
        _alerts_process(
            settings, log_dir / "alerts.log", alerts_port, RASD_ALERTS_SESSION_EXPIRY_S="300"
        ),
        api,
    ]
    try:
        register_devices(settings, *c.records())
        # Started together, then waited for, as on a host that boots them all.
        for service in services:
            service.start(wait_healthy=False)
        for service in services:
            wait_until(service.healthy, timeout=120, what=f"{service.module} /healthz")
        wait_until(api.ready, timeout=120, what="api /readyz")
        token = cli_token(settings, "operator", "alerts-bench")
        published: dict[str, float] = {}
        url = f"ws://127.0.0.1:{api_port}/ws/alerts?token={token}"
        _measure(
            settings,
            c,
            args,
            [_NotifyHop(settings, published), _WebSocketHop(url, published)],
        )
    finally:
        stop_all(services)
        drop_schema(settings)


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.alerts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("throughput", "latency", "chain"):
        p = sub.add_parser(name)
        p.add_argument("--lights", type=int, default=72_000)
        p.add_argument("--buses", type=int, default=250)
        p.add_argument("--trucks", type=int, default=120)
    sub.choices["throughput"].add_argument("--minutes", type=float, default=15.0)
    for name in ("latency", "chain"):
        lat = sub.choices[name]
        lat.add_argument("--faults", type=int, default=200)
        lat.add_argument("--rate", type=float, default=110.0, help="background messages/s")
        lat.add_argument("--seconds", type=float, default=60.0)
        lat.add_argument("--port", type=int, default=9199, help="first of the ports used")
    sub.choices["latency"].add_argument("--log", default="/tmp/rasd-alerts-bench.log")
    sub.choices["chain"].add_argument("--log-dir", default="/tmp/rasd-alerts-bench-chain")
    args = parser.parse_args(argv)
    commands = {"throughput": throughput, "latency": latency, "chain": chain}
    commands[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
