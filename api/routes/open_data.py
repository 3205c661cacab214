"""Open data (no token): ``/open-data/v1/<feed>.csv|.json``, the catalogue and the public
transparency page (docs/open_data.md). Aggregates only: no feed carries personal data."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo

import psycopg
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from api.deps import DbDep, RuntimeDep
from api.errors import ERROR_RESPONSES, ApiError
from api.filters import split_list
from api.open_data.feeds import FEEDS, Column, Feed
from api.open_data.shaping import (
    DayRange,
    FeedRequestError,
    csv_text,
    feed_range,
    json_document,
    shape_rows,
)
from api.routes.pages import STATIC_DIR
from api.runtime import Runtime
from telemetry.storage import open_data as store
from telemetry.storage.open_data import MaterialisedFeed

router = APIRouter(tags=["open-data"])

PREFIX: Final = "/open-data/v1"
GTFS_RT_PATH: Final = "/gtfs-rt/vehicle-positions.pb"
# Open data is read by other sites' pages and scripts: any origin may fetch it.
_HEADERS: Final = {"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"}

Format = Annotated[Literal["csv", "json"], Path(description="csv or json (the same content)")]
From = Annotated[
    str | None,
    Query(
        alias="from",
        description="first local day, YYYY-MM-DD (monthly feeds also YYYY-MM); default: 31 days "
        "or 12 months before `to`",
    ),
]
To = Annotated[
    str | None,
    Query(
        alias="to",
        description="last local day, included, YYYY-MM-DD (monthly: YYYY-MM); default: today",
    ),
]

_FILTER_DOCS: Final = {
    "district": "districts (comma-separated or repeated)",
    "operator": "collection operators (comma-separated or repeated)",
    "service_code": "Open311 service codes (comma-separated or repeated)",
    "line": "bus lines (comma-separated or repeated)",
}


@dataclass(frozen=True, slots=True)
class Loaded:
    """A feed's rows, how far its data goes, and the values of columns the rows lack."""

    rows: list[Any]
    data_until: datetime | date | None
    extra: dict[str, Any]


Filters = dict[str, frozenset[str] | None]
Loader = Callable[[psycopg.AsyncConnection, Runtime, DayRange | None, Filters], Awaitable[Loaded]]


def _span(span: DayRange | None) -> DayRange:
    assert span is not None  # only the "now" feed has no range
    return span


async def _materialised_until(conn: psycopg.AsyncConnection, feed: MaterialisedFeed) -> date | None:
    return (await store.feed_states(conn))[feed].watermark


def _energy(unit: Literal["day", "month"]) -> Loader:
    async def load(
        conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
    ) -> Loaded:
        tz = runtime.api.timezone
        start, end = _span(span).bounds(ZoneInfo(tz))
        rows = await store.energy_by_district(conn, unit, start, end, tz, f["district"])
        return Loaded(rows, await store.energy_until(conn), {})

    return load


async def _lights_now(
    conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
) -> Loaded:
    now = datetime.now(UTC)
    silent = timedelta(seconds=runtime.api.light_silent_after_s)
    rows = await store.lights_now(conn, now, silent, f["district"])
    return Loaded(rows, now, {"as_of": now.astimezone(ZoneInfo(runtime.api.timezone))})


async def _lights_daily(
    conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
) -> Loaded:
    s = _span(span)
    rows = await store.lights_daily(conn, s.first, s.last, f["district"])
    return Loaded(rows, await _materialised_until(conn, "light_status"), {})


async def _repairs(
    conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
) -> Loaded:
    tz = runtime.api.timezone
    start, end = _span(span).bounds(ZoneInfo(tz))
    rows = await store.fault_repairs(conn, start, end, tz, f["district"])
    return Loaded(rows, datetime.now(UTC), {})


async def _complaints(
    conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
) -> Loaded:
    tz = runtime.api.timezone
    start, end = _span(span).bounds(ZoneInfo(tz))
    rows = await store.complaint_stats(conn, start, end, tz, f["service_code"])
    return Loaded(rows, datetime.now(UTC), {})


def _waste(unit: Literal["day", "month"]) -> Loader:
    async def load(
        conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
    ) -> Loaded:
        s = _span(span)
        rows = await store.waste_rounds(
            conn, unit, s.first, s.last, operators=f["operator"], districts=f["district"]
        )
        return Loaded(rows, await _materialised_until(conn, "waste_rounds"), {})

    return load


def _bus(unit: Literal["day", "month"]) -> Loader:
    async def load(
        conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
    ) -> Loaded:
        s = _span(span)
        rows = await store.bus_service(conn, unit, s.first, s.last, f["line"])
        return Loaded(rows, await _materialised_until(conn, "bus_service"), {})

    return load


LOADERS: Final[dict[str, Loader]] = {
    "energy-daily": _energy("day"),
    "energy-monthly": _energy("month"),
    "lights-status": _lights_now,
    "lights-status-daily": _lights_daily,
    "fault-repairs-monthly": _repairs,
    "complaints-monthly": _complaints,
    "waste-rounds-daily": _waste("day"),
    "waste-rounds-monthly": _waste("month"),
    "bus-service-daily": _bus("day"),
    "bus-service-monthly": _bus("month"),
}


def licence(runtime: Runtime) -> dict[str, str]:
    """The licence the feeds are published under (``RASD_API_OPENDATA_LICENCE[_URL]``)."""
    return {"name": runtime.api.opendata_licence, "url": runtime.api.opendata_licence_url}


def _filters(feed: Feed, request: Request) -> Filters:
    allowed = {"from", "to", *feed.filters}
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ApiError(
            422,
            "invalid_request",
            f"{unknown[0]}: unknown parameter; {feed.name} takes {', '.join(sorted(allowed))}",
        )
    return {name: split_list(name, request.query_params.getlist(name)) for name in feed.filters}


def _column_schema(column: Column) -> dict[str, Any]:
    kinds: dict[str, dict[str, Any]] = {
        "date": {"type": "string", "format": "date"},
        "month": {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
        "datetime": {"type": "string", "format": "date-time"},
        "string": {"type": "string", "nullable": True},
        "integer": {"type": "integer"},
        "number": {"type": "number", "nullable": True},
    }
    unit = f" ({column.unit})" if column.unit else ""
    return kinds[column.type] | {"description": column.description + unit}


def _responses(feed: Feed) -> dict[int | str, dict[str, Any]]:
    row = {
        "type": "object",
        "properties": {c.name: _column_schema(c) for c in feed.columns},
        "required": feed.column_names,
    }
    document = {
        "type": "object",
        "properties": {
            "feed": {"type": "string"},
            "title": {"type": "string"},
            "timezone": {"type": "string"},
            "from": {"type": "string", "format": "date", "nullable": True},
            "to": {"type": "string", "format": "date", "nullable": True},
            "generated_at": {"type": "string", "format": "date-time"},
            "data_until": {"type": "string", "nullable": True},
            "licence": {"type": "object"},
            "columns": {"type": "array", "items": {"type": "object"}},
            "rows": {"type": "array", "items": row},
        },
    }
    header = ",".join(feed.column_names)
    return {
        200: {
            "description": f"{feed.title}: the same rows as CSV (header: {header}) or JSON",
            "content": {
                "application/json": {"schema": document},
                "text/csv": {"schema": {"type": "string"}, "example": header + "\r\n"},
            },
        },
        422: ERROR_RESPONSES[422],
    }


def _endpoint(feed: Feed) -> Callable[..., Awaitable[Response]]:
    load = LOADERS[feed.name]

    async def endpoint(
        request: Request,
        format: Format,
        runtime: RuntimeDep,
        conn: DbDep,
        start: From = None,
        end: To = None,
    ) -> Response:
        filters = _filters(feed, request)
        tz = ZoneInfo(runtime.api.timezone)
        try:
            span = feed_range(
                feed,
                start,
                end,
                today=datetime.now(tz).date(),
                max_days=runtime.api.opendata_max_days,
                max_months=runtime.api.opendata_max_months,
            )
        except FeedRequestError as exc:
            raise ApiError(
                422,
                "invalid_request",
                str(exc),
                details=[{"loc": ["query", exc.parameter], "message": str(exc), "type": "range"}],
            ) from None
        loaded = await load(conn, runtime, span, filters)
        rows = shape_rows(feed, loaded.rows, **loaded.extra)
        if format == "csv":
            name = f"{feed.name}_{span.first}_{span.last}" if span else feed.name
            headers = _HEADERS | {"Content-Disposition": f'attachment; filename="{name}.csv"'}
            return Response(
                csv_text(feed, rows), media_type="text/csv; charset=utf-8", headers=headers
            )
        body = json_document(
            feed,
            rows,
            span=span,
            timezone=runtime.api.timezone,
            generated_at=datetime.now(tz),
            data_until=loaded.data_until,
            licence=licence(runtime),
        )
        return JSONResponse(body, headers=_HEADERS)

    endpoint.__name__ = "open_data_" + feed.name.replace("-", "_")
    return endpoint


def _description(feed: Feed) -> str:
    filters = ", ".join(f"`{f}`" for f in feed.filters)
    lines = [
        feed.description,
        "",
        f"Updated: {feed.update}. Source: {feed.source}.",
        f"Filters: {filters}." if filters else "",
        "Columns: "
        + "; ".join(f"`{c.name}` ({c.unit + ', ' if c.unit else ''}{c.type})" for c in feed.columns)
        + ".",
    ]
    return "\n".join(lines)


for _feed in FEEDS:
    router.add_api_route(
        f"{PREFIX}/{_feed.name}.{{format}}",
        _endpoint(_feed),
        methods=["GET"],
        summary=_feed.title,
        description=_description(_feed),
        response_class=Response,
        responses=_responses(_feed),
        openapi_extra={
            "parameters": [
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": _FILTER_DOCS[name],
                }
                for name in _feed.filters
            ]
        },
    )


@router.get(f"{PREFIX}/catalog.json", summary="The open-data feeds: what each holds and where")
async def catalogue(runtime: RuntimeDep) -> JSONResponse:
    """Every feed with its columns, filters, update frequency and download links, and the
    GTFS-Realtime feed."""
    feeds = [
        {
            "name": f.name,
            "title": f.title,
            "description": f.description,
            "period": f.period,
            "filters": list(f.filters),
            "update_frequency": f.update,
            "source": f.source,
            "columns": [
                {"name": c.name, "type": c.type, "unit": c.unit, "description": c.description}
                for c in f.columns
            ],
            "csv": f"{PREFIX}/{f.name}.csv",
            "json": f"{PREFIX}/{f.name}.json",
        }
        for f in FEEDS
    ]
    body = {
        "title": "Rasd open data",
        "timezone": runtime.api.timezone,
        "licence": licence(runtime),
        "documentation": "docs/open_data.md",
        "transparency_page": "/transparency",
        "feeds": feeds,
        "realtime": [
            {
                "name": "gtfs-rt-vehicle-positions",
                "title": "Bus positions, live (GTFS-Realtime VehiclePositions, protobuf)",
                "url": GTFS_RT_PATH,
            }
        ],
    }
    return JSONResponse(body, headers=_HEADERS)


@router.get("/transparency", include_in_schema=False)
async def transparency_page() -> FileResponse:
    """The public transparency page: charts and tables drawn from the feeds."""
    return FileResponse(STATIC_DIR / "transparency.html", headers={"Cache-Control": "no-cache"})
