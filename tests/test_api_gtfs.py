"""The GTFS-Realtime feed read by a real consumer (gtfs-realtime-bindings): every live bus;
with the network imported, each bus on a trip of /gtfs/static.zip says which, and the feed
passes the GTFS-Realtime rules (gtfs-rt-validator) against that static feed."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from google.transit import gtfs_realtime_pb2

from alerts.routes_file import parse_routes
from simulators.cli import main as simulators_main
from telemetry.decoding import PositionRow
from telemetry.gtfs.geometry import Shape
from telemetry.reference_data import Network
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.reference import import_network
from telemetry.topics import Fleet
from tests.support.api_server import ApiServer, fix, now_utc, register_devices, store
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
