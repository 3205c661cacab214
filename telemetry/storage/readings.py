"""Batch writes of readings: COPY into session staging tables, then insert skipping conflicts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

import psycopg

from telemetry.decoding import DeadLetter, Decoded, EnergyRow, FaultRow, PositionRow
from telemetry.storage.backend import Backend, recorded_backend
from telemetry.storage.maintenance import ensure_partitions
from telemetry.topics import Fleet

TableName = Literal["vehicle_positions", "light_energy", "light_faults"]


@dataclass(frozen=True, slots=True)
class _Staging:
    create: str
    copy: str
    types: tuple[str, ...]
    insert: str


# Staging tables are temporary and emptied at each commit; a rolled-back batch leaves nothing.
_STAGING: Final[dict[TableName, _Staging]] = {
    "vehicle_positions": _Staging(
        create="CREATE TEMP TABLE IF NOT EXISTS stage_vehicle_positions "
        "(LIKE vehicle_positions) ON COMMIT DELETE ROWS",
        copy="COPY stage_vehicle_positions (device_id, time, received_at, lat, lon, speed_kmh, "
        "heading_deg, accuracy_m, route, seq) FROM STDIN (FORMAT BINARY)",
        types=(
            "text",
            "timestamptz",
            "timestamptz",
            "float8",
            "float8",
            "float8",
            "float8",
            "float8",
            "text",
            "int8",
        ),
        insert="INSERT INTO vehicle_positions SELECT * FROM stage_vehicle_positions "
        "ON CONFLICT DO NOTHING",
    ),
    "light_energy": _Staging(
        create="CREATE TEMP TABLE IF NOT EXISTS stage_light_energy "
        "(LIKE light_energy) ON COMMIT DELETE ROWS",
        copy="COPY stage_light_energy (device_id, time, received_at, energy_wh, power_w, "
        "voltage_v, current_a, power_factor, lamp_on, dim_pct, seq) FROM STDIN (FORMAT BINARY)",
        types=(
            "text",
            "timestamptz",
            "timestamptz",
            "float8",
            "float8",
            "float8",
            "float8",
            "float8",
            "bool",
            "float8",
            "int8",
        ),
        insert="INSERT INTO light_energy SELECT * FROM stage_light_energy ON CONFLICT DO NOTHING",
    ),
    "light_faults": _Staging(
        create="CREATE TEMP TABLE IF NOT EXISTS stage_light_faults "
        "(LIKE light_faults) ON COMMIT DELETE ROWS",
        copy="COPY stage_light_faults (device_id, time, received_at, fault, active, detail) "
        "FROM STDIN (FORMAT BINARY)",
        types=("text", "timestamptz", "timestamptz", "text", "bool", "text"),
        insert="INSERT INTO light_faults SELECT * FROM stage_light_faults ON CONFLICT DO NOTHING",
    ),
}

_INSERT_DEAD_LETTER: Final = (
    "INSERT INTO dead_letters (received_at, topic, payload, reason, reason_code, device_id, "
    "element_index) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
_REGISTER_DEVICE: Final = (
    "INSERT INTO devices (device_id, fleet, auto_registered) VALUES (%s, %s, true) "
    "ON CONFLICT (device_id) DO NOTHING"
)


@dataclass(slots=True)
class Batch:
    """Rows of many messages, written in one transaction."""

    positions: list[PositionRow] = field(default_factory=list)
    energy: list[EnergyRow] = field(default_factory=list)
    faults: list[FaultRow] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    new_devices: dict[str, Fleet] = field(default_factory=dict)

    def add(self, decoded: Decoded) -> None:
        """Append what one message decoded to."""
        self.positions.extend(decoded.positions)
        self.energy.extend(decoded.energy)
        self.faults.extend(decoded.faults)
        self.dead_letters.extend(decoded.dead_letters)
        if decoded.new_device is not None:
            device_id, fleet = decoded.new_device
            self.new_devices.setdefault(device_id, fleet)

    def tables(self) -> list[tuple[TableName, Sequence[tuple[object, ...]]]]:
        """The non-empty time-series tables of this batch with their rows."""
        pairs: list[tuple[TableName, Sequence[tuple[object, ...]]]] = [
            ("vehicle_positions", self.positions),
            ("light_energy", self.energy),
            ("light_faults", self.faults),
        ]
        return [(name, rows) for name, rows in pairs if rows]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Rows a committed batch added; ``staged - inserted`` were already stored (duplicates)."""

    inserted: dict[str, int]
    staged: dict[str, int]
    dead_letters: int
    devices_registered: int


def contiguous_spans(
    ranges: Sequence[tuple[datetime, datetime]],
) -> list[tuple[datetime, datetime]]:
    """Merge sorted [from, to) partition ranges into the spans they cover without a gap."""
    spans: list[tuple[datetime, datetime]] = []
    for start, end in ranges:
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


class ReadingStore:
    """Writes batches on one connection it does not own; one transaction per batch."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        with conn.transaction():
            self.backend = recorded_backend(conn)
            for staging in _STAGING.values():
                conn.execute(staging.create)
        # Plain backend: the contiguous time spans known to have partitions, per table. Spans,
        # not one (min, max) range: partitions made for a late backfill leave gaps between them.
        self._covered: dict[str, list[tuple[datetime, datetime]]] = {}

    def _cover(self, table: TableName, rows: Sequence[tuple[object, ...]]) -> None:
        if self.backend is not Backend.PLAIN:
            return
        times = [row[1] for row in rows]
        assert all(isinstance(t, datetime) for t in times)
        lo: datetime = min(times)  # type: ignore[type-var,assignment]
        hi: datetime = max(times)  # type: ignore[type-var,assignment]
        if any(a <= lo and hi < b for a, b in self._covered.get(table, ())):
            return
        ensure_partitions(self.conn, table, lo, hi + timedelta(microseconds=1))
        ranges = self.conn.execute(
            "SELECT range_from, range_to FROM rasd_partitions WHERE parent_table = %s"
            " ORDER BY range_from",
            (table,),
        ).fetchall()
        self._covered[table] = contiguous_spans(ranges)

    def write(self, batch: Batch) -> WriteResult:
        """Store a batch atomically; duplicates of stored readings are skipped."""
        inserted: dict[str, int] = {}
        staged: dict[str, int] = {}
        conn = self.conn
        try:
            return self._write(conn, batch, inserted, staged)
        except BaseException:
            # Partitions made inside the failed transaction were rolled back with it.
            self._covered.clear()
            raise

    def _write(
        self,
        conn: psycopg.Connection,
        batch: Batch,
        inserted: dict[str, int],
        staged: dict[str, int],
    ) -> WriteResult:
        with conn.transaction():
            cur = conn.cursor()
            if batch.new_devices:
                cur.executemany(
                    _REGISTER_DEVICE, [(d, f.value) for d, f in batch.new_devices.items()]
                )
            for table, rows in batch.tables():
                self._cover(table, rows)
                staging = _STAGING[table]
                with cur.copy(staging.copy) as copy:
                    copy.set_types(staging.types)
                    for row in rows:
                        copy.write_row(row)
                cur.execute(staging.insert)
                inserted[table] = cur.rowcount
                staged[table] = len(rows)
            if batch.dead_letters:
                cur.executemany(
                    _INSERT_DEAD_LETTER,
                    [
                        (
                            d.received_at,
                            d.topic,
                            d.payload,
                            d.reason,
                            d.reason_code,
                            d.device_id,
                            d.element_index,
                        )
                        for d in batch.dead_letters
                    ],
                )
        return WriteResult(inserted, staged, len(batch.dead_letters), len(batch.new_devices))
