"""Scaling out: devices partitioned between alerts workers, each judged by exactly one, with
circuit and district grouping intact (lights are partitioned by district)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.partition import Partition, owner, partition_key
from telemetry.reference_data import Asset
from telemetry.registry import DeviceRecord
from telemetry.settings import Settings
from telemetry.storage.devices import upsert_devices
from telemetry.topics import Fleet
from tests.support.alerts import thresholds_file
from tests.support.alerts_process import AlertsProcess
from tests.support.database import open_db
from tests.support.publisher import Publisher
from tests.support.waiting import wait_until

DISTRICTS = ["medina", "gueliz", "menara", "annakhil", "sidi_youssef_ben_ali"]

assets = st.builds(
    Asset,
    device_id=st.from_regex(r"[A-Z]-[0-9]{1,5}", fullmatch=True),
    fleet=st.sampled_from(list(Fleet)),
    route=st.none(),
    district=st.one_of(st.none(), st.sampled_from(DISTRICTS)),
    circuit=st.one_of(st.none(), st.sampled_from([f"C-{i}" for i in range(30)])),
    rated_w=st.none(),
    lat=st.none(),
    lon=st.none(),
)


@given(devices=st.lists(assets, max_size=60), workers=st.integers(1, 8))
def test_every_device_has_exactly_one_worker_and_groups_stay_together(
    devices: list[Asset], workers: int
) -> None:
    partitions = [Partition(i, workers) for i in range(workers)]
    for asset in devices:
        owners = [p.index for p in partitions if p.owns(asset.device_id, asset)]
        assert owners == [owner(partition_key(asset.device_id, asset), workers)]
    lights = [a for a in devices if a.fleet is Fleet.LIGHT]
    for a in lights:
        for b in lights:
            same_district = a.district is not None and a.district == b.district
            same_circuit = a.district is None and b.district is None and a.circuit == b.circuit
            if same_district or (same_circuit and a.circuit is not None):
                assert owner(partition_key(a.device_id, a), workers) == owner(
                    partition_key(b.device_id, b), workers
                )


def test_the_hash_is_stable_across_processes() -> None:
    # Fixed values: changing the hash would move every device to another worker on upgrade.
    assert owner("district:medina", 4) == owner("district:medina", 4)
    assert [owner(f"device:B-{i:03d}", 3) for i in range(6)] == [
        owner(f"device:B-{i:03d}", 3) for i in range(6)
    ]
    spread = {owner(f"device:B-{i:03d}", 4) for i in range(100)}
    assert spread == {0, 1, 2, 3}


# -- two real workers --------------------------------------------------------------------------


def _records() -> list[DeviceRecord]:
    records = [
        DeviceRecord(
            device_id=f"L-{d[:3].upper()}-{i:02d}",
            fleet=Fleet.LIGHT,
            district=d,
            circuit=f"C-{d[:3].upper()}",
            rated_w=60.0,
        )
        for d in DISTRICTS
        for i in range(6)
    ]
    records += [DeviceRecord(device_id=f"T-{i}", fleet=Fleet.TRUCK) for i in range(8)]
    return records


@pytest.fixture
def two_workers(
    migrated: Settings, tmp_path: Path
) -> Iterator[Callable[[], tuple[AlertsProcess, AlertsProcess]]]:
    """Starts workers 0of2 and 1of2 on one schema and prefix."""
    quick = thresholds_file(tmp_path / "t.toml", hold_s="0.2", speeding_min_s="0")
    procs: list[AlertsProcess] = []

    def start() -> tuple[AlertsProcess, AlertsProcess]:
        for index in (0, 1):
            env = {
                "RASD_ALERTS_THRESHOLDS_FILE": str(quick),
                "RASD_ALERTS_WORKERS": "2",
                "RASD_ALERTS_WORKER_INDEX": str(index),
            }
            procs.append(AlertsProcess(migrated, tmp_path / f"w{index}.log", **env))
        for proc in procs:
            proc.start(wait_healthy=False)
        for proc in procs:
            wait_until(proc.healthy, timeout=60, what="worker healthy")
        return procs[0], procs[1]

    yield start
    for proc in procs:
        proc.close()


def _metric(proc: AlertsProcess, name: str) -> float:
    body = proc.http_get("/metrics")[1]
    total = 0.0
    for match in re.finditer(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", body, re.MULTILINE):
        total += float(match[1])
    return total


def test_two_workers_split_the_devices_and_still_group_circuits(
    migrated: Settings,
    publisher: Publisher,
    two_workers: Callable[[], tuple[AlertsProcess, AlertsProcess]],
) -> None:
    records = _records()
    with open_db(migrated) as conn:
        upsert_devices(conn, records)
    w0, w1 = two_workers()
    now = int(time.time() * 1000)
    prefix = migrated.topic_prefix
    messages = []
    for r in records:
        if r.fleet is Fleet.LIGHT:  # every light of every district's circuit loses supply
            body = {"ts": now, "fault": "supplyLoss", "active": True}
            messages.append((f"{prefix}/light/{r.device_id}/fault", json.dumps(body)))
        else:  # every truck speeding
            body = {"ts": now, "lat": 31.6, "lon": -8.0, "speed_kmh": 120.0}
            messages.append((f"{prefix}/truck/{r.device_id}/position", json.dumps(body)))
    publisher.publish_all(messages)

    def alerts() -> list[tuple[str, str, int]]:
        with open_db(migrated) as conn:
            rows = conn.execute(
                "SELECT kind, asset_key, device_count FROM alerts ORDER BY 1, 2"
            ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    expected = sorted(
        [("circuit_outage", f"circuit:C-{d[:3].upper()}", 6) for d in DISTRICTS]
        + [("speeding", f"T-{i}", 1) for i in range(8)]
    )
    wait_until(lambda: alerts() == expected, timeout=60, what=f"alerts {expected}")
    # Each worker saw every message and judged only its own share of them.
    observed = [_metric(w, "rasd_alerts_observations_total") for w in (w0, w1)]
    skipped = [_metric(w, "rasd_alerts_messages_other_partition_total") for w in (w0, w1)]
    assert sum(observed) == len(messages)
    assert [o + s for o, s in zip(observed, skipped, strict=True)] == [len(messages)] * 2
    mine = [
        sum(
            1
            for r in records
            if Partition(i, 2).owns(
                r.device_id,
                Asset(
                    device_id=r.device_id,
                    fleet=r.fleet,
                    route=None,
                    district=r.district,
                    circuit=r.circuit,
                    rated_w=None,
                    lat=None,
                    lon=None,
                ),
            )
        )
        for i in (0, 1)
    ]
    assert observed == mine
    assert all(m > 0 for m in mine)
