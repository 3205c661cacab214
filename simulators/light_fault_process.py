"""Random streetlight faults as fleet-wide Poisson processes (rates per luminaire-year)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Final

import numpy as np
import numpy.typing as npt

from simulators.clock import utc_offset_s
from simulators.light_faults import FAULT_KINDS, SUMMER_MONTHS, Effect, FaultKind, Lasting
from simulators.lights import LightFleet
from simulators.messages import Message
from simulators.scenario import LightConfig
from simulators.seeds import np_rng

FloatArray = npt.NDArray[np.float64]

YEAR_S: Final = 365.25 * 86_400.0
_DAY_S: Final = 86_400.0


class _Process:
    __slots__ = ("cumulative", "kind", "next_time", "rate")

    def __init__(self, kind: FaultKind, cumulative: FloatArray, rate: float) -> None:
        self.kind = kind
        self.cumulative = cumulative  # weights of eligible lights, cumulated
        self.rate = rate  # events per second over the fleet
        self.next_time = math.inf


class LightFaultProcess:
    """Draws fault starts for random lights and schedules their repair."""

    def __init__(
        self, fleet: LightFleet, config: LightConfig, seed: int, start: float, stream: str
    ) -> None:
        self.config = config
        self._rng = np_rng(seed, "lights", "faults", stream)
        rates = config.fault_rates
        multiplier = config.fault_rate_multiplier
        self._processes: list[_Process] = []
        for kind in FAULT_KINDS:
            per_light = getattr(rates, kind.key) * multiplier / YEAR_S
            if kind.summer_only:
                per_light *= 12 / len(SUMMER_MONTHS)  # the yearly rate happens in summer
            weights = np.isin(fleet.tech, kind.techs).astype(np.float64)
            if kind.key == "controller_fault":
                weights[fleet.medina] *= config.medina_controller_factor
            total = float(weights.sum()) * per_light
            if total > 0:
                process = _Process(kind, np.cumsum(weights), total)
                process.next_time = self._after(start, total)
                self._processes.append(process)
        circuits = len(fleet.circuit_ids)
        self._circuit_rate = rates.circuit_supply_loss_per_circuit * multiplier / YEAR_S * circuits
        self._circuit_next = self._after(start, self._circuit_rate)
        self.next_time = self._earliest()

    def _after(self, t: float, rate: float) -> float:
        if rate <= 0:
            return math.inf
        return float(math.ceil(t + self._rng.exponential(1.0 / rate)))

    def _earliest(self) -> float:
        times = [p.next_time for p in self._processes] + [self._circuit_next]
        return min(times, default=math.inf)

    def _duration(self, kind: FaultKind) -> float:
        if kind.lasting is Lasting.REPAIR:
            return float(self._rng.exponential(self.config.mttr_luminaire_days * _DAY_S))
        if kind.key == "comm_loss_transient":
            return float(self._rng.uniform(*self.config.comm_loss_hours) * 3600.0)
        return float(self._rng.uniform(*kind.transient_hours) * 3600.0)

    def fire(self, fleet: LightFleet, now: float, out: list[Message]) -> None:
        """Start every fault due at ``now`` and draw the next of each process."""
        for process in self._processes:
            if process.next_time > now:
                continue
            t = process.next_time
            kind = process.kind
            in_season = not kind.summer_only or _month(t) in SUMMER_MONTHS
            if in_season:
                pick = self._rng.random() * process.cumulative[-1]
                light = int(np.searchsorted(process.cumulative, pick, side="right"))
                light = min(light, len(fleet.ids) - 1)
                self._start(fleet, kind, light, t, out)
            process.next_time = self._after(t, process.rate)
        if self._circuit_next <= now:
            t = self._circuit_next
            circuit = int(self._rng.integers(0, len(fleet.circuit_ids)))
            repair = self._rng.exponential(self.config.mttr_circuit_days * _DAY_S)
            detail = f"circuit {fleet.circuit_ids[circuit]}: mains lost (cable theft or breaker)"
            fleet.begin_circuit_loss(circuit, t, t + repair, detail, out)
            self._circuit_next = self._after(t, self._circuit_rate)
        self.next_time = self._earliest()

    def _start(
        self, fleet: LightFleet, kind: FaultKind, light: int, t: float, out: list[Message]
    ) -> None:
        if kind.key == "tilt_or_impact":
            # The knock is an instant event; the tilt it leaves stays until a crew fixes it.
            fleet.begin_fault(
                light, "impactDetected", Effect.NONE, t, "impact on the pole", t + 1.0, out
            )
        fleet.begin_fault(
            light, kind.fault, kind.effect, t, kind.detail, t + self._duration(kind), out
        )


def _month(t: float) -> int:
    return datetime.fromtimestamp(t + utc_offset_s(t), tz=UTC).month
