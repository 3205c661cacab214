"""Open311 GeoReport v2 at ``/open311/v2``: services, POST and GET service requests, each in
JSON and XML by extension (one handler per endpoint; ``api.open311.formats`` renders).

Errors are the spec's list ``[{"code": 400, "description": "..."}]`` (``<errors>`` in XML)
with the HTTP status the spec names: 400 invalid, 403 missing or bad api_key, 404 unknown; and
429 when rate limited, 503 when the database is down (both with ``Retry-After``). ``router``
also carries the operators' ``/api/v1/complaints`` routes (``api.open311.operators``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Final, TypeVar, cast
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import psycopg
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.auth import Permission
from api.deps import runtime_of
from api.errors import NUL_MESSAGE, ApiError, is_unstorable_text
from api.locale import locale_of
from api.open311 import operators
from api.open311.desk import ComplaintDesk
from api.open311.formats import (
    FORMATS,
    Root,
    XMLResponse,
    answer,
    documented_errors,
    format_of,
)
from api.open311.wire import (
    MAX_FORM_BYTES,
    MAX_REQUESTS,
    Open311Error,
    check_jurisdiction,
    parse_filter,
    parse_post,
    posted_json,
    request_json,
    services_json,
)
from telemetry.complaints.services import service
from telemetry.i18n import Audience, Locale
from telemetry.i18n.catalogues import ngettext, translate
from telemetry.storage.complaints import get_complaint, list_complaints

FORM: Final = "application/x-www-form-urlencoded"
BAD_KEY: Final = "Invalid api_key received -- can't proceed with create_request."
Handler = TypeVar("Handler", bound=Callable[..., Coroutine[Any, Any, Response]])


def reply(request: Request, root: Root, body: Any, status: int = 200) -> Response:
    """``body`` in the format the resource was asked in (its extension: .json or .xml)."""
    return answer(format_of(request.url.path), root, body, status=status)


def _locale(request: Request) -> Locale:
    return locale_of(request, Audience.GEOREPORT)


def error_answer(request: Request, exc: Open311Error) -> Response:
    """The spec's error list, in the format the resource was asked in and the request's
    language (``locale``/``lang``, cookie, ``Accept-Language``; else the spec's English)."""
    fmt = format_of(request.url.path)
    locale = _locale(request)
    wait = (exc.headers or {}).get("Retry-After", "")
    after = ""
    if exc.status == 429 and wait.isdigit():
        # A citizen's app shows this text: say when to try again, in the citizen's words.
        seconds = int(wait)
        after = ("؛ " if locale.rtl else "; ") + ngettext(
            locale, "retry in {n} second", "retry in {n} seconds", seconds
        ).format(n=seconds)
    body = [
        item | {"description": translate(locale, item["description"]) + after}
        for item in exc.body()
    ]
    return answer(fmt, "errors", body, status=exc.status, headers=exc.headers or None)


class Open311Route(APIRoute):
    """Answers every error of its routes in the Open311 error format (JSON or XML)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The default handler, with errors turned into the spec's error list."""
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except Open311Error as exc:
                return error_answer(request, exc)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
                message = f"{where}: {first.get('msg', 'invalid')}"
                return error_answer(request, Open311Error(400, message))
            except ApiError as exc:
                status = 403 if exc.status in (401, 403) else exc.status
                return error_answer(request, Open311Error(status, exc.message, headers=exc.headers))
            except StarletteHTTPException as exc:
                return error_answer(request, Open311Error(exc.status_code, str(exc.detail)))
            except psycopg.DataError as exc:
                if not is_unstorable_text(exc):
                    raise
                return error_answer(request, Open311Error(400, NUL_MESSAGE))
            except (PoolTimeout, psycopg.OperationalError) as exc:
                return error_answer(
                    request,
                    Open311Error(
                        503,
                        f"service temporarily unavailable ({type(exc).__name__}); retry later",
                        headers={"Retry-After": "5"},
                    ),
                )

        return guarded


open311 = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)


def both_formats(
    method: str, path: str, summary: str, **options: Any
) -> Callable[[Handler], Handler]:
    """Serve one handler at ``{path}.json`` and ``{path}.xml``; it answers with ``reply``."""

    def register(handler: Handler) -> Handler:
        for fmt in FORMATS:
            open311.add_api_route(
                f"{path}.{fmt}",
                handler,
                methods=[method],
                summary=f"{summary} ({fmt.upper()})",
                response_class=XMLResponse if fmt == "xml" else JSONResponse,
                responses=documented_errors(fmt),
                **options,
            )
        return handler

    return register


def desk_of(request: Request) -> ComplaintDesk:
    """The process's complaints desk (built by the lifespan)."""
    return cast(ComplaintDesk, request.state.complaints)


def _params(request: Request) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    return params


def _jurisdiction(request: Request) -> None:
    check_jurisdiction(_params(request), runtime_of(request).api.open311_jurisdiction)


Jurisdiction = Annotated[
    str | None, Query(description="optional: this endpoint serves one jurisdiction")
]
# As multilingual GeoReport servers do: names, descriptions, notices, Rasd's own status notes
# and the errors in the asked language (else the cookie, Accept-Language). A client that asks
# for nothing gets English, the standard's language, as GeoReport clients expect.
LocaleParam = Annotated[
    str | None, Query(description="ar, fr, zgh or en; else Accept-Language, else English")
]


@both_formats("GET", "/services", "Service list")
async def services(
    request: Request, jurisdiction_id: Jurisdiction = None, locale: LocaleParam = None
) -> Response:
    """What can be reported (GeoReport v2 GET Service List), in the request's language."""
    _jurisdiction(request)
    return reply(request, "services", services_json(_locale(request)))


@both_formats("GET", "/services/{service_code}", "Service definition")
async def service_definition(
    request: Request, service_code: str, jurisdiction_id: Jurisdiction = None
) -> Response:
    """No service has extra attributes (``metadata`` is false): an empty definition."""
    _jurisdiction(request)
    if service(service_code) is None:
        raise Open311Error(404, f"service_code {service_code[:64]!r} not found")
    return reply(request, "service_definition", {"service_code": service_code, "attributes": []})


async def _form(request: Request) -> dict[str, list[str]]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != FORM:
        raise Open311Error(400, f"send the request as {FORM} (got {kind or 'no content type'})")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise Open311Error(400, f"request body larger than {MAX_FORM_BYTES} bytes")
    try:
        text = body.decode("utf-8")
        return parse_qs(text, keep_blank_values=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Open311Error(400, f"malformed form body: {exc}") from None


@both_formats(
    "POST",
    "/requests",
    "Create a service request (api_key of a reporter token)",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "required": ["api_key", "service_code"],
                        "properties": {
                            name: {"type": "string"}
                            for name in (
                                "api_key",
                                "jurisdiction_id",
                                "service_code",
                                "lat",
                                "long",
                                "address_string",
                                "email",
                                "device_id",
                                "account_id",
                                "first_name",
                                "last_name",
                                "phone",
                                "description",
                                "media_url",
                            )
                        },
                    }
                }
            },
        }
    },
)
async def post_request(request: Request) -> Response:
    """Validate, store (complaint and contact in one transaction) and link a request."""
    runtime = runtime_of(request)
    desk = desk_of(request)
    api = runtime.api
    address = request.client.host if request.client else "unknown"
    await desk.count(runtime.pool, f"addr:{address}", api.open311_rate_per_address, "address")
    form = await _form(request)
    key = (form.get("api_key") or [request.query_params.get("api_key", "")])[0].strip()
    if not key:
        raise Open311Error(403, "api_key was not provided -- can't proceed with create_request.")
    principal = await runtime.tokens.resolve(runtime.pool, key)
    if principal is None:
        runtime.metrics.auth_failures.inc()
        raise Open311Error(403, BAD_KEY)
    if not principal.can(Permission.SUBMIT_COMPLAINTS):
        raise Open311Error(403, f"a {principal.role.value} api_key may not create requests")
    await desk.count(runtime.pool, f"key:{principal.token_id}", api.open311_rate_per_key, "api_key")
    posted = parse_post(form, jurisdiction=api.open311_jurisdiction, now=desk.clock())
    row = await asyncio.to_thread(desk.submit, posted)
    return reply(
        request,
        "service_requests",
        posted_json(row.complaint_id, posted.service, _locale(request)),
        status=201,
    )


@both_formats("GET", "/requests", "Service requests (90 days, 1000 at most)")
async def get_requests(
    request: Request,
    jurisdiction_id: Jurisdiction = None,
    service_request_id: Annotated[str | None, Query(description="ids, comma-separated")] = None,
    service_code: Annotated[list[str] | None, Query()] = None,
    status: Annotated[list[str] | None, Query(description="open, closed")] = None,
    start_date: Annotated[str | None, Query(description="w3 date-time")] = None,
    end_date: Annotated[str | None, Query(description="w3 date-time")] = None,
    locale: LocaleParam = None,
) -> Response:
    """Requests matching the filters, newest first: never any contact details."""
    runtime = runtime_of(request)
    params = _params(request)
    check_jurisdiction(params, runtime.api.open311_jurisdiction)
    filters = parse_filter(params, now=desk_of(request).clock())
    async with runtime.pool.connection(timeout=runtime.api.db_timeout_s) as conn:
        rows = await list_complaints(conn, filters, MAX_REQUESTS)
    zone = ZoneInfo(runtime.api.timezone)
    language = _locale(request)
    return reply(request, "service_requests", [request_json(r, zone, language) for r in rows])


@both_formats("GET", "/requests/{service_request_id}", "One service request")
async def get_request(
    request: Request,
    service_request_id: str,
    jurisdiction_id: Jurisdiction = None,
    locale: LocaleParam = None,
) -> Response:
    """One request, as a list of one (the spec's shape)."""
    runtime = runtime_of(request)
    _jurisdiction(request)
    try:
        number = int(service_request_id)
    except ValueError:
        number = 0
    if not 1 <= number < 2**63:
        raise Open311Error(404, f"service_request_id {service_request_id[:40]!r} not found")
    async with runtime.pool.connection(timeout=runtime.api.db_timeout_s) as conn:
        row = await get_complaint(conn, number)
    if row is None:
        raise Open311Error(404, f"service_request_id {number} not found")
    zone = ZoneInfo(runtime.api.timezone)
    return reply(request, "service_requests", [request_json(row, zone, _locale(request))])


@open311.api_route(
    "/{anything:path}", methods=["GET", "POST", "PUT", "DELETE"], include_in_schema=False
)
async def not_found(anything: str) -> Response:
    """Anything else under /open311/v2 (in XML when it ends in .xml)."""
    raise Open311Error(404, f"no Open311 resource {anything[:100]!r}")


router = APIRouter()
router.include_router(open311)
router.include_router(operators.router)
