"""Device registry reads and writes: bulk and fleet lookups for the CLI and the ingestor
(synchronous), filtered pages, single devices and vehicle changes for the API (async)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import psycopg
from psycopg.rows import class_row

from telemetry.errors import RegistryImportError
from telemetry.registry import DeviceRecord
from telemetry.storage._rows import filter_values
from telemetry.topics import Fleet

_COLUMNS: Final = (
    "device_id, fleet, label, route, district, circuit, rated_w, lat, lon, operator, "
    "external_id, auto_registered, created_at, updated_at"
)

_UPSERT: Final = """
INSERT INTO devices
    (device_id, fleet, label, route, district, circuit, rated_w, lat, lon, operator, external_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (device_id) DO UPDATE SET
    fleet = EXCLUDED.fleet, label = EXCLUDED.label, route = EXCLUDED.route,
    district = EXCLUDED.district, circuit = EXCLUDED.circuit, rated_w = EXCLUDED.rated_w,
    lat = EXCLUDED.lat, lon = EXCLUDED.lon, operator = EXCLUDED.operator,
    external_id = EXCLUDED.external_id,
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
    external_id: str | None
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
    """Insert or update devices by ``device_id`` in one transaction; returns how many.

    Raises ``RegistryImportError`` when an ``external_id`` would belong to two devices."""
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(_UPSERT, [r.as_row() for r in records])
    except psycopg.errors.UniqueViolation as exc:
        raise RegistryImportError(f"nothing imported: {external_id_taken(exc)}") from None
    return len(records)


def external_id_taken(exc: psycopg.errors.UniqueViolation) -> str:
    """A person's reading of the external-id uniqueness violation (its detail names the id)."""
    detail = exc.diag.message_detail or ""
    return f"an external_id already belongs to another device ({detail})".replace(" ()", "")


@dataclass(frozen=True, slots=True)
class ExternalDevice:
    """Who a protocol identity is: the registered device and its fleet."""

    external_id: str
    device_id: str
    fleet: Fleet


async def devices_by_external_id(
    conn: psycopg.AsyncConnection, external_ids: Collection[str]
) -> dict[str, ExternalDevice]:
    """The registered devices carrying any of ``external_ids``."""
    if not external_ids:
        return {}
    cur = await conn.execute(
        "SELECT external_id, device_id, fleet FROM devices WHERE external_id = ANY(%s)",
        (list(external_ids),),
    )
    return {
        r[0]: ExternalDevice(external_id=r[0], device_id=r[1], fleet=Fleet(r[2]))
        for r in await cur.fetchall()
    }


async def register_external_device(
    conn: psycopg.AsyncConnection, external_id: str, device_id: str, fleet: Fleet
) -> ExternalDevice:
    """Auto-register (demos only) a device heard through a gateway; an existing one wins."""
    await conn.execute(
        "INSERT INTO devices (device_id, fleet, external_id, auto_registered) "
        "VALUES (%s, %s, %s, true) ON CONFLICT DO NOTHING",
        (device_id, fleet.value, external_id),
    )
    found = await devices_by_external_id(conn, [external_id])
    return found.get(external_id) or ExternalDevice(
        external_id=external_id, device_id=device_id, fleet=fleet
    )


def all_devices(conn: psycopg.Connection) -> list[DeviceRecord]:
    """Every registered device, ordered by id."""
    with conn.cursor(row_factory=class_row(DeviceRecord)) as cur:
        cur.execute(
            "SELECT device_id, fleet, label, route, district, circuit, rated_w, lat, lon, "
            "operator, external_id FROM devices ORDER BY device_id"
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
        "fleets": filter_values(fleets),
        "districts": filter_values(districts),
        "routes": filter_values(routes),
        "circuits": filter_values(circuits),
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
