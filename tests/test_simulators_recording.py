"""The shipped recording: reproducible from the smoke scenario, and its documented counts
match what the ingestor's decoder makes of it at any replay speed."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from simulators.cli import main
from simulators.record import read_recording
from simulators.replay import retopic, shift_payload, span, time_offset
from telemetry.registry import parse_devices_csv
from tests.support.simulation import decode_outcome

RECORDINGS = Path(__file__).resolve().parent / "recordings"
RECORDING = RECORDINGS / "smoke.jsonl.gz"
DEVICES = RECORDINGS / "smoke.devices.csv"
EXPECTED = RECORDINGS / "smoke.expected.json"
TEST_PREFIX = "test/replay/v1"


def expected() -> dict[str, Any]:
    """The documented outcome of replaying the shipped recording."""
    result: dict[str, Any] = json.loads(EXPECTED.read_text("utf-8"))
    return result


def offline_counts(speed: float | None, now: float) -> dict[str, int]:
    """Replay the recording into the decoder as ``replay`` would publish it at ``speed``."""
    registry = {r.device_id: r.fleet for r in parse_devices_csv(DEVICES.read_text("utf-8"))}
    header, records = read_recording(RECORDING)
    bounds = span(records)
    assert bounds is not None
    first, last = bounds
    shift = time_offset(header, first, last, now, speed)
    header, records = read_recording(RECORDING)
    stream = (
        (
            retopic(r.topic, header.prefix, TEST_PREFIX),
            shift_payload(r.payload, shift),
            datetime.fromtimestamp(now + (0 if speed is None else (r.t - first) / speed), UTC),
        )
        for r in records
    )
    return decode_outcome(stream, TEST_PREFIX, registry).counts()


@pytest.mark.parametrize("speed", [None, 1.0, 60.0])
def test_documented_counts_hold_at_any_speed(speed: float | None) -> None:
    assert offline_counts(speed, time.time()) == expected()["counts"]


def test_recording_has_every_kind_of_traffic() -> None:
    _, records = read_recording(RECORDING)
    items = list(records)
    assert len(items) == expected()["messages"]
    topics = {r.topic.split("/")[2] + "/" + r.topic.split("/")[4] for r in items}
    assert topics == {"bus/position", "truck/position", "light/energy", "light/fault"}
    labels = {label for r in items if r.defect for label in r.defect.split(",")}
    assert {"duplicate", "future_ts", "null_island", "out_of_order", "clock_skew"} <= labels
    assert RECORDING.stat().st_size < 3_000_000


def test_shipped_files_are_what_the_simulator_makes(tmp_path: Path) -> None:
    """Determinism end to end, and a reminder to regenerate after changing the simulators."""
    made = tmp_path / "smoke.jsonl.gz"
    assert main(["run", "smoke", "--record", str(made), "--prefix", "rasd/v1"]) == 0
    assert made.read_bytes() == RECORDING.read_bytes(), "regenerate: see docs/simulators.md"
    csv = tmp_path / "smoke.devices.csv"
    assert main(["registry", "smoke", "-o", str(csv)]) == 0
    assert csv.read_text("utf-8") == DEVICES.read_text("utf-8")


def write_expected() -> dict[str, Any]:
    """Recompute smoke.expected.json after regenerating the recording (see the docs)."""
    _, records = read_recording(RECORDING)
    items = list(records)
    labels: dict[str, int] = {}
    for record in items:
        for label in (record.defect or "").split(","):
            if label:
                labels[label] = labels.get(label, 0) + 1
    document = {
        "about": "What replaying smoke.jsonl.gz into an empty schema stores (python -m "
        "simulators replay, any speed, timestamps moved to now). Regenerate with the "
        "commands in docs/simulators.md.",
        "scenario": "smoke",
        "seed": 7,
        "messages": len(items),
        "rejected_elements": sum(r.rejects for r in items),
        "defect_labels": dict(sorted(labels.items())),
        "counts": offline_counts(None, time.time()),
    }
    EXPECTED.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    return document


if __name__ == "__main__":
    print(json.dumps(write_expected(), indent=2))
