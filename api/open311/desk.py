"""The complaints desk of one API process: stores POSTed requests and links them, counts the
shared rate limits, and sweeps pending complaints in the background (owned by the lifespan)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import structlog
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from alerts.config import AlertsConfig, load_thresholds
from api.config import ApiSettings
from api.open311.linker_task import ACTOR, LINK_ERRORS, CitizenAlertPolicy, Linker, SweepReport
from api.open311.wire import Open311Error, PostedRequest
from telemetry.alert_events import Severity
from telemetry.complaints.matching import Decision, LinkRules
from telemetry.complaints.records import ComplaintRow
from telemetry.storage import complaints as store

log = structlog.get_logger("api.complaints")


def link_rules(overrides: dict[str, float]) -> LinkRules:
    """The linking rules: ``LinkRules`` defaults with ``RASD_API_COMPLAINT_RULES`` applied."""
    known = {f.name: f.type for f in dataclasses.fields(LinkRules)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise ValueError(
            f"RASD_API_COMPLAINT_RULES: unknown keys {unknown}; known: {', '.join(known)}"
        )
    defaults = LinkRules()
    values = {
        name: int(value) if isinstance(getattr(defaults, name), int) else float(value)
        for name, value in overrides.items()
    }
    bad = sorted(name for name, value in values.items() if value <= 0 and "elevation" not in name)
    if bad:
        raise ValueError(f"RASD_API_COMPLAINT_RULES: {bad} must be positive")
    rules: LinkRules = dataclasses.replace(defaults, **values)  # type: ignore[arg-type]
    return rules


def wall_clock() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


class ComplaintDesk:
    """Submission, rate limits and background linking; safe to use from worker threads."""

    def __init__(
        self,
        api: ApiSettings,
        pool: ConnectionPool,
        *,
        clock: Callable[[], datetime] = wall_clock,
    ) -> None:
        self.api = api
        self.pool = pool
        self.clock = clock
        thresholds = load_thresholds(AlertsConfig().thresholds_file)
        self.linker = Linker(
            link_rules(api.complaint_rules),
            thresholds,
            citizen_policy=CitizenAlertPolicy(
                Severity(api.complaint_alert_severity), api.complaint_alert_sla_h
            ),
            retry_s=api.complaint_sweep_s,
        )

    # -- rate limits ----------------------------------------------------------------------------

    def _window(self, now: datetime) -> datetime:
        size = self.api.open311_rate_window_s
        start = int(now.timestamp()) // size * size
        return datetime.fromtimestamp(start, UTC)

    async def count(self, pool: AsyncConnectionPool, bucket: str, limit: int, what: str) -> None:
        """Count one POST in ``bucket``; Open311Error 429 once over ``limit`` this window."""
        now = self.clock()
        window = self._window(now)
        async with pool.connection(timeout=self.api.db_timeout_s) as conn:
            (hits,) = await store.hit_rate_counters(conn, [bucket], window)
        if hits > limit:
            size = self.api.open311_rate_window_s
            retry = max(1, int((window + timedelta(seconds=size) - now).total_seconds()))
            raise Open311Error(
                429,
                f"too many requests from this {what}: at most {limit} per {size} s",
                headers={"Retry-After": str(retry)},
            )

    # -- submitting ------------------------------------------------------------------------------

    def submit(self, posted: PostedRequest) -> ComplaintRow:
        """Store a request and its contact, and link it, in one transaction.

        If linking fails the complaint is still stored, pending (the savepoint of the link is
        rolled back alone); the sweeper links it later. Nothing is ever stored half.
        """
        now = self.clock()
        with self.pool.connection(timeout=self.api.db_timeout_s) as conn, conn.transaction():
            row = store.insert_complaint(conn, posted.complaint, posted.contact)
            if row.link_state == "pending":
                self._link_now(conn, row, now)
        return row

    def _link_now(self, conn: psycopg.Connection, row: ComplaintRow, now: datetime) -> None:
        try:
            self.linker.link(conn, row, now)
        except LINK_ERRORS as exc:
            log.warning("complaint_link_failed", complaint_id=row.complaint_id, error=str(exc))

    def relink(self, complaint_id: int) -> Decision | None:
        """Link one complaint again now (an operator's request); None if unknown."""
        now = self.clock()
        with self.pool.connection(timeout=self.api.db_timeout_s) as conn, conn.transaction():
            row = store.lock_complaint(conn, complaint_id)
            if row is None:
                return None
            if self.linker.lights is None:
                self.linker.refresh(conn)
            return self.linker.link(conn, row, now)

    # -- the background sweep -----------------------------------------------------------------

    def sweep_once(self) -> SweepReport:
        """Refresh the lights' index if the registry changed, link due pending complaints,
        purge old rate-limit counters."""
        now = self.clock()
        with self.pool.connection(timeout=self.api.db_timeout_s) as conn:
            self.linker.refresh(conn)
            report = self.linker.sweep(conn, self.clock)
            window = timedelta(seconds=self.api.open311_rate_window_s)
            store.purge_rate_counters(conn, self._window(now) - window)
        if report.linked or report.failed:
            log.info(
                "complaints_swept",
                actor=ACTOR,
                linked=report.linked,
                pending=report.pending,
                failed=report.failed,
                states=report.states,
            )
        return report

    async def run(self) -> None:
        """Sweep every ``RASD_API_COMPLAINT_SWEEP_S`` until cancelled."""
        while True:
            await asyncio.to_thread(self.sweep_once)
            await asyncio.sleep(self.api.complaint_sweep_s)
