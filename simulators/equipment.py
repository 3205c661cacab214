"""The equipment register of a scenario's city: cabinets of its circuits, poles, luminaires
with their drivers and controllers, a small model catalogue, suppliers, tenders and warranties.

Pure and deterministic for ``layout_seed``, built from the same light layout as the registry
and the messages: a luminaire carries its light's ``device_id``, position and district, and
hangs (through its pole) from its light's circuit. Sourced facts are in ``city-facts.md``
section 4 ([S]); manufacturers, model names, serials and meter numbers are invented ([A]).
"""

from __future__ import annotations

import calendar
import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from simulators.city import DISTRICTS, District
from simulators.devices import CityDevices
from simulators.lights_layout import FLOOD, HPS, LED
from simulators.scenario import Scenario
from simulators.seeds import derive_seed, py_rng
from telemetry.equipment.records import Asset, AssetKind, EquipmentModel, ModelKind

#: The LED contract of 2016 (Enertika with SIE, through the SDL Hadirat Al Anwar) [S].
LED_TENDER: Final = "HAA-2016-LED"
LED_SUPPLIERS: Final = ("Enertika", "SIE")
#: Residual sodium lights from the commune's earlier works, floodlights from other works [S];
#: their tender names are invented [A].
HPS_TENDER: Final = "CM-2010-EP"
HPS_SUPPLIER: Final = "Commune de Marrakech (régie)"
FLOOD_TENDER: Final = "VOIRIE-2015"
FLOOD_SUPPLIER: Final = "Travaux de voirie"
#: The Médina came first, in March 2018 [S]; the other districts' months are assumed [A].
LED_ROLLOUT: Final[dict[District, date]] = {
    District.MEDINA: date(2018, 3, 1),
    District.GUELIZ: date(2018, 9, 1),
    District.MENARA: date(2019, 1, 1),
    District.SIDI_YOUSSEF_BEN_ALI: date(2019, 6, 1),
    District.ANNAKHIL: date(2019, 10, 1),
}
_ROLLOUT_DAYS: Final = 270
#: Subscribed-power steps a cabinet's contract is rounded up to (kW) [A].
POWER_STEPS_KW: Final = (3, 6, 9, 12, 15, 18, 24, 30, 36, 48, 60, 90, 120)
#: Low-voltage contracts up to 36 kW, medium voltage above [A]; names shared with the tariff
#: file of energy accounting.
TARIFF_LOW: Final = "eclairage_public_bt"
TARIFF_MEDIUM: Final = "eclairage_public_mt"
_LOW_LIMIT_KW: Final = 36
#: Médina controllers are the cheap ones that fail repeatedly [S]: this share of them was
#: already swapped once [A]; elsewhere drivers fail first [S], this share already swapped [A].
MEDINA_CONTROLLER_SWAPPED: Final = 0.15
DRIVER_SWAPPED: Final = 0.03


def _led(watts: int, manufacturer: str, family: str) -> EquipmentModel:
    # 130 lm/W and 15 % of rated power at the lowest dim level; L80 life 100,000 h [A].
    return EquipmentModel(
        model_id=f"LUM-LED-{watts}",
        kind=ModelKind.LUMINAIRE,
        manufacturer=manufacturer,
        model=f"{family} {watts}W",
        rated_power_w=float(watts),
        power_at_min_dim_w=round(watts * 0.15, 1),
        rated_life_h=100_000,
        warranty_years=10,
        replaceable_on_site=True,
        light_source="LED",
        luminous_flux_lm=watts * 130,
    )


#: The catalogue: a façade fitting, a street luminaire and a boulevard luminaire in LED, the
#: residual sodium lanterns and floodlights, their drivers/ballasts and the lights' nodes.
MODELS: Final[tuple[EquipmentModel, ...]] = (
    _led(30, "Atlas Lumière", "Zellige Façade"),
    _led(40, "Atlas Lumière", "Zellige Façade"),
    _led(60, "Nour Lighting", "Derb Street"),
    _led(90, "Nour Lighting", "Derb Street"),
    _led(120, "Nour Lighting", "Avenue Pro"),
    _led(150, "Nour Lighting", "Avenue Pro"),
    # Sodium lamps last about 5 years of ~4,150 h [S/D].
    EquipmentModel(
        model_id="LUM-HPS-150",
        kind=ModelKind.LUMINAIRE,
        manufacturer="Lanterne du Sud",
        model="Koutoubia SHP 150W",
        # What the lantern draws: the lamp plus its ballast's losses, as simulators.lights
        # draws it (12 % for sodium, 8 % for floodlights) [S: up to 25 %].
        rated_power_w=round(150 * 1.12, 1),
        power_at_min_dim_w=110.0,
        rated_life_h=20_000,
        warranty_years=2,
        replaceable_on_site=True,
        light_source="HPS",
        luminous_flux_lm=15_000,
    ),
    EquipmentModel(
        model_id="LUM-HPS-250",
        kind=ModelKind.LUMINAIRE,
        manufacturer="Lanterne du Sud",
        model="Koutoubia SHP 250W",
        rated_power_w=round(250 * 1.12, 1),
        power_at_min_dim_w=180.0,
        rated_life_h=20_000,
        warranty_years=2,
        replaceable_on_site=True,
        light_source="HPS",
        luminous_flux_lm=27_000,
    ),
    EquipmentModel(
        model_id="LUM-FLD-400",
        kind=ModelKind.LUMINAIRE,
        manufacturer="Projecteurs Menara",
        model="Place 400W",
        rated_power_w=round(400 * 1.08, 1),
        rated_life_h=15_000,
        warranty_years=2,
        replaceable_on_site=False,
        light_source="MH",
        luminous_flux_lm=32_000,
    ),
    EquipmentModel(
        model_id="DRV-LED-D4I",
        kind=ModelKind.DRIVER,
        manufacturer="Nour Lighting",
        model="D4i driver 150",
        rated_life_h=60_000,
        warranty_years=5,
        replaceable_on_site=True,
    ),
    # Ballasts last about 10 years [S].
    EquipmentModel(
        model_id="DRV-BALLAST",
        kind=ModelKind.DRIVER,
        manufacturer="Lanterne du Sud",
        model="Electromagnetic ballast",
        rated_life_h=41_500,
        warranty_years=2,
        replaceable_on_site=True,
    ),
    EquipmentModel(
        model_id="OLC-LORA-NEMA",
        kind=ModelKind.CONTROLLER,
        manufacturer="Rif Controls",
        model="LoRa NEMA node",
        rated_power_w=0.6,
        rated_life_h=100_000,
        warranty_years=5,
        replaceable_on_site=True,
    ),
    EquipmentModel(
        model_id="OLC-LORA-ECO",
        kind=ModelKind.CONTROLLER,
        manufacturer="Rif Controls",
        model="LoRa Eco node",
        rated_power_w=0.9,
        rated_life_h=40_000,
        warranty_years=2,
        replaceable_on_site=True,
    ),
)
_BY_ID: Final = {m.model_id: m for m in MODELS}


@dataclass(frozen=True, kw_only=True)
class EquipmentRegister:
    """A scenario's catalogue and assets."""

    models: list[EquipmentModel]
    assets: list[Asset]


def _add_years(day: date, years: int) -> date:
    year = day.year + years
    return day.replace(year=year, day=min(day.day, calendar.monthrange(year, day.month)[1]))


def _warranty(day: date, model_id: str) -> date | None:
    years = _BY_ID[model_id].warranty_years
    return None if years is None else _add_years(day, years)


def _luminaire_model(tech: int, rated_w: float) -> str:
    if tech == LED:
        return f"LUM-LED-{rated_w:g}"
    if tech == HPS:
        return f"LUM-HPS-{rated_w:g}"
    return f"LUM-FLD-{rated_w:g}"


def _serial(prefix: str, day: date, asset_id: str) -> str:
    return f"{prefix}{day:%y}-{derive_seed(0, 'serial', asset_id) % 10**7:07d}"


def _meter_id(number: int, layout_seed: int) -> str:
    # A contract number that looks issued, not sequential, and is unique by cabinet [A].
    return f"RDM-{derive_seed(layout_seed, 'meter', str(number)) % 10**4:04d}{number:05d}"


def _contracted_kw(load_w: float) -> float:
    # The cabinet's lights at full power plus a quarter for losses and margin [A].
    need = load_w * 1.25 / 1000
    return float(next((s for s in POWER_STEPS_KW if s >= need), math.ceil(need)))


def equipment_register(devices: CityDevices, scenario: Scenario) -> EquipmentRegister:
    """The register of ``devices``' lights: depends on the scenario's layout only."""
    lights = devices.lights
    seed = scenario.layout_seed
    rng = py_rng(seed, "equipment")
    ids = lights.ids
    district_of = [DISTRICTS[d].district for d in lights.district.tolist()]
    circuit_of = lights.circuit.tolist()
    tech_of = lights.tech.tolist()
    rated_of = lights.rated_w.tolist()
    lat_of = lights.lat.tolist()
    lon_of = lights.lon.tolist()

    members: dict[int, list[int]] = {}
    for i, c in enumerate(circuit_of):
        members.setdefault(c, []).append(i)
    # Per district, circuits in number order, one or two to a cabinet [A].
    by_district: dict[District, list[int]] = {}
    for c in sorted(members):
        by_district.setdefault(district_of[members[c][0]], []).append(c)

    assets: list[Asset] = []
    installed: dict[int, date] = {}
    cabinet_number = 0
    for district, circuits in by_district.items():
        start = LED_ROLLOUT[district]
        supplier = LED_SUPPLIERS[0 if district in (District.MEDINA, District.GUELIZ) else 1]
        for rank, c in enumerate(circuits):
            installed[c] = start + timedelta(days=_ROLLOUT_DAYS * rank // max(1, len(circuits)))
        k = 0
        while k < len(circuits):
            group = circuits[k : k + (2 if rng.random() < 0.3 else 1)]
            k += len(group)
            cabinet_number += 1
            cabinet_id = f"CAB-{cabinet_number:04d}"
            first = members[group[0]][0]
            day = min(installed[c] for c in group)
            load = sum(rated_of[i] for c in group for i in members[c])
            kw = _contracted_kw(load)
            assets.append(
                Asset(
                    asset_id=cabinet_id,
                    kind=AssetKind.CABINET,
                    label=f"cabinet {cabinet_number} ({district.value})",
                    serial=_serial("CB", day, cabinet_id),
                    supplier=supplier,
                    project_id=LED_TENDER,
                    installed_on=day,
                    warranty_until=_add_years(day, 5),
                    # Beside the first light of its first circuit, ~8 m off the street line.
                    lat=round(lat_of[first] + 0.00007, 6),
                    lon=round(lon_of[first], 6),
                    district=district.value,
                    meter_id=_meter_id(cabinet_number, seed),
                    contracted_kw=kw,
                    tariff=TARIFF_LOW if kw <= _LOW_LIMIT_KW else TARIFF_MEDIUM,
                )
            )
            for c in group:
                assets.append(
                    Asset(
                        asset_id=lights.circuit_ids[c],
                        kind=AssetKind.CIRCUIT,
                        parent_id=cabinet_id,
                        label=f"circuit {lights.circuit_ids[c]}",
                        installed_on=installed[c],
                        district=district.value,
                    )
                )
    for i, device_id in enumerate(ids):
        assets.extend(
            _light_assets(
                device_id,
                district_of[i],
                lights.circuit_ids[circuit_of[i]],
                tech_of[i],
                rated_of[i],
                lat_of[i],
                lon_of[i],
                installed[circuit_of[i]],
                py_rng(seed, "equipment", device_id),
            )
        )
    return EquipmentRegister(models=list(MODELS), assets=assets)


def _light_assets(
    device_id: str,
    district: District,
    circuit_id: str,
    tech: int,
    rated_w: float,
    lat: float,
    lon: float,
    led_day: date,
    rng: random.Random,
) -> list[Asset]:
    """A light point: its pole (none for a Médina façade fitting), luminaire, driver, node."""
    suffix = device_id.removeprefix("L-")
    model_id = _luminaire_model(tech, rated_w)
    if tech == LED:
        day, tender = led_day, LED_TENDER
        supplier = LED_SUPPLIERS[0 if district in (District.MEDINA, District.GUELIZ) else 1]
        driver_model = "DRV-LED-D4I"
    elif tech == HPS:
        day = date(2010, 1, 1) + timedelta(days=rng.randrange(5 * 365))
        tender, supplier, driver_model = HPS_TENDER, HPS_SUPPLIER, "DRV-BALLAST"
    else:
        assert tech == FLOOD
        day = date(2015, 1, 1) + timedelta(days=rng.randrange(365))
        tender, supplier, driver_model = FLOOD_TENDER, FLOOD_SUPPLIER, "DRV-BALLAST"
    facade = district is District.MEDINA and tech == LED and rated_w <= 40
    out: list[Asset] = []
    parent = circuit_id
    if not facade:
        pole_id = f"P-{suffix}"
        out.append(
            Asset(
                asset_id=pole_id,
                kind=AssetKind.POLE,
                parent_id=circuit_id,
                installed_on=date(2000, 1, 1) + timedelta(days=rng.randrange(15 * 365)),
                lat=lat,
                lon=lon,
                district=district.value,
            )
        )
        parent = pole_id
    lum_id = f"LUM-{suffix}"
    out.append(
        Asset(
            asset_id=lum_id,
            kind=AssetKind.LUMINAIRE,
            parent_id=parent,
            label="façade fitting" if facade else None,
            device_id=device_id,
            model_id=model_id,
            serial=_serial("LU", day, lum_id),
            supplier=supplier,
            project_id=tender,
            installed_on=day,
            warranty_until=_warranty(day, model_id),
            lat=lat,
            lon=lon,
            district=district.value,
        )
    )
    controller_model = "OLC-LORA-ECO" if district is District.MEDINA else "OLC-LORA-NEMA"
    # Every light reports, so every one has its node, fitted with the LED contract.
    parts = [
        (f"DRV-{suffix}", AssetKind.DRIVER, driver_model, day, DRIVER_SWAPPED, "DR"),
        (
            f"OLC-{suffix}",
            AssetKind.CONTROLLER,
            controller_model,
            max(day, led_day),
            MEDINA_CONTROLLER_SWAPPED if district is District.MEDINA else 0.0,
            "NC",
        ),
    ]
    for asset_id, kind, part_model, fitted, swapped, prefix in parts:
        if rng.random() < swapped:  # already replaced once since: a later part in the slot
            fitted = fitted + timedelta(days=rng.randrange(200, 1800))
        out.append(
            Asset(
                asset_id=asset_id,
                kind=kind,
                parent_id=lum_id,
                model_id=part_model,
                serial=_serial(prefix, fitted, asset_id),
                supplier=supplier if kind is AssetKind.DRIVER else LED_SUPPLIERS[0],
                project_id=tender if kind is AssetKind.DRIVER else LED_TENDER,
                installed_on=fitted,
                warranty_until=_warranty(fitted, part_model),
                district=district.value,
            )
        )
    return out
