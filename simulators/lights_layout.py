"""Where the streetlights stand: along a street grid in each district, 40 to a circuit.

Pure and deterministic for a scenario's ``layout_seed``: the registry CSV and the messages
agree without sharing state. Light ids number lights in street order (L-MED-00042), so
neighbouring ids are neighbours on the street, as in real inventories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from simulators.city import BBOX_CITY, DISTRICTS, MEDINA_WALLS, District
from simulators.seeds import np_rng
from telemetry.geometry import metres_per_degree

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

LED, HPS, FLOOD = 0, 1, 2
TECH_NAMES: Final = ("LED", "HPS", "floodlight")
#: (tech, rated W, share) - city-facts section 7, wattage_distribution_w [A].
WATTAGE_MIX: Final = (
    (LED, 30.0, 0.20),
    (LED, 40.0, 0.10),
    (LED, 60.0, 0.25),
    (LED, 90.0, 0.20),
    (LED, 120.0, 0.08),
    (LED, 150.0, 0.07),
    (HPS, 150.0, 0.05),
    (HPS, 250.0, 0.03),
    (FLOOD, 400.0, 0.02),
)
#: Médina alleys: façade fittings, 40 W most often [S], a few floodlights on squares.
MEDINA_MIX: Final = (
    (LED, 30.0, 0.25),
    (LED, 40.0, 0.55),
    (LED, 60.0, 0.12),
    (HPS, 150.0, 0.04),
    (FLOOD, 400.0, 0.04),
)
_STREET_M: Final = 120.0
_SPACING_M: Final = 30.0
_ALLEY_M: Final = 50.0
_ALLEY_SPACING_M: Final = 15.0
_REF_LAT: Final = 31.63


@dataclass(frozen=True)
class LightLayout:
    """Every light of a scenario, in id order (arrays share the index)."""

    ids: list[str]
    district: IntArray  # index into simulators.city.DISTRICTS
    lat: FloatArray
    lon: FloatArray
    circuit: IntArray  # index into circuit_ids
    circuit_ids: list[str]
    tech: IntArray
    rated_w: FloatArray

    def __len__(self) -> int:
        return len(self.ids)


def _inside(
    lat: FloatArray, lon: FloatArray, polygon: tuple[tuple[float, float], ...]
) -> BoolArray:
    inside = np.zeros(lat.shape, dtype=bool)
    n = len(polygon)
    for i in range(n):
        yi, xi = polygon[i]
        yj, xj = polygon[i - 1]
        crosses = (yi > lat) != (yj > lat)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = (xj - xi) * (lat - yi) / (yj - yi) + xi
        inside ^= crosses & (lon < x_cross)
    return inside


def _grid(
    box: tuple[float, float, float, float], street_m: float, spacing_m: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Points along N-S and E-W streets: (lat, lon, street-order key)."""
    south, north, west, east = box
    per_lat, per_lon = metres_per_degree(_REF_LAT)
    rows = np.arange(south, north, street_m / per_lat)
    cols = np.arange(west, east, street_m / per_lon)
    along_ew = np.arange(west, east, spacing_m / per_lon)
    along_ns = np.arange(south, north, spacing_m / per_lat)
    lat_h = np.repeat(rows, along_ew.size)
    lon_h = np.tile(along_ew, rows.size)
    key_h = np.repeat(np.arange(rows.size), along_ew.size) * 1e6 + np.tile(
        np.arange(along_ew.size), rows.size
    )
    lat_v = np.tile(along_ns, cols.size)
    lon_v = np.repeat(cols, along_ns.size)
    key_v = (rows.size + np.repeat(np.arange(cols.size), along_ns.size)) * 1e6 + np.tile(
        np.arange(along_ns.size), cols.size
    )
    return (
        np.concatenate([lat_h, lat_v]),
        np.concatenate([lon_h, lon_v]),
        np.concatenate([key_h, key_v]).astype(np.float64),
    )


def district_counts(total: int) -> dict[District, int]:
    """Split a light count over the districts in city-facts proportions (largest remainder)."""
    weights = [d.lights for d in DISTRICTS]
    whole = sum(weights)
    raw = [total * w / whole for w in weights]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return {d.district: c for d, c in zip(DISTRICTS, counts, strict=True)}


def _candidates(
    medina: bool, need: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, FloatArray]:
    street, spacing = (_ALLEY_M, _ALLEY_SPACING_M) if medina else (_STREET_M, _SPACING_M)
    if medina:
        lats = [p[0] for p in MEDINA_WALLS]
        lons = [p[1] for p in MEDINA_WALLS]
        box = (min(lats), max(lats), min(lons), max(lons))
    else:
        box = BBOX_CITY
    lat, lon, key = _grid(box, street, spacing)
    keep = _inside(lat, lon, MEDINA_WALLS)
    if not medina:
        keep = ~keep
    lat, lon, key = lat[keep], lon[keep], key[keep]
    if need > lat.size // 2:  # too few (a 10x city): densify along the same streets
        factor = max(2, math.ceil(2.5 * need / max(1, lat.size)))
        per_lat, per_lon = metres_per_degree(_REF_LAT)
        shape = (factor - 1, lat.size)
        extra_lat = (lat + rng.uniform(-spacing / 2, spacing / 2, shape) / per_lat).ravel()
        extra_lon = (lon + rng.uniform(-spacing / 2, spacing / 2, shape) / per_lon).ravel()
        extra_key = (key + np.linspace(0.01, 0.99, factor - 1)[:, None]).ravel()
        lat = np.concatenate([lat, extra_lat])
        lon = np.concatenate([lon, extra_lon])
        key = np.concatenate([key, extra_key])
    wobble = 8.0 if medina else 3.0  # alleys are crooked; boulevards are straight
    per_lat, per_lon = metres_per_degree(_REF_LAT)
    lat = lat + rng.uniform(-wobble, wobble, lat.size) / per_lat
    lon = lon + rng.uniform(-wobble, wobble, lon.size) / per_lon
    return lat, lon, key


def build_light_layout(
    counts: dict[District, int], layout_seed: int, lamps_per_circuit: int
) -> LightLayout:
    """Place ``counts`` lights per district, number them and wire them into circuits."""
    rng = np_rng(layout_seed, "lights-layout")
    per_lat, per_lon = metres_per_degree(_REF_LAT)
    outside_need = sum(c for d, c in counts.items() if d is not District.MEDINA)
    medina_need = counts.get(District.MEDINA, 0)
    pools: dict[bool, tuple[FloatArray, FloatArray, FloatArray]] = {}
    if outside_need:
        pools[False] = _candidates(False, outside_need, rng)
    if medina_need:
        pools[True] = _candidates(True, medina_need, rng)
    outside_districts = [d for d in DISTRICTS if d.district is not District.MEDINA]
    nearest: IntArray | None = None
    if False in pools:
        lat, lon, _ = pools[False]
        dist = np.stack(
            [
                ((lat - d.centroid[0]) * per_lat) ** 2 + ((lon - d.centroid[1]) * per_lon) ** 2
                for d in outside_districts
            ]
        )
        nearest = np.argmin(dist, axis=0)
    ids: list[str] = []
    ints: dict[str, list[IntArray]] = {"district": [], "circuit": [], "tech": []}
    floats: dict[str, list[FloatArray]] = {"lat": [], "lon": [], "rated": []}
    circuit_ids: list[str] = []
    for d_index, info in enumerate(DISTRICTS):
        need = counts.get(info.district, 0)
        if need <= 0:
            continue
        is_medina = info.district is District.MEDINA
        lat, lon, key = pools[is_medina]
        if is_medina:
            mine = np.arange(lat.size)
        else:
            assert nearest is not None
            k = next(i for i, d in enumerate(outside_districts) if d is info)
            mine = np.flatnonzero(nearest == k)
        d2 = ((lat[mine] - info.centroid[0]) * per_lat) ** 2 + (
            (lon[mine] - info.centroid[1]) * per_lon
        ) ** 2
        if mine.size < need:
            raise ValueError(f"only {mine.size} places for {need} lights in {info.district}")
        chosen = mine[np.argsort(d2, kind="stable")[:need]]
        chosen = chosen[np.argsort(key[chosen], kind="stable")]  # street order
        ids.extend(f"L-{info.code}-{n:05d}" for n in range(1, need + 1))
        n_circuits = math.ceil(need / lamps_per_circuit)
        first = len(circuit_ids)
        circuit_ids.extend(f"C-{first + c + 1:03d}" for c in range(n_circuits))
        circuit = first + np.arange(need) // lamps_per_circuit
        mix = MEDINA_MIX if is_medina else WATTAGE_MIX
        shares = np.array([m[2] for m in mix])
        pick = rng.choice(len(mix), size=n_circuits, p=shares / shares.sum())
        per_circuit = pick[np.arange(need) // lamps_per_circuit]
        ints["district"].append(np.full(need, d_index, dtype=np.int64))
        ints["circuit"].append(circuit.astype(np.int64))
        ints["tech"].append(np.array([m[0] for m in mix], dtype=np.int64)[per_circuit])
        floats["lat"].append(lat[chosen])
        floats["lon"].append(lon[chosen])
        floats["rated"].append(np.array([m[1] for m in mix])[per_circuit])

    def icat(name: str) -> IntArray:
        """The district parts of one integer column, joined."""
        return np.concatenate(ints[name]) if ints[name] else np.zeros(0, dtype=np.int64)

    def fcat(name: str) -> FloatArray:
        """The district parts of one float column, joined."""
        return np.concatenate(floats[name]) if floats[name] else np.zeros(0, dtype=np.float64)

    return LightLayout(
        ids=ids,
        district=icat("district"),
        lat=np.round(fcat("lat"), 6),
        lon=np.round(fcat("lon"), 6),
        circuit=icat("circuit"),
        circuit_ids=circuit_ids,
        tech=icat("tech"),
        rated_w=fcat("rated"),
    )
