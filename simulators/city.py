"""Marrakech as the model city: landmarks, districts, the Médina walls, depots (city-facts.md).

Coordinates tagged [S] in ``/work/shared/city-facts.md`` are sourced; the rest are estimates
([A]) good to a few hundred metres, which is all a simulator needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from telemetry.geometry import LatLon, haversine_m, point_in_polygon

CENTRE: Final[LatLon] = (31.62583, -7.98944)  # Jemaa el-Fnaa [S]
BBOX_CITY: Final = (31.56, 31.72, -8.10, -7.90)  # south, north, west, east [D/A]

#: Named points used by bus lines, depots and collection rounds.
PLACES: Final[dict[str, LatLon]] = {
    # Médina and its gates
    "Arset El Bilk": (31.6258, -7.9925),  # [A] facts, Av Mohammed V start
    "Jemaa el-Fnaa": (31.62583, -7.98944),  # [S]
    "Koutoubia": (31.62417, -7.99343),  # [S]
    "Bab Nkob": (31.6290, -7.9990),  # [A]
    "Bab Doukkala": (31.63394, -7.99900),  # [S]
    "Bab Jdid": (31.6222, -8.0008),  # [A]
    "Bab Agnaou": (31.6160, -7.9905),  # [A]
    "Bab Ghmat": (31.6195, -7.9745),  # [A]
    "Bab Debbagh": (31.6345, -7.9735),  # [A]
    "Bab El Khemis": (31.6425, -7.9848),  # [A]
    "Mellah": (31.6205, -7.9840),  # [A]
    # Guéliz, Hivernage and the Av Hassan II corridor (BRT line A)
    "Grande Poste": (31.6336, -8.0104),  # Place du 16 Novembre [S]
    "Place Abdelmoumen": (31.6368, -8.0135),  # [A]
    "Abdelkrim El Khattabi": (31.6400, -8.0180),  # [A]
    "Bir Anzarane": (31.6425, -8.0215),  # [A]
    "Gare ONCF": (31.63096, -8.01726),  # [S]
    "Ain Mezouar": (31.6295, -8.0240),  # [A]
    "Douar Laskar": (31.6280, -8.0300),  # [A]
    "Iziki": (31.6240, -8.0440),  # [A]
    "Tafilalet": (31.6205, -8.0555),  # [A]
    "Massira": (31.6170, -8.0660),  # [A]
    "Majorelle": (31.6414, -8.0031),  # [S]
    "Ben Tbib": (31.6405, -8.0060),  # [A]
    "Daoudiate": (31.6520, -8.0050),  # [A]
    "Semlalia": (31.6465, -8.0190),  # [A] university campus
    "Targa": (31.6490, -8.0560),  # [A]
    "Douar Berrada": (31.6460, -7.9950),  # [A]
    # South and west
    "Menara gardens": (31.6133, -8.0217),  # [S]
    "Airport": (31.6068, -8.0360),  # [A] terminal; runway ref 31.6150, -8.0381 [S]
    "Azli": (31.6030, -8.0600),  # [A]
    "M'Hamid": (31.5850, -8.0330),  # [A]
    "Agdal": (31.6060, -7.9820),  # [A]
    "Bab Ighli": (31.6005, -7.9935),  # [A]
    "Sidi Youssef Ben Ali": (31.6110, -7.9650),  # [A]
    # North and east
    "Route de Fes": (31.6500, -7.9650),  # [A]
    "Palmeraie": (31.6875, -7.9733),  # [S]
    "Sidi Ghanem": (31.6680, -8.0400),  # [A]
    "El Azzouzia": (31.6650, -8.0620),  # [A] gare routière
}


class District(StrEnum):
    """The five arrondissements, by their registry name."""

    MEDINA = "medina"
    GUELIZ = "gueliz"
    MENARA = "menara"
    SIDI_YOUSSEF_BEN_ALI = "sidi_youssef_ben_ali"
    ANNAKHIL = "annakhil"


@dataclass(frozen=True, slots=True)
class DistrictInfo:
    """What the simulators need to know about an arrondissement."""

    district: District
    code: str  # three letters used in light ids: L-MED-00042
    centroid: LatLon  # [A]
    population: int  # 2004 census, Ménara 2014 [S]
    sanitation: str  # operator since 2021 [S]
    lights: int  # share of the 72,000 light points [A]


#: Ordered as the light counts in city-facts, so circuits C-001... start in Ménara.
DISTRICTS: Final[tuple[DistrictInfo, ...]] = (
    DistrictInfo(District.MENARA, "MEN", (31.605, -8.040), 411_094, "Mecomar", 26_000),
    DistrictInfo(District.GUELIZ, "GUE", (31.638, -8.012), 173_101, "Arma", 15_000),
    DistrictInfo(District.ANNAKHIL, "ANN", (31.665, -7.975), 54_111, "Arma", 12_000),
    DistrictInfo(District.MEDINA, "MED", (31.628, -7.988), 167_233, "Arma", 10_000),
    DistrictInfo(District.SIDI_YOUSSEF_BEN_ALI, "SYB", (31.610, -7.968), 124_935, "Arma", 9_000),
)
DISTRICT_BY_NAME: Final = {d.district: d for d in DISTRICTS}

#: The Médina walls through its gates (≈600 ha inside ≈10 km of walls [S]); vertices [A].
MEDINA_WALLS: Final[tuple[LatLon, ...]] = (
    (31.6339, -7.9990),
    (31.6395, -7.9930),
    (31.6425, -7.9848),
    (31.6380, -7.9760),
    (31.6345, -7.9735),
    (31.6270, -7.9720),
    (31.6195, -7.9745),
    (31.6100, -7.9800),
    (31.6110, -7.9950),
    (31.6222, -8.0008),
    (31.6290, -7.9995),
)

# Sanitation sites, all [A] (city-facts section 3).
DEPOTS: Final[dict[str, LatLon]] = {"Arma": (31.668, -8.040), "Mecomar": (31.588, -8.045)}
TRANSFER_STATION: Final[LatLon] = (31.70, -8.07)
LANDFILL: Final[LatLon] = (31.86, -8.17)

#: Where GPS works well: dense modern streets within this radius of Guéliz are "avenue".
_AVENUE_CENTRE: Final[LatLon] = (31.632, -8.005)
_AVENUE_RADIUS_M: Final = 3_000.0


class Area(StrEnum):
    """GPS environment, which sets the noise (city-facts section 6)."""

    OPEN = "open"
    AVENUE = "avenue"
    MEDINA = "medina"


def in_medina(lat: float, lon: float) -> bool:
    """Inside the Médina walls."""
    return point_in_polygon(lat, lon, MEDINA_WALLS)


def area_of(lat: float, lon: float) -> Area:
    """Médina inside the walls, avenue in the dense centre, open sky elsewhere."""
    if in_medina(lat, lon):
        return Area.MEDINA
    if haversine_m(lat, lon, *_AVENUE_CENTRE) <= _AVENUE_RADIUS_M:
        return Area.AVENUE
    return Area.OPEN
