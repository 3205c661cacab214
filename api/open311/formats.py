"""The two renderings of every Open311 answer (pure): JSON, and the spec's XML built with
ElementTree from the very same records, so both formats always carry the same fields."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any, Final, Literal

from fastapi.responses import JSONResponse
from starlette.responses import Response

Format = Literal["json", "xml"]
FORMATS: Final[tuple[Format, ...]] = ("json", "xml")
Root = Literal["services", "service_definition", "service_requests", "errors"]

# The spec's element for each item of a list: <services><service/>..., <errors><error/>...
ITEMS: Final[Mapping[str, str]] = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
}
_ERRORS: Final[Mapping[int, str]] = {
    400: "Invalid request",
    403: "Missing or invalid api_key, or a token that may not post",
    404: "Unknown service_code, service_request_id, jurisdiction_id or resource",
    429: "Too many requests (Retry-After)",
    503: "Database unavailable (Retry-After)",
}
_ERROR_LIST: Final[Mapping[str, Any]] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
    },
}
# Characters XML 1.0 cannot carry at all (ElementTree would write them and break the document).
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class XMLResponse(Response):
    """``text/xml; charset=utf-8``, the media type of the spec's examples."""

    media_type = "text/xml"


def format_of(path: str) -> Format:
    """The format a resource asks for by its extension (JSON unless ``.xml``)."""
    return "xml" if path.endswith(".xml") else "json"


def documented_errors(fmt: Format) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of the error answers, in ``fmt``."""
    media, schema = (
        ("text/xml", {"type": "string"}) if fmt == "xml" else ("application/json", _ERROR_LIST)
    )
    return {
        status: {"description": text, "content": {media: {"schema": schema}}}
        for status, text in _ERRORS.items()
    }


def _text(value: Any) -> str | None:
    if value is None:
        return None  # an empty element, the spec's null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)  # the same digits JSON writes
    if isinstance(value, str):
        return _NOT_XML.sub("\ufffd", value)
    raise TypeError(f"no XML form for {type(value).__name__}")


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _fill(ET.SubElement(element, key), item)
    elif isinstance(value, list):
        for item in value:
            _fill(ET.SubElement(element, ITEMS[element.tag]), item)
    else:
        element.text = _text(value)


def to_xml(root: Root, body: Any) -> bytes:
    """``body`` (a JSON answer) as the spec's XML document under ``root``."""
    element: ET.Element = ET.Element(root)
    _fill(element, body)
    document: bytes = ET.tostring(element, encoding="utf-8", xml_declaration=True)
    # ElementTree writes a carriage return raw, which every parser reads as a newline: a
    # character reference keeps "\r\n" in a description as JSON does. A raw CR byte can only
    # be in text here (no attributes, no indentation), so the swap cannot touch markup.
    return document.replace(b"\r", b"&#13;")


def answer(
    fmt: Format,
    root: Root,
    body: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """``body`` rendered in ``fmt``: JSON as it is, XML under ``root``."""
    if fmt == "xml":
        return XMLResponse(to_xml(root, body), status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)
