"""Device registry reads and writes: bulk and fleet lookups for the CLI and the ingestor
(synchronous), filtered pages, single devices and vehicle changes for the API (async)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import psycopg
from psycopg.rows import class_row

from telemetry.registry import DeviceRecord
from telemetry.topics import Fleet

_COLUMNS: Final = (
    "device_id, fleet, label, route, district, circuit, rated_w, lat, lon, operator, "
    "auto_registered, created_at, updated_at"
)

_UPSERT: Final = """
INSERT INTO devices (device_id, fleet, label, route, district, circuit, rated_w, lat, lon, operator)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (device_id) DO UPDATE SET
    fleet = EXCLUDED.fleet, label = EXCLUDED.label, route = EXCLUDED.route,
    district = EXCLUDED.district, circuit = EXCLUDED.circuit, rated_w = EXCLUDED.rated_w,
    lat = EXCLUDED.lat, lon = EXCLUDED.lon, operator = EXCLUDED.operator,
    auto_registered = false, updated_at = now()
"""

_UPSERT_RETURNING: Final = f"{_UPSERT}RETURNING {_COLUMNS}, (xmax = 0) AS created"

_LIST: Final = f"""
SELECT {_COLUMNS} FROM devices
WHERE (%(fleets)s::text[] IS NULL OR fleet = ANY(%(fleets)s))
  AND (%(districts)s::text[] IS NULL OR district = ANY(%(districts)s))
  AND (%(routes)s::text[] IS NULL OR route = ANY(%(routes)s))
  AND (%(circuits)s::text[] IS NULL OR circuit = ANY(%(circuits)s))
  AND (%(after)s::text IS NULL OR device_id > %(after)s)
ORDER BY device_id
LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class DeviceRow:
    """One row of ``devices``."""

    device_id: str
    fleet: str
    label: str | None
    route: str | None
    district: str | None
    circuit: str | None
    rated_w: float | None
    lat: float | None
    lon: float | None
    operator: str | None
    auto_registered: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class VehicleInfo:
    """What the live feed needs to know about a bus or truck."""

    device_id: str
    fleet: str
    label: str | None
    route: str | None
    district: str | None
    updated_at: datetime


def upsert_devices(conn: psycopg.Connection, records: Sequence[DeviceRecord]) -> int:
    """Insert or update devices by ``device_id`` in one transaction; returns how many."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(_UPSERT, [r.as_row() for r in records])
    return len(records)


def all_devices(conn: psycopg.Connection) -> list[DeviceRecord]:
    """Every registered device, ordered by id."""
    with conn.cursor(row_factory=class_row(DeviceRecord)) as cur:
        cur.execute(
            "SELECT device_id, fleet, label, route, district, circuit, rated_w, lat, lon, operator "
            "FROM devices ORDER BY device_id"
        )
        return cur.fetchall()


def fleets_changed_since(
    conn: psycopg.Connection, since: datetime | None
) -> tuple[dict[str, Fleet], datetime | None]:
    """Device fleets updated after ``since`` (all when None), and the newest update time seen."""
    rows = conn.execute(
        "SELECT device_id, fleet, updated_at FROM devices "
        "WHERE %(since)s::timestamptz IS NULL OR updated_at > %(since)s",
        {"since": since},
    ).fetchall()
    newest = max((r[2] for r in rows), default=since)
    return {r[0]: Fleet(r[1]) for r in rows}, newest


def fleets_of(conn: psycopg.Connection, device_ids: Iterable[str]) -> dict[str, Fleet]:
    """The fleets of those of ``device_ids`` that are registered."""
    ids = list(device_ids)
    if not ids:
        return {}
    rows = conn.execute(
        "SELECT device_id, fleet FROM devices WHERE device_id = ANY(%s)", (ids,)
    ).fetchall()
    return {r[0]: Fleet(r[1]) for r in rows}


def _opt(values: Collection[str] | None) -> list[str] | None:
    return sorted(values) if values is not None else None


async def list_devices(
    conn: psycopg.AsyncConnection,
    *,
    fleets: Collection[str] | None = None,
    districts: Collection[str] | None = None,
    routes: Collection[str] | None = None,
    circuits: Collection[str] | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[DeviceRow]:
    """Devices matching every given filter, by id, starting after ``after`` (keyset paging)."""
    params = {
        "fleets": _opt(fleets),
        "districts": _opt(districts),
        "routes": _opt(routes),
        "circuits": _opt(circuits),
        "after": after,
        "limit": limit,
    }
    async with conn.cursor(row_factory=class_row(DeviceRow)) as cur:
        await cur.execute(_LIST, params)
        return await cur.fetchall()


async def get_device(conn: psycopg.AsyncConnection, device_id: str) -> DeviceRow | None:
    """One device, or None."""
    async with conn.cursor(row_factory=class_row(DeviceRow)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM devices WHERE device_id = %s", (device_id,))
        return await cur.fetchone()


async def upsert_device(
    conn: psycopg.AsyncConnection, record: DeviceRecord
) -> tuple[DeviceRow, bool]:
    """Insert or replace one device; returns the row and whether it was created."""
    async with conn.cursor() as cur:
        await cur.execute(_UPSERT_RETURNING, record.as_row())
        row = await cur.fetchone()
    assert row is not None
    return DeviceRow(*row[:-1]), bool(row[-1])


async def vehicles_changed_since(
    conn: psycopg.AsyncConnection, since: datetime | None
) -> list[VehicleInfo]:
    """Buses and trucks registered or changed after ``since`` (all when None)."""
    async with conn.cursor(row_factory=class_row(VehicleInfo)) as cur:
        await cur.execute(
            "SELECT device_id, fleet, label, route, district, updated_at FROM devices "
            "WHERE fleet IN ('bus', 'truck') "
            "AND (%(since)s::timestamptz IS NULL OR updated_at > %(since)s)",
            {"since": since},
        )
        return await cur.fetchall()
