"""Crashes and outages: kill -9, SIGTERM, PostgreSQL restart, broker restart; nothing is lost.

These tests run their own Mosquitto (deploy/ config, with its queue limits, credentials and
ACL) and, where PostgreSQL is restarted, their own throwaway cluster.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from telemetry.migrate import migrate
from telemetry.mqtt_credentials import password_line
from telemetry.settings import Settings
from telemetry.topics import Fleet
from tests.broker_instance import MosquittoInstance
from tests.conftest import register
from tests.support.database import count, drop_schema
from tests.support.env import unique_settings
from tests.support.ingest_process import IngestProcess
from tests.support.pg_cluster import PostgresCluster
from tests.support.publisher import Publisher
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

INGEST_PASSWORD = "ingest-secret"
SIM_PASSWORD = "sim-secret"
DEVICES = [f"B-{i:03d}" for i in range(200)]


@pytest.fixture
def broker() -> Iterator[MosquittoInstance]:
    """A private Mosquitto running the deploy/ configuration."""
    passwd = (
        "\n".join(
            [password_line("rasd-ingest", INGEST_PASSWORD), password_line("rasd-sim", SIM_PASSWORD)]
        )
        + "\n"
    )
    with MosquittoInstance.from_deploy_config(password_file=passwd) as instance:
        yield instance


def _settings(broker: MosquittoInstance, **overrides: object) -> Settings:
    # The deploy ACL names the production prefix; this broker is private to the test.
    return unique_settings(
        mqtt_url=broker.url,
        mqtt_username="rasd-ingest",
        mqtt_password=INGEST_PASSWORD,
        topic_prefix="rasd/v1",
        **overrides,
    )


def _stream(settings: Settings, total: int) -> list[tuple[str, bytes]]:
    now = int(datetime.now(UTC).timestamp() * 1000)
    return [
        (
            f"{settings.topic_prefix}/bus/{DEVICES[i % len(DEVICES)]}/position",
            json.dumps(
                {"ts": now - (i // len(DEVICES)) * 1000, "lat": 31.6, "lon": -8.0, "seq": i}
            ).encode(),
        )
        for i in range(total)
    ]


class _Background:
    """Publishes a stream from a thread so the test can crash things meanwhile."""

    def __init__(self, broker: MosquittoInstance, messages: list[tuple[str, bytes]]) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(broker, messages), daemon=True)

    def _run(self, broker: MosquittoInstance, messages: list[tuple[str, bytes]]) -> None:
        try:
            with Publisher(broker.url, username="rasd-sim", password=SIM_PASSWORD) as pub:
                for start in range(0, len(messages), 1000):
                    pub.publish_all(messages[start : start + 1000])
        except BaseException as exc:  # reported by join()
            self.error = exc

    def __enter__(self) -> _Background:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.join()

    def join(self) -> None:
        self._thread.join(180)
        if self.error is not None:
            raise self.error


def _prepare(settings: Settings) -> None:
    migrate(settings)
    register(settings, *[(d, Fleet.BUS) for d in DEVICES])


def test_kill_9_mid_stream_then_restart_stores_every_message_once(
    broker: MosquittoInstance, start_ingest: Callable[..., IngestProcess]
) -> None:
    settings = _settings(broker)
    _prepare(settings)
    total = 50_000
    try:
        ingest = start_ingest(settings)
        with _Background(broker, _stream(settings, total)):
            wait_until(
                lambda: count(settings, "vehicle_positions") >= 10_000,
                timeout=120,
                what="10,000 rows before the crash",
            )
            ingest.kill()
            at_crash = count(settings, "vehicle_positions")
            start_ingest(settings)
        wait_until(
            lambda: count(settings, "vehicle_positions") == total,
            timeout=180,
            what=f"{total} rows after restart",
        )
        assert at_crash < total
        time.sleep(1.0)  # let any stray redelivery land before the final count
        assert count(settings, "vehicle_positions") == total
        assert count(settings, "dead_letters") == 0
    finally:
        drop_schema(settings)


def test_sigterm_drains_commits_acks_and_exits_zero(
    broker: MosquittoInstance, start_ingest: Callable[..., IngestProcess]
) -> None:
    settings = _settings(broker)
    _prepare(settings)
    total = 20_000
    try:
        ingest = start_ingest(settings)
        with _Background(broker, _stream(settings, total)):
            wait_until(
                lambda: count(settings, "vehicle_positions") >= 2_000,
                timeout=120,
                what="rows before SIGTERM",
            )
            assert ingest.stop() == 0
            log = ingest.log_tail(3)
            assert '"event": "ingest_stopped"' in log
            drained = json.loads(next(line for line in log.splitlines() if "drained" in line))
            # Everything it took in was committed before it left.
            assert count(settings, "vehicle_positions") >= drained["rows_committed"] > 0
            again = start_ingest(settings)
        wait_until(
            lambda: count(settings, "vehicle_positions") == total,
            timeout=120,
            what="all rows after restart",
        )
        assert again.stop() == 0
    finally:
        drop_schema(settings)


def test_postgres_restart_mid_stream_loses_nothing(
    broker: MosquittoInstance, start_ingest: Callable[..., IngestProcess]
) -> None:
    total = 20_000
    with PostgresCluster() as cluster:
        settings = _settings(broker, database_url=cluster.url)
        _prepare(settings)
        ingest = start_ingest(settings)
        with _Background(broker, _stream(settings, total)):
            wait_until(
                lambda: count(settings, "vehicle_positions") >= 3_000,
                timeout=120,
                what="rows before the database restart",
            )
            cluster.stop("fast")
            wait_until(
                lambda: ingest.http_get("/healthz")[0] == 503,
                timeout=30,
                what="unhealthy while the database is down",
            )
            time.sleep(2.0)  # an outage, not a blip
            cluster.start()
        wait_until(
            lambda: count(settings, "vehicle_positions") == total,
            timeout=180,
            what="all rows after the database came back",
        )
        assert ingest.healthy()
        assert '"event": "database_write_failed"' in ingest.log_path.read_text() or (
            '"event": "database_unreachable"' in ingest.log_path.read_text()
        )


def test_broker_restart_mid_stream_loses_nothing(
    broker: MosquittoInstance, start_ingest: Callable[..., IngestProcess]
) -> None:
    settings = _settings(broker)
    _prepare(settings)
    messages = _stream(settings, 10_000)
    try:
        ingest = start_ingest(settings)
        with _Background(broker, messages[:5_000]):
            wait_until(
                lambda: count(settings, "vehicle_positions") >= 500, what="rows before restart"
            )
        # Restart with part of the first half still queued or in flight for the ingestor.
        broker.restart()
        # Mosquitto 2.0.11 does not restore a shared subscription from its persistence file
        # until the member subscribes again: what is published before the ingestor is back is
        # dropped by the broker (README, "Known limits"). Devices reconnect too, so wait for it.
        wait_until(
            lambda: ingest.log_path.read_text().count('"event": "subscribed"') >= 2,
            what="ingest reconnected and subscribed again",
        )
        with _Background(broker, messages[5_000:]):
            pass
        wait_until(
            lambda: count(settings, "vehicle_positions") == 10_000,
            timeout=120,
            what="all rows after the broker restart",
        )
        assert ingest.log_path.read_text().count('"event": "broker_connected"') >= 2
    finally:
        drop_schema(settings)
