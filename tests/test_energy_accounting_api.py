"""Energy accounting end to end: bill imports through the CLI (refusals, idempotency), a
month reconciled by the CLI and served by the API, and the registry fallback without a
register."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TextIO

import psycopg
import pytest

from api.auth import Role
from telemetry.energy_accounting.month import reconcile_month
from telemetry.energy_accounting.tariffs import EXAMPLE_FILE, load_tariffs
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.backend import Backend, recorded_backend
from telemetry.storage.devices import upsert_devices
from telemetry.storage.energy import catch_up_energy_rollups
from telemetry.storage.energy_accounting import bills_between, load_month
from telemetry.storage.maintenance import ensure_partitions
from telemetry.topics import Fleet
from tests.support.api_server import ApiServer, api_server, make_token
from tests.support.energy_city import MONTH, Defects, build_district
from tests.support.env import settings_env

HEADER = "meter_id,period_start,period_end,billed_kwh,amount_dh,estimated,vat_dh,bill_number\n"


def _writing(path: str) -> TextIO:
    return open(path, "w", encoding="utf-8")


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "telemetry", "energy", *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
async def api(migrated: Settings) -> AsyncIterator[ApiServer]:
    """The API on the test schema."""
    async for server in api_server(migrated):
        yield server


async def test_bills_import_reconcile_and_serve_a_month(
    migrated: Settings, db: psycopg.Connection, api: ApiServer, tmp_path: Path
) -> None:
    tariffs = load_tariffs(EXAMPLE_FILE)
    district = build_district(db, tariffs, Defects(), lights=160)
    meters = [c.meter_id or "" for c in district.cabinets]
    assert len(meters) >= 3 and all(meters)
    stored = {b.meter_id: b for b in bills_between(db, MONTH, MONTH + timedelta(days=30))}
    assert set(stored) == set(meters)
    path = f"{tmp_path}/bills.csv"

    # A file with one unknown meter and one overlapping period imports nothing.
    first = stored[meters[0]]
    with _writing(path) as f:
        f.write(HEADER)
        f.write(
            f"{first.meter_id},2026-11-01,2026-11-30,{first.billed_kwh},{first.amount_dh},no,,X\n"
        )
        f.write("RDM-NOBODY,2026-11-01,2026-11-30,10,12.5,no,,Y\n")
        f.write(f"{meters[1]},2026-11-15,2026-12-14,10,12.5,no,,Z\n")
    done = _cli(migrated, "bills", "import", path)
    assert done.returncode == 1
    assert "line 3: meter RDM-NOBODY is no cabinet's meter_id" in done.stderr
    assert "line 4: meter" in done.stderr and "overlaps the stored bill" in done.stderr
    assert bills_between(db, MONTH, MONTH + timedelta(days=30))[0].bill_number == (
        stored[sorted(stored)[0]].bill_number
    )

    # The same bill again changes nothing; a corrected amount replaces it.
    with _writing(path) as f:
        f.write(HEADER)
        f.write(
            f"{first.meter_id},01/11/2026,30/11/2026,{first.billed_kwh},{first.amount_dh},non,"
            f"{first.vat_dh},{first.bill_number}\n"
        )
    done = _cli(migrated, "bills", "import", path)
    assert done.returncode == 0, done.stderr
    assert "1 bills imported: 0 new, 0 changed, 1 unchanged" in done.stdout
    with _writing(path) as f:
        f.write(HEADER)
        f.write(
            f"{first.meter_id},2026-11-01,2026-11-30,{first.billed_kwh},"
            f"{first.amount_dh + 90},false,{first.vat_dh},{first.bill_number}\n"
        )
    done = _cli(migrated, "bills", "import", path)
    assert "0 new, 1 changed, 0 unchanged" in done.stdout

    done = _cli(migrated, "reconcile", "--month", "2026-11")
    assert done.returncode == 0, done.stderr
    assert "EXAMPLE tariff file" in done.stderr
    # The city's own sheet, named once in the settings, needs no --tariffs and no warning.
    sheet = tmp_path / "tariffs.toml"
    sheet.write_text(EXAMPLE_FILE.read_text("utf-8"), "utf-8")
    configured = migrated.model_copy(update={"energy_tariffs_file": str(sheet)})
    done = _cli(configured, "reconcile", "--month", "2026-11")
    assert done.returncode == 0, done.stderr
    assert "EXAMPLE" not in done.stderr
    assert f"{first.meter_id}" not in done.stdout  # flags name cabinets, not meters
    cabinet = next(c.asset_id for c in district.cabinets if c.meter_id == first.meter_id)
    assert f"{cabinet} tariff_mismatch" in done.stdout

    letter = tmp_path / "dispute.html"
    done = _cli(
        migrated, "dispute", cabinet, "--month", "2026-11", "--lang", "ar", "--out", str(letter)
    )
    assert done.returncode == 0, done.stderr
    page = letter.read_text("utf-8")
    assert 'dir="rtl"' in page and 'data-code="tariff_mismatch"' in page
    other = next(c.asset_id for c in district.cabinets if c.asset_id != cabinet)
    done = _cli(migrated, "dispute", other, "--month", "2026-11")
    assert done.returncode == 1 and f"cabinet {other} has no flag in 2026-11" in done.stderr

    # A baseline measured on this month: the same month against it saves nothing in all.
    refused = _cli(migrated, "baseline", cabinet, "--from", "2025-01", "--to", "2025-12")
    assert refused.returncode == 1 and "no metered month reconciled" in refused.stderr
    done = _cli(migrated, "baseline", cabinet, "--from", "2026-11", "--to", "2026-11")
    assert done.returncode == 0, done.stderr
    assert f"baseline of {cabinet}:" in done.stdout
    assert _cli(migrated, "reconcile", "--month", "2026-11").returncode == 0

    operator = await make_token(migrated, Role.OPERATOR)
    reporter = await make_token(migrated, Role.REPORTER)
    async with api.client(operator) as client:
        answer = await client.get("/api/v1/energy/reconciliation", params={"month": "2026-11"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["city"]["cabinets"] == len(district.cabinets)
        assert body["city"]["lights"] == 160
        assert body["city"]["flags"] == {"tariff_mismatch": 1}
        row = next(c for c in body["cabinets"] if c["cabinet_id"] == cabinet)
        assert row["flags"][0]["code"] == "tariff_mismatch"
        assert row["flags"][0]["evidence"]["difference_dh"] == pytest.approx(90.0, abs=0.02)
        assert [d["key"] for d in body["districts"]] == ["gueliz"]
        saved = row["dimming_saved_kwh"] + row["retrofit_saved_kwh"]
        assert row["dimming_saved_kwh"] > 0 and saved == pytest.approx(0.0, abs=0.01)
        one = await client.get(
            "/api/v1/energy/reconciliation", params={"month": "2026-11", "district": "gueliz"}
        )
        assert one.json()["city"]["key"] == "gueliz"
        table = await client.get("/api/v1/energy/reconciliation.csv", params={"month": "2026-11"})
        assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
        lines = list(csv.DictReader(io.StringIO(table.text)))
        assert len(lines) == len(district.cabinets)
        line = next(x for x in lines if x["cabinet_id"] == cabinet)
        assert line["flags"] == "tariff_mismatch" and line["month"] == "2026-11"
        assert float(line["billed_dh"]) == pytest.approx(row["billed_dh"])
        letter_ar = await client.get(
            f"/api/v1/energy/reconciliation/{cabinet}/dispute",
            params={"month": "2026-11", "lang": "ar"},
        )
        assert letter_ar.status_code == 200 and 'dir="rtl"' in letter_ar.text
        assert "/static/dispute.css" in letter_ar.text
        assert (await client.get("/static/dispute.css")).status_code == 200
        assert letter_ar.headers["content-type"].startswith("text/html")
        unflagged = await client.get(
            f"/api/v1/energy/reconciliation/{other}/dispute", params={"month": "2026-11"}
        )
        assert unflagged.status_code == 404
        for params, status in (
            ({"month": "2026-10"}, 404),
            ({"month": "2026-13"}, 422),
            # Year 0 is no date at all (the API fuzz test found it answered 500).
            ({"month": "0000-06"}, 422),
            ({"month": "2100-01"}, 422),
            ({"month": "2026-11", "district": "nowhere"}, 404),
        ):
            assert (
                await client.get("/api/v1/energy/reconciliation", params=params)
            ).status_code == status
    async with api.client() as client:
        feed = await client.get(
            "/open-data/v1/energy-accounting-monthly.json",
            params={"from": "2026-11", "to": "2026-11"},
        )
        assert feed.status_code == 200, feed.text
        (figures,) = feed.json()["rows"]
        assert figures["month"] == "2026-11" and figures["district"] == "gueliz"
        assert figures["cabinets"] == len(district.cabinets) and figures["lights"] == 160
        assert figures["flagged_cabinets"] == 1
        assert figures["billed_kwh"] == pytest.approx(body["city"]["billed_kwh"], abs=0.01)
        assert feed.json()["data_until"] == "2026-11-01"
    async with api.client(reporter) as client:
        forbidden = await client.get("/api/v1/energy/reconciliation", params={"month": "2026-11"})
        assert forbidden.status_code == 403
    async with api.client() as client:
        anonymous = await client.get("/api/v1/energy/reconciliation", params={"month": "2026-11"})
        assert anonymous.status_code == 401


def test_without_a_register_the_registry_circuits_stand_for_cabinets(
    db: psycopg.Connection,
) -> None:
    start, end = (MONTH - timedelta(days=2)), MONTH + timedelta(days=32)
    upsert_devices(
        db,
        [
            DeviceRecord(
                device_id=f"L-{k}",
                fleet=Fleet.LIGHT,
                circuit=f"C-{k % 2}",
                district="menara",
                rated_w=100.0,
                lat=31.6,
                lon=-8.0,
            )
            for k in range(4)
        ],
    )
    t0 = datetime.combine(start, time(), UTC)
    if recorded_backend(db) is Backend.PLAIN:
        ensure_partitions(
            db, "light_energy", t0 - timedelta(days=1), datetime.combine(end, time(), UTC)
        )
    with (
        db.cursor() as cur,
        cur.copy("COPY light_energy (device_id, time, received_at, energy_wh) FROM STDIN") as copy,
    ):
        for h in range(24 * 34):
            t = t0 + timedelta(hours=h)
            for k in range(4):
                copy.write_row((f"L-{k}", t, t, 50.0 * h))
    catch_up_energy_rollups(db, t0 + timedelta(hours=24 * 34), timedelta(hours=3))
    data = load_month(db, MONTH)
    assert sorted(c.cabinet_id for c in data.cabinets) == ["C-0", "C-1"]
    rows = reconcile_month(data, load_tariffs(EXAMPLE_FILE))
    for row in rows:
        assert row.lights == 2
        assert row.meter_id is None and row.billed_kwh is None
        # 50 Wh an hour for each of two lights, the 720 hours of November.
        assert row.lights_metered_kwh == pytest.approx(2 * 0.05 * 720)
        assert row.metered_source == "lights"
        # Burning at 50 W all day and night is day burning.
        assert row.flag_codes == ["day_burning_energy"]
