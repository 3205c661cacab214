"""Streetlight status and energy per light, circuit and district: REST on the real database,
rollups equal to on-read results, and TimescaleDB equal to plain PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from api.auth import Role
from telemetry.db import conninfo
from telemetry.decoding import EnergyRow, FaultRow
from telemetry.migrate import migrate
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.energy import Scope, group_energy, light_energy, refresh_energy_rollups
from telemetry.topics import Fleet
from tests.support.api_server import ApiServer, api_server, make_token, register_devices, store
from tests.support.env import unique_settings
from tests.support.pg_cluster import PostgresCluster, timescale_installed

TZ = ZoneInfo("Africa/Casablanca")
# Hour-aligned, far enough back for a few whole local days, recent enough for partitions.
START = (datetime.now(UTC) - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
HOURS = 60
# A rollup watermark in the middle of L-GUE-00001's 2-hour hole (hours 20 and 21).
MID = START + timedelta(hours=21)


@pytest.fixture
async def api(migrated: Settings) -> AsyncIterator[ApiServer]:
    """The API on the test schema."""
    async for server in api_server(migrated):
        yield server


def _lights() -> list[DeviceRecord]:
    medina = [
        DeviceRecord(
            device_id=f"L-MED-{i:05d}",
            fleet=Fleet.LIGHT,
            district="medina",
            circuit="C-1" if i <= 3 else "C-2",
            lat=31.62 + i * 1e-3,
            lon=-7.99,
        )
        for i in range(1, 7)
    ]
    gueliz = [
        DeviceRecord(
            device_id="L-GUE-00001",
            fleet=Fleet.LIGHT,
            district="gueliz",
            circuit="C-3",
            lat=31.64,
            lon=-8.01,
        )
    ]
    return medina + gueliz


def _readings(now: datetime) -> list[EnergyRow]:
    """Every 15 min at :07/:22/:37/:52 with power varying by light and hour; some gaps."""
    rows: list[EnergyRow] = []
    for n, device in enumerate(d.device_id for d in _lights()):
        if device == "L-MED-00006":
            continue  # never reported: silent
        meter = 1000.0 * n
        t = START + timedelta(minutes=7)
        while t < now:
            hours_in = int((t - START).total_seconds() // 3600)
            if device == "L-MED-00004" and t > now - timedelta(hours=3):
                break  # stopped reporting: silent
            if device == "L-GUE-00001" and 20 <= hours_in < 22:
                t += timedelta(minutes=15)  # a 2-hour hole, bridged by the 3-hour lookback
                continue
            power = 40.0 + 10 * n + (hours_in % 5)
            meter += power / 4
            dim = 50.0 if device == "L-MED-00002" else 100.0
            lamp_on = device != "L-MED-00003"
            rows.append(
                EnergyRow(device, t, t, meter, power, 230.0, None, 0.95, lamp_on, dim, None)
            )
            t += timedelta(minutes=15)
        if device == "L-MED-00001":
            rows.append(
                EnergyRow(
                    device,
                    now - timedelta(minutes=1),
                    now,
                    meter + 1.0,
                    power,
                    None,
                    None,
                    None,
                    True,
                    100.0,
                    None,
                )
            )
    return rows


def expected_hourly(rows: list[EnergyRow]) -> dict[str, dict[datetime, float]]:
    """The definition of migration 0008, computed independently in Python."""
    by_hour: dict[str, dict[datetime, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        bucket = row.time.replace(minute=0, second=0, microsecond=0)
        by_hour[row.device_id][bucket].append(row.energy_wh)
    out: dict[str, dict[datetime, float]] = {}
    for device, hours in by_hour.items():
        ordered = sorted(hours)
        result: dict[datetime, float] = {}
        for i, bucket in enumerate(ordered):
            high, low = max(hours[bucket]), min(hours[bucket])
            previous = ordered[i - 1] if i else None
            if previous is not None and previous >= bucket - timedelta(hours=3):
                result[bucket] = max(0.0, high - max(hours[previous]))
            else:
                result[bucket] = max(0.0, high - low)
        out[device] = result
    return out


def _seed(settings: Settings) -> tuple[datetime, list[EnergyRow]]:
    now = datetime.now(UTC)
    register_devices(settings, *_lights())
    rows = _readings(now)
    store(
        settings,
        energy=rows,
        faults=[
            FaultRow("L-MED-00005", now - timedelta(hours=2), now, "lampFailure", True, "open"),
            FaultRow("L-MED-00005", now - timedelta(hours=4), now, "supplyLoss", True, None),
            FaultRow("L-MED-00005", now - timedelta(hours=3), now, "supplyLoss", False, None),
        ],
    )
    return now, rows


async def test_light_status_list_compact_and_detail(migrated: Settings, api: ApiServer) -> None:
    _seed(migrated)
    operator = await make_token(migrated, Role.OPERATOR)
    crew = await make_token(migrated, Role.CREW, ["medina"])
    async with api.client(operator) as client:
        page = (await client.get("/api/v1/lights", params={"district": "medina"})).json()
        status = {light["id"]: light["status"] for light in page["items"]}
        assert status == {
            "L-MED-00001": "on",
            "L-MED-00002": "dimmed",
            "L-MED-00003": "off",
            "L-MED-00004": "silent",
            "L-MED-00005": "faulty",
            "L-MED-00006": "silent",
        }
        faulty = (
            await client.get("/api/v1/lights", params={"status": "faulty,silent", "limit": 2})
        ).json()
        assert [x["id"] for x in faulty["items"]] == ["L-MED-00004", "L-MED-00005"]
        more = await client.get(
            "/api/v1/lights", params={"status": "faulty,silent", "after": faulty["next_after"]}
        )
        assert [x["id"] for x in more.json()["items"]] == ["L-MED-00006"]
        compact = (await client.get("/api/v1/lights/compact")).json()
        assert len(compact["ids"]) == len(compact["lat"]) == len(compact["status"]) == 7
        legend = compact["statuses"]
        decoded = {i: legend[s] for i, s in zip(compact["ids"], compact["status"], strict=True)}
        assert decoded["L-MED-00002"] == "dimmed" and decoded["L-GUE-00001"] == "on"
        assert compact["counts"]["silent"] == 2
        detail = (await client.get("/api/v1/lights/L-MED-00005")).json()
        assert detail["faults"] == ["lampFailure"]
        assert [f["fault"] for f in detail["open_faults"]] == ["lampFailure"]
        assert detail["open_faults"][0]["detail"] == "open"
        assert (await client.get("/api/v1/lights/L-NOPE")).status_code == 404
        assert (await client.get("/api/v1/lights", params={"status": "blue"})).status_code == 422
    async with api.client(crew) as client:
        assert (await client.get("/api/v1/lights")).status_code == 403


async def test_energy_per_light_circuit_district_and_rollups_agree(
    migrated: Settings, api: ApiServer
) -> None:
    now, rows = _seed(migrated)
    expected = expected_hourly(rows)
    token = await make_token(migrated, Role.OPERATOR)
    end = START + timedelta(hours=HOURS)
    window = {"start": START.isoformat(), "end": end.isoformat()}
    async with api.client(token) as client:
        hourly = (
            await client.get("/api/v1/energy/lights/L-MED-00001", params={**window, "unit": "hour"})
        ).json()
        got = {datetime.fromisoformat(p["start"]): p["energy_wh"] for p in hourly["periods"]}
        want = {b: v for b, v in expected["L-MED-00001"].items() if START <= b < end}
        assert got == pytest.approx(want)
        gap = (
            await client.get("/api/v1/energy/lights/L-GUE-00001", params={**window, "unit": "hour"})
        ).json()
        gap_hours = {datetime.fromisoformat(p["start"]): p["energy_wh"] for p in gap["periods"]}
        assert gap_hours == pytest.approx(
            {b: v for b, v in expected["L-GUE-00001"].items() if START <= b < end}
        )
        circuit = (
            await client.get("/api/v1/energy/circuits/C-1", params={**window, "unit": "hour"})
        ).json()
        c1 = sum(
            v
            for d in ("L-MED-00001", "L-MED-00002", "L-MED-00003")
            for b, v in expected[d].items()
            if START <= b < end
        )
        assert circuit["total_wh"] == pytest.approx(c1)
        by_day: dict[str, dict[str, float]] = {}
        for key in ("medina", "gueliz"):
            daily = (
                await client.get(
                    f"/api/v1/energy/districts/{key}", params={**window, "unit": "day"}
                )
            ).json()
            assert daily["timezone"] == "Africa/Casablanca"
            starts = [datetime.fromisoformat(p["start"]) for p in daily["periods"]]
            assert all(s.astimezone(TZ).hour == 0 for s in starts)
            by_day[key] = {p["start"]: p["energy_wh"] for p in daily["periods"]}
            if key == "medina":
                daily_medina = daily

        def medina_between(body: dict[str, str]) -> float:
            lo, hi = datetime.fromisoformat(body["start"]), datetime.fromisoformat(body["end"])
            return sum(
                v
                for d, hours in expected.items()
                if d.startswith("L-MED")
                for b, v in hours.items()
                if lo <= b < hi
            )

        assert sum(by_day["medina"].values()) == pytest.approx(medina_between(daily_medina))
        monthly = (
            await client.get("/api/v1/energy/districts/medina", params={**window, "unit": "month"})
        ).json()
        assert monthly["total_wh"] == pytest.approx(medina_between(monthly))
        # Materialise the rollups: the same answers, now read from energy_hourly_rollup.
        async with await psycopg.AsyncConnection.connect(
            conninfo(migrated), autocommit=True
        ) as conn:
            mark = await refresh_energy_rollups(conn, START - timedelta(days=1), now)
            assert mark is not None and mark > START
            cur = await conn.execute("SELECT count(*) FROM energy_hourly_rollup")
            rolled = await cur.fetchone()
            assert rolled is not None and rolled[0] > 0
        again = (
            await client.get("/api/v1/energy/districts/medina", params={**window, "unit": "day"})
        ).json()
        assert {p["start"]: p["energy_wh"] for p in again["periods"]} == pytest.approx(
            by_day["medina"]
        )
        for bad in (
            {"unit": "week"},
            {"unit": "hour", "start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        ):
            answer = await client.get("/api/v1/energy/districts/medina", params=bad)
            assert answer.status_code == 422, bad
        assert (await client.get("/api/v1/energy/districts/atlantis")).status_code == 404
        assert (await client.get("/api/v1/energy/circuits/C-999")).status_code == 404
        assert (await client.get("/api/v1/energy/lights/B-001")).status_code == 404


def _replaced_meter() -> list[EnergyRow]:
    """L-MED-00007: reports up to the watermark, its meter is reset in the first live hour,
    then it is silent longer than the 3-hour lookback."""
    times = [MID - timedelta(minutes=m) for m in (110, 80, 50, 20)]
    times += [MID + timedelta(minutes=m) for m in (7, 22, 37)]
    times += [MID + timedelta(hours=5, minutes=m) for m in (7, 52)]
    meters = [400.0, 410.0, 420.0, 430.0, 3.0, 6.0, 9.0, 20.0, 31.0]
    return [
        EnergyRow("L-MED-00007", t, t, m, 40.0, None, None, None, True, 100.0, None)
        for t, m in zip(times, meters, strict=True)
    ]


async def test_live_hours_after_the_watermark_follow_the_definition(migrated: Settings) -> None:
    now, rows = _seed(migrated)
    register_devices(
        migrated,
        DeviceRecord(device_id="L-MED-00007", fleet=Fleet.LIGHT, district="medina", circuit="C-2"),
    )
    extra = _replaced_meter()
    store(migrated, energy=extra)
    expected = expected_hourly(rows + extra)
    groups: dict[tuple[Scope, str], list[str]] = {
        ("district", "medina"): [d for d in expected if d.startswith("L-MED")],
        ("district", "gueliz"): ["L-GUE-00001"],
        ("circuit", "C-2"): ["L-MED-00004", "L-MED-00005", "L-MED-00006", "L-MED-00007"],
    }
    end = now + timedelta(hours=1)

    async def hourly(
        conn: psycopg.AsyncConnection,
    ) -> dict[tuple[Scope, str], dict[datetime, float]]:
        out = {}
        for scope, key in groups:
            periods = await group_energy(conn, scope, key, "hour", START, end, "UTC")
            out[scope, key] = {p.period: p.energy_wh for p in periods}
        return out

    async with await psycopg.AsyncConnection.connect(conninfo(migrated), autocommit=True) as conn:
        on_read = await hourly(conn)  # no rollups yet: everything from rasd_light_hourly_wh
        assert await refresh_energy_rollups(conn, MID, MID) == MID
        cur = await conn.execute("SELECT device_id, bucket FROM energy_rollup_lights")
        seeds: dict[str, datetime] = dict(await cur.fetchall())
        # The last hour before the watermark with readings, within 3 hours of it.
        assert seeds["L-GUE-00001"] == MID - timedelta(hours=2)
        assert seeds["L-MED-00007"] == MID - timedelta(hours=1)
        live = await hourly(conn)
    for group, devices in groups.items():
        want: dict[datetime, float] = defaultdict(float)
        for device in devices:
            for bucket, wh in expected.get(device, {}).items():
                want[bucket] += wh
        assert on_read[group] == pytest.approx(dict(want)), group
        assert live[group] == pytest.approx(dict(want)), group
    c2 = live["circuit", "C-2"]
    assert MID in c2 and MID + timedelta(hours=5) in c2  # reset and gap hours are there


async def _answers(settings: Settings, now: datetime) -> dict[str, object]:
    end = START + timedelta(hours=HOURS)
    async with await psycopg.AsyncConnection.connect(conninfo(settings), autocommit=True) as conn:
        out: dict[str, object] = {
            "light": await light_energy(conn, "L-GUE-00001", "hour", START, end, str(TZ)),
            "district_day": await group_energy(
                conn, "district", "medina", "day", START, end, str(TZ)
            ),
            "circuit_hour": await group_energy(conn, "circuit", "C-2", "hour", START, end, str(TZ)),
        }
        # Rollups to a watermark inside L-GUE-00001's hole: every later hour is live.
        await refresh_energy_rollups(conn, MID, MID)
        out["gueliz_hour_live"] = await group_energy(
            conn, "district", "gueliz", "hour", START, now, str(TZ)
        )
        await refresh_energy_rollups(conn, START - timedelta(days=1), now)
        out["district_day_rolled"] = await group_energy(
            conn, "district", "medina", "day", START, end, str(TZ)
        )
    return out


@pytest.mark.timescaledb
@pytest.mark.skipif(not timescale_installed(), reason="TimescaleDB is not installed")
async def test_timescaledb_gives_the_same_energy_as_plain_postgresql(
    migrated: Settings,
) -> None:
    now, _ = _seed(migrated)
    plain = await _answers(migrated, now)
    with PostgresCluster(timescale=True) as cluster:
        timescale = unique_settings(database_url=cluster.url, timescaledb="on")
        migrate(timescale)
        with psycopg.connect(conninfo(timescale), autocommit=True) as conn:
            row = conn.execute("SELECT value FROM rasd_meta WHERE key = 'backend'").fetchone()
            assert row == ("timescale",)
        register_devices(timescale, *_lights())
        store(timescale, energy=_readings(now))
        with psycopg.connect(conninfo(timescale), autocommit=True) as conn:
            # Half materialised, half real-time: the aggregate must not change the answers.
            conn.execute(
                "CALL refresh_continuous_aggregate('light_energy_hourly', NULL, %s)",
                (START + timedelta(hours=30),),
            )
        on_timescale = await _answers(timescale, now)
    for key, value in plain.items():
        assert on_timescale[key] == value, key
