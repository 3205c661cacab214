"""The rule engine: observations in, effects out; pure and deterministic given its clock.

Two times matter. Rules about what a device reported run on device time (``ts``). Silence,
offline, clear holds, supply-loss holds and end-of-shift judgements run on the engine clock
``now``: the receipt time of the newest observation, advanced by ``tick(now)`` (wall clock in
the service, a scripted clock in tests, replayed receipt times during catch-up).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from alerts.catalog import Catalog
from alerts.config import Thresholds
from alerts.effects import AlertKey, Effect
from alerts.lifecycle import Lifecycle
from alerts.observations import Energy, Fault, NullFix, Observation, Position
from alerts.rules.collection import CollectionRule
from alerts.rules.day_burning import DayBurningRule
from alerts.rules.energy import EnergyRule
from alerts.rules.faults import FaultOrder, FaultRule
from alerts.rules.idle import IdleRule
from alerts.rules.outage import (
    CIRCUIT_OUTAGE,
    DISTRICT_OUTAGE,
    SUPPLY_LOSS,
    OutageRule,
)
from alerts.rules.route import RouteRule
from alerts.rules.silence import SilentLightRule, VehicleOfflineRule
from alerts.rules.speeding import SpeedingRule
from alerts.rules.tracker import TrackerRule
from telemetry.alert_records import Alert, AlertMember
from telemetry.geometry import haversine_m
from telemetry.reference_data import LastHeard
from telemetry.topics import Fleet

_NEVER = float("-inf")


class Engine:
    """Every rule for the devices of one worker."""

    def __init__(self, thresholds: Thresholds, catalog: Catalog, *, now: float = 0.0) -> None:
        self.thresholds = thresholds
        self.catalog = catalog
        self.now = now
        self.life = Lifecycle(thresholds)
        self.observed = 0
        life, vehicles = self.life, thresholds.vehicles
        self.outage = OutageRule(life, catalog, thresholds.outage)
        self.faults = FaultRule(life, catalog)
        self.day_burning = DayBurningRule(life, thresholds.lights)
        self.energy = EnergyRule(life, thresholds.lights)
        self.silent = SilentLightRule(life, catalog, thresholds.lights, self.outage.supply_lost)
        self.offline = VehicleOfflineRule(life, catalog, vehicles)
        self.speeding = SpeedingRule(life, catalog, vehicles)
        self.idle = IdleRule(life, catalog, vehicles)
        self.route = RouteRule(life, catalog, vehicles)
        self.tracker = TrackerRule(life, catalog, vehicles)
        self.collection = CollectionRule(life, catalog, vehicles)
        self._fault_order = FaultOrder()
        self._last_fix: dict[str, tuple[float, float, float]] = {}  # device -> (ts, lat, lon)
        self._last_energy: dict[str, float] = {}

    # -- input -------------------------------------------------------------------------------

    def observe(self, observation: Observation) -> None:
        """Feed one observation; effects accumulate until ``take``."""
        self.observed += 1
        if observation.received > self.now:
            self.now = observation.received
        if self.collection.observed_from is None:
            self.collection.observed_from = self.now
        if isinstance(observation, Energy):
            self._energy(observation)
        elif isinstance(observation, Position):
            self._position(observation)
        elif isinstance(observation, Fault):
            self._fault(observation)
        else:
            self._null_fix(observation)

    def observe_all(self, observations: Iterable[Observation]) -> None:
        """Feed many observations in order."""
        for observation in observations:
            self.observe(observation)

    def tick(self, now: float) -> None:
        """Advance the clock: silences, holds and shift ends due by ``now`` take effect."""
        if now > self.now:
            self.now = now
        now = self.now
        self.outage.tick(now)
        self.silent.tick(now)
        self.offline.tick(now)
        self.collection.tick(now)
        self.life.tick(now)

    def take(self) -> list[Effect]:
        """The effects decided since the last call, in order."""
        return self.life.take()

    # -- rebuild -------------------------------------------------------------------------------

    def restore(self, alerts: Iterable[Alert], members: Mapping[int, list[AlertMember]]) -> None:
        """Seed the engine with the unresolved alerts of its devices (state from the database)."""
        for alert in alerts:
            since = alert.opened_at.timestamp()
            key = AlertKey(alert.kind, alert.asset_key)
            self.life.restore(key, since)
            if alert.kind in (CIRCUIT_OUTAGE, DISTRICT_OUTAGE):
                listed = {
                    m.device_id: (
                        m.since.timestamp(),
                        None if m.recovered_at is None else m.recovered_at.timestamp(),
                    )
                    for m in members.get(alert.alert_id, [])
                }
                self.outage.restore_group(key, listed)
            elif alert.kind == SUPPLY_LOSS and alert.device_id is not None:
                self.outage.restore_single(alert.device_id, since)

    def reconcile(self, unresolved: set[tuple[str, str]]) -> list[AlertKey]:
        """Forget conditions whose alert a person resolved; returns the keys dropped.

        The condition is judged afresh from the next evidence: a fault needs a new fault
        event, a reading-based rule re-raises at its next bad reading, a resolved outage group
        lets new supply losses form new alerts instead of joining a closed one.
        """
        dropped = [
            key
            for key in self.life.active_keys()
            if (key.kind, key.asset_key) not in unresolved and not self.life.is_clearing(key)
        ]
        for key in dropped:
            self.life.forget(key)
        return dropped

    def seed_silence(self, devices: Iterable[LastHeard]) -> int:
        """Start the silence clocks of devices not heard during catch-up from what the database
        last heard from them (lights never heard: from their registration), so a device silent
        since before this start is reported too. Returns how many were seeded."""
        seeded = 0
        moving_kmh = self.thresholds.vehicles.moving_kmh
        for d in devices:
            if d.fleet is Fleet.LIGHT:
                since = d.received_at or d.registered_at
                seeded += self.silent.seed(d.device_id, since.timestamp())
            elif d.received_at is not None and d.fix_time is not None:
                assert d.lat is not None and d.lon is not None
                moving = d.speed_kmh is not None and d.speed_kmh >= moving_kmh
                fix = (d.fix_time.timestamp(), d.lat, d.lon, moving)
                seeded += self.offline.seed(d.device_id, d.fleet, d.received_at.timestamp(), fix)
        return seeded

    def begin(self, observed_from: float) -> None:
        """Declare that readings are complete from ``observed_from`` on (catch-up start)."""
        self.collection.observed_from = observed_from
        if observed_from > self.now:
            self.now = observed_from

    # -- dispatch -------------------------------------------------------------------------------

    def _energy(self, reading: Energy) -> None:
        device = reading.device_id
        if reading.ts <= self._last_energy.get(device, _NEVER):
            # A duplicate or a redelivery (restart): says nothing new, not even "alive now".
            return
        self._last_energy[device] = reading.ts
        self.silent.heard(device, self.now)
        asset = self.catalog.assets.get(device)
        self.day_burning.observe(reading, asset)
        self.energy.observe(reading, asset)

    def _fault(self, fault: Fault) -> None:
        if not self._fault_order.fresh(fault):
            return
        self.silent.heard(fault.device_id, self.now)
        if fault.fault == SUPPLY_LOSS:
            if fault.active:
                self.outage.lose(fault.device_id, fault.ts, self.now)
            else:
                self.outage.restore(fault.device_id, fault.ts)
            return
        self.faults.observe(fault)

    def _fleet(self, device_id: str, reported: Fleet | None) -> Fleet:
        asset = self.catalog.assets.get(device_id)
        if asset is not None:
            return asset.fleet
        return reported or Fleet.BUS

    def _null_fix(self, fix: NullFix) -> None:
        last = self._last_fix.get(fix.device_id)
        if last is not None and fix.ts <= last[0]:
            return  # stale or redelivered
        fleet = self._fleet(fix.device_id, None)
        self.offline.heard(fix.device_id, self.now, fleet)
        self.tracker.null_fix(fix, fleet)

    def _moving(self, position: Position) -> bool:
        if position.speed_kmh is not None:
            return position.speed_kmh >= self.thresholds.vehicles.moving_kmh
        last = self._last_fix.get(position.device_id)
        if last is None or position.ts <= last[0]:
            return False
        metres = haversine_m(last[1], last[2], position.lat, position.lon)
        return metres / (position.ts - last[0]) * 3.6 >= self.thresholds.vehicles.moving_kmh

    def _position(self, position: Position) -> None:
        device = position.device_id
        last = self._last_fix.get(device)
        if last is not None and position.ts <= last[0]:
            # Duplicate, overtaken or redelivered after a restart: device-time rules need fixes
            # in order, and an old fix is no sign the tracker is online now. It still shows
            # where a truck stopped, which is all a collection round needs.
            if position.ts < last[0]:
                self.collection.late(position, self.catalog.assets.get(device))
            return
        asset = self.catalog.assets.get(device)
        fleet = asset.fleet if asset is not None else (position.fleet or Fleet.BUS)
        self.offline.heard(device, self.now, fleet)
        moving = self._moving(position)
        self._last_fix[device] = (position.ts, position.lat, position.lon)
        self.offline.fix(position, moving)
        if not self.tracker.observe(position, fleet):
            return  # a position the tracker cannot have had: no other rule may trust it
        self.speeding.observe(position, fleet)
        if fleet is Fleet.TRUCK:
            self.idle.observe(position, moving, asset)
            self.collection.observe(position, asset)
        else:
            self.route.observe(position, moving, asset)
