"""Missed collection: a point of a truck's round with no stop near it during the shift.

Each round has a local shift (``shift_start``-``shift_end``, possibly across midnight).
A point counts as visited by a fix within its radius at or below ``collection_stop_kmh``,
including fixes that arrive out of order (a backlog sent newest-first still proves the stop).
The shift is judged ``collection_grace_s`` after its end on the receipt clock, and only when
the worker saw the whole shift (its readings start before the shift did) and the truck
reported during it. Missed points of later shifts are added to the unresolved alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.catalog import Catalog
from alerts.config import VehicleThresholds
from alerts.effects import AlertKey, Detail
from alerts.lifecycle import Lifecycle
from alerts.observations import Position
from telemetry.geometry import haversine_m
from telemetry.reference_data import Asset, CollectionRound
from telemetry.topics import Fleet

KIND = "missed_collection"


def shift_containing(round_: CollectionRound, ts: float) -> tuple[date, float, float] | None:
    """(local start date, start, end) of the shift of ``round_`` containing UTC epoch ``ts``."""
    zone = ZoneInfo(round_.timezone)
    local = datetime.fromtimestamp(ts, zone).date()
    for day in (local, local - timedelta(days=1)):
        start = datetime.combine(day, round_.shift_start, zone)
        end_day = day if round_.shift_end > round_.shift_start else day + timedelta(days=1)
        end = datetime.combine(end_day, round_.shift_end, zone)
        if start.timestamp() <= ts < end.timestamp():
            return day, start.timestamp(), end.timestamp()
    return None


def _same(a: CollectionRound, b: CollectionRound) -> bool:
    # The catalog reloads rounds every metadata refresh: new objects, usually equal ones.
    return a is b or a == b


@dataclass(slots=True)
class _Shift:
    round: CollectionRound
    day: date
    start: float
    end: float
    visited: set[int] = field(default_factory=set)


class CollectionRule:
    """Tracks the current shift of every truck that has a round."""

    def __init__(self, life: Lifecycle, catalog: Catalog, thresholds: VehicleThresholds) -> None:
        self._life = life
        self._catalog = catalog
        self._t = thresholds
        self._shifts: dict[str, _Shift] = {}
        self.observed_from: float | None = None  # receipt time of the first reading seen

    def observe(self, position: Position, asset: Asset | None) -> None:
        """Mark round points near a stopped truck as visited."""
        if asset is None:
            return
        round_ = self._catalog.round_of(asset)
        if round_ is None or not round_.points:
            return
        found = shift_containing(round_, position.ts)
        if found is None:
            return
        day, start, end = found
        device = position.device_id
        shift = self._shifts.get(device)
        if shift is None or shift.start != start or not _same(shift.round, round_):
            if shift is not None and shift.start < start:
                self._judge(device, shift)
            shift = self._shifts[device] = _Shift(round_, day, start, end)
        self._visit(shift, position)

    def late(self, position: Position, asset: Asset | None) -> None:
        """An out-of-order fix: count its stop towards the shift being tracked, if it is in it."""
        shift = self._shifts.get(position.device_id)
        if shift is None or asset is None:
            return
        round_ = self._catalog.round_of(asset)
        if round_ is None or not _same(shift.round, round_):
            return
        if shift.start <= position.ts < shift.end:
            self._visit(shift, position)

    def _visit(self, shift: _Shift, position: Position) -> None:
        speed = position.speed_kmh
        if speed is not None and speed > self._t.collection_stop_kmh:
            return
        for point in shift.round.points:
            if point.seq not in shift.visited and (
                haversine_m(point.lat, point.lon, position.lat, position.lon) <= point.radius_m
            ):
                shift.visited.add(point.seq)

    def tick(self, now: float) -> None:
        """Judge the shifts that ended ``collection_grace_s`` before ``now``."""
        grace = self._t.collection_grace_s
        for device, shift in list(self._shifts.items()):
            if now >= shift.end + grace:
                self._judge(device, shift)

    def _judge(self, device: str, shift: _Shift) -> None:
        if self._shifts.get(device) is shift:
            del self._shifts[device]
        if self.observed_from is None or self.observed_from > shift.start:
            return  # this worker did not see the whole shift: no verdict rather than a false one
        missed = [p.seq for p in shift.round.points if p.seq not in shift.visited]
        if not missed:
            return
        key = AlertKey(KIND, device)
        labels = [p.label or str(p.seq) for p in shift.round.points if p.seq in set(missed)]
        summary = (
            f"{device} missed {len(missed)} of {len(shift.round.points)} points "
            f"of round {shift.round.round} ({shift.day.isoformat()})"
        )
        details = {f"shift {shift.day.isoformat()}": labels, "round": shift.round.round}
        self._life.rise(
            key,
            shift.end,
            self._catalog.subject(device, Fleet.TRUCK),
            summary,
            details,
            always=True,
        )
        # An alert of an earlier shift may still be unresolved: list this shift in it too.
        self._life.emit(Detail(key, details, summary))
