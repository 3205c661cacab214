"""``python -m bench.predictions``: how right the arrival predictions are, on a morning the
predictor did not learn from.

1. Training: the simulated city's buses (every line, ``--buses`` of them, GPS noise and
   defects as the scenarios have them) drive ``--train-days`` whole service days; their fixes
   are decoded as the ingestor does and stored in a fresh schema, where the product's own
   queries learn the median link and dwell times (``telemetry.storage.gtfs``).
2. Held-out: another seed drives the next morning (05:30-12:00 local). Its fixes, in the order
   they reach the platform, go through the product's trip matching and predictor
   (``telemetry.gtfs.matching``, ``telemetry.gtfs.predictions``), each prediction made when
   its fix is received.
3. Truth: the simulator's own itinerary of that morning (not its fixes): the moment each bus
   enters each stop's 50 m radius.

Every minute of each (bus, run, stop) keeps its newest prediction (Cal-ITP's one-minute bins).
Scored with the bands of the ETA Accuracy Benchmark (Transit, Swiftly and agencies, 2024;
error = actual - predicted: 0-3 min ahead -30 s to +90 s; 3-6 min -60/+150; 6-10 min
-60/+210; 10-15 min -90/+270) and Cal-ITP's bounds (-60 ln(h + 1.3) < error < 60 ln(h + 1.5)
seconds, h the minutes ahead, 0-30 min).
The baseline in the same run: the static feed's run times at default speeds from the bus's
position (what a consumer does with the schedule alone). Nothing in the simulator changes.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import psycopg

from alerts.routes_file import parse_routes
from simulators.buses import Bus
from simulators.devices import build_devices, registry_records
from simulators.engine import Engine
from simulators.network import network_file
from simulators.scenario import Scenario
from telemetry.db import conninfo
from telemetry.decoding import Limits, MessageDecoder, PositionRow
from telemetry.gtfs.feed import StaticFeed, TripPattern, build_feed
from telemetry.gtfs.matching import (
    BusState,
    Fix,
    Phase,
    current_trip,
    observe,
    run_offset_s,
)
from telemetry.gtfs.network import network_of
from telemetry.gtfs.predictions import (
    STOP_RADIUS_M,
    Arrival,
    Progress,
    TravelModel,
    advance,
    predict,
    trip_distance,
)
from telemetry.gtfs.records import FeedConfig
from telemetry.gtfs.runtimes import PERIODS
from telemetry.migrate import migrate
from telemetry.settings import Settings
from telemetry.storage.backend import Backend, recorded_backend
from telemetry.storage.devices import upsert_devices
from telemetry.storage.gtfs import link_travel_times, stop_dwell_times
from telemetry.storage.maintenance import ensure_partitions
from telemetry.storage.readings import Batch, ReadingStore
from telemetry.storage.reference import (
    bus_stops,
    import_network,
    line_schedules,
    line_stops,
    route_shapes,
)
from telemetry.topics import Fleet
from tests.support.database import drop_schema

TZ: Final = "Africa/Casablanca"
ZONE: Final = ZoneInfo(TZ)
PREFIX: Final = "rasd/v1"
#: (name, low, high, early bound s, late bound s) of the ETA Accuracy Benchmark's bands.
BANDS: Final = (
    ("0-3 min", 0, 180, -30, 90),
    ("3-6 min", 180, 360, -60, 150),
    ("6-10 min", 360, 600, -60, 210),
    ("10-15 min", 600, 900, -90, 270),
)
CALITP_MAX_S: Final = 1800
#: A first day far from Ramadan (the simulator shifts its clocks then) and from DST changes.
FIRST_DAY: Final = date(2026, 5, 4)


def calitp_ok(horizon_s: float, error_s: float) -> bool:
    """Cal-ITP's reliable prediction accuracy: within -60 ln(h+1.3) and 60 ln(h+1.5)."""
    h = horizon_s / 60.0
    return -60.0 * math.log(h + 1.3) < error_s < 60.0 * math.log(h + 1.5)


def band_of(horizon_s: float) -> int | None:
    """The benchmark's band a prediction this far ahead falls in."""
    for k, (_, low, high, _, _) in enumerate(BANDS):
        if low <= horizon_s < high:
            return k
    return None


def transit_ok(band: int, error_s: float) -> bool:
    """Whether an error is inside its band's bounds."""
    _, _, _, early, late = BANDS[band]
    return early <= error_s <= late


def _local(day: date, hour: float) -> datetime:
    midnight = datetime.combine(day, datetime.min.time(), ZONE)
    return (midnight + timedelta(hours=hour)).astimezone(UTC)


def scenario_of(buses: int, lines: list[str] | None = None) -> Scenario:
    """The city's buses on every line (or ``lines``), nothing else; defects and GPS noise as
    in the scenarios."""
    return Scenario.model_validate(
        {
            "name": "predictions",
            "buses": {"count": buses, "lines": lines},
            "trucks": {"count": 0},
            "lights": {"count": 0},
        }
    )


def positions(
    scenario: Scenario, seed: int, start: datetime, end: datetime
) -> Iterator[PositionRow]:
    """Decoded bus fixes of a run, in the order the platform receives them."""
    registry = {b.device_id: Fleet.BUS for b in build_devices(scenario).buses}
    decoder = MessageDecoder(Limits(prefix=PREFIX))
    engine = Engine(
        scenario,
        seed=seed,
        start=start.timestamp(),
        duration=(end - start).total_seconds(),
        prefix=PREFIX,
    )
    for message in engine.messages():
        received = datetime.fromtimestamp(message.at, UTC)
        yield from decoder.decode(message.topic, message.payload, received, registry).positions


@contextmanager
def bench_schema(base: Settings, keep: bool) -> Iterator[Settings]:
    """A fresh migrated schema for one run."""
    settings = base.model_copy(update={"database_schema": f"bench_eta_{uuid.uuid4().hex[:8]}"})
    migrate(settings)
    try:
        yield settings
    finally:
        if not keep:
            drop_schema(settings)


def train(
    settings: Settings, scenario: Scenario, seed: int, days: int
) -> tuple[StaticFeed, StaticFeed, TravelModel]:
    """Store ``days`` of simulated traces; the feed at default speeds, the feed with learned
    run times, and the learned travel model."""
    devices = build_devices(scenario)
    network = parse_routes(json.dumps(network_file(scenario, devices))).network()
    start, end = _local(FIRST_DAY, 3.0), _local(FIRST_DAY + timedelta(days=days), 3.0)
    with psycopg.connect(conninfo(settings), autocommit=True) as conn:
        if recorded_backend(conn) is Backend.PLAIN:
            ensure_partitions(conn, "vehicle_positions", start - timedelta(days=1), end)
        import_network(conn, network)
        upsert_devices(conn, registry_records(devices, scenario))
        store = ReadingStore(conn)
        t0 = time.perf_counter()
        batch: list[PositionRow] = []
        stored = 0
        for row in positions(scenario, seed, start, end):
            batch.append(row)
            if len(batch) >= 50_000:
                store.write(Batch(positions=batch, energy=[], faults=[]))
                stored += len(batch)
                batch = []
        store.write(Batch(positions=batch, energy=[], faults=[]))
        stored += len(batch)
        print(f"  training: {stored:,} fixes over {days} days ({time.perf_counter() - t0:.0f} s)")
        conn.execute("ANALYZE vehicle_positions")
        t0 = time.perf_counter()
        periods = [(p.name, p.start_s) for p in PERIODS]
        links = link_travel_times(conn, since=start, until=end, timezone=TZ, periods=periods)
        dwells = stop_dwell_times(conn, since=start, until=end, timezone=TZ, periods=periods)
        learned_links = sum(1 for t in links if t.samples >= 5)
        print(
            f"  learned {learned_links:,} of {len(links):,} link-periods and "
            f"{len(dwells):,} stop dwells ({time.perf_counter() - t0:.0f} s)"
        )
        stored_network = network_of(
            bus_stops(conn), line_stops(conn), line_schedules(conn), route_shapes(conn)
        )
    config = FeedConfig(
        agency_id="supratours",
        agency_name="Supratours",
        agency_url="https://www.supratours.ma",
        timezone=TZ,
        lang="fr",
        publisher_name="Commune de Marrakech",
        publisher_url="https://www.marrakech.ma",
        start_date=FIRST_DAY,
        end_date=FIRST_DAY + timedelta(days=365),
    )
    return (
        build_feed(stored_network, config),
        build_feed(stored_network, config, links),
        TravelModel(links, dwells),
    )


@dataclass(frozen=True, slots=True)
class Visit:
    """A bus inside a stop's radius, from ``enter`` to ``leave`` (epoch seconds)."""

    enter: float
    leave: float


def truth(
    scenario: Scenario, seed: int, start: datetime, end: datetime
) -> dict[tuple[str, str], list[Visit]]:
    """(bus, stop_id) -> its visits, from the simulated buses' own itineraries."""
    devices = build_devices(scenario)
    sequences: dict[str, list[str]] = network_file(scenario, devices)["line_stops"]
    engine = Engine(
        scenario,
        seed=seed,
        start=start.timestamp(),
        duration=(end - start).total_seconds(),
        prefix=PREFIX,
    )
    out: dict[tuple[str, str], list[Visit]] = defaultdict(list)
    for spec in devices.buses:
        bus = engine.vehicles[spec.device_id]
        assert isinstance(bus, Bus)
        line = bus.line
        ids = sequences[line.line_id]
        while True:
            legs = bus.plan()
            if not legs or legs[0].t0 > end.timestamp():
                break
            drives = [leg for leg in legs if leg.path is not None]
            if not drives:
                continue
            forward = drives[0].path is line.shape
            back = tuple(line.length_m - d for d in reversed(line.stop_distances))
            dists = line.stop_distances if forward else back
            order = ids if forward else ids[::-1]
            # Progress along the trip's path against time: piecewise linear, non-decreasing.
            ts = [legs[0].t0]
            ds = [0.0]
            for leg in legs:
                if leg.path is not None:
                    ts += [leg.t0, leg.t1]
                    ds += [leg.d0, leg.d1]
                else:
                    ts += [leg.t0, leg.t1]
                    ds += [ds[-1], ds[-1]]
            for k in range(1, len(dists)):
                enter = _when(ts, ds, dists[k] - STOP_RADIUS_M)
                leave = _when(ts, ds, min(dists[k] + STOP_RADIUS_M, ds[-1] - 1e-6))
                if enter is not None and leave is not None:
                    out[spec.device_id, order[k]].append(Visit(enter, max(leave, enter)))
    return out


def _when(ts: list[float], ds: list[float], d: float) -> float | None:
    """The first time progress reaches ``d``."""
    k = bisect.bisect_left(ds, d)
    if k >= len(ds):
        return None
    if k == 0:
        return ts[0]
    d0, d1, t0, t1 = ds[k - 1], ds[k], ts[k - 1], ts[k]
    return t1 if d1 == d0 else t0 + (d - d0) / (d1 - d0) * (t1 - t0)


Predictor = Callable[[TripPattern, Progress, datetime], list[Arrival]]


def schedule_only(feed: StaticFeed) -> Predictor:
    """The baseline: the trip's typical run times in the static feed, from where the bus is."""

    patterns = {p.trip_id: p for line in feed.lines.values() for p in line.trips}

    def run(trip: TripPattern, progress: Progress, now: datetime) -> list[Arrival]:
        pattern = patterns[trip.trip_id]
        here = run_offset_s(pattern, progress.dist_m)
        out: list[Arrival] = []
        floor = -math.inf
        late = 0.0
        for k, (stop, d) in enumerate(zip(pattern.stop_ids, pattern.stop_dist_m, strict=True)):
            if d <= progress.dist_m + (STOP_RADIUS_M if progress.at_stop is not None else 0.0):
                continue
            at = progress.time.timestamp() + pattern.stop_offset_s[k] - here
            if not out:
                late = max(0.0, now.timestamp() - at)
            a = max(math.ceil(at + late), floor + 1)
            floor = a
            moment = datetime.fromtimestamp(a, UTC)
            out.append(Arrival(stop_id=stop, stop_sequence=k + 1, arrival=moment, departure=moment))
        return out

    return run


def learned(model: TravelModel) -> Predictor:
    """The product's predictor."""

    def run(pattern: TripPattern, progress: Progress, now: datetime) -> list[Arrival]:
        return predict(pattern, progress, model, now, TZ)

    return run


@dataclass(slots=True)
class Score:
    """Counts of scored predictions, and how many were inside the bounds."""

    total: list[int]
    good: list[int]
    calitp_total: int = 0
    calitp_good: int = 0
    early: int = 0


def replay(
    feed: StaticFeed,
    rows: list[PositionRow],
    predictors: dict[str, Predictor],
    visits: dict[tuple[str, str], list[Visit]],
    score_from: datetime,
) -> dict[str, Score]:
    """Match and predict on every fix as received; score each minute's newest prediction."""
    patterns = {p.trip_id: p for line in feed.lines.values() for p in line.trips}
    states: dict[str, BusState] = {}
    progress: dict[str, tuple[str, Progress]] = {}
    newest: dict[str, dict[tuple[str, str, str, int], tuple[float, float]]] = {
        name: {} for name in predictors
    }
    for row in rows:
        fix = Fix(time=row.time, lat=row.lat, lon=row.lon, route=row.route)
        state = observe(states.get(row.device_id, BusState()), fix, feed)
        states[row.device_id] = state
        trip = current_trip(state, row.time)
        if trip is None or state.phase is not Phase.RUNNING or state.along_m is None:
            progress.pop(row.device_id, None)
            continue
        if state.time != row.time:
            continue  # an older fix the matching ignored
        pattern = patterns[trip.trip_id]
        line = feed.lines[trip.route_id]
        dist = trip_distance(line.shape.length_m, trip.direction_id, state.along_m)
        key = f"{trip.trip_id}/{trip.start_date}/{trip.start_time}"
        before = progress.get(row.device_id)
        now = row.received_at
        current = advance(
            before[1] if before and before[0] == key else None,
            pattern,
            dist,
            row.time,
            row.speed_kmh,
        )
        progress[row.device_id] = (key, current)
        if now < score_from:
            continue
        minute = int(now.timestamp() // 60)
        for name, predictor in predictors.items():
            for arrival in predictor(pattern, current, now):
                newest[name][row.device_id, key, arrival.stop_id, minute] = (
                    now.timestamp(),
                    arrival.arrival.timestamp(),
                )
    return {name: _score(made, visits) for name, made in newest.items()}


def _score(
    made: dict[tuple[str, str, str, int], tuple[float, float]],
    visits: dict[tuple[str, str], list[Visit]],
) -> Score:
    score = Score(total=[0] * len(BANDS), good=[0] * len(BANDS))
    for (bus, _, stop, _), (at, predicted) in made.items():
        actual = next((v.enter for v in visits.get((bus, stop), ()) if v.leave >= at), None)
        if actual is None or actual - at > 3600:
            continue  # the morning ended first
        horizon = predicted - at
        error = actual - predicted
        if horizon <= CALITP_MAX_S:
            score.calitp_total += 1
            score.calitp_good += calitp_ok(horizon, error)
        band = band_of(horizon)
        if band is None:
            continue
        score.total[band] += 1
        ok = transit_ok(band, error)
        score.good[band] += ok
        score.early += error < BANDS[band][3]
    return score


def _pct(good: int, total: int) -> str:
    return f"{100 * good / total:5.1f} %" if total else "    -"


def report(scores: dict[str, Score]) -> None:
    """The table: overall and per band, each predictor, and the ratio to the baseline."""
    names = list(scores)
    print(f"\n  {'band':<12}" + "".join(f"{n:>26}" for n in names) + f"{'ratio':>8}")
    rows: list[tuple[str, list[tuple[int, int]]]] = []
    for k, (label, *_rest) in enumerate(BANDS):
        rows.append((label, [(scores[n].good[k], scores[n].total[k]) for n in names]))
    rows.append(("overall", [(sum(scores[n].good), sum(scores[n].total)) for n in names]))
    rows.append(("Cal-ITP", [(scores[n].calitp_good, scores[n].calitp_total) for n in names]))
    for label, cells in rows:
        text = "".join(f"{_pct(g, t):>12} of {t:>9,}" for g, t in cells)
        ratio = ""
        (g0, t0), (g1, t1) = cells[0], cells[-1]
        if t0 and t1 and g1:
            ratio = f"{(g0 / t0) / (g1 / t1):7.2f}x"
        print(f"  {label:<12}{text}{ratio:>8}")
    for n in names:
        s = scores[n]
        print(f"  {n}: {_pct(s.early, sum(s.total)).strip()} of the banded predictions too early")


def main(argv: list[str] | None = None) -> int:
    """Train, replay the held-out morning, print the table."""
    parser = argparse.ArgumentParser(prog="python -m bench.predictions", description=__doc__)
    parser.add_argument("--buses", type=int, default=100, help="buses over the 25 lines")
    parser.add_argument("--train-days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1, help="training seed (held-out: +1000)")
    parser.add_argument("--keep", action="store_true", help="keep the schema")
    args = parser.parse_args(argv)
    scenario = scenario_of(args.buses)
    print(
        f"bench.predictions: {args.buses} buses, {args.train_days} training days from "
        f"{FIRST_DAY}, held-out morning {FIRST_DAY + timedelta(days=args.train_days)}"
    )
    with bench_schema(Settings(), args.keep) as settings:
        default_feed, learned_feed, model = train(settings, scenario, args.seed, args.train_days)
    day = FIRST_DAY + timedelta(days=args.train_days)
    start, score_from, end = _local(day, 5.5), _local(day, 6.5), _local(day, 12.0)
    seed = args.seed + 1000
    t0 = time.perf_counter()
    rows = list(positions(scenario, seed, start, end))
    visits = truth(scenario, seed, start, end)
    print(f"  held-out: {len(rows):,} fixes, {sum(map(len, visits.values())):,} stop arrivals")
    scores = replay(
        default_feed,
        rows,
        {
            "predictor": learned(model),
            "learned schedule": schedule_only(learned_feed),
            "default schedule": schedule_only(default_feed),
        },
        visits,
        score_from,
    )
    print(f"  replayed in {time.perf_counter() - t0:.0f} s")
    report(scores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
