"""Energy accounting reads and writes: bills (idempotent by meter and period), everything a
month's reconciliation reads (cabinets and lights from the equipment register or, failing it,
the registry's circuits; meter rises; hourly figures), its stored results and baselines.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, LiteralString

import psycopg
from psycopg.rows import class_row

from telemetry.energy_accounting.bills import Bill, BillFile, BillImportError
from telemetry.energy_accounting.model import circuit_watts
from telemetry.energy_accounting.month import (
    CabinetRecord,
    HourFigures,
    LightRecord,
    MeterRise,
    MonthData,
    Window,
    daylight_hours,
    last_day,
    local_window,
    reconciled_bills,
    windows_needed,
)
from telemetry.energy_accounting.reconcile import (
    AccountingError,
    Baseline,
    CabinetMonth,
    Flag,
    FlagCode,
    Thresholds,
    baseline_rate,
)
from telemetry.storage._rows import fetch_all

#: How far before a window's start a meter's last reading may be and still open it.
LOOKBACK: Final = timedelta(days=7)
#: Where the sun is taken for daylight hours when no light has a position (Marrakech).
CITY_CENTRE: Final = (31.63, -8.0)

_BILL_COLUMNS: Final = (
    "meter_id",
    "period_start",
    "period_end",
    "billed_kwh",
    "amount_dh",
    "estimated",
    "index_start",
    "index_end",
    "reactive_kvarh",
    "fixed_charges_dh",
    "vat_dh",
    "bill_number",
)
_BILL_COLS: Final = ", ".join(_BILL_COLUMNS)

_LOCK_BILLS: Final = "LOCK TABLE energy_bills IN SHARE ROW EXCLUSIVE MODE"
_KNOWN_METERS: Final = """
SELECT meter_id FROM equipment_assets WHERE kind = 'cabinet' AND meter_id = ANY(%(meters)s)
"""
_OVERLAPPING: Final = """
SELECT i.k, b.period_start, b.period_end
FROM unnest(%(meters)s::text[], %(starts)s::date[], %(ends)s::date[])
     WITH ORDINALITY AS i(meter_id, period_start, period_end, k)
JOIN energy_bills b ON b.meter_id = i.meter_id
 AND b.period_start <= i.period_end AND b.period_end >= i.period_start
 AND (b.period_start, b.period_end) <> (i.period_start, i.period_end)
ORDER BY i.k
"""
_UPSERT_BILL: Final = f"""
INSERT INTO energy_bills ({_BILL_COLS})
VALUES ({", ".join(f"%({c})s" for c in _BILL_COLUMNS)})
ON CONFLICT (meter_id, period_start, period_end) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _BILL_COLUMNS[3:])}, updated_at = now()
WHERE ({", ".join(f"energy_bills.{c}" for c in _BILL_COLUMNS[3:])})
      IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in _BILL_COLUMNS[3:])})
RETURNING (xmax = 0) AS created
"""
_BILLS_BETWEEN: Final = f"""
SELECT {_BILL_COLS} FROM energy_bills
WHERE period_end >= %(first)s AND period_start <= %(last)s
ORDER BY meter_id, period_start
"""
_BILLS_OF: Final = f"""
SELECT {_BILL_COLS} FROM energy_bills
WHERE meter_id = ANY(%(meters)s) AND period_end < %(before)s AND period_start >= %(since)s
ORDER BY meter_id, period_start
"""

_HAS_REGISTER: Final = "SELECT EXISTS (SELECT 1 FROM equipment_assets WHERE kind = 'cabinet')"

# Register cabinets, each with the devices measuring the cabinet itself: a device whose
# chain up the tree meets no circuit (on the cabinet, or on a controller of the cabinet).
_CABINETS: Final = """
SELECT c.asset_id AS cabinet_id, c.district, c.meter_id, c.contracted_kw, c.tariff,
       coalesce(array_agg(v.device_id ORDER BY v.device_id)
                FILTER (WHERE v.device_id IS NOT NULL), '{}') AS meter_devices
FROM equipment_assets c
LEFT JOIN equipment_device_cabinets v ON v.cabinet_id = c.asset_id AND v.circuit_id IS NULL
WHERE c.kind = 'cabinet'
GROUP BY c.asset_id
ORDER BY c.asset_id
"""

# Every light with its cabinet and circuit: through the register when its device is on a
# luminaire there; else through its registry circuit, to the register circuit of that name
# when there is one, or to a stand-in cabinet named after the circuit. The registry circuit
# comes along, since the hourly rollups are keyed by it.
_LIGHTS: Final = """
SELECT d.device_id,
       coalesce(v.cabinet_id, rc.parent_id, d.circuit) AS cabinet_id,
       coalesce(v.circuit_id, rc.asset_id, d.circuit) AS circuit_id,
       d.circuit AS registry_circuit,
       coalesce(a.district, d.district) AS district,
       coalesce(d.lat, a.lat) AS lat, coalesce(d.lon, a.lon) AS lon,
       m.rated_power_w AS model_w, d.rated_w AS nameplate_w,
       m.light_source,
       (v.cabinet_id IS NOT NULL) AS registered
FROM devices d
LEFT JOIN equipment_device_cabinets v ON v.device_id = d.device_id AND v.circuit_id IS NOT NULL
LEFT JOIN equipment_assets a ON a.asset_id = v.asset_id
LEFT JOIN equipment_models m ON m.model_id = a.model_id AND m.kind = 'luminaire'
LEFT JOIN equipment_assets rc
       ON v.device_id IS NULL AND rc.asset_id = d.circuit AND rc.kind = 'circuit'
WHERE d.fleet = 'light'
  AND (v.cabinet_id IS NOT NULL OR d.circuit IS NOT NULL)
  AND d.device_id NOT IN (
      SELECT device_id FROM equipment_device_cabinets WHERE circuit_id IS NULL)
ORDER BY d.device_id
"""

# The rise of each device's cumulative meter over its window: from its last reading before
# the window's start (at most LOOKBACK before it), else its first reading in the window, to
# its last reading before the window's end. A meter that went backwards (a replaced
# controller) counts from zero.
_RISES: Final = """
SELECT w.device_id, w.start_ts, w.end_ts,
       CASE WHEN e.energy_wh >= o.energy_wh THEN e.energy_wh - o.energy_wh
            ELSE e.energy_wh END / 1000.0 AS kwh,
       o.time AS start_time, e.time AS end_time
FROM unnest(%(ids)s::text[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
     AS w(device_id, start_ts, end_ts)
CROSS JOIN LATERAL (
    SELECT l.energy_wh, l.time FROM light_energy l
    WHERE l.device_id = w.device_id AND l.time < w.end_ts AND l.time >= w.start_ts - %(lookback)s
    ORDER BY l.time DESC LIMIT 1
) e
CROSS JOIN LATERAL (
    SELECT x.energy_wh, x.time FROM (
        (SELECT l.energy_wh, l.time, 0 AS pref FROM light_energy l
         WHERE l.device_id = w.device_id AND l.time < w.start_ts
           AND l.time >= w.start_ts - %(lookback)s
         ORDER BY l.time DESC LIMIT 1)
        UNION ALL
        (SELECT l.energy_wh, l.time, 1 AS pref FROM light_energy l
         WHERE l.device_id = w.device_id AND l.time >= w.start_ts AND l.time < w.end_ts
         ORDER BY l.time LIMIT 1)
    ) x ORDER BY x.pref LIMIT 1
) o
"""

# Hourly energy per cabinet from the circuit rollups (hours before the watermark) and, after
# it, from the lights' readings; the highest hour, and the hours of full daylight.
_CIRCUIT_HOURS: Final = """
WITH map AS (
    SELECT * FROM unnest(%(circuits)s::text[], %(cabinets)s::text[]) AS m(circuit, cabinet_id)
),
state AS (SELECT watermark FROM energy_rollup_state),
hours AS (
    SELECT r.key AS circuit, r.bucket, r.energy_wh
    FROM energy_hourly_rollup r, state
    WHERE r.scope = 'circuit' AND r.bucket >= %(start)s
      AND r.bucket < least(%(end)s, state.watermark)
    UNION ALL
    SELECT d.circuit, w.bucket, w.energy_wh
    FROM state,
         rasd_light_hourly_wh(greatest(%(start)s, state.watermark), %(end)s, NULL) w
    JOIN devices d ON d.device_id = w.device_id
    WHERE greatest(%(start)s, state.watermark) < %(end)s AND d.circuit IS NOT NULL
),
cab AS (
    SELECT m.cabinet_id, h.bucket, sum(h.energy_wh) AS wh
    FROM hours h JOIN map m ON m.circuit = h.circuit
    GROUP BY 1, 2
),
day AS (SELECT DISTINCT unnest(%(day)s::timestamptz[]) AS bucket)
SELECT c.cabinet_id, max(c.wh) / 1000.0 AS peak_kwh,
       coalesce(sum(c.wh) FILTER (WHERE d.bucket IS NOT NULL), 0) / 1000.0 AS day_kwh,
       count(*) FILTER (WHERE d.bucket IS NOT NULL AND c.wh > 0)::integer AS day_hours
FROM cab c LEFT JOIN day d ON d.bucket = c.bucket
GROUP BY c.cabinet_id
"""
_METER_HOURS: Final = """
WITH map AS (
    SELECT * FROM unnest(%(devices)s::text[], %(cabinets)s::text[]) AS m(device_id, cabinet_id)
),
cab AS (
    SELECT m.cabinet_id, w.bucket, sum(w.energy_wh) AS wh
    FROM rasd_light_hourly_wh(%(start)s, %(end)s, %(devices)s) w
    JOIN map m ON m.device_id = w.device_id
    GROUP BY 1, 2
),
day AS (SELECT DISTINCT unnest(%(day)s::timestamptz[]) AS bucket)
SELECT c.cabinet_id, max(c.wh) / 1000.0 AS peak_kwh,
       coalesce(sum(c.wh) FILTER (WHERE d.bucket IS NOT NULL), 0) / 1000.0 AS day_kwh,
       count(*) FILTER (WHERE d.bucket IS NOT NULL AND c.wh > 0)::integer AS day_hours
FROM cab c LEFT JOIN day d ON d.bucket = c.bucket
GROUP BY c.cabinet_id
"""
_BASELINES: Final = """
SELECT cabinet_id, kwh_per_burning_hour, from_month, to_month FROM energy_baselines
"""
_SET_BASELINE: Final = """
INSERT INTO energy_baselines (cabinet_id, kwh_per_burning_hour, from_month, to_month, months)
VALUES (%(cabinet_id)s, %(rate)s, %(from_month)s, %(to_month)s, %(months)s)
ON CONFLICT (cabinet_id) DO UPDATE SET
    kwh_per_burning_hour = EXCLUDED.kwh_per_burning_hour, from_month = EXCLUDED.from_month,
    to_month = EXCLUDED.to_month, months = EXCLUDED.months, created_at = now()
"""
_BASELINE_MONTHS: Final = """
SELECT month, metered_kwh, burning_hours FROM energy_reconciliations
WHERE cabinet_id = %(cabinet_id)s AND month >= %(from_month)s AND month <= %(to_month)s
  AND metered_kwh IS NOT NULL
ORDER BY month
"""

_RESULT_COLUMNS: Final = (
    "month",
    "cabinet_id",
    "district",
    "meter_id",
    "tariff",
    "contracted_kw",
    "lights",
    "lights_reporting",
    "connected_kw",
    "burning_hours",
    "modelled_kwh",
    "lights_metered_kwh",
    "cabinet_metered_kwh",
    "metered_kwh",
    "metered_source",
    "peak_kw",
    "day_burning_kwh",
    "bill_number",
    "bill_period_start",
    "bill_period_end",
    "billed_kwh",
    "billed_dh",
    "bill_estimated",
    "bill_metered_kwh",
    "recomputed_dh",
    "expected_dh",
    "dimming_saved_kwh",
    "retrofit_saved_kwh",
    "saved_dh",
    "saved_co2_kg",
    "flags",
    "notes",
)
_RESULT_COLS: Final = ", ".join(_RESULT_COLUMNS)
_DELETE_MONTH: Final = "DELETE FROM energy_reconciliations WHERE month = %(month)s"
_INSERT_RESULT: Final = f"""
INSERT INTO energy_reconciliations ({_RESULT_COLS})
VALUES ({", ".join(f"%({c})s" for c in _RESULT_COLUMNS)})
"""
_RUN: Final = """
INSERT INTO energy_reconciliation_runs (month, tariff_source, cabinets, lights, thresholds)
VALUES (%(month)s, %(source)s, %(cabinets)s, %(lights)s, %(thresholds)s)
ON CONFLICT (month) DO UPDATE SET computed_at = now(), tariff_source = EXCLUDED.tariff_source,
    cabinets = EXCLUDED.cabinets, lights = EXCLUDED.lights, thresholds = EXCLUDED.thresholds
"""
_RESULTS: Final = f"""
SELECT {_RESULT_COLS} FROM energy_reconciliations
WHERE month = %(month)s AND (%(district)s::text IS NULL OR district = %(district)s)
ORDER BY cabinet_id
"""
_RESULT_RUN: Final = """
SELECT month, computed_at, tariff_source, cabinets, lights FROM energy_reconciliation_runs
WHERE month = %(month)s
"""
_MONTHLY_FIGURES: Final = """
SELECT month AS period, coalesce(district, '') AS district, count(*)::integer AS cabinets,
       sum(lights)::integer AS lights, sum(modelled_kwh) AS modelled_kwh,
       sum(metered_kwh) AS metered_kwh, sum(billed_kwh) AS billed_kwh,
       sum(billed_dh) AS billed_dh, sum(recomputed_dh) AS recomputed_dh,
       sum(dimming_saved_kwh) + coalesce(sum(retrofit_saved_kwh), 0) AS saved_kwh,
       sum(saved_co2_kg) AS saved_co2_kg,
       count(*) FILTER (WHERE jsonb_array_length(flags) > 0)::integer AS flagged_cabinets
FROM energy_reconciliations
WHERE month >= %(first)s AND month <= %(last)s
  AND (%(districts)s::text[] IS NULL OR coalesce(district, '') = ANY(%(districts)s))
GROUP BY month, coalesce(district, '')
ORDER BY month, 2
"""
_LAST_RUN: Final = "SELECT max(month) FROM energy_reconciliation_runs"


@dataclass(frozen=True, kw_only=True)
class BillImport:
    """What a bill import changed."""

    created: int
    updated: int
    unchanged: int


@dataclass(frozen=True, kw_only=True)
class _LightRow:
    device_id: str
    cabinet_id: str
    circuit_id: str
    registry_circuit: str | None
    district: str | None
    lat: float | None
    lon: float | None
    model_w: float | None
    nameplate_w: float | None
    light_source: str | None
    registered: bool


@dataclass(frozen=True, kw_only=True)
class _CabinetRow:
    cabinet_id: str
    district: str | None
    meter_id: str | None
    contracted_kw: float | None
    tariff: str | None
    meter_devices: list[str]


@dataclass(frozen=True, kw_only=True)
class _RiseRow:
    device_id: str
    start_ts: datetime
    end_ts: datetime
    kwh: float
    start_time: datetime
    end_time: datetime


@dataclass(frozen=True, kw_only=True)
class _HoursRow:
    cabinet_id: str
    peak_kwh: float
    day_kwh: float
    day_hours: int


@dataclass(frozen=True, kw_only=True)
class _BaselineMonth:
    month: date
    metered_kwh: float
    burning_hours: float


@dataclass(frozen=True, kw_only=True)
class StoredMonth:
    """One stored cabinet month (``energy_reconciliations``), flags as JSON."""

    month: date
    cabinet_id: str
    district: str | None
    meter_id: str | None
    tariff: str | None
    contracted_kw: float | None
    lights: int
    lights_reporting: int
    connected_kw: float
    burning_hours: float
    modelled_kwh: float
    lights_metered_kwh: float
    cabinet_metered_kwh: float | None
    metered_kwh: float | None
    metered_source: str | None
    peak_kw: float | None
    day_burning_kwh: float
    bill_number: str | None
    bill_period_start: date | None
    bill_period_end: date | None
    billed_kwh: float | None
    billed_dh: float | None
    bill_estimated: bool | None
    bill_metered_kwh: float | None
    recomputed_dh: float | None
    expected_dh: float | None
    dimming_saved_kwh: float
    retrofit_saved_kwh: float | None
    saved_dh: float | None
    saved_co2_kg: float
    flags: list[dict[str, Any]]
    notes: list[str]

    def record(self) -> CabinetMonth:
        """The domain record."""
        values = {c: getattr(self, c) for c in _RESULT_COLUMNS}
        values["flags"] = [
            Flag(code=FlagCode(f["code"]), message=f["message"], evidence=f["evidence"])
            for f in self.flags
        ]
        return CabinetMonth(**values)


@dataclass(frozen=True, kw_only=True)
class RunInfo:
    """When a month was reconciled, and with which tariff file."""

    month: date
    computed_at: datetime
    tariff_source: str
    cabinets: int
    lights: int


@dataclass(frozen=True, kw_only=True)
class MonthlyFigures:
    """A district's reconciled month (the open-data feed's row)."""

    period: date
    district: str
    cabinets: int
    lights: int
    modelled_kwh: float
    metered_kwh: float | None
    billed_kwh: float | None
    billed_dh: float | None
    recomputed_dh: float | None
    saved_kwh: float
    saved_co2_kg: float
    flagged_cabinets: int


# -- bills ------------------------------------------------------------------------------------


def import_bills(conn: psycopg.Connection, parsed: BillFile) -> BillImport:
    """Upsert the file's bills by (meter, period) in one transaction, after checking every
    meter is a register cabinet's and no bill overlaps a stored one of another period."""
    bills = parsed.bills
    meters = sorted({b.meter_id for b in bills})
    with conn.transaction():
        conn.execute(_LOCK_BILLS)
        known = {row[0] for row in conn.execute(_KNOWN_METERS, {"meters": meters})}
        problems = [
            f"{where}: meter {b.meter_id} is no cabinet's meter_id in the equipment register"
            for where, b in zip(parsed.places, bills, strict=True)
            if b.meter_id not in known
        ]
        overlapping = conn.execute(
            _OVERLAPPING,
            {
                "meters": [b.meter_id for b in bills],
                "starts": [b.period_start for b in bills],
                "ends": [b.period_end for b in bills],
            },
        ).fetchall()
        for k, start, end in overlapping:
            where, bill = parsed.places[k - 1], bills[k - 1]
            problems.append(
                f"{where}: meter {bill.meter_id} {bill.period_start}..{bill.period_end} "
                f"overlaps the stored bill {start}..{end}"
            )
        if problems:
            raise BillImportError(problems)
        created = updated = 0
        with conn.cursor() as cur:
            for bill in bills:
                cur.execute(_UPSERT_BILL, asdict(bill))
                row = cur.fetchone()
                if row is not None:
                    created += bool(row[0])
                    updated += not row[0]
    return BillImport(created=created, updated=updated, unchanged=len(bills) - created - updated)


def bills_between(conn: psycopg.Connection, first: date, last: date) -> list[Bill]:
    """Bills whose period meets [first, last]."""
    with conn.cursor(row_factory=class_row(Bill)) as cur:
        cur.execute(_BILLS_BETWEEN, {"first": first, "last": last})
        return cur.fetchall()


# -- what a month's reconciliation reads -------------------------------------------------------


def _rises(conn: psycopg.Connection, windows: Sequence[Window]) -> dict[Window, MeterRise]:
    with conn.cursor(row_factory=class_row(_RiseRow)) as cur:
        cur.execute(
            _RISES,
            {
                "ids": [w[0] for w in windows],
                "starts": [w[1] for w in windows],
                "ends": [w[2] for w in windows],
                "lookback": LOOKBACK,
            },
        )
        return {
            (r.device_id, r.start_ts, r.end_ts): MeterRise(
                kwh=r.kwh, start_time=r.start_time, end_time=r.end_time
            )
            for r in cur.fetchall()
        }


def _hours(
    conn: psycopg.Connection, query: LiteralString, params: dict[str, Any]
) -> dict[str, HourFigures]:
    with conn.cursor(row_factory=class_row(_HoursRow)) as cur:
        cur.execute(query, params)
        return {
            r.cabinet_id: HourFigures(peak_kwh=r.peak_kwh, day_kwh=r.day_kwh, day_hours=r.day_hours)
            for r in cur.fetchall()
        }


def load_month(
    conn: psycopg.Connection, month: date, *, thresholds: Thresholds | None = None
) -> MonthData:
    """Everything the reconciliation of ``month`` (its first day) reads, in one snapshot."""
    t = thresholds or Thresholds()
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return _load_month(conn, month, t)


def _load_month(conn: psycopg.Connection, month: date, t: Thresholds) -> MonthData:
    with conn.cursor(row_factory=class_row(_LightRow)) as cur:
        cur.execute(_LIGHTS)
        light_rows = cur.fetchall()
    row = conn.execute(_HAS_REGISTER).fetchone()
    registered = bool(row and row[0])
    cabinets: dict[str, CabinetRecord] = {}
    if registered:
        with conn.cursor(row_factory=class_row(_CabinetRow)) as cur:
            cur.execute(_CABINETS)
            for c in cur.fetchall():
                cabinets[c.cabinet_id] = CabinetRecord(
                    cabinet_id=c.cabinet_id,
                    district=c.district,
                    meter_id=c.meter_id,
                    contracted_kw=c.contracted_kw,
                    tariff=c.tariff,
                    meter_devices=tuple(c.meter_devices),
                )
    placed = [r for r in light_rows if r.lat is not None and r.lon is not None]
    centre = (
        (
            sum(r.lat or 0.0 for r in placed) / len(placed),
            sum(r.lon or 0.0 for r in placed) / len(placed),
        )
        if placed
        else CITY_CENTRE
    )
    lights: list[LightRecord] = []
    stand_in_districts: dict[str, str | None] = {}
    for r in light_rows:
        if r.cabinet_id not in cabinets:
            stand_in_districts.setdefault(r.cabinet_id, r.district)
        lights.append(
            LightRecord(
                device_id=r.device_id,
                cabinet_id=r.cabinet_id,
                circuit_id=r.circuit_id,
                district=r.district,
                lat=r.lat if r.lat is not None else centre[0],
                lon=r.lon if r.lon is not None else centre[1],
                circuit_w=circuit_watts(r.model_w, r.nameplate_w, r.light_source),
                light_source=r.light_source,
            )
        )
    for cabinet_id, district in stand_in_districts.items():
        cabinets[cabinet_id] = CabinetRecord(cabinet_id=cabinet_id, district=district)
    cabinet_list = list(cabinets.values())

    first, last = month, last_day(month)
    reach = timedelta(days=93)
    candidates = bills_between(conn, first - reach, last + reach)
    month_bills = reconciled_bills(candidates, month)
    with conn.cursor(row_factory=class_row(Bill)) as cur:
        cur.execute(
            _BILLS_OF,
            {
                "meters": sorted(month_bills),
                "before": last + reach,
                "since": first - timedelta(days=31 * (t.flat_rate_bills + 2)),
            },
        )
        history: dict[str, list[Bill]] = {}
        for bill in cur.fetchall():
            history.setdefault(bill.meter_id, []).append(bill)

    windows = windows_needed(month, cabinet_list, lights, month_bills)
    rises = _rises(conn, windows)

    start, end = local_window(first, last)
    day = daylight_hours(month, *centre)
    circuit_map: dict[str, str] = {}
    for r in light_rows:
        if r.registry_circuit is not None:
            circuit_map.setdefault(r.registry_circuit, r.cabinet_id)
    circuit_hours = _hours(
        conn,
        _CIRCUIT_HOURS,
        {
            "circuits": list(circuit_map),
            "cabinets": list(circuit_map.values()),
            "start": start,
            "end": end,
            "day": day,
        },
    )
    meters = [(d, c.cabinet_id) for c in cabinet_list for d in c.meter_devices]
    meter_hours = (
        _hours(
            conn,
            _METER_HOURS,
            {
                "devices": [d for d, _ in meters],
                "cabinets": [c for _, c in meters],
                "start": start,
                "end": end,
                "day": day,
            },
        )
        if meters
        else {}
    )
    with conn.cursor(row_factory=class_row(Baseline)) as cur:
        cur.execute(_BASELINES)
        baselines = {b.cabinet_id: b for b in cur.fetchall()}
    return MonthData(
        month=month,
        cabinets=cabinet_list,
        lights=lights,
        rises=rises,
        circuit_hours=circuit_hours,
        meter_hours=meter_hours,
        bills=month_bills,
        history=history,
        baselines=baselines,
    )


# -- results ----------------------------------------------------------------------------------


def _result_params(row: CabinetMonth) -> dict[str, Any]:
    values = {c: getattr(row, c) for c in _RESULT_COLUMNS}
    values["flags"] = json.dumps(
        [{"code": f.code.value, "message": f.message, "evidence": f.evidence} for f in row.flags],
        ensure_ascii=False,
        allow_nan=False,
    )
    values["notes"] = json.dumps(row.notes, ensure_ascii=False)
    return values


def save_month(
    conn: psycopg.Connection,
    month: date,
    rows: Sequence[CabinetMonth],
    *,
    tariff_source: str,
    thresholds: Thresholds,
) -> None:
    """Replace the stored reconciliation of ``month`` with ``rows``, in one transaction."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_DELETE_MONTH, {"month": month})
        cur.executemany(_INSERT_RESULT, [_result_params(r) for r in rows])
        cur.execute(
            _RUN,
            {
                "month": month,
                "source": tariff_source,
                "cabinets": len(rows),
                "lights": sum(r.lights for r in rows),
                "thresholds": json.dumps(asdict(thresholds)),
            },
        )


def stored_month(
    conn: psycopg.Connection, month: date, district: str | None = None
) -> list[CabinetMonth]:
    """The stored reconciliation of ``month`` (one district's cabinets, or all)."""
    with conn.cursor(row_factory=class_row(StoredMonth)) as cur:
        cur.execute(_RESULTS, {"month": month, "district": district})
        return [r.record() for r in cur.fetchall()]


async def reconciliation(
    conn: psycopg.AsyncConnection, month: date, district: str | None
) -> tuple[RunInfo | None, list[CabinetMonth]]:
    """A stored month's run and its cabinets (one district's, or all)."""
    runs = await fetch_all(conn, RunInfo, _RESULT_RUN, {"month": month})
    rows = await fetch_all(conn, StoredMonth, _RESULTS, {"month": month, "district": district})
    return (runs[0] if runs else None), [r.record() for r in rows]


async def monthly_figures(
    conn: psycopg.AsyncConnection, first: date, last: date, districts: Collection[str] | None
) -> list[MonthlyFigures]:
    """Reconciled months from ``first`` to ``last`` (first days) per district."""
    params = {
        "first": first,
        "last": last,
        "districts": sorted(districts) if districts is not None else None,
    }
    return await fetch_all(conn, MonthlyFigures, _MONTHLY_FIGURES, params)


async def last_reconciled_month(conn: psycopg.AsyncConnection) -> date | None:
    """The latest month reconciled (None: none yet)."""
    async with conn.cursor() as cur:
        await cur.execute(_LAST_RUN)
        row = await cur.fetchone()
    return None if row is None else row[0]


def set_baseline(
    conn: psycopg.Connection, cabinet_id: str, from_month: date, to_month: date
) -> Baseline:
    """Measure a cabinet's baseline from its stored months (metered kWh per burning hour)."""
    with conn.cursor(row_factory=class_row(_BaselineMonth)) as cur:
        cur.execute(
            _BASELINE_MONTHS,
            {"cabinet_id": cabinet_id, "from_month": from_month, "to_month": to_month},
        )
        months = cur.fetchall()
    if not months:
        raise AccountingError(
            f"cabinet {cabinet_id} has no metered month reconciled from {from_month} to {to_month}"
        )
    rate = baseline_rate([m.metered_kwh for m in months], [m.burning_hours for m in months])
    conn.execute(
        _SET_BASELINE,
        {
            "cabinet_id": cabinet_id,
            "rate": rate,
            "from_month": from_month,
            "to_month": to_month,
            "months": len(months),
        },
    )
    return Baseline(
        cabinet_id=cabinet_id, kwh_per_burning_hour=rate, from_month=from_month, to_month=to_month
    )
