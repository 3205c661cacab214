"""TALQ fault events: every fault start opens an alert of that fault's name, its end clears it."""

from __future__ import annotations

from alerts.catalog import Catalog
from alerts.effects import AlertKey
from alerts.lifecycle import Lifecycle
from alerts.observations import Fault
from telemetry.topics import Fleet


class FaultRule:
    """One alert per light and fault name; ``active: false`` resolves it (after the hold)."""

    def __init__(self, life: Lifecycle, catalog: Catalog) -> None:
        self._life = life
        self._catalog = catalog

    def observe(self, fault: Fault) -> None:
        """Apply one (already de-duplicated, in order) fault event."""
        key = AlertKey(fault.fault, fault.device_id)
        if fault.active:
            subject = self._catalog.subject(fault.device_id, Fleet.LIGHT)
            where = f" ({subject.district})" if subject.district else ""
            self._life.rise(
                key,
                fault.ts,
                subject,
                f"{fault.fault} on {fault.device_id}{where}",
                {"detail": fault.detail} if fault.detail else None,
                always=True,
            )
        else:
            self._life.fall(key, fault.ts, fault.detail or "fault cleared by the device")


class FaultOrder:
    """Keeps fault events per light and fault in device-time order, dropping repeats."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[float, bool]] = {}

    def fresh(self, fault: Fault) -> bool:
        """False for a duplicate or an event older than the last one seen."""
        pair = (fault.device_id, fault.fault)
        previous = self._last.get(pair)
        if previous is not None and (
            fault.ts < previous[0] or (fault.ts == previous[0] and fault.active == previous[1])
        ):
            return False
        self._last[pair] = (fault.ts, fault.active)
        return True
