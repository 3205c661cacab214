"""The refresh of the materialised open-data days: one pass per feed from its watermark, one
day per transaction, under a PostgreSQL advisory lock so that several API processes (and the
``python -m api opendata refresh`` command) never do the same work twice. The same pass stores
the maintenance KPIs of the last complete month and of the current one so far when stale."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import psycopg
import structlog

from api.config import ApiSettings
from api.open_data.feeds import MAX_TRIP, SETTLE, STOP_KMH, TERMINUS_M
from api.open_data.schedule import (
    days_between,
    days_to_refresh,
    last_complete_day,
    last_complete_night,
)
from api.open_data.shaping import add_months, month_end, month_start
from telemetry.db import connect, conninfo
from telemetry.settings import Settings
from telemetry.storage import maintenance_kpis as kpi_store
from telemetry.storage import open_data as store
from telemetry.storage.open_data import MATERIALISED, MaterialisedFeed

log = structlog.get_logger("api.open_data")

#: Seconds (at most) before a process's first background pass.
FIRST_PASS_DELAY_S: Final = 30.0
# The round shifts have their own time zones: a new API time zone does not change nights.
_ZONED: frozenset[MaterialisedFeed] = frozenset({"light_status", "bus_service"})


def wall_clock() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


@dataclass
class RefreshReport:
    """What one pass did: ``ran`` is False when another session held the lock."""

    ran: bool
    days: dict[str, list[date]] = field(default_factory=dict)
    kpi_months: list[date] = field(default_factory=list)  # maintenance KPIs stored
    seconds: float = 0.0


def kpi_months_to_store(
    last_complete: date,
    stored: Mapping[date, kpi_store.StoredMonthState],
    timezone: str,
    recheck_days: int,
) -> list[date]:
    """The months whose maintenance KPIs a pass stores: the last complete month and the current
    one, each when never stored, stored in another time zone, or stored before a day that is
    now complete (a month stays open to late readings ``recheck_days`` after its end)."""
    current = month_start(last_complete + timedelta(days=1))
    months = []
    for month in (add_months(current, -1), current):
        if month > last_complete:
            continue  # the 1st of a month: nothing of it is complete yet
        target = min(last_complete, month_end(month) + timedelta(days=recheck_days))
        state = stored.get(month)
        if state is None or state.timezone != timezone or state.complete_until < target:
            months.append(month)
    return months


@dataclass(frozen=True, slots=True)
class ForcedRange:
    """Days to recompute whatever the watermarks say (the command's --from/--to)."""

    first: date
    last: date


class OpenDataRefresher:
    """Materialises complete days of the open-data feeds; ``run`` is the lifespan's loop."""

    def __init__(
        self,
        settings: Settings,
        api: ApiSettings,
        clock: Callable[[], datetime] = wall_clock,
    ) -> None:
        self.settings = settings
        self.api = api
        self.clock = clock
        self.tz = ZoneInfo(api.timezone)

    async def run(self) -> None:
        """Refresh every ``RASD_API_OPENDATA_REFRESH_S`` until cancelled (a failed pass is
        logged and retried at the next period)."""
        # The first pass waits a little: a (re)starting process serves requests first, and a
        # short-lived one (a test, a failed deploy) leaves the work to the others.
        await asyncio.sleep(min(self.api.opendata_refresh_s, FIRST_PASS_DELAY_S))
        while True:
            try:
                report = await self.refresh_once()
                if report.ran and (any(report.days.values()) or report.kpi_months):
                    log.info(
                        "open_data_refreshed",
                        seconds=round(report.seconds, 2),
                        maintenance_kpi_months=len(report.kpi_months),
                        **{feed: len(days) for feed, days in report.days.items()},
                    )
            except (psycopg.Error, OSError):
                log.exception("open_data_refresh_failed")
            await asyncio.sleep(self.api.opendata_refresh_s)

    async def refresh_once(
        self,
        *,
        wait: bool = False,
        forced: ForcedRange | None = None,
        feeds: tuple[MaterialisedFeed, ...] = MATERIALISED,
    ) -> RefreshReport:
        """One pass over ``feeds`` (and, for a plain pass over every feed, the maintenance KPIs);
        without ``wait``, nothing when another session holds the lock. On its own connection:
        closing it releases the lock whatever happens."""
        started = time.perf_counter()
        info = conninfo(self.settings, app="rasd-api-opendata")
        async with await psycopg.AsyncConnection.connect(info, autocommit=True) as conn:
            if wait:
                await store.refresh_lock(conn)
            elif not await store.try_refresh_lock(conn):
                return RefreshReport(ran=False)
            report = RefreshReport(ran=True)
            try:
                for feed in feeds:
                    report.days[feed] = await self._refresh_feed(conn, feed, forced)
                if forced is None and feeds == MATERIALISED:
                    report.kpi_months = await self._refresh_kpis(conn)
            finally:
                if not conn.closed:
                    await store.refresh_unlock(conn)
        report.seconds = time.perf_counter() - started
        return report

    async def _refresh_feed(
        self, conn: psycopg.AsyncConnection, feed: MaterialisedFeed, forced: ForcedRange | None
    ) -> list[date]:
        now = self.clock()
        tz_name = self.api.timezone
        state = (await store.feed_states(conn))[feed]
        if feed in _ZONED and state.timezone != tz_name:
            # Days of another time zone cannot be mixed with ours: start again.
            log.warning("open_data_timezone_changed", feed=feed, old=state.timezone, new=tz_name)
            await store.reset_feed(conn, feed, tz_name)
            state = (await store.feed_states(conn))[feed]
        if feed == "waste_rounds":
            last = last_complete_night(now, await store.round_shifts(conn), SETTLE)
        else:
            last = last_complete_day(now, self.tz, SETTLE)
        if forced is not None:
            end = min(forced.last, last) if last is not None else None
            days = days_between(forced.first, end) if end is not None else []
        else:
            first = await store.first_data_day(conn, feed, tz_name)
            days = days_to_refresh(state.watermark, first, last, self.api.opendata_recheck_days)
        for day in days:
            await self._refresh_day(conn, feed, day)
        return days

    async def _refresh_day(
        self, conn: psycopg.AsyncConnection, feed: MaterialisedFeed, day: date
    ) -> None:
        if feed == "light_status":
            silent = timedelta(seconds=self.api.light_silent_after_s)
            await store.refresh_light_day(conn, day, self.api.timezone, silent)
        elif feed == "waste_rounds":
            await store.refresh_rounds_night(conn, day, STOP_KMH)
        else:
            await store.refresh_bus_day(conn, day, self.api.timezone, TERMINUS_M, MAX_TRIP)

    async def _refresh_kpis(self, conn: psycopg.AsyncConnection) -> list[date]:
        last = last_complete_day(self.clock(), self.tz, SETTLE)
        stored = await kpi_store.stored_months(conn)
        months = kpi_months_to_store(
            last, stored, self.api.timezone, self.api.opendata_recheck_days
        )
        for month in months:
            # The KPIs' storage is synchronous: a worker thread with its own connection, awaited
            # (the month is one transaction: cancelled or not, it commits whole or not at all).
            await asyncio.to_thread(self._store_kpi_month, month, last)
        return months

    def _store_kpi_month(self, month: date, complete_until: date) -> None:
        with connect(self.settings, app="rasd-api-opendata", autocommit=True) as conn:
            kpi_store.store_month(
                conn,
                month.strftime("%Y-%m"),
                complete_until=complete_until,
                timezone=self.api.timezone,
            )
