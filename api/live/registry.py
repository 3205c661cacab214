"""The API's view of registered buses and trucks, refreshed from the database."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from datetime import datetime

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool

from telemetry.storage.devices import VehicleInfo, vehicles_changed_since
from telemetry.topics import Fleet

log = structlog.get_logger("api.registry")


class VehicleRegistry:
    """device_id -> fleet (for the decoder) and labels; swapped whole so threads read safely."""

    def __init__(self, refresh_s: float) -> None:
        self.refresh_s = refresh_s
        self.fleets: Mapping[str, Fleet] = {}
        self.info: Mapping[str, VehicleInfo] = {}
        self.loaded = asyncio.Event()
        self._since: datetime | None = None
        self._wake = asyncio.Event()
        self._last_refresh = 0.0

    def apply(self, changed: list[VehicleInfo]) -> None:
        """Merge registry rows into new mappings and publish them."""
        if not changed:
            return
        info = dict(self.info)
        for row in changed:
            info[row.device_id] = row
        self.info = info
        self.fleets = {d: Fleet(r.fleet) for d, r in info.items()}
        newest = max(r.updated_at for r in changed)
        self._since = newest if self._since is None else max(self._since, newest)

    def unknown_seen(self) -> None:
        """A message came from an unregistered vehicle: refresh soon (at most once a second)."""
        self._wake.set()

    async def refresh(self, pool: AsyncConnectionPool) -> None:
        """Pull vehicles added or changed since the last refresh."""
        async with pool.connection() as conn:
            changed = await vehicles_changed_since(conn, self._since)
        self.apply(changed)
        self._last_refresh = time.monotonic()
        self.loaded.set()

    async def run(self, pool: AsyncConnectionPool) -> None:
        """Refresh every ``refresh_s`` or soon after an unknown vehicle appears; never raises."""
        while True:
            try:
                await self.refresh(pool)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.warning("registry_refresh_failed", error=str(exc).strip())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.refresh_s)
            self._wake.clear()
            # Unknown ids can arrive by the hundred; one refresh a second is enough.
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - self._last_refresh)))
