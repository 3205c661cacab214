"""The modelled consumption (the UK unmetered-supply method from Rasd's own inventory): each
light's circuit watts × its dimming level × its burning hours from an astronomical clock at
its own place, per local day (pure; numpy over the whole fleet at once).

A night is split at local midnight, so every local day holds its early-morning burning
(midnight to sunrise) and its evening burning (sunset to midnight): a month is the sum of
its days. The sun comes from ``telemetry.solar`` and the levels from ``telemetry.dimming``,
the same code the simulators and the alert rules use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from telemetry.dimming import MEDINA, RAMADAN, STREET, Profile, Steps
from telemetry.energy_accounting.tariffs import Band
from telemetry.solar import SUNRISE_ELEVATION_DEG, declination_and_eqtime

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: The city's clock (bills, months and dimming schedules are local).
TIMEZONE: Final = "Africa/Casablanca"
_DAY_MIN: Final = 1440.0

#: What a discharge lamp draws above its lamp rating through its control gear: the UK
#: charge-code idea of "circuit watts" (lamp plus gear). LED ratings are system power already.
#: The sodium and metal-halide figures are the simulators' ballast factors (magnetic gear
#: losses of 8-12 %, up to 25 % for old ballasts).
GEAR_FACTOR: Final[dict[str, float]] = {"LED": 1.0, "HPS": 1.12, "LPS": 1.12, "MH": 1.08}


def circuit_watts(
    model_w: float | None, nameplate_w: float | None, light_source: str | None
) -> float:
    """What a light draws at full level: its catalogue model's power consumption (TALQ
    powerConsumption, gear included), else the registry's lamp rating plus its gear's losses."""
    if model_w is not None:
        return model_w
    source = (light_source or "LED").upper()
    return (nameplate_w or 0.0) * GEAR_FACTOR.get(source, 1.0)


#: Light sources a controller can dim (the others burn at 100 %).
DIMMABLE: Final = frozenset({"LED"})


@dataclass(frozen=True, kw_only=True)
class Clock:
    """How the modelled lights switch: on when the Sun is below ``switch_elevation_deg``."""

    switch_elevation_deg: float = SUNRISE_ELEVATION_DEG
    timezone: str = TIMEZONE


@dataclass(frozen=True, kw_only=True)
class DayGrid:
    """Local days with the UTC epoch of their midnights and their legal offset."""

    days: list[date]
    midnight: FloatArray  # epoch of each day's local 00:00, and one more for the day after
    offset_s: FloatArray  # UTC offset at local noon
    midnight_offset_s: FloatArray  # UTC offset at local 00:00
    ramadan: BoolArray  # legal time UTC+0: Ramadan's schedule (decree 2.18.855)

    @property
    def elapsed_s(self) -> FloatArray:
        """Seconds in each local day (23 or 25 hours on a clock change)."""
        result: FloatArray = np.diff(self.midnight)
        return result


def day_grid(days: Sequence[date], timezone: str = TIMEZONE) -> DayGrid:
    """The grid of consecutive local ``days``."""
    tz = ZoneInfo(timezone)
    days = list(days)
    ends = [*days, days[-1] + timedelta(days=1)] if days else []
    midnight = np.array([datetime.combine(d, time(), tz).timestamp() for d in ends])
    offset_s = np.array([_offset(d, time(12), tz) for d in days], dtype=np.float64)
    at_midnight = np.array([_offset(d, time(), tz) for d in days], dtype=np.float64)
    return DayGrid(
        days=days,
        midnight=midnight,
        offset_s=offset_s,
        midnight_offset_s=at_midnight,
        ramadan=offset_s == 0,
    )


def _offset(day: date, at: time, tz: ZoneInfo) -> float:
    offset = datetime.combine(day, at, tz).utcoffset()
    assert offset is not None
    return offset.total_seconds()


def sun_times(
    lat: FloatArray, lon: FloatArray, grid: DayGrid, elevation_deg: float
) -> tuple[FloatArray, FloatArray]:
    """UTC epoch seconds at which the Sun crosses ``elevation_deg`` rising and setting on each
    day (rows: places, columns: days); a polar day or night gives NaN."""
    noon = grid.midnight[:-1] + grid.elapsed_s / 2
    decl, eqtime = declination_and_eqtime(noon, np.cos, np.sin)
    phi = np.radians(lat)[:, None]
    cos_h = (math.sin(math.radians(elevation_deg)) - np.sin(phi) * np.sin(decl)[None, :]) / (
        np.cos(phi) * np.cos(decl)[None, :]
    )
    h = np.degrees(np.arccos(np.where(np.abs(cos_h) <= 1.0, cos_h, np.nan)))
    # Minutes from the UTC midnight of the UTC day holding the local noon.
    utc_midnight = np.floor(noon / 86_400.0) * 86_400.0
    lon_col = lon[:, None]
    rise = utc_midnight + (720.0 - 4.0 * (lon_col + h) - eqtime[None, :]) * 60.0
    sets = utc_midnight + (720.0 - 4.0 * (lon_col - h) - eqtime[None, :]) * 60.0
    return rise, sets


@dataclass(frozen=True, kw_only=True)
class Modelled:
    """Per light (rows) and local day (columns): modelled Wh, Wh at full level, burning hours."""

    energy_wh: FloatArray
    full_wh: FloatArray
    burning_h: FloatArray


def _profile_steps(profile: Profile, ramadan: bool) -> Steps:
    if profile is Profile.MEDINA:
        return MEDINA
    return RAMADAN if ramadan else STREET


def _level_minutes(steps: Steps, start: FloatArray, end: FloatArray) -> FloatArray:
    """∫ level from local minute ``start`` to ``end`` (elementwise, 0 <= start <= end <= 1440)."""
    xs, ys = steps.integral_points()
    result: FloatArray = np.interp(end, xs, ys) - np.interp(start, xs, ys)
    return result


def burning_windows(
    lat: FloatArray, lon: FloatArray, grid: DayGrid, clock: Clock
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per place and local day: (morning end, evening start) as local wall minutes, and the
    morning and evening burning as elapsed minutes."""
    rise, sets = sun_times(lat, lon, grid, clock.switch_elevation_deg)
    start = grid.midnight[:-1][None, :]
    length = (grid.elapsed_s / 60.0)[None, :]
    rise_el = np.clip((rise - start) / 60.0, 0.0, length)
    set_el = np.clip((sets - start) / 60.0, 0.0, length)
    # Polar night: burns all day; polar day: never (not Marrakech, but stay defined).
    polar = np.isnan(rise_el)
    rise_el = np.where(polar, length / 2, rise_el)
    set_el = np.where(polar, length / 2, set_el)
    # Wall-clock minutes: the day's legal offset holds from 03:00 at the latest, before any
    # sunrise, so the noon offset applies to both crossings.
    shift = (grid.offset_s - grid.midnight_offset_s) / 60.0
    rise_wall = np.clip(rise_el + shift[None, :], 0.0, _DAY_MIN)
    set_wall = np.clip(set_el + shift[None, :], 0.0, _DAY_MIN)
    morning = rise_el
    evening = length - set_el
    return rise_wall, set_wall, morning, evening


def level_minutes(
    steps_of: Sequence[Steps],
    rise_wall: FloatArray,
    set_wall: FloatArray,
    morning: FloatArray,
    evening: FloatArray,
) -> FloatArray:
    """∫ level d(minute) over each row's burning on each day, the row's steps per day
    (``steps_of[day]``); a clock change's missing or doubled hour counts as elapsed time."""
    out = np.zeros_like(rise_wall)
    for k, steps in enumerate(steps_of):
        zero = np.zeros(rise_wall.shape[0])
        full = np.full(rise_wall.shape[0], _DAY_MIN)
        m_wall = rise_wall[:, k]
        e_wall = set_wall[:, k]
        morning_lm = _level_minutes(steps, zero, m_wall)
        evening_lm = _level_minutes(steps, e_wall, full)
        # Mean wall-clock level times elapsed minutes.
        m_scale = np.divide(morning[:, k], m_wall, out=np.zeros_like(m_wall), where=m_wall > 0)
        e_wall_len = _DAY_MIN - e_wall
        e_scale = np.divide(
            evening[:, k], e_wall_len, out=np.zeros_like(e_wall_len), where=e_wall_len > 0
        )
        out[:, k] = morning_lm * m_scale + evening_lm * e_scale
    return out


def model_lights(
    *,
    lat: FloatArray,
    lon: FloatArray,
    circuit_w: FloatArray,
    light_source: Sequence[str | None],
    profile: Sequence[Profile],
    grid: DayGrid,
    clock: Clock,
) -> Modelled:
    """The modelled energy of every light (``circuit_w`` at full level) on every day of
    ``grid``."""
    n = lat.shape[0]
    if n == 0:
        empty = np.zeros((0, len(grid.days)))
        return Modelled(energy_wh=empty, full_wh=empty.copy(), burning_h=empty.copy())
    dimmable = np.array([(s or "LED").upper() in DIMMABLE for s in light_source])
    rise_wall, set_wall, morning, evening = burning_windows(lat, lon, grid, clock)
    burn_min = morning + evening
    level = np.zeros_like(burn_min)
    medina = np.array([p is Profile.MEDINA for p in profile])
    for is_medina in (False, True):
        rows = np.flatnonzero((medina == is_medina) & dimmable)
        if rows.size == 0:
            continue
        steps_of = [
            _profile_steps(Profile.MEDINA if is_medina else Profile.STREET, bool(r))
            for r in grid.ramadan
        ]
        level[rows] = level_minutes(
            steps_of, rise_wall[rows], set_wall[rows], morning[rows], evening[rows]
        )
    fixed = np.flatnonzero(~dimmable)
    level[fixed] = burn_min[fixed] * 100.0
    col = circuit_w[:, None]
    return Modelled(
        energy_wh=col * level / 100.0 / 60.0,
        full_wh=col * burn_min / 60.0,
        burning_h=burn_min / 60.0,
    )


def band_steps(profile_steps: Steps, band: Band, month: int, *, dimmable: bool) -> Steps:
    """A step profile that is ``profile_steps``'s level inside ``band`` (in ``month``) and 0
    outside: its integral is the level-minutes spent in the band."""
    cuts = {float(s) for s, _ in profile_steps.steps} | {0.0}
    for a, b in band.minutes():
        cuts |= {float(a), float(b)}
    points = sorted(c for c in cuts if c < _DAY_MIN)
    steps = []
    for p in points:
        level = profile_steps.level(p) if dimmable else 100.0
        steps.append((int(p), level if band.covers(p, month) else 0.0))
    return Steps(steps=tuple(steps))


def band_shares(
    *,
    lat: float,
    lon: float,
    profile: Profile,
    dimmable: bool,
    bands_by_day: Sequence[Sequence[Band]],
    grid: DayGrid,
    clock: Clock,
) -> dict[str, float]:
    """The share of a cabinet's modelled energy falling in each tariff band over ``grid``'s
    days (``bands_by_day[k]``: the bands of day k's tariff version)."""
    rise_wall, set_wall, morning, evening = burning_windows(
        np.array([lat]), np.array([lon]), grid, clock
    )
    totals: dict[str, float] = {}
    for k, bands in enumerate(bands_by_day):
        base = _profile_steps(profile, bool(grid.ramadan[k]))
        month = grid.days[k].month
        for band in bands:
            steps = band_steps(base, band, month, dimmable=dimmable)
            value = level_minutes(
                [steps],
                rise_wall[:, k : k + 1],
                set_wall[:, k : k + 1],
                morning[:, k : k + 1],
                evening[:, k : k + 1],
            )
            totals[band.name] = totals.get(band.name, 0.0) + float(value[0, 0])
    total = sum(totals.values())
    return {k: v / total for k, v in totals.items()} if total > 0 else {}
