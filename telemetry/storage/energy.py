"""Energy reads and the circuit/district rollups: per light, circuit and district, per period.

The consumption definition and the rollups live in migrations 0007, 0008 and 0015; these
queries are the same on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

import psycopg
from psycopg.rows import class_row

from telemetry.storage._rows import fetch_all

Unit = Literal["hour", "day", "month"]
Scope = Literal["circuit", "district"]

# Consumption in an hour is the rise of the cumulative meter since the previous hour's last
# reading; a meter reset (replaced controller) counts as zero rather than negative.
_HOURLY: Final = """
SELECT device_id, bucket,
       greatest(0, coalesce(
           energy_wh_max - lag(energy_wh_max) OVER (PARTITION BY device_id ORDER BY bucket),
           energy_wh_max - energy_wh_min)) AS energy_wh,
       power_w_avg, readings::integer AS readings, lamp_on_any
FROM light_energy_hourly
WHERE device_id = ANY(%(ids)s) AND bucket >= %(start)s - INTERVAL '1 hour' AND bucket < %(end)s
ORDER BY device_id, bucket
"""

_LIGHT_ENERGY: Final = """
SELECT date_trunc(%(unit)s, bucket, %(tz)s) AS period, sum(energy_wh) AS energy_wh,
       1 AS lights, count(*)::integer AS hours
FROM rasd_light_hourly_wh(%(start)s, %(end)s, ARRAY[%(key)s]::text[])
GROUP BY 1 ORDER BY 1
"""

# Hours before the watermark come from the rollup table, later ones are computed on read
# (migration 0015: only the group's readings after the watermark); on plain PostgreSQL
# before the first upkeep the watermark is -infinity and everything is computed on read.
# Without ``realtime`` the hours after the watermark are left out (a materialised-only read).
_GROUP_ENERGY: Final = """
WITH state AS (SELECT watermark FROM energy_rollup_state),
hours AS (
    SELECT r.bucket, r.energy_wh, r.lights
    FROM energy_hourly_rollup r, state
    WHERE r.scope = %(scope)s AND r.key = %(key)s
      AND r.bucket >= %(start)s AND r.bucket < least(%(end)s, state.watermark)
    UNION ALL
    SELECT t.bucket, t.energy_wh, t.lights
    FROM state,
         rasd_group_hourly_wh(%(scope)s, %(key)s, greatest(%(start)s, state.watermark), %(end)s) t
    WHERE %(realtime)s AND greatest(%(start)s, state.watermark) < %(end)s
)
SELECT date_trunc(%(unit)s, bucket, %(tz)s) AS period, sum(energy_wh) AS energy_wh,
       max(lights)::integer AS lights, count(*)::integer AS hours
FROM hours GROUP BY 1 ORDER BY 1
"""

# -infinity (nothing materialised yet) comes back as NULL: Python datetimes have no infinity.
_REFRESH: Final = "SELECT nullif(rasd_refresh_energy_rollups(%s, %s, %s), '-infinity')"
ROLLUP_WATERMARK: Final = "SELECT nullif(watermark, '-infinity') FROM energy_rollup_state"

# The rollups' default step (0008): a first refresh over years of history catches up in
# steps of this many days, each its own transaction.
ROLLUP_STEP: Final = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class HourlyEnergy:
    """One light's consumption in one hour."""

    device_id: str
    bucket: datetime
    energy_wh: float
    power_w_avg: float | None
    readings: int
    lamp_on_any: bool | None


@dataclass(frozen=True, slots=True)
class EnergyPeriod:
    """Consumption in one hour, day or month (local time), with how much data it rests on."""

    period: datetime
    energy_wh: float
    lights: int  # most lights reporting in any hour of the period
    hours: int  # hours of the period with data


def hourly_energy(
    conn: psycopg.Connection, device_ids: list[str], start: datetime, end: datetime
) -> list[HourlyEnergy]:
    """Hourly consumption of the given lights for buckets in [start, end)."""
    with conn.cursor(row_factory=class_row(HourlyEnergy)) as cur:
        cur.execute(_HOURLY, {"ids": device_ids, "start": start, "end": end})
        return [row for row in cur.fetchall() if row.bucket >= start]


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
    return await fetch_all(conn, EnergyPeriod, _LIGHT_ENERGY, params)


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
    params = {
        "scope": scope,
        "unit": unit,
        "tz": tz,
        "start": start,
        "end": end,
        "key": key,
        "realtime": realtime,
    }
    return await fetch_all(conn, EnergyPeriod, _GROUP_ENERGY, params)


async def refresh_energy_rollups(
    conn: psycopg.AsyncConnection, start: datetime, end: datetime
) -> datetime | None:
    """Recompute the circuit/district rollups for [start, end) (one step at most, see 0008);
    returns the new watermark (None: no readings, nothing materialised)."""
    async with conn.cursor() as cur:
        await cur.execute(_REFRESH, (start, end, ROLLUP_STEP))
        row = await cur.fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def rollup_watermark(conn: psycopg.Connection) -> datetime | None:
    """Hours before this are materialised in the rollups (None: none yet)."""
    row = conn.execute(ROLLUP_WATERMARK).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def catch_up_energy_rollups(
    conn: psycopg.Connection,
    now: datetime,
    lookback: timedelta,
    *,
    step: timedelta = ROLLUP_STEP,
) -> datetime | None:
    """Materialise the rollups up to the hour holding ``now``, recomputing at least the last
    ``lookback``; one transaction per step (autocommit ``conn``). Returns the watermark."""
    mark = rollup_watermark(conn)
    while True:
        # The refresh starts at least(start, watermark): behind, each call continues from the
        # watermark one step further; caught up, it recomputes [now - lookback, now).
        row = conn.execute(_REFRESH, (now - lookback, now, max(step, lookback))).fetchone()
        assert row is not None
        moved: datetime | None = row[0]
        if moved is None or (mark is not None and moved <= mark):
            return moved  # no readings at all, or caught up
        mark = moved
        if now - mark < timedelta(hours=1):
            return mark
