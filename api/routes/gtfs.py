"""The open-data face of the bus fleet: GTFS-Realtime VehiclePositions (no token needed)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import RuntimeDep
from api.gtfs_rt import MEDIA_TYPE, vehicle_positions_feed
from telemetry.storage.positions import latest_positions

router = APIRouter(tags=["gtfs-realtime"])

# Consumers poll; one encoding per second per process is plenty (GTFS-RT advice: <= 30 s).
_CACHE_S = 1.0
_cache: dict[str, tuple[float, bytes]] = {}


@router.get(
    "/gtfs-rt/vehicle-positions.pb",
    summary="GTFS-Realtime VehiclePositions of every live bus (protobuf, open)",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}}},
)
async def vehicle_positions(runtime: RuntimeDep) -> Response:
    """Buses with a fix younger than ``RASD_API_GTFS_MAX_AGE_S``, as a full dataset."""
    key = runtime.settings.database_schema
    hit = _cache.get(key)
    if hit is None or hit[0] <= time.monotonic():
        now = datetime.now(UTC)
        since = now - timedelta(seconds=runtime.api.gtfs_max_age_s)
        async with runtime.pool.connection(timeout=runtime.api.db_timeout_s) as conn:
            buses = await latest_positions(conn, fleets=["bus"], since=since)
        body = vehicle_positions_feed(buses, now)
        _cache[key] = (time.monotonic() + _CACHE_S, body)
    else:
        body = hit[1]
    return Response(body, media_type=MEDIA_TYPE, headers={"Cache-Control": "max-age=1"})
