"""The streetlight fleet as numpy arrays: photocells, dimming, energy meters, faults, reports.

Lamp state is evaluated per UTC minute (controllers run their photocell and dimming
schedule once a minute); faults switch it at their exact second. The meter integrates that
piecewise-constant power exactly, so ``energy_wh`` is always consistent with power x time.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from simulators.city import DISTRICTS, District
from simulators.clock import utc_offset_s
from simulators.dimming import medina_levels, street_levels
from simulators.light_faults import SCRIPTED_EFFECT, UNREPORTED, Effect
from simulators.lights_layout import FLOOD, HPS, LED, LightLayout
from simulators.messages import Message, compact_json
from simulators.scenario import Scenario
from simulators.seeds import np_rng
from simulators.timestamps import rfc3339_utc
from telemetry.solar import SUNRISE_ELEVATION_DEG, sin_elevation
from telemetry.topics import Channel, Fleet, topic_name

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_DESCENT_DEG_PER_MIN: Final = 0.2  # the Sun's descent at dusk at 31.6 N, for photocell delays
_BURN_HOURS_PER_YEAR: Final = 4150.0  # city-facts: dusk-to-dawn with photocell offsets
_ON = (
    '{"ts":"%s","energy_wh":%.3f,"power_w":%.1f,"voltage_v":%.1f,"current_a":%.3f,'
    '"power_factor":%.2f,"lamp_on":true,"dim_pct":%d,"seq":%d}'
)
_OFF = (
    '{"ts":"%s","energy_wh":%.3f,"power_w":0.0,"voltage_v":%.1f,"current_a":0.0,'
    '"lamp_on":false,"dim_pct":0,"seq":%d}'
)


def report_tick(report_s: float) -> tuple[float, int]:
    """(tick seconds, phase groups): lights report in groups spread over ``report_s``."""
    whole = max(1, round(report_s))
    tick = 10 if whole % 10 == 0 else 1
    return float(tick), whole // tick


class LightFleet:
    """Every light of one shard; ``step`` is called by the engine at ``next_time``."""

    def __init__(
        self,
        layout: LightLayout,
        indices: IntArray,
        scenario: Scenario,
        seed: int,
        start: float,
        prefix: str,
    ) -> None:
        config = scenario.lights
        self.config = config
        total = len(layout)
        # Per-light draws cover the whole layout, so a light is the same in every shard.
        rng = np_rng(seed, "lights")
        delay = rng.uniform(*config.photocell_delay_min, total)[indices]
        years = rng.uniform(1.0, 7.0, total)[indices]
        seq = rng.integers(0, 1_000_000, total)[indices]
        tick, groups = report_tick(config.report_s)
        phase = rng.integers(0, groups, total)[indices]
        pf_jitter = rng.uniform(-0.02, 0.02, total)[indices]
        self._noise = np_rng(seed, "lights", "meter-noise")

        self.ids = [layout.ids[i] for i in indices]
        self.index_of = {device_id: k for k, device_id in enumerate(self.ids)}
        self.energy_topics = [topic_name(prefix, Fleet.LIGHT, d, Channel.ENERGY) for d in self.ids]
        self.fault_topics = [topic_name(prefix, Fleet.LIGHT, d, Channel.FAULT) for d in self.ids]
        lat = layout.lat[indices]
        self.lat = lat
        self.lon = layout.lon[indices]
        self._sin_lat = np.sin(np.radians(lat))[:, None]
        self._cos_lat = np.cos(np.radians(lat))[:, None]
        self._lon_col = self.lon[:, None]
        self._sin_threshold = np.sin(
            np.radians(SUNRISE_ELEVATION_DEG - _DESCENT_DEG_PER_MIN * delay)
        )[:, None]
        tech = layout.tech[indices]
        self.tech = tech
        rated = layout.rated_w[indices]
        # Discharge lamps draw more than their rating through the ballast [S: up to 25 %].
        self._draw_w = (rated * np.where(tech == HPS, 1.12, np.where(tech == FLOOD, 1.08, 1.0)))[
            :, None
        ]
        self._dimmable = (tech == LED)[:, None]
        medina_index = next(k for k, d in enumerate(DISTRICTS) if d.district is District.MEDINA)
        self.medina = layout.district[indices] == medina_index
        self._medina_col = self.medina[:, None]
        self._pf = np.where(tech == LED, 0.95, np.where(tech == HPS, 0.88, 0.90)) + pf_jitter
        circuit_global = layout.circuit[indices]
        owned, self.circuit = np.unique(circuit_global, return_inverse=True)
        self.circuit_ids = [layout.circuit_ids[c] for c in owned]
        self.circuit_index = {c: k for k, c in enumerate(self.circuit_ids)}
        by_circuit = np.argsort(self.circuit, kind="stable")
        bounds = np.searchsorted(self.circuit[by_circuit], np.arange(1, owned.size))
        self.circuit_members = np.split(by_circuit.astype(np.int64), bounds)
        circuit_rng = np_rng(seed, "lights", "circuits")
        self._circuit_v = circuit_rng.normal(229.0, 3.0, len(layout.circuit_ids))[owned]

        n = len(self.ids)
        self.energy_wh = rated * _BURN_HOURS_PER_YEAR * years
        self.settled = np.full(n, float(start))
        self.seq = seq.astype(np.int64)
        self.dark = np.zeros(n, dtype=np.int64)
        self.day_burn = np.zeros(n, dtype=np.int64)
        self.pf_low = np.zeros(n, dtype=np.int64)
        self.supply_lost = np.zeros(n, dtype=np.int64)
        self.comm_lost = np.zeros(n, dtype=np.int64)
        self._comm_since = np.zeros(n)
        self._pending: dict[int, list[dict[str, object]]] = {}
        self._active: dict[tuple[int, str], int] = {}
        self._tokens = itertools.count(1)
        self._ends: list[tuple[float, int, int, str, int]] = []  # (t, order, token, fault, light)
        self._circuit_ends: list[tuple[float, int, int, int]] = []  # (t, order, token, circuit)
        self._order = itertools.count()

        self._tick = tick
        self._groups = [np.flatnonzero(phase == g) for g in range(groups)]
        self._next_tick = math.ceil(start / tick) * tick
        self.next_time = float(self._next_tick)
        self.process: LightFaultSource | None = None

    # -- lamp physics ---------------------------------------------------------------------------

    def lamp_state(
        self, idx: IntArray, minutes: FloatArray
    ) -> tuple[BoolArray, FloatArray, FloatArray]:
        """(on, level %, power W) of lights ``idx`` (rows) at minute starts ``minutes`` (cols)."""
        times = minutes[None, :]
        sin_el = sin_elevation(
            times, self._sin_lat[idx], self._cos_lat[idx], self._lon_col[idx], np.cos, np.sin
        )
        night = sin_el < self._sin_threshold[idx]
        lit = (night | (self.day_burn[idx] > 0)[:, None]) & (
            (self.dark[idx] == 0) & (self.supply_lost[idx] == 0)
        )[:, None]
        offsets = np.array([utc_offset_s(m) for m in minutes])
        minute_of_day = ((minutes + offsets) % 86_400.0) // 60.0
        ramadan = offsets == 0
        level = np.where(
            self._medina_col[idx],
            medina_levels(minute_of_day)[None, :],
            street_levels(minute_of_day, ramadan)[None, :],
        )
        level = np.where(self._dimmable[idx], level, 100.0)
        power = np.where(lit, self._draw_w[idx] * level / 100.0, 0.0)
        return lit, level, power

    def _energy_between(self, idx: IntArray, t0: float, t1: float) -> FloatArray:
        first = math.floor(t0 / 60.0)
        last = math.ceil(t1 / 60.0)
        minutes = np.arange(first, last, dtype=np.float64) * 60.0
        weights = np.minimum(t1, minutes + 60.0) - np.maximum(t0, minutes)
        _, _, power = self.lamp_state(idx, minutes)
        result: FloatArray = power @ weights / 3600.0
        return result

    def settle(self, idx: IntArray, t: float) -> None:
        """Bring the meters of ``idx`` up to ``t`` under their current state."""
        if idx.size == 0:
            return
        since = self.settled[idx]
        for t0 in np.unique(since):
            if t0 < t:
                sub = idx[since == t0]
                self.energy_wh[sub] += self._energy_between(sub, float(t0), t)
        self.settled[idx] = np.maximum(since, t)

    # -- the engine's actor interface -------------------------------------------------------------

    def _refresh_next(self) -> None:
        candidates = [self._next_tick]
        if self._ends:
            candidates.append(self._ends[0][0])
        if self._circuit_ends:
            candidates.append(self._circuit_ends[0][0])
        if self.process is not None:
            candidates.append(self.process.next_time)
        self.next_time = float(min(candidates))

    def step(self, now: float, out: list[Message]) -> None:
        """Apply fault ends and starts due at ``now``, then report the group due."""
        while self._ends and self._ends[0][0] <= now:
            t, _, token, fault, light = heapq.heappop(self._ends)
            self.end_fault(light, fault, t, token, out)
        while self._circuit_ends and self._circuit_ends[0][0] <= now:
            t, _, token, circuit = heapq.heappop(self._circuit_ends)
            self.end_circuit_loss(circuit, t, token, out)
        if self.process is not None and self.process.next_time <= now:
            self.process.fire(self, now, out)
        if self._next_tick <= now:
            t = self._next_tick
            group = round(t / self._tick) % len(self._groups)
            self._report(self._groups[group], t, out)
            self._next_tick = t + self._tick
        self._refresh_next()

    def _report(self, group: IntArray, t: float, out: list[Message]) -> None:
        idx = group[(self.comm_lost[group] == 0) & (self.supply_lost[group] == 0)]
        if idx.size == 0:
            return
        self.settle(idx, t)
        minute = np.array([math.floor(t / 60.0) * 60.0])
        lit, level, power = self.lamp_state(idx, minute)
        on = lit[:, 0]
        watts = power[:, 0]
        volts = np.round(
            self._circuit_v[self.circuit[idx]] + self._noise.normal(0, 1.0, idx.size), 1
        )
        pf = np.where(self.pf_low[idx] > 0, 0.62, self._pf[idx] - 0.04 * (1 - level[:, 0] / 100.0))
        pf = np.round(pf, 2)
        amps = np.where(on, watts / (volts * pf), 0.0)
        self.seq[idx] += 1
        ts = rfc3339_utc(int(t))
        topics = self.energy_topics
        ids = self.ids
        for i, lamp_on, e, w, v, a, p, lvl, s in zip(
            idx.tolist(),
            on.tolist(),
            self.energy_wh[idx].tolist(),
            watts.tolist(),
            volts.tolist(),
            amps.tolist(),
            pf.tolist(),
            level[:, 0].tolist(),
            self.seq[idx].tolist(),
            strict=True,
        ):
            text = _ON % (ts, e, w, v, a, p, lvl, s) if lamp_on else _OFF % (ts, e, v, s)
            out.append(Message(t, topics[i], text.encode(), ids[i]))

    # -- faults -----------------------------------------------------------------------------------

    def _reachable(self, i: int) -> bool:
        return bool(self.comm_lost[i] == 0 and self.supply_lost[i] == 0)

    def _alarm(
        self,
        i: int,
        t: float,
        fault: str,
        active: bool,
        detail: str,
        out: list[Message],
        *,
        last_gasp: bool = False,
    ) -> None:
        record: dict[str, object] = {
            "ts": rfc3339_utc(int(t)),
            "fault": fault,
            "active": active,
            "detail": detail,
        }
        if self._reachable(i) or (last_gasp and self.comm_lost[i] == 0):
            out.append(Message(t, self.fault_topics[i], compact_json(record).encode(), self.ids[i]))
        else:
            self._pending.setdefault(i, []).append(record)

    def _flush_pending(
        self, i: int, t: float, extra: list[dict[str, object]], out: list[Message]
    ) -> None:
        records = extra + self._pending.pop(i, [])
        if not records:
            return
        body: object = records[0] if len(records) == 1 else records
        out.append(Message(t, self.fault_topics[i], compact_json(body).encode(), self.ids[i]))

    def _apply(self, i: int, effect: Effect, delta: int, t: float) -> None:
        if effect in (Effect.DARK, Effect.DAY_BURN, Effect.SUPPLY):
            self.settle(np.array([i], dtype=np.int64), t)
        array = {
            Effect.DARK: self.dark,
            Effect.DAY_BURN: self.day_burn,
            Effect.PF_LOW: self.pf_low,
            Effect.SUPPLY: self.supply_lost,
            Effect.COMM: self.comm_lost,
        }.get(effect)
        if array is not None:
            array[i] += delta

    def begin_fault(
        self,
        i: int,
        fault: str,
        effect: Effect,
        t: float,
        detail: str,
        end: float | None,
        out: list[Message],
    ) -> int | None:
        """Start ``fault`` on light ``i`` (ignored if already active); returns its token."""
        if (i, fault) in self._active:
            return None
        token = next(self._tokens)
        self._active[(i, fault)] = token
        if effect is Effect.COMM:
            if self.comm_lost[i] == 0:
                self._comm_since[i] = t
            self._apply(i, effect, 1, t)
        elif effect is Effect.SUPPLY:
            self._alarm(i, t, fault, True, detail, out, last_gasp=True)
            self._apply(i, effect, 1, t)
        else:
            self._apply(i, effect, 1, t)
            if fault not in UNREPORTED:
                self._alarm(i, t, fault, True, detail, out)
        if end is not None:
            heapq.heappush(self._ends, (float(math.ceil(end)), next(self._order), token, fault, i))
        return token

    def end_fault(self, i: int, fault: str, t: float, token: int, out: list[Message]) -> None:
        """End ``fault`` on light ``i`` if ``token`` still owns it."""
        if self._active.get((i, fault)) != token:
            return
        del self._active[(i, fault)]
        effect = SCRIPTED_EFFECT.get(fault, Effect.NONE)
        self._apply(i, effect, -1, t)
        if effect is Effect.COMM:
            if self.comm_lost[i] == 0:
                since = rfc3339_utc(int(self._comm_since[i]))
                episode: list[dict[str, object]] = [
                    {"ts": since, "fault": fault, "active": True, "detail": "controller offline"},
                    {
                        "ts": rfc3339_utc(int(t)),
                        "fault": fault,
                        "active": False,
                        "detail": "controller back online",
                    },
                ]
                if self.supply_lost[i] == 0:
                    self._flush_pending(i, t, episode, out)
                else:  # powered down meanwhile: told when the mains come back
                    self._pending.setdefault(i, []).extend(episode)
            return
        if fault not in UNREPORTED:
            self._alarm(i, t, fault, False, "cleared", out)
        if effect is Effect.SUPPLY and self._reachable(i):
            self._flush_pending(i, t, [], out)

    def begin_circuit_loss(
        self, circuit: int, t: float, end: float | None, detail: str, out: list[Message]
    ) -> None:
        """Mains lost on a whole circuit: every lamp goes dark and sends a last gasp."""
        token = next(self._tokens)
        for i in self.circuit_members[circuit].tolist():
            if (i, "supplyLoss") not in self._active:
                self.begin_fault(i, "supplyLoss", Effect.SUPPLY, t, detail, None, out)
                self._active[(i, "supplyLoss")] = token
        if end is not None:
            heapq.heappush(
                self._circuit_ends, (float(math.ceil(end)), next(self._order), token, circuit)
            )

    def end_circuit_loss(self, circuit: int, t: float, token: int, out: list[Message]) -> None:
        """Mains back on a circuit."""
        for i in self.circuit_members[circuit].tolist():
            self.end_fault(i, "supplyLoss", t, token, out)

    def scripted(
        self, target: str, action: str, t: float, end: float | None, detail: str, out: list[Message]
    ) -> bool:
        """Apply a scenario event; False when the target is not in this fleet (or shard)."""
        if target in self.circuit_index:
            self.begin_circuit_loss(self.circuit_index[target], t, end, detail, out)
            return True
        i = self.index_of.get(target)
        if i is None:
            return False
        self.begin_fault(i, action, SCRIPTED_EFFECT.get(action, Effect.NONE), t, detail, end, out)
        return True


class LightFaultSource(Protocol):
    """The random fault process the fleet consults (simulators.light_fault_process)."""

    next_time: float

    def fire(self, fleet: LightFleet, now: float, out: list[Message]) -> None:
        """Start every fault due at ``now``."""
