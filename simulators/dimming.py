"""Dimming profiles by local time (city-facts section 7), vectorised over minutes of the day."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from telemetry.dimming import MEDINA_STEPS, RAMADAN_STEPS, STREET_STEPS

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# The profiles are telemetry's, so energy accounting models the same schedules.
_DEFAULT = STREET_STEPS
_RAMADAN = RAMADAN_STEPS
_MEDINA = MEDINA_STEPS


def _levels(profile: tuple[tuple[int, float], ...], minute: FloatArray) -> FloatArray:
    starts = np.array([p[0] for p in profile], dtype=np.float64)
    values = np.array([p[1] for p in profile], dtype=np.float64)
    result: FloatArray = values[np.searchsorted(starts, minute, side="right") - 1]
    return result


def street_levels(minute: FloatArray, ramadan: BoolArray) -> FloatArray:
    """Level % of ordinary streets: 100 at dusk, 70 from 23:00, 50 from 01:00, 80 from 05:00."""
    return np.where(ramadan, _levels(_RAMADAN, minute), _levels(_DEFAULT, minute))


def medina_levels(minute: FloatArray) -> FloatArray:
    """Level % in the Médina: 100 until 02:00, then 70."""
    return _levels(_MEDINA, minute)
