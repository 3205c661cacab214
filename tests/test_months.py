"""The one ``YYYY-MM`` parser every month-taking command, report and route shares."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telemetry.months import EARLIEST_YEAR, LATEST_YEAR, next_month, parse_month


@given(st.integers(EARLIEST_YEAR, LATEST_YEAR), st.integers(1, 12))
def test_every_month_in_range_parses_to_its_first_day(year: int, month: int) -> None:
    first = parse_month(f"{year:04d}-{month:02d}")
    assert first == date(year, month, 1)
    after = next_month(first)
    assert after.day == 1 and after > first and (after - first).days in (28, 29, 30, 31)


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-00", "2026-1", "26-01", "2026/01", " 2026-01", ""]
)
def test_malformed_months_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM"):
        parse_month(text)


@pytest.mark.parametrize("text", ["0000-06", "1899-12", "3000-01", "9999-12"])
def test_months_out_of_range_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_month(text)
