"""What the HTTP/JSON tracker parsers (OsmAnd, OwnTracks, Traccar forwarding) take and give:
the request as the HTTP layer saw it, and the fixes of one device or a message without any."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from telemetry.protocols.reports import Position

MAX_IDENTITY_CHARS: Final = 128


@dataclass(kw_only=True, frozen=True, slots=True)
class HttpRequestView:
    """One HTTP request as the HTTP layer hands it over (header names in lower case)."""

    method: str  # "GET" / "POST"
    query: tuple[tuple[str, str], ...]  # decoded URL query pairs, in order
    headers: Mapping[str, str]
    body: bytes
    received_ms: int  # server clock, epoch ms

    @property
    def raw(self) -> bytes:
        """What a refusal keeps: the body, or for a bodiless request the query re-encoded."""
        return self.body or urllib.parse.urlencode(self.query).encode()


@dataclass(kw_only=True, frozen=True, slots=True)
class TrackerFix:
    """Fixes of one device, known by its registry ``external_id``."""

    identity: str
    positions: tuple[Position, ...]


@dataclass(kw_only=True, frozen=True, slots=True)
class NotStored:
    """A message that is answered but holds no fix (an OwnTracks transition, waypoint...)."""

    identity: str | None
    kind: str  # e.g. the OwnTracks ``_type``


def identity_problem(identity: str) -> str | None:
    """Why ``identity`` cannot be a registry ``external_id``, or None when it can."""
    if not identity:
        return "is empty"
    if len(identity) > MAX_IDENTITY_CHARS:
        return f"is over {MAX_IDENTITY_CHARS} characters"
    # Control characters (NUL above all) cannot be looked up or stored in PostgreSQL text.
    if not identity.isprintable():
        return "holds control characters"
    return None
