"""Complaint linking benchmark: spatial lookups against the city's 72,000 lights, and whole
links (evidence, truck GPS proof of service, alerts) per second, each against a brute-force
baseline in the same process.

    python -m bench.complaints [--complaints 2000] [--lights 72000]

On a throwaway schema of the configured database (RASD_* settings), the simulators (run as
``python -m simulators`` child processes: the API does not import them) provide the city's
registry and network file, a night of truck GPS (every truck of the city, 20:30-05:00 two
nights ago) and an hour of streetlight readings. Complaints are then placed near random lights
(streetlight out, 60 %) and near random collection points (missed collection, 40 %). Figures:

1. lookups/s of the nearest lights within the linking radius: the sorted-cell index vs
   measuring every light (numpy; ``brute_force_within``, the baseline, lives here);
2. complaints/s linked with the index vs with the brute-force search, each link rolled back so
   both runs meet the same database (after one unmeasured pass warming the caches); then
   the index run committed (the real figure).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

from alerts.config import load_thresholds
from alerts.routes_file import RoutesFile, parse_routes
from api.open311.linker_task import Linker
from api.open311.wire import SOURCE
from bench.seed_data import alert_kind_counts, complaint_link_counts, evidence_verdict_counts
from telemetry.complaints.matching import LinkRules
from telemetry.complaints.records import ComplaintRow, Contact, NewComplaint
from telemetry.complaints.spatial_index import Hit, LightCatalog, PointIndex
from telemetry.db import connect
from telemetry.decoding import Limits, MessageDecoder
from telemetry.migrate import migrate
from telemetry.registry import parse_devices_csv
from telemetry.settings import Settings
from telemetry.storage import complaints as store
from telemetry.storage.devices import upsert_devices
from telemetry.storage.readings import Batch, ReadingStore
from telemetry.storage.reference import import_network
from telemetry.topics import Fleet
from tests.support.database import drop_schema

ZONE = ZoneInfo("Africa/Casablanca")
PREFIX = "rasd/v1"


def brute_force_within(
    index: PointIndex, lat: float, lon: float, radius_m: float, limit: int = 10
) -> list[Hit]:
    """The same answer as ``index.within`` by measuring every point (the baseline)."""
    if not index.ids or radius_m < 0 or limit <= 0:
        return []
    x, y = index.project(lat, lon)
    return index.measure(np.arange(len(index.ids), dtype=np.intp), x, y, radius_m, limit)


class BruteIndex(PointIndex):
    """The same index answering every query by measuring every point (the baseline)."""

    def within(self, lat: float, lon: float, radius_m: float, limit: int = 10) -> list[Hit]:
        """Every point measured."""
        return brute_force_within(self, lat, lon, radius_m, limit)


def _simulators(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "simulators", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=3600,
    )
    return done.stdout


def _scenario(path: Path, name: str, *, buses: int, trucks: int | None, lights: int) -> Path:
    trucks_line = "" if trucks is None else f"count = {trucks}\n"
    path.write_text(
        f'name = "{name}"\n[buses]\ncount = {buses}\n[trucks]\n{trucks_line}'
        f"[lights]\ncount = {lights}\nfault_rate_multiplier = 0.0\n"
        "[defects]\nenabled = false\n",
        "utf-8",
    )
    return path


def _store_stream(conn: psycopg.Connection, text: str, fleets: dict[str, Fleet]) -> int:
    """Decode simulator ``--stdout`` lines as the ingestor does and store them."""
    decoder = MessageDecoder(Limits(prefix=PREFIX, max_age=timedelta(days=30)))
    readings = ReadingStore(conn)
    batch = Batch()
    rows = 0
    for line in text.splitlines():
        item = json.loads(line)
        payload = json.dumps(item["payload"], separators=(",", ":")).encode()
        decoded = decoder.decode(item["topic"], payload, datetime.now(UTC), fleets)
        batch.add(decoded)
        if len(batch.positions) + len(batch.energy) >= 20_000:
            rows += len(batch.positions) + len(batch.energy)
            readings.write(batch)
            batch = Batch()
    rows += len(batch.positions) + len(batch.energy)
    readings.write(batch)
    return rows


def _jitter(rng: random.Random, lat: float, lon: float, metres: float) -> tuple[float, float]:
    return (
        lat + rng.uniform(-metres, metres) / 111_195.0,
        lon + rng.uniform(-metres, metres) / 94_600.0,
    )


def _timed(label: str, count: int, seconds: float) -> float:
    rate = count / seconds if seconds > 0 else float("inf")
    print(f"  {label:<44} {count:>7} in {seconds:7.2f} s = {rate:>10,.0f}/s")
    return rate


def _link_all(
    conn: psycopg.Connection,
    linker: Linker,
    complaints: list[ComplaintRow],
    now: datetime,
    *,
    keep: bool,
) -> float:
    started = time.perf_counter()
    for complaint in complaints:
        try:
            with conn.transaction():
                linker.link(conn, complaint, now)
                if not keep:
                    raise psycopg.Rollback()
        except psycopg.Rollback:  # pragma: no cover - the transaction block swallows it
            pass
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> None:
    """Build the city, generate its data with the simulators, and measure."""
    tag = uuid.uuid4().hex[:8]
    settings = Settings().model_copy(update={"database_schema": f"bench_complaints_{tag}"})
    local_now = datetime.now(ZONE)
    night = (local_now - timedelta(days=2)).date()
    start_trucks = datetime.combine(night, datetime.min.time(), ZONE) + timedelta(hours=20.5)
    start_lights = start_trucks + timedelta(minutes=30)  # 21:00 local: every lamp lit
    morning = start_trucks + timedelta(hours=11.5)  # 08:00 local the next day
    migrate(settings)
    try:
        with connect(settings, autocommit=True) as conn, tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            records = parse_devices_csv(_simulators("registry", "city"))
            upsert_devices(conn, records)
            network = parse_routes(_simulators("network", "city"))
            import_network(conn, network.network())
            fleets = {r.device_id: r.fleet for r in records}
            lights = sum(1 for r in records if r.fleet.value == "light")
            print(
                f"city: {len(records):,} devices ({lights:,} lights), "
                f"{len(network.collection_rounds())} rounds  [{time.perf_counter() - t:.1f} s]"
            )
            t = time.perf_counter()
            trucks = _scenario(
                Path(tmp) / "trucks.toml", "bench-trucks", buses=0, trucks=None, lights=0
            )
            text = _simulators(
                "run",
                str(trucks),
                "--stdout",
                "--fast",
                "--start",
                start_trucks.isoformat(),
                "--duration",
                "8h30m",
            )
            fixes = _store_stream(conn, text, fleets)
            print(
                f"a night of truck GPS: {fixes:,} fixes stored  [{time.perf_counter() - t:.1f} s]"
            )
            t = time.perf_counter()
            lamps = _scenario(
                Path(tmp) / "lights.toml", "bench-lights", buses=0, trucks=0, lights=args.lights
            )
            text = _simulators(
                "run",
                str(lamps),
                "--stdout",
                "--fast",
                "--start",
                start_lights.isoformat(),
                "--duration",
                "1h",
            )
            readings = _store_stream(conn, text, fleets)
            del text
            print(f"an hour of lights: {readings:,} readings  [{time.perf_counter() - t:.1f} s]")
            measure(conn, network, args, start_lights, morning)
    finally:
        drop_schema(settings)


def measure(
    conn: psycopg.Connection,
    network: RoutesFile,
    args: argparse.Namespace,
    start_lights: datetime,
    morning: datetime,
) -> None:
    """The two comparisons, on the stored city."""
    rng = random.Random(7)
    rules = LinkRules()
    linker = Linker(rules, load_thresholds())
    t = time.perf_counter()
    linker.refresh(conn)
    catalog = linker.lights
    assert catalog is not None
    print(f"light index: {len(catalog.rows):,} lights in {time.perf_counter() - t:.2f} s")
    points = [(p.lat, p.lon) for r in network.collection_rounds() for p in r.points]
    n_waste = int(args.complaints * 0.4)
    n_light = args.complaints - n_waste
    complaints: list[ComplaintRow] = []
    with conn.transaction():
        for _ in range(n_light):
            row = catalog.rows[rng.randrange(len(catalog.rows))]
            lat, lon = _jitter(rng, row.lat, row.lon, 20.0)
            complaints.append(
                store.insert_complaint(
                    conn,
                    NewComplaint(
                        source=SOURCE,
                        service_code="streetlight_out",
                        requested_at=start_lights + timedelta(minutes=50),
                        lat=lat,
                        lon=lon,
                    ),
                    Contact(),
                )
            )
        for _ in range(n_waste):
            lat, lon = _jitter(rng, *points[rng.randrange(len(points))], 30.0)
            complaints.append(
                store.insert_complaint(
                    conn,
                    NewComplaint(
                        source=SOURCE,
                        service_code="missed_collection",
                        requested_at=morning,
                        lat=lat,
                        lon=lon,
                    ),
                    Contact(),
                )
            )
    rng.shuffle(complaints)
    places = [(c.lat or 0.0, c.lon or 0.0) for c in complaints]
    print(
        f"\n1. nearest lights within {rules.light_radius_m:g} m "
        f"(up to {rules.light_max}), {len(places)} places"
    )
    index = catalog.index
    rounds = max(1, 20_000 // len(places))
    t = time.perf_counter()
    for _ in range(rounds):
        for lat, lon in places:
            brute_force_within(index, lat, lon, rules.light_radius_m, rules.light_max)
    slow = _timed(
        "brute force (numpy over every light)", rounds * len(places), time.perf_counter() - t
    )
    t = time.perf_counter()
    for _ in range(rounds * 10):
        for lat, lon in places:
            index.within(lat, lon, rules.light_radius_m, rules.light_max)
    fast = _timed("sorted-cell index", rounds * 10 * len(places), time.perf_counter() - t)
    print(f"  ratio index / brute force: {fast / slow:.1f}x")
    now = morning + timedelta(hours=1)
    print(
        f"\n2. whole links ({n_light} streetlight out, {n_waste} missed collection), "
        "one transaction each"
    )
    brute = Linker(rules, load_thresholds())
    brute_catalog = LightCatalog.__new__(LightCatalog)
    brute_catalog.rows = catalog.rows
    brute_catalog.index = _as_brute(catalog.index)
    brute.lights = brute_catalog
    _link_all(conn, linker, complaints, now, keep=False)  # warm the caches, unmeasured
    slow = _timed(
        "brute force, rolled back",
        len(complaints),
        _link_all(conn, brute, complaints, now, keep=False),
    )
    fast = _timed(
        "index, rolled back", len(complaints), _link_all(conn, linker, complaints, now, keep=False)
    )
    print(f"  ratio index / brute force: {fast / slow:.2f}x")
    _timed("index, committed", len(complaints), _link_all(conn, linker, complaints, now, keep=True))
    summary = complaint_link_counts(conn)
    verdicts = evidence_verdict_counts(conn)
    alerts = alert_kind_counts(conn)
    print("  complaints: " + ", ".join(f"{s} {st} {n}" for s, st, n in summary))
    print("  evidence: " + ", ".join(f"{k} {v} {n}" for k, v, n in verdicts))
    print("  alerts: " + ", ".join(f"{k} {n}" for k, n in alerts))


def _as_brute(index: PointIndex) -> PointIndex:
    brute = BruteIndex.__new__(BruteIndex)
    for name in PointIndex.__slots__:
        object.__setattr__(brute, name, getattr(index, name))
    return brute


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.complaints",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--complaints", type=int, default=2000)
    parser.add_argument("--lights", type=int, default=72_000, help="lights the simulator runs")
    run(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
