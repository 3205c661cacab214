"""Scenario tests for the reading- and fleet-based rules, driven by the simulators' scripted
events: a lamp stuck on by day, a bus detour, a truck idling mid-round and a skipped
collection point. Each scenario yields exactly the expected alerts, no more.

Expected times come from the simulated messages themselves (when the Sun was up at a reading,
when a bus was far from its line, when a truck stood still), not from the alerts engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from alerts.config import load_thresholds
from simulators.clock import parse_start
from simulators.devices import build_devices
from simulators.engine import Engine as SimEngine
from simulators.messages import Message
from simulators.network import network_file
from simulators.routes import LINES
from simulators.scenario import Scenario
from telemetry.geometry import Polyline, haversine_m
from telemetry.settings import Settings
from telemetry.solar import elevation_deg
from tests.support.alerts import Outcome, ScenarioDriver
from tests.support.simulation import elements, ts_seconds

THRESHOLDS = load_thresholds()
LIGHTS = THRESHOLDS.lights
VEHICLES = THRESHOLDS.vehicles
ZONE = ZoneInfo("Africa/Casablanca")


@dataclass(frozen=True)
class Fix:
    """One decoded vehicle record."""

    ts: float
    lat: float
    lon: float
    speed_kmh: float


def _fixes(messages: list[Message], device: str) -> list[Fix]:
    fixes = {
        ts_seconds(r["ts"]): Fix(ts_seconds(r["ts"]), r["lat"], r["lon"], r["speed_kmh"])
        for m in messages
        if m.device_id == device
        for r in elements(m)
    }
    return [fixes[t] for t in sorted(fixes)]


def _readings(messages: list[Message], device: str) -> list[dict[str, object]]:
    return sorted(
        (json.loads(m.payload) for m in messages if m.device_id == device and "energy" in m.topic),
        key=lambda r: ts_seconds(r["ts"]),
    )


def _simulate(scenario: Scenario, start: str, hours: float) -> tuple[float, list[Message]]:
    t0 = parse_start(start)
    sim = SimEngine(scenario, seed=5, start=t0, duration=hours * 3600, prefix="rasd/v1")
    return t0, list(sim.messages())


@pytest.fixture
def driver(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., ScenarioDriver]]:
    """Factory of drivers on fresh schemas, closed at teardown."""
    made: list[ScenarioDriver] = []

    def make(scenario: Scenario, *, ingest: bool = False) -> ScenarioDriver:
        d = ScenarioDriver(make_settings(), scenario, ingest=ingest)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


# -- a winter morning: a lamp stuck on after sunrise, a bus on a detour, a bus racing -------------

MORNING = "2025-12-20T07:00:00+01:00"  # sunrise ~08:27 local
STUCK, DETOURED, RACER = "L-GUE-00009", "B-003", "B-001"


def morning_scenario() -> Scenario:
    """Four buses, 200 lights, no random faults or defects; only the scripted events happen:
    a lamp stuck on, a detour and a bus racing for four minutes."""
    return Scenario.model_validate(
        {
            "name": "alerts-morning",
            "buses": {"count": 4, "lines": ["A", "11", "19"]},
            "trucks": {"count": 0},
            "lights": {"count": 200, "fault_rate_multiplier": 0.0},
            "defects": {"enabled": False},
            "events": [
                f"+0m {STUCK} stuck_on 3h",
                f"+3h10m {DETOURED} detour 20m",
                f"+2h {RACER} speeding 4m",
            ],
        }
    )


def _day_burning(messages: list[Message]) -> Outcome:
    """Opens at the first reading lit with the Sun up; clears at the first dark one after."""
    layout = build_devices(morning_scenario()).lights
    i = layout.ids.index(STUCK)
    lat, lon = float(layout.lat[i]), float(layout.lon[i])
    opened = cleared = None
    for reading in _readings(messages, STUCK):
        ts = ts_seconds(reading["ts"])
        if elevation_deg(ts, lat, lon) < LIGHTS.day_burning_min_elevation_deg:
            continue
        if reading["lamp_on"] and opened is None:
            opened = ts
        if not reading["lamp_on"] and opened is not None:
            cleared = ts
            break
    assert opened is not None
    return Outcome("day_burning", STUCK, opened, cleared)


def _route_deviation(messages: list[Message]) -> Outcome:
    """Opens once the bus has driven farther than the limit from its line for the minimum
    time; clears at its first fix back within the limit."""
    line = Polyline(LINES[_line_of(DETOURED)].shape.points)
    off_since = opened = None
    for fix in _fixes(messages, DETOURED):
        far = line.distance_m(fix.lat, fix.lon) > VEHICLES.route_max_distance_m
        if not far:
            if opened is not None:
                return Outcome("route_deviation", DETOURED, opened, fix.ts)
            off_since = None
        elif fix.speed_kmh >= VEHICLES.moving_kmh:
            off_since = fix.ts if off_since is None else off_since
            if opened is None and fix.ts - off_since >= VEHICLES.route_min_s:
                opened = fix.ts
    raise AssertionError("the detour never ended")


def _speeding(messages: list[Message]) -> Outcome:
    """Opens at the first fix ``speeding_min_s`` into a run of fixes over the bus limit;
    clears at the first fix back under it."""
    over_since = opened = None
    for fix in _fixes(messages, RACER):
        if fix.speed_kmh <= VEHICLES.bus_speed_limit_kmh:
            if opened is not None:
                return Outcome("speeding", RACER, opened, fix.ts)
            over_since = None
            continue
        over_since = fix.ts if over_since is None else over_since
        if opened is None and fix.ts - over_since >= VEHICLES.speeding_min_s:
            opened = fix.ts
    raise AssertionError("the race never ended")


def _line_of(bus: str) -> str:
    return next(b.line_id for b in build_devices(morning_scenario()).buses if b.device_id == bus)


def test_morning_stuck_lamp_and_detour(driver: Callable[..., ScenarioDriver]) -> None:
    t0, messages = _simulate(morning_scenario(), MORNING, 4.0)
    d = driver(morning_scenario())
    d.feed(messages)
    got = d.finish(t0 + 4 * 3600)
    detour = _route_deviation(messages)
    burning = _day_burning(messages)
    racing = _speeding(messages)
    assert got == {burning, detour, racing}
    # One race, one alert: from half a minute after it began to its end (stops skipped).
    assert t0 + 120 * 60 + VEHICLES.speeding_min_s <= racing.opened < t0 + 121 * 60
    assert t0 + 124 * 60 <= (racing.resolved or 0) <= t0 + 124 * 60 + 30
    # The stuck lamp sent no fault: the rule found it from its readings alone.
    assert not [m for m in messages if m.device_id == STUCK and "fault" in m.topic]
    assert t0 + 190 * 60 + VEHICLES.route_min_s <= detour.opened < t0 + 195 * 60
    assert t0 + 210 * 60 - 60 <= (detour.resolved or 0) <= t0 + 210 * 60 + 60


# -- a night of collection: a truck idling mid-round, a skipped point -----------------------------

NIGHT = "2025-12-19T20:30:00+01:00"
NIGHT_HOURS = 8.5  # past 04:00 (shift end) + collection_grace_s
IDLER, SKIPPER = "T-ARM-002", "T-ARM-001"


def night_scenario(skip: str = "0") -> Scenario:
    """Three trucks (two collect), two buses finishing their day, 40 lights; no defects."""
    return Scenario.model_validate(
        {
            "name": "alerts-night",
            "buses": {"count": 2, "lines": ["A", "11"]},
            "trucks": {"count": 3},
            "lights": {"count": 40, "fault_rate_multiplier": 0.0},
            "defects": {"enabled": False},
            "events": [f"+90m {IDLER} idle 45m", f"+10m {SKIPPER} skip_collection {skip}"],
        }
    )


def _isolated_point(truck: str) -> tuple[str, str]:
    """(seq, label) of a point of ``truck``'s round far from its other points."""
    scenario = night_scenario()
    rounds = network_file(scenario, build_devices(scenario))["rounds"]
    points = next(r["points"] for r in rounds if r["round"] == truck)
    for seq, p in enumerate(points):
        if all(
            haversine_m(p["lat"], p["lon"], q["lat"], q["lon"]) > 150 for q in points if q is not p
        ):
            return str(seq), p["label"]
    raise AssertionError(f"no isolated point on the round of {truck}")


def _idle(messages: list[Message], t0: float) -> Outcome:
    """The first long stop after the scripted hold began: the alert opens at its first fix
    ``idle_max_s`` after the stop's first fix, and clears at the next moving fix."""
    hold = t0 + 90 * 60
    run: list[Fix] = []
    for fix in _fixes(messages, IDLER):
        if fix.speed_kmh < VEHICLES.moving_kmh:
            run.append(fix)
            continue
        if run and run[-1].ts >= hold and run[-1].ts - run[0].ts >= VEHICLES.idle_max_s:
            since = run[0].ts
            opened = next(f.ts for f in run if f.ts - since >= VEHICLES.idle_max_s)
            return Outcome("idle", IDLER, opened, fix.ts)
        run = []
    raise AssertionError("no long stop after the hold")


def _shift_end(t0: float) -> float:
    day = datetime.fromtimestamp(t0, ZONE).date()
    end = datetime.combine(day, datetime.min.time(), ZONE).timestamp() + 28 * 3600  # 04:00
    return end


@pytest.mark.parametrize("restart", [False, True], ids=["uninterrupted", "restarted"])
def test_night_idle_truck_and_skipped_point(
    driver: Callable[..., ScenarioDriver], restart: bool
) -> None:
    seq, label = _isolated_point(SKIPPER)
    scenario = night_scenario(seq)
    t0, messages = _simulate(scenario, NIGHT, NIGHT_HOURS)
    d = driver(scenario, ingest=restart)
    if restart:
        # Down from mid-idle (alert open) to after it: catch-up replays the whole night.
        report = d.feed_with_restart(messages, crash=t0 + 133 * 60, back=t0 + 160 * 60)
        assert report.restored == 1  # the idle alert
    else:
        d.feed(messages)
    got = d.finish(t0 + NIGHT_HOURS * 3600)
    idle = _idle(messages, t0)
    assert got == {idle, Outcome("missed_collection", SKIPPER, _shift_end(t0), None)}
    assert idle.resolved is not None
    assert t0 + 90 * 60 + 45 * 60 - 60 <= idle.resolved <= t0 + 90 * 60 + 45 * 60 + 60
    details = d.conn.execute(
        "SELECT details FROM alerts WHERE kind = 'missed_collection'"
    ).fetchone()
    assert details is not None
    assert details[0] == {"round": SKIPPER, "shift 2025-12-19": [label]}


# -- a healthy night with every GPS and transport defect: only real silences ----------------------


def quiet_night() -> Scenario:
    """Every truck of the city, 60 buses finishing their day, 200 lights; no fault and no event,
    and every defect of the city facts on: GPS noise, multipath, fix loss, cold-start (0, 0)
    fixes, coverage gaps, duplicates, late and out-of-order batches, bad clocks."""
    return Scenario.model_validate(
        {
            "name": "alerts-quiet-night",
            "buses": {"count": 60},
            "trucks": {"count": 120},
            "lights": {"count": 200, "fault_rate_multiplier": 0.0},
        }
    )


def test_a_healthy_night_raises_only_real_silences(
    driver: Callable[..., ScenarioDriver],
) -> None:
    scenario = quiet_night()
    assert scenario.defects.enabled
    t0, messages = _simulate(scenario, NIGHT, NIGHT_HOURS)
    d = driver(scenario)
    d.feed(messages)
    got = d.finish(t0 + NIGHT_HOURS * 3600)
    # No faulty tracker for the odd (0, 0) fix, no missed point, idle stop or detour on a truck
    # driving its round through noise and gaps.
    assert {o.kind for o in got} <= {"vehicle_offline"}
    # Coverage gaps (0.2 per vehicle-day, 1-15 min) make a few real silences; none may be over
    # as it opens (a healthy truck's usual quiet while stopped, mistaken for one).
    assert len(got) <= 5
    assert all(o.resolved is None or o.resolved > o.opened for o in got)
    trucks = {t.device_id for t in build_devices(scenario).trucks}
    for o in got:
        after = (
            VEHICLES.truck_offline_after_s if o.asset_key in trucks else VEHICLES.offline_after_s
        )
        mine = [m for m in messages if m.device_id == o.asset_key and "position" in m.topic]
        newest = max(
            ts_seconds(r["ts"]) for m in mine if m.at <= o.opened - after for r in elements(m)
        )
        # A real silence: in the threshold before the alert, nothing came from the vehicle but
        # late deliveries of fixes older than the ones it had sent already.
        window = [m for m in mine if o.opened - after < m.at < o.opened]
        assert all(ts_seconds(r["ts"]) <= newest for m in window for r in elements(m)), o
