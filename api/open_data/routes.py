"""Open data (no token): ``/open-data/v1/<feed>.csv|.json``, the catalogue and the public
transparency page (docs/open_data.md). Aggregates only: no feed carries personal data. The
routes parse the request, ``loaders`` read storage, ``shaping`` and ``catalogue`` shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Final, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.deps import DbDep, RuntimeDep
from api.errors import ERROR_RESPONSES, ApiError
from api.filters import split_list
from api.open_data.catalogue import (
    FILTER_DOCS,
    PREFIX,
    catalogue_document,
    column_labels,
    description,
    licence,
    responses,
)
from api.open_data.feeds import FEEDS, Feed
from api.open_data.loaders import LOADERS, Filters
from api.open_data.shaping import FeedRequestError, csv_text, feed_range, json_document, shape_rows
from api.routes.pages import localised_page
from telemetry.i18n import Audience, match

router = APIRouter(tags=["open-data"])

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


Lang = Annotated[
    str | None,
    Query(
        description="ar, fr, zgh or en: the CSV's header row in that language's words, for a "
        "person to read (default: the column names)"
    ),
]


def _filters(feed: Feed, request: Request) -> Filters:
    allowed = {"from", "to", "lang", *feed.filters}
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise ApiError(
            422,
            "invalid_request",
            f"{unknown[0]}: unknown parameter; {feed.name} takes {', '.join(sorted(allowed))}",
        )
    return {name: split_list(name, request.query_params.getlist(name)) for name in feed.filters}


def _endpoint(feed: Feed) -> Callable[..., Awaitable[Response]]:
    load = LOADERS[feed.name]

    async def endpoint(
        request: Request,
        format: Format,
        runtime: RuntimeDep,
        conn: DbDep,
        start: From = None,
        end: To = None,
        lang: Lang = None,
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
            # Asked in a language: the header row in words (the columns stay in their order).
            locale = match(lang)
            header = None if locale is None else column_labels(feed, locale)
            return Response(
                csv_text(feed, rows, header), media_type="text/csv; charset=utf-8", headers=headers
            )
        body = json_document(
            feed,
            rows,
            span=span,
            timezone=runtime.api.timezone,
            generated_at=datetime.now(tz),
            data_until=loaded.data_until,
            licence=licence(runtime.api),
        )
        return JSONResponse(body, headers=_HEADERS)

    endpoint.__name__ = "open_data_" + feed.name.replace("-", "_")
    return endpoint


for _feed in FEEDS:
    router.add_api_route(
        f"{PREFIX}/{_feed.name}.{{format}}",
        _endpoint(_feed),
        methods=["GET"],
        summary=_feed.title,
        description=description(_feed),
        response_class=Response,
        responses=responses(_feed) | {422: ERROR_RESPONSES[422]},
        openapi_extra={
            "parameters": [
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": FILTER_DOCS[name],
                }
                for name in _feed.filters
            ]
        },
    )


@router.get(f"{PREFIX}/catalog.json", summary="The open-data feeds: what each holds and where")
async def catalogue(runtime: RuntimeDep) -> JSONResponse:
    """Every feed with its columns, filters, update frequency and download links, and the
    GTFS-Realtime feed."""
    return JSONResponse(catalogue_document(runtime.api), headers=_HEADERS)


@router.get("/transparency", include_in_schema=False)
async def transparency_page(request: Request) -> HTMLResponse:
    """The public transparency page: charts and tables drawn from the feeds (in Arabic unless
    asked otherwise: a public page)."""
    return localised_page(request, "transparency.html", Audience.PUBLIC)
