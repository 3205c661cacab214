"""Which work order an alert opens or joins (pure).

An alert's *scope* is what a crew visit fixes: a pole (a luminaire on a wall stands for its
own pole), a circuit for a circuit outage, a district for a district outage; a light missing
from the register is its own scope. An alert joins the unfinished order of its own scope (a
lamp failure on a pole with an open order joins it, whatever that order's kind); a supply
alert also joins a supply order of a wider scope that covers it (a light losing mains in a
circuit whose outage has an order). The narrowest covering order wins. An order done but not
yet verified also takes its scope's new alerts: the fault came back, so it is reopened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from telemetry.work_orders.states import UNFINISHED, OrderState

SUPPLY_KINDS: Final = frozenset({"supplyLoss", "circuit_outage", "district_outage"})
CIRCUIT_OUTAGE: Final = "circuit_outage"
DISTRICT_OUTAGE: Final = "district_outage"


class ScopeLevel(StrEnum):
    """How wide an order's scope is, narrowest first."""

    LIGHT = "light"
    POLE = "pole"
    CIRCUIT = "circuit"
    DISTRICT = "district"


@dataclass(frozen=True, kw_only=True)
class Place:
    """Where an alert's fault is: its light and the register's pole, circuit and district."""

    device_id: str | None = None
    pole_id: str | None = None  # the pole asset, or the luminaire of a fitting without one
    circuit: str | None = None
    district: str | None = None


@dataclass(frozen=True, kw_only=True)
class Scope:
    """An order's scope: its level and key (``pole:P-1``, ``circuit:C-001``, ...)."""

    level: ScopeLevel
    key: str


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """An order an alert might join."""

    work_order_id: int
    scope_key: str
    kind: str
    state: OrderState
    verified: bool  # a done order Rasd has already checked (or reopened) takes nothing


def scope_of(kind: str, place: Place) -> Scope | None:
    """The scope an alert of ``kind`` at ``place`` opens an order for; None when it has none."""
    if kind == DISTRICT_OUTAGE:
        return _scope(ScopeLevel.DISTRICT, place.district)
    if kind == CIRCUIT_OUTAGE:
        return _scope(ScopeLevel.CIRCUIT, place.circuit)
    if place.pole_id is not None:
        return _scope(ScopeLevel.POLE, place.pole_id)
    return _scope(ScopeLevel.LIGHT, place.device_id)


def _scope(level: ScopeLevel, name: str | None) -> Scope | None:
    return None if name is None else Scope(level=level, key=f"{level.value}:{name}")


def covering_keys(kind: str, place: Place) -> list[str]:
    """Scope keys whose orders may take this alert, narrowest first (its own first)."""
    own = scope_of(kind, place)
    if own is None:
        return []
    keys = [own.key]
    if kind in SUPPLY_KINDS:
        order = list(ScopeLevel)
        wider_names = ((ScopeLevel.CIRCUIT, place.circuit), (ScopeLevel.DISTRICT, place.district))
        for level, name in wider_names:
            wider = _scope(level, name)
            if wider is not None and order.index(level) > order.index(own.level):
                keys.append(wider.key)
    return keys


def order_to_join(kind: str, place: Place, candidates: Sequence[Candidate]) -> Candidate | None:
    """The order this alert joins, or None when it opens its own.

    Per covering key, narrowest first: an unfinished order first, else a done order not yet
    verified; a wider scope's order only when it is a supply order and the alert one too."""
    keys = covering_keys(kind, place)
    for index, key in enumerate(keys):
        fitting = [
            c
            for c in candidates
            if c.scope_key == key
            and (index == 0 or c.kind in SUPPLY_KINDS)
            and (c.state in UNFINISHED or (c.state is OrderState.DONE and not c.verified))
        ]
        if fitting:
            return min(fitting, key=lambda c: (c.state not in UNFINISHED, c.work_order_id))
    return None
