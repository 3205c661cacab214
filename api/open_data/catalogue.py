"""What the open data says about itself (pure): the OpenAPI description of each feed's route
and the catalogue document (``/open-data/v1/catalog.json``)."""

from __future__ import annotations

from typing import Any, Final

from api.config import ApiSettings
from api.open_data.feeds import FEEDS, Column, Feed
from telemetry.i18n import Locale
from telemetry.i18n.catalogues import contextual, pgettext

PREFIX: Final = "/open-data/v1"
# Units written as symbols in every language; the others (lights, rounds...) are counts the
# column's label already names.
_SYMBOLS: Final = frozenset({"kWh", "h", "km", "kg", "DH"})
GTFS_RT_PATH: Final = "/gtfs-rt/vehicle-positions.pb"

FILTER_DOCS: Final = {
    "district": "districts (comma-separated or repeated)",
    "operator": "collection operators (comma-separated or repeated)",
    "service_code": "Open311 service codes (comma-separated or repeated)",
    "line": "bus lines (comma-separated or repeated)",
}


def title(feed: Feed, locale: Locale) -> str:
    """A feed's title in ``locale``."""
    return pgettext(locale, f"feed.{feed.name}.title", feed.title)


def titles(feed: Feed) -> dict[str, str]:
    """A feed's title in every locale, keyed by BCP 47 tag (a multilingual catalogue)."""
    return {locale.value: title(feed, locale) for locale in Locale}


def column_labels(feed: Feed, locale: Locale) -> list[str]:
    """A feed's CSV header as a person reads it: each column's label in ``locale``, with its
    unit when that is a symbol the label does not already show (``énergie (kWh)``)."""
    out = []
    for column in feed.columns:
        words = contextual(locale, f"transparency.column.{column.name}", column.name)
        unit = column.unit
        if unit in _SYMBOLS and f"({unit})" not in words and words != unit:
            words = f"{words} ({unit})"
        out.append(words)
    return out


def licence(api: ApiSettings) -> dict[str, str]:
    """The licence the feeds are published under (``RASD_API_OPENDATA_LICENCE[_URL]``)."""
    return {"name": api.opendata_licence, "url": api.opendata_licence_url}


def column_schema(column: Column) -> dict[str, Any]:
    """A column's JSON schema, with its description and unit."""
    kinds: dict[str, dict[str, Any]] = {
        "date": {"type": "string", "format": "date"},
        "month": {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
        "datetime": {"type": "string", "format": "date-time"},
        "string": {"type": "string", "nullable": True},
        "integer": {"type": "integer"},
        "number": {"type": "number", "nullable": True},
    }
    unit = f" ({column.unit})" if column.unit else ""
    return kinds[column.type] | {"description": column.description + unit}


def responses(feed: Feed) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI 200 answer of a feed's route: its rows as JSON or CSV."""
    row = {
        "type": "object",
        "properties": {c.name: column_schema(c) for c in feed.columns},
        "required": feed.column_names,
    }
    document = {
        "type": "object",
        "properties": {
            "feed": {"type": "string"},
            "title": {"type": "string"},
            "timezone": {"type": "string"},
            "from": {"type": "string", "format": "date", "nullable": True},
            "to": {"type": "string", "format": "date", "nullable": True},
            "generated_at": {"type": "string", "format": "date-time"},
            "data_until": {"type": "string", "nullable": True},
            "licence": {"type": "object"},
            "columns": {"type": "array", "items": {"type": "object"}},
            "rows": {"type": "array", "items": row},
        },
    }
    header = ",".join(feed.column_names)
    return {
        200: {
            "description": f"{feed.title}: the same rows as CSV (header: {header}) or JSON",
            "content": {
                "application/json": {"schema": document},
                "text/csv": {"schema": {"type": "string"}, "example": header + "\r\n"},
            },
        },
    }


def description(feed: Feed) -> str:
    """A feed's OpenAPI description: what it holds, its updates, filters and columns."""
    filters = ", ".join(f"`{f}`" for f in feed.filters)
    lines = [
        feed.description,
        "",
        f"Updated: {feed.update}. Source: {feed.source}.",
        f"Filters: {filters}." if filters else "",
        "Columns: "
        + "; ".join(f"`{c.name}` ({c.unit + ', ' if c.unit else ''}{c.type})" for c in feed.columns)
        + ".",
    ]
    return "\n".join(lines)


def catalogue_document(api: ApiSettings) -> dict[str, Any]:
    """Every feed with its columns, filters, update frequency and download links, and the
    GTFS-Realtime feed."""
    feeds = [
        {
            "name": f.name,
            "title": f.title,
            "titles": titles(f),
            "description": f.description,
            "period": f.period,
            "filters": list(f.filters),
            "update_frequency": f.update,
            "source": f.source,
            "columns": [
                {"name": c.name, "type": c.type, "unit": c.unit, "description": c.description}
                for c in f.columns
            ],
            "csv": f"{PREFIX}/{f.name}.csv",
            "json": f"{PREFIX}/{f.name}.json",
        }
        for f in FEEDS
    ]
    body = {
        "title": "Rasd open data",
        "titles": {
            locale.value: pgettext(locale, "feed.catalogue.title", "Rasd open data")
            for locale in Locale
        },
        "timezone": api.timezone,
        "licence": licence(api),
        "documentation": "docs/open_data.md",
        "transparency_page": "/transparency",
        "feeds": feeds,
        "realtime": [
            {
                "name": "gtfs-rt-vehicle-positions",
                "title": "Bus positions, live (GTFS-Realtime VehiclePositions, protobuf)",
                "titles": {
                    locale.value: pgettext(
                        locale,
                        "feed.gtfs-rt.title",
                        "Bus positions, live (GTFS-Realtime VehiclePositions, protobuf)",
                    )
                    for locale in Locale
                },
                "url": GTFS_RT_PATH,
            }
        ],
    }
    return body
