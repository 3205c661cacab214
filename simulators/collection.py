"""Waste collection sites and truck rounds per district (city-facts section 3), pure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from simulators.city import BBOX_CITY, DISTRICT_BY_NAME, District, in_medina
from simulators.seeds import py_rng
from telemetry.geometry import LatLon, haversine_m, offset


class TruckKind(StrEnum):
    """Truck mix [A]: compactors and small satellites collect; hook-lifts haul; washers wash."""

    COMPACTOR = "compactor 16-19 m3"
    SATELLITE = "satellite 5 m3"
    HOOK_LIFT = "hook-lift"
    WASHER = "washer"


#: The kinds that do collection rounds (hook-lifts haul, washers wash).
COLLECTING: Final = frozenset({TruckKind.COMPACTOR, TruckKind.SATELLITE})
#: (kind, share): 55 % compactors, 30 % satellites, 15 % hook-lift or washer [A].
TRUCK_MIX: Final = (
    (TruckKind.COMPACTOR, 0.55),
    (TruckKind.SATELLITE, 0.30),
    (TruckKind.HOOK_LIFT, 0.075),
    (TruckKind.WASHER, 0.075),
)
ARMA_DISTRICTS: Final = (
    District.GUELIZ,
    District.MEDINA,
    District.SIDI_YOUSSEF_BEN_ALI,
    District.ANNAKHIL,
)
_SITES_PER_TRUCK: Final = 50
_SPREAD_M: Final = {District.MEDINA: 550.0}
_DEFAULT_SPREAD_M: Final = 1_400.0


@dataclass(frozen=True, slots=True)
class Round:
    """The sites of one truck's sector in visiting order, and the fixed round cut from them.

    ``labels`` name the sites (``GUE-0017``: district code and number, unique in the city).
    A collecting truck visits the first ``sum(trips)`` sites every night, ``trips[k]`` of them
    before its k-th run to the transfer station; other trucks have no trips.
    """

    sites: tuple[LatLon, ...]
    labels: tuple[str, ...] = ()
    trips: tuple[int, ...] = ()

    @property
    def points(self) -> tuple[LatLon, ...]:
        """The sites of the nightly collection round, in visiting order (seq = index)."""
        return self.sites[: sum(self.trips)]

    def with_trips(self, per_trip: list[int]) -> Round:
        """This sector with a fixed round of ``per_trip`` sites per trip (cut to the sector)."""
        trips: list[int] = []
        left = len(self.sites)
        for n in per_trip:
            take = min(n, left)
            trips.append(take)
            left -= take
        return Round(self.sites, self.labels, tuple(trips))


def round_point(round_: Round, point: str) -> int | None:
    """The seq of a round point given as its seq (``"3"``) or its label (``"GUE-0017"``)."""
    points = round_.points
    if point.isdigit():
        seq = int(point)
        return seq if seq < len(points) else None
    labels = round_.labels[: len(points)]
    return labels.index(point) if point in labels else None


def truck_kinds(count: int) -> list[TruckKind]:
    """Kinds for ``count`` trucks in mix proportions, interleaved so every operator gets some."""
    kinds: list[TruckKind] = []
    credit = dict.fromkeys(TruckKind, 0.0)
    for _ in range(count):
        for kind, share in TRUCK_MIX:
            credit[kind] += share
        best = max(TRUCK_MIX, key=lambda m: credit[m[0]])[0]
        credit[best] -= 1.0
        kinds.append(best)
    return kinds


def split_by_weight(count: int, weights: list[float]) -> list[int]:
    """``count`` split in proportion to ``weights`` (largest remainder, stable)."""
    total = sum(weights)
    raw = [count * w / total for w in weights]
    parts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - parts[i]), i))
    for i in order[: count - sum(parts)]:
        parts[i] += 1
    return parts


def _site(rng_seed: int, district: District, n: int) -> list[LatLon]:
    rng = py_rng(rng_seed, "sites", district.value)
    lat0, lon0 = DISTRICT_BY_NAME[district].centroid
    spread = _SPREAD_M.get(district, _DEFAULT_SPREAD_M)
    south, north, west, east = BBOX_CITY
    sites: list[LatLon] = []
    while len(sites) < n:
        lat, lon = offset(lat0, lon0, rng.gauss(0, spread), rng.gauss(0, spread))
        if not (south <= lat <= north and west <= lon <= east):
            continue
        if (district is District.MEDINA) != in_medina(lat, lon):
            continue
        sites.append((round(lat, 6), round(lon, 6)))
    return sites


def district_rounds(layout_seed: int, district: District, trucks: int) -> list[Round]:
    """Sites of one district cut into ``trucks`` sectors (by bearing), each a nearest-first tour."""
    if trucks <= 0:
        return []
    info = DISTRICT_BY_NAME[district]
    lat0, lon0 = info.centroid
    sites = _site(layout_seed, district, trucks * _SITES_PER_TRUCK)
    sites.sort(key=lambda p: math.atan2(p[0] - lat0, p[1] - lon0))
    label = {p: f"{info.code}-{n + 1:04d}" for n, p in enumerate(sites)}
    rounds = []
    for k in range(trucks):
        sector = sites[k * _SITES_PER_TRUCK : (k + 1) * _SITES_PER_TRUCK]
        tour = [min(sector, key=lambda p: haversine_m(lat0, lon0, *p))]
        left = [p for p in sector if p != tour[0]]
        while left:
            here = tour[-1]
            # Squared flat distance is enough to pick the nearest neighbour.
            nxt = min(left, key=lambda p: (p[0] - here[0]) ** 2 + ((p[1] - here[1]) * 0.85) ** 2)
            left.remove(nxt)
            tour.append(nxt)
        rounds.append(Round(tuple(tour), tuple(label[p] for p in tour)))
    return rounds
