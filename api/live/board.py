"""The coalescing position board: newest fix per vehicle, each change numbered (pure).

Every WebSocket client holds only a cursor (the last change number it was sent). Its pending
"queue" is the set of vehicles changed since that cursor, which the board yields on demand:
at most one entry per vehicle, always the newest. A client that falls behind therefore gets
one coalesced frame when it catches up, and costs the others nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class VehiclePosition:
    """One vehicle's fix as sent to clients."""

    device_id: str
    fleet: str
    route: str | None
    district: str | None
    label: str | None
    time: datetime
    lat: float
    lon: float
    speed_kmh: float | None
    heading_deg: float | None

    def as_frame_item(self) -> dict[str, Any]:
        """The JSON object of this vehicle in a frame (docs/api.md, WebSocket frames)."""
        return {
            "id": self.device_id,
            "fleet": self.fleet,
            "route": self.route,
            "district": self.district,
            "label": self.label,
            "ts": iso_ms(self.time),
            "lat": round(self.lat, 6),
            "lon": round(self.lon, 6),
            "speed_kmh": None if self.speed_kmh is None else round(self.speed_kmh, 1),
            "heading_deg": None if self.heading_deg is None else round(self.heading_deg, 1),
        }


def iso_ms(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and a Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Change:
    """A board entry: the newest fix, the one before it, and its change number."""

    seq: int
    position: VehiclePosition
    previous: VehiclePosition | None


class PositionBoard:
    """Newest position per vehicle in change order; bounded by ``max_vehicles``."""

    def __init__(self, max_vehicles: int) -> None:
        self.max_vehicles = max_vehicles
        self.seq = 0
        self.evicted = 0
        # Insertion order is change order: an updated vehicle is moved to the end.
        self._entries: dict[str, Change] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, position: VehiclePosition) -> bool:
        """Record a fix; False (and no change) when it is not newer than the one held."""
        entries = self._entries
        held = entries.get(position.device_id)
        if held is not None:
            if held.position.time >= position.time:
                return False  # a late or repeated fix: the client already has a newer one
            del entries[position.device_id]  # re-inserted below, at the end: newest change
        self.seq += 1
        entries[position.device_id] = Change(
            self.seq, position, held.position if held is not None else None
        )
        if len(entries) > self.max_vehicles:
            # The vehicle unheard of for longest goes; clients lose nothing they can use.
            del entries[next(iter(entries))]
            self.evicted += 1
        return True

    def changes_since(self, cursor: int) -> Iterator[Change]:
        """Entries changed after ``cursor``, oldest change first."""
        newer: list[Change] = []
        for change in reversed(self._entries.values()):
            if change.seq <= cursor:
                break
            newer.append(change)
        return reversed(newer)

    def positions(
        self, keep: Callable[[VehiclePosition], bool] | None = None
    ) -> list[VehiclePosition]:
        """Every held position (optionally filtered), in change order."""
        return [c.position for c in self._entries.values() if keep is None or keep(c.position)]

    def get(self, device_id: str) -> VehiclePosition | None:
        """The held position of one vehicle."""
        change = self._entries.get(device_id)
        return change.position if change is not None else None
