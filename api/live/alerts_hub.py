"""Fan-out of alert changes to WebSocket clients: per-client bounded queues coalesced per alert."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AlertStreamFilter:
    """Which alert changes a client wants (None: any); hashable."""

    districts: frozenset[str] | None = None
    kinds: frozenset[str] | None = None

    def matches(self, district: str | None, kind: str) -> bool:
        """True when the alert's district and kind pass the filter."""
        if self.districts is not None and district not in self.districts:
            return False
        return self.kinds is None or kind in self.kinds


@dataclass(eq=False)
class AlertSubscriber:
    """One client's pending changes: the newest change per alert, in arrival order."""

    filt: AlertStreamFilter
    max_pending: int
    pending: dict[int | str, dict[str, Any]] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False
    resync: bool = False

    def offer(self, alert_id: int | str, frame: dict[str, Any]) -> None:
        """Queue a change, replacing an older pending change of the same alert (or work order:
        ``work_order:{id}``)."""
        self.pending.pop(alert_id, None)
        self.pending[alert_id] = frame
        if len(self.pending) > self.max_pending:
            # Too far behind to catch up change by change: it must start again from a snapshot.
            self.overflowed = True
            self.pending.clear()
        self.wake.set()

    def take(self) -> list[dict[str, Any]]:
        """Every pending change, oldest first; the queue is empty afterwards."""
        frames = list(self.pending.values())
        self.pending.clear()
        self.wake.clear()
        return frames


class AlertHub:
    """The subscribers of one API process."""

    def __init__(self, max_pending: int = 10_000) -> None:
        self.max_pending = max_pending
        self.subscribers: set[AlertSubscriber] = set()

    def subscribe(self, filt: AlertStreamFilter) -> AlertSubscriber:
        """Register a client."""
        subscriber = AlertSubscriber(filt, self.max_pending)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: AlertSubscriber) -> None:
        """Forget a client."""
        self.subscribers.discard(subscriber)

    def publish(
        self, alert_id: int | str, district: str | None, kind: str, frame: Mapping[str, Any]
    ) -> int:
        """Offer one change to every interested client; returns how many."""
        sent = 0
        for subscriber in self.subscribers:
            if subscriber.filt.matches(district, kind):
                subscriber.offer(alert_id, dict(frame))
                sent += 1
        return sent

    def resync_all(self) -> None:
        """Changes may have been missed (LISTEN reconnected): every client re-reads a snapshot."""
        for subscriber in self.subscribers:
            subscriber.resync = True
            subscriber.wake.set()
