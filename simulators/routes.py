"""Bus lines of Marrakech: BRT line A, real line numbers between real landmarks (city-facts 2).

Lines A, 1, 3, 11, 12 and 19 follow the sourced termini; the others use real line numbers
with plausible termini [A]. Shapes are straight runs between named points, which is close
enough at city scale; long runs get intermediate stops about every 600 m.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Final

from simulators.city import PLACES, Area, area_of
from simulators.paths import TravelPath
from telemetry.geometry import LatLon

Waypoint = str | LatLon  # a named stop, or an unnamed shape point

#: Line id -> (kind, waypoints). Kind "brt" keeps exactly its 8 stations.
LINE_DEFINITIONS: Final[dict[str, tuple[str, tuple[Waypoint, ...]]]] = {
    "A": (
        "brt",
        (
            "Massira",
            "Tafilalet",
            "Iziki",
            "Douar Laskar",
            "Ain Mezouar",
            "Gare ONCF",
            "Grande Poste",
            "Bab Doukkala",
        ),
    ),
    "1": (
        "urban",
        (
            "Arset El Bilk",
            "Bab Nkob",
            "Grande Poste",
            "Place Abdelmoumen",
            "Abdelkrim El Khattabi",
            "Bir Anzarane",
        ),
    ),
    "2": ("urban", ("Bab Doukkala", "Douar Berrada", "Bab El Khemis", "Route de Fes", "Palmeraie")),
    "3": ("urban", ("Arset El Bilk", "Bab Nkob", "Bab Doukkala", "Grande Poste", "Gare ONCF")),
    "4": ("urban", ("Arset El Bilk", "Bab Nkob", "Bab Doukkala", "Majorelle", "Daoudiate")),
    "5": (
        "urban",
        (
            "Bab Doukkala",
            "Grande Poste",
            "Gare ONCF",
            "Ain Mezouar",
            "Douar Laskar",
            "Iziki",
            "Tafilalet",
            "Massira",
        ),
    ),
    "6": ("urban", ("Arset El Bilk", "Bab Nkob", "Bab Doukkala", "Douar Berrada", "Daoudiate")),
    "7": (
        "urban",
        (
            "Arset El Bilk",
            "Koutoubia",
            "Bab Agnaou",
            (31.6120, -7.9800),
            "Bab Ghmat",
            "Sidi Youssef Ben Ali",
        ),
    ),
    "8": ("urban", ("M'Hamid", "Bab Ighli", "Agdal", "Bab Ghmat")),
    "9": ("urban", ("Bab Doukkala", "Grande Poste", "Gare ONCF", "Ain Mezouar", "Azli")),
    "10": ("urban", ("Arset El Bilk", "Koutoubia", "Bab Jdid", (31.6240, -8.0120), "Gare ONCF")),
    "11": ("urban", ("Arset El Bilk", "Koutoubia", "Bab Jdid", "Menara gardens", "Airport")),
    "12": ("urban", ("Koutoubia", "Bab Nkob", "Bab Doukkala", "Ben Tbib")),
    "13": ("urban", ("Bab Doukkala", "Majorelle", "Semlalia", "Targa")),
    "14": (
        "urban",
        ("Grande Poste", "Place Abdelmoumen", "Bir Anzarane", "Semlalia", "Sidi Ghanem"),
    ),
    "15": (
        "urban",
        ("Koutoubia", "Bab Nkob", "Bab Doukkala", "Majorelle", "Ben Tbib", "Daoudiate"),
    ),
    "16": ("urban", ("Arset El Bilk", "Koutoubia", "Bab Agnaou", "Agdal", "Bab Ighli", "M'Hamid")),
    "18": ("urban", ("Arset El Bilk", "Koutoubia", "Bab Jdid", "Menara gardens", "Azli")),
    "19": (
        "urban",
        ("Airport", (31.6160, -8.0300), "Gare ONCF", (31.6290, -8.0050), "Arset El Bilk"),
    ),
    "21": ("urban", ("Iziki", "Menara gardens", "M'Hamid")),
    "22": (
        "urban",
        (
            "Massira",
            "Tafilalet",
            "Iziki",
            "Douar Laskar",
            "Gare ONCF",
            "Grande Poste",
            "Bab Doukkala",
            "Bab El Khemis",
        ),
    ),
    "23": (
        "urban",
        (
            "Grande Poste",
            "Bab Doukkala",
            "Bab El Khemis",
            "Bab Debbagh",
            "Bab Ghmat",
            "Sidi Youssef Ben Ali",
        ),
    ),
    "27": ("urban", ("Massira", "Azli", "M'Hamid")),
    "43": (
        "urban",
        ("Massira", "Iziki", "Gare ONCF", "Grande Poste", "Bab Doukkala", "Douar Berrada"),
    ),
    "66": ("urban", ("Douar Laskar", "Ain Mezouar", "Gare ONCF", "Semlalia", "El Azzouzia")),
}

BRT_SHARE: Final = 10 / 250  # 10 Yangtse 18 m buses out of the city's ~250 [S]
_STOP_SPACING_M: Final = 600.0
#: Cruise speeds between stops, km/h (mean, sd): dwell and layovers bring the commercial
#: speed down to the ~15-18 km/h of city-facts section 2.
CRUISE_KMH: Final[dict[str, tuple[float, float]]] = {
    "brt": (26.0, 4.0),
    Area.OPEN.value: (30.0, 6.0),
    Area.AVENUE.value: (20.0, 5.0),
    Area.MEDINA.value: (12.0, 3.0),
}


@dataclass(frozen=True, slots=True)
class Line:
    """One bus line: its shape, stops (as distances along the shape) and section speeds."""

    line_id: str
    kind: str
    terminus_a: str
    terminus_b: str
    shape: TravelPath
    stop_distances: tuple[float, ...]
    section_speed: tuple[tuple[float, float], ...]  # (mean, sd) km/h per stop-to-stop section

    @property
    def length_m(self) -> float:
        """Length of one direction in metres."""
        return self.shape.length


def _point(waypoint: Waypoint) -> LatLon:
    return PLACES[waypoint] if isinstance(waypoint, str) else waypoint


def _build(line_id: str, kind: str, waypoints: tuple[Waypoint, ...]) -> Line:
    shape = TravelPath([_point(w) for w in waypoints])
    named = [shape.cumulative[i] for i, w in enumerate(waypoints) if isinstance(w, str)]
    stops: list[float] = [named[0]]
    for a, b in itertools.pairwise(named):
        if kind != "brt":
            extra = max(0, math.floor((b - a) / _STOP_SPACING_M) - 1)
            stops.extend(a + (b - a) * k / (extra + 1) for k in range(1, extra + 1))
        stops.append(b)
    speeds = []
    for a, b in itertools.pairwise(stops):
        lat, lon, _ = shape.at((a + b) / 2)
        speeds.append(CRUISE_KMH["brt" if kind == "brt" else area_of(lat, lon).value])
    first, last = waypoints[0], waypoints[-1]
    assert isinstance(first, str)
    assert isinstance(last, str)
    return Line(line_id, kind, first, last, shape, tuple(stops), tuple(speeds))


LINES: Final[dict[str, Line]] = {
    line_id: _build(line_id, kind, waypoints)
    for line_id, (kind, waypoints) in LINE_DEFINITIONS.items()
}


def allocate_buses(total: int, line_ids: list[str]) -> list[tuple[str, int]]:
    """Buses per line: BRT line A its share, the rest by route length (largest remainder)."""
    lines = [LINES[i] for i in line_ids]
    if total <= 0 or not lines:
        return [(line.line_id, 0) for line in lines]
    if total < len(lines):
        return [(line.line_id, 1 if k < total else 0) for k, line in enumerate(lines)]
    counts = {line.line_id: 1 for line in lines}
    remaining = total - len(lines)
    if "A" in counts:
        extra = min(remaining, max(0, round(total * BRT_SHARE) - 1))
        counts["A"] += extra
        remaining -= extra
    others = [line for line in lines if line.line_id != "A"] or lines
    weight = sum(line.length_m for line in others)
    shares = [(remaining * line.length_m / weight, line.line_id) for line in others]
    for share, line_id in shares:
        counts[line_id] += math.floor(share)
    left = total - sum(counts.values())
    by_remainder = sorted(shares, key=lambda s: (-(s[0] - math.floor(s[0])), s[1]))
    for _, line_id in by_remainder[:left]:
        counts[line_id] += 1
    return [(line.line_id, counts[line.line_id]) for line in lines]
