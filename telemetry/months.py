"""Months as people name them (``YYYY-MM``): one parser for every command, report and route
that takes a month, so that all of them accept and refuse the same texts."""

from __future__ import annotations

import re
from datetime import date
from typing import Final

_MONTH: Final = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
#: Years a month may name: wide enough for any record, narrow enough that the month after it
#: and its local-time bounds always exist.
EARLIEST_YEAR: Final = 1900
LATEST_YEAR: Final = 2999


def parse_month(text: str) -> date:
    """The first day of a ``YYYY-MM`` month; ValueError when malformed or out of range."""
    found = _MONTH.match(text)
    if found is None:
        raise ValueError(f"month {text!r}: expected YYYY-MM")
    year = int(found[1])
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise ValueError(f"month {text!r}: year out of range {EARLIEST_YEAR}-{LATEST_YEAR}")
    return date(year, int(found[2]), 1)


def next_month(first: date) -> date:
    """The first day of the month after the one starting on ``first``."""
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)
