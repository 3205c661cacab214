"""The open-data feeds' pure logic: columns, CSV, request ranges, which days a pass refreshes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.open_data.feeds import BY_NAME, FEEDS, PERSONAL_COLUMNS, SETTLE
from api.open_data.schedule import days_to_refresh, last_complete_day, last_complete_night
from api.open_data.shaping import (
    FeedRequestError,
    add_months,
    csv_text,
    feed_range,
    month_end,
    shape_rows,
)
from telemetry.storage.open_data import RoundShift
from tests.support.open_data_city import D1, NOW, ROUNDS, TZ, D, local


def test_no_feed_has_a_personal_data_column() -> None:
    for feed in FEEDS:
        assert not set(feed.column_names) & PERSONAL_COLUMNS, feed.name
        assert len(set(feed.column_names)) == len(feed.columns), feed.name


def test_csv_quotes_and_empties() -> None:
    feed = BY_NAME["complaints-monthly"]
    rows = shape_rows(
        feed,
        [
            type(
                "R",
                (),
                {
                    "period": date(2025, 10, 1),
                    "service_code": "a,b",
                    "received": 1,
                    "closed": 0,
                    "median_hours": None,
                    "p90_hours": None,
                },
            )()
        ],
    )
    text = csv_text(feed, rows)
    assert text == (
        'month,service_code,received,closed,median_hours,p90_hours\r\n2025-10,"a,b",1,0,,\r\n'
    )


@given(
    first=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    days=st.integers(min_value=0, max_value=2000),
)
def test_day_ranges_are_refused_exactly_past_the_limit(first: date, days: int) -> None:
    feed = BY_NAME["energy-daily"]
    last = first + timedelta(days=days)
    if last >= date(2100, 1, 1):  # requests name days of 1970-2099 only
        with pytest.raises(FeedRequestError, match="between 1970 and 2099"):
            feed_range(
                feed, first.isoformat(), last.isoformat(), today=last, max_days=400, max_months=12
            )
        return
    if days + 1 > 400:
        with pytest.raises(FeedRequestError, match=r"^from: the range covers"):
            feed_range(
                feed, first.isoformat(), last.isoformat(), today=last, max_days=400, max_months=12
            )
        return
    span = feed_range(
        feed, first.isoformat(), last.isoformat(), today=last, max_days=400, max_months=12
    )
    assert span is not None
    assert (span.first, span.last, span.days) == (first, last, days + 1)


@given(
    first=st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    months=st.integers(min_value=0, max_value=200),
)
def test_month_ranges_cover_whole_months(first: date, months: int) -> None:
    feed = BY_NAME["energy-monthly"]
    last = add_months(first, months)
    args = (feed, first.strftime("%Y-%m"), last.isoformat())
    if last >= date(2100, 1, 1):  # requests name days of 1970-2099 only
        with pytest.raises(FeedRequestError, match="between 1970 and 2099"):
            feed_range(*args, today=last, max_days=1, max_months=120)
        return
    if months + 1 > 120:
        with pytest.raises(FeedRequestError, match="months"):
            feed_range(*args, today=last, max_days=1, max_months=120)
        return
    span = feed_range(*args, today=last, max_days=1, max_months=120)
    assert span is not None
    assert span.first == first.replace(day=1) and span.last == month_end(last)


@pytest.mark.parametrize(
    ("start", "end", "parameter"),
    [
        ("2025-10-05", "2025-10-01", "from"),
        ("2025-13-01", None, "from"),
        ("yesterday", None, "from"),
        (None, "2025-10", "to"),  # a month is not a day
    ],
)
def test_bad_ranges_say_which_parameter(start: str | None, end: str | None, parameter: str) -> None:
    with pytest.raises(FeedRequestError, match=rf"^{parameter}: "):
        feed_range(BY_NAME["bus-service-daily"], start, end, today=D, max_days=100, max_months=10)


def test_a_snapshot_takes_no_range() -> None:
    with pytest.raises(FeedRequestError, match="snapshot"):
        feed_range(BY_NAME["lights-status"], "2025-10-01", None, today=D, max_days=1, max_months=1)


def test_which_days_a_pass_refreshes() -> None:
    wm = date(2025, 10, 10)
    assert days_to_refresh(None, None, date(2025, 10, 9), 8) == []
    assert days_to_refresh(None, date(2025, 10, 8), date(2025, 10, 9), 8) == [
        date(2025, 10, 8),
        date(2025, 10, 9),
    ]
    assert days_to_refresh(wm, date(2025, 1, 1), date(2025, 10, 9), 8) == []  # up to date
    new_day = days_to_refresh(wm, date(2025, 1, 1), date(2025, 10, 10), 2)
    assert new_day == [date(2025, 10, 8), date(2025, 10, 9), date(2025, 10, 10)]
    # The recheck does not reach before the data.
    assert days_to_refresh(wm, date(2025, 10, 9), date(2025, 10, 10), 8)[0] == date(2025, 10, 9)


def test_complete_days_and_nights() -> None:
    assert last_complete_day(NOW, TZ, SETTLE) == D1
    midnight = datetime.combine(D1, time(0, 10), TZ)
    assert last_complete_day(midnight, TZ, SETTLE) == D - timedelta(days=1)
    shifts = [RoundShift(r.shift_start, r.shift_end, r.timezone) for r in ROUNDS]
    assert last_complete_night(NOW, shifts, SETTLE) == D1
    # 03:00 on D+2: T-1's shift of night D+1 runs until 04:00.
    assert last_complete_night(local(D + timedelta(days=2), 3), shifts, SETTLE) == D
    assert last_complete_night(NOW, [], SETTLE) is None
