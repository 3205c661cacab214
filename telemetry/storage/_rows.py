"""The query runner the async storage reads share: a query's rows as dataclass instances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg.rows import class_row

T = TypeVar("T")


async def fetch_all(
    conn: psycopg.AsyncConnection,
    cls: type[T],
    query: LiteralString,
    params: Mapping[str, Any] | None = None,
) -> list[T]:
    """Every row of ``query`` with ``params``, each a ``cls`` built from its columns by name."""
    async with conn.cursor(row_factory=class_row(cls)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()
