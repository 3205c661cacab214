"""A streetlight's status for the map: on, dimmed, off, faulty or silent (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final


class LightStatus(StrEnum):
    """What the map colours a light by; the order of the codes is the compact format's."""

    ON = "on"
    DIMMED = "dimmed"
    OFF = "off"
    FAULTY = "faulty"
    SILENT = "silent"


STATUS_CODES: Final[dict[LightStatus, int]] = {s: i for i, s in enumerate(LightStatus)}


def light_status(
    *,
    last_reading: datetime | None,
    lamp_on: bool | None,
    dim_pct: float | None,
    active_faults: int,
    now: datetime,
    silent_after: timedelta,
) -> LightStatus:
    """Classify a light: an open fault wins, then silence, then the lamp state it reported."""
    if active_faults:
        return LightStatus.FAULTY
    if last_reading is None or now - last_reading > silent_after:
        return LightStatus.SILENT
    if not lamp_on:
        return LightStatus.OFF
    if dim_pct is not None and dim_pct < 100:
        return LightStatus.DIMMED
    return LightStatus.ON
