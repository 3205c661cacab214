"""What buses and trucks share: an itinerary, a GPS receiver, an uplink and a reporting clock."""

from __future__ import annotations

import math
import random

from simulators.gps_defects import COVERAGE_GAP, Receiver, Uplink
from simulators.messages import Message, defect_label
from simulators.motion import Itinerary, Leg, State
from simulators.scenario import Scenario
from simulators.seeds import py_rng
from telemetry.geometry import offset


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw for the small means of boarding passengers (Knuth's method)."""
    limit = math.exp(-mean)
    k = 0
    p = rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


#: How fast a scripted speeding vehicle drives: over both fleets' limits (70 and 80 km/h).
RACING_KMH = 95.0
#: How far off its line a scripted detour takes a vehicle, and how long it takes to get there.
DETOUR_M = 400.0
_DETOUR_RAMP_S = 60.0


class Tracker:
    """Base of simulated vehicles; subclasses plan legs and write records."""

    _plan_t: float  # where the subclass's planner continues (shifted by ``hold``)

    def __init__(
        self,
        device_id: str,
        topic: str,
        scenario: Scenario,
        seed: int,
        start: float,
        *,
        local_time: bool,
    ) -> None:
        self.device_id = device_id
        self.topic = topic
        self.scenario = scenario
        # Separate streams: switching defects off must not change where vehicles drive.
        self.motion_rng = py_rng(seed, device_id, "motion")
        self.receiver = Receiver(
            scenario.gps, scenario.defects, py_rng(seed, device_id, "gps"), local_time=local_time
        )
        self.uplink = Uplink(scenario.defects, py_rng(seed, device_id, "uplink"), start)
        self.itinerary = Itinerary(self.plan)
        self.seq = py_rng(seed, device_id, "seq").randrange(0, 1_000_000)
        self.next_time = float(math.ceil(start))
        self._detours: list[tuple[float, float]] = []

    def plan(self) -> list[Leg]:
        """More legs after the last planned one."""
        raise NotImplementedError

    def step(self, now: float, out: list[Message]) -> None:
        """Record (and maybe send) at ``now``; set ``next_time``."""
        raise NotImplementedError

    def gps_loss(self, start: float, end: float) -> None:
        """Scripted: no fix from ``start`` to ``end``."""
        self.receiver.gps_off_until = end

    def comm_loss(self, start: float, end: float) -> None:
        """Scripted: records are kept on board from ``start`` and flushed at ``end``."""
        self.uplink.force_gap(start, end)

    def idle(self, start: float, end: float) -> None:
        """Scripted: stand still where it is from ``start`` to ``end``, then carry on late."""
        self.itinerary.hold(start, end - start)
        self._plan_t += end - start

    def speeding(self, start: float, end: float) -> None:
        """Scripted: race at ``RACING_KMH`` from ``start`` to ``end`` without stopping, then
        carry on early."""
        self._plan_t += self.itinerary.race(start, end - start, RACING_KMH)

    def detour(self, start: float, end: float) -> None:
        """Scripted: drive a parallel street ``DETOUR_M`` to the left from ``start`` to ``end``."""
        self._detours.append((start, end))

    def true_state(self, t: float) -> State:
        """Where the vehicle is at ``t``: its itinerary, moved aside while on a detour."""
        state = self.itinerary.state_at(t)
        for start, end in self._detours:
            if start <= t < end:
                # Pull out and back in over a minute, so no fix looks like a teleport.
                share = min(1.0, (t - start) / _DETOUR_RAMP_S, (end - t) / _DETOUR_RAMP_S)
                left = math.radians(state.heading_deg - 90.0)
                lat, lon = offset(
                    state.lat,
                    state.lon,
                    DETOUR_M * share * math.sin(left),
                    DETOUR_M * share * math.cos(left),
                )
                return state._replace(lat=lat, lon=lon)
        return state

    def interval(
        self, t: int, state: State, moving_s: float, stopped_s: float, parked_s: float
    ) -> int:
        """Seconds to the next record: by motion state, and promptly when a stop ends."""
        if state.moving:
            return max(1, round(moving_s))
        period = parked_s if state.parked else stopped_s
        return max(1, min(round(period), math.ceil(state.leg_end) + 1 - t))

    def send(
        self,
        ready: float,
        payload: str,
        labels: tuple[str, ...],
        rejects: int,
        interval: float,
        out: list[Message],
    ) -> None:
        """Hand a message to the uplink, which may hold, delay or duplicate it."""
        at = ready
        gap_end = self.uplink.gap_end(ready)
        if gap_end is not None:
            at = gap_end
            labels = (*labels, COVERAGE_GAP)
        data = payload.encode()
        for delivery in self.uplink.deliveries(at, interval):
            out.append(
                Message(
                    delivery.at,
                    self.topic,
                    data,
                    self.device_id,
                    defect_label(labels + delivery.labels),
                    rejects,
                )
            )
