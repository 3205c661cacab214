"""The tariff file (TOML) and the cost of a billing period under it (pure).

A tariff has versions, each valid from a date until the next one: a price per kWh per time
band (local time; a band may wrap midnight and may hold only in some months, e.g. a summer
peak), a fixed charge per meter and month, a charge per contracted kW and month, and VAT. The
file is the only place prices live; ``tariffs.example.toml`` documents every key.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

from telemetry.errors import TelemetryError

#: The example shipped with Rasd: invented prices, clearly labelled, never the city's own.
EXAMPLE_FILE: Final = Path(__file__).with_name("tariffs.example.toml")
#: Morocco's VAT on electricity (code général des impôts, art. 99: reduced rate of 14 %).
DEFAULT_VAT_PCT: Final = 14.0

_DAY_MIN: Final = 1440
_TIME: Final = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_NAME: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ALL_MONTHS: Final = frozenset(range(1, 13))


class TariffError(TelemetryError):
    """The tariff file is malformed, or a bill names a tariff or date it does not cover."""


@dataclass(frozen=True, kw_only=True)
class Band:
    """A time band: local ``start`` to ``end`` minute of day (wrapping midnight when
    ``end <= start``), in the given months, at ``dh_per_kwh`` before VAT."""

    name: str
    start_min: int
    end_min: int
    dh_per_kwh: float
    months: frozenset[int] = _ALL_MONTHS

    def minutes(self) -> list[tuple[int, int]]:
        """The band as [start, end) minute ranges within one day."""
        if self.end_min > self.start_min:
            return [(self.start_min, self.end_min)]
        return [(self.start_min, _DAY_MIN), (0, self.end_min)]

    def covers(self, minute: float, month: int) -> bool:
        """True when local ``minute`` of a day in ``month`` falls in this band."""
        return month in self.months and any(a <= minute < b for a, b in self.minutes())


@dataclass(frozen=True, kw_only=True)
class TariffVersion:
    """One tariff's prices from ``valid_from`` until the next version."""

    name: str
    valid_from: date
    bands: tuple[Band, ...]
    fixed_dh_per_month: float  # per meter: meter rental, subscription
    power_dh_per_kw_month: float  # per contracted kW (prime fixe)
    vat_pct: float
    power_steps_kw: tuple[float, ...] = ()  # the powers a contract may subscribe, ascending

    def contract_for(self, need_kw: float) -> float:
        """The smallest subscribable power covering ``need_kw`` (whole kW without steps)."""
        return next((s for s in self.power_steps_kw if s >= need_kw), float(math.ceil(need_kw)))

    def bands_in(self, month: int) -> list[Band]:
        """The bands that hold in calendar ``month``."""
        return [b for b in self.bands if month in b.months]

    def band_at(self, minute: float, month: int) -> Band:
        """The band of local ``minute`` in ``month`` (the file guarantees exactly one)."""
        return next(b for b in self.bands if b.covers(minute, month))


@dataclass(frozen=True, kw_only=True)
class TariffSet:
    """Every tariff of the file, each with its versions oldest first."""

    tariffs: Mapping[str, tuple[TariffVersion, ...]]
    co2_kg_per_kwh: float
    source: str = "(in memory)"

    def version(self, name: str, day: date) -> TariffVersion:
        """The version of tariff ``name`` in force on ``day``."""
        versions = self.tariffs.get(name)
        if not versions:
            known = ", ".join(sorted(self.tariffs)) or "none"
            raise TariffError(f"no tariff {name!r} in {self.source} (known: {known})")
        current = [v for v in versions if v.valid_from <= day]
        if not current:
            raise TariffError(
                f"tariff {name!r} has no version valid on {day} "
                f"(first valid from {versions[0].valid_from})"
            )
        return current[-1]


@dataclass(frozen=True, kw_only=True)
class CostLine:
    """One priced line of a recomputed bill (before VAT)."""

    label: str
    quantity: float
    unit: str
    unit_price_dh: float
    amount_dh: float


@dataclass(frozen=True, kw_only=True)
class Cost:
    """A billing period's cost under the tariff: lines before VAT, VAT and the total."""

    lines: list[CostLine] = field(default_factory=list)
    energy_dh: float
    fixed_dh: float
    power_dh: float
    vat_dh: float

    @property
    def before_vat_dh(self) -> float:
        """Everything before VAT."""
        return self.energy_dh + self.fixed_dh + self.power_dh

    @property
    def total_dh(self) -> float:
        """What the bill should say, VAT included."""
        return self.before_vat_dh + self.vat_dh


# -- loading ----------------------------------------------------------------------------------


def _minute(text: object, where: str) -> int:
    if not isinstance(text, str) or not (m := _TIME.match(text)):
        raise TariffError(f"{where}: expected a local time HH:MM (00:00 to 24:00), got {text!r}")
    minute = int(m.group(1)) * 60 + int(m.group(2))
    if minute > _DAY_MIN:
        raise TariffError(f"{where}: {text} is after 24:00")
    return minute


def _number(
    table: Mapping[str, Any], key: str, where: str, *, default: float | None = None
) -> float:
    value = table.get(key, default)
    if value is None:
        raise TariffError(f"{where}: {key} is missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TariffError(f"{where}: {key} must be a number, got {value!r}")
    if not 0 <= float(value) < 1e6:
        raise TariffError(f"{where}: {key} must be between 0 and 1,000,000, got {value}")
    return float(value)


def _unknown(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(table) - allowed)
    if extra:
        raise TariffError(f"{where}: unknown key(s) {', '.join(extra)}")


def _band(table: Any, where: str) -> Band:
    if not isinstance(table, dict):
        raise TariffError(f"{where}: a band is a table")
    _unknown(table, {"name", "from", "to", "dh_per_kwh", "months"}, where)
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise TariffError(f"{where}: name must be lower_snake_case, got {name!r}")
    start = _minute(table.get("from"), f"{where} ({name}) from")
    end = _minute(table.get("to"), f"{where} ({name}) to")
    if start == _DAY_MIN:
        raise TariffError(f"{where} ({name}): from 24:00 is the next day's 00:00")
    if end == start:
        raise TariffError(f"{where} ({name}): from and to are equal (use 00:00 to 24:00)")
    months = table.get("months", sorted(_ALL_MONTHS))
    if (
        not isinstance(months, list)
        or not months
        or any(isinstance(m, bool) or not isinstance(m, int) or not 1 <= m <= 12 for m in months)
    ):
        raise TariffError(f"{where} ({name}): months must be a non-empty list of 1 to 12")
    return Band(
        name=name,
        start_min=start,
        end_min=end,
        dh_per_kwh=_number(table, "dh_per_kwh", f"{where} ({name})"),
        months=frozenset(months),
    )


def _check_coverage(version: TariffVersion, where: str) -> None:
    """Every minute of every month falls in exactly one band."""
    for month in range(1, 13):
        cover = [0] * _DAY_MIN
        for band in version.bands_in(month):
            for a, b in band.minutes():
                for m in range(a, b):
                    cover[m] += 1
        gaps = [m for m, c in enumerate(cover) if c == 0]
        overlaps = [m for m, c in enumerate(cover) if c > 1]
        if gaps:
            raise TariffError(
                f"{where}: month {month} has no band at {gaps[0] // 60:02d}:{gaps[0] % 60:02d}"
            )
        if overlaps:
            m = overlaps[0]
            raise TariffError(
                f"{where}: bands overlap in month {month} at {m // 60:02d}:{m % 60:02d}"
            )


def _version(table: Any, where: str, default_vat: float) -> TariffVersion:
    if not isinstance(table, dict):
        raise TariffError(f"{where}: a tariff is a table")
    allowed = {
        "name",
        "valid_from",
        "bands",
        "fixed_dh_per_month",
        "power_dh_per_kw_month",
        "vat_pct",
        "power_steps_kw",
        "note",
    }
    _unknown(table, allowed, where)
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise TariffError(f"{where}: name must be lower_snake_case, got {name!r}")
    where = f"{where} ({name})"
    valid_from = table.get("valid_from")
    if not isinstance(valid_from, date) or hasattr(valid_from, "hour"):
        raise TariffError(f"{where}: valid_from must be a TOML date (YYYY-MM-DD)")
    bands = table.get("bands")
    if not isinstance(bands, list) or not bands:
        raise TariffError(f"{where}: bands must list at least one [[tariffs.bands]]")
    parsed = tuple(_band(b, f"{where} band {i + 1}") for i, b in enumerate(bands))
    steps = table.get("power_steps_kw", [])
    if (
        not isinstance(steps, list)
        or any(isinstance(x, bool) or not isinstance(x, int | float) or x <= 0 for x in steps)
        or steps != sorted(set(steps))
    ):
        raise TariffError(f"{where}: power_steps_kw must list positive kW in increasing order")
    version = TariffVersion(
        name=name,
        power_steps_kw=tuple(float(x) for x in steps),
        valid_from=valid_from,
        bands=parsed,
        fixed_dh_per_month=_number(table, "fixed_dh_per_month", where, default=0.0),
        power_dh_per_kw_month=_number(table, "power_dh_per_kw_month", where, default=0.0),
        vat_pct=_number(table, "vat_pct", where, default=default_vat),
    )
    if version.vat_pct > 100:
        raise TariffError(f"{where}: vat_pct {version.vat_pct} is over 100")
    for month in range(1, 13):
        names = [b.name for b in version.bands_in(month)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise TariffError(f"{where}: two bands named {dupes[0]} hold in month {month}")
    _check_coverage(version, where)
    return version


def parse_tariffs(text: str, source: str = "(text)") -> TariffSet:
    """The tariff set in TOML ``text``; a bad file raises TariffError naming the place."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TariffError(f"{source}: not TOML: {exc}") from None
    _unknown(doc, {"schema", "vat_pct", "co2_kg_per_kwh", "tariffs", "note"}, source)
    if doc.get("schema", 1) != 1:
        raise TariffError(f"{source}: schema {doc.get('schema')!r} is not 1")
    vat = _number(doc, "vat_pct", source, default=DEFAULT_VAT_PCT)
    co2 = _number(doc, "co2_kg_per_kwh", source)
    if co2 > 5:
        raise TariffError(f"{source}: co2_kg_per_kwh {co2} is not a grid factor (kg per kWh)")
    tables = doc.get("tariffs")
    if not isinstance(tables, list) or not tables:
        raise TariffError(f"{source}: no [[tariffs]]")
    by_name: dict[str, list[TariffVersion]] = {}
    for i, table in enumerate(tables):
        version = _version(table, f"{source}: tariff {i + 1}", vat)
        by_name.setdefault(version.name, []).append(version)
    result: dict[str, tuple[TariffVersion, ...]] = {}
    for name, versions in by_name.items():
        versions.sort(key=lambda v: v.valid_from)
        days = [v.valid_from for v in versions]
        if len(set(days)) != len(days):
            raise TariffError(f"{source}: tariff {name} has two versions valid from the same day")
        result[name] = tuple(versions)
    return TariffSet(tariffs=result, co2_kg_per_kwh=co2, source=source)


def load_tariffs(path: Path) -> TariffSet:
    """The tariff set of the file at ``path``."""
    return parse_tariffs(path.read_text("utf-8"), str(path))


# -- cost -------------------------------------------------------------------------------------


def days_of(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last`` inclusive."""
    return [first + timedelta(days=k) for k in range((last - first).days + 1)]


def _month_length(day: date) -> int:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return (following - date(day.year, day.month, 1)).days


def month_fraction(day: date) -> float:
    """The share of its calendar month one day is: fixed monthly charges accrue per day."""
    return 1.0 / _month_length(day)


def period_cost(
    tariffs: TariffSet,
    name: str,
    first: date,
    last: date,
    kwh: float,
    *,
    contracted_kw: float | None,
    daily_weights: Sequence[float] | None = None,
    band_shares: Mapping[str, float] | None = None,
) -> Cost:
    """The cost of ``kwh`` used from ``first`` to ``last`` (inclusive local days) on tariff
    ``name``.

    The energy is spread over the days by ``daily_weights`` (default: evenly), so a period
    across a price change pays each version for its share; within a version it is split over
    the bands by ``band_shares`` (band name → share; default: the band covering 21:00, where
    lighting spends most of its energy). Fixed and per-kW charges accrue per day as the
    day's share of its calendar month, so a whole calendar month pays exactly one month.
    """
    if last < first:
        raise TariffError(f"period ends ({last}) before it starts ({first})")
    days = days_of(first, last)
    weights = list(daily_weights) if daily_weights is not None else [1.0] * len(days)
    if len(weights) != len(days) or any(w < 0 for w in weights):
        raise TariffError("daily_weights: one non-negative weight per day of the period")
    total_weight = sum(weights)
    if total_weight <= 0:
        weights, total_weight = [1.0] * len(days), float(len(days))
    energy: dict[tuple[date, str, float], float] = {}
    fixed: dict[tuple[date, float], float] = {}
    power: dict[tuple[date, float], float] = {}
    vat_dh = 0.0
    for day, weight in zip(days, weights, strict=True):
        version = tariffs.version(name, day)
        day_kwh = kwh * weight / total_weight
        bands = version.bands_in(day.month)
        shares = _shares(bands, band_shares, day.month, version)
        day_energy = 0.0
        for band in bands:
            share = shares.get(band.name, 0.0)
            if share <= 0:
                continue
            key = (version.valid_from, band.name, band.dh_per_kwh)
            energy[key] = energy.get(key, 0.0) + day_kwh * share
            day_energy += day_kwh * share * band.dh_per_kwh
        part = month_fraction(day)
        fkey = (version.valid_from, version.fixed_dh_per_month)
        fixed[fkey] = fixed.get(fkey, 0.0) + part
        day_power = 0.0
        if contracted_kw:
            pkey = (version.valid_from, version.power_dh_per_kw_month)
            power[pkey] = power.get(pkey, 0.0) + part * contracted_kw
            day_power = part * contracted_kw * version.power_dh_per_kw_month
        day_fixed = part * version.fixed_dh_per_month
        vat_dh += (day_energy + day_fixed + day_power) * version.vat_pct / 100.0
    lines = [
        CostLine(
            label=f"energy {band} (from {since})",
            quantity=q,
            unit="kWh",
            unit_price_dh=price,
            amount_dh=q * price,
        )
        for (since, band, price), q in energy.items()
    ]
    lines += [
        CostLine(
            label=f"fixed charge per meter (from {since})",
            quantity=q,
            unit="month",
            unit_price_dh=price,
            amount_dh=q * price,
        )
        for (since, price), q in fixed.items()
    ]
    lines += [
        CostLine(
            label=f"contracted power (from {since})",
            quantity=q,
            unit="kW·month",
            unit_price_dh=price,
            amount_dh=q * price,
        )
        for (since, price), q in power.items()
        if price > 0
    ]
    return Cost(
        lines=lines,
        energy_dh=sum(line.amount_dh for line in lines if line.unit == "kWh"),
        fixed_dh=sum(line.amount_dh for line in lines if line.unit == "month"),
        power_dh=sum(line.amount_dh for line in lines if line.unit == "kW·month"),
        vat_dh=vat_dh,
    )


def _shares(
    bands: list[Band],
    band_shares: Mapping[str, float] | None,
    month: int,
    version: TariffVersion,
) -> dict[str, float]:
    if len(bands) == 1:
        return {bands[0].name: 1.0}
    if band_shares is None:
        return {version.band_at(21 * 60, month).name: 1.0}
    known = {b.name for b in bands}
    usable = {k: v for k, v in band_shares.items() if k in known and v > 0}
    total = sum(usable.values())
    if total <= 0:
        return {version.band_at(21 * 60, month).name: 1.0}
    return {k: v / total for k, v in usable.items()}


def average_price_dh(tariffs: TariffSet, name: str, day: date) -> float:
    """The mean energy price per kWh, VAT included, of tariff ``name`` on ``day`` across its
    bands weighted by their hours (for valuing saved kWh)."""
    version = tariffs.version(name, day)
    bands = version.bands_in(day.month)
    minutes = {b.name: sum(e - s for s, e in b.minutes()) for b in bands}
    price = sum(b.dh_per_kwh * minutes[b.name] for b in bands) / _DAY_MIN
    return price * (1 + version.vat_pct / 100.0)
