"""Day-burning: a lamp lit while the Sun is clearly up at that light's coordinates."""

from __future__ import annotations

import math
from typing import Final

from alerts.config import LightThresholds
from alerts.effects import AlertKey, Subject
from alerts.lifecycle import Lifecycle
from alerts.observations import Energy
from telemetry.reference_data import Asset
from telemetry.solar import elevation_deg
from telemetry.topics import Fleet

KIND = "day_burning"
#: A light that reports the TALQ fault itself gets that alert, not a second one.
TALQ_KIND = "lampUnexpectedOn"

# The Sun's elevation is looked up per city cell and ten minutes, and worked out exactly only
# when the look-up cannot tell that the Sun is low: most readings come at night.
_CELL_DEG: Final = 0.1
_BUCKET_S: Final = 600.0
# How far the elevation at a place and time can be from the one at its cell's centre and
# bucket's middle: elevation is 90 degrees less the Sun's angular distance from the zenith,
# which moves by at most the places' distance (0.05 + 0.05 degrees) plus the Sun's own motion
# (hour angle 0.25 degrees a minute over 5 minutes, declination and equation of time under
# 0.01 degree): 1.36 degrees, rounded up.
_SPREAD_DEG: Final = 1.5
_MAX_SKY: Final = 4096  # cached elevations, forgotten all at once beyond it


def lamp_lit(reading: Energy, min_w: float) -> bool | None:
    """Whether the lamp is on: its own flag, else power above ``min_w``; None if unknown."""
    if reading.lamp_on is not None:
        return reading.lamp_on
    if reading.power_w is None:
        return None
    return reading.power_w > min_w


class DayBurningRule:
    """Counts consecutive lit daylight readings; a dark daylight reading clears."""

    def __init__(self, life: Lifecycle, thresholds: LightThresholds) -> None:
        self._life = life
        self._t = thresholds
        self._lit_runs: dict[str, int] = {}
        self._sky: dict[tuple[int, int, int], float] = {}

    def _sky_near(self, ts: float, lat: float, lon: float) -> float:
        """The elevation at the middle of ``ts``'s bucket and the centre of the place's cell."""
        key = (math.floor(ts / _BUCKET_S), math.floor(lat / _CELL_DEG), math.floor(lon / _CELL_DEG))
        elevation = self._sky.get(key)
        if elevation is None:
            if len(self._sky) >= _MAX_SKY:
                self._sky.clear()
            elevation = self._sky[key] = elevation_deg(
                (key[0] + 0.5) * _BUCKET_S, (key[1] + 0.5) * _CELL_DEG, (key[2] + 0.5) * _CELL_DEG
            )
        return elevation

    def observe(self, reading: Energy, asset: Asset | None) -> None:
        """Judge one reading (night and twilight readings say nothing either way)."""
        if asset is None or asset.lat is None or asset.lon is None:
            return
        lit = lamp_lit(reading, self._t.lamp_on_min_w)
        if lit is None:
            return
        low = self._t.day_burning_min_elevation_deg
        if self._sky_near(reading.ts, asset.lat, asset.lon) + _SPREAD_DEG < low:
            return  # surely below (what the exact elevation below would say): no evidence
        elevation = elevation_deg(reading.ts, asset.lat, asset.lon)
        if elevation < low:
            return  # the photocell may rightly keep it on: no evidence
        device = reading.device_id
        key = AlertKey(KIND, device)
        if not lit:
            self._lit_runs.pop(device, None)
            self._life.fall(key, reading.ts, "lamp off in daylight")
            return
        run = self._lit_runs.get(device, 0) + 1
        self._lit_runs[device] = run
        if run < self._t.day_burning_readings:
            return
        if self._life.is_active(AlertKey(TALQ_KIND, device)):
            return
        self._life.rise(
            key,
            reading.ts,
            Subject(Fleet.LIGHT, device, asset.district, asset.circuit, asset.lat, asset.lon),
            f"{device} lit in daylight (Sun {elevation:.0f} deg up)",
            {"sun_elevation_deg": round(elevation, 1), "power_w": reading.power_w},
        )
