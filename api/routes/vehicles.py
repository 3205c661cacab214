"""Vehicles: the newest position of every bus and truck, and one vehicle's track."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import JSONResponse

from api.deps import DbDep, ReadCity, RuntimeDep
from api.errors import ERROR_RESPONSES, ApiError
from api.filters import VehicleFilter, split_list
from api.geojson import MEDIA_TYPE, feature_collection, point_feature, track_feature, wants_geojson
from api.live.board import iso_ms
from api.schemas import PositionsOut, TrackOut, TrackPointOut, VehicleOut
from api.timerange import bucket_step, resolve_range
from telemetry.storage.devices import get_device
from telemetry.storage.positions import LatestPosition, latest_positions, track

router = APIRouter(prefix="/api/v1/vehicles", tags=["vehicles"], responses=ERROR_RESPONSES)

FormatParam = Annotated[
    str | None, Query(pattern="^(json|geojson)$", description="json (default) or geojson")
]
GEOJSON_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {MEDIA_TYPE: {}}, "description": "JSON, or GeoJSON with format=geojson"}
}


def vehicle_out(row: LatestPosition, now: datetime, stale_after_s: float) -> VehicleOut:
    """A stored newest fix with its age."""
    age = max(0.0, (now - row.time).total_seconds())
    return VehicleOut(
        id=row.device_id,
        fleet=row.fleet,
        label=row.label,
        route=row.route,
        district=row.district,
        ts=row.time,
        received_at=row.received_at,
        lat=row.lat,
        lon=row.lon,
        speed_kmh=row.speed_kmh,
        heading_deg=row.heading_deg,
        accuracy_m=row.accuracy_m,
        age_s=round(age, 3),
        stale=age > stale_after_s,
    )


@router.get("/positions", summary="Newest position of every vehicle", responses=GEOJSON_RESPONSE)
async def positions(
    _: ReadCity,
    conn: DbDep,
    runtime: RuntimeDep,
    fleet: Annotated[list[str] | None, Query(description="bus and/or truck")] = None,
    route: Annotated[list[str] | None, Query()] = None,
    district: Annotated[list[str] | None, Query()] = None,
    bbox: Annotated[str | None, Query(description="west,south,east,north (lon/lat)")] = None,
    format: FormatParam = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Every vehicle's newest stored fix, flagged stale after ``RASD_API_STALE_AFTER_S``."""
    filt = VehicleFilter.from_params(fleet, route, bbox)
    rows = await latest_positions(
        conn,
        fleets=filt.fleets,
        routes=filt.routes,
        districts=split_list("district", district),
        bbox=filt.bbox.as_tuple() if filt.bbox else None,
    )
    now = datetime.now(UTC)
    stale_after = runtime.api.stale_after_s
    vehicles = [vehicle_out(r, now, stale_after) for r in rows]
    if wants_geojson(format, accept):
        features = [
            point_feature(v.lon, v.lat, v.model_dump(mode="json", exclude={"lat", "lon"}), v.id)
            for v in vehicles
        ]
        body = feature_collection(features, server_ts=iso_ms(now), stale_after_s=stale_after)
        return JSONResponse(body, media_type=MEDIA_TYPE)
    return PositionsOut(
        server_ts=now, stale_after_s=stale_after, count=len(vehicles), vehicles=vehicles
    )


@router.get("/{device_id}/track", summary="A vehicle's track", responses=GEOJSON_RESPONSE)
async def vehicle_track(
    device_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    _: ReadCity,
    conn: DbDep,
    runtime: RuntimeDep,
    start: Annotated[datetime | None, Query(description="RFC 3339; default end - 1 h")] = None,
    end: Annotated[datetime | None, Query(description="RFC 3339; default now")] = None,
    max_points: Annotated[
        int | None, Query(ge=2, le=100_000, description="downsample to at most this many")
    ] = None,
    format: FormatParam = None,
    accept: Annotated[str | None, Header()] = None,
) -> Any:
    """Fixes in [start, end), oldest first; ``max_points`` keeps the last fix per time bucket."""
    api = runtime.api
    span = resolve_range(
        start,
        end,
        now=datetime.now(UTC),
        default_span=timedelta(hours=1),
        max_span=timedelta(hours=api.track_max_hours),
    )
    device = await get_device(conn, device_id)
    if device is None or device.fleet not in ("bus", "truck"):
        raise ApiError(404, "not_found", f"no vehicle {device_id}")
    step = bucket_step(span.span, max_points) if max_points else None
    cap = min(max_points, api.track_max_points) if max_points else api.track_max_points
    points = await track(conn, device_id, span.start, span.end, cap + 1, step)
    if len(points) > cap:
        raise ApiError(
            422,
            "too_many_points",
            f"more than {cap} fixes in range: narrow it or pass max_points to downsample",
        )
    if wants_geojson(format, accept):
        feature = track_feature(
            device_id,
            [(p.lon, p.lat) for p in points],
            [iso_ms(p.time) for p in points],
            {"fleet": device.fleet, "start": iso_ms(span.start), "end": iso_ms(span.end)},
        )
        features = [feature] if points else []
        return JSONResponse(feature_collection(features), media_type=MEDIA_TYPE)
    return TrackOut(
        device_id=device_id,
        start=span.start,
        end=span.end,
        downsampled=step is not None,
        step_s=step.total_seconds() if step else None,
        count=len(points),
        points=[
            TrackPointOut(
                ts=p.time,
                lat=p.lat,
                lon=p.lon,
                speed_kmh=p.speed_kmh,
                heading_deg=p.heading_deg,
                accuracy_m=p.accuracy_m,
                route=p.route,
            )
            for p in points
        ],
    )
