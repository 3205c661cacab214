"""The ingestor's in-memory view of the device registry, refreshed from the database."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

import psycopg

from telemetry.storage.devices import fleets_changed_since, fleets_of
from telemetry.topics import Fleet


class RegistryCache:
    """device_id -> fleet; unknown ids are looked up once, then remembered as unknown a while."""

    def __init__(self, refresh_s: float) -> None:
        self.fleets: dict[str, Fleet] = {}
        self._refresh_s = refresh_s
        self._since: datetime | None = None
        self._next_refresh = 0.0
        self._unknown_until: dict[str, float] = {}

    def refresh(self, conn: psycopg.Connection, *, force: bool = False) -> bool:
        """Pull devices added or changed since the last refresh, when it is due.

        True when some device changed (what was decoded against the cache may be stale).
        """
        now = time.monotonic()
        if not force and now < self._next_refresh:
            return False
        changed, self._since = fleets_changed_since(conn, self._since)
        self.fleets.update(changed)
        for device_id in changed:
            self._unknown_until.pop(device_id, None)
        self._next_refresh = now + self._refresh_s
        return bool(changed)

    def knows(self, device_ids: Iterable[str]) -> bool:
        """Whether the cache can judge every id without the database (known, or known missing).

        Read from another thread than the one refreshing: dict reads are safe beside updates.
        """
        now = time.monotonic()
        fleets, unknown_until = self.fleets, self._unknown_until
        return all(d in fleets or unknown_until.get(d, 0.0) > now for d in device_ids)

    def resolve(self, conn: psycopg.Connection, device_ids: Iterable[str]) -> None:
        """Look up ids not yet known (and not recently found missing) in one query."""
        now = time.monotonic()
        wanted = {
            d for d in device_ids if d not in self.fleets and self._unknown_until.get(d, 0.0) <= now
        }
        if not wanted:
            return
        found = fleets_of(conn, wanted)
        self.fleets.update(found)
        for device_id in wanted - found.keys():
            self._unknown_until[device_id] = now + self._refresh_s

    def learn(self, devices: dict[str, Fleet]) -> None:
        """Remember devices this process registered itself."""
        self.fleets.update(devices)
        for device_id in devices:
            self._unknown_until.pop(device_id, None)
