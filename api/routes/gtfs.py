"""The open-data face of the bus fleet (no token needed): the static GTFS of the network and
GTFS-Realtime VehiclePositions whose trips are the static feed's (docs/gtfs.md)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import RuntimeDep
from api.errors import ERROR_RESPONSES, ApiError
from api.gtfs_feeds import GtfsState
from api.gtfs_rt import MEDIA_TYPE, vehicle_positions_feed
from telemetry.storage.positions import latest_positions

router = APIRouter(tags=["gtfs"])

ZIP_TYPE: Final = "application/zip"
# Consumers poll; one encoding per second per process is plenty (GTFS-RT advice: <= 30 s).
_CACHE_S = 1.0
_cache: dict[str, tuple[float, bytes]] = {}
# Per schema, like the cache: one API process serves one schema, the tests many.
_states: dict[str, GtfsState] = {}


def _state(schema: str) -> GtfsState:
    return _states.setdefault(schema, GtfsState())


@router.get(
    "/gtfs/static.zip",
    summary="The static GTFS of the bus network (zip, open)",
    response_class=Response,
    responses={
        200: {"content": {ZIP_TYPE: {}}, "description": "The feed (ETag: its feed_version)"},
        304: {"description": "Unchanged since the ETag sent in If-None-Match"},
        404: ERROR_RESPONSES[404],
    },
)
async def static_feed(request: Request, runtime: RuntimeDep) -> Response:
    """Stops, lines, shapes and frequency-based trips of the imported network, with run times
    learned from the stored traces; rebuilt at most every ``RASD_API_GTFS_STATIC_REFRESH_S``."""
    feed = await _state(runtime.settings.database_schema).static_feed(
        runtime.sync_pool, runtime.api
    )
    if not feed.lines:
        raise ApiError(
            404,
            "not_found",
            "no bus line with stops and a schedule: import the network with "
            "'python -m alerts routes import FILE.json'",
        )
    etag = f'"{feed.version}"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={int(runtime.api.gtfs_static_refresh_s)}",
        "Content-Disposition": 'attachment; filename="gtfs.zip"',
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(feed.zip(), media_type=ZIP_TYPE, headers=headers)


@router.get(
    "/gtfs-rt/vehicle-positions.pb",
    summary="GTFS-Realtime VehiclePositions of every live bus (protobuf, open)",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}}},
)
async def vehicle_positions(runtime: RuntimeDep) -> Response:
    """Buses with a fix younger than ``RASD_API_GTFS_MAX_AGE_S``, as a full dataset, each
    matched to its trip instance of ``/gtfs/static.zip`` when it is on one."""
    key = runtime.settings.database_schema
    hit = _cache.get(key)
    if hit is None or hit[0] <= time.monotonic():
        now = datetime.now(UTC)
        since = now - timedelta(seconds=runtime.api.gtfs_max_age_s)
        async with runtime.pool.connection(timeout=runtime.api.db_timeout_s) as conn:
            buses = await latest_positions(conn, fleets=["bus"], since=since)
        trips = await _state(key).trips(runtime.pool, runtime.sync_pool, runtime.api, buses, now)
        body = vehicle_positions_feed(buses, now, trips)
        _cache[key] = (time.monotonic() + _CACHE_S, body)
    else:
        body = hit[1]
    return Response(body, media_type=MEDIA_TYPE, headers={"Cache-Control": "max-age=1"})
