"""Conditions to alerts: one alert per condition episode, with flapping suppression (pure).

Rules say when a condition rises and falls; this turns that into effects. A fall does not
resolve at once: the alert waits ``clear_hold_s`` (per kind) on the receipt clock, and if the
condition rises again meanwhile the same alert stays open (a ``Flap``). The resolution time
recorded is still the moment the condition cleared.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alerts.config import Thresholds
from alerts.effects import AlertKey, Clear, Effect, Flap, Member, Raise, Subject


@dataclass(slots=True)
class _Condition:
    since: float
    clearing_at: float | None = None
    clear_note: str = ""
    generation: int = 0  # bumped on each fall, so stale hold deadlines are ignored


class Lifecycle:
    """Tracks which conditions are active and collects the effects of their changes."""

    def __init__(self, thresholds: Thresholds) -> None:
        self.thresholds = thresholds
        self.effects: list[Effect] = []
        self._active: dict[AlertKey, _Condition] = {}
        self._holds: list[tuple[float, int, AlertKey, int]] = []
        self._order = itertools.count()
        self._hold_cache: dict[str, float] = {}

    def is_active(self, key: AlertKey) -> bool:
        """True while the condition holds or its clearing is on hold."""
        return key in self._active

    def is_clearing(self, key: AlertKey) -> bool:
        """True while the condition has cleared but its hold has not passed."""
        condition = self._active.get(key)
        return condition is not None and condition.clearing_at is not None

    def active_keys(self) -> list[AlertKey]:
        """Every active condition (for tests and metrics)."""
        return sorted(self._active)

    def restore(self, key: AlertKey, since: float) -> None:
        """Mark a condition active because its alert is unresolved in the database."""
        self._active.setdefault(key, _Condition(since))

    def rise(
        self,
        key: AlertKey,
        at: float,
        subject: Subject,
        summary: str,
        details: Mapping[str, Any] | None = None,
        members: tuple[Member, ...] = (),
        *,
        always: bool = False,
    ) -> None:
        """The condition holds at ``at``: raise an alert if it was not active.

        ``always`` raises even when active (fault events: if a person resolved the alert
        while the device kept the fault, a new fault event opens a new alert; the store
        opens nothing when an unresolved alert already covers it).
        """
        condition = self._active.get(key)
        if condition is not None:
            if condition.clearing_at is not None:
                condition.clearing_at = None
                condition.generation += 1
                self.effects.append(Flap(key, at))
                return
            if not always:
                return
        else:
            self._active[key] = _Condition(at)
        policy = self.thresholds.policy(key.kind)
        sla = None if policy.sla_hours is None else at + policy.sla_hours * 3600.0
        self.effects.append(
            Raise(
                key,
                at,
                subject,
                policy.severity,
                self.thresholds.crew(subject.district, subject.asset_kind.value),
                sla,
                summary,
                dict(details or {}),
                members,
                self.thresholds.escalation_times(key.kind, at),
            )
        )

    def fall(self, key: AlertKey, at: float, note: str) -> None:
        """The condition ended at ``at``: resolve after the clear hold (no-op if inactive)."""
        condition = self._active.get(key)
        if condition is None or condition.clearing_at is not None:
            return
        hold = self._hold(key.kind)
        if hold <= 0:
            del self._active[key]
            self.effects.append(Clear(key, at, note))
            return
        condition.clearing_at = at
        condition.clear_note = note
        condition.generation += 1
        heapq.heappush(self._holds, (at + hold, next(self._order), key, condition.generation))

    def forget(self, key: AlertKey) -> None:
        """Drop a condition whose alert was resolved another way (merged into a group)."""
        self._active.pop(key, None)

    def emit(self, effect: Effect) -> None:
        """Pass through an effect that is not a rise or fall (group membership, details)."""
        self.effects.append(effect)

    def tick(self, now: float) -> None:
        """Resolve the conditions whose clear hold has passed by ``now`` (receipt clock)."""
        holds = self._holds
        while holds and holds[0][0] <= now:
            _, _, key, generation = heapq.heappop(holds)
            condition = self._active.get(key)
            if condition is None or condition.generation != generation:
                continue  # came back (flap) or already gone
            if condition.clearing_at is None:
                continue
            del self._active[key]
            self.effects.append(Clear(key, condition.clearing_at, condition.clear_note))

    def take(self) -> list[Effect]:
        """The effects collected since the last call."""
        effects, self.effects = self.effects, []
        return effects

    def _hold(self, kind: str) -> float:
        hold = self._hold_cache.get(kind)
        if hold is None:
            hold = self._hold_cache[kind] = self.thresholds.clear_hold_s(kind)
        return hold
