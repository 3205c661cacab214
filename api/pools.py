"""The API's two connection pools, opened and closed together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool, ConnectionPool

from api.config import ApiSettings
from telemetry.db import conninfo
from telemetry.settings import Settings


@dataclass(frozen=True, kw_only=True)
class Pools:
    """The request pool, and the synchronous one for the storage calls that run in threads."""

    pool: AsyncConnectionPool
    sync_pool: ConnectionPool


@contextlib.asynccontextmanager
async def open_pools(settings: Settings, api: ApiSettings) -> AsyncIterator[Pools]:
    """Both pools, open while the block runs (without waiting for the database), then closed."""
    info = conninfo(settings, app="rasd-api")
    pool = AsyncConnectionPool(
        info,
        min_size=api.db_pool_min,
        max_size=api.db_pool_max,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": None},
        check=AsyncConnectionPool.check_connection,
        name="rasd-api",
    )
    sync_pool = ConnectionPool(
        info,
        min_size=1,
        max_size=4,
        open=False,
        kwargs={"autocommit": True},
        check=ConnectionPool.check_connection,
        name="rasd-api-sync",
    )
    # wait=False: the API starts (and /readyz says why not ready) with the database down.
    await pool.open(wait=False)
    try:
        sync_pool.open(wait=False)
        yield Pools(pool=pool, sync_pool=sync_pool)
    finally:
        try:
            await pool.close()
        finally:
            # Closing joins the pool's worker threads: off the event loop.
            await asyncio.to_thread(sync_pool.close)
