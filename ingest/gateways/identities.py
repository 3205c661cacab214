"""Who a protocol identity is: the registry's ``external_id`` mapped to a device, cached."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from psycopg_pool import AsyncConnectionPool

from telemetry.storage.devices import (
    ExternalDevice,
    devices_by_external_id,
    register_external_device,
)
from telemetry.topics import Fleet

_NOT_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def auto_device_id(protocol: str, external_id: str) -> str:
    """The device id a demo registers for an unknown identity: ``gw-<protocol>-<identity>``."""
    return f"gw-{protocol}-{_NOT_ID_CHARS.sub('-', external_id)}"[:64]


@dataclass(kw_only=True)
class IdentityBook:
    """external_id -> device, remembered for ``ttl_s`` (an unknown one too, so a flood of
    unknown trackers costs one query each per ttl, not one per packet)."""

    pool: AsyncConnectionPool
    ttl_s: float
    auto_register: bool
    _known: dict[str, tuple[float, ExternalDevice | None]] = field(default_factory=dict)

    async def resolve(self, protocol: str, external_id: str, fleet: Fleet) -> ExternalDevice | None:
        """The device carrying ``external_id``; None when unknown (and not auto-registered)."""
        now = time.monotonic()
        hit = self._known.get(external_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self.pool.connection() as conn:
            found = (await devices_by_external_id(conn, [external_id])).get(external_id)
            if found is None and self.auto_register:
                found = await register_external_device(
                    conn, external_id, auto_device_id(protocol, external_id), fleet
                )
        self._known[external_id] = (now + self.ttl_s, found)
        return found
