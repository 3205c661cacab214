"""Supply losses, grouped: many lights of a circuit (or district) losing mains within a minute
become ONE circuit_outage (or district_outage) alert listing them, not one alert per light.

A supplyLoss waits ``hold_s`` on the receipt clock before it is judged, so the burst of last
gasps a tripped circuit sends is judged together. Then, by device time of the losses:

* a district or circuit group already open for the light -> the light joins it;
* ``district_min_lights`` losses over ``district_min_circuits`` circuits of a district within
  ``window_s`` -> a district_outage listing them, absorbing that district's circuit groups;
* ``circuit_min_lights`` losses in a circuit within ``window_s`` -> a circuit_outage;
* otherwise the light gets its own supplyLoss alert.

Grouping wins: single supplyLoss alerts (and circuit groups) a new group covers are resolved
as "grouped" into it, so none stays open beside it. A group resolves when every listed light
has its supply back. All lights of a district are handled by the same worker (see
``alerts.partition``), so this needs no coordination between workers.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

from alerts.catalog import Catalog
from alerts.config import OutageThresholds
from alerts.effects import AlertKey, Join, Leave, Member, Merge, Subject
from alerts.lifecycle import Lifecycle
from telemetry.topics import Fleet

SUPPLY_LOSS = "supplyLoss"
CIRCUIT_OUTAGE = "circuit_outage"
DISTRICT_OUTAGE = "district_outage"


def circuit_key(circuit: str) -> AlertKey:
    """The dedup key of a circuit's outage alert."""
    return AlertKey(CIRCUIT_OUTAGE, f"circuit:{circuit}")


def district_key(district: str) -> AlertKey:
    """The dedup key of a district's outage alert."""
    return AlertKey(DISTRICT_OUTAGE, f"district:{district}")


@dataclass(slots=True)
class _Start:
    ts: float
    device_id: str
    circuit: str | None


class OutageRule:
    """Supply-loss state of every light this worker owns, and the open group alerts."""

    def __init__(self, life: Lifecycle, catalog: Catalog, thresholds: OutageThresholds) -> None:
        self._life = life
        self._catalog = catalog
        self._t = thresholds
        self.lost: dict[str, float] = {}  # light without mains -> since (device time)
        self._started: dict[str, float] = {}  # light -> start of its latest loss
        self._ended: dict[str, float] = {}  # light -> end of its latest loss
        self._pending: deque[tuple[float, str]] = deque()  # (judge at, light), receipt clock
        self._pending_set: set[str] = set()
        self._starts_c: dict[str, deque[_Start]] = defaultdict(deque)
        self._starts_d: dict[str, deque[_Start]] = defaultdict(deque)
        self._members: dict[AlertKey, set[str]] = {}
        self._group_of: dict[str, AlertKey] = {}
        self._left: set[str] = set()  # group members whose supply came back

    # -- inputs --------------------------------------------------------------------------------

    def supply_lost(self, device_id: str) -> bool:
        """Whether the light is known to be without mains now."""
        return device_id in self.lost

    def lose(self, device_id: str, ts: float, now: float) -> None:
        """A supplyLoss started on a light at device time ``ts``, received at ``now``."""
        if device_id in self.lost:
            return
        self.lost[device_id] = ts
        self._started[device_id] = ts
        self._ended.pop(device_id, None)
        circuit, district = self._where(device_id)
        start = _Start(ts, device_id, circuit)
        if circuit is not None:
            self._remember(self._starts_c[circuit], start)
        if district is not None:
            self._remember(self._starts_d[district], start)
        group = self._open_group(circuit, district)
        if group is not None:
            self._join(group, [device_id])
            return
        self._pending.append((now + self._t.hold_s, device_id))
        self._pending_set.add(device_id)

    def restore(self, device_id: str, ts: float) -> None:
        """The supplyLoss of a light ended at device time ``ts``."""
        self.lost.pop(device_id, None)
        self._ended[device_id] = ts
        if device_id in self._pending_set:
            return  # judged when its hold ends, with its end time
        group = self._group_of.get(device_id)
        if group is not None and self._life.is_active(group):
            self._left.add(device_id)
            self._life.emit(Leave(group, (device_id,), ts))
            if not any(m in self.lost for m in self._members.get(group, ())):
                self._life.fall(group, ts, "supply back on every listed light")
            return
        self._life.fall(AlertKey(SUPPLY_LOSS, device_id), ts, "supply back")

    def tick(self, now: float) -> None:
        """Judge the supply losses whose hold has passed by ``now``."""
        released: dict[tuple[str | None, str | None], list[str]] = defaultdict(list)
        pending = self._pending
        while pending and pending[0][0] <= now:
            _, device = pending.popleft()
            self._pending_set.discard(device)
            released[self._where(device)].append(device)
        for (circuit, district), devices in released.items():
            self._judge(circuit, district, devices)

    def restore_group(self, key: AlertKey, members: dict[str, tuple[float, float | None]]) -> None:
        """Rebuild an unresolved group alert from the database: light -> (since, recovered)."""
        self._members[key] = set(members)
        for device, (since, recovered) in members.items():
            self._group_of[device] = key
            self._started.setdefault(device, since)
            if recovered is None:
                self.lost.setdefault(device, since)
            else:
                self._left.add(device)

    def restore_single(self, device_id: str, since: float) -> None:
        """Rebuild an unresolved supplyLoss alert from the database."""
        self.lost.setdefault(device_id, since)
        self._started.setdefault(device_id, since)

    # -- judgement -------------------------------------------------------------------------------

    def _where(self, device_id: str) -> tuple[str | None, str | None]:
        asset = self._catalog.assets.get(device_id)
        return (None, None) if asset is None else (asset.circuit, asset.district)

    def _remember(self, starts: deque[_Start], start: _Start) -> None:
        starts.append(start)
        horizon = start.ts - 4 * self._t.window_s
        while starts and starts[0].ts < horizon:
            starts.popleft()

    def _open_group(self, circuit: str | None, district: str | None) -> AlertKey | None:
        keys = []
        if district is not None:
            keys.append(district_key(district))
        if circuit is not None:
            keys.append(circuit_key(circuit))
        for key in keys:
            if self._life.is_active(key):
                return key
            self._drop_group(key)
        return None

    def _drop_group(self, key: AlertKey) -> None:
        for device in self._members.pop(key, ()):
            if self._group_of.get(device) == key:
                del self._group_of[device]

    def _judge(self, circuit: str | None, district: str | None, devices: list[str]) -> None:
        group = self._open_group(circuit, district)
        if group is not None:
            self._join(group, devices)
            return
        newest = max(self._started[d] for d in devices)
        if district is not None and self._try_group(
            district_key(district), self._starts_d.get(district), newest
        ):
            return
        if circuit is not None and self._try_group(
            circuit_key(circuit), self._starts_c.get(circuit), newest
        ):
            return
        for device in devices:
            self._single(device)

    def _try_group(self, key: AlertKey, starts: deque[_Start] | None, newest: float) -> bool:
        if not starts:
            return False
        lo = newest - self._t.window_s
        by_device = {s.device_id: s for s in starts if lo <= s.ts <= newest}
        burst = sorted(by_device.values(), key=lambda s: (s.ts, s.device_id))
        if key.kind == DISTRICT_OUTAGE:
            circuits = {s.circuit for s in burst if s.circuit is not None}
            if (
                len(burst) < self._t.district_min_lights
                or len(circuits) < self._t.district_min_circuits
            ):
                return False
        elif len(burst) < self._t.circuit_min_lights:
            return False
        self._open(key, burst)
        return True

    def _member(self, device: str, since: float) -> Member:
        recovered = None if device in self.lost else self._ended.get(device)
        return Member(device, self._where(device)[0], since, recovered)

    def _open(self, key: AlertKey, burst: list[_Start]) -> None:
        at = burst[0].ts
        members = [self._member(s.device_id, s.ts) for s in burst]
        listed = {m.device_id for m in members}
        absorbed: list[AlertKey] = []
        if key.kind == DISTRICT_OUTAGE:
            # Circuit groups of the district become part of the district alert.
            for circuit in sorted({s.circuit for s in burst if s.circuit is not None}):
                ckey = circuit_key(circuit)
                if self._life.is_active(ckey):
                    absorbed.append(ckey)
                    for device in sorted(self._members.get(ckey, ())):
                        if device not in listed:
                            members.append(self._member(device, self._started.get(device, at)))
                            listed.add(device)
        # Grouping wins: every light of the circuit (district) still without supply is listed,
        # also those that lost it before the window and got a single alert then.
        label = key.asset_key.split(":", 1)[1]
        level = 0 if key.kind == CIRCUIT_OUTAGE else 1
        for device in sorted(self.lost):
            if device not in listed and self._where(device)[level] == label:
                members.append(self._member(device, self.lost[device]))
                listed.add(device)
        where = "circuit" if key.kind == CIRCUIT_OUTAGE else "district"
        self._life.rise(
            key,
            at,
            self._subject(key, listed),
            f"{len(members)} lights without supply in {where} {label}",
            {"lights": len(members)},
            tuple(members),
        )
        for ckey in absorbed:
            self._life.emit(Merge(ckey, key, at))
            self._life.forget(ckey)
            self._drop_group(ckey)
        self._members[key] = listed
        for device in sorted(listed):
            self._group_of[device] = key
            self._merge_single(device, key, at)
        if not any(d in self.lost for d in listed):
            self._life.fall(key, max(self._ended.get(d, at) for d in listed), "supply back")

    def _merge_single(self, device: str, key: AlertKey, at: float) -> None:
        single = AlertKey(SUPPLY_LOSS, device)
        if self._life.is_active(single):
            self._life.emit(Merge(single, key, at))
            self._life.forget(single)

    def _join(self, key: AlertKey, devices: list[str]) -> None:
        members = self._members.setdefault(key, set())
        still_lost = [d for d in devices if d in self.lost]
        if still_lost:
            # Lights of a group whose clearing was on hold lost supply again: the same alert.
            at = min(self.lost[d] for d in still_lost)
            self._life.rise(key, at, self._subject(key, members), "")
        # Listed lights are joined again only when they had recovered (they fail anew).
        news = [d for d in devices if d not in members or d in self._left]
        joined = tuple(self._member(d, self._started.get(d, 0.0)) for d in news)
        for device in devices:
            self._left.discard(device)
            members.add(device)
            self._group_of[device] = key
            self._merge_single(device, key, self._started.get(device, 0.0))
        if joined:
            self._life.emit(Join(key, joined))
        back = [d for d in devices if d not in self.lost]
        if back and not any(m in self.lost for m in members):
            self._life.fall(key, max(self._ended[d] for d in back), "supply back")

    def _single(self, device: str) -> None:
        key = AlertKey(SUPPLY_LOSS, device)
        subject = self._catalog.subject(device, Fleet.LIGHT)
        where = f" ({subject.district})" if subject.district else ""
        self._life.rise(
            key, self._started[device], subject, f"supplyLoss on {device}{where}", always=True
        )
        if device not in self.lost:
            self._life.fall(key, self._ended[device], "supply back")

    def _subject(self, key: AlertKey, devices: set[str]) -> Subject:
        label = key.asset_key.split(":", 1)[1]
        assets = [a for d in sorted(devices) if (a := self._catalog.assets.get(d)) is not None]
        points = [(a.lat, a.lon) for a in assets if a.lat is not None and a.lon is not None]
        lat = sum(p[0] for p in points) / len(points) if points else None
        lon = sum(p[1] for p in points) / len(points) if points else None
        if key.kind == CIRCUIT_OUTAGE:
            district = next((a.district for a in assets if a.district is not None), None)
            return Subject(Fleet.LIGHT, None, district, label, lat, lon)
        return Subject(Fleet.LIGHT, None, label, None, lat, lon)
