"""Streetlight reads: current state (latest reading, open faults); energy is in energy.py."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Final, NamedTuple

import psycopg
from psycopg.rows import args_row, class_row

from telemetry.storage._rows import filter_values

# light_latest and light_fault_state are kept by triggers (migration 0006).
_STATES: Final = """
SELECT d.device_id, d.label, d.district, d.circuit, d.rated_w, d.lat, d.lon,
       l.time, l.received_at, l.energy_wh, l.power_w, l.lamp_on, l.dim_pct,
       coalesce(f.faults, '{}') AS faults
FROM devices d
LEFT JOIN light_latest l ON l.device_id = d.device_id
LEFT JOIN (
    SELECT device_id, array_agg(fault ORDER BY fault) AS faults
    FROM light_fault_state WHERE active GROUP BY device_id
) f ON f.device_id = d.device_id
WHERE d.fleet = 'light'
  AND (%(districts)s::text[] IS NULL OR d.district = ANY(%(districts)s))
  AND (%(circuits)s::text[] IS NULL OR d.circuit = ANY(%(circuits)s))
  AND (%(ids)s::text[] IS NULL OR d.device_id = ANY(%(ids)s))
  AND (%(after)s::text IS NULL OR d.device_id > %(after)s)
ORDER BY d.device_id
LIMIT %(limit)s
"""

_FAULTS_OF: Final = """
SELECT fault, time AS since, detail FROM light_fault_state
WHERE device_id = %s AND active ORDER BY time
"""


class LightState(NamedTuple):
    """A light's registry entry, newest reading and active faults."""

    device_id: str
    label: str | None
    district: str | None
    circuit: str | None
    rated_w: float | None
    lat: float | None
    lon: float | None
    time: datetime | None
    received_at: datetime | None
    energy_wh: float | None
    power_w: float | None
    lamp_on: bool | None
    dim_pct: float | None
    faults: list[str]


@dataclass(frozen=True, slots=True)
class OpenFault:
    """A fault condition that started and has not ended."""

    fault: str
    since: datetime
    detail: str | None


async def light_states(
    conn: psycopg.AsyncConnection,
    *,
    districts: Collection[str] | None = None,
    circuits: Collection[str] | None = None,
    device_ids: Collection[str] | None = None,
    after: str | None = None,
    limit: int = 100_000,
) -> list[LightState]:
    """Lights by id with their state, starting after ``after`` (keyset paging)."""
    params = {
        "districts": filter_values(districts),
        "circuits": filter_values(circuits),
        "ids": filter_values(device_ids),
        "after": after,
        "limit": limit,
    }
    async with conn.cursor(row_factory=args_row(LightState), binary=True) as cur:
        await cur.execute(_STATES, params)
        return await cur.fetchall()


async def open_faults(conn: psycopg.AsyncConnection, device_id: str) -> list[OpenFault]:
    """A light's active faults, oldest first."""
    async with conn.cursor(row_factory=class_row(OpenFault)) as cur:
        await cur.execute(_FAULTS_OF, (device_id,))
        return await cur.fetchall()
