"""The simulators' equipment register: it imports cleanly after their device registry and
describes the same lights (device ids, circuits, districts, positions, rated power)."""

from __future__ import annotations

from collections import Counter

import psycopg
import pytest

from simulators.devices import build_devices, registry_records
from simulators.equipment import MODELS, equipment_register
from simulators.scenario import load_scenario
from telemetry.equipment.files import (
    parse_assets_csv,
    parse_models_csv,
    render_assets_csv,
    render_models_csv,
)
from telemetry.equipment.records import AssetKind
from telemetry.equipment.tree import Node, tree_problems
from telemetry.storage.devices import upsert_devices
from telemetry.storage.equipment import import_assets, import_models
from telemetry.topics import Fleet


def test_the_smoke_city_register_imports_and_matches_its_lights(db: psycopg.Connection) -> None:
    scenario = load_scenario("smoke")
    devices = build_devices(scenario)
    records = registry_records(devices, scenario)
    register = equipment_register(devices, scenario)
    assert register == equipment_register(build_devices(scenario), scenario)  # deterministic

    upsert_devices(db, records)
    # Through the files, as the demo does.
    assert import_models(db, parse_models_csv(render_models_csv(register.models))) == len(MODELS)
    parsed = parse_assets_csv(render_assets_csv(register.assets))
    done = import_assets(db, parsed)
    assert done.created == len(register.assets) and done.unchanged == 0

    lights = {r.device_id: r for r in records if r.fleet is Fleet.LIGHT}
    rows = db.execute(
        "SELECT a.device_id, a.lat, a.lon, a.district, m.rated_power_w, m.light_source, "
        "v.circuit_id, v.cabinet_id, c.district "
        "FROM equipment_assets a "
        "JOIN equipment_models m ON m.model_id = a.model_id "
        "JOIN equipment_device_cabinets v ON v.device_id = a.device_id "
        "JOIN equipment_assets c ON c.asset_id = v.cabinet_id "
        "WHERE a.kind = 'luminaire'"
    ).fetchall()
    assert {r[0] for r in rows} == set(lights)
    for device_id, lat, lon, district, rated, source, circuit, cabinet, cab_district in rows:
        light = lights[device_id]
        assert (lat, lon, district) == (light.lat, light.lon, light.district), device_id
        assert circuit == light.circuit and cab_district == light.district, device_id
        assert cabinet.startswith("CAB-"), device_id
        assert light.label is not None
        expected_source = {"LED": "LED", "HPS": "HPS", "floodlight": "MH"}[light.label.split()[0]]
        assert source == expected_source, device_id
        # What the simulated light draws at full power: discharge lamps with their ballast.
        losses = {"LED": 1.0, "HPS": 1.12, "MH": 1.08}[source]
        assert light.rated_w is not None
        assert rated == pytest.approx(light.rated_w * losses), device_id

    kinds = Counter(a.kind for a in register.assets)
    assert kinds[AssetKind.LUMINAIRE] == kinds[AssetKind.DRIVER] == len(lights)
    assert kinds[AssetKind.CONTROLLER] == len(lights)
    assert kinds[AssetKind.CIRCUIT] == len({r.circuit for r in lights.values()})
    assert kinds[AssetKind.CIRCUIT] >= kinds[AssetKind.CABINET] > 0
    # Médina façade fittings hang from their circuit; every other luminaire has a pole.
    assert 0 < kinds[AssetKind.POLE] < len(lights)

    cabinets = db.execute(
        "SELECT c.asset_id, c.contracted_kw, c.meter_id, c.tariff, sum(m.rated_power_w) "
        "FROM equipment_assets c "
        "JOIN equipment_device_cabinets v ON v.cabinet_id = c.asset_id "
        "JOIN equipment_assets l ON l.asset_id = v.asset_id "
        "JOIN equipment_models m ON m.model_id = l.model_id "
        "GROUP BY c.asset_id"
    ).fetchall()
    assert len(cabinets) == kinds[AssetKind.CABINET]
    for cabinet_id, kw, meter, tariff, load_w in cabinets:
        assert kw >= load_w / 1000 and meter.startswith("RDM-"), cabinet_id
        assert tariff in ("eclairage_public_bt", "eclairage_public_mt")

    # Warranties follow the catalogue: LED luminaires 10 years from their installation.
    for asset in register.assets:
        if asset.model_id == "LUM-LED-60" and asset.installed_on and asset.warranty_until:
            assert asset.warranty_until.year - asset.installed_on.year == 10


def test_the_full_city_register_is_a_legal_tree() -> None:
    scenario = load_scenario("city")
    register = equipment_register(build_devices(scenario), scenario)
    nodes = {
        a.asset_id: Node(asset_id=a.asset_id, kind=a.kind, parent_id=a.parent_id, where="-")
        for a in register.assets
    }
    assert len(nodes) == len(register.assets)
    assert tree_problems(nodes) == []
    assert all(a.problems() == [] for a in register.assets)
    meters = [a.meter_id for a in register.assets if a.kind is AssetKind.CABINET]
    assert len(set(meters)) == len(meters)
    assert 1_000 <= len(meters) <= 1_800  # ~1,800 circuits, one or two to a cabinet
