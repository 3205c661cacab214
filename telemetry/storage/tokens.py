"""API tokens: stored as SHA-256 digests with a role and districts; never the token itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import psycopg
from psycopg.rows import class_row

_COLUMNS: Final = "token_id, role, districts, label, created_at, revoked_at"


@dataclass(frozen=True, slots=True)
class StoredToken:
    """One row of ``api_tokens`` without its digest."""

    token_id: int
    role: str
    districts: list[str]
    label: str | None
    created_at: datetime
    revoked_at: datetime | None


async def insert_token(
    conn: psycopg.AsyncConnection,
    digest: bytes,
    role: str,
    districts: Sequence[str],
    label: str | None,
) -> StoredToken:
    """Store a new token's digest; returns the stored row."""
    async with conn.cursor(row_factory=class_row(StoredToken)) as cur:
        await cur.execute(
            f"INSERT INTO api_tokens (token_sha256, role, districts, label) "
            f"VALUES (%s, %s, %s, %s) RETURNING {_COLUMNS}",
            (digest, role, list(districts), label),
        )
        row = await cur.fetchone()
    assert row is not None
    return row


async def active_token(conn: psycopg.AsyncConnection, digest: bytes) -> StoredToken | None:
    """The unrevoked token with this digest, or None."""
    async with conn.cursor(row_factory=class_row(StoredToken)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM api_tokens WHERE token_sha256 = %s AND revoked_at IS NULL",
            (digest,),
        )
        return await cur.fetchone()


async def list_tokens(conn: psycopg.AsyncConnection) -> list[StoredToken]:
    """Every token, newest first."""
    async with conn.cursor(row_factory=class_row(StoredToken)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY token_id DESC")
        return await cur.fetchall()


async def revoke_token(conn: psycopg.AsyncConnection, token_id: int) -> StoredToken | None:
    """Mark a token revoked (idempotent); None when no such token exists."""
    async with conn.cursor(row_factory=class_row(StoredToken)) as cur:
        await cur.execute(
            f"UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) "
            f"WHERE token_id = %s RETURNING {_COLUMNS}",
            (token_id,),
        )
        return await cur.fetchone()
