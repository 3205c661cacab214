"""Small pure pieces: durations and starts, the sun, timestamps, scenarios, events, registry,
recordings and the replay rewriting of prefixes and timestamps."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from simulators.city import MEDINA_WALLS
from simulators.clock import (
    ingest_window_warning,
    local_seconds_of_day,
    parse_duration,
    parse_start,
    utc_offset_s,
)
from simulators.devices import build_devices, registry_records
from simulators.engine import Engine
from simulators.errors import RecordingError, ScenarioError
from simulators.events import resolve_at
from simulators.record import Header, Recorded, RecordingWriter, read_recording
from simulators.replay import retopic, shift_payload, time_offset
from simulators.routes import LINES, allocate_buses
from simulators.scenario import load_scenario, parse_scenario, shipped_scenarios
from simulators.timestamps import rfc3339_offset, rfc3339_utc, shift_rfc3339
from telemetry.geometry import point_in_polygon
from telemetry.registry import parse_devices_csv, render_devices_csv
from telemetry.solar import elevation_deg, sunrise_sunset
from telemetry.topics import Fleet
from tests.support.simulation import small_scenario

JEMAA = (31.62583, -7.98944)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("10m", 600),
        ("2h", 7200),
        ("1d", 86400),
        ("1h30m", 5400),
        (45, 45),
        ("1.5h", 5400),
    ],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten minutes", "10x", "-5", "5 minutes"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(ScenarioError):
        parse_duration(text)


def test_parse_start() -> None:
    assert parse_start("now", now=1_766_000_000.7) == 1_766_000_000
    assert parse_start("now-1h", now=1_766_000_000.7) == 1_766_000_000 - 3600
    assert parse_start("NOW + 10m", now=1_766_000_000) == 1_766_000_600
    local = parse_start("2025-12-19T20:30")  # no offset: Marrakech time, UTC+1 in December
    assert datetime.fromtimestamp(local, UTC).hour == 19
    ramadan = parse_start("2026-03-01T20:30")  # UTC+0 during Ramadan
    assert datetime.fromtimestamp(ramadan, UTC).hour == 20
    assert parse_start("2025-12-19T20:30:00Z") == local + 3600
    with pytest.raises(ScenarioError):
        parse_start("yesterday")


def test_local_time_follows_ramadan() -> None:
    assert utc_offset_s(parse_start("2025-12-19T12:00Z")) == 3600
    assert utc_offset_s(parse_start("2026-03-01T12:00Z")) == 0
    assert local_seconds_of_day(parse_start("2025-12-19T23:30")) == 23.5 * 3600


@pytest.mark.parametrize(
    ("day", "rise_local", "set_local"),
    [("2025-12-21", "08:28", "18:33"), ("2025-06-21", "06:27", "20:40")],
)
def test_sunrise_and_sunset_in_marrakech(day: str, rise_local: str, set_local: str) -> None:
    times = sunrise_sunset(date.fromisoformat(day), *JEMAA)
    assert times is not None
    rise, set_ = (t.timestamp() for t in times)
    for t, expected in ((rise, rise_local), (set_, set_local)):
        hours, minutes = map(int, expected.split(":"))
        assert local_seconds_of_day(t) == pytest.approx(hours * 3600 + minutes * 60, abs=180)
    assert elevation_deg(set_, *JEMAA) == pytest.approx(-0.833, abs=0.05)
    # Solar noon elevation: 90 - latitude +/- 23.44 degrees at the solstices.
    assert elevation_deg((rise + set_) / 2, *JEMAA) == pytest.approx(
        90 - JEMAA[0] + (23.44 if day.endswith("06-21") else -23.44), abs=0.3
    )


def test_timestamp_formats() -> None:
    t = 1_766_174_645
    assert rfc3339_utc(t) == "2025-12-19T20:04:05Z"
    assert rfc3339_offset(t, 3600) == "2025-12-19T21:04:05+01:00"
    assert rfc3339_offset(t, 0) == "2025-12-19T20:04:05+00:00"
    assert shift_rfc3339("2025-12-19T21:04:05+01:00", 60) == "2025-12-19T21:05:05+01:00"
    assert shift_rfc3339("2025-12-19T20:04:05.250Z", -10) == "2025-12-19T20:03:55.250Z"
    assert shift_rfc3339("not a time", 5) is None


def test_shift_payload_moves_every_ts_and_nothing_else() -> None:
    payload = (
        b'[{"ts":1766174645000,"lat":31.6,"lon":-8.0,"seq":1},'
        b'{"ts":"2025-12-19T21:04:05+01:00","fault":"lampFailure","active":true,'
        b'"detail":"text with \\"ts\\":1 inside"}]'
    )
    moved = json.loads(shift_payload(payload, 3600))
    assert moved[0]["ts"] == 1766174645000 + 3_600_000
    assert moved[1]["ts"] == "2025-12-19T22:04:05+01:00"
    assert moved[1]["detail"] == 'text with "ts":1 inside'
    assert moved[0]["lat"] == 31.6
    assert shift_payload(b'{"ts":"garbage"}', 10) == b'{"ts":"garbage"}'
    assert shift_payload(b"\xff\xfe not json", 10) == b"\xff\xfe not json"


def test_time_offset_anchors() -> None:
    header = Header("rasd/v1", 1000.0, "simulator")
    assert time_offset(header, 10.0, 910.0, now=5000.0, speed=1.0) == 3990  # first -> now
    assert time_offset(header, 10.0, 910.0, now=5000.0, speed=None) == 3090  # last -> now
    assert time_offset(header, 10.0, 910.0, now=5000.0, speed=60.0) == 3090


def test_retopic() -> None:
    assert retopic("rasd/v1/bus/B-001/position", "rasd/v1", "test/x/v1") == (
        "test/x/v1/bus/B-001/position"
    )
    assert retopic("other/bus/B-001/position", "rasd/v1", "test/x/v1") == (
        "other/bus/B-001/position"
    )


def test_shipped_scenarios_load() -> None:
    assert {"city", "smoke", "demo"} <= set(shipped_scenarios())
    for name in shipped_scenarios():
        load_scenario(name)
    smoke = load_scenario("smoke")
    assert smoke.events[0].target == "B-003"
    assert smoke.events[0].action == "gps_loss"
    assert smoke.events[0].duration == "5m"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[buses]\ncount = -1\n", "buses.count"),
        ("[buses]\ncolour = 'red'\n", "colour"),
        ("events = ['tomorrow']\n", "AT TARGET ACTION"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_bad_scenarios_are_explained(text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(text)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("+1m L-XYZ-00001 lampFailure", "not a device"),
        ("+1m L-MED-00001 explode", "not a TALQ fault"),
        ("+1m B-001 lampFailure", "a bus can have"),
        ("+1m B-001 skip_collection 3", "a bus can have"),
        ("+1m T-ARM-001 idle", "idle needs a duration"),
        ("+1m B-001 speeding", "speeding needs a duration"),
        ("+1m C-001 lampFailure", "only supply_loss"),
    ],
)
def test_bad_events_are_refused(event: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        Engine(small_scenario(events=[event]), seed=1, start=0.0, duration=60.0, prefix="rasd/v1")


def test_event_times() -> None:
    start = parse_start("2025-12-19T20:55")
    assert resolve_at("+10m", start) == start + 600
    assert resolve_at("21:00", start) == start + 300
    assert resolve_at("00:10", start) == parse_start("2025-12-20T00:10")
    assert resolve_at("20:00", start) == parse_start("2025-12-20T20:00")
    assert resolve_at("2025-12-25T08:00", start) == parse_start("2025-12-25T08:00")


def test_bus_allocation() -> None:
    counts = dict(allocate_buses(250, list(LINES)))
    assert sum(counts.values()) == 250
    assert counts["A"] == 10  # the BRT's 10 electric buses
    assert min(counts.values()) >= 1
    assert len(LINES) == 25
    assert sum(c for _, c in allocate_buses(3, ["A", "1"])) == 3


def test_city_registry() -> None:
    scenario = load_scenario("city")
    records = registry_records(build_devices(scenario), scenario)
    fleets = [r.fleet for r in records]
    assert fleets.count(Fleet.BUS) == 250
    assert fleets.count(Fleet.TRUCK) == 120
    assert fleets.count(Fleet.LIGHT) == 72_000
    by_id = {r.device_id: r for r in records}
    assert len(by_id) == len(records)
    assert by_id["L-MED-00042"].district == "medina"
    assert {r.district for r in records if r.circuit == "C-112"} == {"menara"}
    assert len([r for r in records if r.circuit == "C-112"]) == 40
    assert {r.operator for r in records if r.fleet is Fleet.TRUCK} == {"Arma", "Mecomar"}
    assert sum(1 for r in records if r.device_id.startswith("T-ARM")) == 75
    for record in records:
        if record.district == "medina" and record.fleet is Fleet.LIGHT:
            assert record.lat is not None
            assert record.lon is not None
            assert point_in_polygon(record.lat, record.lon, MEDINA_WALLS)
    light_w = [r.rated_w for r in records if r.rated_w is not None]
    assert 70 < sum(light_w) / len(light_w) < 100  # city-facts: about 85 W on average


def test_registry_csv_round_trip() -> None:
    scenario = load_scenario("smoke")
    records = registry_records(build_devices(scenario), scenario)
    assert parse_devices_csv(render_devices_csv(records)) == records


def test_recording_round_trip(tmp_path: Path) -> None:
    records = [
        Recorded(0.0, "rasd/v1/bus/B-001/position", b'{"ts":1,"lat":1,"lon":1}'),
        Recorded(1.5, "rasd/v1/bus/B-001/position", b"\xff\x00 binary", "null_island", 1),
    ]
    paths = [tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"]
    for path in paths:
        with RecordingWriter(path, Header("rasd/v1", 1000.0, "test", {"k": 1})) as writer:
            for record in records:
                writer.write(record)
    assert paths[0].read_bytes() == paths[1].read_bytes()  # no gzip timestamp
    header, read = read_recording(paths[0])
    assert header == Header("rasd/v1", 1000.0, "test", {"k": 1})
    assert list(read) == records


def test_not_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write('{"hello": 1}\n')
    with pytest.raises(RecordingError, match="not a Rasd recording"):
        read_recording(path)
    (tmp_path / "plain").write_text("nope")
    with pytest.raises(RecordingError):
        read_recording(tmp_path / "plain")


def test_ingest_window_warning() -> None:
    now = parse_start("2026-01-10T12:00Z")
    week, five_min = 7 * 86400.0, 300.0
    old = ingest_window_warning(now - 30 * 86400, None, 1.0, now, week, five_min)
    assert old is not None
    assert "days ago" in old
    assert ingest_window_warning(now, None, 1.0, now, week, five_min) is None
    assert ingest_window_warning(now - 3600, now, None, now, week, five_min) is None
    ahead = ingest_window_warning(now, now + 3600, None, now, week, five_min)
    assert ahead is not None
    assert "ahead" in ahead
