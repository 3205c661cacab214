"""Streetlight reads: current state (latest reading, open faults) and energy per period."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, NamedTuple

import psycopg
from psycopg import sql
from psycopg.rows import args_row, class_row

Unit = Literal["hour", "day", "month"]
Scope = Literal["circuit", "district"]

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

_LIGHT_ENERGY: Final = """
SELECT date_trunc(%(unit)s, bucket, %(tz)s) AS period, sum(energy_wh) AS energy_wh,
       1 AS lights, count(*)::integer AS hours
FROM rasd_light_hourly_wh(%(start)s, %(end)s, ARRAY[%(key)s]::text[])
GROUP BY 1 ORDER BY 1
"""

# Hours before the watermark come from the rollup table, later ones are computed on read with
# the same function (see migration 0008); on plain PostgreSQL the watermark is -infinity.
# Without ``realtime`` the hours after the watermark are left out (a materialised-only read).
_ROLLUP_ENERGY: Final = """
WITH state AS (SELECT watermark FROM energy_rollup_state),
hours AS (
    SELECT r.bucket, r.energy_wh, r.lights
    FROM energy_hourly_rollup r, state
    WHERE r.scope = %(scope)s AND r.key = %(key)s
      AND r.bucket >= %(start)s AND r.bucket < least(%(end)s, state.watermark)
    UNION ALL
    SELECT w.bucket, sum(w.energy_wh), count(*)::integer
    FROM state,
         rasd_light_hourly_wh(
             greatest(%(start)s, state.watermark), %(end)s,
             ARRAY(SELECT device_id FROM devices WHERE fleet = 'light' AND {column} = %(key)s)
         ) w
    WHERE %(realtime)s AND greatest(%(start)s, state.watermark) < %(end)s
    GROUP BY w.bucket
)
SELECT date_trunc(%(unit)s, bucket, %(tz)s) AS period, sum(energy_wh) AS energy_wh,
       max(lights)::integer AS lights, count(*)::integer AS hours
FROM hours GROUP BY 1 ORDER BY 1
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


@dataclass(frozen=True, slots=True)
class EnergyPeriod:
    """Consumption in one hour, day or month (local time), with how much data it rests on."""

    period: datetime
    energy_wh: float
    lights: int  # most lights reporting in any hour of the period
    hours: int  # hours of the period with data


def _opt(values: Collection[str] | None) -> list[str] | None:
    return sorted(values) if values is not None else None


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
        "districts": _opt(districts),
        "circuits": _opt(circuits),
        "ids": _opt(device_ids),
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


async def light_energy(
    conn: psycopg.AsyncConnection,
    device_id: str,
    unit: Unit,
    start: datetime,
    end: datetime,
    tz: str,
) -> list[EnergyPeriod]:
    """One light's consumption per ``unit`` of local time ``tz`` for hours in [start, end)."""
    params = {"unit": unit, "tz": tz, "start": start, "end": end, "key": device_id}
    async with conn.cursor(row_factory=class_row(EnergyPeriod)) as cur:
        await cur.execute(_LIGHT_ENERGY, params)
        return await cur.fetchall()


async def group_energy(
    conn: psycopg.AsyncConnection,
    scope: Scope,
    key: str,
    unit: Unit,
    start: datetime,
    end: datetime,
    tz: str,
    *,
    realtime: bool = True,
) -> list[EnergyPeriod]:
    """A circuit's or district's consumption per ``unit`` of local time for [start, end);
    without ``realtime``, only the hours the rollups have materialised."""
    query = sql.SQL(_ROLLUP_ENERGY).format(column=sql.Identifier(scope))
    params = {
        "scope": scope,
        "unit": unit,
        "tz": tz,
        "start": start,
        "end": end,
        "key": key,
        "realtime": realtime,
    }
    async with conn.cursor(row_factory=class_row(EnergyPeriod)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def refresh_energy_rollups(
    conn: psycopg.AsyncConnection, start: datetime, end: datetime
) -> datetime:
    """Recompute the circuit/district rollups for [start, end); returns the new watermark."""
    async with conn.cursor() as cur:
        await cur.execute("SELECT rasd_refresh_energy_rollups(%s, %s)", (start, end))
        row = await cur.fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]
