"""Periodic upkeep inside the ingestor: partitions ahead, retention and, on plain PostgreSQL,
the energy rollups. On its own connection and thread, so a long pass (a first rollup over a
year of readings) never holds back the batches."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import psycopg
import structlog

from ingest.metrics import IngestMetrics
from telemetry.db import connect
from telemetry.settings import Settings
from telemetry.storage.maintenance import run_upkeep

log = structlog.get_logger("ingest.upkeep")

RETRY_S = 30.0


class Upkeep:
    """Runs ``run_upkeep`` at start and then every ``RASD_INGEST_MAINTENANCE_INTERVAL_S``."""

    def __init__(self, settings: Settings, metrics: IngestMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._conn: psycopg.Connection | None = None
        self._stopping = False

    async def run(self, stop: asyncio.Event) -> None:
        """Pass, wait, pass... until ``stop``; a pass under way is cancelled in the database."""
        canceller = asyncio.create_task(self._cancel_on(stop), name="upkeep-cancel")
        try:
            while not stop.is_set():
                done = await asyncio.to_thread(self._pass)
                wait = self.settings.ingest_maintenance_interval_s
                if not done:  # database down: try again soon, not a whole period later
                    wait = min(wait, RETRY_S)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), wait)
        finally:
            canceller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await canceller
            if self._conn is not None:
                await asyncio.to_thread(self._conn.close)

    async def _cancel_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping = True
        # Until the pass returns (this task is then cancelled): a cancel that lands between
        # two statements of a catch-up would otherwise let the next step run.
        while True:
            conn = self._conn
            if conn is not None and not conn.closed:
                await asyncio.to_thread(conn.cancel_safe)
            await asyncio.sleep(1.0)

    def _pass(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.settings, app="rasd-ingest-upkeep", autocommit=True)
            report = run_upkeep(self._conn, self.settings, datetime.now(UTC))
        except psycopg.Error as exc:
            if self._conn is not None and self._conn.broken:
                self._conn = None
            if self._stopping:
                log.info("upkeep_cancelled")
            else:
                self.metrics.upkeep_failures.inc()
                log.warning("upkeep_failed", error=str(exc).strip())
            return False
        self.metrics.upkeep_passes.inc()
        log.info(
            "upkeep_done",
            created=report.partitions_created,
            dropped=report.partitions_dropped,
            rollup_watermark=report.rollup_watermark.isoformat()
            if report.rollup_watermark
            else None,
        )
        return True
