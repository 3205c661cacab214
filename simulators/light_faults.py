"""The streetlight fault catalogue: which TALQ fault, what it does to the lamp, how long."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final


class Effect(Enum):
    """What a fault does to the light besides raising an alarm."""

    NONE = "none"
    DARK = "dark"  # the lamp gives no light and draws no power
    DAY_BURN = "day_burn"  # the lamp stays lit in daylight
    PF_LOW = "pf_low"  # poor power factor: more current for the same power
    SUPPLY = "supply"  # no mains: the controller is dead too, it sends a last gasp
    COMM = "comm"  # the controller cannot reach the network: it stops reporting


class Lasting(Enum):
    """How a fault ends."""

    REPAIR = "repair"  # exponential time to repair (mttr_luminaire_days)
    TRANSIENT = "transient"  # clears by itself (hours)
    INSTANT = "instant"  # an event, ends a second later


@dataclass(frozen=True, slots=True)
class FaultKind:
    """A random fault process of the light fleet (rates in ``FaultRates``, per year)."""

    key: str  # the FaultRates field
    fault: str  # TALQ event type, telemetry.contract.FAULT_NAMES
    effect: Effect
    lasting: Lasting
    detail: str
    techs: tuple[int, ...] = (0, 1, 2)  # lights_layout LED, HPS, FLOOD
    transient_hours: tuple[float, float] = (1.0, 6.0)
    summer_only: bool = False


FAULT_KINDS: Final[tuple[FaultKind, ...]] = (
    FaultKind(
        "led_module_failure",
        "lampFailure",
        Effect.DARK,
        Lasting.REPAIR,
        "LED module open circuit",
        techs=(0,),
    ),
    FaultKind(
        "hps_lamp_failure",
        "lampFailure",
        Effect.DARK,
        Lasting.REPAIR,
        "discharge lamp end of life",
        techs=(1, 2),
    ),
    FaultKind(
        "driver_failure", "controlGearFailure", Effect.DARK, Lasting.REPAIR, "driver output failure"
    ),
    FaultKind(
        "controller_fault",
        "relayFailure",
        Effect.DARK,
        Lasting.REPAIR,
        "controller relay stuck open",
    ),
    FaultKind(
        "comm_loss_transient",
        "communicationFailure",
        Effect.COMM,
        Lasting.TRANSIENT,
        "no contact with the network",
    ),
    FaultKind(
        "day_burning",
        "lampUnexpectedOn",
        Effect.DAY_BURN,
        Lasting.REPAIR,
        "relay stuck closed: lamp lit in daylight",
    ),
    FaultKind(
        "over_temperature",
        "temperatureTooHigh",
        Effect.NONE,
        Lasting.TRANSIENT,
        "controller above 85 C",
        summer_only=True,
    ),
    FaultKind(
        "tilt_or_impact",
        "orientationChanged",
        Effect.NONE,
        Lasting.REPAIR,
        "pole struck: luminaire tilted",
    ),
    FaultKind(
        "power_factor_low",
        "powerFactorTooLow",
        Effect.PF_LOW,
        Lasting.REPAIR,
        "power factor below 0.7",
    ),
)

#: What a scripted TALQ fault does to the lamp (faults not listed only raise the alarm).
SCRIPTED_EFFECT: Final[dict[str, Effect]] = {
    "lampFailure": Effect.DARK,
    "controlGearFailure": Effect.DARK,
    "relayFailure": Effect.DARK,
    "lampUnexpectedOn": Effect.DAY_BURN,
    "powerFactorTooLow": Effect.PF_LOW,
    "supplyLoss": Effect.SUPPLY,
    "communicationFailure": Effect.COMM,
    "stuck_on": Effect.DAY_BURN,
}
#: Scripted effects the controller does not detect: the lamp changes, no fault is sent.
UNREPORTED: Final = frozenset({"stuck_on"})
SUMMER_MONTHS: Final = (6, 7, 8)  # Marrakech above 45 C [A]
