"""Reference data and the reads the alert rules need: device metadata, route polylines,
collection rounds, bus stops and line schedules (the network file), and the stored readings an
alerts worker replays to catch up after a restart. The records are in
``telemetry.reference_data``."""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg.rows import args_row, class_row, kwargs_row
from psycopg.types.json import Jsonb

from telemetry.decoding import DeadLetter, EnergyRow, FaultRow, PositionRow
from telemetry.geometry import LatLon
from telemetry.reference_data import (
    Asset,
    BusStop,
    CollectionPoint,
    CollectionRound,
    LastHeard,
    LineSchedule,
    LineStop,
    Network,
)


def _asset_updated(*, updated_at: datetime, **columns: Any) -> tuple[Asset, datetime]:
    return Asset(**columns), updated_at


def assets_changed_since(
    conn: psycopg.Connection, since: datetime | None
) -> tuple[list[Asset], datetime | None]:
    """Devices updated after ``since`` (all when None), and the newest update time seen."""
    with conn.cursor(row_factory=kwargs_row(_asset_updated)) as cur:
        rows = cur.execute(
            "SELECT device_id, fleet, route, district, circuit, rated_w, lat, lon, updated_at "
            "FROM devices WHERE %(since)s::timestamptz IS NULL OR updated_at > %(since)s",
            {"since": since},
        ).fetchall()
    newest = max((updated for _, updated in rows), default=since)
    return [asset for asset, _ in rows], newest


def registered_ids(conn: psycopg.Connection) -> set[str]:
    """The id of every registered device (a device taken out of service is deleted)."""
    return {r[0] for r in conn.execute("SELECT device_id FROM devices").fetchall()}


def last_heard(conn: psycopg.Connection) -> list[LastHeard]:
    """Every registered device with the newest energy reading (lights) or fix (vehicles)."""
    with conn.cursor(row_factory=class_row(LastHeard)) as cur:
        return cur.execute(
            "SELECT d.device_id, d.fleet, d.created_at AS registered_at, "
            "CASE WHEN d.fleet = 'light' THEN l.received_at ELSE v.received_at END "
            "AS received_at, v.time AS fix_time, v.lat, v.lon, v.speed_kmh FROM devices d "
            "LEFT JOIN light_latest l ON d.fleet = 'light' AND l.device_id = d.device_id "
            "LEFT JOIN vehicle_latest v ON d.fleet <> 'light' AND v.device_id = d.device_id "
            "ORDER BY d.device_id"
        ).fetchall()


# -- route shapes and collection rounds ---------------------------------------------------------


def route_shapes(conn: psycopg.Connection) -> dict[str, list[LatLon]]:
    """Every route polyline by route name."""
    rows = conn.execute("SELECT route, points FROM route_shapes").fetchall()
    return {r[0]: [(float(p[0]), float(p[1])) for p in r[1]] for r in rows}


def upsert_route_shapes(conn: psycopg.Connection, shapes: Mapping[str, Sequence[LatLon]]) -> int:
    """Insert or replace route polylines in one transaction; returns how many."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO route_shapes (route, points) VALUES (%s, %s) ON CONFLICT (route) "
            "DO UPDATE SET points = EXCLUDED.points, updated_at = now()",
            [(route, Jsonb([list(p) for p in points])) for route, points in shapes.items()],
        )
    return len(shapes)


def _round_point(*, round: str, **columns: Any) -> tuple[str, CollectionPoint]:
    return round, CollectionPoint(**columns)


def collection_rounds(conn: psycopg.Connection) -> dict[str, CollectionRound]:
    """Every collection round with its points, by round name."""
    points: dict[str, list[CollectionPoint]] = {}
    with conn.cursor(row_factory=kwargs_row(_round_point)) as cur:
        for name, point in cur.execute(
            "SELECT round, seq, lat, lon, radius_m, label FROM collection_points "
            "ORDER BY round, seq"
        ):
            points.setdefault(name, []).append(point)

    def with_points(**columns: Any) -> CollectionRound:
        return CollectionRound(**columns, points=tuple(points.get(columns["round"], ())))

    with conn.cursor(row_factory=kwargs_row(with_points)) as rounds_cur:
        rounds = rounds_cur.execute(
            "SELECT round, shift_start, shift_end, timezone FROM collection_rounds"
        ).fetchall()
    return {r.round: r for r in rounds}


def upsert_collection_rounds(conn: psycopg.Connection, rounds: Sequence[CollectionRound]) -> int:
    """Insert or replace rounds and their points in one transaction; returns how many rounds."""
    with conn.transaction(), conn.cursor() as cur:
        for r in rounds:
            cur.execute(
                "INSERT INTO collection_rounds (round, shift_start, shift_end, timezone) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (round) DO UPDATE SET "
                "shift_start = EXCLUDED.shift_start, shift_end = EXCLUDED.shift_end, "
                "timezone = EXCLUDED.timezone, updated_at = now()",
                (r.round, r.shift_start, r.shift_end, r.timezone),
            )
            cur.execute("DELETE FROM collection_points WHERE round = %s", (r.round,))
            cur.executemany(
                "INSERT INTO collection_points (round, seq, lat, lon, radius_m, label) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [(r.round, p.seq, p.lat, p.lon, p.radius_m, p.label) for p in r.points],
            )
    return len(rounds)


# -- bus stops and line schedules ------------------------------------------------------------------


def bus_stops(conn: psycopg.Connection) -> list[BusStop]:
    """Every bus stop, by stop id."""
    with conn.cursor(row_factory=class_row(BusStop)) as cur:
        return cur.execute(
            "SELECT stop_id, name, lat, lon FROM bus_stops ORDER BY stop_id"
        ).fetchall()


def line_stops(conn: psycopg.Connection) -> list[LineStop]:
    """Every line's stops, by line then driving order."""
    with conn.cursor(row_factory=class_row(LineStop)) as cur:
        return cur.execute(
            "SELECT route, seq, stop_id FROM line_stops ORDER BY route, seq"
        ).fetchall()


def line_schedules(conn: psycopg.Connection) -> list[LineSchedule]:
    """Every line's scheduled headways, by line then band start."""
    with conn.cursor(row_factory=class_row(LineSchedule)) as cur:
        return cur.execute(
            "SELECT route, start_local, end_local, headway_s, timezone FROM line_schedules "
            "ORDER BY route, start_local"
        ).fetchall()


def upsert_bus_stops(conn: psycopg.Connection, stops: Sequence[BusStop]) -> int:
    """Insert or replace bus stops by id in one transaction; returns how many."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO bus_stops (stop_id, name, lat, lon) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (stop_id) DO UPDATE SET name = EXCLUDED.name, lat = EXCLUDED.lat, "
            "lon = EXCLUDED.lon, updated_at = now()",
            [(s.stop_id, s.name, s.lat, s.lon) for s in stops],
        )
    return len(stops)


def replace_line_stops(conn: psycopg.Connection, lines: Mapping[str, Sequence[str]]) -> int:
    """Set the stop sequence of each given line (others untouched); returns how many lines."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("DELETE FROM line_stops WHERE route = ANY(%s)", (list(lines),))
        cur.executemany(
            "INSERT INTO line_stops (route, seq, stop_id) VALUES (%s, %s, %s)",
            [(route, seq, stop) for route, ids in lines.items() for seq, stop in enumerate(ids)],
        )
    return len(lines)


def replace_line_schedules(conn: psycopg.Connection, schedules: Sequence[LineSchedule]) -> int:
    """Set the schedule bands of each line named in ``schedules`` (others untouched)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "DELETE FROM line_schedules WHERE route = ANY(%s)",
            (sorted({s.route for s in schedules}),),
        )
        cur.executemany(
            "INSERT INTO line_schedules (route, start_local, end_local, headway_s, timezone) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(s.route, s.start_local, s.end_local, s.headway_s, s.timezone) for s in schedules],
        )
    return len(schedules)


def import_network(conn: psycopg.Connection, network: Network) -> None:
    """Store a whole network file in one transaction: all of it or, on error, nothing.

    Shapes, rounds and stops are upserted by name; the stop sequence and the schedule
    bands of each line in the file replace that line's previous ones.
    """
    with conn.transaction():
        upsert_route_shapes(conn, network.shapes)
        upsert_collection_rounds(conn, network.rounds)
        upsert_bus_stops(conn, network.stops)
        replace_line_stops(conn, network.line_stops)
        replace_line_schedules(conn, network.schedules)


# -- stored readings, for catch-up ---------------------------------------------------------------

StoredRow = PositionRow | EnergyRow | FaultRow | DeadLetter

_QUERIES: Final = {
    "position": (
        "SELECT device_id, time, received_at, lat, lon, speed_kmh, heading_deg, accuracy_m, "
        "route, seq FROM vehicle_positions",
        PositionRow,
    ),
    "energy": (
        "SELECT device_id, time, received_at, energy_wh, power_w, voltage_v, current_a, "
        "power_factor, lamp_on, dim_pct, seq FROM light_energy",
        EnergyRow,
    ),
    "fault": (
        "SELECT device_id, time, received_at, fault, active, detail FROM light_faults",
        FaultRow,
    ),
}
_WINDOW: Final = (
    " WHERE time >= %(time_from)s - %(lateness)s AND received_at >= %(received_from)s "
    "AND received_at < %(received_to)s ORDER BY received_at, device_id, time"
)
_NULL_ISLANDS: Final = (
    "SELECT received_at, topic, payload, reason, reason_code, device_id, element_index "
    "FROM dead_letters WHERE reason_code = 'null_island' AND received_at >= %(positions_from)s "
    "AND received_at < %(received_to)s ORDER BY received_at, id"
)


def _dead_letter(*values: Any) -> DeadLetter:
    row = list(values)
    row[2] = bytes(row[2])
    return DeadLetter(*row)


def stored_readings(
    conn: psycopg.Connection,
    received_from: datetime,
    received_to: datetime,
    *,
    positions_from: datetime | None = None,
    lateness: timedelta = timedelta(hours=1),
    fetch: int = 5000,
) -> Iterator[StoredRow]:
    """Readings stored with ``received_from <= received_at < received_to``, in receipt order.

    Positions (and the (0, 0) fixes the ingestor dead-letters as ``null_island``) start at
    ``positions_from`` instead when given. Device time is bounded by ``lateness`` before the
    window so the scan stays in recent partitions. Streams with server-side cursors inside
    one transaction of ``conn``.
    """
    positions_from = positions_from or received_from
    base = {"received_to": received_to, "lateness": lateness}
    with conn.transaction(), contextlib.ExitStack() as cursors:
        streams: list[Iterator[StoredRow]] = []
        for name, (select, row_type) in _QUERIES.items():
            start = positions_from if name == "position" else received_from
            params = base | {"time_from": start, "received_from": start}
            cur = cursors.enter_context(
                conn.cursor(name=f"catchup_{name}", row_factory=args_row(row_type))
            )
            cur.itersize = fetch
            cur.execute(select + _WINDOW, params)
            streams.append(iter(cur))
        letters = cursors.enter_context(
            conn.cursor(name="catchup_letters", row_factory=args_row(_dead_letter))
        )
        letters.itersize = fetch
        letters.execute(_NULL_ISLANDS, base | {"positions_from": positions_from})
        streams.append(iter(letters))
        yield from heapq.merge(*streams, key=_received_at)


def _received_at(row: StoredRow) -> datetime:
    return row.received_at
