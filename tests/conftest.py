"""Shared fixtures: every test gets its own schema and topic prefix on the real services."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from telemetry.migrate import migrate
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.devices import upsert_devices
from telemetry.topics import Fleet
from tests.support.database import drop_schema, open_db
from tests.support.env import TEST_DATABASE_URL, TEST_MQTT_URL, unique_settings
from tests.support.ingest_process import IngestProcess
from tests.support.publisher import Publisher


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


# Fixtures that hand a test the real broker or database; a test asking for one (or marked
# ``services``) needs both running, the others (pure logic) run anywhere.
_SERVICE_FIXTURES = frozenset(
    {"settings", "make_settings", "migrated", "db", "start_ingest", "publisher"}
)


@pytest.fixture(scope="session")
def _missing_services() -> list[str]:
    """The services the suite needs that do not answer, checked once per session."""
    return [
        name
        for name, url, port in (
            ("Mosquitto", TEST_MQTT_URL, 1883),
            ("PostgreSQL", TEST_DATABASE_URL, 5432),
        )
        if not _reachable(url, port)
    ]


@pytest.fixture(autouse=True)
def _services_running(request: pytest.FixtureRequest) -> None:
    """Fail fast (never skip) a test that needs the broker or database when one is down."""
    wants = request.node.get_closest_marker("services") is not None or bool(
        _SERVICE_FIXTURES & set(request.fixturenames)
    )
    if not wants:
        return
    missing: list[str] = request.getfixturevalue("_missing_services")
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not reachable: run scripts/services first", pytrace=False
        )


@pytest.fixture
def settings() -> Settings:
    """Unmigrated settings with a fresh schema and topic prefix."""
    return unique_settings()


@pytest.fixture
def make_settings() -> Iterator[Callable[..., Settings]]:
    """Factory for migrated settings with overrides; schemas are dropped afterwards."""
    made: list[Settings] = []

    def make(**overrides: Any) -> Settings:
        settings = unique_settings(**overrides)
        made.append(settings)
        migrate(settings)
        return settings

    yield make
    for settings in made:
        drop_schema(settings)


@pytest.fixture
def migrated(make_settings: Callable[..., Settings]) -> Settings:
    """Settings whose schema is migrated (plain PostgreSQL unless TimescaleDB is preloaded)."""
    return make_settings()


@pytest.fixture
def db(migrated: Settings) -> Iterator[psycopg.Connection]:
    """An autocommit connection on the migrated test schema."""
    with open_db(migrated) as conn:
        yield conn


def register(settings: Settings, *devices: tuple[str, Fleet]) -> None:
    """Put devices in the registry of a migrated schema."""
    with open_db(settings) as conn:
        upsert_devices(conn, [DeviceRecord(device_id=d, fleet=f) for d, f in devices])


@pytest.fixture
def start_ingest(tmp_path: Path) -> Iterator[Callable[..., IngestProcess]]:
    """Factory for ingest child processes; any still running are killed at teardown."""
    procs: list[IngestProcess] = []

    def start(settings: Settings, *, wait_healthy: bool = True, **env: str) -> IngestProcess:
        proc = IngestProcess(settings, tmp_path / f"ingest-{len(procs)}.log", **env)
        procs.append(proc)
        return proc.start(wait_healthy=wait_healthy)

    yield start
    for proc in procs:
        proc.__exit__(None, None, None)


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    """A connected QoS 1 publisher on the test broker."""
    with Publisher(TEST_MQTT_URL) as pub:
        yield pub


def database_url_with(dbname: str) -> str:
    """The test server's URL naming another database."""
    return make_conninfo(TEST_DATABASE_URL, dbname=dbname)
