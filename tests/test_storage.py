"""Storage writes and reads on the shared PostgreSQL (plain backend)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from telemetry.decoding import DeadLetter, EnergyRow, FaultRow, PositionRow
from telemetry.settings import Settings
from telemetry.storage.energy import hourly_energy
from telemetry.storage.maintenance import run_upkeep
from telemetry.storage.readings import Batch, ReadingStore, RowEncoder
from telemetry.topics import Fleet

NOW = datetime.now(UTC).replace(microsecond=0)


def _position(device: str, t: datetime, lat: float = 31.6) -> PositionRow:
    return PositionRow(device, t, NOW, lat, -8.0, 20.0, 90.0, 3.0, "A", 1)


def test_batch_is_stored_once_and_duplicates_are_skipped(db: psycopg.Connection) -> None:
    store = ReadingStore(db)
    batch = Batch(
        positions=[_position("B-1", NOW - timedelta(seconds=i)) for i in range(5)],
        energy=[EnergyRow("L-1", NOW, NOW, 10.0, 60.0, 230.0, 0.26, 0.95, True, 100.0, 7)],
        faults=[FaultRow("L-1", NOW, NOW, "lampFailure", True, None)],
        dead_letters=[DeadLetter(NOW, "t", b"\x00\xff", "not_utf8: x", "not_utf8", None, None)],
        new_devices={"B-1": Fleet.BUS},
    )
    first = store.write(batch)
    assert first.inserted == {"vehicle_positions": 5, "light_energy": 1, "light_faults": 1}
    again = store.write(batch)
    assert again.inserted == {"vehicle_positions": 0, "light_energy": 0, "light_faults": 0}
    assert again.staged["vehicle_positions"] == 5
    counts = db.execute(
        "SELECT (SELECT count(*) FROM vehicle_positions), (SELECT count(*) FROM light_energy), "
        "(SELECT count(*) FROM light_faults), (SELECT count(*) FROM dead_letters), "
        "(SELECT count(*) FROM devices WHERE auto_registered)"
    ).fetchone()
    assert counts == (5, 1, 1, 1, 1)
    assert db.execute("SELECT payload FROM dead_letters").fetchone() == (b"\x00\xff",)


def test_copy_data_built_beforehand_stores_the_same_rows(db: psycopg.Connection) -> None:
    """The worker thread's COPY payloads and the writer's own row by row formatting agree."""
    rows = Batch(
        positions=[_position("B-1", NOW - timedelta(seconds=i)) for i in range(3)]
        + [PositionRow("B-2", NOW, NOW, -0.0, 1e-300, None, None, None, "ä\t\n", None)],
        energy=[EnergyRow("L-1", NOW, NOW, 10.5, None, 230.0, None, 0.95, False, None, 2**62)],
        faults=[FaultRow("L-1", NOW, NOW, "lampFailure", True, "door\x01 open")],
    )
    encoded = Batch(positions=rows.positions, energy=rows.energy, faults=rows.faults)
    encoded.encode(RowEncoder())
    assert encoded.encoded is not None
    store = ReadingStore(db)
    stored = []
    for batch in (rows, encoded):
        assert store.write(batch).inserted == {
            "vehicle_positions": 4,
            "light_energy": 1,
            "light_faults": 1,
        }
        stored.append(
            [
                db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                for table in ("vehicle_positions", "light_energy", "light_faults")
            ]
        )
        db.execute("TRUNCATE vehicle_positions, light_energy, light_faults")
    assert stored[0] == stored[1]
    assert stored[0][0][-1][8] == "ä\t\n"  # B-2 sorts last


def test_same_time_different_fault_are_two_rows(db: psycopg.Connection) -> None:
    store = ReadingStore(db)
    store.write(
        Batch(
            faults=[
                FaultRow("L-1", NOW, NOW, "lampFailure", True, None),
                FaultRow("L-1", NOW, NOW, "supplyLoss", True, None),
            ]
        )
    )
    assert db.execute("SELECT count(*) FROM light_faults").fetchone() == (2,)


def test_failed_batch_leaves_nothing(db: psycopg.Connection) -> None:
    store = ReadingStore(db)
    # A NULL in a NOT NULL column makes the database refuse the whole batch.
    broken = PositionRow("B-3", NOW, NOW, None, None, None, None, None, None, None)  # type: ignore[arg-type]
    bad = Batch(
        positions=[_position("B-1", NOW), broken],
        faults=[FaultRow("L-1", NOW, NOW, "lampFailure", True, None)],
    )
    with pytest.raises(psycopg.errors.NotNullViolation):
        store.write(bad)
    assert db.execute("SELECT count(*) FROM vehicle_positions").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM light_faults").fetchone() == (0,)
    assert store.write(Batch(positions=[_position("B-1", NOW)])).inserted["vehicle_positions"] == 1


def test_partitions_are_made_for_late_readings(migrated: Settings, db: psycopg.Connection) -> None:
    store = ReadingStore(db)
    far = NOW + timedelta(days=40)  # past what migrate created ahead
    store.write(Batch(positions=[_position("B-1", far)]))
    assert db.execute(
        "SELECT count(*) FROM vehicle_positions WHERE time = %s", (far,)
    ).fetchone() == (1,)


def test_a_reading_between_two_partitioned_spans_gets_its_partition(
    migrated: Settings, db: psycopg.Connection
) -> None:
    store = ReadingStore(db)
    for days in (40, 60, 50):  # 50 lies in the gap the first two leave
        at = NOW + timedelta(days=days)
        assert store.write(Batch(positions=[_position("B-1", at)])).inserted == {
            "vehicle_positions": 1
        }


def test_a_backfill_spanning_years_makes_only_the_partitions_it_needs(
    migrated: Settings, db: psycopg.Connection
) -> None:
    # One fix from three years ago beside one from now: two days' partitions at most, not the
    # thousand between them.
    def partitions() -> int:
        row = db.execute(
            "SELECT count(*) FROM rasd_partitions WHERE parent_table = 'vehicle_positions'"
        ).fetchone()
        return int(row[0]) if row else 0

    before = partitions()
    old = NOW - timedelta(days=3 * 365)
    store = ReadingStore(db)
    batch = Batch(positions=[_position("B-1", old), _position("B-1", NOW)])
    assert store.write(batch).inserted == {"vehicle_positions": 2}
    assert partitions() == before + 1
    older = [_position("B-2", old - timedelta(days=d, hours=d)) for d in range(0, 30, 3)]
    assert store.write(Batch(positions=older)).inserted == {"vehicle_positions": 10}
    assert partitions() == before + 10


def test_partitions_of_a_failed_batch_are_made_again(
    migrated: Settings, db: psycopg.Connection
) -> None:
    store = ReadingStore(db)
    at = NOW + timedelta(days=80)
    broken = PositionRow("B-3", at, NOW, None, None, None, None, None, None, None)  # type: ignore[arg-type]
    with pytest.raises(psycopg.errors.NotNullViolation):
        store.write(Batch(positions=[_position("B-1", at), broken]))
    assert store.write(Batch(positions=[_position("B-1", at)])).inserted == {"vehicle_positions": 1}


def test_upkeep_drops_partitions_past_retention(migrated: Settings, db: psycopg.Connection) -> None:
    store = ReadingStore(db)
    store.write(Batch(positions=[_position("B-1", NOW - timedelta(days=5))]))
    later = NOW + timedelta(days=migrated.retention_positions_days + 10)
    report = run_upkeep(db, migrated, now=later)
    assert report.partitions_dropped > 0 and report.partitions_created > 0
    assert db.execute("SELECT count(*) FROM vehicle_positions").fetchone() == (0,)
    again = run_upkeep(db, migrated, now=later)
    assert again.partitions_created == 0 and again.partitions_dropped == 0


def test_hourly_energy_from_cumulative_meter(db: psycopg.Connection) -> None:
    store = ReadingStore(db)
    start = NOW.replace(minute=0, second=0) - timedelta(hours=3)
    rows = [
        EnergyRow(
            "L-1",
            start + timedelta(minutes=15 * i),
            NOW,
            1000.0 + 15.0 * i,
            60.0,
            None,
            None,
            None,
            True,
            100.0,
            i,
        )
        for i in range(12)
    ]
    store.write(Batch(energy=rows))
    hours = hourly_energy(db, ["L-1"], start, start + timedelta(hours=3))
    assert [h.bucket for h in hours] == [start + timedelta(hours=i) for i in range(3)]
    # First hour: 4 readings 1000..1045 (no earlier hour) -> 45; later hours: 4 x 15 Wh = 60.
    assert [h.energy_wh for h in hours] == [45.0, 60.0, 60.0]
    assert all(h.readings == 4 for h in hours)
