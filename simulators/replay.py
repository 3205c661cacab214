"""Replaying a recording: new topic prefix, timestamps moved to now, original or scaled timing.

By default every ``ts`` in every payload moves by one whole-second offset, so relative timing
survives and injected future or ancient timestamps stay future or ancient. At real time (or
slower) the first message maps to now; faster, the last one does, so that compressing the
recording never pushes honest timestamps into the future.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from simulators.record import Header, Recorded
from simulators.timestamps import shift_rfc3339

# A "ts" key can only follow "{" or "," outside a string: inside one its quotes are escaped.
_TS_RE = re.compile(rb'([{,]\s*"ts"\s*:\s*)("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)')


def shift_payload(payload: bytes, seconds: int) -> bytes:
    """Move every ``ts`` (RFC 3339 or integer epoch ms) by ``seconds``, keeping its form."""
    if seconds == 0 or b'"ts"' not in payload:
        return payload

    def move(match: re.Match[bytes]) -> bytes:
        """One ts value, moved."""
        value = match.group(2)
        if value.startswith(b'"'):
            moved = shift_rfc3339(value[1:-1].decode("utf-8", "replace"), seconds)
            return match.group(1) + (b'"' + moved.encode() + b'"' if moved else value)
        if value.lstrip(b"-").isdigit():
            return match.group(1) + str(int(value) + seconds * 1000).encode()
        return match.group(0)  # a float or exponent is invalid anyway: leave it be

    return _TS_RE.sub(move, payload)


def retopic(topic: str, old_prefix: str, new_prefix: str) -> str:
    """The same device topic under another prefix (unchanged if not under ``old_prefix``)."""
    if old_prefix != new_prefix and topic.startswith(old_prefix + "/"):
        return new_prefix + topic[len(old_prefix) :]
    return topic


@dataclass(frozen=True, slots=True)
class Replayed:
    """A message ready to send ``delay`` seconds after the replay starts."""

    delay: float
    topic: str
    payload: bytes
    defect: str | None
    rejects: int


def time_offset(
    header: Header, first_t: float, last_t: float, now: float, speed: float | None
) -> int:
    """Whole seconds to add to every ``ts``: first message -> now at real time or slower,
    last message -> now when faster (or as fast as possible)."""
    anchor = first_t if speed is not None and speed <= 1.0 else last_t
    return math.floor(now - (header.t0 + anchor))


def span(records: Iterable[Recorded]) -> tuple[float, float] | None:
    """The first and last ``t`` of a recording (one pass), or None when it is empty."""
    first = last = None
    for record in records:
        if first is None:
            first = record.t
        last = record.t
    return None if first is None or last is None else (first, last)


def replay_stream(
    header: Header,
    records: Iterable[Recorded],
    *,
    prefix: str,
    shift: int,
    first_t: float,
    speed: float | None,
) -> Iterator[Replayed]:
    """The recording's messages under ``prefix``, ``ts`` moved by ``shift`` s, with delays."""
    for record in records:
        delay = 0.0 if speed is None else max(0.0, record.t - first_t) / speed
        yield Replayed(
            delay,
            retopic(record.topic, header.prefix, prefix),
            shift_payload(record.payload, shift),
            record.defect,
            record.rejects,
        )
