"""The devices of a scenario: buses on lines, trucks with rounds, lights; and their registry."""

from __future__ import annotations

from dataclasses import dataclass

from simulators.city import DEPOTS, DISTRICT_BY_NAME, DISTRICTS, District
from simulators.collection import (
    ARMA_DISTRICTS,
    COLLECTING,
    Round,
    TruckKind,
    district_rounds,
    split_by_weight,
    truck_kinds,
)
from simulators.errors import ScenarioError
from simulators.gateway_identities import light_dev_eui, tracker_imei
from simulators.lights_layout import TECH_NAMES, LightLayout, build_light_layout, district_counts
from simulators.routes import LINES, allocate_buses
from simulators.scenario import Scenario
from simulators.seeds import py_rng
from telemetry.registry import DeviceRecord
from telemetry.topics import Fleet

OPERATOR_CODES = {"Arma": "ARM", "Mecomar": "MEC"}


@dataclass(frozen=True, slots=True)
class BusSpec:
    """One bus: its line and its place among the line's buses."""

    device_id: str
    line_id: str
    index: int
    count: int


@dataclass(frozen=True, slots=True)
class TruckSpec:
    """One truck: operator, district, kind and round of sites."""

    device_id: str
    operator: str
    district: District
    kind: TruckKind
    round: Round


@dataclass(frozen=True)
class CityDevices:
    """Everything a scenario simulates."""

    buses: list[BusSpec]
    trucks: list[TruckSpec]
    lights: LightLayout


def _buses(scenario: Scenario) -> list[BusSpec]:
    line_ids = scenario.buses.lines or list(LINES)
    unknown = [line for line in line_ids if line not in LINES]
    if unknown:
        raise ScenarioError(f"buses.lines: unknown lines {unknown}; known: {', '.join(LINES)}")
    specs: list[BusSpec] = []
    for line_id, count in allocate_buses(scenario.scaled(scenario.buses.count), line_ids):
        for index in range(count):
            specs.append(BusSpec(f"B-{len(specs) + 1:03d}", line_id, index, count))
    return specs


def _trucks(scenario: Scenario) -> list[TruckSpec]:
    total = scenario.scaled(scenario.trucks.count)
    arma = round(total * scenario.trucks.arma_share)
    plan: list[tuple[str, list[District], list[int]]] = [
        (
            "Arma",
            list(ARMA_DISTRICTS),
            split_by_weight(arma, [DISTRICT_BY_NAME[d].population for d in ARMA_DISTRICTS]),
        ),
        ("Mecomar", [District.MENARA], [total - arma]),
    ]
    specs: list[TruckSpec] = []
    for operator, districts, counts in plan:
        kinds = truck_kinds(sum(counts))
        number = 0
        for district, count in zip(districts, counts, strict=True):
            rounds = district_rounds(scenario.layout_seed, district, count)
            for round_ in rounds:
                number += 1
                device_id = f"T-{OPERATOR_CODES[operator]}-{number:03d}"
                kind = kinds[number - 1]
                if kind in COLLECTING:
                    round_ = _fixed_round(scenario, device_id, round_)
                specs.append(TruckSpec(device_id, operator, district, kind, round_))
    return specs


def _fixed_round(scenario: Scenario, device_id: str, sector: Round) -> Round:
    """The same round every night: per-trip site counts drawn once from ``layout_seed``, so
    the round (and the network file describing it) depends on the scenario, not the run."""
    rng = py_rng(scenario.layout_seed, device_id, "round")
    config = scenario.trucks
    return sector.with_trips(
        [rng.randint(*config.points_per_round) for _ in range(config.trips_per_shift)]
    )


def _lights(scenario: Scenario) -> LightLayout:
    config = scenario.lights
    if config.by_district is not None:
        counts = {d: scenario.scaled(c) for d, c in config.by_district.items()}
    else:
        counts = district_counts(scenario.scaled(config.count))
    return build_light_layout(counts, scenario.layout_seed, config.lamps_per_circuit)


def build_devices(scenario: Scenario) -> CityDevices:
    """The devices of ``scenario``; depends on the scenario only (``layout_seed``), not the run."""
    return CityDevices(_buses(scenario), _trucks(scenario), _lights(scenario))


def registry_records(devices: CityDevices, scenario: Scenario) -> list[DeviceRecord]:
    """Rows for ``python -m telemetry devices import``."""
    records = [
        DeviceRecord(
            device_id=b.device_id,
            fleet=Fleet.BUS,
            label=f"line {b.line_id} bus {b.index + 1}",
            route=b.line_id,
            operator=scenario.buses.operator,
            external_id=tracker_imei(b.device_id),
        )
        for b in devices.buses
    ]
    records += [
        DeviceRecord(
            device_id=t.device_id,
            fleet=Fleet.TRUCK,
            label=t.kind.value,
            district=t.district.value,
            operator=t.operator,
            lat=DEPOTS[t.operator][0],
            lon=DEPOTS[t.operator][1],
            external_id=tracker_imei(t.device_id),
        )
        for t in devices.trucks
    ]
    lights = devices.lights
    for device_id, d, c, tech, rated, lat, lon in zip(
        lights.ids,
        lights.district.tolist(),
        lights.circuit.tolist(),
        lights.tech.tolist(),
        lights.rated_w.tolist(),
        lights.lat.tolist(),
        lights.lon.tolist(),
        strict=True,
    ):
        records.append(
            DeviceRecord(
                device_id=device_id,
                fleet=Fleet.LIGHT,
                label=f"{TECH_NAMES[tech]} {rated:g} W",
                district=DISTRICTS[d].district.value,
                circuit=lights.circuit_ids[c],
                rated_w=rated,
                lat=lat,
                lon=lon,
                operator=scenario.lights.operator,
                external_id=light_dev_eui(device_id),
            )
        )
    return records
