"""The operator's live map (``/``), the crew board (``/crew``), their static files, and the
pages' message catalogues (``/i18n/<locale>.json``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, FastAPI, Query
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import HTTPConnection

from api.deps import RuntimeDep
from api.errors import ApiError
from api.lightstatus import LightStatus
from api.locale import locale_of
from telemetry.i18n import DEFAULTS, Audience, Locale, match
from telemetry.i18n.catalogues import page_messages

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


_HTML_TAG: Final = '<html lang="en">'


def localised_page(conn: HTTPConnection, name: str, audience: Audience) -> HTMLResponse:
    """A page of ``api/static`` with ``<html lang dir>`` set to the request's locale; its
    script then loads the messages of that locale (``api/static/i18n.js``)."""
    locale = locale_of(conn, audience)
    html = (STATIC_DIR / name).read_text(encoding="utf-8")
    tag = f'<html lang="{locale.value}" dir="{locale.direction}" data-audience="{audience.value}">'
    return HTMLResponse(
        html.replace(_HTML_TAG, tag, 1),
        headers={
            "Cache-Control": "no-cache",
            "Content-Language": locale.value,
            "Vary": "Cookie, Accept-Language",
        },
    )


@router.get("/")
async def operator_map(conn: HTTPConnection) -> HTMLResponse:
    """The live map page (it asks for a token, kept in the browser)."""
    return localised_page(conn, "map.html", Audience.OPERATOR)


@router.get("/crew")
async def crew_board(conn: HTTPConnection) -> HTMLResponse:
    """The crew's alert board."""
    return localised_page(conn, "crew.html", Audience.OPERATOR)


@router.get("/energy")
async def energy_page(conn: HTTPConnection) -> HTMLResponse:
    """The finance and lighting departments' reconciled month of electricity (operators)."""
    return localised_page(conn, "energy.html", Audience.OPERATOR)


@router.get("/i18n/{locale}.json")
async def page_catalogue(
    locale: str,
    audience: Annotated[Audience, Query(description="operator or public")] = Audience.OPERATOR,
) -> dict[str, Any]:
    """A locale's page messages (ICU MessageFormat), with the locales a switcher offers;
    a message the locale lacks is given in the audience's default locale."""
    chosen = match(locale)
    if chosen is None:
        raise ApiError(404, "not_found", f"no locale {locale[:20]!r}")
    fallback = DEFAULTS[audience] if chosen is Locale.ZGH else chosen
    return {
        "locale": chosen.value,
        "dir": chosen.direction,
        "messages": page_messages(chosen, fallback),
        "locales": [{"code": loc.value, "name": loc.endonym} for loc in Locale],
    }


@router.get("/config.json")
async def page_config(runtime: RuntimeDep) -> dict[str, Any]:
    """What the pages need that is configured, not secret: tiles, timings, legends."""
    api = runtime.api
    return {
        "tile_url": api.tile_url,
        "tile_attribution": api.tile_attribution,
        "tile_max_zoom": api.tile_max_zoom,
        "stale_after_s": api.stale_after_s,
        "frame_ms": api.ws_frame_ms,
        "light_statuses": [s.value for s in LightStatus],
        "timezone": api.timezone,
    }


def mount_static(app: FastAPI) -> None:
    """Serve ``api/static`` (pages' scripts, vendored Leaflet, district outlines)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
