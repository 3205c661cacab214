"""Silence on the receipt clock: silent lights and vehicles offline while in service.

Deadlines are "last received + threshold"; receipt times only grow (the engine clock), so the
deadlines come due in order and a FIFO queue replaces a heap. An entry is stale when the
device was heard from again after it was queued.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime, time
from zoneinfo import ZoneInfo

from alerts.catalog import Catalog
from alerts.config import LightThresholds, ServiceHours, VehicleThresholds
from alerts.effects import AlertKey
from alerts.lifecycle import Lifecycle
from alerts.observations import Position, iso
from telemetry.geometry import haversine_m
from telemetry.topics import Fleet

SILENT_LIGHT = "silent_light"
VEHICLE_OFFLINE = "vehicle_offline"


class Deadlines:
    """When each device becomes overdue, given when it was last heard from."""

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self.last: dict[str, float] = {}
        self._queue: deque[tuple[float, str, float]] = deque()  # (deadline, device, heard at)
        # Devices last heard before this run (seeded at start): older times, out of FIFO order.
        self._seeded: list[tuple[float, str, float]] = []

    def heard(self, device_id: str, received: float) -> None:
        """The device sent something at ``received`` (non-decreasing across calls)."""
        self.last[device_id] = received
        self._queue.append((received + self.after_s, device_id, received))

    def seed(self, device_id: str, received: float) -> bool:
        """Start the clock of a device not heard yet in this run from when the database last
        heard it (or registered it); False when it was heard already."""
        if device_id in self.last:
            return False
        self.last[device_id] = received
        heapq.heappush(self._seeded, (received + self.after_s, device_id, received))
        return True

    def due(self, now: float) -> Iterator[tuple[str, float, float]]:
        """(device, deadline, last heard) for each device silent past its deadline, once."""
        queue = self._queue
        last = self.last
        while queue and queue[0][0] <= now:
            deadline, device, heard = queue.popleft()
            if last.get(device) == heard:  # not heard from since this entry was queued
                yield device, deadline, heard
        seeded = self._seeded
        while seeded and seeded[0][0] <= now:
            deadline, device, heard = heapq.heappop(seeded)
            if last.get(device) == heard:
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

    def seed(self, device_id: str, last: float) -> bool:
        """A light not heard in this run, last heard (or registered) at ``last``."""
        return self.deadlines.seed(device_id, last)

    def tick(self, now: float) -> None:
        """Raise for registered lights overdue by ``now`` (not for lights known to be without
        supply)."""
        assets = self._catalog.assets
        for device, deadline, last in self.deadlines.due(now):
            if device not in assets:
                continue  # unregistered, or taken out of service since
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
    """A vehicle in service with no position received for its fleet's threshold
    (``offline_after_s`` for buses, ``truck_offline_after_s`` for trucks)."""

    def __init__(self, life: Lifecycle, catalog: Catalog, thresholds: VehicleThresholds) -> None:
        self._life = life
        self._catalog = catalog
        self._t = thresholds
        self._zone = ZoneInfo(thresholds.timezone)
        # One queue per fleet: each keeps its deadlines in FIFO order only with one threshold.
        self._deadlines = {
            Fleet.BUS: Deadlines(thresholds.offline_after_s),
            Fleet.TRUCK: Deadlines(thresholds.truck_offline_after_s),
        }
        self._last_fix: dict[str, tuple[float, float, float, bool]] = {}  # ts, lat, lon, moving
        self._last_moving: dict[str, float] = {}

    def _queue(self, fleet: Fleet) -> Deadlines:
        return self._deadlines[Fleet.TRUCK if fleet is Fleet.TRUCK else Fleet.BUS]

    def heard(self, device_id: str, now: float, fleet: Fleet) -> None:
        """Any message from the vehicle, even an unusable fix: its tracker is online."""
        self._life.fall(AlertKey(VEHICLE_OFFLINE, device_id), now, "vehicle reporting again")
        self._queue(fleet).heard(device_id, now)

    def fix(self, position: Position, moving: bool) -> None:
        """Remember when the vehicle last reported and last moved (device time)."""
        device = position.device_id
        last = self._last_fix.get(device)
        if last is None or position.ts > last[0]:
            self._last_fix[device] = (position.ts, position.lat, position.lon, moving)
        if moving and position.ts > self._last_moving.get(device, float("-inf")):
            self._last_moving[device] = position.ts

    def seed(
        self, device_id: str, fleet: Fleet, received: float, fix: tuple[float, float, float, bool]
    ) -> bool:
        """A vehicle not heard in this run: last received at ``received``, its newest fix
        ``(ts, lat, lon, moving)``. Whether it was in service is judged from that fix alone
        (a stopped last fix gives no evidence of service: no alert)."""
        if not self._queue(fleet).seed(device_id, received):
            return False
        self._last_fix[device_id] = fix
        if fix[3]:
            self._last_moving[device_id] = fix[0]
        return True

    def in_service(self, device_id: str, fleet: Fleet, overdue_at: float) -> bool:
        """Moved recently before its last fix, which was not a stop at its depot, and (buses)
        both that fix and ``overdue_at`` fall within service hours (a bus last heard just before
        the service ends has gone to its depot, not offline)."""
        last = self._last_fix.get(device_id)
        last_moving = self._last_moving.get(device_id)
        if last is None or last_moving is None:
            return False
        last_fix, lat, lon, moving = last
        if last_fix - last_moving > self._t.active_window_s:
            return False  # parked: going quiet is normal
        if not moving and self._at_home(device_id, lat, lon):
            return False  # back at the depot: its tracker goes to hourly reports
        if fleet is Fleet.BUS:
            return all(
                in_hours(datetime.fromtimestamp(t, self._zone).time(), self._t.bus_service)
                for t in (last_fix, overdue_at)
            )
        return True

    def _at_home(self, device_id: str, lat: float, lon: float) -> bool:
        asset = self._catalog.assets.get(device_id)
        if asset is None or asset.lat is None or asset.lon is None:
            return False
        return haversine_m(asset.lat, asset.lon, lat, lon) <= self._t.idle_home_radius_m

    def tick(self, now: float) -> None:
        """Raise for vehicles in service that are overdue by ``now``."""
        assets = self._catalog.assets
        for queue in self._deadlines.values():
            for device, deadline, last in queue.due(now):
                if device in assets:  # else unregistered, or taken out of service since
                    self._overdue(device, deadline, last)

    def _overdue(self, device: str, deadline: float, last: float) -> None:
        subject = self._catalog.subject(device, Fleet.BUS)
        if not self.in_service(device, subject.asset_kind, deadline):
            return
        self._life.rise(
            AlertKey(VEHICLE_OFFLINE, device),
            deadline,
            subject,
            f"{device} offline since {iso(last)}",
            {"last_received": iso(last)},
        )
