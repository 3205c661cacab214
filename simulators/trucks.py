"""Garbage trucks: night rounds from the depot, trips to the transfer station or the landfill,
and Teltonika-style store-and-forward reporting (records every 30 s moving, 300 s stopped,
sent in batches every 120 s)."""

from __future__ import annotations

import math

from simulators.city import DEPOTS, LANDFILL, TRANSFER_STATION, Area, area_of
from simulators.clock import is_ramadan, local_midnight
from simulators.collection import Round, TruckKind
from simulators.gps_defects import COVERAGE_GAP, OUT_OF_ORDER
from simulators.messages import Message, defect_label, position_json
from simulators.motion import Leg, drive_to, stay
from simulators.scenario import Scenario
from simulators.timestamps import epoch_ms
from simulators.tracker import Tracker
from telemetry.geometry import LatLon, haversine_m

_HOUR = 3600.0


def _hhmm(text: str) -> float:
    hours, minutes = text.split(":")
    return int(hours) * _HOUR + int(minutes) * 60.0


class Truck(Tracker):
    """One truck of Arma or Mecomar; compactors and satellites drive the same fixed round of
    collection points every night (``Round.points``), washers wash sites of their sector."""

    def __init__(
        self,
        device_id: str,
        topic: str,
        kind: TruckKind,
        operator: str,
        round_: Round,
        scenario: Scenario,
        seed: int,
        start: float,
    ) -> None:
        self.kind = kind
        self.config = scenario.trucks
        self.depot: LatLon = DEPOTS[operator]
        self.round = round_
        self._buffer: list[tuple[str, tuple[str, ...], int]] = []
        self._backlog = False
        super().__init__(device_id, topic, scenario, seed, start, local_time=False)
        period = self.config.send_period_s
        self._send_phase = self.motion_rng.uniform(0.0, period)
        self._next_record = self.next_time
        self._flush_due = math.inf
        self._site_cursor = self.motion_rng.randrange(max(1, len(round_.sites)))
        self._round_sites = frozenset(round_.points)
        self._skips: list[tuple[float, int]] = []  # (event time, round point seq)
        # Plan from local noon, when every truck is parked at its depot.
        noon = local_midnight(start) + 12 * _HOUR
        self._plan_t = noon if noon <= start else local_midnight(noon - 86_400.0) + 12 * _HOUR

    # -- planning -------------------------------------------------------------------------------

    def _shift_start(self, t: float) -> float:
        washer = self.kind is TruckKind.WASHER
        base = _hhmm(self.config.washdown_start if washer else self.config.shift_start)
        jitter = self.motion_rng.uniform(0.0, 15.0 if washer else 40.0) * 60.0
        start = local_midnight(t) + base + jitter
        if start <= t:
            start = local_midnight(local_midnight(t) + 86_400.0 + 7200.0) + base + jitter
        return start

    def plan(self) -> list[Leg]:
        """Parked at the depot until the next shift, then the whole shift."""
        t = self._plan_t
        begin = self._shift_start(t)
        legs = [stay(t, begin - t, *self.depot, parked=True)]
        if self.kind is TruckKind.HOOK_LIFT:
            legs += self._haul(begin)
        elif self.kind is TruckKind.WASHER:
            legs += self._wash(begin)
        else:
            legs += self._collect(begin)
        self._plan_t = legs[-1].t1
        return legs

    def _speed(self, a: LatLon, b: LatLon) -> float:
        rng = self.motion_rng
        if haversine_m(*a, *b) > 3_000:
            return rng.uniform(40.0, 55.0)  # out-of-town roads to the transfer station
        area = area_of((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        if area is Area.MEDINA:
            return rng.uniform(8.0, 12.0)
        return rng.uniform(15.0, 25.0)

    def _go(self, legs: list[Leg], t: float, here: LatLon, there: LatLon) -> float:
        legs.append(drive_to(t, here, there, self._speed(here, there)))
        return legs[-1].t1

    def skip_collection(self, at: float, seq: int) -> None:
        """Scripted: leave round point ``seq`` out of the shift in progress at ``at`` (or the
        next one); registered before the run, as whole shifts are planned ahead."""
        self._skips.append((at, seq))

    def _collect(self, begin: float) -> list[Leg]:
        rng = self.motion_rng
        config = self.config
        # The fixed round must be done within the shift the network file declares.
        end = local_midnight(begin + 12 * _HOUR) + _hhmm(config.shift_end)
        skipped = {seq for at, seq in self._skips if at <= end}
        self._skips = [(at, seq) for at, seq in self._skips if at > end]
        legs: list[Leg] = []
        t, here = begin, self.depot
        sites = self.round.sites
        lift = (45.0, 150.0) if self.kind is TruckKind.SATELLITE else (60.0, 240.0)
        first = 0
        for count in self.round.trips:
            for seq in range(first, first + count):
                if t > end:
                    break
                if seq in skipped:
                    continue
                site = sites[seq]
                t = self._go(legs, t, here, site)
                legs.append(stay(t, rng.uniform(*lift), *site))
                t, here = legs[-1].t1, site
            first += count
            t = self._go(legs, t, here, TRANSFER_STATION)
            legs.append(stay(t, rng.uniform(15.0, 25.0) * 60.0, *TRANSFER_STATION))
            t, here = legs[-1].t1, TRANSFER_STATION
        self._go(legs, t, here, self.depot)
        return legs

    def _haul(self, begin: float) -> list[Leg]:
        rng = self.motion_rng
        legs: list[Leg] = []
        t, here = begin, self.depot
        for _ in range(self.config.trips_per_shift):
            for place, minutes in ((TRANSFER_STATION, (15.0, 25.0)), (LANDFILL, (20.0, 35.0))):
                legs.append(drive_to(t, here, place, rng.uniform(50.0, 70.0)))
                legs.append(stay(legs[-1].t1, rng.uniform(*minutes) * 60.0, *place))
                t, here = legs[-1].t1, place
        legs.append(drive_to(t, here, self.depot, rng.uniform(50.0, 70.0)))
        return legs

    def _wash(self, begin: float) -> list[Leg]:
        rng = self.motion_rng
        legs: list[Leg] = []
        t, here = begin, self.depot
        for _ in range(rng.randint(12, 20)):
            if not self.round.sites:
                break
            site = self.round.sites[self._site_cursor % len(self.round.sites)]
            self._site_cursor += 1
            speed = rng.uniform(5.0, 8.0) if haversine_m(*here, *site) < 3_000 else 40.0
            legs.append(drive_to(t, here, site, speed))
            legs.append(stay(legs[-1].t1, rng.uniform(5.0, 10.0) * 60.0, *site))
            t, here = legs[-1].t1, site
        self._go(legs, t, here, self.depot)
        return legs

    # -- reporting ------------------------------------------------------------------------------

    def _grid_after(self, t: float) -> float:
        period = self.config.send_period_s
        k = math.floor((t - self._send_phase) / period) + 1
        return float(math.ceil(self._send_phase + k * period))

    def step(self, now: float, out: list[Message]) -> None:
        """Take a record when one is due, send the buffer when the send period comes."""
        t = int(now)
        config = self.config
        if t >= self._next_record:
            state = self.true_state(t)
            fix = self.receiver.read(t, state, is_ramadan(t))
            if fix is not None:
                self.seq += 1
                record = position_json(
                    str(epoch_ms(fix.ts)),
                    fix.lat,
                    fix.lon,
                    fix.speed_kmh,
                    fix.heading_deg,
                    fix.accuracy_m,
                    None,
                    self.seq,
                )
                if not self._buffer and self._flush_due == math.inf:
                    self._flush_due = self._grid_after(t)
                self._buffer.append((record, fix.labels, fix.rejects))
            # Emptying bins at a round point: the PTO input adds a record per lift cycle.
            working = not state.moving and (state.lat, state.lon) in self._round_sites
            stopped_s = config.report_working_s if working else config.report_stopped_s
            self._next_record = t + self.interval(
                t, state, config.report_moving_s, stopped_s, config.report_parked_s
            )
        if self._buffer and t >= self._flush_due:
            gap_end = self.uplink.gap_end(t)
            if gap_end is None:
                self._flush(t, out)
                self._flush_due = math.inf
            else:
                self._backlog = True
                self._flush_due = float(math.ceil(gap_end))
        self.next_time = float(min(self._next_record, self._flush_due))

    def _flush(self, t: int, out: list[Message]) -> None:
        records = self._buffer
        self._buffer = []
        backlog, self._backlog = self._backlog, False
        size = self.config.max_batch
        for first in range(0, len(records), size):
            chunk = records[first : first + size]
            labels: tuple[str, ...] = tuple(label for r in chunk for label in r[1])
            if backlog:
                labels += (COVERAGE_GAP,)
                # Teltonika can send a backlog newest-first.
                if len(chunk) > 1 and self.uplink.newest_first():
                    chunk = chunk[::-1]
                    labels += (OUT_OF_ORDER,)
            payload = "[" + ",".join(r[0] for r in chunk) + "]"
            rejects = sum(r[2] for r in chunk)
            for delivery in self.uplink.deliveries(t, self.config.send_period_s):
                out.append(
                    Message(
                        delivery.at,
                        self.topic,
                        payload.encode(),
                        self.device_id,
                        defect_label(labels + delivery.labels),
                        rejects,
                    )
                )
