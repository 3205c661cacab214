"""Open operational endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    """200 while the process runs."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database, broker and registry are usable")
async def readyz(runtime: RuntimeDep) -> Response:
    """200 when this process can serve live data, else 503 with what is missing."""
    checks: dict[str, Any] = {
        "database": False,
        "broker": runtime.broker_subscribed.is_set(),
        "registry": runtime.registry.loaded.is_set(),
        "alerts_listen": runtime.alerts_listening.is_set(),
    }
    try:
        async with runtime.pool.connection(timeout=2.0) as conn:
            await conn.execute("SELECT 1")
        checks["database"] = True
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        checks["database_error"] = type(exc).__name__
    ready = all(v for k, v in checks.items() if isinstance(v, bool))
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(runtime: RuntimeDep) -> Response:
    """Prometheus text exposition of this process's metrics."""
    runtime.metrics.live_vehicles.set(len(runtime.positions.board))
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
