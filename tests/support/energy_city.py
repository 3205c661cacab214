"""A simulated district month for energy accounting: the simulators' lights (their photocells,
dimming and ballasts) metered hour by hour, some cabinets with their own meter, and the
utility's bills, with injected defects: an illegal tap, a dark circuit, an estimated bill."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import numpy as np
import psycopg

from simulators.devices import build_devices, registry_records
from simulators.equipment import equipment_register
from simulators.lights import LightFleet
from simulators.scenario import Scenario
from telemetry.energy_accounting.bills import Bill, BillFile
from telemetry.energy_accounting.month import last_day, local_window
from telemetry.energy_accounting.reconcile import CabinetMonth, Flag, FlagCode, Thresholds
from telemetry.energy_accounting.tariffs import TariffSet, period_cost
from telemetry.equipment.files import AssetFile
from telemetry.equipment.records import Asset, AssetKind
from telemetry.registry import DeviceRecord
from telemetry.storage.backend import Backend, recorded_backend
from telemetry.storage.devices import upsert_devices
from telemetry.storage.energy import catch_up_energy_rollups
from telemetry.storage.energy_accounting import import_bills, save_month
from telemetry.storage.equipment import import_assets, import_models
from telemetry.storage.maintenance import ensure_partitions
from telemetry.topics import Fleet

#: A month without Ramadan or clock change, before the tests' "now".
MONTH = date(2026, 11, 1)
#: Cable losses between a cabinet's meter and its lights (under the 3 % allowance).
LOSSES = 0.015


@dataclass(kw_only=True)
class Defects:
    """What is injected, and where."""

    tap_w: float = 0.0  # an illegal tap on the tap cabinet, drawing while its lights burn
    tap_cabinet: str | None = None
    dark_circuit: str | None = None  # supply lost from dark_from, its lights silent after
    dark_from: datetime | None = None
    estimated_cabinet: str | None = None  # its bill estimated at estimate_factor × measured
    estimate_factor: float = 1.2


@dataclass(kw_only=True)
class District:
    """What was built: cabinets, which have a meter, and the measured month of each."""

    cabinets: list[Asset]
    metered: set[str]  # cabinets with their own meter device
    circuits: dict[str, list[str]]  # cabinet → its circuits
    measured_kwh: dict[str, float] = field(default_factory=dict)
    bills: list[Bill] = field(default_factory=list)


def _hours(start: datetime, end: datetime) -> list[datetime]:
    hours = []
    t = start
    while t <= end:
        hours.append(t)
        t += timedelta(hours=1)
    return hours


def build_district(
    conn: psycopg.Connection,
    tariffs: TariffSet,
    defects: Defects,
    *,
    lights: int = 2000,
    month: date = MONTH,
) -> District:
    """Register, meter and bill one Guéliz district of ``lights`` lights for ``month``."""
    scenario = Scenario.model_validate(
        {
            "lights": {"by_district": {"gueliz": lights}},
            "buses": {"count": 0},
            "trucks": {"count": 0},
        }
    )
    devices = build_devices(scenario)
    register = equipment_register(devices, scenario)
    cabinets = [a for a in register.assets if a.kind is AssetKind.CABINET]
    circuits: dict[str, list[str]] = {}
    for a in register.assets:
        if a.kind is AssetKind.CIRCUIT and a.parent_id is not None:
            circuits.setdefault(a.parent_id, []).append(a.asset_id)
    # Every other cabinet has its own meter reporting like a light (a device on the cabinet).
    metered = {c.asset_id for k, c in enumerate(cabinets) if k % 2 == 1}
    for name in (defects.tap_cabinet, defects.estimated_cabinet):
        if name is not None:
            metered.add(name)
    meter_of = {c: f"M-{c}" for c in metered}
    assets = [
        dataclasses.replace(a, device_id=meter_of[a.asset_id]) if a.asset_id in meter_of else a
        for a in register.assets
    ]
    records = registry_records(devices, scenario)
    records += [
        DeviceRecord(device_id=m, fleet=Fleet.LIGHT, label="cabinet meter")
        for m in meter_of.values()
    ]
    upsert_devices(conn, records)
    import_models(conn, register.models)
    import_assets(conn, AssetFile(assets=assets, where={a.asset_id: "simulated" for a in assets}))

    first, last = month, last_day(month)
    start, end = local_window(first, last)
    hours = _hours(start - timedelta(days=1), end + timedelta(hours=2))
    layout = devices.lights
    idx = np.arange(len(layout), dtype=np.int64)
    fleet = LightFleet(layout, idx, scenario, 7, hours[0].timestamp(), "rasd/v1")
    circuit_of = [layout.circuit_ids[c] for c in layout.circuit.tolist()]
    cabinet_of_circuit = {k: cab for cab, ks in circuits.items() for k in ks}
    members: dict[str, list[int]] = {}
    for i, k in enumerate(circuit_of):
        members.setdefault(cabinet_of_circuit[k], []).append(i)
    dark_members = np.array(
        [i for i, k in enumerate(circuit_of) if k == defects.dark_circuit], dtype=np.int64
    )
    meter_wh = {c: 1_000_000.0 for c in metered}
    previous = fleet.energy_wh.copy()
    rows: list[tuple[object, ...]] = []
    for t in hours:
        fleet.settle(idx, t.timestamp())
        if defects.dark_from is not None and t >= defects.dark_from and dark_members.size:
            fleet.supply_lost[dark_members] = 1
        on, level, power = fleet.lamp_state(idx, np.array([t.timestamp()]))
        rise = fleet.energy_wh - previous
        previous = fleet.energy_wh.copy()
        silent = (
            set(dark_members.tolist())
            if defects.dark_from is not None and t >= defects.dark_from
            else set()
        )
        for i, device_id in enumerate(layout.ids):
            if i in silent:
                continue
            lit = bool(on[i, 0])
            rows.append(
                (
                    device_id,
                    t,
                    t,
                    float(fleet.energy_wh[i]),
                    float(power[i, 0]),
                    lit,
                    float(level[i, 0]) if lit else 0.0,
                )
            )
        for name in metered:
            ids = members.get(name, [])
            used = float(rise[ids].sum()) * (1 + LOSSES)
            burning = bool(on[ids, 0].any()) if ids else False
            if name == defects.tap_cabinet and burning:
                used += defects.tap_w
            meter_wh[name] += used
            rows.append((meter_of[name], t, t, meter_wh[name], None, burning, None))

    if recorded_backend(conn) is Backend.PLAIN:
        ensure_partitions(
            conn, "light_energy", hours[0] - timedelta(days=2), hours[-1] + timedelta(days=2)
        )
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY light_energy (device_id, time, received_at, energy_wh, power_w, lamp_on, "
            "dim_pct) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)
    catch_up_energy_rollups(conn, hours[-1], timedelta(hours=3))

    district = District(cabinets=cabinets, metered=metered, circuits=circuits)
    index_at = _index(rows)
    for cab in cabinets:
        devices_of = (
            [meter_of[cab.asset_id]]
            if cab.asset_id in metered
            else [layout.ids[i] for i in members.get(cab.asset_id, [])]
        )
        kwh = sum(index_at(d, end) - index_at(d, start) for d in devices_of) / 1000.0
        district.measured_kwh[cab.asset_id] = kwh
        estimated = cab.asset_id == defects.estimated_cabinet
        billed = float(round(kwh * (defects.estimate_factor if estimated else 1.0)))
        assert cab.meter_id is not None and cab.tariff is not None
        cost = period_cost(
            tariffs, cab.tariff, first, last, billed, contracted_kw=cab.contracted_kw
        )
        district.bills.append(
            Bill(
                meter_id=cab.meter_id,
                period_start=first,
                period_end=last,
                billed_kwh=billed,
                amount_dh=round(cost.total_dh, 2),
                estimated=estimated,
                vat_dh=round(cost.vat_dh, 2),
                bill_number=f"F-{cab.asset_id}-{first:%Y%m}",
            )
        )
    import_bills(
        conn,
        BillFile(
            bills=district.bills, places=[f"bill {k + 1}" for k in range(len(district.bills))]
        ),
    )
    return district


def _index(rows: list[tuple[object, ...]]) -> Callable[[str, datetime], float]:
    by_device: dict[str, list[tuple[datetime, float]]] = {}
    for row in rows:
        device, t, _, wh = row[0], row[1], row[2], row[3]
        assert isinstance(device, str) and isinstance(t, datetime) and isinstance(wh, float)
        by_device.setdefault(device, []).append((t, wh))

    def index_at(device: str, at: datetime) -> float:
        before = [wh for t, wh in by_device.get(device, []) if t < at]
        return before[-1] if before else 0.0

    return index_at


def seed_reconciliation(conn: psycopg.Connection) -> CabinetMonth:
    """One reconciled cabinet month (October 2025, Médina), for the open-data feeds' tests."""
    row = CabinetMonth(
        cabinet_id="CAB-OD-1",
        month=date(2025, 10, 1),
        district="medina",
        meter_id="RDM-OD-1",
        tariff="eclairage_public_bt",
        contracted_kw=6.0,
        lights=40,
        lights_reporting=40,
        connected_kw=2.4,
        burning_hours=365.0,
        modelled_kwh=700.0,
        lights_metered_kwh=680.0,
        cabinet_metered_kwh=690.0,
        metered_kwh=690.0,
        metered_source="cabinet_meter",
        peak_kw=2.4,
        day_burning_kwh=0.0,
        bill_number="F-OD-1",
        bill_period_start=date(2025, 10, 1),
        bill_period_end=date(2025, 10, 31),
        billed_kwh=800.0,
        billed_dh=1050.0,
        bill_estimated=True,
        bill_metered_kwh=690.0,
        recomputed_dh=1048.9,
        expected_dh=905.0,
        dimming_saved_kwh=230.0,
        retrofit_saved_kwh=None,
        saved_dh=296.0,
        saved_co2_kg=139.6,
        flags=[
            Flag(
                code=FlagCode.ESTIMATED_BILL,
                message="bill F-OD-1 is an estimate",
                evidence={"billed_kwh": 800.0, "metered_kwh": 690.0},
            )
        ],
        notes=[],
    )
    save_month(conn, row.month, [row], tariff_source="test", thresholds=Thresholds())
    return row
