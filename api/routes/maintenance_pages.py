"""The maintenance pages: the crews' installable app (``/crew``'s manifest and service worker),
the public page a pole's QR code opens (``/a/{asset_id}``, no login, files an Open311 request),
the QR codes themselves and their printable sheet per circuit, and the operators' KPI page."""

from __future__ import annotations

import asyncio
import html
import io
from dataclasses import dataclass
from typing import Annotated, Final

import segno
from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.requests import HTTPConnection, Request

from api.deps import RuntimeDep
from api.errors import ApiError
from api.locale import locale_of
from api.routes.pages import STATIC_DIR
from api.runtime import Runtime
from telemetry.equipment.records import ID_PATTERN
from telemetry.i18n import Audience
from telemetry.storage.equipment import get_asset

router = APIRouter(include_in_schema=False)

AssetId = Annotated[str, Path(pattern=ID_PATTERN)]
_HTML_TAG: Final = '<html lang="en">'
_PAGE_HEADERS: Final = {"Cache-Control": "no-cache", "Vary": "Cookie, Accept-Language"}


@dataclass(frozen=True, kw_only=True)
class PublicAsset:
    """What the public page may say about an asset: no serial, supplier or tender."""

    asset_id: str
    kind: str
    district: str | None
    lat: float | None
    lon: float | None


def _page(conn: HTTPConnection, name: str, audience: Audience, fields: dict[str, str]) -> str:
    """A page of ``api/static`` in the request's locale, its ``{{field}}`` marks filled in
    (escaped: they sit in attributes)."""
    locale = locale_of(conn, audience)
    text = (STATIC_DIR / name).read_text(encoding="utf-8")
    tag = f'<html lang="{locale.value}" dir="{locale.direction}" data-audience="{audience.value}">'
    text = text.replace(_HTML_TAG, tag, 1)
    for key, value in fields.items():
        text = text.replace("{{" + key + "}}", html.escape(value, quote=True))
    return text


def _html(conn: HTTPConnection, name: str, audience: Audience, status: int = 200) -> HTMLResponse:
    locale = locale_of(conn, audience)
    return HTMLResponse(
        _page(conn, name, audience, {}),
        status_code=status,
        headers=_PAGE_HEADERS | {"Content-Language": locale.value},
    )


@router.get("/crew.webmanifest")
async def crew_manifest() -> JSONResponse:
    """The crews' app as an installable web app (home-screen icon, standalone window)."""
    icons = [
        {"src": "/static/icons/crew-192.png", "sizes": "192x192", "type": "image/png"},
        {"src": "/static/icons/crew-512.png", "sizes": "512x512", "type": "image/png"},
        {"src": "/static/icons/crew.svg", "sizes": "any", "type": "image/svg+xml"},
        {
            "src": "/static/icons/crew-512.png",
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        },
    ]
    manifest = {
        "name": "Rasd — crews",
        "short_name": "Rasd crews",
        "id": "/crew",
        "start_url": "/crew",
        "scope": "/crew",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#2d2a4a",
        "theme_color": "#2d2a4a",
        "icons": icons,
    }
    return JSONResponse(
        manifest, media_type="application/manifest+json", headers={"Cache-Control": "no-cache"}
    )


@router.get("/crew-sw.js")
async def crew_service_worker() -> Response:
    """The crews' app's service worker, served from the root so its scope can be ``/crew``."""
    return Response(
        (STATIC_DIR / "crew-sw.js").read_bytes(),
        media_type="text/javascript",
        # A new version must reach phones at their next visit, not after a cache's lifetime.
        headers={"Cache-Control": "no-cache"},
    )


def _public_asset(runtime: Runtime, asset_id: str) -> PublicAsset | None:
    with runtime.sync_pool.connection(timeout=runtime.api.db_timeout_s) as conn:
        asset = get_asset(conn, asset_id)
        if asset is None:
            return None
        district, lat, lon = asset.district, asset.lat, asset.lon
        parent_id = asset.parent_id
        # A luminaire or driver takes its district and place from what it hangs on.
        while parent_id is not None and (district is None or lat is None or lon is None):
            parent = get_asset(conn, parent_id)
            if parent is None:
                break
            district = district or parent.district
            if lat is None or lon is None:
                lat, lon = parent.lat, parent.lon
            parent_id = parent.parent_id
        return PublicAsset(
            asset_id=asset.asset_id, kind=asset.kind, district=district, lat=lat, lon=lon
        )


def _number(value: float | None) -> str:
    return "" if value is None else repr(value)


@router.get("/a/{asset_id}")
async def public_asset_page(conn: Request, asset_id: AssetId, runtime: RuntimeDep) -> HTMLResponse:
    """The page a pole's QR code opens: the asset (kind, district) and a form that files an
    Open311 request for it; no login, Arabic by default."""
    found = await asyncio.to_thread(_public_asset, runtime, asset_id)
    fields = {
        "asset_id": asset_id if found else "",
        "kind": found.kind if found else "",
        "district": (found.district or "") if found else "",
        "lat": _number(found.lat) if found else "",
        "lon": _number(found.lon) if found else "",
        "key": runtime.api.public_report_key or "",
        "jurisdiction": runtime.api.open311_jurisdiction,
    }
    locale = locale_of(conn, Audience.PUBLIC)
    return HTMLResponse(
        _page(conn, "asset.html", Audience.PUBLIC, fields),
        status_code=200 if found else 404,
        headers=_PAGE_HEADERS | {"Content-Language": locale.value},
    )


def asset_url(base: str, asset_id: str) -> str:
    """The address a QR code carries: the public page of ``asset_id`` under ``base``."""
    return base.rstrip("/") + "/a/" + asset_id


def qr_svg(url: str) -> bytes:
    """``url`` as a QR code in SVG (error correction M: readable with a scratched sticker)."""
    out = io.BytesIO()
    segno.make_qr(url, error="m").save(out, kind="svg", scale=4, border=4, xmldecl=False)
    return out.getvalue()


@router.get("/a/{asset_id}/qr.svg")
async def asset_qr(request: Request, asset_id: AssetId, runtime: RuntimeDep) -> Response:
    """The QR code of an asset's public page (the address only: nothing else is in it)."""
    found = await asyncio.to_thread(_public_asset, runtime, asset_id)
    if found is None:
        raise ApiError(404, "not_found", f"no asset {asset_id}")
    base = runtime.api.public_url or str(request.base_url)
    return Response(
        qr_svg(asset_url(base, asset_id)),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/assets/qr-sheet")
async def qr_sheet(conn: HTTPConnection) -> HTMLResponse:
    """A printable sheet of the QR codes of a circuit's poles (operators; it asks for a token)."""
    return _html(conn, "qr-sheet.html", Audience.OPERATOR)


@router.get("/maintenance")
async def maintenance_page(conn: HTTPConnection) -> HTMLResponse:
    """The operators' maintenance KPIs of a month, per district, and the warranty claims."""
    return _html(conn, "maintenance.html", Audience.OPERATOR)
