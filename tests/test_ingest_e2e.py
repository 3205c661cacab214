"""End to end through the real Mosquitto and PostgreSQL: publish, ingest, store exactly once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telemetry.decoding import Limits, MessageDecoder
from telemetry.settings import Settings
from telemetry.topics import Fleet
from tests.conftest import register
from tests.support.database import count, open_db
from tests.support.ingest_process import IngestProcess
from tests.support.publisher import Publisher
from tests.support.waiting import wait_until


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def _topics(s: Settings) -> dict[str, str]:
    p = s.topic_prefix
    return {
        "bus": f"{p}/bus/B-001/position",
        "truck": f"{p}/truck/T-ARM-001/position",
        "energy": f"{p}/light/L-MED-00001/energy",
        "fault": f"{p}/light/L-MED-00001/fault",
    }


def _register_city(s: Settings) -> None:
    register(s, ("B-001", Fleet.BUS), ("T-ARM-001", Fleet.TRUCK), ("L-MED-00001", Fleet.LIGHT))


def _valid_traffic(s: Settings, now: datetime) -> list[tuple[str, bytes]]:
    t = _topics(s)
    base = now - timedelta(hours=3)
    msgs: list[tuple[str, bytes]] = []
    for i in range(20):  # single bus fixes, RFC 3339 with an offset
        ts = (base + timedelta(seconds=10 * i)).astimezone().isoformat()
        msgs.append(
            (
                t["bus"],
                json.dumps(
                    {
                        "ts": ts,
                        "lat": 31.63,
                        "lon": -8.01 + i * 1e-4,
                        "speed_kmh": 18,
                        "heading_deg": 270,
                        "route": "A",
                        "seq": i,
                    }
                ).encode(),
            )
        )
    # A truck's buffered batch, newest first (out of order), with late fixes from 3 days ago.
    batch = [
        {
            "ts": _ms(base - timedelta(days=3) + timedelta(seconds=30 * i)),
            "lat": 31.7,
            "lon": -8.07,
            "speed_kmh": 30.0,
        }
        for i in range(50)
    ]
    msgs.append((t["truck"], json.dumps(list(reversed(batch))).encode()))
    for i in range(8):
        msgs.append(
            (
                t["energy"],
                json.dumps(
                    {
                        "ts": _ms(base + timedelta(minutes=15 * i)),
                        "energy_wh": 100.0 + 15 * i,
                        "power_w": 60.0,
                        "lamp_on": True,
                        "dim_pct": 100,
                        "seq": i,
                    }
                ).encode(),
            )
        )
    msgs.append(
        (
            t["fault"],
            json.dumps(
                [
                    {"ts": _ms(base), "fault": "lampFailure", "active": True, "detail": "driver"},
                    {"ts": _ms(base + timedelta(hours=1)), "fault": "lampFailure", "active": False},
                ]
            ).encode(),
        )
    )
    return msgs


def _table_counts(s: Settings) -> tuple[int, int, int]:
    return count(s, "vehicle_positions"), count(s, "light_energy"), count(s, "light_faults")


def test_valid_messages_land_exactly_once_even_when_redelivered(
    migrated: Settings, start_ingest: Callable[..., IngestProcess], publisher: Publisher
) -> None:
    _register_city(migrated)
    ingest = start_ingest(migrated)
    traffic = _valid_traffic(migrated, datetime.now(UTC))
    publisher.publish_all(traffic)
    expected = (20 + 50, 8, 2)
    wait_until(lambda: _table_counts(migrated) == expected, what=f"rows {expected}")
    # The same messages again (a tracker resending, a broker redelivering): no new rows.
    publisher.publish_all(traffic)

    def duplicates_counted() -> str:
        status, body = ingest.http_get("/metrics")
        wanted = 'rasd_ingest_duplicates_total{table="vehicle_positions"} 70.0'
        return body if status == 200 and wanted in body else ""

    metrics = wait_until(duplicates_counted, what="duplicates counted")
    assert _table_counts(migrated) == expected
    assert 'rasd_ingest_rows_written_total{table="vehicle_positions"} 70.0' in metrics
    assert count(migrated, "dead_letters") == 0
    with open_db(migrated) as conn:
        row = conn.execute(
            "SELECT lat, lon, speed_kmh, heading_deg, route, seq, received_at > time "
            "FROM vehicle_positions WHERE device_id = 'B-001' AND seq = 3"
        ).fetchone()
    assert row == (31.63, -8.01 + 3e-4, 18.0, 270.0, "A", 3, True)


BAD_CORPUS: list[tuple[str, bytes, str]] = []


def _bad_corpus(s: Settings, now: datetime) -> list[tuple[str, bytes, str]]:
    t = _topics(s)
    ms = _ms(now)
    ok = {"ts": ms, "lat": 31.6, "lon": -8.0}
    p = s.topic_prefix
    return [
        (t["bus"], b"\xc3\x28 not utf-8", "not_utf8"),
        (t["bus"], b"{oops", "not_json"),
        (t["bus"], b'{"ts": 1, "lat": NaN, "lon": 2}', "not_json"),
        (t["bus"], json.dumps({"lat": 31.6, "lon": -8.0}).encode(), "invalid"),
        (t["bus"], json.dumps({**ok, "lat": "31.6"}).encode(), "invalid"),
        (t["bus"], json.dumps({**ok, "lat": 123}).encode(), "invalid"),
        (t["bus"], json.dumps({**ok, "lat": 0, "lon": 0}).encode(), "null_island"),
        (t["bus"], json.dumps({**ok, "ts": ms + 3_600_000}).encode(), "ts_future"),
        (t["bus"], json.dumps({**ok, "ts": ms - 8 * 86_400_000}).encode(), "ts_too_old"),
        (
            t["bus"],
            json.dumps([{**ok, "ts": ms - i, "route": "x" * 64} for i in range(800)]).encode(),
            "too_large",
        ),
        (
            t["energy"],
            json.dumps({"ts": ms, "energy_wh": 5, "power_factor": 2}).encode(),
            "invalid",
        ),
        (
            t["fault"],
            json.dumps({"ts": ms, "fault": "lampMelted", "active": True}).encode(),
            "invalid",
        ),
        (f"{p}/bus/B-001/energy", json.dumps(ok).encode(), "unknown_topic"),
        (f"{p}/bus/B-001", json.dumps(ok).encode(), "unknown_topic"),
        (f"{p}/bus/B-404/position", json.dumps(ok).encode(), "unknown_device"),
        (f"{p}/truck/B-001/position", json.dumps(ok).encode(), "fleet_mismatch"),
    ]


def test_bad_messages_are_dead_lettered_with_their_reason_and_ingest_keeps_going(
    migrated: Settings, start_ingest: Callable[..., IngestProcess], publisher: Publisher
) -> None:
    _register_city(migrated)
    ingest = start_ingest(migrated)
    now = datetime.now(UTC)
    corpus = _bad_corpus(migrated, now)
    publisher.publish_all((topic, payload) for topic, payload, _ in corpus)
    wait_until(lambda: count(migrated, "dead_letters") == len(corpus), what="all dead letters")
    with open_db(migrated) as conn:
        stored = conn.execute(
            "SELECT topic, payload, reason_code, reason FROM dead_letters"
        ).fetchall()
    assert sorted((t, p, c) for t, p, c, _ in stored) == sorted(corpus)
    assert all(reason.startswith(code + ": ") for _, _, code, reason in stored)
    # Still alive and storing.
    assert ingest.healthy()
    publisher.publish_all(
        [
            (
                _topics(migrated)["bus"],
                json.dumps({"ts": _ms(now), "lat": 31.6, "lon": -8.0}).encode(),
            )
        ]
    )
    wait_until(lambda: count(migrated, "vehicle_positions") == 1, what="good message after bad")
    _, metrics = ingest.http_get("/metrics")
    assert 'rasd_ingest_dead_letters_total{reason="null_island"} 1.0' in metrics


def test_a_batch_stores_its_good_elements_and_dead_letters_each_bad_one(
    migrated: Settings, start_ingest: Callable[..., IngestProcess], publisher: Publisher
) -> None:
    _register_city(migrated)
    start_ingest(migrated)
    ms = _ms(datetime.now(UTC))
    batch = [{"ts": ms - 1000 * i, "lat": 31.6, "lon": -8.0} for i in range(10)]
    batch[3] = {"ts": ms - 3000, "lat": 0, "lon": 0}
    batch[7] = {"ts": ms - 7000, "lat": 31.6}
    publisher.publish_all([(_topics(migrated)["bus"], json.dumps(batch).encode())])
    wait_until(
        lambda: count(migrated, "vehicle_positions") == 8 and count(migrated, "dead_letters") == 2,
        what="8 rows and 2 dead letters",
    )
    with open_db(migrated) as conn:
        letters = conn.execute(
            "SELECT element_index, reason_code FROM dead_letters ORDER BY element_index"
        ).fetchall()
    assert letters == [(3, "null_island"), (7, "invalid")]


def test_auto_registration(
    make_settings: Callable[..., Settings],
    start_ingest: Callable[..., IngestProcess],
    publisher: Publisher,
) -> None:
    settings = make_settings(auto_register=True)
    start_ingest(settings)
    ms = _ms(datetime.now(UTC))
    p = settings.topic_prefix
    publisher.publish_all(
        [
            (
                f"{p}/truck/T-NEW-1/position",
                json.dumps({"ts": ms, "lat": 31.7, "lon": -8.0}).encode(),
            ),
            (f"{p}/light/L-NEW-1/energy", json.dumps({"ts": ms, "energy_wh": 3}).encode()),
        ]
    )
    wait_until(
        lambda: count(settings, "vehicle_positions") == 1 and count(settings, "light_energy") == 1,
        what="rows of auto-registered devices",
    )
    with open_db(settings) as conn:
        devices = conn.execute(
            "SELECT device_id, fleet, auto_registered FROM devices ORDER BY 1"
        ).fetchall()
    assert devices == [("L-NEW-1", "light", True), ("T-NEW-1", "truck", True)]
    # Registered as a truck, so the same id on the bus topic is refused.
    publisher.publish_all(
        [
            (
                f"{p}/bus/T-NEW-1/position",
                json.dumps({"ts": ms + 1, "lat": 31.7, "lon": -8.0}).encode(),
            )
        ]
    )
    wait_until(lambda: count(settings, "dead_letters") == 1, what="fleet mismatch dead letter")


def test_health_is_503_until_the_database_is_reachable(
    settings: Settings, start_ingest: Callable[..., IngestProcess]
) -> None:
    # Database URL pointing at a closed port: the process keeps running, unhealthy, retrying.
    broken = settings.model_copy(update={"database_url": "postgresql://postgres@127.0.0.1:1/rasd"})
    ingest = start_ingest(broken, wait_healthy=False)
    status = wait_until(lambda: ingest.http_get("/healthz")[0], what="ops port up")
    assert status == 503
    time.sleep(1.0)
    assert ingest.proc is not None and ingest.proc.poll() is None
    assert ingest.stop() == 0


def test_schema_is_private_to_the_test(migrated: Settings, db: psycopg.Connection) -> None:
    assert db.execute("SELECT current_schema()").fetchone() == (migrated.database_schema,)


_FUZZ_ELEMENT = st.one_of(
    st.binary(max_size=120),
    st.dictionaries(
        st.sampled_from(["ts", "lat", "lon", "speed_kmh", "heading_deg", "seq", "route", "x"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(2**70), 2**70),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(max_size=8),
        ),
        max_size=8,
    ).map(lambda d: json.dumps(d).encode()),
)


@pytest.fixture
def fuzz_target(
    migrated: Settings, start_ingest: Callable[..., IngestProcess]
) -> tuple[Settings, IngestProcess, set[bytes]]:
    """One ingestor for all hypothesis examples, and the payloads already sent to it."""
    _register_city(migrated)
    return migrated, start_ingest(migrated), set()


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payloads=st.lists(_FUZZ_ELEMENT, min_size=20, max_size=40, unique=True))
def test_fuzzed_payloads_are_stored_or_dead_lettered_and_ingest_survives(
    fuzz_target: tuple[Settings, IngestProcess, set[bytes]],
    publisher: Publisher,
    payloads: list[bytes],
) -> None:
    settings, ingest, seen = fuzz_target
    fresh = [p for p in payloads if p not in seen]  # dead letters are deduplicated by content
    seen.update(fresh)
    topic = _topics(settings)["bus"]
    decoder = MessageDecoder(Limits.from_settings(settings))
    now = datetime.now(UTC)
    expected_letters = sum(
        len(decoder.decode(topic, p, now, {"B-001": Fleet.BUS}).dead_letters) for p in fresh
    )
    letters_before = count(settings, "dead_letters")
    publisher.publish_all((topic, p) for p in fresh)
    wait_until(
        lambda: count(settings, "dead_letters") - letters_before == expected_letters,
        what=f"{expected_letters} dead letters",
    )
    assert ingest.healthy()


def test_a_value_the_database_refuses_is_isolated_and_dead_lettered(
    migrated: Settings, start_ingest: Callable[..., IngestProcess], publisher: Publisher
) -> None:
    # PostgreSQL text cannot hold NUL: valid JSON, valid contract, refused by the database.
    # The batch holding it must still store everything else.
    _register_city(migrated)
    start_ingest(migrated, RASD_INGEST_BATCH_AGE_MS="500")
    ms = _ms(datetime.now(UTC))
    topic = _topics(migrated)["bus"]
    good = [
        (topic, json.dumps({"ts": ms - i, "lat": 31.6, "lon": -8.0}).encode()) for i in range(1, 30)
    ]
    poison = (topic, json.dumps({"ts": ms, "lat": 31.6, "lon": -8.0, "route": "A\u0000"}).encode())
    publisher.publish_all([*good[:15], poison, *good[15:]])
    wait_until(
        lambda: (
            count(migrated, "vehicle_positions") == len(good)
            and count(migrated, "dead_letters") == 1
        ),
        what="good rows stored and the poison dead-lettered",
    )
    with open_db(migrated) as conn:
        reason = conn.execute("SELECT reason_code, payload FROM dead_letters").fetchone()
    assert reason is not None and reason[1] == poison[1]
    assert reason[0] == "storage_refused"
