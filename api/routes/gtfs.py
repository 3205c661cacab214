"""The open-data face of the bus fleet (no token needed): the static GTFS of the network,
GTFS-Realtime VehiclePositions, TripUpdates and Alerts whose trips, stops and lines are the
static feed's, a stop's next arrivals as JSON, and the passengers' pages that read it: a stop's
next buses, the stop search and map, and the stops' printable QR codes (docs/gtfs.md)."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote

import segno
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from google.transit import gtfs_realtime_pb2
from pydantic import BaseModel, ConfigDict
from starlette.requests import HTTPConnection

from api.deps import RuntimeDep
from api.errors import ERROR_RESPONSES, ApiError
from api.gtfs_feeds import Live, Snapshot
from api.gtfs_rt import (
    MEDIA_TYPE,
    PredictedTrip,
    ServiceAlert,
    service_alerts_feed,
    trip_updates_feed,
    vehicle_positions_feed,
)
from api.routes.pages import localised_page
from api.runtime import Runtime
from telemetry.i18n import Audience
from telemetry.storage.gtfs import BusAlert, open_bus_alerts
from telemetry.storage.positions import LatestPosition, latest_positions

router = APIRouter(tags=["gtfs"])

ZIP_TYPE: Final = "application/zip"
# Consumers poll; one snapshot per second per process is plenty (GTFS-RT advice: <= 30 s), and
# the three feeds of one second agree on which bus runs which trip.
_CACHE_S = 1.0
#: Rasd's alert kinds that change a passenger's trip: a bus off its line's route is on a
#: detour; a line whose every bus is offline in service hours runs no service anyone can see.
DETOUR_KINDS: Final = ("route_deviation",)
NO_SERVICE_KINDS: Final = ("vehicle_offline",)


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
    learned from the stored traces; rebuilt in the background every
    ``RASD_API_GTFS_STATIC_REFRESH_S``."""
    feed = await runtime.gtfs.static_feed(runtime.sync_pool, runtime.api)
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


async def _live(runtime: Runtime, *, learned: bool = False) -> Snapshot:
    """This second's live buses (fix younger than ``gtfs_max_age_s``), their trips and their
    predictions; ``learned``: with the travel model learned from the traces (the first such
    call of a process waits for that scan; VehiclePositions never does)."""
    state = runtime.gtfs
    if learned:
        await state.travel_model(runtime.sync_pool, runtime.api)
    if state.snapshot is not None and state.snapshot_until > time.monotonic():
        return state.snapshot
    now = datetime.now(UTC)
    since = now - timedelta(seconds=runtime.api.gtfs_max_age_s)
    async with runtime.pool.connection(timeout=runtime.api.db_timeout_s) as conn:
        buses = await latest_positions(conn, fleets=["bus"], since=since)
    live = await state.live(runtime.pool, runtime.sync_pool, runtime.api, buses, now)
    predicted = _predicted(buses, live)
    # Several buses share a frequency-based trip_id, and consumers (and the validator's
    # cross-feed check, E047) pair a trip_id with the last vehicle naming it in each feed: the
    # buses with a TripUpdate go last in VehiclePositions, in the TripUpdates' order.
    updated = {p.vehicle_id for p in predicted}
    ordered = sorted(buses, key=lambda b: b.device_id in updated)
    snapshot = Snapshot(buses=ordered, live=live, predicted=predicted)
    state.snapshot, state.snapshot_until = snapshot, time.monotonic() + _CACHE_S
    return snapshot


def _predicted(buses: list[LatestPosition], live: Live) -> list[PredictedTrip]:
    """The buses with arrivals ahead, in the order of ``buses``, one per trip instance."""
    out: list[PredictedTrip] = []
    seen: set[tuple[str, str, str]] = set()
    for bus in buses:
        on = live.trips.get(bus.device_id)
        if on is None or not on.arrivals:
            continue
        instance = (on.trip.trip_id, on.trip.start_date, on.trip.start_time)
        if instance in seen:  # two buses leaving a terminus in the same second
            continue
        seen.add(instance)
        out.append(
            PredictedTrip(
                vehicle_id=bus.device_id,
                label=bus.label,
                trip=on.trip,
                arrivals=on.arrivals,
                observed=on.observed,
            )
        )
    return out


def _protobuf(body: bytes) -> Response:
    return Response(body, media_type=MEDIA_TYPE, headers={"Cache-Control": "max-age=1"})


@router.get(
    "/gtfs-rt/vehicle-positions.pb",
    summary="GTFS-Realtime VehiclePositions of every live bus (protobuf, open)",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}}},
)
async def vehicle_positions(runtime: RuntimeDep) -> Response:
    """Buses with a fix younger than ``RASD_API_GTFS_MAX_AGE_S``, as a full dataset, each
    matched to its trip instance of ``/gtfs/static.zip`` when it is on one."""
    snap = await _live(runtime)
    trips = {device: t.trip for device, t in snap.live.trips.items()}
    return _protobuf(vehicle_positions_feed(snap.buses, snap.live.now, trips))


@router.get(
    "/gtfs-rt/trip-updates.pb",
    summary="GTFS-Realtime TripUpdates: predicted arrivals of every bus on a trip (open)",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}}},
)
async def trip_updates(runtime: RuntimeDep) -> Response:
    """For every live bus on a trip instance, its predicted arrival and departure at each
    stop still ahead (full dataset; the trips of ``/gtfs/static.zip``)."""
    snap = await _live(runtime, learned=True)
    return _protobuf(trip_updates_feed(snap.predicted, snap.live.now))


def _service_alerts(rows: list[BusAlert], lines: set[str]) -> list[ServiceAlert]:
    """One alert per line and condition: a detour while any of its buses is off its route, no
    service while every bus registered on it is offline."""
    detours: dict[str, list[BusAlert]] = {}
    offline: dict[str, list[BusAlert]] = {}
    for row in rows:
        if row.route not in lines:
            continue
        into = detours if row.kind in DETOUR_KINDS else offline
        into.setdefault(row.route, []).append(row)
    out = []
    for route, found in sorted(detours.items()):
        buses = len({r.device_id for r in found})
        out.append(
            ServiceAlert(
                alert_id=f"detour-{route}",
                route_id=route,
                effect=gtfs_realtime_pb2.Alert.Effect.DETOUR,
                since=min(r.opened_at for r in found),
                header=f"Ligne {route} : déviation",
                description=f"{buses} bus de la ligne {route} hors de son itinéraire habituel.",
            )
        )
    for route, found in sorted(offline.items()):
        buses = len({r.device_id for r in found})
        if buses < found[0].line_buses:
            continue
        out.append(
            ServiceAlert(
                alert_id=f"no-service-{route}",
                route_id=route,
                effect=gtfs_realtime_pb2.Alert.Effect.NO_SERVICE,
                since=max(r.opened_at for r in found),
                header=f"Ligne {route} : aucun bus en circulation",
                description=f"Aucun bus de la ligne {route} ne donne sa position en ce moment.",
            )
        )
    return out


@router.get(
    "/gtfs-rt/service-alerts.pb",
    summary="GTFS-Realtime Alerts: detours and lines without service (protobuf, open)",
    response_class=Response,
    responses={200: {"content": {MEDIA_TYPE: {}}}},
)
async def service_alerts(runtime: RuntimeDep) -> Response:
    """Rasd's open alerts that change a passenger's trip, per line of ``/gtfs/static.zip``:
    a detour (a bus off its route), no service (every bus of the line offline)."""
    live = (await _live(runtime)).live
    async with runtime.pool.connection(timeout=runtime.api.db_timeout_s) as conn:
        rows = await open_bus_alerts(conn, (*DETOUR_KINDS, *NO_SERVICE_KINDS))
    alerts = _service_alerts(rows, set(live.feed.lines))
    return _protobuf(service_alerts_feed(alerts, live.now, runtime.api.gtfs_lang))


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class NextBus(_Out):
    """One bus expected at the stop."""

    vehicle_id: str
    arrival: datetime
    in_s: int  # seconds from ``generated_at``


class LineArrivals(_Out):
    """The buses of one line and direction expected at the stop, soonest first."""

    route_id: str
    direction_id: int
    headsign: str
    arrivals: list[NextBus]


class StopArrivals(_Out):
    """A stop's next arrivals per line (open: the next-bus page reads it)."""

    stop_id: str
    name: str
    lat: float
    lon: float
    generated_at: datetime
    lines: list[LineArrivals]


class StopOut(_Out):
    """A stop of the static feed and the lines that board there."""

    stop_id: str
    name: str
    lat: float
    lon: float
    routes: list[str]


@router.get(
    "/stops.json",
    summary="Every stop of the static feed with its lines (JSON, open: the stop search)",
    response_model=list[StopOut],
)
async def stops(runtime: RuntimeDep) -> Response:
    """The stops where a line boards (not only alights), by name, each with those lines."""
    feed = (await _live(runtime)).live.feed
    serving: dict[str, set[str]] = {}
    for line in feed.lines.values():
        for pattern in line.trips:
            for stop_id in pattern.stop_ids[:-1]:
                serving.setdefault(stop_id, set()).add(line.route_id)
    body = [
        StopOut(
            stop_id=s.stop_id,
            name=s.stop_name,
            lat=s.stop_lat,
            lon=s.stop_lon,
            routes=sorted(serving[s.stop_id], key=lambda r: (len(r), r)),
        )
        for s in sorted(feed.feed.stops, key=lambda s: (s.stop_name, s.stop_id))
        if s.stop_id in serving
    ]
    payload = "[" + ",".join(b.model_dump_json() for b in body) + "]"
    return Response(payload, media_type="application/json", headers={"Cache-Control": "max-age=60"})


@router.get(
    "/stops/{stop_id}/arrivals.json",
    summary="A stop's next predicted arrivals per line (JSON, open)",
    response_model=StopArrivals,
    responses={404: ERROR_RESPONSES[404]},
)
async def stop_arrivals(stop_id: str, runtime: RuntimeDep) -> Response:
    """The buses on their way to the stop, per line and direction, soonest first, as
    ``/gtfs-rt/trip-updates.pb`` predicts them."""
    snap = await _live(runtime, learned=True)
    live = snap.live
    stop = next((s for s in live.feed.feed.stops if s.stop_id == stop_id), None)
    if stop is None:
        raise ApiError(404, "not_found", f"no stop {stop_id!r} in the static feed")
    headsigns = {t.trip_id: t.trip_headsign for t in live.feed.feed.trips}
    # Every line and direction boarding here (not at its last stop), with or without a bus.
    lines: dict[tuple[str, int], list[NextBus]] = {}
    names: dict[tuple[str, int], str] = {}
    for line in live.feed.lines.values():
        for pattern in line.trips:
            if stop_id in pattern.stop_ids[:-1]:
                key = (line.route_id, pattern.direction_id)
                lines.setdefault(key, [])
                names.setdefault(key, headsigns[pattern.trip_id])
    for trip in snap.predicted:
        for arrival in trip.arrivals:
            key = (trip.trip.route_id, trip.trip.direction_id)
            if arrival.stop_id == stop_id and key in lines:
                lines[key].append(
                    NextBus(
                        vehicle_id=trip.vehicle_id,
                        arrival=arrival.arrival,
                        in_s=max(0, round((arrival.arrival - live.now).total_seconds())),
                    )
                )
    body = StopArrivals(
        stop_id=stop.stop_id,
        name=stop.stop_name,
        lat=stop.stop_lat,
        lon=stop.stop_lon,
        generated_at=live.now,
        lines=[
            LineArrivals(
                route_id=route,
                direction_id=direction,
                headsign=names.get((route, direction), ""),
                arrivals=sorted(found, key=lambda b: b.arrival),
            )
            for (route, direction), found in sorted(lines.items())
        ],
    )
    return Response(
        body.model_dump_json(),
        media_type="application/json",
        headers={"Cache-Control": "max-age=1"},
    )


# The passengers' pages: a stop's next buses, the stop search and map, the stops' QR sheet.
# Public (no token), Arabic by default; the texts are the catalogues' ``stop.*`` messages.
# On the GTFS router (app.py includes it), kept out of the OpenAPI schema like every page.
async def _stop_known(runtime: Runtime, stop_id: str) -> bool:
    feed = (await _live(runtime)).live.feed
    return any(s.stop_id == stop_id for s in feed.feed.stops)


def stop_url(base: str, stop_id: str) -> str:
    """The address a stop's QR code carries: its next-bus page under ``base``."""
    return base.rstrip("/") + "/stops/" + quote(stop_id, safe="")


def stop_qr_svg(url: str) -> bytes:
    """``url`` as a QR code in SVG, drawn as the poles' codes are (segno, error correction M:
    still readable with a scratched or sun-faded sticker)."""
    out = io.BytesIO()
    segno.make_qr(url, error="m").save(out, kind="svg", scale=4, border=4, xmldecl=False)
    return out.getvalue()


@router.get("/stops", include_in_schema=False)
async def stop_search_page(conn: HTTPConnection) -> HTMLResponse:
    """Find a stop by name, on a map, or the nearest ones (geolocation, if allowed)."""
    return localised_page(conn, "stops.html", Audience.PUBLIC)


@router.get("/stops/qr-sheet", include_in_schema=False)
async def stop_qr_sheet(conn: HTTPConnection) -> HTMLResponse:
    """A printable sheet of stop QR codes: one stop (``?stop=``) or every stop of a line
    (``?line=``); each code opens that stop's next-bus page."""
    return localised_page(conn, "stop-qr.html", Audience.PUBLIC)


@router.get("/stops/{stop_id}/qr.svg", include_in_schema=False)
async def stop_qr(request: Request, stop_id: str, runtime: RuntimeDep) -> Response:
    """The QR code of a stop's next-bus page (its address, nothing else)."""
    if not await _stop_known(runtime, stop_id):
        raise ApiError(404, "not_found", f"no stop {stop_id!r} in the static feed")
    base = runtime.api.public_url or str(request.base_url)
    return Response(
        stop_qr_svg(stop_url(base, stop_id)),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/stops/{stop_id}", include_in_schema=False)
async def stop_page(conn: HTTPConnection, stop_id: str, runtime: RuntimeDep) -> HTMLResponse:
    """A stop's next buses per line and direction, refreshed every 20 s; a translated 404
    page for a stop the static feed does not have."""
    page = localised_page(conn, "stop.html", Audience.PUBLIC)
    if not await _stop_known(runtime, stop_id):
        page.status_code = 404
    return page
