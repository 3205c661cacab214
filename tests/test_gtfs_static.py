"""The static GTFS of the city: built from the network file the services import, stable ids,
run times learned from stored traces, and the export at /gtfs/static.zip passing the canonical
GTFS Schedule rules (gtfs-validator) with zero errors."""

from __future__ import annotations

import csv
import io
import itertools
import subprocess
import sys
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from alerts.routes_file import parse_routes
from simulators.cli import main as simulators_main
from telemetry.gtfs.csvzip import zip_bytes
from telemetry.gtfs.feed import StaticFeed, build_feed, trip_id
from telemetry.gtfs.geometry import Shape
from telemetry.gtfs.network import network_of
from telemetry.gtfs.records import (
    FeedConfig,
    LinkTime,
    Network,
    NetworkLine,
    NetworkStop,
    ServiceBand,
)
from telemetry.gtfs.runtimes import DEFAULT_KMH, MIN_SAMPLES, PERIODS, period_at, slices
from telemetry.reference_data import BusStop, LineSchedule, LineStop
from telemetry.reference_data import Network as StoredNetwork
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.gtfs import link_travel_times
from telemetry.storage.reference import import_network
from telemetry.topics import Fleet
from tests.support.api_server import ApiServer, fix, register_devices, store
from tests.support.database import open_db
from tests.support.gtfs_validation import validate_static

CONFIG = FeedConfig(
    agency_id="supratours",
    agency_name="Supratours",
    agency_url="https://www.supratours.ma",
    timezone="Africa/Casablanca",
    lang="fr",
    publisher_name="Commune de Marrakech",
    publisher_url="https://www.marrakech.ma",
    contact_url="https://www.marrakech.ma",
    start_date=date(2026, 1, 1),
    end_date=date(2027, 12, 31),
)


def _rows(files: dict[str, bytes] | zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    data = files.read(name) if isinstance(files, zipfile.ZipFile) else files[name]
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def _demo_file(tmp_path: Path) -> Path:
    path = tmp_path / "network.json"
    assert simulators_main(["network", "demo", "-o", str(path)]) == 0
    return path


def _demo_network(tmp_path: Path) -> Network:
    stored = parse_routes(_demo_file(tmp_path).read_text("utf-8")).network()
    line_stops = [
        LineStop(route=route, seq=k, stop_id=stop)
        for route, ids in stored.line_stops.items()
        for k, stop in enumerate(ids)
    ]
    return network_of(stored.stops, line_stops, stored.schedules, stored.shapes)


def _build(network: Network, learned: list[LinkTime] | None = None) -> StaticFeed:
    return build_feed(network, CONFIG, learned or [])


def test_slices_cut_service_at_the_periods_and_past_midnight() -> None:
    assert [(a, b, p.name) for a, b, p in slices(6 * 3600, 10 * 3600)] == [
        (21_600, 27_000, "early"),
        (27_000, 32_400, "am-peak"),
        (32_400, 36_000, "morning"),
    ]
    late = slices(22 * 3600, 1 * 3600)  # 22:00-01:00 runs past midnight
    assert late[0] == (79_200, 86_400, PERIODS[-1])
    assert late[1][:2] == (86_400, 90_000) and late[1][2].name == "early"
    assert period_at(90_000).name == "early"


def test_demo_feed_has_frequency_trips_per_line_direction_and_period(tmp_path: Path) -> None:
    feed = _build(_demo_network(tmp_path))
    files = dict(feed.files)
    routes = _rows(files, "routes.txt")
    trips = _rows(files, "trips.txt")
    frequencies = _rows(files, "frequencies.txt")
    assert len(routes) == 25
    assert {t["direction_id"] for t in trips} == {"0", "1"}
    # Service 06:00-23:00: seven slices (early from 06:00 to evening until 23:00) each way.
    assert len(trips) == 25 * 2 * 7
    assert {f["exact_times"] for f in frequencies} == {"0"}
    assert {f["trip_id"] for f in frequencies} == {t["trip_id"] for t in trips}
    a0 = [f for f in frequencies if f["trip_id"].startswith("A-0-")]
    assert [(f["trip_id"], f["start_time"], f["end_time"]) for f in a0][:2] == [
        ("A-0-0600", "06:00:00", "07:30:00"),
        ("A-0-0730", "07:30:00", "09:00:00"),
    ]
    stop_times = [s for s in _rows(files, "stop_times.txt") if s["trip_id"] == "A-0-0730"]
    assert (stop_times[0]["stop_id"], stop_times[-1]["stop_id"]) == ("massira", "bab-doukkala")
    assert stop_times[0]["arrival_time"] == "07:30:00"
    back = [s for s in _rows(files, "stop_times.txt") if s["trip_id"] == "A-1-0730"]
    assert [s["stop_id"] for s in back] == [s["stop_id"] for s in stop_times][::-1]
    # Rush hour runs at the peak default speed: distance / 13 km/h, rounded up per link.
    first, second = stop_times[0], stop_times[1]
    metres = float(second["shape_dist_traveled"]) - float(first["shape_dist_traveled"])
    seconds = int(second["arrival_time"][-2:]) + 60 * int(second["arrival_time"][3:5])
    assert abs(seconds - 30 * 60 - metres / (DEFAULT_KMH[True] / 3.6)) <= 1.5


def test_ids_and_bytes_do_not_depend_on_row_order(tmp_path: Path) -> None:
    network = _demo_network(tmp_path)
    shuffled = Network(
        stops=dict(reversed(list(network.stops.items()))),
        lines=list(reversed(network.lines)),
    )
    once, again = _build(network), _build(shuffled)
    assert once.zip() == again.zip()
    assert once.version == again.version
    # A line dropped from the network leaves every other id as it was.
    fewer = _build(
        Network(stops=network.stops, lines=[x for x in network.lines if x.route_id != "7"])
    )
    kept = {t["trip_id"] for t in _rows(dict(fewer.files), "trips.txt")}
    assert kept < {t["trip_id"] for t in _rows(dict(once.files), "trips.txt")}
    assert not any(t.startswith("7-") for t in kept)
    assert (
        trip_id("11", 1, 27_000) == "11-1-0730" and trip_id("11", 0, 86_400 + 1800) == "11-0-2430"
    )


def test_learned_medians_replace_the_default_speed(tmp_path: Path) -> None:
    network = _demo_network(tmp_path)
    plain = _build(network)
    line = next(x for x in network.lines if x.route_id == "A")
    first, second = line.stop_ids[0], line.stop_ids[1]
    learned = [
        LinkTime(
            route_id="A",
            from_stop=first,
            to_stop=second,
            period="am-peak",
            median_s=400.0,
            samples=MIN_SAMPLES,
        ),
        # Too few passages behind it: ignored.
        LinkTime(
            route_id="A",
            from_stop=first,
            to_stop=second,
            period="morning",
            median_s=900.0,
            samples=MIN_SAMPLES - 1,
        ),
    ]
    taught = _build(network, learned)

    def offset(feed: StaticFeed, trip: str) -> str:
        rows = [r for r in _rows(dict(feed.files), "stop_times.txt") if r["trip_id"] == trip]
        return rows[1]["arrival_time"]

    assert offset(taught, "A-0-0730") == "07:36:40"
    assert offset(taught, "A-0-0900") == offset(plain, "A-0-0900")
    assert taught.files["trips.txt"] == plain.files["trips.txt"]
    assert taught.version != plain.version


def test_lines_without_stops_or_service_are_left_out() -> None:
    stops = {
        s: NetworkStop(stop_id=s, name=s.upper(), lat=31.6 + k / 100, lon=-8.0)
        for k, s in enumerate(("a", "b"))
    }
    band = (ServiceBand(start_s=6 * 3600, end_s=23 * 3600, headway_s=600),)
    lines = [
        NetworkLine(route_id="no-service", stop_ids=("a", "b")),
        NetworkLine(route_id="one-stop", stop_ids=("a",), bands=band),
        NetworkLine(route_id="unknown-stops", stop_ids=("a", "x", "y"), bands=band),
        NetworkLine(route_id="ok", stop_ids=("a", "b"), bands=band),  # drawn through its stops
    ]
    feed = build_feed(Network(stops=stops, lines=lines), CONFIG)
    assert set(feed.lines) == {"ok"}
    assert {t.route_id for t in feed.feed.trips} == {"ok"}
    assert len(feed.lines["ok"].shape.points) == 2


async def test_demo_export_passes_the_canonical_rules(migrated: Settings, tmp_path: Path) -> None:
    parsed = parse_routes(_demo_file(tmp_path).read_text("utf-8"))
    with open_db(migrated) as conn:
        import_network(conn, parsed.network())
    async with ApiServer(migrated) as api, httpx.AsyncClient(base_url=api.base_url) as client:
        answer = await client.get("/gtfs/static.zip")  # open: no token
        again = await client.get(
            "/gtfs/static.zip", headers={"If-None-Match": answer.headers["etag"]}
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert again.status_code == 304
    path = tmp_path / "gtfs.zip"
    path.write_bytes(answer.content)
    with zipfile.ZipFile(path) as archive:
        assert set(archive.namelist()) == {
            f"{n}.txt"
            for n in (
                "agency",
                "routes",
                "stops",
                "shapes",
                "trips",
                "stop_times",
                "frequencies",
                "calendar",
                "feed_info",
            )
        }
        agency = _rows(archive, "agency.txt")[0]
        assert agency["agency_timezone"] == "Africa/Casablanca"
        assert agency["agency_name"] == "Supratours"
        info = _rows(archive, "feed_info.txt")[0]
        assert info["feed_lang"] == agency["agency_lang"] == "fr"
        assert answer.headers["etag"] == f'"{info["feed_version"]}"'
    today = datetime.now(UTC).date().isoformat()
    verdict = validate_static(path, tmp_path / "report", date=today)
    assert verdict.of("ERROR") == {}, verdict.notices
    assert verdict.returncode == 0, verdict.output
    # Not required, but the feed is clean: no warning either.
    assert verdict.of("WARNING") == {}, verdict.notices


async def test_no_network_no_feed(migrated: Settings) -> None:
    async with ApiServer(migrated) as api, httpx.AsyncClient(base_url=api.base_url) as client:
        answer = await client.get("/gtfs/static.zip")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_the_validator_does_fail_on_an_error(tmp_path: Path) -> None:
    """The suite's zero is meaningful: the same feed with one broken reference fails."""
    feed = _build(_demo_network(tmp_path))
    files = dict(feed.files)
    files["stop_times.txt"] = files["stop_times.txt"].replace(b",massira,", b",nowhere,", 1)
    path = tmp_path / "broken.zip"
    path.write_bytes(zip_bytes(files))
    verdict = validate_static(path, tmp_path / "report", date="2026-06-01")
    assert verdict.returncode == 1
    assert "foreign_key_violation" in verdict.of("ERROR")


def test_link_times_learned_from_stored_passages(migrated: Settings) -> None:
    # Three stops 1 km apart on a north-south line; bus B-1 runs it six times in the morning
    # period (09:00-12:00 local; Casablanca is UTC+1 outside Ramadan).
    stops = [
        BusStop(stop_id=f"s{k}", name=f"Stop {k}", lat=31.60 + k * 0.009, lon=-8.0)
        for k in range(3)
    ]
    schedule = LineSchedule(
        route="L",
        start_local=datetime(2026, 1, 1, 6).time(),
        end_local=datetime(2026, 1, 1, 23).time(),
        headway_s=600,
    )
    with open_db(migrated) as conn:
        import_network(
            conn,
            StoredNetwork(
                shapes={"L": [(s.lat, s.lon) for s in stops]},
                stops=stops,
                line_stops={"L": [s.stop_id for s in stops]},
                schedules=[schedule],
            ),
        )
    register_devices(migrated, DeviceRecord(device_id="B-1", fleet=Fleet.BUS, route="L"))
    base = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)  # 10:00 local
    rows = []
    for run in range(6):
        t0 = base + timedelta(minutes=20 * run)
        # Layover at s0 (fixes every 60 s for 5 min), then 200 + run s to s1, 300 s to s2.
        rows += [
            fix("B-1", t0 + timedelta(seconds=60 * k), stops[0].lat, -8.0, route="L")
            for k in range(6)
        ]
        depart = t0 + timedelta(seconds=300)
        at1 = depart + timedelta(seconds=200 + run)
        rows += [fix("B-1", depart + timedelta(seconds=100), 31.6045, -8.0, route="L")]
        rows += [
            fix("B-1", at1 + timedelta(seconds=k * 10), stops[1].lat + 0.0001, -8.0, route="L")
            for k in range(3)
        ]
        rows += [fix("B-1", at1 + timedelta(seconds=300), stops[2].lat, -8.0, route="L")]
    store(migrated, positions=rows)
    with open_db(migrated) as conn:
        learned = link_travel_times(
            conn,
            since=base - timedelta(hours=1),
            until=base + timedelta(hours=6),
            timezone="Africa/Casablanca",
            periods=[(p.name, p.start_s) for p in PERIODS],
        )
    by_link = {(t.from_stop, t.to_stop, t.period): t for t in learned}
    first = by_link["s0", "s1", "morning"]
    assert first.samples == 6 and first.median_s == pytest.approx(200 + 2.5)
    second = by_link["s1", "s2", "morning"]
    assert second.samples == 6 and second.median_s == pytest.approx(300)


def test_gtfs_building_and_matching_import_no_io() -> None:
    """telemetry.gtfs is pure: importing all of it loads no database driver nor storage."""
    code = (
        "import importlib, pkgutil, sys, telemetry.gtfs as g\n"
        "for m in pkgutil.iter_modules(g.__path__):\n"
        "    importlib.import_module(f'telemetry.gtfs.{m.name}')\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in {'psycopg', 'psycopg_pool'}"
        " or n.startswith('telemetry.storage')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@st.composite
def _networks(draw: st.DrawFn) -> Network:
    """A random line: a wiggly polyline of 2-8 points around Marrakech, 2-10 stops at random
    places along it (some off it), 1-3 service bands (maybe past midnight)."""
    points = draw(
        st.lists(
            st.tuples(st.floats(31.55, 31.70), st.floats(-8.10, -7.90)),
            min_size=2,
            max_size=8,
            unique=True,
        )
    )
    shape = Shape(points)
    assume(shape.length_m > 500)
    fractions = sorted(
        k / 100 for k in draw(st.lists(st.integers(0, 100), min_size=2, max_size=10, unique=True))
    )
    stops = {}
    for k, f in enumerate(fractions):
        lat, lon = shape.at(f * shape.length_m)
        east = draw(st.floats(-0.0005, 0.0005))
        stops[f"s{k}"] = NetworkStop(stop_id=f"s{k}", name=f"Stop {k}", lat=lat, lon=lon + east)
    starts = sorted(draw(st.lists(st.integers(0, 47), min_size=1, max_size=3, unique=True)))
    bands = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else draw(st.integers(0, 47))
        if end != start:
            bands.append(
                ServiceBand(
                    start_s=start * 1800, end_s=end * 1800, headway_s=draw(st.integers(60, 3600))
                )
            )
    line = NetworkLine(route_id="R", shape=points, stop_ids=tuple(stops), bands=tuple(bands))
    return Network(stops=stops, lines=[line])


@settings(max_examples=80, deadline=None)
@given(_networks())
def test_any_network_builds_a_consistent_feed(network: Network) -> None:
    feed = build_feed(network, CONFIG).feed
    assert bool(feed.trips) == bool(network.lines[0].bands)
    trip_ids = [t.trip_id for t in feed.trips]
    assert len(trip_ids) == len(set(trip_ids))
    assert {f.trip_id for f in feed.frequencies} == set(trip_ids)
    shape_length: dict[str, float] = {}
    for p in feed.shapes:
        shape_length[p.shape_id] = max(shape_length.get(p.shape_id, 0.0), p.shape_dist_traveled)
    by_trip: dict[str, list[Any]] = {}
    for st_ in feed.stop_times:
        by_trip.setdefault(st_.trip_id, []).append(st_)
    shapes = {t.trip_id: t.shape_id for t in feed.trips}
    for trip, rows in by_trip.items():
        assert len(rows) >= 2
        assert [r.stop_sequence for r in rows] == list(range(1, len(rows) + 1))
        assert all(b.arrival_time > a.departure_time for a, b in itertools.pairwise(rows))
        assert all(
            b.shape_dist_traveled > a.shape_dist_traveled for a, b in itertools.pairwise(rows)
        )
        assert rows[-1].shape_dist_traveled <= shape_length[shapes[trip]]
    # Windows of one line and direction never overlap: a start time names one trip.
    for direction in (0, 1):
        windows = sorted(
            (f.start_time, f.end_time)
            for f in feed.frequencies
            if f.trip_id.startswith(f"R-{direction}-")
        )
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(windows))
