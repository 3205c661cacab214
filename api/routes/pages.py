"""The operator's live map (``/``), the crew board (``/crew``) and their static files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api.deps import RuntimeDep
from api.lightstatus import LightStatus

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def operator_map() -> FileResponse:
    """The live map page (it asks for a token, kept in the browser)."""
    return FileResponse(STATIC_DIR / "map.html", headers={"Cache-Control": "no-cache"})


@router.get("/crew")
async def crew_board() -> FileResponse:
    """The crew's alert board."""
    return FileResponse(STATIC_DIR / "crew.html", headers={"Cache-Control": "no-cache"})


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
