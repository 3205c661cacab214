"""Rasd's locales (pure): which one a request gets, and how numbers and dates read in it.

The choice follows ``?lang=``, then the remembered choice (a cookie), then ``Accept-Language``,
then the audience's default: French for operators and the API, Arabic for the public pages,
English for Open311 clients that ask for nothing (GeoReport's interoperable default).
Formatting is CLDR's through Babel: ``ar-MA`` writes Western digits with a decimal comma, and
every date and time is Africa/Casablanca's.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

import babel
import babel.dates
import babel.numbers


class Locale(StrEnum):
    """The locales Rasd speaks (BCP 47 tags, as pages and headers use them)."""

    AR = "ar-MA"
    FR = "fr-MA"
    ZGH = "zgh"
    EN = "en"

    @property
    def babel_id(self) -> str:
        """Babel's and gettext's spelling (``ar_MA``)."""
        return self.value.replace("-", "_")

    @property
    def rtl(self) -> bool:
        """Whether the locale's script reads right to left."""
        return self is Locale.AR

    @property
    def direction(self) -> str:
        """The ``dir`` attribute of a page in this locale."""
        return "rtl" if self.rtl else "ltr"

    @property
    def endonym(self) -> str:
        """The locale's name in itself, for a language switcher."""
        return ENDONYMS[self]


class Audience(StrEnum):
    """Who a page or answer is for; it picks the default locale."""

    OPERATOR = "operator"
    PUBLIC = "public"
    #: Third-party GeoReport (Open311) clients: the standard's own language unless they ask.
    GEOREPORT = "georeport"


ENDONYMS: Final[dict[Locale, str]] = {
    Locale.AR: "العربية",
    Locale.FR: "Français",
    Locale.ZGH: "ⵜⴰⵎⴰⵣⵉⵖⵜ",
    Locale.EN: "English",
}
DEFAULTS: Final[dict[Audience, Locale]] = {
    Audience.OPERATOR: Locale.FR,
    Audience.PUBLIC: Locale.AR,
    Audience.GEOREPORT: Locale.EN,
}
TIMEZONE: Final = ZoneInfo("Africa/Casablanca")
COOKIE: Final = "rasd_lang"

# Amazigh tags a browser may send for Tifinagh text: Standard Moroccan Tamazight itself, the
# generic Berber collective, and the regional languages when written in Tifinagh.
_AMAZIGH: Final = frozenset({"zgh", "ber", "tzm-tfng", "shi-tfng", "rif-tfng"})
_TAG: Final = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$")
_MAX_HEADER: Final = 4096
_MAX_RANGES: Final = 32


def match(tag: str | None) -> Locale | None:
    """The locale a language tag asks for (``ar``, ``ar-EG``, ``fr-FR``, ``zgh-Tfng``, ``en-GB``
    ...), or None when Rasd does not speak it."""
    if not tag:
        return None
    tag = tag.strip().replace("_", "-").lower()
    if not _TAG.match(tag):
        return None
    parts = tag.split("-")
    primary = parts[0]
    if primary == "ar":
        return Locale.AR
    if primary == "fr":
        return Locale.FR
    if primary == "en":
        return Locale.EN
    if primary in _AMAZIGH or (len(parts) > 1 and f"{primary}-{parts[1]}" in _AMAZIGH):
        return Locale.ZGH
    return None


def accept_language(header: str | None) -> list[tuple[str, float]]:
    """The language ranges of an ``Accept-Language`` header, best first (RFC 9110 12.5.4);
    malformed ranges and weights are dropped, ``q=0`` means "not this one"."""
    if not header:
        return []
    ranges: list[tuple[int, str, float]] = []
    for position, item in enumerate(header[:_MAX_HEADER].split(",")[:_MAX_RANGES]):
        name, _, params = item.strip().partition(";")
        name = name.strip()
        if not name or (name != "*" and not _TAG.match(name)):
            continue
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value.strip())
                except ValueError:
                    weight = -1.0
                break
        if not 0.0 <= weight <= 1.0:
            continue
        ranges.append((position, name, weight))
    ranges.sort(key=lambda r: (-r[2], r[0]))
    return [(name, weight) for _, name, weight in ranges]


def from_accept_language(header: str | None) -> Locale | None:
    """The best locale a header accepts, or None (nothing it accepts is spoken here); a
    locale any range refuses (``q=0``) is never chosen."""
    ranges = accept_language(header)
    refused = {match(name) for name, weight in ranges if weight == 0.0}
    for name, weight in ranges:
        locale = match(name)
        if weight > 0.0 and locale is not None and locale not in refused:
            return locale
    return None


def negotiate(
    *,
    asked: str | None = None,
    remembered: str | None = None,
    accept: str | None = None,
    audience: Audience = Audience.OPERATOR,
) -> Locale:
    """The locale of one request: what it asks for (``?lang=``), else the remembered choice
    (cookie), else the best of ``Accept-Language``, else the audience's default."""
    return match(asked) or match(remembered) or from_accept_language(accept) or DEFAULTS[audience]


def format_number(value: float, locale: Locale, *, digits: int = 2) -> str:
    """A number as the locale writes it (CLDR; ``ar-MA``: ``1.234,5``), at most ``digits``
    decimals."""
    pattern = "#,##0" + ("." + "#" * digits if digits > 0 else "")
    return babel.numbers.format_decimal(value, format=pattern, locale=locale.babel_id)


def format_datetime(moment: datetime, locale: Locale, *, form: str = "medium") -> str:
    """A moment as a date and time of Marrakech (Africa/Casablanca), in the locale's words."""
    return babel.dates.format_datetime(moment, format=form, tzinfo=TIMEZONE, locale=locale.babel_id)


def format_date(day: date, locale: Locale, *, form: str = "medium") -> str:
    """A calendar day in the locale's words."""
    return babel.dates.format_date(day, format=form, locale=locale.babel_id)


def cldr_locale(locale: Locale) -> babel.Locale:
    """Babel's CLDR data for a locale (plural rules, names, direction)."""
    return babel.Locale.parse(locale.babel_id)
