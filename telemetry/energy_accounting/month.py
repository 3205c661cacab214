"""A whole month for a whole city: the raw records storage reads (cabinets, lights, meter
rises, hourly figures, bills), the meter windows to read, and the reconciliation of every
cabinet with its district and city totals (pure).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from telemetry.dimming import Profile, profile_for
from telemetry.energy_accounting.bills import Bill, billing_month
from telemetry.energy_accounting.model import (
    DIMMABLE,
    TIMEZONE,
    Clock,
    DayGrid,
    Modelled,
    band_shares,
    day_grid,
    model_lights,
)
from telemetry.energy_accounting.reconcile import (
    Baseline,
    BillInputs,
    CabinetInputs,
    CabinetMonth,
    Circuit,
    MeterSource,
    Thresholds,
    reconcile_cabinet,
)
from telemetry.energy_accounting.tariffs import TariffError, TariffSet, days_of
from telemetry.months import next_month
from telemetry.solar import sunrise_sunset

#: A light whose last reading is this close to a window's end was still reporting.
REPORTING_SLACK: Final = timedelta(hours=3)
#: Daylight hours for day-burning start this long after sunrise and end this long before
#: sunset, so photocell delays and the city's width (under a minute of sun) never count.
DAYLIGHT_MARGIN: Final = timedelta(minutes=45)

Window = tuple[str, datetime, datetime]


@dataclass(frozen=True, kw_only=True)
class CabinetRecord:
    """A cabinet from the register (or a registry circuit standing in for one)."""

    cabinet_id: str
    district: str | None = None
    meter_id: str | None = None
    contracted_kw: float | None = None
    tariff: str | None = None
    meter_devices: tuple[str, ...] = ()  # devices measuring the cabinet itself


@dataclass(frozen=True, kw_only=True)
class LightRecord:
    """A light with what the model needs and where it hangs."""

    device_id: str
    cabinet_id: str
    circuit_id: str
    district: str | None
    lat: float
    lon: float
    circuit_w: float  # drawn at full level, gear included
    light_source: str | None = None


@dataclass(frozen=True, kw_only=True)
class MeterRise:
    """The rise of one device's cumulative meter over a window."""

    kwh: float
    start_time: datetime  # the reading the rise starts from
    end_time: datetime  # the last reading before the window's end


@dataclass(frozen=True, kw_only=True)
class HourFigures:
    """A cabinet's hourly energy over the month: its highest hour and its daylight hours."""

    peak_kwh: float  # the highest hour: the mean kW of that hour
    day_kwh: float
    day_hours: int


@dataclass(frozen=True, kw_only=True)
class MonthData:
    """Everything read for one month's reconciliation."""

    month: date  # its first day
    cabinets: list[CabinetRecord]
    lights: list[LightRecord]
    rises: Mapping[Window, MeterRise]
    circuit_hours: Mapping[str, HourFigures]  # by cabinet: its lights' circuits' hours
    meter_hours: Mapping[str, HourFigures]  # by cabinet: its own meter's hours
    bills: Mapping[str, Bill]  # by meter: the bill reconciled this month
    history: Mapping[str, list[Bill]] = field(default_factory=dict)  # earlier bills by meter
    baselines: Mapping[str, Baseline] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Totals:
    """A district's or the city's month: the cabinets' figures summed."""

    key: str  # district name, "" for cabinets without one, or "city"
    cabinets: int
    lights: int
    modelled_kwh: float
    metered_kwh: float  # cabinets with a measure
    metered_cabinets: int
    billed_kwh: float
    billed_dh: float
    recomputed_dh: float
    billed_cabinets: int
    dimming_saved_kwh: float
    retrofit_saved_kwh: float
    saved_dh: float
    saved_co2_kg: float
    flags: dict[str, int]


def last_day(month: date) -> date:
    """The last day of the month starting on ``month``."""
    return next_month(month) - timedelta(days=1)


def local_window(first: date, last: date, timezone: str = TIMEZONE) -> tuple[datetime, datetime]:
    """[local midnight of ``first``, local midnight after ``last``) in UTC."""
    tz = ZoneInfo(timezone)
    start = datetime.combine(first, time(), tz).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), tz).astimezone(UTC)
    return start, end


def reconciled_bills(bills: Iterable[Bill], month: date) -> dict[str, Bill]:
    """By meter, the bill each reconciles in ``month`` (the latest when a meter has two)."""
    result: dict[str, Bill] = {}
    for bill in sorted(bills, key=lambda b: b.period_start):
        if billing_month(bill) == (month.year, month.month):
            result[bill.meter_id] = bill
    return result


def windows_needed(
    month: date,
    cabinets: Sequence[CabinetRecord],
    lights: Sequence[LightRecord],
    bills: Mapping[str, Bill],
    timezone: str = TIMEZONE,
) -> list[Window]:
    """Every (device, start, end) whose meter rise the month needs: the month for every light
    and cabinet meter, and each bill's own period for its cabinet's meter or lights."""
    start, end = local_window(month, last_day(month), timezone)
    needed: set[Window] = set()
    by_cabinet: dict[str, list[str]] = {}
    for light in lights:
        needed.add((light.device_id, start, end))
        by_cabinet.setdefault(light.cabinet_id, []).append(light.device_id)
    for cabinet in cabinets:
        for device in cabinet.meter_devices:
            needed.add((device, start, end))
        bill = bills.get(cabinet.meter_id) if cabinet.meter_id else None
        if bill is None:
            continue
        b_start, b_end = local_window(bill.period_start, bill.period_end, timezone)
        devices = cabinet.meter_devices or tuple(by_cabinet.get(cabinet.cabinet_id, ()))
        needed.update((d, b_start, b_end) for d in devices)
    return sorted(needed)


def daylight_hours(month: date, lat: float, lon: float) -> list[datetime]:
    """Hour buckets (UTC starts) of the month in full daylight at a place (the city's
    centre). A bucket holds the meters' rise since the previous hour's reading, so both it and
    the hour before lie between sunrise plus the margin and sunset minus it."""
    start, end = local_window(month, last_day(month))
    hours: list[datetime] = []
    day = start.date() - timedelta(days=1)
    while day <= end.date():
        sun = sunrise_sunset(day, lat, lon)
        if sun is not None:
            rise, sets = sun[0] + DAYLIGHT_MARGIN, sun[1] - DAYLIGHT_MARGIN
            h = rise.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
            while h + timedelta(hours=1) <= sets:
                if start <= h < end:
                    hours.append(h)
                h += timedelta(hours=1)
        day += timedelta(days=1)
    return hours


@dataclass(frozen=True, kw_only=True)
class _Fleet:
    grid: DayGrid
    modelled: Modelled
    index: dict[str, int]
    column: dict[date, int]


def _model(data: MonthData, days: list[date], clock: Clock) -> _Fleet:
    lights = data.lights
    grid = day_grid(days, clock.timezone)
    modelled = model_lights(
        lat=np.array([x.lat for x in lights], dtype=np.float64),
        lon=np.array([x.lon for x in lights], dtype=np.float64),
        circuit_w=np.array([x.circuit_w for x in lights], dtype=np.float64),
        light_source=[x.light_source for x in lights],
        profile=[profile_for(x.district) for x in lights],
        grid=grid,
        clock=clock,
    )
    return _Fleet(
        grid=grid,
        modelled=modelled,
        index={x.device_id: k for k, x in enumerate(lights)},
        column={d: k for k, d in enumerate(days)},
    )


@dataclass(frozen=True, kw_only=True)
class _LightsSum:
    metered: float
    estimated: float
    covered_modelled: float
    modelled: float
    reporting: int
    by_circuit: dict[str, tuple[int, int, float, float]]  # lights, reporting, modelled, metered


def _lights_sum(
    lights: Sequence[LightRecord],
    fleet: _Fleet,
    rises: Mapping[Window, MeterRise],
    first: date,
    last: date,
    timezone: str,
) -> _LightsSum:
    start, end = local_window(first, last, timezone)
    lo, hi = fleet.column[first], fleet.column[last] + 1
    tz = ZoneInfo(timezone)
    metered = estimated = covered = modelled_total = 0.0
    reporting = 0
    circuits: dict[str, list[float]] = {}
    for light in lights:
        row = fleet.modelled.energy_wh[fleet.index[light.device_id]]
        modelled = float(row[lo:hi].sum()) / 1000.0
        modelled_total += modelled
        rise = rises.get((light.device_id, start, end))
        acc = circuits.setdefault(light.circuit_id, [0, 0, 0.0, 0.0])
        acc[0] += 1
        acc[2] += modelled
        if rise is None:
            estimated += modelled
            continue
        metered += rise.kwh
        acc[3] += rise.kwh
        still = rise.end_time >= end - REPORTING_SLACK
        if still:
            reporting += 1
            acc[1] += 1
        if still and rise.start_time <= start + REPORTING_SLACK:
            covered += modelled
            estimated += rise.kwh
        else:
            # Silent before the end: the model's figure for the days after its last reading.
            last_col = fleet.column.get(rise.end_time.astimezone(tz).date(), lo - 1)
            after = float(row[max(lo, last_col + 1) : hi].sum()) / 1000.0 if not still else 0.0
            estimated += rise.kwh + after
    return _LightsSum(
        metered=metered,
        estimated=estimated,
        covered_modelled=covered,
        modelled=modelled_total,
        reporting=reporting,
        by_circuit={k: (int(v[0]), int(v[1]), v[2], v[3]) for k, v in circuits.items()},
    )


def _device_sum(
    devices: Sequence[str], rises: Mapping[Window, MeterRise], start: datetime, end: datetime
) -> float | None:
    found = [rises.get((d, start, end)) for d in devices]
    if not devices or any(r is None for r in found):
        return None
    return sum(r.kwh for r in found if r is not None)


def _shares(
    tariffs: TariffSet | None,
    cabinet: CabinetRecord,
    lights: Sequence[LightRecord],
    first: date,
    last: date,
    grid: DayGrid,
    clock: Clock,
) -> dict[str, float]:
    if tariffs is None or cabinet.tariff is None or not lights:
        return {}
    days = days_of(first, last)
    try:
        versions = [tariffs.version(cabinet.tariff, d) for d in days]
    except TariffError:
        return {}
    bands_by_day = [v.bands_in(d.month) for v, d in zip(versions, days, strict=True)]
    if all(len(b) == 1 for b in bands_by_day):
        return {}
    profile = Counter(profile_for(x.district) for x in lights).most_common(1)[0][0]
    dimmable = sum((x.light_source or "LED").upper() in DIMMABLE for x in lights) * 2 > len(lights)
    lo = grid.days.index(first)
    sub = DayGrid(
        days=days,
        midnight=grid.midnight[lo : lo + len(days) + 1],
        offset_s=grid.offset_s[lo : lo + len(days)],
        midnight_offset_s=grid.midnight_offset_s[lo : lo + len(days)],
        ramadan=grid.ramadan[lo : lo + len(days)],
    )
    lat = float(np.mean([x.lat for x in lights]))
    lon = float(np.mean([x.lon for x in lights]))
    return band_shares(
        lat=lat,
        lon=lon,
        profile=Profile(profile),
        dimmable=dimmable,
        bands_by_day=bands_by_day,
        grid=sub,
        clock=clock,
    )


def reconcile_month(
    data: MonthData,
    tariffs: TariffSet | None,
    *,
    thresholds: Thresholds | None = None,
    clock: Clock | None = None,
) -> list[CabinetMonth]:
    """Every cabinet's reconciled month, in cabinet order."""
    clock = clock or Clock()
    thresholds = thresholds or Thresholds()
    first, last = data.month, last_day(data.month)
    span_first = min([first, *(b.period_start for b in data.bills.values())])
    span_last = max([last, *(b.period_end for b in data.bills.values())])
    days = days_of(span_first, span_last)
    fleet = _model(data, days, clock)
    start, end = local_window(first, last, clock.timezone)
    by_cabinet: dict[str, list[LightRecord]] = {}
    for light in data.lights:
        by_cabinet.setdefault(light.cabinet_id, []).append(light)
    lo, hi = fleet.column[first], fleet.column[last] + 1
    results = []
    for cabinet in sorted(data.cabinets, key=lambda c: c.cabinet_id):
        lights = by_cabinet.get(cabinet.cabinet_id, [])
        rows = [fleet.index[x.device_id] for x in lights]
        energy = fleet.modelled.energy_wh[rows]
        month = _lights_sum(lights, fleet, data.rises, first, last, clock.timezone)
        full = float(fleet.modelled.full_wh[rows, lo:hi].sum()) / 1000.0
        burning = float(fleet.modelled.burning_h[rows, lo:hi].sum(axis=1).mean()) if rows else 0.0
        connected = sum(x.circuit_w for x in lights)
        cabinet_kwh = _device_sum(cabinet.meter_devices, data.rises, start, end)
        meter_hours = data.meter_hours.get(cabinet.cabinet_id) if cabinet.meter_devices else None
        light_hours = data.circuit_hours.get(cabinet.cabinet_id)
        hours = meter_hours or light_hours
        peak_source: MeterSource | None = (
            "cabinet_meter" if meter_hours else "lights" if light_hours else None
        )
        bill_inputs = None
        bill = data.bills.get(cabinet.meter_id) if cabinet.meter_id else None
        if bill is not None:
            b_lo = fleet.column[bill.period_start]
            b_hi = fleet.column[bill.period_end] + 1
            b_start, b_end = local_window(bill.period_start, bill.period_end, clock.timezone)
            b_metered: float | None
            b_source: MeterSource | None
            if cabinet.meter_devices:
                b_metered = _device_sum(cabinet.meter_devices, data.rises, b_start, b_end)
                b_source = "cabinet_meter" if b_metered is not None else None
            else:
                part = _lights_sum(
                    lights, fleet, data.rises, bill.period_start, bill.period_end, clock.timezone
                )
                enough = part.modelled > 0 and (
                    100 * part.covered_modelled / part.modelled >= thresholds.lights_coverage_pct
                )
                b_metered = part.estimated if enough else None
                b_source = "lights" if enough else None
            weights = [float(w) / 1000.0 for w in energy[:, b_lo:b_hi].sum(axis=0)]
            bill_inputs = BillInputs(
                bill=bill,
                metered_kwh=b_metered,
                metered_source=b_source,
                modelled_kwh=sum(weights),
                daily_weights=weights,
                band_shares=_shares(
                    tariffs,
                    cabinet,
                    lights,
                    bill.period_start,
                    bill.period_end,
                    fleet.grid,
                    clock,
                ),
                previous=[
                    b
                    for b in data.history.get(bill.meter_id, [])
                    if b.period_end < bill.period_start
                ],
            )
        inputs = CabinetInputs(
            cabinet_id=cabinet.cabinet_id,
            district=cabinet.district,
            meter_id=cabinet.meter_id,
            contracted_kw=cabinet.contracted_kw,
            tariff=cabinet.tariff,
            first_day=first,
            last_day=last,
            lights=len(lights),
            lights_reporting=month.reporting,
            connected_kw=connected / 1000.0,
            burning_hours=burning,
            modelled_kwh=month.modelled,
            full_level_kwh=full,
            lights_metered_kwh=month.metered,
            lights_estimated_kwh=month.estimated,
            lights_covered_kwh=month.covered_modelled,
            cabinet_metered_kwh=cabinet_kwh,
            peak_kw=hours.peak_kwh if hours else None,
            peak_source=peak_source,
            day_kwh=hours.day_kwh if hours else 0.0,
            day_hours=hours.day_hours if hours else 0,
            circuits=[
                Circuit(
                    circuit_id=k,
                    lights=v[0],
                    lights_reporting=v[1],
                    modelled_kwh=v[2],
                    metered_kwh=v[3],
                )
                for k, v in sorted(month.by_circuit.items())
            ],
            bill=bill_inputs,
            baseline=data.baselines.get(cabinet.cabinet_id),
            month_weights=[float(w) / 1000.0 for w in energy[:, lo:hi].sum(axis=0)]
            if rows
            else [0.0] * (hi - lo),
            month_band_shares=_shares(tariffs, cabinet, lights, first, last, fleet.grid, clock),
        )
        results.append(reconcile_cabinet(inputs, tariffs, thresholds))
    return results


def totals(rows: Sequence[CabinetMonth], key: str) -> Totals:
    """The rows' figures summed under ``key``."""
    flags: Counter[str] = Counter()
    for row in rows:
        flags.update(row.flag_codes)
    billed = [r for r in rows if r.billed_kwh is not None]
    return Totals(
        key=key,
        cabinets=len(rows),
        lights=sum(r.lights for r in rows),
        modelled_kwh=round(sum(r.modelled_kwh for r in rows), 3),
        metered_kwh=round(sum(r.metered_kwh or 0.0 for r in rows), 3),
        metered_cabinets=sum(r.metered_kwh is not None for r in rows),
        billed_kwh=round(sum(r.billed_kwh or 0.0 for r in billed), 3),
        billed_dh=round(sum(r.billed_dh or 0.0 for r in billed), 2),
        recomputed_dh=round(sum(r.recomputed_dh or 0.0 for r in billed), 2),
        billed_cabinets=len(billed),
        dimming_saved_kwh=round(sum(r.dimming_saved_kwh for r in rows), 3),
        retrofit_saved_kwh=round(sum(r.retrofit_saved_kwh or 0.0 for r in rows), 3),
        saved_dh=round(sum(r.saved_dh or 0.0 for r in rows), 2),
        saved_co2_kg=round(sum(r.saved_co2_kg for r in rows), 3),
        flags=dict(sorted(flags.items())),
    )


def by_district(rows: Sequence[CabinetMonth]) -> list[Totals]:
    """Per district (cabinets without one under ""), sorted by name."""
    groups: dict[str, list[CabinetMonth]] = {}
    for row in rows:
        groups.setdefault(row.district or "", []).append(row)
    return [totals(groups[k], k) for k in sorted(groups)]
