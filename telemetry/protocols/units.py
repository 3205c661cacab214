"""Units and value checks shared by the HTTP/JSON tracker parsers: speeds to km/h, times to
epoch milliseconds, and the ranges contract v1 positions allow."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

KMH_PER_KNOT: Final = 1.852
KMH_PER_MPS: Final = 3.6
MAX_EPOCH_MS: Final = 253402300799999  # 9999-12-31T23:59:59.999Z, as the contract's ts
MAX_ISO_CHARS: Final = 64

# A plain decimal number as text; Java's Double.parseDouble takes more (hex, "NaN", a "d"
# suffix) but no tracker sends those, and a stricter reading keeps garbage out.
_DECIMAL: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INTEGER: Final = re.compile(r"[+-]?\d{1,19}", re.ASCII)


class BadValue(ValueError):
    """A field a parser cannot use; its message names the field and says why."""


def decimal_text(text: str, name: str) -> float:
    """``text`` read as a finite decimal number (surrounding blanks allowed)."""
    stripped = text.strip()
    if len(stripped) > 64 or not _DECIMAL.fullmatch(stripped):
        raise BadValue(f"{name} {text[:40]!r} is not a decimal number")
    value = float(stripped)
    if not math.isfinite(value):
        raise BadValue(f"{name} {text[:40]!r} is out of range")
    return value


def integer_text(text: str) -> int | None:
    """``text`` read as a decimal integer of at most 19 digits, or None when it is not one."""
    stripped = text.strip()
    return int(stripped) if _INTEGER.fullmatch(stripped) else None


def json_number(obj: Mapping[str, Any], key: str, where: str = "") -> float | None:
    """``obj[key]`` as a finite float; None when absent or null. Booleans are not numbers."""
    value = obj.get(key)
    if value is None:
        return None
    name = f"{where}{key}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadValue(f"{name} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise BadValue(f"{name} is out of range") from None
    if not math.isfinite(number):
        raise BadValue(f"{name} is out of range")
    return number


def required_json_number(obj: Mapping[str, Any], key: str, where: str = "") -> float:
    """``obj[key]`` as a finite float; missing or null is refused."""
    value = json_number(obj, key, where)
    if value is None:
        raise BadValue(f"{where}{key} is missing")
    return value


def json_string(obj: Mapping[str, Any], key: str, where: str = "") -> str:
    """``obj[key]``, which must be a string."""
    value = obj.get(key)
    if value is None:
        raise BadValue(f"{where}{key} is missing")
    if not isinstance(value, str):
        raise BadValue(f"{where}{key} must be a string, not {type(value).__name__}")
    return value


def json_object(obj: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    """``obj[key]``, which must be a JSON object."""
    value = obj.get(key)
    if value is None:
        raise BadValue(f"{where}{key} is missing")
    if not isinstance(value, dict):
        raise BadValue(f"{where}{key} must be an object, not {type(value).__name__}")
    return value


def check_lat_lon(lat: float, lon: float, lat_name: str = "lat", lon_name: str = "lon") -> None:
    """Refuse a latitude outside [-90, 90] or a longitude outside [-180, 180]."""
    if not -90 <= lat <= 90:
        raise BadValue(f"{lat_name} {lat} is outside [-90, 90]")
    if not -180 <= lon <= 180:
        raise BadValue(f"{lon_name} {lon} is outside [-180, 180]")


def heading_deg(value: float | None, name: str) -> float | None:
    """A course in degrees as contract v1 wants it, in [0, 360): 360 is north again."""
    if value is None:
        return None
    if not 0 <= value <= 360:
        raise BadValue(f"{name} {value} is outside [0, 360]")
    return 0.0 if value == 360 else value


def non_negative(value: float | None, name: str) -> float | None:
    """Refuse a negative speed or accuracy."""
    if value is not None and value < 0:
        raise BadValue(f"{name} {value} is negative")
    return value


def epoch_ms_in_range(ms: int, name: str) -> int:
    """``ms`` when it is an instant contract v1 can carry (1970 to 9999)."""
    if not 0 <= ms <= MAX_EPOCH_MS:
        raise BadValue(f"{name} {ms} ms is outside 1970..9999")
    return ms


def iso_to_epoch_ms(text: str, name: str) -> int:
    """An ISO 8601 date-time with a UTC offset (``...Z``, ``+01:00``, ``+0100``) in epoch ms."""
    if len(text) > MAX_ISO_CHARS:
        raise BadValue(f"{name} is over {MAX_ISO_CHARS} characters")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadValue(f"{name} {text!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise BadValue(f"{name} {text!r} has no UTC offset")
    return epoch_ms_in_range(datetime_to_epoch_ms(parsed), name)


def naive_utc_to_epoch_ms(parsed: datetime, name: str) -> int:
    """A date-time without an offset, read as UTC, in epoch ms."""
    return epoch_ms_in_range(datetime_to_epoch_ms(parsed.replace(tzinfo=UTC)), name)


def datetime_to_epoch_ms(moment: datetime) -> int:
    """An aware datetime in epoch milliseconds, exactly (no float rounding)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


class Unreadable(ValueError):
    """A body that is not a JSON object; carries the refusal's reason code and detail."""

    def __init__(self, reason_code: str, detail: str) -> None:
        super().__init__(detail)
        self.reason_code = reason_code
        self.detail = detail


def json_object_body(body: bytes) -> dict[str, Any]:
    """``body`` read as a UTF-8 JSON object; NaN and Infinity are not JSON."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable("not_utf8", f"body is not UTF-8 (byte {exc.start})") from None
    try:
        document: Any = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise Unreadable("not_json", f"body is not JSON: {str(exc)[:120]}") from None
    if not isinstance(document, dict):
        raise Unreadable("not_object", f"body is a JSON {type(document).__name__}, not an object")
    return document
