"""The OpenAPI reference page ``/docs`` (Swagger UI) under its own Content-Security-Policy."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from api.security_headers import swagger_page

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """FastAPI's Swagger UI page, its inline bootstrap script allowed by a fresh nonce."""
    app = request.app
    root = str(request.scope.get("root_path", "")).rstrip("/")
    page = get_swagger_ui_html(
        openapi_url=root + app.openapi_url, title=f"{app.title} - Swagger UI"
    )
    html, policy = swagger_page(bytes(page.body).decode(), nonce=secrets.token_urlsafe(18))
    return HTMLResponse(
        html, headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache"}
    )
