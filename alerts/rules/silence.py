"""Silence on the receipt clock: silent lights and vehicles offline while in service.

Deadlines are "last received + threshold"; receipt times only grow (the engine clock), so the
deadlines come due in order and a FIFO queue replaces a heap. An entry is stale when the
device was heard from again after it was queued.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, time
from zoneinfo import ZoneInfo

from alerts.catalog import Catalog
from alerts.config import LightThresholds, ServiceHours, VehicleThresholds
from alerts.effects import AlertKey
from alerts.lifecycle import Lifecycle
from alerts.observations import Position, iso
from telemetry.topics import Fleet

SILENT_LIGHT = "silent_light"
VEHICLE_OFFLINE = "vehicle_offline"


class Deadlines:
    """When each device becomes overdue, given when it was last heard from."""

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self.last: dict[str, float] = {}
        self._queue: deque[tuple[float, str, float]] = deque()  # (deadline, device, heard at)

    def heard(self, device_id: str, received: float) -> None:
        """The device sent something at ``received`` (non-decreasing across calls)."""
        self.last[device_id] = received
        self._queue.append((received + self.after_s, device_id, received))

    def due(self, now: float) -> Iterator[tuple[str, float, float]]:
        """(device, deadline, last heard) for each device silent past its deadline, once."""
        queue = self._queue
        last = self.last
        while queue and queue[0][0] <= now:
            deadline, device, heard = queue.popleft()
            if last.get(device) == heard:  # not heard from since this entry was queued
                yield device, deadline, heard


def in_hours(local: time, hours: ServiceHours) -> bool:
    """Whether a local time of day is inside service hours (which may span midnight)."""
    if hours.start <= hours.end:
        return hours.start <= local < hours.end
    return local >= hours.start or local < hours.end


class SilentLightRule:
    """A light with nothing received for ``silent_intervals`` report intervals."""

    def __init__(
        self,
        life: Lifecycle,
        catalog: Catalog,
        thresholds: LightThresholds,
        supply_lost: Callable[[str], bool],
    ) -> None:
        self._life = life
        self._catalog = catalog
        self._supply_lost = supply_lost
        self.deadlines = Deadlines(thresholds.report_interval_s * thresholds.silent_intervals)

    def heard(self, device_id: str, now: float) -> None:
        """Any energy or fault message from the light: it is alive."""
        self._life.fall(AlertKey(SILENT_LIGHT, device_id), now, "light reporting again")
        self.deadlines.heard(device_id, now)

    def tick(self, now: float) -> None:
        """Raise for lights overdue by ``now`` (not for lights known to be without supply)."""
        for device, deadline, last in self.deadlines.due(now):
            if self._supply_lost(device):
                continue  # the outage alert covers it; the light cannot report without mains
            self._life.rise(
                AlertKey(SILENT_LIGHT, device),
                deadline,
                self._catalog.subject(device, Fleet.LIGHT),
                f"{device} silent since {iso(last)}",
                {"last_received": iso(last)},
            )


class VehicleOfflineRule:
    """A vehicle in service with no position received for ``offline_after_s``."""

    def __init__(self, life: Lifecycle, catalog: Catalog, thresholds: VehicleThresholds) -> None:
        self._life = life
        self._catalog = catalog
        self._t = thresholds
        self._zone = ZoneInfo(thresholds.timezone)
        self.deadlines = Deadlines(thresholds.offline_after_s)
        self._last_fix: dict[str, float] = {}
        self._last_moving: dict[str, float] = {}

    def heard(self, device_id: str, now: float) -> None:
        """Any message from the vehicle, even an unusable fix: its tracker is online."""
        self._life.fall(AlertKey(VEHICLE_OFFLINE, device_id), now, "vehicle reporting again")
        self.deadlines.heard(device_id, now)

    def fix(self, position: Position, moving: bool) -> None:
        """Remember when the vehicle last reported and last moved (device time)."""
        device = position.device_id
        if position.ts > self._last_fix.get(device, float("-inf")):
            self._last_fix[device] = position.ts
        if moving and position.ts > self._last_moving.get(device, float("-inf")):
            self._last_moving[device] = position.ts

    def in_service(self, device_id: str, fleet: Fleet) -> bool:
        """Moved recently before its last fix, and (buses) that fix was within service hours."""
        last_fix = self._last_fix.get(device_id)
        last_moving = self._last_moving.get(device_id)
        if last_fix is None or last_moving is None:
            return False
        if last_fix - last_moving > self._t.active_window_s:
            return False  # parked: going quiet is normal
        if fleet is Fleet.BUS:
            local = datetime.fromtimestamp(last_fix, self._zone).time()
            return in_hours(local, self._t.bus_service)
        return True

    def tick(self, now: float) -> None:
        """Raise for vehicles in service that are overdue by ``now``."""
        for device, deadline, last in self.deadlines.due(now):
            subject = self._catalog.subject(device, Fleet.BUS)
            if not self.in_service(device, subject.asset_kind):
                continue
            self._life.rise(
                AlertKey(VEHICLE_OFFLINE, device),
                deadline,
                subject,
                f"{device} offline since {iso(last)}",
                {"last_received": iso(last)},
            )
