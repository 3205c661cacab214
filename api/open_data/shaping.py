"""Feed requests and answers (pure): the from/to range of a request, and storage rows shaped
into CSV or JSON with the same columns and values."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from api.open_data.feeds import Column, Feed
from api.timerange import EARLIEST, LATEST

_DAY_RE: Final = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_MONTH_RE: Final = re.compile(r"^(\d{4})-(\d{2})$")
#: Default span of a request without ``from``: 31 days, or 12 months.
DEFAULT_DAYS: Final = 31
DEFAULT_MONTHS: Final = 12


class FeedRequestError(ValueError):
    """A feed request's parameter is malformed or out of range; the message says how."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


@dataclass(frozen=True, slots=True)
class DayRange:
    """Local days [first, last], both included (months: first day of the first month to last
    day of the last month)."""

    first: date
    last: date

    @property
    def days(self) -> int:
        """How many days it covers."""
        return (self.last - self.first).days + 1

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The UTC instants [start of ``first``, end of ``last``) in local time ``tz``."""
        start = datetime.combine(self.first, time(0), tz).astimezone(UTC)
        end = datetime.combine(self.last + timedelta(days=1), time(0), tz).astimezone(UTC)
        return start, end


def month_start(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    """The first day of the month ``months`` after ``day``'s (negative: before)."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_end(day: date) -> date:
    """The last day of ``day``'s month."""
    return add_months(day, 1) - timedelta(days=1)


def parse_day(parameter: str, text: str, *, months: bool) -> date:
    """``YYYY-MM-DD`` (and, when ``months``, ``YYYY-MM``, its first day)."""
    text = text.strip()
    match = _DAY_RE.match(text)
    expected = "YYYY-MM-DD or YYYY-MM" if months else "YYYY-MM-DD"
    day: date | None = None
    try:
        if match:
            day = date(int(match[1]), int(match[2]), int(match[3]))
        elif months and (match := _MONTH_RE.match(text)):
            day = date(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise FeedRequestError(parameter, f"{text!r} is not a valid date") from None
    if day is None:
        raise FeedRequestError(parameter, f"{text!r} is not a date; expected {expected}")
    if not EARLIEST.date() <= day < LATEST.date():
        raise FeedRequestError(
            parameter, f"{text!r} is not between {EARLIEST.year} and {LATEST.year - 1}"
        )
    return day


def months_between(first: date, last: date) -> int:
    """How many months [first's month, last's month] covers."""
    return (last.year - first.year) * 12 + last.month - first.month + 1


def feed_range(
    feed: Feed,
    start: str | None,
    end: str | None,
    *,
    today: date,
    max_days: int,
    max_months: int,
) -> DayRange | None:
    """The days a request covers (None for a feed of "now"); refuses an inverted or too long
    range. Defaults: the last 31 days or 12 months up to ``today``."""
    if feed.period == "now":
        if start is not None or end is not None:
            name = "from" if start is not None else "to"
            raise FeedRequestError(name, f"{feed.name} is a snapshot of now: it takes no range")
        return None
    months = feed.period == "month"
    last = parse_day("to", end, months=months) if end is not None else today
    if start is not None:
        first = parse_day("from", start, months=months)
    elif months:
        first = add_months(last, -(DEFAULT_MONTHS - 1))
    else:
        first = last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise FeedRequestError("from", f"from ({first}) is after to ({last})")
    if months:
        first, last = month_start(first), month_end(last)
        count = months_between(first, last)
        if count > max_months:
            raise FeedRequestError(
                "from", f"the range covers {count} months, more than the {max_months} allowed"
            )
    elif (last - first).days + 1 > max_days:
        raise FeedRequestError(
            "from",
            f"the range covers {(last - first).days + 1} days, more than the {max_days} allowed",
        )
    return DayRange(first, last)


def cell(column: Column, value: Any) -> Any:
    """A row value as the feed publishes it (JSON types; None stays None)."""
    if value is None or (value == "" and column.type == "string"):
        return None
    if column.type == "date":
        return value.isoformat() if isinstance(value, date) else str(value)
    if column.type == "month":
        return value.strftime("%Y-%m") if isinstance(value, date) else str(value)
    if column.type == "datetime":
        return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)
    if column.type == "integer":
        return int(value)
    if column.type == "number":
        number = float(value) * column.scale
        return round(number, column.digits) if column.digits is not None else number
    return str(value)


def shape_rows(feed: Feed, rows: Iterable[Any], **extra: Any) -> list[dict[str, Any]]:
    """Storage rows as ordered dicts of the feed's columns; ``extra`` supplies columns the rows
    lack (``as_of``)."""
    shaped = []
    for row in rows:
        shaped.append(
            {
                c.name: cell(c, extra[c.name] if c.name in extra else getattr(row, c.attribute))
                for c in feed.columns
            }
        )
    return shaped


def csv_text(
    feed: Feed, rows: Sequence[dict[str, Any]], header: Sequence[str] | None = None
) -> str:
    """RFC 4180 CSV with a header row (the column names, or ``header``: the same columns in
    words a person reads); empty fields for missing values."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(feed.column_names if header is None else header)
    for row in rows:
        writer.writerow(["" if row[name] is None else row[name] for name in feed.column_names])
    return out.getvalue()


def column_doc(column: Column) -> dict[str, Any]:
    """A column's description for the JSON answer and the catalogue."""
    return {
        "name": column.name,
        "type": column.type,
        "unit": column.unit,
        "description": column.description,
    }


def json_document(
    feed: Feed,
    rows: Sequence[dict[str, Any]],
    *,
    span: DayRange | None,
    timezone: str,
    generated_at: datetime,
    data_until: datetime | date | None,
    licence: dict[str, str],
) -> dict[str, Any]:
    """The JSON answer: the rows with what a reader needs to use them."""
    return {
        "feed": feed.name,
        "title": feed.title,
        "description": feed.description,
        "timezone": timezone,
        "from": span.first.isoformat() if span else None,
        "to": span.last.isoformat() if span else None,
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "data_until": data_until.isoformat() if data_until is not None else None,
        "update_frequency": feed.update,
        "source": feed.source,
        "licence": licence,
        "columns": [column_doc(c) for c in feed.columns],
        "rows": list(rows),
    }
