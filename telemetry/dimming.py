"""The city's dimming profiles (city-facts section 7): step levels by local minute of day, and
their integral over any stretch of a night (pure, standard library only).

The simulators light their fleet with these profiles and energy accounting models the
expected consumption with the same ones, so the two can never drift apart.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

_DAY_MIN: Final = 1440.0


class Profile(StrEnum):
    """Which schedule a light's controller runs."""

    STREET = "street"
    MEDINA = "medina"


#: Step profiles as (from local minute of day, level %); dusk is always before 23:00 here.
STREET_STEPS: Final = ((0, 70.0), (60, 50.0), (300, 80.0), (720, 100.0), (1380, 70.0))
#: During Ramadan (Morocco on UTC+0) streets keep 100 % until 02:00.
RAMADAN_STEPS: Final = ((0, 100.0), (120, 50.0), (300, 80.0), (720, 100.0))
#: The Médina and Jemaa el-Fnaa: 100 % until 02:00, then 70 %.
MEDINA_STEPS: Final = ((0, 100.0), (120, 70.0), (720, 100.0))

#: The district whose lights run the Médina profile.
MEDINA_DISTRICT: Final = "medina"


@dataclass(frozen=True, kw_only=True)
class Steps:
    """A step profile with its running integral, for exact level-minutes over an interval."""

    steps: tuple[tuple[int, float], ...]
    _starts: list[float] = field(init=False, repr=False, compare=False)
    _cumulative: list[float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts = [float(s) for s, _ in self.steps]
        cumulative = [0.0]
        for k, (start, level) in enumerate(self.steps):
            end = starts[k + 1] if k + 1 < len(starts) else _DAY_MIN
            cumulative.append(cumulative[-1] + level * (end - start))
        object.__setattr__(self, "_starts", starts)
        object.__setattr__(self, "_cumulative", cumulative)

    def level(self, minute: float) -> float:
        """Level % at local minute of day ``minute`` (0 <= minute < 1440)."""
        return self.steps[bisect_right(self._starts, minute) - 1][1]

    def level_minutes(self, start: float, end: float) -> float:
        """∫ level % d(minute) from local minute ``start`` to ``end`` of one day
        (0 <= start <= end <= 1440)."""
        return self._integral(end) - self._integral(start)

    def integral_points(self) -> tuple[list[float], list[float]]:
        """(minutes, ∫ level from 0): the integral is linear between them (for ``np.interp``)."""
        return [*self._starts, _DAY_MIN], list(self._cumulative)

    def _integral(self, minute: float) -> float:
        k = max(0, bisect_right(self._starts, minute) - 1)
        return self._cumulative[k] + self.steps[k][1] * (minute - self._starts[k])


STREET: Final = Steps(steps=STREET_STEPS)
RAMADAN: Final = Steps(steps=RAMADAN_STEPS)
MEDINA: Final = Steps(steps=MEDINA_STEPS)


def profile_for(district: str | None) -> Profile:
    """The profile a light of ``district`` runs."""
    return Profile.MEDINA if district == MEDINA_DISTRICT else Profile.STREET


def steps_for(profile: Profile, *, ramadan: bool) -> Steps:
    """The steps of ``profile`` on a day in or out of Ramadan (legal time UTC+0 in Ramadan)."""
    if profile is Profile.MEDINA:
        return MEDINA
    return RAMADAN if ramadan else STREET
