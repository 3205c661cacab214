"""Day-burning: a lamp lit while the Sun is clearly up at that light's coordinates."""

from __future__ import annotations

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

    def observe(self, reading: Energy, asset: Asset | None) -> None:
        """Judge one reading (night and twilight readings say nothing either way)."""
        if asset is None or asset.lat is None or asset.lon is None:
            return
        lit = lamp_lit(reading, self._t.lamp_on_min_w)
        if lit is None:
            return
        elevation = elevation_deg(reading.ts, asset.lat, asset.lon)
        if elevation < self._t.day_burning_min_elevation_deg:
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
