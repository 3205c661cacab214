"""Reads of the dead-letter table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row


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
