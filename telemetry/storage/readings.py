"""Batch writes of readings: COPY into session staging tables, then insert skipping conflicts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal

import psycopg
from psycopg import abc, adapt, pq, sql

# Private to psycopg, but the very formatter ``Copy.write_row`` uses: data built with it is
# byte for byte what the writer's COPY would have sent.
from psycopg._copy_base import BinaryFormatter

from telemetry.decoding import DeadLetter, Decoded, EnergyRow, FaultRow, PositionRow
from telemetry.storage.backend import Backend, recorded_backend
from telemetry.storage.dead_letters import INSERT_DEAD_LETTER
from telemetry.storage.maintenance import ensure_partitions_at
from telemetry.topics import Fleet

TableName = Literal["vehicle_positions", "light_energy", "light_faults"]


@dataclass(frozen=True, slots=True)
class _Staging:
    create: sql.Composed
    copy: sql.Composed
    types: tuple[str, ...]
    insert: sql.Composed


# The columns every reading table starts with, then each table's others, in COPY order.
_HEAD: Final = "device_id text, time timestamptz, received_at timestamptz"
_COLUMNS: Final[dict[TableName, str]] = {
    "vehicle_positions": "lat float8, lon float8, speed_kmh float8, heading_deg float8, "
    "accuracy_m float8, route text, seq int8",
    "light_energy": "energy_wh float8, power_w float8, voltage_v float8, current_a float8, "
    "power_factor float8, lamp_on bool, dim_pct float8, seq int8",
    "light_faults": "fault text, active bool, detail text",
}


def _staging(table: TableName, columns: str) -> _Staging:
    """The statements that fill ``table`` through its session staging table ``stage_<table>``."""
    pairs = [c.split() for c in f"{_HEAD}, {columns}".split(",")]
    stage, target = sql.Identifier(f"stage_{table}"), sql.Identifier(table)
    names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in pairs)
    return _Staging(
        create=sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(
            stage, target
        ),
        copy=sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(stage, names),
        types=tuple(kind for _, kind in pairs),
        insert=sql.SQL("INSERT INTO {} SELECT * FROM {} ON CONFLICT DO NOTHING").format(
            target, stage
        ),
    )


# Staging tables are temporary and emptied at each commit; a rolled-back batch leaves nothing.
_STAGING: Final = {table: _staging(table, columns) for table, columns in _COLUMNS.items()}

_REGISTER_DEVICE: Final = (
    "INSERT INTO devices (device_id, fleet, auto_registered) VALUES (%s, %s, true) "
    "ON CONFLICT (device_id) DO NOTHING"
)


class RowEncoder:
    """COPY BINARY data of a batch's rows, built where the batch is decoded.

    The writer then only ships bytes: formatting thousands of rows is CPU work that would
    otherwise hold the writer (and the GIL) between its round trips to the database. One
    encoder per thread (its transformers cache dumpers).
    """

    def __init__(self) -> None:
        self._transformers: dict[TableName, abc.Transformer] = {}
        for table, staging in _STAGING.items():
            transformer = adapt.Transformer.from_context(None)
            types = transformer.adapters.types
            oids = [types.get_oid(name) for name in staging.types]
            transformer.set_dumper_types(oids, pq.Format.BINARY)
            self._transformers[table] = transformer

    def encode(self, table: TableName, rows: Sequence[tuple[object, ...]]) -> bytes:
        """The whole COPY payload (signature, rows, trailer) of ``rows`` for ``table``."""
        formatter = BinaryFormatter(self._transformers[table])
        write_row = formatter.write_row
        chunks = [chunk for row in rows if (chunk := write_row(row))]
        chunks.append(formatter.end())
        return b"".join(chunks)


@dataclass(slots=True)
class Batch:
    """Rows of many messages, written in one transaction."""

    positions: list[PositionRow] = field(default_factory=list)
    energy: list[EnergyRow] = field(default_factory=list)
    faults: list[FaultRow] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    new_devices: dict[str, Fleet] = field(default_factory=dict)
    # COPY payloads by table, from ``encode``; the writer formats the rows itself without.
    encoded: dict[TableName, bytes] | None = None

    def encode(self, encoder: RowEncoder) -> None:
        """Build the COPY payloads now (in the calling thread), for the writer to send."""
        self.encoded = {table: encoder.encode(table, rows) for table, rows in self.tables()}

    def add(self, decoded: Decoded) -> None:
        """Append what one message decoded to."""
        self.encoded = None
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
        spans = self._covered.get(table, ())
        times = [row[1] for row in rows]
        assert all(isinstance(t, datetime) for t in times)
        lo: datetime = min(times)  # type: ignore[type-var,assignment]
        hi: datetime = max(times)  # type: ignore[type-var,assignment]
        if any(a <= lo and hi < b for a, b in spans):
            return  # the usual batch: every reading inside one span already partitioned
        missing: set[datetime] = set()
        for t in times:
            assert isinstance(t, datetime)
            if not any(a <= t < b for a, b in spans):
                # One time per UTC day is enough: no partition step is shorter than a day.
                missing.add(t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0))
        if not missing:
            return
        ensure_partitions_at(self.conn, table, sorted(missing))
        ranges = self.conn.execute(
            "SELECT range_from, range_to FROM rasd_partitions WHERE parent_table = %s"
            " ORDER BY range_from",
            (table,),
        ).fetchall()
        self._covered[table] = contiguous_spans(ranges)

    def write(self, batch: Batch) -> WriteResult:
        """Store a batch atomically; duplicates of stored readings are skipped."""
        try:
            return self._write(batch)
        except BaseException:
            # Partitions made inside the failed transaction were rolled back with it.
            self._covered.clear()
            raise

    def _write(self, batch: Batch) -> WriteResult:
        inserted: dict[str, int] = {}
        staged: dict[str, int] = {}
        conn = self.conn
        with conn.transaction():
            cur = conn.cursor()
            if batch.new_devices:
                cur.executemany(
                    _REGISTER_DEVICE, [(d, f.value) for d, f in batch.new_devices.items()]
                )
            encoded = batch.encoded
            for table, rows in batch.tables():
                self._cover(table, rows)
                staging = _STAGING[table]
                with cur.copy(staging.copy) as copy:
                    if encoded is not None:
                        copy.write(encoded[table])
                    else:
                        copy.set_types(staging.types)
                        for row in rows:
                            copy.write_row(row)
                cur.execute(staging.insert)
                inserted[table] = cur.rowcount
                staged[table] = len(rows)
            if batch.dead_letters:
                # A DeadLetter is a tuple in the statement's column order.
                cur.executemany(INSERT_DEAD_LETTER, batch.dead_letters)
        return WriteResult(inserted, staged, len(batch.dead_letters), len(batch.new_devices))
