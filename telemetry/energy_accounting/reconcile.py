"""One cabinet's month: modelled, metered and billed energy side by side, the bill recomputed
from the tariff, the flags that need a person's attention (each with its evidence), and the
savings of dimming and LED retrofits against a measured baseline (pure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Final, Literal

from telemetry.energy_accounting.bills import Bill
from telemetry.energy_accounting.tariffs import (
    Cost,
    TariffError,
    TariffSet,
    TariffVersion,
    average_price_dh,
    period_cost,
)
from telemetry.errors import TelemetryError

Evidence = dict[str, float | int | str | bool | list[str] | list[float] | None]
MeterSource = Literal["cabinet_meter", "lights"]


class AccountingError(TelemetryError):
    """What was asked cannot be done with what is stored (no such month, cabinet, baseline)."""


class FlagCode(StrEnum):
    """What a flag says about a cabinet's month."""

    BILLED_VS_METERED = "billed_vs_metered"
    ESTIMATED_BILL = "estimated_bill"
    FLAT_RATE_BILL = "flat_rate_bill"
    UNMETERED_LOAD = "unmetered_load"
    DARK_CIRCUIT = "dark_circuit"
    DAY_BURNING_ENERGY = "day_burning_energy"
    OVER_CONTRACTED_POWER = "over_contracted_power"
    TARIFF_MISMATCH = "tariff_mismatch"


@dataclass(frozen=True, kw_only=True)
class Flag:
    """One finding: its code, a sentence for people, and the figures it rests on."""

    code: FlagCode
    message: str
    evidence: Evidence


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """When a gap is worth a flag (docs/energy_accounting.md gives the reasons)."""

    billed_vs_metered_pct: float = 3.0
    #: Cable losses between a cabinet meter and its lights' meters, allowed before a gap.
    line_losses_pct: float = 3.0
    unmetered_load_pct: float = 10.0
    unmetered_load_min_kwh: float = 20.0
    dark_circuit_pct: float = 50.0  # a circuit metered under this share of its modelled energy
    dark_circuit_min_kwh: float = 10.0
    day_burning_pct: float = 2.0  # daylight energy over this share of the cabinet's energy
    day_burning_min_kwh: float = 5.0
    over_contracted_ratio: float = 1.5  # contract over this multiple of the measured peak
    #: Headroom over the measured peak when suggesting a contract.
    contract_headroom: float = 1.25
    tariff_mismatch_pct: float = 1.0
    tariff_mismatch_min_dh: float = 2.0
    flat_rate_bills: int = 3  # this many bills in a row with the same kWh
    flat_rate_tolerance_pct: float = 0.5
    #: Share of the cabinet's modelled energy its reporting lights must cover before their
    #: meters stand for the cabinet (the rest is filled in from the model).
    lights_coverage_pct: float = 90.0


@dataclass(frozen=True, kw_only=True)
class Circuit:
    """A circuit's month: its lights, modelled and metered energy."""

    circuit_id: str
    lights: int
    lights_reporting: int  # with a reading in the last hours of the month
    modelled_kwh: float
    metered_kwh: float  # the rise of its lights' meters (silent lights: up to their last reading)


@dataclass(frozen=True, kw_only=True)
class BillInputs:
    """A bill reconciled this month, with the energy measured and modelled over its period."""

    bill: Bill
    metered_kwh: float | None
    metered_source: MeterSource | None
    modelled_kwh: float
    daily_weights: list[float]  # modelled energy per day of the bill period
    band_shares: dict[str, float]
    previous: list[Bill] = field(default_factory=list)  # the meter's earlier bills, oldest first


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """A cabinet's measured energy before a retrofit, per burning hour (IPMVP option B)."""

    cabinet_id: str
    kwh_per_burning_hour: float
    from_month: date
    to_month: date


@dataclass(frozen=True, kw_only=True)
class CabinetInputs:
    """Everything the month's reconciliation of one cabinet rests on."""

    cabinet_id: str
    district: str | None
    meter_id: str | None
    contracted_kw: float | None
    tariff: str | None
    first_day: date
    last_day: date
    lights: int
    lights_reporting: int
    connected_kw: float  # Σ circuit watts of its lights
    burning_hours: float  # mean modelled burning hours of its lights
    modelled_kwh: float
    full_level_kwh: float  # the same lights and hours at 100 %
    lights_metered_kwh: float  # Σ rise of the lights' meters
    lights_estimated_kwh: float  # that, plus the model's figure for lights after they fell silent
    lights_covered_kwh: float  # modelled energy of the lights that reported through the month
    cabinet_metered_kwh: float | None  # the cabinet meter's rise, when it has one
    peak_kw: float | None
    peak_source: MeterSource | None
    day_kwh: float  # metered in hours of full daylight
    day_hours: int  # daylight hours with energy
    circuits: list[Circuit]
    bill: BillInputs | None
    baseline: Baseline | None
    month_weights: list[float]  # modelled energy per day of the month
    month_band_shares: dict[str, float]


@dataclass(frozen=True, kw_only=True)
class CabinetMonth:
    """The reconciled month of one cabinet (what is stored and served)."""

    cabinet_id: str
    month: date
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
    metered_kwh: float | None  # the best measure: the cabinet meter, else its lights' meters
    metered_source: MeterSource | None
    peak_kw: float | None
    day_burning_kwh: float
    bill_number: str | None
    bill_period_start: date | None
    bill_period_end: date | None
    billed_kwh: float | None
    billed_dh: float | None
    bill_estimated: bool | None
    bill_metered_kwh: float | None  # measured over the bill's own period
    recomputed_dh: float | None  # the bill recomputed from the tariff
    expected_dh: float | None  # the metered month priced at the tariff
    dimming_saved_kwh: float
    retrofit_saved_kwh: float | None
    saved_dh: float | None
    saved_co2_kg: float
    flags: list[Flag]
    notes: list[str]

    @property
    def flag_codes(self) -> list[str]:
        """The codes of its flags, in order."""
        return [f.code.value for f in self.flags]


_EPS: Final = 1e-9


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole if abs(whole) > _EPS else math.inf


def _share(part: float, whole: float) -> float | None:
    """``part`` in % of ``whole`` for evidence (None when ``whole`` is nothing: JSON has no
    infinity)."""
    return round(100.0 * part / whole, 2) if abs(whole) > _EPS else None


def best_metered(c: CabinetInputs, t: Thresholds) -> tuple[float | None, MeterSource | None]:
    """The cabinet's month as measured: its meter, else its lights' meters when they cover
    enough of its modelled energy (the silent ones filled in from the model)."""
    if c.cabinet_metered_kwh is not None:
        return c.cabinet_metered_kwh, "cabinet_meter"
    if c.lights and _pct(c.lights_covered_kwh, c.modelled_kwh) >= t.lights_coverage_pct:
        return c.lights_estimated_kwh, "lights"
    return None, None


def _cost(
    tariffs: TariffSet | None,
    c: CabinetInputs,
    first: date,
    last: date,
    kwh: float,
    weights: Sequence[float],
    shares: dict[str, float],
    notes: list[str],
) -> Cost | None:
    if tariffs is None or c.tariff is None:
        return None
    try:
        return period_cost(
            tariffs,
            c.tariff,
            first,
            last,
            kwh,
            contracted_kw=c.contracted_kw,
            daily_weights=weights,
            band_shares=shares or None,
        )
    except TariffError as exc:
        notes.append(str(exc))
        return None


def _bill_flags(
    c: CabinetInputs,
    b: BillInputs,
    t: Thresholds,
    price: float | None,
    recomputed: Cost | None,
) -> list[Flag]:
    bill = b.bill
    flags: list[Flag] = []
    gap_kwh = None if b.metered_kwh is None else bill.billed_kwh - b.metered_kwh
    gap_pct = None if b.metered_kwh is None or gap_kwh is None else _share(gap_kwh, b.metered_kwh)
    # Energy billed where nothing was measured is a gap of its own, whatever its percentage.
    over = gap_kwh is not None and (
        abs(gap_pct) > t.billed_vs_metered_pct if gap_pct is not None else abs(gap_kwh) >= 1.0
    )
    common: Evidence = {
        "bill_number": bill.bill_number,
        "period_start": bill.period_start.isoformat(),
        "period_end": bill.period_end.isoformat(),
        "billed_kwh": _r(bill.billed_kwh),
        "metered_kwh": _r(b.metered_kwh),
        "metered_source": b.metered_source,
        "modelled_kwh": _r(b.modelled_kwh),
    }
    if bill.estimated:
        flags.append(
            Flag(
                code=FlagCode.ESTIMATED_BILL,
                message=(
                    f"bill {bill.bill_number or ''} for {bill.period_start}..{bill.period_end} "
                    "is an estimate, not a reading of the meter"
                ).replace("bill  for", "bill for"),
                evidence=common
                | {
                    "gap_kwh": _r(gap_kwh),
                    "gap_pct": gap_pct,
                    "gap_dh": _r(None if gap_kwh is None or price is None else gap_kwh * price, 2),
                },
            )
        )
    elif over and gap_kwh is not None and b.metered_kwh is not None:
        way = "more" if gap_kwh > 0 else "less"
        size = f"{abs(gap_pct):.1f} %" if gap_pct is not None else f"{abs(gap_kwh):,.0f} kWh"
        flags.append(
            Flag(
                code=FlagCode.BILLED_VS_METERED,
                message=(
                    f"billed {bill.billed_kwh:,.0f} kWh, {size} {way} than the "
                    f"{b.metered_kwh:,.0f} kWh measured over the same period"
                ),
                evidence=common
                | {
                    "gap_kwh": _r(gap_kwh),
                    "gap_pct": gap_pct,
                    "gap_dh": _r(None if price is None else gap_kwh * price, 2),
                    "threshold_pct": t.billed_vs_metered_pct,
                },
            )
        )
    run = [*b.previous[-(t.flat_rate_bills - 1) :], bill] if t.flat_rate_bills > 1 else []
    if len(run) >= t.flat_rate_bills:
        reference = bill.billed_kwh
        tolerance = max(abs(reference) * t.flat_rate_tolerance_pct / 100.0, 0.5)
        if all(abs(x.billed_kwh - reference) <= tolerance for x in run):
            flags.append(
                Flag(
                    code=FlagCode.FLAT_RATE_BILL,
                    message=(
                        f"the same {reference:,.0f} kWh billed {len(run)} periods in a row, "
                        "while the nights' length changes the consumption every month"
                    ),
                    evidence={
                        "periods": [f"{x.period_start}..{x.period_end}" for x in run],
                        "billed_kwh": [round(x.billed_kwh, 3) for x in run],
                        "estimated": [str(x.estimated).lower() for x in run],
                        "modelled_kwh": _r(b.modelled_kwh),
                    },
                )
            )
    if recomputed is not None:
        diff = bill.amount_dh - recomputed.total_dh
        limit = max(
            t.tariff_mismatch_min_dh, abs(recomputed.total_dh) * t.tariff_mismatch_pct / 100
        )
        if abs(diff) > limit:
            flags.append(
                Flag(
                    code=FlagCode.TARIFF_MISMATCH,
                    message=(
                        f"billed {bill.amount_dh:,.2f} DH for {bill.billed_kwh:,.0f} kWh; "
                        f"the tariff {c.tariff} gives {recomputed.total_dh:,.2f} DH"
                    ),
                    evidence={
                        "bill_number": bill.bill_number,
                        "tariff": c.tariff,
                        "billed_dh": round(bill.amount_dh, 2),
                        "recomputed_dh": round(recomputed.total_dh, 2),
                        "difference_dh": round(diff, 2),
                        "recomputed_energy_dh": round(recomputed.energy_dh, 2),
                        "recomputed_fixed_dh": round(recomputed.fixed_dh, 2),
                        "recomputed_power_dh": round(recomputed.power_dh, 2),
                        "recomputed_vat_dh": round(recomputed.vat_dh, 2),
                        "billed_fixed_dh": _r(bill.fixed_charges_dh, 2),
                        "billed_vat_dh": _r(bill.vat_dh, 2),
                        "band_shares": [f"{k}={v:.3f}" for k, v in sorted(b.band_shares.items())],
                    },
                )
            )
    return flags


def _meter_flags(
    c: CabinetInputs, t: Thresholds, price: float | None, version: TariffVersion | None
) -> list[Flag]:
    flags: list[Flag] = []
    hours = ((c.last_day - c.first_day).days + 1) * 24
    covered = c.lights > 0 and _pct(c.lights_covered_kwh, c.modelled_kwh) >= t.lights_coverage_pct
    if c.cabinet_metered_kwh is not None and covered:
        allowed = c.lights_estimated_kwh * (1 + t.line_losses_pct / 100.0)
        excess = c.cabinet_metered_kwh - allowed
        if excess > max(
            t.unmetered_load_min_kwh, c.lights_estimated_kwh * t.unmetered_load_pct / 100
        ):
            flags.append(
                Flag(
                    code=FlagCode.UNMETERED_LOAD,
                    message=(
                        f"the cabinet meter counted {c.cabinet_metered_kwh:,.0f} kWh, "
                        f"{excess:,.0f} kWh more than its lights' meters and line losses: an "
                        "illegal tap or an unregistered load"
                    ),
                    evidence={
                        "cabinet_metered_kwh": _r(c.cabinet_metered_kwh),
                        "lights_metered_kwh": _r(c.lights_estimated_kwh),
                        "line_losses_pct": t.line_losses_pct,
                        "excess_kwh": _r(excess),
                        "excess_pct": _share(excess, c.lights_estimated_kwh),
                        "excess_dh": _r(None if price is None else excess * price, 2),
                        "mean_unmetered_w": _r(1000.0 * excess / hours, 1),
                        "lights": c.lights,
                        "lights_reporting": c.lights_reporting,
                    },
                )
            )
    dark = [
        k
        for k in c.circuits
        if k.modelled_kwh >= t.dark_circuit_min_kwh
        and k.metered_kwh < k.modelled_kwh * t.dark_circuit_pct / 100.0
    ]
    if dark:
        flags.append(
            Flag(
                code=FlagCode.DARK_CIRCUIT,
                message=(
                    f"{len(dark)} circuit(s) metered under {t.dark_circuit_pct:.0f} % of their "
                    f"modelled energy: {', '.join(k.circuit_id for k in dark)}"
                ),
                evidence={
                    "circuits": [k.circuit_id for k in dark],
                    "modelled_kwh": [round(k.modelled_kwh, 3) for k in dark],
                    "metered_kwh": [round(k.metered_kwh, 3) for k in dark],
                    "lights": [float(k.lights) for k in dark],
                    "lights_reporting": [float(k.lights_reporting) for k in dark],
                    "cabinet_metered_kwh": _r(c.cabinet_metered_kwh),
                    "threshold_pct": t.dark_circuit_pct,
                },
            )
        )
    metered, _ = best_metered(c, t)
    reference = metered if metered is not None else c.lights_metered_kwh
    share = _share(c.day_kwh, reference)
    if c.day_kwh > max(t.day_burning_min_kwh, reference * t.day_burning_pct / 100.0):
        flags.append(
            Flag(
                code=FlagCode.DAY_BURNING_ENERGY,
                message=(
                    f"{c.day_kwh:,.0f} kWh used in full daylight over {c.day_hours} hours"
                    + (f" ({share:.1f} % of the month)" if share is not None else "")
                ),
                evidence={
                    "day_kwh": _r(c.day_kwh),
                    "day_hours": c.day_hours,
                    "month_kwh": _r(reference),
                    "day_dh": _r(None if price is None else c.day_kwh * price, 2),
                    "threshold_pct": t.day_burning_pct,
                },
            )
        )
    need = (c.peak_kw or 0.0) * t.contract_headroom
    suggested = version.contract_for(need) if version is not None else float(math.ceil(need))
    if (
        c.contracted_kw is not None
        and c.peak_kw is not None
        and c.peak_kw > 0
        and c.contracted_kw > t.over_contracted_ratio * c.peak_kw
        and suggested < c.contracted_kw
    ):
        yearly = (
            None
            if version is None
            else (c.contracted_kw - suggested)
            * version.power_dh_per_kw_month
            * 12
            * (1 + version.vat_pct / 100)
        )
        flags.append(
            Flag(
                code=FlagCode.OVER_CONTRACTED_POWER,
                message=(
                    f"contract of {c.contracted_kw:g} kW for a measured peak of "
                    f"{c.peak_kw:.1f} kW ({c.contracted_kw / c.peak_kw:.1f} times)"
                ),
                evidence={
                    "contracted_kw": c.contracted_kw,
                    "peak_kw": _r(c.peak_kw),
                    "peak_source": c.peak_source,
                    "connected_kw": _r(c.connected_kw),
                    "suggested_kw": suggested,
                    "ratio": _r(c.contracted_kw / c.peak_kw, 2),
                    "yearly_saving_dh": _r(yearly, 2),
                },
            )
        )
    return flags


def reconcile_cabinet(
    c: CabinetInputs,
    tariffs: TariffSet | None,
    thresholds: Thresholds | None = None,
) -> CabinetMonth:
    """The reconciled month of one cabinet, its flags in a fixed order."""
    t = thresholds or Thresholds()
    notes: list[str] = []
    metered, source = best_metered(c, t)
    if metered is None and c.lights:
        notes.append(
            f"no cabinet meter, and its reporting lights cover only "
            f"{_pct(c.lights_covered_kwh, c.modelled_kwh):.0f} % of its modelled energy"
        )
    price = None
    version = None
    if tariffs is not None and c.tariff is not None:
        try:
            version = tariffs.version(c.tariff, c.last_day)
            price = average_price_dh(tariffs, c.tariff, c.last_day)
        except TariffError as exc:
            notes.append(str(exc))
    elif c.tariff is None and c.meter_id is not None:
        notes.append("the register gives this cabinet no tariff: nothing priced")
    expected = (
        _cost(
            tariffs,
            c,
            c.first_day,
            c.last_day,
            metered,
            c.month_weights,
            c.month_band_shares,
            [],
        )
        if metered is not None
        else None
    )
    flags: list[Flag] = []
    recomputed = None
    if c.bill is not None:
        b = c.bill
        recomputed = _cost(
            tariffs,
            c,
            b.bill.period_start,
            b.bill.period_end,
            b.bill.billed_kwh,
            b.daily_weights,
            b.band_shares,
            notes,
        )
        flags += _bill_flags(c, b, t, price, recomputed)
    elif c.meter_id is not None:
        notes.append("no bill for this month")
    flags += _meter_flags(c, t, price, version)
    order = list(FlagCode)
    flags.sort(key=lambda f: order.index(f.code))

    dimming = 0.0
    retrofit = None
    if metered is not None and c.modelled_kwh > _EPS:
        undimmed = metered * c.full_level_kwh / c.modelled_kwh
        dimming = undimmed - metered
        if c.baseline is not None:
            retrofit = c.baseline.kwh_per_burning_hour * c.burning_hours - undimmed
    saved = dimming + (retrofit or 0.0)
    bill = c.bill.bill if c.bill is not None else None
    return CabinetMonth(
        cabinet_id=c.cabinet_id,
        month=c.first_day,
        district=c.district,
        meter_id=c.meter_id,
        tariff=c.tariff,
        contracted_kw=c.contracted_kw,
        lights=c.lights,
        lights_reporting=c.lights_reporting,
        connected_kw=round(c.connected_kw, 3),
        burning_hours=round(c.burning_hours, 3),
        modelled_kwh=round(c.modelled_kwh, 3),
        lights_metered_kwh=round(c.lights_metered_kwh, 3),
        cabinet_metered_kwh=_r(c.cabinet_metered_kwh),
        metered_kwh=_r(metered),
        metered_source=source,
        peak_kw=_r(c.peak_kw),
        day_burning_kwh=round(c.day_kwh, 3),
        bill_number=bill.bill_number if bill else None,
        bill_period_start=bill.period_start if bill else None,
        bill_period_end=bill.period_end if bill else None,
        billed_kwh=bill.billed_kwh if bill else None,
        billed_dh=bill.amount_dh if bill else None,
        bill_estimated=bill.estimated if bill else None,
        bill_metered_kwh=_r(c.bill.metered_kwh) if c.bill else None,
        recomputed_dh=_r(recomputed.total_dh if recomputed else None, 2),
        expected_dh=_r(expected.total_dh if expected else None, 2),
        dimming_saved_kwh=round(dimming, 3) + 0.0,
        retrofit_saved_kwh=_r(retrofit),
        saved_dh=_r(None if price is None else saved * price, 2),
        saved_co2_kg=round(saved * (tariffs.co2_kg_per_kwh if tariffs else 0.0), 3),
        flags=flags,
        notes=notes,
    )


def baseline_rate(metered_kwh: Sequence[float], burning_hours: Sequence[float]) -> float:
    """A baseline's kWh per burning hour from measured months (IPMVP option B: the measured
    energy, normalised by the routine adjustment, here the nights' length)."""
    hours = sum(burning_hours)
    if hours <= 0:
        raise AccountingError("a baseline needs months with burning hours")
    return sum(metered_kwh) / hours
