"""Which locale a request gets (pure): ``?lang=`` over the cookie over ``Accept-Language``
over the audience's default; Accept-Language weights (RFC 9110 12.5.4: q=0 refuses); any
header, however malformed, gives one of the four locales. Number and date formats: CLDR
``ar-MA`` (Western digits, decimal comma), Africa/Casablanca time."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import example, given
from hypothesis import strategies as st

from telemetry.i18n import (
    Audience,
    Locale,
    accept_language,
    format_datetime,
    format_number,
    from_accept_language,
    match,
    negotiate,
)

SPOKEN = {"ar": Locale.AR, "fr": Locale.FR, "zgh": Locale.ZGH, "en": Locale.EN}
tags = st.sampled_from(
    ["ar", "ar-MA", "ar-EG", "fr", "fr-FR", "fr-MA", "zgh", "zgh-Tfng", "en", "en-GB", "de",
     "es-ES", "tzm-Tfng", "ber", "ja", "*", "x-klingon"]
)  # fmt: skip
weights = st.sampled_from([None, 0.0, 0.1, 0.5, 0.8, 1.0])


def _header(ranges: list[tuple[str, float | None]]) -> str:
    return ", ".join(t if q is None else f"{t};q={q:g}" for t, q in ranges)


def _expected(ranges: list[tuple[str, float | None]]) -> Locale | None:
    """The model: the spoken locale of the heaviest range (first wins a tie), skipping
    locales that some range refuses with q=0."""
    refused = {match(t) for t, q in ranges if q == 0.0} - {None}
    ordered = sorted(
        enumerate(ranges), key=lambda p: (-(1.0 if p[1][1] is None else p[1][1]), p[0])
    )
    for _, (tag, q) in ordered:
        locale = match(tag)
        if q != 0.0 and locale is not None and locale not in refused:
            return locale
    return None


@given(st.lists(st.tuples(tags, weights), max_size=8))
@example([("fr-FR", 0.5), ("ar-MA", 0.9)])
@example([("ar", 0.0), ("ar-MA", 1.0), ("en", 0.3)])
def test_accept_language_picks_the_heaviest_spoken_range(
    ranges: list[tuple[str, float | None]],
) -> None:
    assert from_accept_language(_header(ranges)) == _expected(ranges)


@given(st.text(max_size=300))
@example("fr;q=abc, ar;q=2, en;q=-1,,,;;;")
@example("ar" + ",x" * 5000)
def test_any_header_gives_one_of_the_four_locales(header: str) -> None:
    for audience in Audience:
        assert negotiate(accept=header, audience=audience) in set(Locale)
    assert all(0.0 <= q <= 1.0 for _, q in accept_language(header))


@given(
    st.one_of(st.none(), tags),
    st.one_of(st.none(), tags),
    st.one_of(st.none(), st.lists(st.tuples(tags, weights), max_size=4).map(_header)),
    st.sampled_from(list(Audience)),
)
def test_lang_then_cookie_then_accept_language_then_default(
    asked: str | None, cookie: str | None, accept: str | None, audience: Audience
) -> None:
    got = negotiate(asked=asked, remembered=cookie, accept=accept, audience=audience)
    if match(asked):
        assert got == match(asked)
    elif match(cookie):
        assert got == match(cookie)
    elif from_accept_language(accept):
        assert got == from_accept_language(accept)
    else:
        assert got == {
            Audience.OPERATOR: Locale.FR, Audience.PUBLIC: Locale.AR, Audience.GEOREPORT: Locale.EN
        }[audience]  # fmt: skip


def test_defaults_and_tags() -> None:
    assert negotiate(audience=Audience.OPERATOR) is Locale.FR
    assert negotiate(audience=Audience.PUBLIC) is Locale.AR
    assert negotiate(audience=Audience.GEOREPORT) is Locale.EN
    assert negotiate(asked="zgh", accept="ar") is Locale.ZGH
    assert negotiate(asked="klingon", remembered="en", accept="ar") is Locale.EN
    assert [match(t) for t in ("AR_ma", "fr-CA", "zgh-Tfng-MA", "shi-Tfng", "de")] == [
        Locale.AR, Locale.FR, Locale.ZGH, Locale.ZGH, None,
    ]  # fmt: skip
    assert Locale.AR.direction == "rtl" and Locale.ZGH.direction == "ltr"


def test_numbers_and_dates_as_marrakech_writes_them() -> None:
    # CLDR ar-MA: Latin digits, "." grouping and "," decimal (not the Arabic-Indic ٫).
    assert format_number(1234.5, Locale.AR) == "1.234,5"
    assert format_number(1234.5, Locale.FR).replace("\u202f", " ") == "1 234,5"
    assert format_number(1234.5, Locale.EN) == "1,234.5"
    # 2026-07-01 12:00 UTC is 13:00 in Marrakech (UTC+1 outside Ramadan).
    noon = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert "13:00" in format_datetime(noon, Locale.FR)
    assert "13:00" in format_datetime(noon, Locale.AR)
    assert not any("\u0660" <= c <= "\u0669" for c in format_datetime(noon, Locale.AR))
