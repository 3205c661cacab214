"""A small city with known open-data answers (lights, faults, repairs, complaints, rounds,
buses), seeded through the same stores the services use."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from api.config import ApiSettings
from api.open_data.refresh import OpenDataRefresher, RefreshReport
from telemetry.decoding import EnergyRow, FaultRow, PositionRow
from telemetry.geometry import haversine_m
from telemetry.reference_data import BusStop, CollectionPoint, CollectionRound, Network
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.backend import Backend, recorded_backend
from telemetry.storage.devices import upsert_devices
from telemetry.storage.energy import catch_up_energy_rollups
from telemetry.storage.maintenance import ensure_partitions
from telemetry.storage.readings import Batch, ReadingStore
from telemetry.storage.reference import import_network
from telemetry.topics import Fleet
from tests.support.database import open_db
from tests.support.energy_city import seed_reconciliation

TZ = ZoneInfo("Africa/Casablanca")  # UTC+1 in October 2025 (Ramadan is in the spring)
D = date(2025, 10, 6)
D1 = D + timedelta(days=1)
#: The refresh clock of the seeded city: night D+1 and day D+1 are complete, D+2 is not.
NOW = datetime.combine(D + timedelta(days=2), time(10), TZ).astimezone(UTC)
SEG_M = haversine_m(31.600, -8.000, 31.601, -8.000)  # one 0.001 degree step of latitude

# Contact details and free text that no public answer may contain.
SECRETS = ("fatima.secret@example.org", "+212600000001", "Fatima", "Derb Secret 12", "my lamp")


def local(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A local wall time in Marrakech, as an aware UTC datetime."""
    return datetime.combine(day, time(hour, minute, second), TZ).astimezone(UTC)


def _fix(
    device: str, t: datetime, lat: float, lon: float, speed: float | None, route: str | None = None
) -> PositionRow:
    return PositionRow(device, t, t, lat, lon, speed, None, 4.0, route, None)


def _every(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    t = start
    while t < end:
        yield t
        t += step


# -- the city ------------------------------------------------------------------------------------

LIGHTS = {
    "L1": "medina",  # reports all the time: in service
    "L2": "medina",  # lampFailure since D-2, never repaired: faulty
    "L3": "medina",  # relayFailure from 10:00 to 12:00 on D: in service at the end of D
    "L4": "medina",  # no reading after 22:00 on D: silent
    "L5": "gueliz",  # lampFailure from 08:00 on D+1
    "E1": "menara",  # energy: 100 Wh per hour
    "E2": "menara",
}


def _lights() -> tuple[list[EnergyRow], list[FaultRow]]:
    energy: list[EnergyRow] = []
    quarter = timedelta(minutes=15)
    for device in ("L1", "L2", "L3", "L5"):
        for t in _every(local(D, 0), local(D + timedelta(days=2), 0), quarter):
            energy.append(EnergyRow(device, t, t, 1000.0, 0.0, None, None, None, False, None, None))
    for t in _every(local(D, 0), local(D, 22), quarter):
        energy.append(EnergyRow("L4", t, t, 1000.0, 0.0, None, None, None, False, None, None))
    # E1 and E2: a reading at hh:30 UTC every hour, the meter 100 Wh higher each time.
    first = datetime(2025, 10, 5, 22, 30, tzinfo=UTC)
    for device in ("E1", "E2"):
        for k in range(27):
            t = first + timedelta(hours=k)
            energy.append(
                EnergyRow(device, t, t, 100.0 * k, 50.0, None, None, None, True, None, None)
            )
    # The L1 reading of a few minutes ago makes it "in service" now.
    recent = datetime.now(UTC) - timedelta(minutes=5)
    energy.append(EnergyRow("L1", recent, recent, 1000.0, 0.0, None, None, None, False, None, None))
    faults = [
        FaultRow("L2", local(D - timedelta(days=2), 10), local(D, 0), "lampFailure", True, None),
        FaultRow("L3", local(D, 10), local(D, 10), "relayFailure", True, None),
        FaultRow("L3", local(D, 12), local(D, 12), "relayFailure", False, None),
        FaultRow("L5", local(D1, 8), local(D1, 8), "lampFailure", True, None),
    ]
    return energy, faults


ROUNDS = (
    CollectionRound(
        round="T-1",
        shift_start=time(21),
        shift_end=time(4),
        timezone="Africa/Casablanca",
        points=tuple(
            CollectionPoint(seq=i, lat=31.630 + 0.002 * i, lon=-8.000, label=f"P{i}")
            for i in range(3)
        ),
    ),
    CollectionRound(
        round="R-EAST",
        shift_start=time(22),
        shift_end=time(2),
        timezone="Africa/Casablanca",
        points=tuple(
            CollectionPoint(seq=i, lat=31.640 + 0.002 * i, lon=-7.990, label=f"Q{i}")
            for i in range(2)
        ),
    ),
    CollectionRound(
        round="T-9",
        shift_start=time(20),
        shift_end=time(23),
        timezone="Africa/Casablanca",
        points=(CollectionPoint(seq=0, lat=31.650, lon=-7.980),),
    ),
)


def _trucks() -> list[PositionRow]:
    p = [(31.630, -8.000), (31.632, -8.000), (31.634, -8.000)]
    q = [(31.640, -7.990), (31.642, -7.990)]
    n1, n2 = D1, D + timedelta(days=2)
    return [
        # Night D: T-1 stops at every point (P1 30 m off at 3 km/h): completed.
        _fix("T-1", local(D, 20), *p[2], 0.0),  # before the shift
        _fix("T-1", local(D, 21, 30), *p[0], 0.0),
        _fix("T-1", local(D, 21, 40), p[1][0] + 0.00027, p[1][1], 3.0),
        _fix("T-1", local(D, 21, 50), *p[2], 0.0),
        # Night D: T-2 stops at Q0, drives past Q1, stops 60 m from it: 1 of 2.
        _fix("T-2", local(D, 22, 30), *q[0], 0.0),
        _fix("T-2", local(D, 22, 40), *q[1], 30.0),
        _fix("T-2", local(D, 22, 50), q[1][0] + 0.00054, q[1][1], 0.0),
        # Night D+1: T-1 visits P0 (no speed reported) and P1, P2 only after the shift.
        _fix("T-1", local(n1, 21, 30), *p[0], None),
        _fix("T-1", local(n1, 22), *p[1], 1.0),
        _fix("T-1", local(n2, 5), *p[2], 0.0),
        # Night D+1: T-2 completes its round across midnight, and stops at T-1's P2 (no help).
        _fix("T-2", local(n1, 23), *q[0], 0.0),
        _fix("T-2", local(n1, 23, 30), *p[2], 0.0),
        _fix("T-2", local(n2, 1), *q[1], 0.0),
    ]


STOPS = (
    BusStop(stop_id="S1", name="S1", lat=31.600, lon=-8.000),
    BusStop(stop_id="S2", name="S2", lat=31.610, lon=-8.000),
    BusStop(stop_id="S3", name="S3", lat=31.620, lon=-8.000),
    BusStop(stop_id="C0", name="C0", lat=31.650, lon=-8.050),
    BusStop(stop_id="C1", name="C1", lat=31.660, lon=-8.050),
    BusStop(stop_id="C2", name="C2", lat=31.660, lon=-8.040),
)


def _loop_path() -> list[tuple[float, float]]:
    path = [(31.650 + 0.001 * i, -8.050) for i in range(10)]  # C0 -> C1
    path += [(31.660, -8.050 + 0.001 * i) for i in range(10)]  # C1 -> C2
    path += [(31.660 - 0.001 * i, -8.040 - 0.001 * i) for i in range(11)]  # C2 -> C0
    return path


LOOP_KM = (
    sum(haversine_m(*a, *b) for a, b in zip(_loop_path(), _loop_path()[1:], strict=False)) / 1000
)


def _buses() -> list[PositionRow]:
    rows: list[PositionRow] = []
    ten = timedelta(seconds=10)
    t = local(D, 8)
    for i in range(21):  # S1 -> S3, 40 km/h
        rows.append(_fix("B-1", t, 31.600 + 0.001 * i, -8.000, 40.0))
        t += ten
    for k in range(30):  # parked at S3, GPS jitter of 2 m
        rows.append(_fix("B-1", t, 31.620 + (0.00002 if k % 2 else 0.0), -8.000, 0.0))
        t += ten
    for i in range(20, -1, -1):  # S3 -> S1
        rows.append(_fix("B-1", t, 31.600 + 0.001 * i, -8.000, 40.0))
        t += ten
    t = local(D, 23, 55)
    for i in range(21):  # S1 -> S3 across midnight, 30 s a step: arrives on D+1
        rows.append(_fix("B-1", t, 31.600 + 0.001 * i, -8.000, 13.0))
        t += timedelta(seconds=30)
    t = local(D, 9)
    for lat, lon in _loop_path():
        rows.append(_fix("B-2", t, lat, lon, 40.0))
        t += ten
    t = local(D, 10)
    for i in range(11):  # the shape line S (no stops): one end to the other
        rows.append(_fix("B-3", t, 31.700 + 0.001 * i, -8.100, 40.0, route="S"))
        t += ten
    return rows


def _alerts(conn: psycopg.Connection) -> None:
    oct10 = local(date(2025, 10, 10), 12)
    rows: list[tuple[Any, ...]] = []
    for hours, kind, resolution, key in (
        (1, "lampFailure", "cleared", "L1"),
        (2, "supplyLoss", "manual", "L2"),
        (3, "circuit_outage", "cleared", "circuit:C1"),
        (4, "day_burning", "manual", "L3"),
        (10, "relayFailure", "cleared", "L4"),
        (1, "lampFailure", "grouped", "L4"),  # absorbed by an outage: not a repair
        (100, "silent_light", "cleared", "L1"),  # communication, not lighting
        (50, "energy_anomaly", "cleared", "L2"),
    ):
        rows.append(
            (
                kind,
                "light",
                key,
                "medina",
                "resolved",
                oct10 - timedelta(hours=hours),
                oct10,
                resolution,
            )
        )
    rows.append(("lampFailure", "light", "L3", "medina", "open", oct10, None, None))
    rows.append(
        (
            "speeding",
            "bus",
            "B-1",
            "medina",
            "resolved",
            oct10 - timedelta(hours=1),
            oct10,
            "cleared",
        )
    )
    # Gueliz: 23:30 local on 31 October (October), and 00:30 local on 1 November (November).
    end_oct = datetime(2025, 10, 31, 22, 30, tzinfo=UTC)
    start_nov = datetime(2025, 10, 31, 23, 30, tzinfo=UTC)
    rows.append(
        (
            "lampFailure",
            "light",
            "L5",
            "gueliz",
            "resolved",
            end_oct - timedelta(hours=2),
            end_oct,
            "cleared",
        )
    )
    rows.append(
        (
            "relayFailure",
            "light",
            "L5",
            "gueliz",
            "resolved",
            start_nov - timedelta(hours=5),
            start_nov,
            "manual",
        )
    )
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO alerts (kind, asset_kind, asset_key, district, severity, state, "
            "opened_at, resolved_at, resolution) VALUES (%s, %s, %s, %s, 'high', %s, %s, %s, %s)",
            rows,
        )


def _complaints(conn: psycopg.Connection) -> None:
    def at(month: int, day: int, hour: int) -> datetime:
        return local(date(2025, month, day), hour)

    rows = [
        ("streetlight_out", at(10, 2, 10), at(10, 2, 12)),
        ("streetlight_out", at(10, 3, 10), at(10, 3, 16)),
        ("streetlight_out", at(10, 20, 10), at(11, 19, 10)),
        ("missed_collection", at(10, 5, 9), None),
        # 00:30 local on 1 October: received in October.
        ("damaged_pole", datetime(2025, 9, 30, 23, 30, tzinfo=UTC), None),
    ]
    with conn.cursor() as cur:
        for n, (code, requested, closed) in enumerate(rows):
            cur.execute(
                "INSERT INTO complaints (source, external_id, service_code, description, status, "
                "requested_at, closed_at, address, lat, lon, district) "
                "VALUES ('chikaya', %s, %s, %s, %s, %s, %s, %s, 31.63, -8.0, 'medina') "
                "RETURNING complaint_id",
                (
                    f"X{n}",
                    code,
                    "my lamp is out, call Fatima",
                    "closed" if closed else "open",
                    requested,
                    closed,
                    "Derb Secret 12",
                ),
            )
            row = cur.fetchone()
            assert row is not None
            cur.execute(
                "INSERT INTO complaint_contacts (complaint_id, first_name, email, phone) "
                "VALUES (%s, 'Fatima', %s, %s)",
                (row[0], SECRETS[0], SECRETS[1]),
            )


def seed_city(settings: Settings) -> None:
    """Register and store the whole city, and materialise the energy rollups up to NOW."""
    devices = [DeviceRecord(device_id=d, fleet=Fleet.LIGHT, district=z) for d, z in LIGHTS.items()]
    devices += [
        DeviceRecord(device_id="T-1", fleet=Fleet.TRUCK, operator="Arma", district="medina"),
        DeviceRecord(
            device_id="T-2",
            fleet=Fleet.TRUCK,
            route="R-EAST",
            operator="Mecomar",
            district="gueliz",
        ),
        DeviceRecord(device_id="B-1", fleet=Fleet.BUS, route="A"),
        DeviceRecord(device_id="B-2", fleet=Fleet.BUS, route="L"),
        DeviceRecord(device_id="B-3", fleet=Fleet.BUS),
    ]
    energy, faults = _lights()
    with open_db(settings) as conn:
        if recorded_backend(conn) is Backend.PLAIN:
            lo, hi = datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 11, 10, tzinfo=UTC)
            for table in ("vehicle_positions", "light_energy", "light_faults"):
                ensure_partitions(conn, table, lo, hi)
        upsert_devices(conn, devices)
        import_network(
            conn,
            Network(
                shapes={"S": [(31.700, -8.100), (31.705, -8.100), (31.710, -8.100)]},
                rounds=ROUNDS,
                stops=STOPS,
                line_stops={"A": ["S1", "S2", "S3"], "L": ["C0", "C1", "C2", "C0"]},
            ),
        )
        ReadingStore(conn).write(
            Batch(positions=_trucks() + _buses(), energy=energy, faults=faults)
        )
        _alerts(conn)
        _complaints(conn)
        seed_reconciliation(conn)
        catch_up_energy_rollups(conn, NOW, timedelta(days=3))


# -- what the feeds must say -------------------------------------------------------------------

EXPECTED_LIGHTS_DAILY = {
    (D.isoformat(), "medina"): {
        "lights": 4,
        "in_service": 2,
        "faulty": 1,
        "silent": 1,
        "faulty_during_day": 2,
    },
    (D.isoformat(), "gueliz"): {
        "lights": 1,
        "in_service": 1,
        "faulty": 0,
        "silent": 0,
        "faulty_during_day": 0,
    },
    (D1.isoformat(), "medina"): {
        "lights": 4,
        "in_service": 2,
        "faulty": 1,
        "silent": 1,
        "faulty_during_day": 1,
    },
    (D1.isoformat(), "gueliz"): {
        "lights": 1,
        "in_service": 0,
        "faulty": 1,
        "silent": 0,
        "faulty_during_day": 1,
    },
    # E1 and E2 report until 01:30 on D+1.
    (D.isoformat(), "menara"): {
        "lights": 2,
        "in_service": 2,
        "faulty": 0,
        "silent": 0,
        "faulty_during_day": 0,
    },
    (D1.isoformat(), "menara"): {
        "lights": 2,
        "in_service": 0,
        "faulty": 0,
        "silent": 2,
        "faulty_during_day": 0,
    },
}
EXPECTED_LIGHTS_NOW = {
    "medina": {"lights": 4, "in_service": 1, "faulty": 1, "silent": 2},
    "gueliz": {"lights": 1, "in_service": 0, "faulty": 1, "silent": 0},
    "menara": {"lights": 2, "in_service": 0, "faulty": 0, "silent": 2},
}
EXPECTED_REPAIRS = {
    ("2025-10", "medina"): {"repairs": 5, "median_hours": 3.0, "p90_hours": 7.6},
    ("2025-10", "gueliz"): {"repairs": 1, "median_hours": 2.0, "p90_hours": 2.0},
    ("2025-11", "gueliz"): {"repairs": 1, "median_hours": 5.0, "p90_hours": 5.0},
}
EXPECTED_COMPLAINTS: dict[tuple[str, str], dict[str, Any]] = {
    ("2025-10", "streetlight_out"): {
        "received": 3,
        "closed": 2,
        "median_hours": 4.0,
        "p90_hours": 5.6,
    },
    ("2025-10", "missed_collection"): {
        "received": 1,
        "closed": 0,
        "median_hours": None,
        "p90_hours": None,
    },
    ("2025-10", "damaged_pole"): {
        "received": 1,
        "closed": 0,
        "median_hours": None,
        "p90_hours": None,
    },
    ("2025-11", "streetlight_out"): {
        "received": 0,
        "closed": 1,
        "median_hours": 720.0,
        "p90_hours": 720.0,
    },
}
EXPECTED_WASTE_DAILY = {
    (D.isoformat(), "Arma", "medina"): {
        "planned": 1,
        "completed": 1,
        "points": 3,
        "points_visited": 3,
    },
    (D.isoformat(), "Mecomar", "gueliz"): {
        "planned": 1,
        "completed": 0,
        "points": 2,
        "points_visited": 1,
    },
    (D.isoformat(), None, None): {"planned": 1, "completed": 0, "points": 1, "points_visited": 0},
    (D1.isoformat(), "Arma", "medina"): {
        "planned": 1,
        "completed": 0,
        "points": 3,
        "points_visited": 2,
    },
    (D1.isoformat(), "Mecomar", "gueliz"): {
        "planned": 1,
        "completed": 1,
        "points": 2,
        "points_visited": 2,
    },
    (D1.isoformat(), None, None): {"planned": 1, "completed": 0, "points": 1, "points_visited": 0},
}
EXPECTED_WASTE_MONTHLY = {
    ("2025-10", "Arma", "medina"): {
        "planned": 2,
        "completed": 1,
        "points": 6,
        "points_visited": 5,
        "nights": 2,
    },
    ("2025-10", "Mecomar", "gueliz"): {
        "planned": 2,
        "completed": 1,
        "points": 4,
        "points_visited": 3,
        "nights": 2,
    },
    ("2025-10", None, None): {
        "planned": 2,
        "completed": 0,
        "points": 2,
        "points_visited": 0,
        "nights": 2,
    },
}
EXPECTED_BUS_DAILY = {
    (D.isoformat(), "A"): {"km": 50 * SEG_M / 1000, "trips": 2, "vehicles": 1},
    (D.isoformat(), "L"): {"km": LOOP_KM, "trips": 1, "vehicles": 1},
    (D.isoformat(), "S"): {"km": 10 * SEG_M / 1000, "trips": 1, "vehicles": 1},
    (D1.isoformat(), "A"): {"km": 10 * SEG_M / 1000, "trips": 1, "vehicles": 1},
}
EXPECTED_BUS_MONTHLY = {
    ("2025-10", "A"): {"km": 60 * SEG_M / 1000, "trips": 3, "vehicles": 1, "days": 2},
    ("2025-10", "L"): {"km": LOOP_KM, "trips": 1, "vehicles": 1, "days": 1},
    ("2025-10", "S"): {"km": 10 * SEG_M / 1000, "trips": 1, "vehicles": 1, "days": 1},
}


def refresher(settings: Settings, now: datetime = NOW, **api: Any) -> OpenDataRefresher:
    """A refresher of the test schema whose clock says ``now``."""
    return OpenDataRefresher(settings, ApiSettings(opendata_refresh_s=0, **api), clock=lambda: now)


async def refresh(settings: Settings, now: datetime = NOW, **api: Any) -> RefreshReport:
    """One refresh pass at ``now``."""
    return await refresher(settings, now, **api).refresh_once()


def parse_csv(text: str) -> list[dict[str, str]]:
    """CSV rows as dicts of strings."""
    return list(csv.DictReader(io.StringIO(text)))
