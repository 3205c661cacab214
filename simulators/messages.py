"""What the simulators emit: a message with its send time, and the JSON payload builders."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

_POSITION: Final = '{"ts":%s,"lat":%.6f,"lon":%.6f,"speed_kmh":%.1f%s,"accuracy_m":%.1f%s,"seq":%d}'


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT publish: ``at`` is the simulated send time (UTC epoch s), not a payload field.

    ``defect`` names what was deliberately injected (comma-separated, sorted), ``rejects``
    how many of its records the ingestor must dead-letter.
    """

    at: float
    topic: str
    payload: bytes
    device_id: str
    defect: str | None = None
    rejects: int = 0


def defect_label(labels: tuple[str, ...] | list[str]) -> str | None:
    """The canonical ``defect`` text for a set of labels."""
    return ",".join(sorted(set(labels))) if labels else None


def position_json(
    ts: str,
    lat: float,
    lon: float,
    speed_kmh: float,
    heading_deg: float | None,
    accuracy_m: float,
    route_json: str | None,
    seq: int,
) -> str:
    """A ``PositionReport`` object; ``ts`` and ``route_json`` are already JSON literals."""
    heading = ""
    if heading_deg is not None:
        rounded = round(heading_deg, 1)
        heading = ',"heading_deg":%.1f' % (0.0 if rounded >= 360.0 else rounded)
    route = f',"route":{route_json}' if route_json is not None else ""
    return _POSITION % (ts, lat, lon, speed_kmh, heading, accuracy_m, route, seq)


def compact_json(value: Any) -> str:
    """JSON without spaces, as devices send it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
