"""One error shape for every 4xx/5xx answer: ``{"error": {"status", "code", "message", ...}}``."""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.auth import DistrictRefused
from api.filters import FilterError
from api.locale import locale_of
from api.timerange import RangeError
from telemetry.i18n.catalogues import translate


class ApiError(Exception):
    """An error the API answers on purpose, with a stable ``code``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


class ErrorDetail(BaseModel):
    """The body of an error answer."""

    status: int
    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorBody(BaseModel):
    """``{"error": {...}}``."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed request"},
    401: {"model": ErrorBody, "description": "Missing or unknown token"},
    403: {"model": ErrorBody, "description": "Role or district does not allow this"},
    404: {"model": ErrorBody, "description": "No such resource"},
    422: {"model": ErrorBody, "description": "Invalid parameter or body"},
    503: {"model": ErrorBody, "description": "Database unavailable: retry after Retry-After s"},
}

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid_request",
    503: "unavailable",
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON error answer."""
    body = ErrorBody(error=ErrorDetail(status=status, code=code, message=message, details=details))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        details.append({"loc": loc, "message": str(err.get("msg", "")), "type": err.get("type")})
    return details


NUL_MESSAGE = "text must not contain NUL (U+0000) characters"


def is_unstorable_text(exc: psycopg.DataError) -> bool:
    """Whether the database refused a request's text for holding NUL, which PostgreSQL text
    and jsonb cannot store (psycopg refuses it before sending, the server in jsonb)."""
    return isinstance(exc, psycopg.errors.UntranslatableCharacter) or "NUL (0x00)" in str(exc)


def user_message(request: Request, message: str) -> str:
    """An error message in the request's language (``?lang=``, cookie, ``Accept-Language``,
    French by default); the ``code`` beside it stays the machine's."""
    return translate(locale_of(request), message)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error in the one shape, its message in the request's language."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        message = user_message(request, exc.message)
        return error_response(exc.status, exc.code, message, exc.details, exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = _CODES.get(exc.status_code, "error")
        headers = dict(exc.headers) if exc.headers else None
        message = user_message(request, str(exc.detail))
        return error_response(exc.status_code, code, message, headers=headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        details = _validation_details(exc)
        first = details[0] if details else {"loc": [], "message": "invalid request"}
        where = ".".join(p for p in first["loc"] if p not in ("query", "body", "path"))
        message = f"{where}: {first['message']}" if where else str(first["message"])
        return error_response(422, "invalid_request", user_message(request, message), details)

    async def filter_error(request: Request, exc: Exception) -> Response:
        return error_response(422, "invalid_request", user_message(request, str(exc)))

    async def district_error(request: Request, exc: Exception) -> Response:
        return error_response(403, "forbidden", user_message(request, str(exc)))

    async def unavailable(request: Request, exc: Exception) -> Response:
        return error_response(
            503,
            "unavailable",
            user_message(request, f"database unavailable: {type(exc).__name__}"),
            headers={"Retry-After": "5"},
        )

    async def data_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, psycopg.DataError)
        if not is_unstorable_text(exc):
            raise exc  # any other data error is the server's own: a 500, logged
        return error_response(422, "invalid_request", user_message(request, NUL_MESSAGE))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(psycopg.DataError, data_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(FilterError, filter_error)
    app.add_exception_handler(RangeError, filter_error)
    app.add_exception_handler(DistrictRefused, district_error)
    app.add_exception_handler(PoolTimeout, unavailable)
    app.add_exception_handler(psycopg.OperationalError, unavailable)
