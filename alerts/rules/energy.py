"""Energy anomaly: a lit lamp drawing far from rated wattage x dim level, several times running."""

from __future__ import annotations

from alerts.config import LightThresholds
from alerts.effects import AlertKey, Subject
from alerts.lifecycle import Lifecycle
from alerts.observations import Energy, iso
from alerts.rules.day_burning import lamp_lit
from telemetry.reference_data import Asset
from telemetry.topics import Fleet

KIND = "energy_anomaly"


def expected_power_w(rated_w: float, dim_pct: float | None) -> float:
    """What a lamp should draw: rated wattage at its dim level (100 % when not reported)."""
    return rated_w * (100.0 if dim_pct is None else dim_pct) / 100.0


def power_off_share(power_w: float, expected_w: float) -> float:
    """How far the power is from the expected value, as a share of it (0.25 = 25 % off)."""
    return abs(power_w - expected_w) / expected_w


class EnergyRule:
    """Counts consecutive anomalous lit readings; one lit reading within tolerance clears."""

    def __init__(self, life: Lifecycle, thresholds: LightThresholds) -> None:
        self._life = life
        self._t = thresholds
        self._runs: dict[str, tuple[float, int]] = {}  # device -> (first anomalous ts, count)

    def observe(self, reading: Energy, asset: Asset | None) -> None:
        """Judge one reading; unlit lamps and lights without a rating are not judged."""
        if asset is None or not asset.rated_w or reading.power_w is None:
            return
        if not lamp_lit(reading, self._t.lamp_on_min_w):
            return
        expected = expected_power_w(asset.rated_w, reading.dim_pct)
        if expected < self._t.energy_min_expected_w:
            return
        device = reading.device_id
        key = AlertKey(KIND, device)
        share = power_off_share(reading.power_w, expected)
        if share <= self._t.energy_tolerance:
            self._runs.pop(device, None)
            self._life.fall(key, reading.ts, "power back within tolerance")
            return
        since, count = self._runs.get(device, (reading.ts, 0))
        count += 1
        self._runs[device] = (since, count)
        if count < self._t.energy_readings:
            return
        self._life.rise(
            key,
            reading.ts,
            Subject(Fleet.LIGHT, device, asset.district, asset.circuit, asset.lat, asset.lon),
            f"{device} draws {reading.power_w:.0f} W, expected {expected:.0f} W",
            {
                "power_w": reading.power_w,
                "expected_w": round(expected, 1),
                "off_by": round(share, 3),
                "since": iso(since),
            },
        )
