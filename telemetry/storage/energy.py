"""Energy reads: hourly consumption per light, the same query on both backends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import psycopg
from psycopg.rows import class_row

# Consumption in an hour is the rise of the cumulative meter since the previous hour's last
# reading; a meter reset (replaced controller) counts as zero rather than negative.
_HOURLY: Final = """
SELECT device_id, bucket,
       greatest(0, coalesce(
           energy_wh_max - lag(energy_wh_max) OVER (PARTITION BY device_id ORDER BY bucket),
           energy_wh_max - energy_wh_min)) AS energy_wh,
       power_w_avg, readings::integer AS readings, lamp_on_any
FROM light_energy_hourly
WHERE device_id = ANY(%(ids)s) AND bucket >= %(start)s - INTERVAL '1 hour' AND bucket < %(end)s
ORDER BY device_id, bucket
"""


@dataclass(frozen=True, slots=True)
class HourlyEnergy:
    """One light's consumption in one hour."""

    device_id: str
    bucket: datetime
    energy_wh: float
    power_w_avg: float | None
    readings: int
    lamp_on_any: bool | None


def hourly_energy(
    conn: psycopg.Connection, device_ids: list[str], start: datetime, end: datetime
) -> list[HourlyEnergy]:
    """Hourly consumption of the given lights for buckets in [start, end)."""
    with conn.cursor(row_factory=class_row(HourlyEnergy)) as cur:
        cur.execute(_HOURLY, {"ids": device_ids, "start": start, "end": end})
        return [row for row in cur.fetchall() if row.bucket >= start]
