"""The maintenance KPIs of one local month (optionally one district), from telemetry timestamps:
the alerts' first fault reading and first healthy reading, the lights' energy readings, the
complaints' receipt times and the register (never from what crews wrote on their orders)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal

import psycopg
from psycopg.rows import class_row

from telemetry.months import parse_month
from telemetry.storage._rows import fetch_all, filter_values
from telemetry.storage.equipment import DEFAULT_TIMEZONE
from telemetry.work_orders.kpis import (
    CITIZEN_KIND,
    DARK_KINDS,
    DAY_BURNING_KINDS,
    FAILED_PART,
    GROUP_KINDS,
    MAX_GAP_S,
    BetweenFailures,
    Reading,
    RepairSample,
    RepairStat,
    ServiceSample,
    between_failures,
    daylight_burning_hours,
    month_bounds,
    per_thousand,
    repair_stats,
    share,
    under_warranty,
)

#: A complaint this long before an alert about the same light reported the same fault.
COMPLAINT_LOOKBACK: Final = timedelta(days=7)

_LIGHT_POINTS: Final = (
    "SELECT count(*) FROM devices WHERE fleet = 'light' "
    "AND (%(district)s::text IS NULL OR district = %(district)s)"
)
_IN_MONTH: Final = (
    "a.asset_kind = 'light' AND a.opened_at >= %(start)s AND a.opened_at < %(end)s "
    "AND a.resolution IS DISTINCT FROM 'grouped' "
    "AND (%(district)s::text IS NULL OR a.district = %(district)s)"
)
_OUTAGES: Final = (
    "SELECT (SELECT count(*) FROM alerts a WHERE a.kind = ANY(%(dark)s) AND "
    + _IN_MONTH
    + ") + (SELECT count(*) FROM alert_members m JOIN alerts a USING (alert_id) "
    "LEFT JOIN devices d ON d.device_id = m.device_id "
    "WHERE a.kind = ANY(%(groups)s) AND m.since >= %(start)s AND m.since < %(end)s "
    "AND (%(district)s::text IS NULL OR coalesce(d.district, a.district) = %(district)s))"
)
_REPAIRS: Final = (
    "SELECT a.district, a.kind, "
    "(extract(epoch FROM a.cleared_at - a.opened_at) / 3600.0)::double precision AS hours "
    "FROM alerts a WHERE a.asset_kind = 'light' AND a.kind <> %(citizen)s "
    "AND a.resolution = 'cleared' AND a.cleared_at >= %(start)s AND a.cleared_at < %(end)s "
    "AND (%(district)s::text IS NULL OR a.district = %(district)s)"
)
# A telemetry fault was found first unless a complaint about the same light (or a light its
# group lists) came in before it opened.
_DETECTION: Final = (
    "SELECT count(*) AS faults, count(*) FILTER (WHERE NOT EXISTS ("
    "  SELECT 1 FROM complaints c JOIN alerts ca ON ca.alert_id = c.alert_id "
    "  WHERE c.requested_at < a.opened_at AND c.requested_at >= a.opened_at - %(lookback)s "
    "  AND (ca.alert_id = a.alert_id OR ca.device_id = a.device_id OR EXISTS ("
    "    SELECT 1 FROM alert_members m WHERE m.alert_id = a.alert_id "
    "    AND m.device_id = ca.device_id)))) AS first "
    "FROM alerts a WHERE a.kind <> %(citizen)s AND " + _IN_MONTH
)
# Faults only citizens reported: their alert has no telemetry alert of the same light near it.
_CITIZEN_ONLY: Final = (
    "SELECT count(*) FROM alerts a WHERE a.kind = %(citizen)s AND "
    + _IN_MONTH
    + " AND NOT EXISTS (SELECT 1 FROM alerts t WHERE t.asset_kind = 'light' "
    "AND t.kind <> %(citizen)s AND t.device_id = a.device_id "
    "AND t.opened_at BETWEEN a.opened_at - %(lookback)s AND a.opened_at + %(lookback)s)"
)
_SERVICE: Final = (
    "SELECT CASE WHEN %(by)s = 'model' THEN x.model_id ELSE x.project_id END AS \"group\", "
    "x.installed_on::timestamp AT TIME ZONE %(tz)s AS installed, "
    "(SELECT count(*) FROM alerts a WHERE a.device_id = coalesce(x.device_id, p.device_id) "
    "AND a.kind = ANY(%(kinds)s) AND a.opened_at >= %(start)s AND a.opened_at < %(end)s "
    "AND a.resolution IS DISTINCT FROM 'grouped')::int AS failures "
    "FROM equipment_assets x LEFT JOIN equipment_assets p ON p.asset_id = x.parent_id "
    "WHERE x.kind = %(kind)s "
    "AND (CASE WHEN %(by)s = 'model' THEN x.model_id ELSE x.project_id END) IS NOT NULL "
    "AND (%(district)s::text IS NULL OR coalesce(x.district, p.district) = %(district)s)"
)
_BURNING: Final = (
    "SELECT a.device_id, d.lat, d.lon, a.opened_at, coalesce(a.cleared_at, a.resolved_at) AS ended "
    "FROM alerts a JOIN devices d ON d.device_id = a.device_id "
    "WHERE a.kind = ANY(%(kinds)s) AND a.opened_at < %(end)s "
    "AND coalesce(a.cleared_at, a.resolved_at, %(end)s) > %(start)s "
    "AND d.lat IS NOT NULL AND (%(district)s::text IS NULL OR a.district = %(district)s) "
    "ORDER BY a.device_id, a.opened_at"
)
_READINGS: Final = (
    "SELECT time AS at, coalesce(lamp_on, power_w > 2.0, false) AS lit FROM light_energy "
    "WHERE device_id = %s AND time >= %s AND time < %s ORDER BY time"
)
_CLAIMS: Final = (
    "SELECT a.alert_id, a.kind AS fault, a.device_id, a.opened_at AS failed_at, "
    "(a.opened_at AT TIME ZONE %(tz)s)::date AS failed_on, x.asset_id, x.kind AS part, "
    "x.model_id, x.serial, x.supplier, x.project_id, x.warranty_until "
    "FROM alerts a "
    "JOIN equipment_assets l ON l.device_id = a.device_id AND l.kind = 'luminaire' "
    "JOIN equipment_assets x ON x.kind = (%(parts)s::jsonb ->> a.kind) "
    "AND (x.asset_id = l.asset_id OR x.parent_id = l.asset_id) "
    "WHERE a.kind = ANY(%(kinds)s) AND x.warranty_until IS NOT NULL AND "
    + _IN_MONTH
    + " ORDER BY x.supplier NULLS LAST, x.project_id NULLS LAST, a.opened_at, a.alert_id"
)


@dataclass(frozen=True, kw_only=True)
class WarrantyClaim:
    """A failure while the failed part was under warranty."""

    alert_id: int
    fault: str
    device_id: str | None
    failed_at: datetime
    failed_on: date
    asset_id: str
    part: str
    model_id: str | None
    serial: str | None
    supplier: str | None
    project_id: str | None
    warranty_until: date


@dataclass(frozen=True, kw_only=True)
class ClaimTotal:
    """Warranty claims of one supplier and tender."""

    supplier: str | None
    project_id: str | None
    claims: int


@dataclass(frozen=True, kw_only=True)
class Detection:
    """Faults of the month and how many the telemetry found before any citizen complaint."""

    faults: int
    telemetry_first: int
    share: float | None


@dataclass(frozen=True, kw_only=True)
class MaintenanceKpis:
    """One month's maintenance KPIs (``district`` None: the whole city)."""

    month: str
    district: str | None
    timezone: str
    light_points: int
    outages: int
    outages_per_1000: float | None
    repairs: list[RepairStat]
    detection: Detection
    between_failures: dict[str, list[BetweenFailures]]
    day_burning_hours: float
    day_burning_lights: int
    warranty_claims: list[WarrantyClaim]
    claims_by_supplier: list[ClaimTotal]


def _scalar(conn: psycopg.Connection, query: Any, params: dict[str, Any]) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _day_burning(
    conn: psycopg.Connection, params: dict[str, Any], start: datetime, end: datetime
) -> tuple[float, int]:
    rows = conn.execute(_BURNING, {**params, "kinds": sorted(DAY_BURNING_KINDS)}).fetchall()
    windows: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    where: dict[str, tuple[float, float]] = {}
    for device, lat, lon, opened, ended in rows:
        windows[device].append((max(opened, start), min(ended or end, end)))
        where[device] = (lat, lon)
    total = 0.0
    burning = 0
    for device, spans in windows.items():
        lo = min(s[0] for s in spans) - timedelta(seconds=MAX_GAP_S)
        hi = max(s[1] for s in spans) + timedelta(seconds=MAX_GAP_S)
        with conn.cursor(row_factory=class_row(Reading)) as cur:
            readings = cur.execute(_READINGS, (device, lo, hi)).fetchall()
        hours = daylight_burning_hours(readings, *where[device], spans)
        total += hours
        burning += hours > 0
    return round(total, 3), burning


def maintenance_kpis(
    conn: psycopg.Connection,
    month: str,
    *,
    district: str | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> MaintenanceKpis:
    """The KPIs of local month ``month`` (``YYYY-MM``; ValueError when malformed)."""
    start, end = month_bounds(month, timezone)
    params: dict[str, Any] = {
        "start": start,
        "end": end,
        "district": district,
        "tz": timezone,
        "citizen": CITIZEN_KIND,
        "lookback": COMPLAINT_LOOKBACK,
    }
    points = _scalar(conn, _LIGHT_POINTS, params)
    outages = _scalar(
        conn, _OUTAGES, {**params, "dark": sorted(DARK_KINDS), "groups": sorted(GROUP_KINDS)}
    )
    with conn.cursor(row_factory=class_row(RepairSample)) as cur:
        samples = cur.execute(_REPAIRS, params).fetchall()
    row = conn.execute(_DETECTION, params).fetchone()
    faults, first = (int(row[0]), int(row[1])) if row else (0, 0)
    faults += _scalar(conn, _CITIZEN_ONLY, params)
    failure_kinds = sorted(FAILED_PART)
    groupings = {
        "luminaire_model": ("luminaire", "model", failure_kinds),
        "driver_model": ("driver", "model", ["controlGearFailure"]),
        "tender": ("luminaire", "tender", failure_kinds),
    }
    mtbf = {}
    for name, (kind, by, kinds) in groupings.items():
        with conn.cursor(row_factory=class_row(ServiceSample)) as cur:
            service = cur.execute(
                _SERVICE, {**params, "kind": kind, "by": by, "kinds": kinds}
            ).fetchall()
        mtbf[name] = between_failures(service, start, end)
    burning_h, burning_lights = _day_burning(conn, params, start, end)
    with conn.cursor(row_factory=class_row(WarrantyClaim)) as cur:
        candidates = cur.execute(
            _CLAIMS, {**params, "parts": json.dumps(FAILED_PART), "kinds": failure_kinds}
        ).fetchall()
    claims = [c for c in candidates if under_warranty(c.failed_on, c.warranty_until)]
    totals: dict[tuple[str | None, str | None], int] = defaultdict(int)
    for claim in claims:
        totals[(claim.supplier, claim.project_id)] += 1
    return MaintenanceKpis(
        month=month,
        district=district,
        timezone=timezone,
        light_points=points,
        outages=outages,
        outages_per_1000=per_thousand(outages, points),
        repairs=repair_stats(samples),
        detection=Detection(faults=faults, telemetry_first=first, share=share(first, faults)),
        between_failures=mtbf,
        day_burning_hours=burning_h,
        day_burning_lights=burning_lights,
        warranty_claims=claims,
        claims_by_supplier=[
            ClaimTotal(supplier=s, project_id=p, claims=n)
            for (s, p), n in sorted(totals.items(), key=lambda t: (t[0][0] or "", t[0][1] or ""))
        ],
    )


# -- stored months (open data) -----------------------------------------------------------------

Section = Literal["totals", "repairs", "warranty"]

_SECTION_ORDER: Final = "CASE section WHEN 'totals' THEN 0 WHEN 'repairs' THEN 1 ELSE 2 END"
_FIGURE_COLUMNS: Final = (
    "district",
    "section",
    "kind",
    "supplier",
    "tender",
    "light_points",
    "outages",
    "outages_per_1000",
    "faults",
    "found_by_telemetry",
    "found_by_telemetry_share",
    "day_burning_hours",
    "day_burning_lights",
    "repairs",
    "p50_hours",
    "p90_hours",
    "within_48h_share",
    "warranty_claims",
)
_LIGHT_DISTRICTS: Final = (
    "SELECT district FROM devices WHERE fleet = 'light' AND district IS NOT NULL "
    "AND district <> '' GROUP BY district ORDER BY district COLLATE \"C\""
)
# Concurrent stores of one month (the API's refresher, the command) take turns, so that each
# replaces the month's rows whole.
_STORE_LOCK: Final = (
    "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.maintenance_kpis'), "
    "(extract(year FROM %(month)s::date) * 12 + extract(month FROM %(month)s::date))::integer)"
)
_DELETE_MONTH: Final = "DELETE FROM maintenance_kpi_figures WHERE month = %(month)s"
_INSERT_FIGURES: Final = (
    "INSERT INTO maintenance_kpi_figures (month, "
    + ", ".join(_FIGURE_COLUMNS)
    + ") VALUES (%(month)s, "
    + ", ".join(f"%({c})s" for c in _FIGURE_COLUMNS)
    + ")"
)
_UPSERT_MONTH: Final = (
    "INSERT INTO maintenance_kpi_months (month, timezone, complete_until, districts) "
    "VALUES (%(month)s, %(tz)s, %(complete_until)s, %(districts)s) "
    "ON CONFLICT (month) DO UPDATE SET timezone = excluded.timezone, "
    "complete_until = excluded.complete_until, districts = excluded.districts, "
    "computed_at = now()"
)
_SELECT_FIGURES: Final = (
    "SELECT month AS period, "
    + ", ".join(_FIGURE_COLUMNS)
    + " FROM maintenance_kpi_figures WHERE month >= %(first)s AND month <= %(last)s "
    "AND (%(districts)s::text[] IS NULL OR district = ANY(%(districts)s)) "
    # The C collation: the order kpi_figures() builds rows in (Python's string order).
    'ORDER BY month, district COLLATE "C", '
    + _SECTION_ORDER
    + ', kind COLLATE "C", supplier COLLATE "C", tender COLLATE "C"'
)
_SELECT_MONTHS: Final = (
    "SELECT month, timezone, complete_until, districts, computed_at FROM maintenance_kpi_months "
    "ORDER BY month"
)
_COMPLETE_UNTIL: Final = "SELECT max(complete_until) FROM maintenance_kpi_months"


@dataclass(frozen=True, kw_only=True)
class KpiFigures:
    """One stored row of a month's KPIs (the open-data feed's row): figures only.

    ``district`` '' is the whole city; ``section`` says which figures the row holds (the
    others are None): the area's totals, one fault ``kind``'s repair times, or the warranty
    claims of one ``supplier`` and ``tender`` ('' when the register names none)."""

    period: date
    district: str
    section: Section
    kind: str = ""
    supplier: str = ""
    tender: str = ""
    light_points: int | None = None
    outages: int | None = None
    outages_per_1000: float | None = None
    faults: int | None = None
    found_by_telemetry: int | None = None
    found_by_telemetry_share: float | None = None
    day_burning_hours: float | None = None
    day_burning_lights: int | None = None
    repairs: int | None = None
    p50_hours: float | None = None
    p90_hours: float | None = None
    within_48h_share: float | None = None
    warranty_claims: int | None = None


@dataclass(frozen=True, kw_only=True)
class StoredMonthState:
    """When a month's KPIs were stored, in which time zone, and the last complete day then."""

    month: date
    timezone: str
    complete_until: date
    districts: int
    computed_at: datetime


def kpi_figures(kpis: MaintenanceKpis) -> list[KpiFigures]:
    """A computed month of one area as its stored rows: the totals, then repair times per fault
    kind of that area, then warranty claims per supplier and tender (no claim, asset or light)."""
    period = parse_month(kpis.month)
    area = kpis.district or ""
    rows = [
        KpiFigures(
            period=period,
            district=area,
            section="totals",
            light_points=kpis.light_points,
            outages=kpis.outages,
            outages_per_1000=kpis.outages_per_1000,
            faults=kpis.detection.faults,
            found_by_telemetry=kpis.detection.telemetry_first,
            found_by_telemetry_share=kpis.detection.share,
            day_burning_hours=kpis.day_burning_hours,
            day_burning_lights=kpis.day_burning_lights,
            warranty_claims=len(kpis.warranty_claims),
        )
    ]
    # repair_stats adds whole-city rows (district None) to every answer: a district's answer
    # keeps its own rows only, which there are the same figures.
    rows += [
        KpiFigures(
            period=period,
            district=area,
            section="repairs",
            kind=r.kind,
            repairs=r.repairs,
            p50_hours=r.p50_h,
            p90_hours=r.p90_h,
            within_48h_share=r.within_48h,
        )
        for r in kpis.repairs
        if r.district == kpis.district
    ]
    rows += [
        KpiFigures(
            period=period,
            district=area,
            section="warranty",
            supplier=c.supplier or "",
            tender=c.project_id or "",
            warranty_claims=c.claims,
        )
        for c in kpis.claims_by_supplier
    ]
    return rows


def light_districts(conn: psycopg.Connection) -> list[str]:
    """The districts of the registered lights, sorted."""
    return [row[0] for row in conn.execute(_LIGHT_DISTRICTS).fetchall()]


def store_month(
    conn: psycopg.Connection,
    month: str,
    *,
    complete_until: date,
    timezone: str = DEFAULT_TIMEZONE,
) -> list[KpiFigures]:
    """Compute ``month``'s KPIs for the city and each district and replace its stored rows, in
    one transaction (idempotent); ``complete_until``: the last complete local day now."""
    period = parse_month(month)
    with conn.transaction():
        conn.execute(_STORE_LOCK, {"month": period})
        districts = light_districts(conn)
        rows = kpi_figures(maintenance_kpis(conn, month, timezone=timezone))
        for district in districts:
            rows += kpi_figures(maintenance_kpis(conn, month, district=district, timezone=timezone))
        conn.execute(_DELETE_MONTH, {"month": period})
        with conn.cursor() as cur:
            cur.executemany(
                _INSERT_FIGURES,
                [{"month": period, **{c: getattr(r, c) for c in _FIGURE_COLUMNS}} for r in rows],
            )
        conn.execute(
            _UPSERT_MONTH,
            {
                "month": period,
                "tz": timezone,
                "complete_until": complete_until,
                "districts": len(districts),
            },
        )
    return rows


def stored_figures(conn: psycopg.Connection, month: str) -> list[KpiFigures]:
    """A month's stored rows, in the feed's order."""
    period = parse_month(month)
    params = {"first": period, "last": period, "districts": None}
    with conn.cursor(row_factory=class_row(KpiFigures)) as cur:
        return cur.execute(_SELECT_FIGURES, params).fetchall()


async def monthly_figures(
    conn: psycopg.AsyncConnection, first: date, last: date, districts: Collection[str] | None
) -> list[KpiFigures]:
    """Stored rows of the months from ``first`` to ``last`` (first days), optionally of some
    districts only ('' is the whole city)."""
    params = {"first": first, "last": last, "districts": filter_values(districts)}
    return await fetch_all(conn, KpiFigures, _SELECT_FIGURES, params)


async def stored_months(conn: psycopg.AsyncConnection) -> dict[date, StoredMonthState]:
    """Every stored month's state, by month."""
    return {s.month: s for s in await fetch_all(conn, StoredMonthState, _SELECT_MONTHS)}


async def complete_until(conn: psycopg.AsyncConnection) -> date | None:
    """The last local day complete when the newest stored month was computed (None: none)."""
    async with conn.cursor() as cur:
        await cur.execute(_COMPLETE_UNTIL)
        row = await cur.fetchone()
    return None if row is None else row[0]
