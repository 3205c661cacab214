"""The simulated city through the gateways, end to end: trucks and buses over Teltonika, half the
lights as ChirpStack uplinks; the same run stores the same readings as over contract v1 MQTT."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from telemetry.registry import parse_devices_csv
from telemetry.settings import Settings
from telemetry.storage.devices import upsert_devices
from tests.support.database import open_db
from tests.support.env import settings_env
from tests.support.gateway_process import GatewayProcess
from tests.support.gateways import gateway_overrides
from tests.support.ingest_process import IngestProcess
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.services

# The smoke scenario runs on 2025-12-19: ingest must accept a year-old back-fill.
BACKFILL = {"max_age_s": 3 * 365 * 86400}
RUN = ["run", "smoke", "--fast", "--seed", "5", "--duration", "5m"]


def _simulate(settings: Settings, *extra: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulators", *RUN, *extra],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()


def _register(settings: Settings, tmp_path: Path) -> None:
    csv = tmp_path / f"{settings.database_schema}.csv"
    subprocess.run(
        [sys.executable, "-m", "simulators", "registry", "smoke", "-o", str(csv)],
        cwd=ROOT,
        env=settings_env(settings),
        check=True,
        capture_output=True,
    )
    with open_db(settings) as conn:
        upsert_devices(conn, parse_devices_csv(csv.read_text()))


def _readings(conn: psycopg.Connection) -> dict[str, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM vehicle_positions), (SELECT count(*) FROM light_energy), "
        "(SELECT count(*) FROM light_faults)"
    ).fetchone()
    assert row is not None
    return {"positions": row[0], "energy": row[1], "faults": row[2]}


def _settled(settings: Settings) -> Callable[[], dict[str, int] | None]:
    seen: list[dict[str, int]] = []

    def probe() -> dict[str, int] | None:
        with open_db(settings) as conn:
            now = _readings(conn)
        seen.append(now)
        return now if len(seen) >= 10 and seen[-10] == now and now["positions"] else None

    return probe


def _published(metrics: str, protocol: str) -> float:
    pattern = rf'rasd_gateway_reports_published_total{{protocol="{protocol}"}} ([0-9.e+]+)'
    found = re.search(pattern, metrics)
    return float(found.group(1)) if found else 0.0


def test_the_city_through_its_gateways_stores_what_it_stores_over_mqtt(
    make_settings: Callable[..., Settings],
    start_ingest: Callable[..., IngestProcess],
    tmp_path: Path,
) -> None:
    direct = make_settings(**BACKFILL)
    via = make_settings(**BACKFILL, **gateway_overrides())
    for settings in (direct, via):
        _register(settings, tmp_path)
        start_ingest(settings)
    _simulate(direct)
    gateways = GatewayProcess(via, tmp_path / "gateways.log")
    with gateways:
        _simulate(via, "--via", "teltonika,chirpstack", "--via-buses", "--chirpstack-share", "0.5")
        metrics = gateways.http_get("/metrics")[1]
        assert _published(metrics, "teltonika") > 0
        assert _published(metrics, "chirpstack") > 0
        expected = wait_until(_settled(direct), timeout=60, interval=0.2, what="direct run")
        stored = wait_until(_settled(via), timeout=60, interval=0.2, what="gateway run")
    assert stored is not None and expected is not None
    assert stored["positions"] == expected["positions"]
    assert stored["energy"] == expected["energy"]
    assert stored["faults"] > 0
