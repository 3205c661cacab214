"""What the storage reads share: a query's rows as dataclass instances (async), and the
values of an optional ``= ANY(...)`` filter."""

from __future__ import annotations

from collections.abc import Collection, Mapping
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


def filter_values(values: Collection[str] | None) -> list[str] | None:
    """An optional filter's parameter for ``%(x)s::text[] IS NULL OR col = ANY(%(x)s)``: the
    values sorted (the same filter always sends the same array), or None for no filter."""
    return sorted(values) if values is not None else None
