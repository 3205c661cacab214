"""The network file: the simulated city's lines, stops, headways and truck rounds, as the
services import them; and trucks that really drive the rounds it describes."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest

from alerts.__main__ import main as alerts_main
from alerts.errors import RoutesImportError
from alerts.routes_file import RoutesFile, parse_routes
from alerts.rules.collection import shift_containing
from simulators.cli import main as simulators_main
from simulators.collection import COLLECTING
from simulators.devices import build_devices
from simulators.errors import ScenarioError
from simulators.messages import Message
from simulators.network import network_file
from simulators.routes import LINES
from simulators.scenario import Scenario
from telemetry.geometry import haversine_m
from telemetry.reference_data import BusStop, LineSchedule, Network
from telemetry.settings import Settings
from telemetry.storage.reference import (
    bus_stops,
    collection_rounds,
    import_network,
    line_schedules,
    line_stops,
    route_shapes,
)
from tests.support.database import open_db
from tests.support.env import settings_env
from tests.support.simulation import elements, run, small_scenario, ts_seconds

NIGHT = "2025-12-19T20:00:00+01:00"
STOPPED_KMH = 5.0  # alerts thresholds: collection_stop_kmh


def _night_scenario(**extra: object) -> Scenario:
    return small_scenario(
        buses={"count": 0},
        trucks={"count": 8, "shift_start": "21:00"},
        lights={"count": 0},
        defects={"enabled": False},
        **extra,
    )


def _stops_near(messages: list[Message], device: str) -> list[tuple[float, float, float]]:
    """(ts, lat, lon) of every stopped fix of one truck."""
    out = []
    for message in messages:
        if message.device_id != device:
            continue
        for record in elements(message):
            if record["speed_kmh"] <= STOPPED_KMH:
                out.append((ts_seconds(record["ts"]), record["lat"], record["lon"]))
    return out


def test_city_network_file_validates_and_imports(
    tmp_path: Path, migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "network.json"
    assert simulators_main(["network", "city", "-o", str(path)]) == 0
    parsed = parse_routes(path.read_text("utf-8"))
    assert set(parsed.routes) == set(LINES)
    assert len(parsed.rounds) > 90  # compactors and satellites of 120 trucks
    assert {s.route for s in parsed.schedules} == set(LINES)
    assert all(len(parsed.line_stops[line]) >= 2 for line in LINES)
    # Named stops are shared between lines: Bab Doukkala serves many.
    serving = [line for line, ids in parsed.line_stops.items() if "bab-doukkala" in ids]
    assert len(serving) > 5

    for name, value in settings_env(migrated).items():
        monkeypatch.setenv(name, value)
    assert alerts_main(["routes", "import", str(path)]) == 0
    assert alerts_main(["routes", "import", str(path)]) == 0  # idempotent
    with open_db(migrated) as conn:
        assert set(route_shapes(conn)) == set(LINES)
        stored_rounds = collection_rounds(conn)
        assert len(stored_rounds) == len(parsed.rounds)
        first = parsed.rounds[0]
        assert [p.label for p in stored_rounds[first.round].points] == [
            p.label for p in first.points
        ]
        assert [s.stop_id for s in bus_stops(conn)] == sorted(s.stop_id for s in parsed.stops)
        sequences: dict[str, list[str]] = defaultdict(list)
        for row in line_stops(conn):
            sequences[row.route].append(row.stop_id)
        assert sequences == parsed.line_stops
        schedules = line_schedules(conn)
        assert len(schedules) == len(LINES)
        assert all(isinstance(s, LineSchedule) and s.headway_s > 0 for s in schedules)


def test_network_file_problems_are_all_reported_and_nothing_is_imported(
    migrated: Settings,
) -> None:
    text = json.dumps(
        {
            "routes": {"A": [[31.6, -8.0], [31.61, -8.01]]},
            "stops": [
                {"stop_id": "s1", "name": "One", "lat": 31.6, "lon": -8.0},
                {"stop_id": "s1", "name": "Again", "lat": 31.6, "lon": -8.0},
            ],
            "line_stops": {"A": ["s1", "s9"]},
            "schedules": [
                {"route": "A", "start_local": "06:00", "end_local": "06:00", "headway_s": 600},
                {"route": "A", "start_local": "07:00", "end_local": "09:00", "headway_s": 0},
                {
                    "route": "B",
                    "start_local": "06:00",
                    "end_local": "23:00",
                    "headway_s": 60,
                    "timezone": "Mars/Olympus",
                },
            ],
        }
    )
    with pytest.raises(RoutesImportError) as caught:
        parse_routes(text)
    message = str(caught.value)
    for problem in (
        "schedules.0: start_local and end_local are equal",
        "schedules.1.headway_s",
        "unknown time zone 'Mars/Olympus'",
    ):
        assert problem in message, message
    # Cross-checks come once the fields are valid.
    valid = json.loads(text)
    valid["schedules"] = []
    with pytest.raises(
        RoutesImportError, match=r"stop ids given twice: s1.*stops not in 'stops': s9"
    ):
        parse_routes(json.dumps(valid))

    # The database refuses a line through a stop it does not know: nothing else stays either.
    with open_db(migrated) as conn:
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            import_network(
                conn,
                Network(
                    shapes={"A": [(31.6, -8.0), (31.61, -8.01)]},
                    stops=[BusStop(stop_id="s1", name="One", lat=31.6, lon=-8.0)],
                    line_stops={"A": ["s1", "s9"]},
                ),
            )
        assert route_shapes(conn) == {}
        assert bus_stops(conn) == []


def _rounds(scenario: Scenario) -> RoutesFile:
    """The rounds as the services would import them (through the file format)."""
    return RoutesFile.model_validate(network_file(scenario, build_devices(scenario)))


def test_trucks_stop_at_every_point_of_their_round_every_night() -> None:
    scenario = _night_scenario()
    engine, messages = run(scenario, start=NIGHT, duration=33 * 3600.0)  # two nights
    network = _rounds(scenario)
    collecting = {t.device_id for t in engine.devices.trucks if t.kind in COLLECTING}
    assert {r.round for r in network.rounds} == collecting
    assert len(collecting) >= 5
    for spec in network.collection_rounds():
        stops = _stops_near(messages, spec.round)
        nights: dict[object, set[int]] = defaultdict(set)
        for ts, lat, lon in stops:
            shift = shift_containing(spec, ts)
            if shift is None:
                continue
            for point in spec.points:
                if haversine_m(point.lat, point.lon, lat, lon) <= point.radius_m:
                    nights[shift[0]].add(point.seq)
        assert len(nights) == 2, spec.round
        for day, visited in nights.items():
            assert visited == {p.seq for p in spec.points}, (spec.round, day)


def _isolated_point(network: RoutesFile) -> tuple[str, int, str]:
    """(truck, seq, label) of a round point far from every other point of its round."""
    for spec in network.collection_rounds():
        for point in spec.points:
            others = [p for p in spec.points if p.seq != point.seq]
            if all(haversine_m(p.lat, p.lon, point.lat, point.lon) > 150 for p in others):
                return spec.round, point.seq, point.label or ""
    raise AssertionError("no isolated round point in this layout")


@pytest.mark.parametrize("by", ["seq", "label"])
def test_skip_collection_leaves_one_point_out_that_night(by: str) -> None:
    truck, seq, label = _isolated_point(_rounds(_night_scenario()))
    point = str(seq) if by == "seq" else label
    scenario = _night_scenario(events=[f"+10m {truck} skip_collection {point}"])
    _, messages = run(scenario, start=NIGHT, duration=33 * 3600.0)
    spec = next(r for r in _rounds(scenario).collection_rounds() if r.round == truck)
    target = spec.points[seq]
    visits: dict[object, set[int]] = defaultdict(set)
    for ts, lat, lon in _stops_near(messages, truck):
        shift = shift_containing(spec, ts)
        for p in spec.points:
            if shift is not None and haversine_m(p.lat, p.lon, lat, lon) <= p.radius_m:
                visits[shift[0]].add(p.seq)
    first, second = sorted(visits, key=str)
    assert visits[first] == {p.seq for p in spec.points} - {target.seq}
    assert visits[second] == {p.seq for p in spec.points}  # the next night it is collected


def test_skip_collection_of_an_unknown_point_is_refused() -> None:
    truck, _, _ = _isolated_point(_rounds(_night_scenario()))
    for point in ("999", "NOWHERE-0001"):
        scenario = _night_scenario(events=[f"+10m {truck} skip_collection {point}"])
        with pytest.raises(ScenarioError, match="not a point of its round"):
            run(scenario, start=NIGHT, duration=60.0)
    with pytest.raises(ScenarioError, match="names a round point"):
        run(_night_scenario(events=[f"+10m {truck} skip_collection"]), start=NIGHT, duration=60.0)
