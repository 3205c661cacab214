"""The utility's bills: one record per meter and billing period, read from CSV or JSON (pure).

A file imports whole or not at all: every problem is reported with its line (CSV) or its
position (JSON), and the first few dozen are shown. Dates are ``YYYY-MM-DD`` or the bills'
own ``DD/MM/YYYY``; ``period_end`` is the last day billed (inclusive). A CSV may use ``;``
as its separator, and then a decimal comma (``1234,5``).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from telemetry.errors import TelemetryError

REQUIRED: Final = ("meter_id", "period_start", "period_end", "billed_kwh", "amount_dh", "estimated")
OPTIONAL: Final = (
    "index_start",
    "index_end",
    "reactive_kvarh",
    "fixed_charges_dh",
    "vat_dh",
    "bill_number",
)
COLUMNS: Final = REQUIRED + OPTIONAL
#: Bills longer than this are not one billing period (the longest usual one is two months).
MAX_PERIOD_DAYS: Final = 93
_SHOWN: Final = 30
_METER: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")
_TRUE: Final = frozenset({"true", "1", "yes", "y", "oui", "e", "estimated", "estimé", "estime"})
_FALSE: Final = frozenset({"false", "0", "no", "n", "non", "r", "read", "relevé", "releve", ""})


class BillImportError(TelemetryError):
    """A bill file is malformed; nothing of it was imported."""

    def __init__(self, problems: Sequence[str]) -> None:
        shown = list(problems[:_SHOWN])
        more = len(problems) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        super().__init__(f"bill file refused, nothing imported: {text}")
        self.problems = list(problems)


@dataclass(frozen=True, kw_only=True)
class Bill:
    """One bill of one meter for one billing period."""

    meter_id: str
    period_start: date
    period_end: date  # last day billed, inclusive
    billed_kwh: float
    amount_dh: float  # VAT included
    estimated: bool  # an estimate, not a reading of the meter
    index_start: float | None = None
    index_end: float | None = None
    reactive_kvarh: float | None = None
    fixed_charges_dh: float | None = None
    vat_dh: float | None = None
    bill_number: str | None = None

    @property
    def days(self) -> int:
        """Days billed."""
        return (self.period_end - self.period_start).days + 1


def _date(text: str) -> date:
    text = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return date.fromisoformat(text)
    if re.fullmatch(r"\d{2}/\d{2}/\d{4}", text):
        return datetime.strptime(text, "%d/%m/%Y").date()
    raise ValueError("expected a date as YYYY-MM-DD or DD/MM/YYYY")


def _number(value: Any, comma: bool) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().replace("\u202f", "").replace("\xa0", "").replace(" ", "")
        if comma:
            text = text.replace(".", "").replace(",", ".") if "," in text else text
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", text):
            raise ValueError("expected a number")
        number = float(text)
    else:
        raise ValueError("expected a number")
    if not math.isfinite(number) or not 0 <= number < 1e12:
        raise ValueError("expected a finite number >= 0")
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError("expected true/false (also yes/no, oui/non, 1/0, E/R)")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _bill(record: Mapping[str, Any], where: str, comma: bool) -> tuple[Bill | None, list[str]]:
    problems: list[str] = []
    values: dict[str, Any] = {}
    for column in COLUMNS:
        raw = record.get(column)
        if _blank(raw):
            if column in REQUIRED and column != "estimated":
                problems.append(f"{where}: {column} is missing")
            values[column] = False if column == "estimated" else None
            continue
        try:
            if column == "meter_id":
                text = str(raw).strip()
                if not _METER.match(text):
                    raise ValueError("expected 1 to 64 letters, digits and _ . / -")
                values[column] = text
            elif column == "bill_number":
                text = str(raw).strip()
                if len(text) > 64:
                    raise ValueError("longer than 64 characters")
                values[column] = text
            elif column in ("period_start", "period_end"):
                if not isinstance(raw, str):
                    raise ValueError("expected a date as YYYY-MM-DD or DD/MM/YYYY")
                values[column] = _date(raw)
            elif column == "estimated":
                values[column] = _bool(raw)
            else:
                values[column] = _number(raw, comma)
        except ValueError as exc:
            problems.append(f"{where}: {column} {raw!r}: {exc}")
    if problems:
        return None, problems
    bill = Bill(**values)
    if bill.period_end < bill.period_start:
        problems.append(f"{where}: period_end {bill.period_end} is before {bill.period_start}")
    elif bill.days > MAX_PERIOD_DAYS:
        problems.append(f"{where}: a {bill.days}-day period is not one bill (at most 93 days)")
    if (bill.index_start is None) != (bill.index_end is None):
        problems.append(f"{where}: give index_start and index_end together")
    elif (
        bill.index_start is not None
        and bill.index_end is not None
        and bill.index_end < bill.index_start
    ):
        problems.append(f"{where}: index_end {bill.index_end:g} is below index_start")
    if bill.vat_dh is not None and bill.vat_dh > bill.amount_dh:
        problems.append(f"{where}: vat_dh is more than amount_dh")
    return (None, problems) if problems else (bill, [])


def _overlaps(bills: Iterable[tuple[str, Bill]]) -> list[str]:
    problems: list[str] = []
    by_meter: dict[str, list[tuple[str, Bill]]] = {}
    for where, bill in bills:
        by_meter.setdefault(bill.meter_id, []).append((where, bill))
    for meter, items in by_meter.items():
        items.sort(key=lambda x: (x[1].period_start, x[1].period_end))
        for (w1, b1), (w2, b2) in itertools.pairwise(items):
            if b2.period_start <= b1.period_end:
                same = (b1.period_start, b1.period_end) == (b2.period_start, b2.period_end)
                what = "bills the same period as" if same else "overlaps"
                problems.append(
                    f"{w2}: meter {meter} {b2.period_start}..{b2.period_end} {what} "
                    f"{w1} ({b1.period_start}..{b1.period_end})"
                )
    return problems


@dataclass(frozen=True, kw_only=True)
class BillFile:
    """A parsed bill file: its bills and where each came from (``line 7``, ``bill 3``)."""

    bills: list[Bill]
    places: list[str]


def _finish(parsed: list[tuple[str, Bill]], problems: list[str]) -> BillFile:
    problems = problems + _overlaps(parsed)
    if problems:
        raise BillImportError(problems)
    if not parsed:
        raise BillImportError(["the file holds no bill"])
    return BillFile(bills=[b for _, b in parsed], places=[w for w, _ in parsed])


def parse_bills_csv(text: str) -> BillFile:
    """Every bill of a CSV file (header row naming the columns); all or nothing."""
    text = text.removeprefix("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    missing = [c for c in REQUIRED if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    head: list[str] = []
    if missing:
        head.append(f"line 1: missing column(s) {', '.join(missing)}")
    if unknown:
        head.append(f"line 1: unknown column(s) {', '.join(unknown)}")
    if len(set(header)) != len(header):
        head.append("line 1: a column is named twice")
    if head:
        raise BillImportError(head)
    parsed: list[tuple[str, Bill]] = []
    problems: list[str] = []
    try:
        for row in reader:
            where = f"line {reader.line_num}"
            if None in row:
                problems.append(f"{where}: more fields than the header has")
                continue
            if all(_blank(v) for v in row.values()):
                continue
            bill, found = _bill(row, where, delimiter == ";")
            problems += found
            if bill is not None:
                parsed.append((where, bill))
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: {exc}")
    return _finish(parsed, problems)


def parse_bills_json(text: str) -> BillFile:
    """Every bill of a JSON file: a list of objects, or ``{"bills": [...]}``; all or nothing."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BillImportError([f"line {exc.lineno}: not JSON: {exc.msg}"]) from None
    items = doc.get("bills") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise BillImportError(['expected a list of bills or {"bills": [...]}'])
    parsed: list[tuple[str, Bill]] = []
    problems: list[str] = []
    for k, item in enumerate(items):
        where = f"bill {k + 1}"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected an object")
            continue
        unknown = sorted(set(item) - set(COLUMNS))
        if unknown:
            problems.append(f"{where}: unknown field(s) {', '.join(unknown)}")
            continue
        if "estimated" not in item:
            problems.append(f"{where}: estimated is missing")
            continue
        bill, found = _bill(item, where, comma=False)
        problems += found
        if bill is not None:
            parsed.append((where, bill))
    return _finish(parsed, problems)


def parse_bills(text: str, name: str) -> BillFile:
    """Bills from a file named ``name``: JSON when it ends in .json or starts with [ or {."""
    if name.lower().endswith(".json") or text.lstrip().startswith(("[", "{")):
        return parse_bills_json(text)
    return parse_bills_csv(text)


def billing_month(bill: Bill) -> tuple[int, int]:
    """The calendar month (year, month) a bill is reconciled in: the one holding most of its
    days (ties go to the later month)."""
    counts: dict[tuple[int, int], int] = {}
    day = bill.period_start
    while day <= bill.period_end:
        key = (day.year, day.month)
        counts[key] = counts.get(key, 0) + 1
        day = date.fromordinal(day.toordinal() + 1)
    best = max(counts.values())
    return max(k for k, v in counts.items() if v == best)
