"""The GTFS-Realtime feed read by a real consumer (gtfs-realtime-bindings): every live bus."""

from __future__ import annotations

from datetime import timedelta

import httpx
from google.transit import gtfs_realtime_pb2

from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.topics import Fleet
from tests.support.api_server import ApiServer, fix, now_utc, register_devices, store


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
    assert first.trip.route_id == "1" and first.vehicle.label == "bus B-001"
    assert abs(first.position.latitude - 31.6) < 1e-5
    assert abs(first.position.speed - 10.0) < 1e-4  # 36 km/h in m/s
    assert first.position.bearing == 180.0
    assert first.timestamp == int(now.timestamp())
