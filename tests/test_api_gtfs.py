"""The GTFS-Realtime feed read by a real consumer (gtfs-realtime-bindings): every live bus;
with the network imported, each bus on a trip of /gtfs/static.zip says which, and the feed
passes the GTFS-Realtime rules (gtfs-rt-validator) against that static feed."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from google.transit import gtfs_realtime_pb2

from alerts.routes_file import parse_routes
from simulators.cli import main as simulators_main
from simulators.devices import build_devices, registry_records
from simulators.engine import Engine
from simulators.network import network_file
from simulators.scenario import Scenario
from telemetry.alert_events import Severity
from telemetry.alert_records import NewAlert
from telemetry.decoding import Limits, MessageDecoder, PositionRow
from telemetry.gtfs.geometry import Shape
from telemetry.reference_data import Network
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.alerts import open_alert
from telemetry.storage.reference import import_network
from telemetry.topics import Fleet
from tests.support.api_server import (
    ApiServer,
    eventually,
    fix,
    now_utc,
    register_devices,
    store,
)
from tests.support.database import open_db
from tests.support.gtfs_validation import validate_realtime


async def test_gtfs_rt_consumer_finds_every_live_bus(migrated: Settings) -> None:
    buses = [f"B-{i:03d}" for i in range(1, 26)]
    register_devices(
        migrated,
        *(
            DeviceRecord(device_id=b, fleet=Fleet.BUS, route=str(i % 5 + 1), label=f"bus {b}")
            for i, b in enumerate(buses)
        ),
        DeviceRecord(device_id="B-OLD", fleet=Fleet.BUS, route="1"),
        DeviceRecord(device_id="T-001", fleet=Fleet.TRUCK),
    )
    now = now_utc()
    store(
        migrated,
        positions=[
            *(
                fix(b, now - timedelta(seconds=i), 31.6 + i * 1e-3, -8.0, speed=36.0, heading=180.0)
                for i, b in enumerate(buses)
            ),
            fix("B-OLD", now - timedelta(hours=2), 31.6, -8.0),  # out of service: not live
            fix("T-001", now, 31.7, -8.07),  # trucks are not public transport
        ],
    )
    async with ApiServer(migrated) as api, httpx.AsyncClient(base_url=api.base_url) as client:
        answer = await client.get("/gtfs-rt/vehicle-positions.pb")  # open: no token
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-protobuf"
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.ParseFromString(answer.content)
    assert feed.header.gtfs_realtime_version == "2.0"
    assert feed.header.incrementality == gtfs_realtime_pb2.FeedHeader.FULL_DATASET
    assert abs(feed.header.timestamp - now.timestamp()) < 3600
    seen = {e.vehicle.vehicle.id: e.vehicle for e in feed.entity if e.HasField("vehicle")}
    assert set(seen) == set(buses)
    first = seen["B-001"]
    # No network imported: no static trips, so no bus claims one.
    assert not first.HasField("trip") and first.vehicle.label == "bus B-001"
    assert abs(first.position.latitude - 31.6) < 1e-5
    assert abs(first.position.speed - 10.0) < 1e-4  # 36 km/h in m/s
    assert first.position.bearing == 180.0
    assert first.timestamp == int(now.timestamp())


def _network_running_all_day(tmp_path: Path) -> Network:
    """The demo network, with every line in service around the clock (so the test does not
    depend on the hour it runs at)."""
    path = tmp_path / "network.json"
    assert simulators_main(["network", "demo", "-o", str(path)]) == 0
    body = json.loads(path.read_text("utf-8"))
    body["schedules"] = [
        {**band, "start_local": start, "end_local": end}
        for band in body["schedules"]
        for start, end in (("00:00", "12:00"), ("12:00", "00:00"))
    ]
    return parse_routes(json.dumps(body)).network()


def _drive(
    device: str, shape: Shape, start_m: float, end_m: float, t0: datetime, t1: datetime
) -> list[PositionRow]:
    """Fixes every 10 s from ``start_m`` to ``end_m`` along ``shape`` between t0 and t1."""
    steps = int((t1 - t0).total_seconds() // 10)
    rows = []
    for k in range(steps + 1):
        lat, lon = shape.at(start_m + (end_m - start_m) * k / steps)
        rows.append(fix(device, t0 + timedelta(seconds=10 * k), lat, lon, route="A"))
    return rows


async def test_vehicle_positions_carry_the_static_feeds_trips(
    migrated: Settings, tmp_path: Path
) -> None:
    network = _network_running_all_day(tmp_path)
    with open_db(migrated) as conn:
        import_network(conn, network)
    shape = Shape(network.shapes["A"])
    register_devices(
        migrated,
        *(DeviceRecord(device_id=f"B-{k}", fleet=Fleet.BUS, route="A") for k in (1, 2, 3)),
        DeviceRecord(device_id="B-9", fleet=Fleet.BUS, route="99"),  # a line nobody imported
    )
    now = now_utc().replace(microsecond=0)
    left = now - timedelta(minutes=8)
    a, b = shape.points[0], shape.points[-1]
    rows = [
        # B-1 waited at Massira (terminus A), left 8 minutes ago and is on its way to B.
        *(fix("B-1", left - timedelta(minutes=k), *a, route="A") for k in range(1, 6)),
        *_drive("B-1", shape, 0.0, 2500.0, left, now),
        # B-2 left Bab Doukkala (terminus B) at the same time, coming back to A.
        *(fix("B-2", left - timedelta(minutes=k), *b, route="A") for k in range(1, 6)),
        *_drive("B-2", shape, shape.length_m, shape.length_m - 2500.0, left, now),
        # B-3 has been parked at A for an hour: out of service.
        *(fix("B-3", now - timedelta(minutes=k), *a, route="A") for k in range(0, 60, 5)),
        fix("B-9", now, *a, route="99"),
    ]
    store(migrated, positions=rows)
    async with ApiServer(migrated) as api, httpx.AsyncClient(base_url=api.base_url) as client:
        static = await client.get("/gtfs/static.zip")
        answer = await client.get("/gtfs-rt/vehicle-positions.pb")
    assert static.status_code == 200 and answer.status_code == 200
    feed = gtfs_realtime_pb2.FeedMessage()
    feed.ParseFromString(answer.content)
    seen = {e.vehicle.vehicle.id: e.vehicle for e in feed.entity}
    assert set(seen) == {"B-1", "B-2", "B-3", "B-9"}
    with zipfile.ZipFile(io.BytesIO(static.content)) as archive:
        trips = {
            r["trip_id"]: r
            for r in csv.DictReader(io.StringIO(archive.read("trips.txt").decode("utf-8")))
        }
    # At 2500 m in 8 min (52 m per 10 s fix), its last fix within 150 m of the terminus, when
    # the matching says it left, is the third of the run.
    local = (left + timedelta(seconds=20)).astimezone(ZoneInfo("Africa/Casablanca"))
    for device, direction in (("B-1", 0), ("B-2", 1)):
        trip = seen[device].trip
        assert trip.route_id == "A" and trip.direction_id == direction, device
        assert trips[trip.trip_id]["direction_id"] == str(direction)
        assert trip.schedule_relationship == gtfs_realtime_pb2.TripDescriptor.UNSCHEDULED
        assert trip.start_date == local.strftime("%Y%m%d")
        assert trip.start_time == local.strftime("%H:%M:%S")
    assert not seen["B-3"].HasField("trip") and not seen["B-9"].HasField("trip")

    static_path, vp_path = tmp_path / "gtfs.zip", tmp_path / "vehicle-positions.pb"
    static_path.write_bytes(static.content)
    vp_path.write_bytes(answer.content)
    verdict = validate_realtime(
        static_path, vp_path, tmp_path / "rt-report", at=now.isoformat().replace("+00:00", "Z")
    )
    assert verdict.of("ERROR") == {}, verdict.notices
    assert verdict.returncode == 0, verdict.output
    # The same message naming a trip the static feed lacks does fail.
    feed.entity[0].vehicle.trip.trip_id = "no-such-trip"
    vp_path.write_bytes(feed.SerializeToString())
    broken = validate_realtime(
        static_path, vp_path, tmp_path / "rt-broken", at=now.isoformat().replace("+00:00", "Z")
    )
    assert broken.returncode == 1 and "E003" in broken.of("ERROR"), broken.notices


def _running_now(start: datetime, buses: int, lines: list[str]) -> Scenario:
    """Buses of ``lines`` whose service began at ``start`` (local) and lasts 8 hours, so the
    test runs mid-service whatever the hour; no defects (they have their own tests)."""
    local = start.astimezone(ZoneInfo("Africa/Casablanca"))
    return Scenario.model_validate(
        {
            "name": "gtfs-rt",
            "buses": {
                "count": buses,
                "lines": lines,
                "service_start": local.strftime("%H:%M"),
                "service_end": (local + timedelta(hours=8)).strftime("%H:%M"),
            },
            "trucks": {"count": 0},
            "lights": {"count": 0},
            "defects": {"enabled": False},
        }
    )


def _simulated_rows(scenario: Scenario, start: datetime, end: datetime) -> list[PositionRow]:
    """The buses' fixes between ``start`` and ``end``, decoded as the ingestor does."""
    registry = {b.device_id: Fleet.BUS for b in build_devices(scenario).buses}
    decoder = MessageDecoder(Limits(prefix="rasd/v1"))
    engine = Engine(
        scenario,
        seed=5,
        start=start.timestamp(),
        duration=(end - start).total_seconds(),
        prefix="rasd/v1",
    )
    rows: list[PositionRow] = []
    for message in engine.messages():
        received = datetime.fromtimestamp(message.at, UTC)
        rows += decoder.decode(message.topic, message.payload, received, registry).positions
    return rows


def _bus_alert(kind: str, device: str, route: str, at: datetime) -> NewAlert:
    return NewAlert(
        kind=kind,
        asset_kind=Fleet.BUS,
        asset_key=device,
        opened_at=at,
        severity=Severity.MEDIUM,
        device_id=device,
        summary=f"{device} {kind}",
        details={"route": route},
    )


async def _feeds(
    client: httpx.AsyncClient, into: Path, label: str
) -> dict[str, gtfs_realtime_pb2.FeedMessage]:
    """The three GTFS-Realtime feeds, written to ``into/{label}-{feed}.pb`` and parsed."""
    out = {}
    for name in ("vehicle-positions", "trip-updates", "service-alerts"):
        answer = await client.get(f"/gtfs-rt/{name}.pb")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"] == "application/x-protobuf"
        (into / f"{label}-{name}.pb").write_bytes(answer.content)
        message = gtfs_realtime_pb2.FeedMessage()
        message.ParseFromString(answer.content)
        out[name] = message
    return out


async def test_realtime_feeds_pass_the_rules_while_buses_run(
    migrated: Settings, tmp_path: Path
) -> None:
    """Simulated buses of three lines run for 50 minutes up to now; the three feeds are read
    twice while their fixes arrive and pass gtfs-rt-validator against the static feed each
    time. TripUpdates predict the stops ahead of every running bus; the alerts name a detour
    and a line whose buses are all offline (not a line with one bus offline of several)."""
    # On the minute: the service starts exactly when the simulation does.
    now = now_utc().replace(second=0, microsecond=0)
    start = now - timedelta(minutes=50)
    scenario = _running_now(start, 12, ["A", "11", "19"])
    devices = build_devices(scenario)
    with open_db(migrated) as conn:
        import_network(conn, parse_routes(json.dumps(network_file(scenario, devices))).network())
    register_devices(migrated, *registry_records(devices, scenario))
    on_19 = sorted(b.device_id for b in devices.buses if b.line_id == "19")
    detoured = next(b.device_id for b in devices.buses if b.line_id == "A")
    rows = [r for r in _simulated_rows(scenario, start, now) if r.device_id not in on_19]
    with open_db(migrated) as conn:
        open_alert(conn, _bus_alert("route_deviation", detoured, "A", now - timedelta(minutes=3)))
        for device in on_19:
            open_alert(conn, _bus_alert("vehicle_offline", device, "19", start))
        # One bus of line 11 offline while the others run: no news for its passengers.
        lone = next(b.device_id for b in devices.buses if b.line_id == "11")
        open_alert(conn, _bus_alert("vehicle_offline", lone, "11", start))
    earlier = now - timedelta(minutes=2)
    async with ApiServer(migrated) as api, httpx.AsyncClient(base_url=api.base_url) as client:
        static = await client.get("/gtfs/static.zip")
        assert static.status_code == 200
        static_path = tmp_path / "gtfs.zip"
        static_path.write_bytes(static.content)
        rounds = []
        for label, arrived in (
            ("first", [r for r in rows if r.received_at <= earlier]),
            ("second", [r for r in rows if r.received_at > earlier]),
        ):
            store(migrated, positions=arrived)
            newest = int(max(r.time for r in arrived).timestamp())

            async def taken_in(newest: int = newest) -> bool:
                # The feeds share one snapshot a second: wait for one taken after the store.
                answer = await client.get("/gtfs-rt/vehicle-positions.pb")
                message = gtfs_realtime_pb2.FeedMessage()
                message.ParseFromString(answer.content)
                return bool(max(e.vehicle.timestamp for e in message.entity) >= newest)

            await eventually(taken_in, what=f"the {label} fixes in VehiclePositions")
            feeds = await _feeds(client, tmp_path, label)
            at = datetime.fromtimestamp(feeds["trip-updates"].header.timestamp, UTC)
            verdict = validate_realtime(
                static_path,
                tmp_path / f"{label}-vehicle-positions.pb",
                tmp_path / f"{label}-report",
                at=at.isoformat().replace("+00:00", "Z"),
                trip_updates=tmp_path / f"{label}-trip-updates.pb",
                alerts=tmp_path / f"{label}-service-alerts.pb",
            )
            assert verdict.of("ERROR") == {}, verdict.notices
            assert verdict.returncode == 0, verdict.output
            rounds.append(feeds)
        # The next stop of a bus with more to go: somewhere a bus is on its way to.
        stop = next(
            e.trip_update.stop_time_update[0].stop_id
            for e in rounds[-1]["trip-updates"].entity
            if len(e.trip_update.stop_time_update) >= 2
        )
        arrivals = await client.get(f"/stops/{stop}/arrivals.json")  # open: no token
        listed = await client.get("/stops.json")
        missing = await client.get("/stops/no-such-stop/arrivals.json")
    assert missing.status_code == 404

    with zipfile.ZipFile(io.BytesIO(static.content)) as archive:

        def table(name: str) -> list[dict[str, str]]:
            return list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))

        trips = {r["trip_id"]: r for r in table("trips.txt")}
        stop_times = {(r["trip_id"], int(r["stop_sequence"])): r for r in table("stop_times.txt")}
        routes = {r["route_id"] for r in table("routes.txt")}
        stops = {r["stop_id"] for r in table("stops.txt")}
    feeds = rounds[-1]
    positions = {e.vehicle.vehicle.id: e.vehicle for e in feeds["vehicle-positions"].entity}
    updates = [e.trip_update for e in feeds["trip-updates"].entity]
    header = feeds["trip-updates"].header.timestamp
    # Every bus reporting is in VehiclePositions; those running a trip (not waiting at a
    # terminus) are in TripUpdates, with the same trip, one entity each.
    assert set(positions) == {b.device_id for b in devices.buses} - set(on_19)
    running = {u.vehicle.id for u in updates}
    assert len(running) == len(updates) >= 2
    for update in updates:
        assert update.trip == positions[update.vehicle.id].trip
        assert update.trip.trip_id in trips and update.trip.route_id in routes
        assert update.trip.schedule_relationship == gtfs_realtime_pb2.TripDescriptor.UNSCHEDULED
        times = []
        for stu in update.stop_time_update:
            row = stop_times[update.trip.trip_id, stu.stop_sequence]
            assert row["stop_id"] == stu.stop_id
            assert stu.arrival.time >= header - 1 and stu.departure.time >= stu.arrival.time
            times += [stu.arrival.time, stu.departure.time]
        assert times == sorted(times) and len(set(times[::2])) == len(times) // 2
        # The stops ahead of the bus, up to the end of its trip.
        last = max(s for t, s in stop_times if t == update.trip.trip_id)
        assert update.stop_time_update[-1].stop_sequence == last
    alerts = {e.id: e.alert for e in feeds["service-alerts"].entity}
    assert set(alerts) == {"detour-A", "no-service-19"}
    assert alerts["detour-A"].effect == gtfs_realtime_pb2.Alert.DETOUR
    assert alerts["no-service-19"].effect == gtfs_realtime_pb2.Alert.NO_SERVICE
    assert [e.route_id for e in alerts["detour-A"].informed_entity] == ["A"]

    assert arrivals.status_code == 200 and arrivals.headers["content-type"] == "application/json"
    body = arrivals.json()
    assert body["stop_id"] == stop
    # Every bus on its way there, but those ending their trip there (no one boards them).
    expected = sorted(
        u.vehicle.id for u in updates if any(s.stop_id == stop for s in u.stop_time_update[:-1])
    )
    assert expected
    found = [b for line in body["lines"] for b in line["arrivals"]]
    assert sorted(b["vehicle_id"] for b in found) == expected
    for line in body["lines"]:
        assert line["route_id"] in routes and line["headsign"]
        ins = [b["in_s"] for b in line["arrivals"]]
        assert ins == sorted(ins) and all(s >= 0 for s in ins)

    # The stop search's list: every boarding stop once, with the lines boarding there.
    assert listed.status_code == 200
    search = {s["stop_id"]: s for s in listed.json()}
    assert len(search) == len(listed.json())
    assert set(search) <= set(stops)
    assert {line["route_id"] for line in body["lines"]} == set(search[stop]["routes"])
