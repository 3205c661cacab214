"""A work order's life: ``open → assigned → in_progress → done`` or ``cancelled``; Rasd reopens a
``done`` order whose fault the telemetry still shows (pure)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from telemetry.errors import TelemetryError


class OrderState(StrEnum):
    """Where a work order stands."""

    OPEN = "open"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


class Step(StrEnum):
    """One recorded step of an order (who, when, note)."""

    OPEN = "open"  # opened by an alert
    JOIN = "join"  # another alert joined it
    ASSIGN = "assign"
    START = "start"
    COMPLETE = "complete"
    CANCEL = "cancel"
    REOPEN = "reopen"  # Rasd: done, but the telemetry still shows the fault
    VERIFY = "verify"  # Rasd: done, and the telemetry shows the fault gone


class OrderStateError(TelemetryError):
    """The step is not allowed from the order's current state (HTTP 409)."""


#: States an alert may still join (the crew has not closed the order).
UNFINISHED: Final = frozenset({OrderState.OPEN, OrderState.ASSIGNED, OrderState.IN_PROGRESS})

_MOVES: Final[dict[Step, dict[OrderState, OrderState]]] = {
    Step.JOIN: {s: s for s in UNFINISHED},
    # Reassigning before the work starts is a dispatch decision; once started, cancel instead.
    Step.ASSIGN: {OrderState.OPEN: OrderState.ASSIGNED, OrderState.ASSIGNED: OrderState.ASSIGNED},
    Step.START: {OrderState.ASSIGNED: OrderState.IN_PROGRESS},
    Step.COMPLETE: {OrderState.IN_PROGRESS: OrderState.DONE},
    Step.CANCEL: {s: OrderState.CANCELLED for s in UNFINISHED},
    Step.VERIFY: {OrderState.DONE: OrderState.DONE},
}

_WHY: Final = {
    Step.JOIN: "only an unfinished order can take more alerts",
    Step.ASSIGN: "only an open or assigned order can be assigned",
    Step.START: "only an assigned order can be started",
    Step.COMPLETE: "only an order in progress can be completed",
    Step.CANCEL: "only an unfinished order can be cancelled",
    Step.REOPEN: "only a done order can be reopened",
    Step.VERIFY: "only a done order can be verified",
}


def allowed(state: OrderState, step: Step) -> bool:
    """Whether ``step`` may be taken from ``state``."""
    if step is Step.REOPEN:
        return state is OrderState.DONE
    return state in _MOVES.get(step, {})


def next_state(state: OrderState, step: Step, *, assigned: bool = False) -> OrderState:
    """The state after ``step`` from ``state``; OrderStateError when it is not allowed.

    A reopened order goes back to its crew (``assigned``) when it had one, else to ``open``."""
    if not allowed(state, step):
        raise OrderStateError(f"is {state.value}: {_WHY.get(step, 'not allowed')}")
    if step is Step.REOPEN:
        return OrderState.ASSIGNED if assigned else OrderState.OPEN
    return _MOVES[step][state]
