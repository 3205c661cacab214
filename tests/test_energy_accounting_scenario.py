"""A simulated district month with an illegal tap, a dark circuit and an estimated bill:
the reconciliation flags exactly those three, each on its own cabinet."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg

from telemetry.energy_accounting.month import reconcile_month
from telemetry.energy_accounting.reconcile import FlagCode, Thresholds
from telemetry.energy_accounting.tariffs import EXAMPLE_FILE, load_tariffs
from telemetry.storage.energy_accounting import load_month, save_month, stored_month
from tests.support.energy_city import MONTH, Defects, build_district

TZ = ZoneInfo("Africa/Casablanca")


def test_a_district_month_flags_exactly_the_tap_the_dark_circuit_and_the_estimate(
    db: psycopg.Connection,
) -> None:
    tariffs = load_tariffs(EXAMPLE_FILE)
    defects = Defects(
        tap_w=600.0,
        tap_cabinet="CAB-0004",
        dark_circuit="C-010",
        dark_from=datetime.combine(
            MONTH + timedelta(days=4), time(12), ZoneInfo("Africa/Casablanca")
        ),
        estimated_cabinet="CAB-0012",
    )
    district = build_district(db, tariffs, defects)
    dark_cabinet = next(c for c, ks in district.circuits.items() if "C-010" in ks)
    assert dark_cabinet not in {"CAB-0004", "CAB-0012"}

    data = load_month(db, MONTH)
    assert len(data.lights) == 2000
    rows = reconcile_month(data, tariffs)
    flagged = {r.cabinet_id: r.flag_codes for r in rows if r.flags}
    assert flagged == {
        "CAB-0004": [FlagCode.UNMETERED_LOAD.value],
        dark_cabinet: [FlagCode.DARK_CIRCUIT.value],
        "CAB-0012": [FlagCode.ESTIMATED_BILL.value],
    }
    by_id = {r.cabinet_id: r for r in rows}
    tap = by_id["CAB-0004"].flags[0].evidence
    assert tap["excess_kwh"] is not None
    # Every cabinet was billed and the bills match the tariff.
    assert all(r.billed_kwh is not None and r.recomputed_dh is not None for r in rows)
    dark = by_id[dark_cabinet].flags[0].evidence
    assert dark["circuits"] == ["C-010"]

    save_month(db, MONTH, rows, tariff_source=str(EXAMPLE_FILE), thresholds=Thresholds())
    assert [r.flag_codes for r in stored_month(db, MONTH)] == [r.flag_codes for r in rows]
