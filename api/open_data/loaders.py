"""What each open-data feed reads from storage for one request (the I/O behind the routes):
its rows, how far its data goes, and the values of columns the rows lack."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import psycopg

from api.open_data.shaping import DayRange
from api.runtime import Runtime
from telemetry.storage import energy_accounting as accounting
from telemetry.storage import maintenance_kpis as maintenance
from telemetry.storage import open_data as store
from telemetry.storage.open_data import MaterialisedFeed


@dataclass(frozen=True, slots=True)
class Loaded:
    """A feed's rows, how far its data goes, and the values of columns the rows lack."""

    rows: list[Any]
    data_until: datetime | date | None
    extra: dict[str, Any]


Filters = dict[str, frozenset[str] | None]
Loader = Callable[[psycopg.AsyncConnection, Runtime, DayRange | None, Filters], Awaitable[Loaded]]


def _span(span: DayRange | None) -> DayRange:
    assert span is not None  # only the "now" feed has no range
    return span


async def _materialised_until(conn: psycopg.AsyncConnection, feed: MaterialisedFeed) -> date | None:
    return (await store.feed_states(conn))[feed].watermark


def _energy(unit: Literal["day", "month"]) -> Loader:
    async def load(
        conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
    ) -> Loaded:
        tz = runtime.api.timezone
        start, end = _span(span).bounds(ZoneInfo(tz))
        rows = await store.energy_by_district(conn, unit, start, end, tz, f["district"])
        return Loaded(rows, await store.energy_until(conn), {})

    return load


async def _lights_now(
    conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
) -> Loaded:
    now = datetime.now(UTC)
    silent = timedelta(seconds=runtime.api.light_silent_after_s)
    rows = await store.lights_now(conn, now, silent, f["district"])
    return Loaded(rows, now, {"as_of": now.astimezone(ZoneInfo(runtime.api.timezone))})


async def _lights_daily(
    conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
) -> Loaded:
    s = _span(span)
    rows = await store.lights_daily(conn, s.first, s.last, f["district"])
    return Loaded(rows, await _materialised_until(conn, "light_status"), {})


async def _repairs(
    conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
) -> Loaded:
    tz = runtime.api.timezone
    start, end = _span(span).bounds(ZoneInfo(tz))
    rows = await store.fault_repairs(conn, start, end, tz, f["district"])
    return Loaded(rows, datetime.now(UTC), {})


async def _complaints(
    conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
) -> Loaded:
    tz = runtime.api.timezone
    start, end = _span(span).bounds(ZoneInfo(tz))
    rows = await store.complaint_stats(conn, start, end, tz, f["service_code"])
    return Loaded(rows, datetime.now(UTC), {})


def _waste(unit: Literal["day", "month"]) -> Loader:
    async def load(
        conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
    ) -> Loaded:
        s = _span(span)
        rows = await store.waste_rounds(
            conn, unit, s.first, s.last, operators=f["operator"], districts=f["district"]
        )
        return Loaded(rows, await _materialised_until(conn, "waste_rounds"), {})

    return load


def _bus(unit: Literal["day", "month"]) -> Loader:
    async def load(
        conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
    ) -> Loaded:
        s = _span(span)
        rows = await store.bus_service(conn, unit, s.first, s.last, f["line"])
        return Loaded(rows, await _materialised_until(conn, "bus_service"), {})

    return load


async def _energy_accounting(
    conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
) -> Loaded:
    s = _span(span)
    rows = await accounting.monthly_figures(conn, s.first, s.last, f["district"])
    return Loaded(rows, await accounting.last_reconciled_month(conn), {})


async def _maintenance_kpis(
    conn: psycopg.AsyncConnection, runtime: Runtime, span: DayRange | None, f: Filters
) -> Loaded:
    s = _span(span)
    rows = await maintenance.monthly_figures(conn, s.first, s.last, f["district"])
    until = await maintenance.complete_until(conn)
    return Loaded(rows, None if until is None else until + timedelta(days=1), {})


LOADERS: Final[dict[str, Loader]] = {
    "energy-daily": _energy("day"),
    "energy-monthly": _energy("month"),
    "lights-status": _lights_now,
    "lights-status-daily": _lights_daily,
    "fault-repairs-monthly": _repairs,
    "complaints-monthly": _complaints,
    "waste-rounds-daily": _waste("day"),
    "waste-rounds-monthly": _waste("month"),
    "bus-service-daily": _bus("day"),
    "bus-service-monthly": _bus("month"),
    "energy-accounting-monthly": _energy_accounting,
    "maintenance-kpis-monthly": _maintenance_kpis,
}
