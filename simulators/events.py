"""Scripted scenario events: when they happen and what they do to which device."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final, Protocol

from simulators.clock import local_midnight, parse_duration, parse_start
from simulators.errors import ScenarioError
from simulators.messages import Message
from simulators.scenario import EventSpec
from telemetry.contract import FAULT_NAMES

_CLOCK_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
#: Friendly action names -> TALQ fault names for lights.
LIGHT_ALIASES: Final = {
    "supply_loss": "supplyLoss",
    "comm_loss": "communicationFailure",
    "day_burning": "lampUnexpectedOn",
}
#: Light actions that change the lamp without the controller noticing (no TALQ alarm).
SILENT_LIGHT_ACTIONS: Final = ("stuck_on",)
VEHICLE_ACTIONS: Final = ("gps_loss", "comm_loss", "idle", "detour", "speeding")
TRUCK_ACTIONS: Final = (*VEHICLE_ACTIONS, "skip_collection")


@dataclass(frozen=True, slots=True)
class ScriptedEvent:
    """A resolved event: absolute start and end (None: until the run ends)."""

    at: float
    end: float | None
    target: str
    action: str
    detail: str
    point: str | None = None  # skip_collection: a round point's seq or label


def resolve_at(text: str, start: float) -> float:
    """``+10m`` after start, ``HH:MM[:SS]`` the next such local time, or an ISO date-time."""
    text = text.strip()
    if text.startswith("+"):
        return start + parse_duration(text[1:])
    match = _CLOCK_RE.match(text)
    if match:
        hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
        if hours > 23 or minutes > 59 or seconds > 59:
            raise ScenarioError(f"event time {text!r} is not a clock time")
        of_day = hours * 3600 + minutes * 60 + seconds
        midnight = local_midnight(start)
        t = midnight + of_day
        if t < start:
            t = local_midnight(midnight + 86_400.0 + 7200.0) + of_day
        return t
    return parse_start(text)


def resolve(spec: EventSpec, start: float, kind: str) -> ScriptedEvent:
    """Check an event against its target kind (light, circuit, bus, truck) and time it."""
    action = spec.action
    if kind in ("bus", "truck"):
        allowed = TRUCK_ACTIONS if kind == "truck" else VEHICLE_ACTIONS
        if action not in allowed:
            raise ScenarioError(
                f"event on {spec.target}: a {kind} can have {', '.join(allowed)}, not {action!r}"
            )
        if action in ("idle", "speeding") and spec.duration is None:
            raise ScenarioError(f"event on {spec.target}: {action} needs a duration, e.g. 45m")
        if (spec.point is None) != (action != "skip_collection"):
            raise ScenarioError(
                f"event on {spec.target}: skip_collection names a round point (its seq or "
                "label), and only skip_collection does"
            )
    elif kind == "circuit":
        if LIGHT_ALIASES.get(action, action) != "supplyLoss":
            raise ScenarioError(f"event on circuit {spec.target}: only supply_loss, not {action!r}")
        action = "supplyLoss"
    else:
        action = LIGHT_ALIASES.get(action, action)
        if action not in FAULT_NAMES and action not in SILENT_LIGHT_ACTIONS:
            raise ScenarioError(
                f"event on {spec.target}: {spec.action!r} is not a TALQ fault "
                f"({', '.join(FAULT_NAMES)}) nor one of "
                f"{', '.join((*LIGHT_ALIASES, *SILENT_LIGHT_ACTIONS))}"
            )
    at = resolve_at(spec.at, start)
    end = None if spec.duration is None else at + parse_duration(spec.duration)
    point = None if spec.point is None else str(spec.point)
    detail = spec.detail or f"scripted {spec.action}"
    return ScriptedEvent(at, end, spec.target, action, detail, point)


class EventTarget(Protocol):
    """Something a scripted event can act on (a vehicle or the light fleet)."""

    def apply(self, event: ScriptedEvent, out: list[Message]) -> None:
        """Carry out ``event`` at ``event.at``."""


class Script:
    """The engine actor that fires scripted events in time order."""

    def __init__(self, events: list[tuple[ScriptedEvent, EventTarget]]) -> None:
        self._events = sorted(events, key=lambda e: e[0].at)
        self._next = 0
        self.next_time = self._events[0][0].at if self._events else math.inf

    def step(self, now: float, out: list[Message]) -> None:
        """Fire everything due at ``now``."""
        while self._next < len(self._events) and self._events[self._next][0].at <= now:
            event, target = self._events[self._next]
            target.apply(event, out)
            self._next += 1
        self.next_time = (
            self._events[self._next][0].at if self._next < len(self._events) else math.inf
        )
