"""Nearest assets to a complaint: a sorted-cell grid over points (the city's 72,000 lights,
collection points, bus stops), pure and in memory; the lights' catalogue built on it; and the
box around a point that the storage queries read.

Points are projected once onto a local plane (equirectangular around the set's mean
latitude: within a fraction of a percent of great-circle distances at city scale) and
bucketed into square cells; the cells' keys are sorted, so the points of one column of cells
are one ``searchsorted`` range. A query looks at the few columns its circle touches and
measures only the points there (``measure``; the benchmark's brute-force baseline measures
every point with it, ``bench/complaints.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from telemetry.complaints.records import BBox, LightRow
from telemetry.geometry import EARTH_RADIUS_M

_KY: Final = math.radians(1.0) * EARTH_RADIUS_M  # metres per degree of latitude
_ROW: Final = 1 << 32  # key = column * _ROW + row; rows are shifted to be non-negative
_OFFSET: Final = 1 << 31

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Hit:
    """A point within the query radius: its position in the index's ``ids`` and distance."""

    index: int
    distance_m: float


class PointIndex:
    """Points by id; ``within`` answers "which are within r metres of here, nearest first"."""

    __slots__ = ("_keys", "_kx", "_lat0", "_lon0", "_order", "_x", "_y", "cell_m", "ids")

    def __init__(
        self,
        ids: Sequence[str],
        lat: Sequence[float] | FloatArray,
        lon: Sequence[float] | FloatArray,
        *,
        cell_m: float = 50.0,
    ) -> None:
        if not len(ids) == len(lat) == len(lon):
            raise ValueError("ids, lat and lon must have the same length")
        if cell_m <= 0:
            raise ValueError("cell_m must be positive")
        self.ids: tuple[str, ...] = tuple(ids)
        self.cell_m = float(cell_m)
        lat_a = np.asarray(lat, dtype=np.float64)
        lon_a = np.asarray(lon, dtype=np.float64)
        self._lat0 = float(lat_a.mean()) if len(lat_a) else 0.0
        self._lon0 = float(lon_a.mean()) if len(lon_a) else 0.0
        self._kx = _KY * math.cos(math.radians(self._lat0))
        self._x: FloatArray = (lon_a - self._lon0) * self._kx
        self._y: FloatArray = (lat_a - self._lat0) * _KY
        keys = self._key(np.floor(self._x / self.cell_m), np.floor(self._y / self.cell_m))
        self._order = np.argsort(keys, kind="stable")
        self._keys = keys[self._order]

    def __len__(self) -> int:
        return len(self.ids)

    @staticmethod
    def _key(col: FloatArray, row: FloatArray) -> npt.NDArray[np.int64]:
        return col.astype(np.int64) * _ROW + (row.astype(np.int64) + _OFFSET)

    def project(self, lat: float, lon: float) -> tuple[float, float]:
        """Plane coordinates (metres) of a position."""
        return (lon - self._lon0) * self._kx, (lat - self._lat0) * _KY

    def within(self, lat: float, lon: float, radius_m: float, limit: int = 10) -> list[Hit]:
        """Up to ``limit`` points within ``radius_m``, nearest first (ties by id order)."""
        if not self.ids or radius_m < 0 or limit <= 0:
            return []
        x, y = self.project(lat, lon)
        c0 = math.floor((x - radius_m) / self.cell_m)
        c1 = math.floor((x + radius_m) / self.cell_m)
        r0 = math.floor((y - radius_m) / self.cell_m) + _OFFSET
        r1 = math.floor((y + radius_m) / self.cell_m) + _OFFSET
        if c1 - c0 > 2000:  # a radius spanning most of the city: measure everything
            return self.measure(np.arange(len(self.ids), dtype=np.intp), x, y, radius_m, limit)
        keys = self._keys
        spans = [
            (
                int(np.searchsorted(keys, c * _ROW + r0, side="left")),
                int(np.searchsorted(keys, c * _ROW + r1, side="right")),
            )
            for c in range(c0, c1 + 1)
        ]
        parts = [self._order[a:b] for a, b in spans if b > a]
        if not parts:
            return []
        candidates = np.concatenate(parts) if len(parts) > 1 else parts[0]
        return self.measure(candidates, x, y, radius_m, limit)

    def measure(
        self, candidates: npt.NDArray[np.intp], x: float, y: float, radius_m: float, limit: int
    ) -> list[Hit]:
        """Up to ``limit`` of the ``candidates`` (positions in ``ids``) within ``radius_m`` of the
        plane point (x, y), nearest first (ties by position)."""
        d = np.hypot(self._x[candidates] - x, self._y[candidates] - y)
        keep = d <= radius_m
        found = candidates[keep]
        dist = d[keep]
        if not len(found):
            return []
        # Nearest first; equal distances by index so the answer is deterministic.
        order = np.lexsort((found, dist))[:limit]
        return [Hit(int(found[i]), float(dist[i])) for i in order]

    def nearest(self, lat: float, lon: float, max_m: float) -> Hit | None:
        """The nearest point within ``max_m``, or None."""
        hits = self.within(lat, lon, max_m, 1)
        return hits[0] if hits else None


class LightCatalog:
    """The lights' spatial index and the registry details of each indexed light."""

    def __init__(self, rows: list[LightRow], cell_m: float = 50.0) -> None:
        self.rows = rows
        self.index = PointIndex(
            [r.device_id for r in rows], [r.lat for r in rows], [r.lon for r in rows], cell_m=cell_m
        )


def box(lat: float, lon: float, radius_m: float) -> BBox:
    """(south, west, north, east) of a square around a point, ``radius_m`` on each side."""
    dlat = radius_m / _KY
    dlon = radius_m / (_KY * max(0.01, math.cos(math.radians(lat))))
    return lat - dlat, lon - dlon, lat + dlat, lon + dlon
