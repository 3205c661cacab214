"""The maintenance KPIs stored per month and published as the ``maintenance-kpis-monthly`` feed:
the stored rows are ``maintenance_kpis()``'s figures for the hand-made December 2025 of
tests/test_work_orders_kpis.py (city and each district), storing again replaces them, the
command and the API's refresher store them, and the feed serves them in CSV and JSON with
no light, asset, serial or person in them."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from api.open_data.feeds import BY_NAME, PERSONAL_COLUMNS
from api.open_data.refresh import kpi_months_to_store
from api.open_data.shaping import shape_rows
from telemetry.alert_events import Severity
from telemetry.alert_records import NewAlert
from telemetry.settings import Settings
from telemetry.storage.alerts import clear_alert, open_alert
from telemetry.storage.maintenance_kpis import (
    KpiFigures,
    StoredMonthState,
    kpi_figures,
    maintenance_kpis,
    store_month,
    stored_figures,
)
from telemetry.topics import Fleet
from tests import test_work_orders_kpis as hand_made
from tests.support.api_server import ApiServer
from tests.support.env import settings_env
from tests.support.open_data_city import parse_csv, refresher

city = hand_made.city  # the hand-made month, as a fixture of this module too
MONTH = hand_made.MONTH
DECEMBER = date(2025, 12, 1)
TZ = ZoneInfo("Africa/Casablanca")
FEED = BY_NAME["maintenance-kpis-monthly"]
# Names of lights, assets and serials the register of the hand-made month holds.
PRIVATE = ("L-1", "L-2", "L-3", "L-4", "L-5", "LUM-1", "DRV-3", "S-LUM-1", "S-DRV-3", "CAB-1")


def computed(conn: psycopg.Connection, month: str = MONTH) -> list[KpiFigures]:
    """What maintenance_kpis() says of the city, then of each district (sorted)."""
    rows = kpi_figures(maintenance_kpis(conn, month))
    for district in ("gueliz", "medina"):
        rows += kpi_figures(maintenance_kpis(conn, month, district=district))
    return rows


def _rows(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT * FROM maintenance_kpi_figures ORDER BY 1, 2, 3, 4, 5, 6"
    ).fetchall()


def test_the_stored_figures_are_the_months_kpis(city: psycopg.Connection) -> None:
    stored = store_month(city, MONTH, complete_until=date(2026, 1, 9))
    assert stored_figures(city, MONTH) == stored == computed(city)
    by_key = {(r.district, r.section, r.kind, r.supplier, r.tender): r for r in stored}
    total = by_key[("", "totals", "", "", "")]
    assert (total.light_points, total.outages, total.outages_per_1000) == (5, 7, 1400.0)
    assert (total.faults, total.found_by_telemetry) == (6, 4)
    assert total.found_by_telemetry_share == pytest.approx(4 / 6)
    assert (total.day_burning_hours, total.day_burning_lights, total.warranty_claims) == (2.0, 1, 2)
    assert total.repairs is None and total.p50_hours is None  # a totals row holds totals only
    lamp = by_key[("", "repairs", "lampFailure", "", "")]
    assert (lamp.repairs, lamp.p50_hours, lamp.p90_hours, lamp.within_48h_share) == (
        2,
        10.0,
        48.0,
        1.0,
    )
    assert by_key[("medina", "repairs", "controlGearFailure", "", "")].p90_hours == 96.0
    assert by_key[("", "warranty", "", "Enertika", "HAA")].warranty_claims == 2
    assert by_key[("medina", "totals", "", "", "")].light_points == 4
    assert by_key[("gueliz", "totals", "", "", "")].outages == 0
    assert ("gueliz", "repairs", "lampFailure", "", "") not in by_key  # no repair there
    assert {r.district for r in stored} == {"", "gueliz", "medina"}
    (state,) = city.execute("SELECT month, complete_until, districts FROM maintenance_kpi_months")
    assert state == (DECEMBER, date(2026, 1, 9), 2)


def test_storing_a_month_again_replaces_its_rows(city: psycopg.Connection) -> None:
    store_month(city, MONTH, complete_until=date(2026, 1, 2))
    before = _rows(city)
    store_month(city, MONTH, complete_until=date(2026, 1, 2))
    assert _rows(city) == before  # idempotent: the same rows, none doubled

    # A late fault on L-5 (gueliz), repaired in 3 hours: the month's rows change, in place.
    opened = datetime(2025, 12, 28, 20, tzinfo=UTC)
    alert = open_alert(
        city,
        NewAlert(
            kind="lampFailure",
            asset_kind=Fleet.LIGHT,
            asset_key="L-5",
            opened_at=opened,
            severity=Severity.HIGH,
            device_id="L-5",
            district="gueliz",
        ),
    )
    assert alert is not None
    assert clear_alert(city, "L-5", "lampFailure", opened + timedelta(hours=3)) is not None
    store_month(city, MONTH, complete_until=date(2026, 1, 3))
    after = stored_figures(city, MONTH)
    assert after == computed(city) and len(after) == len(before) + 1
    gueliz = {(r.district, r.section, r.kind): r for r in after}
    assert gueliz[("gueliz", "repairs", "lampFailure")].p50_hours == 3.0
    assert gueliz[("gueliz", "totals", "")].outages == 1
    assert city.execute(
        "SELECT count(*), max(complete_until) FROM maintenance_kpi_months"
    ).fetchone() == (
        1,
        date(2026, 1, 3),
    )


def test_the_nightly_command_stores_a_month(city: psycopg.Connection, migrated: Settings) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "telemetry", "maintenance", "kpis", "--month", *args],
            env=settings_env(migrated),
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = run(MONTH, "--store")
    assert done.returncode == 0, done.stderr
    assert f"{MONTH}: {len(computed(city))} rows stored for 3 areas" in done.stdout
    assert stored_figures(city, MONTH) == computed(city)
    refused = run(MONTH, "--store", "--district", "medina")
    assert refused.returncode == 2 and "no --district" in refused.stdout
    assert run("2025-13", "--store").returncode == 2


def _state(month: date, until: date, timezone: str = "Africa/Casablanca") -> StoredMonthState:
    return StoredMonthState(
        month=month,
        timezone=timezone,
        complete_until=until,
        districts=2,
        computed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_the_last_complete_month_and_the_current_one_are_stored_while_stale() -> None:
    tz = "Africa/Casablanca"
    jan = date(2026, 1, 1)
    assert kpi_months_to_store(date(2026, 1, 2), {}, tz, 8) == [DECEMBER, jan]
    # On January 1st, December is the last complete month and nothing of January is complete.
    assert kpi_months_to_store(date(2025, 12, 31), {}, tz, 8) == [DECEMBER]
    done = {DECEMBER: _state(DECEMBER, date(2026, 1, 2)), jan: _state(jan, date(2026, 1, 2))}
    assert kpi_months_to_store(date(2026, 1, 2), done, tz, 8) == []  # stored tonight already
    assert kpi_months_to_store(date(2026, 1, 3), done, tz, 8) == [DECEMBER, jan]  # next night
    final = {DECEMBER: _state(DECEMBER, date(2026, 1, 8)), jan: _state(jan, date(2026, 1, 8))}
    # December is final 8 days after its end; January goes on every night.
    assert kpi_months_to_store(date(2026, 1, 20), final, tz, 8) == [jan]
    other = {DECEMBER: _state(DECEMBER, date(2026, 1, 9), "UTC")}
    assert kpi_months_to_store(date(2026, 1, 20), other, tz, 8) == [DECEMBER, jan]


def local(day: date, hour: int) -> datetime:
    """A local time in Marrakech, as UTC."""
    return datetime.combine(day, time(hour), TZ).astimezone(UTC)


async def test_the_refresher_stores_stale_months_once_a_night(
    city: psycopg.Connection, migrated: Settings
) -> None:
    first = await refresher(migrated, local(date(2026, 1, 3), 10)).refresh_once()
    assert first.ran and first.kpi_months == [DECEMBER, date(2026, 1, 1)]
    assert stored_figures(city, MONTH) == computed(city)
    again = await refresher(migrated, local(date(2026, 1, 3), 22)).refresh_once()
    assert again.kpi_months == []
    late = await refresher(migrated, local(date(2026, 1, 12), 1)).refresh_once()
    assert late.kpi_months == [DECEMBER, date(2026, 1, 1)]  # Jan 11 complete; Dec open until Jan 8
    final = await refresher(migrated, local(date(2026, 1, 13), 1)).refresh_once()
    assert final.kpi_months == [date(2026, 1, 1)]
    assert stored_figures(city, MONTH) == computed(city)
    # A pass over some feeds or a forced range (the command's options) leaves the KPIs alone.
    partial = await refresher(migrated, local(date(2026, 1, 14), 1)).refresh_once(
        feeds=("bus_service",)
    )
    assert partial.kpi_months == []


def _typed(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in FEED.columns:
        text = row[column.name]
        if text == "":
            out[column.name] = None
        elif column.type == "integer":
            out[column.name] = int(text)
        elif column.type == "number":
            out[column.name] = float(text)
        else:
            out[column.name] = text
    return out


async def test_the_feed_serves_the_stored_figures_without_personal_data(
    city: psycopg.Connection, migrated: Settings
) -> None:
    store_month(city, MONTH, complete_until=date(2026, 1, 9))
    stored = stored_figures(city, MONTH)
    params = {"from": "2025-11", "to": "2026-01"}
    async with ApiServer(migrated, opendata_refresh_s=0) as server, server.client() as client:
        as_json = await client.get(f"/open-data/v1/{FEED.name}.json", params=params)
        as_csv = await client.get(f"/open-data/v1/{FEED.name}.csv", params=params)
        medina = await client.get(
            f"/open-data/v1/{FEED.name}.json", params=params | {"district": "medina"}
        )
        catalogue = await client.get("/open-data/v1/catalog.json")
    assert as_json.status_code == as_csv.status_code == medina.status_code == 200
    body = as_json.json()
    assert body["rows"] == shape_rows(FEED, stored)
    assert body["data_until"] == "2026-01-10"
    assert [c["name"] for c in body["columns"]] == FEED.column_names
    assert as_csv.text.splitlines()[0] == ",".join(FEED.column_names)
    assert [_typed(r) for r in parse_csv(as_csv.text)] == body["rows"]
    city_total = body["rows"][0]
    assert city_total == city_total | {
        "month": "2025-12",
        "district": None,
        "section": "totals",
        "lights": 5,
        "outages": 7,
        "outages_per_1000": 1400.0,
        "faults": 6,
        "found_by_telemetry": 4,
        "found_by_telemetry_share": 0.667,
        "day_burning_hours": 2.0,
        "warranty_claims": 2,
        "median_hours": None,
    }
    lamp = next(r for r in body["rows"] if r["kind"] == "lampFailure" and r["district"] is None)
    assert (lamp["repairs"], lamp["median_hours"], lamp["p90_hours"]) == (2, 10.0, 48.0)
    assert {r["district"] for r in medina.json()["rows"]} == {"medina"}
    assert FEED.name in catalogue.text
    assert not set(FEED.column_names) & PERSONAL_COLUMNS
    for text in (json.dumps(body["rows"]), as_csv.text):
        for private in PRIVATE:
            assert f'"{private}"' not in text and f",{private}," not in text, private
        assert "S-" not in text and "LUM" not in text and "Atlas" not in text  # serials, models
