"""The locale of a request, as a FastAPI dependency: ``?lang=`` (Open311 clients also send
``locale=``), then the ``rasd_lang`` cookie the pages' language switcher sets, then
``Accept-Language``, then the audience's default (French for operators and the API, Arabic for
the public pages). The rules themselves are pure: ``telemetry.i18n.negotiate``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from starlette.requests import HTTPConnection

from telemetry.i18n import COOKIE, Audience, Locale, negotiate


def locale_of(conn: HTTPConnection, audience: Audience = Audience.OPERATOR) -> Locale:
    """The locale ``conn`` asks for (see the module's docstring)."""
    query = conn.query_params
    return negotiate(
        asked=query.get("lang") or query.get("locale"),
        remembered=conn.cookies.get(COOKIE),
        accept=conn.headers.get("accept-language"),
        audience=audience,
    )


def _operator_locale(
    conn: HTTPConnection,
    lang: Annotated[
        str | None, Query(description="ar, fr, zgh or en (else the cookie, Accept-Language)")
    ] = None,
) -> Locale:
    return locale_of(conn, Audience.OPERATOR)


def _public_locale(
    conn: HTTPConnection,
    lang: Annotated[
        str | None, Query(description="ar, fr, zgh or en (else the cookie, Accept-Language)")
    ] = None,
) -> Locale:
    return locale_of(conn, Audience.PUBLIC)


#: The locale of an operators' or API request (default French).
OperatorLocale = Annotated[Locale, Depends(_operator_locale)]
#: The locale of a public page's request (default Arabic).
PublicLocale = Annotated[Locale, Depends(_public_locale)]
