"""The telemetry facts the complaint linking rules read (pure value types, shared by the storage
module that reads them and the rules in telemetry/complaints/matching.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time


@dataclass(frozen=True, slots=True)
class Reading:
    """One energy report of a light."""

    time: datetime
    lamp_on: bool | None
    power_w: float | None
    dim_pct: float | None = None

    def lit(self, min_w: float) -> bool:
        """Lamp on by its flag, else by its power."""
        if self.lamp_on is not None:
            return self.lamp_on
        return self.power_w is not None and self.power_w > min_w


@dataclass(frozen=True, slots=True)
class AlertRef:
    """An unresolved alert concerning a light: its own, or a group listing it."""

    alert_id: int
    kind: str
    device_id: str | None
    grouped: bool  # a circuit or district outage listing the light


@dataclass(frozen=True, slots=True)
class Fix:
    """A stored vehicle position."""

    device_id: str
    time: datetime
    lat: float
    lon: float
    speed_kmh: float | None
    route: str | None = None


@dataclass(frozen=True, slots=True)
class Headway:
    """A line's scheduled headway over a band of local time."""

    route: str
    start_local: time
    end_local: time
    headway_s: int
    timezone: str
