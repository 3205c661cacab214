"""Photos a crew attaches when completing an order: JPEG, PNG or WebP, told by their first bytes
(never by a name or a declared type), within a size limit (pure)."""

from __future__ import annotations

from typing import Final

from telemetry.errors import TelemetryError

#: Largest photo stored with an order: a phone's JPEG at a reasonable quality is 1-3 MB.
MAX_PHOTO_BYTES: Final = 4 * 1024 * 1024
#: Photos per completion.
MAX_PHOTOS: Final = 4


class PhotoError(TelemetryError):
    """A photo is too large, empty or not a JPEG, PNG or WebP image."""


def photo_type(data: bytes) -> str | None:
    """The media type the magic bytes say (JPEG, PNG, WebP), or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def checked_photo(data: bytes, *, limit: int = MAX_PHOTO_BYTES) -> str:
    """The photo's media type; PhotoError when it is empty, too large or of another type."""
    if not data:
        raise PhotoError("photo is empty")
    if len(data) > limit:
        raise PhotoError(f"photo of {len(data)} bytes exceeds the {limit}-byte limit")
    kind = photo_type(data)
    if kind is None:
        raise PhotoError("photo is not a JPEG, PNG or WebP image")
    return kind
