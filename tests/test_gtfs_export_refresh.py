"""The static GTFS export and its travel model are refreshed ahead, in the background: a
request never waits for the scan of the traces once the process has a feed, and a process
that never serves GTFS never scans."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from psycopg_pool import ConnectionPool

from alerts.routes_file import parse_routes
from api.config import ApiSettings
from api.gtfs_feeds import GtfsState
from simulators.cli import main as simulators_main
from telemetry.db import conninfo
from telemetry.settings import Settings
from telemetry.storage.reference import import_network
from tests.support.api_server import eventually
from tests.support.database import open_db

REFRESH_S = 0.3


def _import(settings: Settings, tmp_path: Path, lines: set[str] | None) -> None:
    """The demo network, or only ``lines`` of it, with every band around the clock."""
    path = tmp_path / "network.json"
    assert simulators_main(["network", "demo", "-o", str(path)]) == 0
    body = json.loads(path.read_text("utf-8"))
    if lines is not None:
        body["routes"] = {k: v for k, v in body["routes"].items() if k in lines}
        body["line_stops"] = {k: v for k, v in body["line_stops"].items() if k in lines}
        kept = {s for stops in body["line_stops"].values() for s in stops}
        body["stops"] = [s for s in body["stops"] if s["stop_id"] in kept]
        body["schedules"] = [b for b in body["schedules"] if b["route"] in lines]
    body["schedules"] = [
        {**band, "start_local": start, "end_local": end}
        for band in body["schedules"]
        for start, end in (("00:00", "12:00"), ("12:00", "00:00"))
    ]
    with open_db(settings) as conn:
        import_network(conn, parse_routes(json.dumps(body)).network())


def _pool(settings: Settings) -> ConnectionPool:
    return ConnectionPool(
        conninfo(settings), min_size=1, max_size=2, open=True, kwargs={"autocommit": True}
    )


async def test_a_stale_export_is_served_while_the_background_rebuilds_it(
    migrated: Settings, tmp_path: Path
) -> None:
    _import(migrated, tmp_path, {"A"})
    api = ApiSettings(gtfs_static_refresh_s=REFRESH_S)
    state = GtfsState()
    with _pool(migrated) as pool:
        first = await state.static_feed(pool, api)
        assert set(first.lines) == {"A"}
        model = await state.travel_model(pool, api)
        await asyncio.sleep(REFRESH_S * 2)  # stale now
        # A rebuild under way (the lock held, as keep_fresh holds it for minutes at city
        # scale): requests get the previous feed and model at once.
        async with state.export_lock:
            assert await asyncio.wait_for(state.static_feed(pool, api), 2.0) is first
            assert await asyncio.wait_for(state.travel_model(pool, api), 2.0) is model

        _import(migrated, tmp_path, None)  # the whole network now
        built_at = state.export_at
        async with asyncio.TaskGroup() as group:
            refresher = group.create_task(state.keep_fresh(pool, api), name="gtfs-export")
            await eventually(
                lambda: _done(state.export_at > built_at), within_s=20, what="a rebuild"
            )
            refresher.cancel()
        renewed = await state.static_feed(pool, api)
        assert renewed is not first and len(renewed.lines) > 1 and "A" in renewed.lines
        assert state.model is not model


async def test_no_scan_until_something_asks_for_gtfs(migrated: Settings, tmp_path: Path) -> None:
    _import(migrated, tmp_path, {"A"})
    api = ApiSettings(gtfs_static_refresh_s=0.05)
    state = GtfsState()
    with _pool(migrated) as pool:
        async with asyncio.TaskGroup() as group:
            refresher = group.create_task(state.keep_fresh(pool, api), name="gtfs-export")
            await asyncio.sleep(0.5)
            assert state.export is None and state.model is None
            await state.static_feed(pool, api)  # the first request builds it, and wakes it
            built_at = state.export_at
            await eventually(
                lambda: _done(state.export_at > built_at), within_s=20, what="a rebuild"
            )
            refresher.cancel()


async def _done(value: bool) -> bool:
    return value
