"""Device registry reads and writes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Final

import psycopg
from psycopg.rows import class_row

from telemetry.registry import DeviceRecord
from telemetry.topics import Fleet

_UPSERT: Final = """
INSERT INTO devices (device_id, fleet, label, route, district, circuit, rated_w, lat, lon, operator)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (device_id) DO UPDATE SET
    fleet = EXCLUDED.fleet, label = EXCLUDED.label, route = EXCLUDED.route,
    district = EXCLUDED.district, circuit = EXCLUDED.circuit, rated_w = EXCLUDED.rated_w,
    lat = EXCLUDED.lat, lon = EXCLUDED.lon, operator = EXCLUDED.operator,
    auto_registered = false, updated_at = now()
"""


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
