"""Reads of the dead-letter table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import psycopg
from psycopg.rows import class_row

from telemetry.decoding import DeadLetter


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """A refused message as stored."""

    received_at: datetime
    topic: str
    payload: bytes
    reason: str
    reason_code: str
    device_id: str | None
    element_index: int | None


def recent_dead_letters(conn: psycopg.Connection, limit: int = 100) -> list[StoredDeadLetter]:
    """The newest dead letters first."""
    with conn.cursor(row_factory=class_row(StoredDeadLetter)) as cur:
        cur.execute(
            "SELECT received_at, topic, payload, reason, reason_code, device_id, element_index "
            "FROM dead_letters ORDER BY received_at DESC, id DESC LIMIT %s",
            (limit,),
        )
        return cur.fetchall()


def dead_letter_counts(conn: psycopg.Connection) -> dict[str, int]:
    """How many dead letters are stored per reason code."""
    rows = conn.execute(
        "SELECT reason_code, count(*) FROM dead_letters GROUP BY reason_code"
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


# Its columns are a DeadLetter's fields in order; the ingestor's batch write (readings.py) runs
# it inside the batch's transaction, the gateways through store_dead_letters.
INSERT_DEAD_LETTER: Final = (
    "INSERT INTO dead_letters (received_at, topic, payload, reason, reason_code, device_id, "
    "element_index) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)


async def store_dead_letters(conn: psycopg.AsyncConnection, letters: Sequence[DeadLetter]) -> None:
    """Store refusals in one transaction; a resent one (same topic, bytes, element) is kept once."""
    if letters:
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany(INSERT_DEAD_LETTER, letters)
