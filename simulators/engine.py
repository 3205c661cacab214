"""The simulation engine: builds a scenario's devices and merges their messages in time order."""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from simulators.buses import Bus
from simulators.collection import round_point
from simulators.devices import CityDevices, build_devices
from simulators.errors import ScenarioError
from simulators.events import EventTarget, Script, ScriptedEvent, resolve
from simulators.light_fault_process import LightFaultProcess
from simulators.lights import LightFleet
from simulators.messages import Message
from simulators.routes import LINES
from simulators.scenario import Scenario
from simulators.tracker import Tracker
from simulators.trucks import Truck
from telemetry.topics import Channel, Fleet, topic_name


class Actor(Protocol):
    """Anything that produces messages at its ``next_time``."""

    next_time: float

    def step(self, now: float, out: list[Message]) -> None:
        """Advance to ``now``, append messages due at or after ``now``, update ``next_time``."""


@dataclass(frozen=True, slots=True)
class Shard:
    """Process ``index`` of ``count``: vehicles by position, lights by circuit."""

    index: int = 0
    count: int = 1

    def owns(self, n: int) -> bool:
        """Whether item ``n`` belongs to this shard."""
        return n % self.count == self.index

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"1/4"`` -> the second of four shards (0-based index)."""
        try:
            index_s, count_s = text.split("/")
            shard = cls(int(index_s), int(count_s))
        except ValueError:
            raise ScenarioError(f"shard {text!r}: write INDEX/COUNT, e.g. 0/2") from None
        if shard.count < 1 or not 0 <= shard.index < shard.count:
            raise ScenarioError(f"shard {text!r}: need 0 <= INDEX < COUNT")
        return shard


class _VehicleTarget:
    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker

    def apply(self, event: ScriptedEvent, out: list[Message]) -> None:
        """GPS or communication loss, a stop, a race or a detour from ``event.at`` to
        ``event.end``."""
        end = math.inf if event.end is None else event.end
        actions = {
            "gps_loss": self.tracker.gps_loss,
            "comm_loss": self.tracker.comm_loss,
            "idle": self.tracker.idle,
            "detour": self.tracker.detour,
            "speeding": self.tracker.speeding,
        }
        actions[event.action](event.at, end)


class _LightTarget:
    def __init__(self, fleet: LightFleet) -> None:
        self.fleet = fleet

    def apply(self, event: ScriptedEvent, out: list[Message]) -> None:
        """A fault or supply loss on a light or a circuit."""
        self.fleet.scripted(event.target, event.action, event.at, event.end, event.detail, out)


class Engine:
    """Deterministic: the same scenario, seed, start and prefix give the same messages."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int,
        start: float,
        duration: float | None,
        prefix: str,
        shard: Shard | None = None,
        devices: CityDevices | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.start = start
        self.end = math.inf if duration is None else start + duration
        self.prefix = prefix
        self.shard = shard or Shard()
        self.devices = devices or build_devices(scenario)
        self.vehicles: dict[str, Tracker] = {}
        self.lights: LightFleet | None = None
        self._actors: list[Actor] = []
        self._build()

    def _build(self) -> None:
        scenario, seed, start, prefix, shard = (
            self.scenario,
            self.seed,
            self.start,
            self.prefix,
            self.shard,
        )
        for n, bus in enumerate(self.devices.buses):
            if shard.owns(n):
                topic = topic_name(prefix, Fleet.BUS, bus.device_id, Channel.POSITION)
                self.vehicles[bus.device_id] = Bus(
                    bus.device_id,
                    topic,
                    LINES[bus.line_id],
                    bus.index,
                    bus.count,
                    scenario,
                    seed,
                    start,
                )
        for n, truck in enumerate(self.devices.trucks):
            if shard.owns(n):
                topic = topic_name(prefix, Fleet.TRUCK, truck.device_id, Channel.POSITION)
                self.vehicles[truck.device_id] = Truck(
                    truck.device_id,
                    topic,
                    truck.kind,
                    truck.operator,
                    truck.round,
                    scenario,
                    seed,
                    start,
                )
        self._actors.extend(self.vehicles.values())
        layout = self.devices.lights
        indices = np.flatnonzero(layout.circuit % shard.count == shard.index).astype(np.int64)
        if indices.size:
            fleet = LightFleet(layout, indices, scenario, seed, start, prefix)
            fleet.process = LightFaultProcess(
                fleet, scenario.lights, seed, start, f"{shard.index}/{shard.count}"
            )
            self.lights = fleet
            self._actors.append(fleet)
        self._actors.append(Script(self._events()))

    def _events(self) -> list[tuple[ScriptedEvent, EventTarget]]:
        kinds: dict[str, str] = {b.device_id: "bus" for b in self.devices.buses}
        kinds.update({t.device_id: "truck" for t in self.devices.trucks})
        kinds.update(dict.fromkeys(self.devices.lights.ids, "light"))
        kinds.update(dict.fromkeys(self.devices.lights.circuit_ids, "circuit"))
        events: list[tuple[ScriptedEvent, EventTarget]] = []
        for spec in self.scenario.events:
            kind = kinds.get(spec.target)
            if kind is None:
                raise ScenarioError(f"event target {spec.target!r} is not a device or circuit")
            event = resolve(spec, self.start, kind)
            if event.action == "skip_collection":
                self._skip(event)
            elif kind in ("bus", "truck"):
                vehicle = self.vehicles.get(spec.target)
                if vehicle is not None:
                    events.append((event, _VehicleTarget(vehicle)))
            elif self.lights is not None and (
                spec.target in self.lights.index_of or spec.target in self.lights.circuit_index
            ):
                events.append((event, _LightTarget(self.lights)))
        return events

    def _skip(self, event: ScriptedEvent) -> None:
        """Tell a truck, before it plans its shifts, which round point to leave out."""
        spec = next(t for t in self.devices.trucks if t.device_id == event.target)
        seq = round_point(spec.round, event.point or "")
        if seq is None:
            raise ScenarioError(
                f"event on {event.target}: skip_collection {event.point!r} is not a point of "
                f"its round (seq 0-{len(spec.round.points) - 1} or a label such as "
                f"{spec.round.labels[0] if spec.round.points else 'none: it has no round'})"
            )
        truck = self.vehicles.get(event.target)
        if isinstance(truck, Truck):
            truck.skip_collection(event.at, seq)

    def messages(self) -> Iterator[Message]:
        """Every message with ``start <= at < end``, in send order."""
        end = self.end
        order = itertools.count()
        actors: list[tuple[float, int, Actor]] = [
            (a.next_time, next(order), a) for a in self._actors if a.next_time < end
        ]
        heapq.heapify(actors)
        pending: list[tuple[float, int, Message]] = []
        out: list[Message] = []
        push, pop = heapq.heappush, heapq.heappop
        while actors or pending:
            t_actor = actors[0][0] if actors else math.inf
            if pending and pending[0][0] <= t_actor:
                yield pop(pending)[2]
                continue
            _, _, actor = pop(actors)
            actor.step(t_actor, out)
            for message in out:
                if message.at < end:  # held past the end (or forever): never sent
                    push(pending, (message.at, next(order), message))
            out.clear()
            if actor.next_time < end:
                push(actors, (actor.next_time, next(order), actor))
