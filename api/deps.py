"""FastAPI dependencies: the runtime, a database connection, and the caller's token and role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, cast

import psycopg
from fastapi import Depends, Request
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from api.auth import Permission, Principal, bearer_token
from api.errors import ApiError
from api.runtime import Runtime

# Declared for the OpenAPI document (the "Authorize" button); checked by ``authenticate``.
_bearer = HTTPBearer(auto_error=False, description="API token: Authorization: Bearer rasd_...")
_query = APIKeyQuery(name="token", auto_error=False, description="API token (WebSockets)")


def runtime_of(conn: HTTPConnection) -> Runtime:
    """The runtime the lifespan put in the connection's state."""
    return cast(Runtime, conn.state.runtime)


def get_runtime(request: Request) -> Runtime:
    """Dependency: the process runtime."""
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_db(request: Request) -> AsyncIterator[psycopg.AsyncConnection]:
    """Dependency: a pooled autocommit connection for the request."""
    runtime = runtime_of(request)
    async with runtime.pool.connection(timeout=runtime.api.db_timeout_s) as conn:
        yield conn


DbDep = Annotated[psycopg.AsyncConnection, Depends(get_db)]


def token_of(conn: HTTPConnection) -> str | None:
    """The token from ``Authorization: Bearer`` or, for browsers' WebSockets, ``?token=``."""
    return bearer_token(conn.headers.get("authorization")) or conn.query_params.get("token")


async def authenticate(conn: HTTPConnection) -> Principal:
    """The caller's principal; ApiError 401 when the token is missing, unknown or revoked."""
    runtime = runtime_of(conn)
    token = token_of(conn)
    if not token:
        runtime.metrics.auth_failures.inc()
        raise ApiError(
            401,
            "unauthenticated",
            "missing token: send 'Authorization: Bearer <token>' (or ?token= on WebSockets)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = await runtime.tokens.resolve(runtime.pool, token)
    if principal is None:
        runtime.metrics.auth_failures.inc()
        raise ApiError(
            401,
            "unauthenticated",
            "unknown or revoked token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return principal


def refuse(principal: Principal, permission: Permission) -> ApiError:
    """The 403 for a role lacking a permission."""
    return ApiError(
        403,
        "forbidden",
        f"a {principal.role.value} token may not {permission.value.replace('_', ' ')}",
    )


def require(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """Dependency factory: an authenticated principal whose role grants ``permission``."""

    async def dependency(
        request: Request,
        _b: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
        _q: Annotated[str | None, Depends(_query)] = None,
    ) -> Principal:
        principal = await authenticate(request)
        if not principal.can(permission):
            raise refuse(principal, permission)
        return principal

    return dependency


ReadCity = Annotated[Principal, Depends(require(Permission.READ_CITY))]
ReadAlerts = Annotated[Principal, Depends(require(Permission.READ_ALERTS))]
AckAlerts = Annotated[Principal, Depends(require(Permission.ACK_ALERTS))]
ResolveAlerts = Annotated[Principal, Depends(require(Permission.RESOLVE_ALERTS))]
AssignAlerts = Annotated[Principal, Depends(require(Permission.ASSIGN_ALERTS))]
ManageDevices = Annotated[Principal, Depends(require(Permission.MANAGE_DEVICES))]
ManageTokens = Annotated[Principal, Depends(require(Permission.MANAGE_TOKENS))]
