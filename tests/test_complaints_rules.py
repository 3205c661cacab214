"""The pure linking rules and the spatial index, without services: hand-made facts in,
verdicts and alert decisions out (hypothesis for the index and the shift arithmetic)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.complaints.facts import AlertRef, Fix, Headway, Reading
from telemetry.complaints.matching import (
    CITIZEN_REPORT,
    MISSED_COLLECTION,
    JoinAlert,
    LightFacts,
    LinkRules,
    LinkState,
    OpenAlert,
    RoundPoint,
    StopFacts,
    Verdict,
    bus_decision,
    driving_decision,
    latest_shift,
    lighting_decision,
    passages,
    scheduled_headway,
    waste_decision,
)
from telemetry.complaints.services import BY_CODE
from telemetry.complaints.spatial_index import Hit, PointIndex
from telemetry.topics import Fleet

RULES = LinkRules()
# 2025-12-19 21:00 UTC = 22:00 in Marrakech: dark for hours.
NIGHT = datetime(2025, 12, 19, 21, 0, tzinfo=UTC)
NOON = datetime(2025, 12, 19, 12, 0, tzinfo=UTC)
LAT, LON = 31.6295, -7.9811

coords = st.tuples(
    st.floats(31.60, 31.66, allow_nan=False), st.floats(-8.03, -7.96, allow_nan=False)
)


def _measure_every_point(
    index: PointIndex, lat: float, lon: float, radius: float, limit: int
) -> list[Hit]:
    """The answer without the cells: every point measured."""
    x, y = index.project(lat, lon)
    return index.measure(np.arange(len(index), dtype=np.intp), x, y, radius, limit)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(coords, min_size=0, max_size=300),
    coords,
    st.floats(0, 600),
    st.integers(1, 12),
    st.sampled_from([10.0, 50.0, 200.0]),
)
def test_index_answers_like_brute_force(
    points: list[tuple[float, float]],
    here: tuple[float, float],
    radius: float,
    limit: int,
    cell: float,
) -> None:
    index = PointIndex(
        [f"P{i}" for i in range(len(points))],
        [p[0] for p in points],
        [p[1] for p in points],
        cell_m=cell,
    )
    fast = index.within(here[0], here[1], radius, limit)
    slow = _measure_every_point(index, here[0], here[1], radius, limit)
    assert [h.index for h in fast] == [h.index for h in slow]
    assert all(h.distance_m <= radius for h in fast)
    assert [h.distance_m for h in fast] == sorted(h.distance_m for h in fast)


def test_index_distances_are_metres() -> None:
    # 0.001 degree of latitude is 111.2 m.
    index = PointIndex(["a", "b"], [31.6, 31.601], [-8.0, -8.0])
    hits = index.within(31.6, -8.0, 120.0)
    assert [h.index for h in hits] == [0, 1]
    assert abs(hits[1].distance_m - 111.19) < 0.5
    assert index.within(31.6, -8.0, 100.0, 5)[-1].index == 0


def _light(
    device: str = "L-MED-00001",
    *,
    distance: float = 10.0,
    readings: tuple[Reading, ...] = (),
    faults: tuple[tuple[str, datetime], ...] = (),
) -> LightFacts:
    latest = readings[-1] if readings else None
    return LightFacts(device, distance, LAT, LON, "medina", "C-001", latest, readings, faults)


def test_dark_fault_confirms_and_opens_a_citizen_report_without_alerts() -> None:
    light = _light(faults=(("lampFailure", NIGHT - timedelta(hours=2)),))
    out = lighting_decision(BY_CODE["streetlight_out"], [light], {}, NIGHT, RULES)
    assert out.state is LinkState.LINKED
    assert out.evidence[0].verdict is Verdict.CONFIRMS
    assert isinstance(out.alert, OpenAlert)
    assert out.alert.kind == CITIZEN_REPORT and out.alert.asset_key == "L-MED-00001"
    assert out.alert.asset_kind is Fleet.LIGHT and out.district == "medina"


def test_night_readings_confirm_or_refute() -> None:
    lit = Reading(NIGHT - timedelta(minutes=10), True, 80.0)
    dark = Reading(NIGHT - timedelta(minutes=10), False, 0.0)
    out = lighting_decision(BY_CODE["streetlight_out"], [_light(readings=(lit,))], {}, NIGHT, RULES)
    assert out.evidence[0].verdict is Verdict.REFUTES
    out = lighting_decision(
        BY_CODE["streetlight_out"], [_light(readings=(dark,))], {}, NIGHT, RULES
    )
    assert out.evidence[0].verdict is Verdict.CONFIRMS
    # A daytime "off" says nothing about the lamp at night; a silent light is unknown.
    day_off = Reading(NOON - timedelta(minutes=5), False, 0.0)
    out = lighting_decision(
        BY_CODE["streetlight_out"], [_light(readings=(day_off,))], {}, NOON, RULES
    )
    assert out.evidence[0].verdict is Verdict.UNKNOWN
    old = Reading(NIGHT - timedelta(hours=5), False, 0.0)
    out = lighting_decision(BY_CODE["streetlight_out"], [_light(readings=(old,))], {}, NIGHT, RULES)
    assert out.evidence[0].verdict is Verdict.UNKNOWN


def test_day_burning_and_pole() -> None:
    on_by_day = Reading(NOON - timedelta(minutes=5), True, 90.0)
    out = lighting_decision(
        BY_CODE["streetlight_day"], [_light(readings=(on_by_day,))], {}, NOON, RULES
    )
    assert out.evidence[0].verdict is Verdict.CONFIRMS
    out = lighting_decision(
        BY_CODE["damaged_pole"],
        [_light(faults=(("impactDetected", NOON),))],
        {},
        NOON,
        RULES,
    )
    assert out.evidence[0].verdict is Verdict.CONFIRMS


def test_joins_own_fault_first_then_group_then_citizen_report() -> None:
    light = _light()
    refs = [
        AlertRef(7, CITIZEN_REPORT, "L-MED-00001", False),
        AlertRef(5, "circuit_outage", None, True),
        AlertRef(9, "lampFailure", "L-MED-00001", False),
        AlertRef(3, "day_burning", "L-MED-00001", False),  # not about darkness
    ]
    svc = BY_CODE["streetlight_out"]
    out = lighting_decision(svc, [light], {"L-MED-00001": refs}, NIGHT, RULES)
    assert out.alert == JoinAlert(9, "lampFailure")
    out = lighting_decision(svc, [light], {"L-MED-00001": refs[:2]}, NIGHT, RULES)
    assert out.alert == JoinAlert(5, "circuit_outage")
    out = lighting_decision(svc, [light], {"L-MED-00001": refs[:1]}, NIGHT, RULES)
    assert out.alert == JoinAlert(7, CITIZEN_REPORT)
    out = lighting_decision(BY_CODE["streetlight_day"], [light], {"L-MED-00001": refs}, NOON, RULES)
    assert out.alert == JoinAlert(3, "day_burning")


def test_concerns_the_nearest_light_that_confirms() -> None:
    near_lit = _light("L-1", distance=5, readings=(Reading(NIGHT, True, 80.0),))
    far_dead = _light("L-2", distance=20, faults=(("lampFailure", NIGHT),))
    out = lighting_decision(BY_CODE["streetlight_out"], [near_lit, far_dead], {}, NIGHT, RULES)
    assert isinstance(out.alert, OpenAlert) and out.alert.asset_key == "L-2"
    out = lighting_decision(BY_CODE["streetlight_out"], [], {}, NIGHT, RULES)
    assert out.state is LinkState.NO_ASSET and out.alert is None


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    st.sampled_from([(time(21), time(4)), (time(5), time(9)), (time(22, 30), time(23, 30))]),
)
def test_latest_shift_is_the_last_one_started(at: datetime, band: tuple[time, time]) -> None:
    shift = latest_shift(band[0], band[1], "Africa/Casablanca", at)
    assert shift.start <= at < shift.start + timedelta(hours=25)
    assert shift.end > shift.start
    following = latest_shift(band[0], band[1], "Africa/Casablanca", shift.start - timedelta(0, 1))
    assert following.start < shift.start


def _point(trucks: tuple[str, ...] = ("T-ARM-001",)) -> RoundPoint:
    return RoundPoint(
        "T-ARM-001", 3, "Derb Dabachi", LAT, LON, 40.0, 30.0, time(21), time(4),
        "Africa/Casablanca", trucks,
    )  # fmt: skip


# The shift of the night of 2025-12-19 runs 21:00-04:00 local (UTC+1): 20:00Z-03:00Z.
MORNING = datetime(2025, 12, 20, 9, 0, tzinfo=UTC)


def test_missed_collection_waits_for_the_window_then_judges() -> None:
    svc = BY_CODE["missed_collection"]
    during = datetime(2025, 12, 19, 22, 0, tzinfo=UTC)
    out = waste_decision(svc, [_point()], [], {}, during, during, RULES)
    assert out.state is LinkState.PENDING and out.retry_at is not None
    assert out.retry_at == datetime(2025, 12, 20, 3, 0, tzinfo=UTC) + timedelta(
        seconds=RULES.settle_s
    )
    stopped = Fix("T-ARM-001", datetime(2025, 12, 19, 23, 10, tzinfo=UTC), LAT, LON + 0.0002, 0.0)
    out = waste_decision(svc, [_point()], [stopped], {"T-ARM-001": 300}, MORNING, MORNING, RULES)
    assert out.state is LinkState.LINKED and out.alert is None
    passage = [e for e in out.evidence if e.kind == "truck_passage"]
    assert passage[0].verdict is Verdict.REFUTES and passage[0].asset_key == "T-ARM-001"
    assert passage[0].observed_at == stopped.time
    # Driving past at speed is no collection; nothing near the point either.
    moving = Fix("T-ARM-001", stopped.time, LAT, LON, 30.0)
    out = waste_decision(svc, [_point()], [moving], {"T-ARM-001": 300}, MORNING, MORNING, RULES)
    miss = [e for e in out.evidence if e.kind == "no_service"]
    assert miss[0].verdict is Verdict.CONFIRMS
    assert isinstance(out.alert, OpenAlert)
    assert out.alert.kind == MISSED_COLLECTION and out.alert.asset_key == "T-ARM-001"
    assert out.alert.opened_at == datetime(2025, 12, 20, 3, 0, tzinfo=UTC)  # the shift's end
    assert out.alert.details == {"shift 2025-12-19": ["Derb Dabachi"], "round": "T-ARM-001"}
    # A truck that stored nothing during the shift: no proof either way.
    out = waste_decision(svc, [_point()], [], {}, MORNING, MORNING, RULES)
    assert [e.verdict for e in out.evidence if e.kind == "no_service"] == [Verdict.UNKNOWN]


def test_other_waste_services_only_name_the_round() -> None:
    out = waste_decision(
        BY_CODE["overflowing_container"], [_point()], [], {}, MORNING, MORNING, RULES
    )
    assert out.state is LinkState.LINKED and out.alert is None
    assert [e.kind for e in out.evidence] == ["collection_point"]
    out = waste_decision(BY_CODE["illegal_dumping"], [], [], {}, MORNING, MORNING, RULES)
    assert out.state is LinkState.NO_ASSET


STOP = StopFacts("bab-doukkala", "Bab Doukkala", LAT, LON, 40.0, ("A",))
SCHEDULE = [Headway("A", time(6), time(23), 600, "Africa/Casablanca")]
# 10:00 local on 2025-12-19 (UTC+1).
AT = datetime(2025, 12, 19, 9, 0, tzinfo=UTC)


def _fixes(minutes: list[int], route: str = "A") -> list[Fix]:
    return [
        Fix(f"B-{i:03d}", AT + timedelta(minutes=m), LAT, LON + 0.0001, 0.0, route)
        for i, m in enumerate(minutes)
    ]


def test_bus_passages_against_the_timetable() -> None:
    later = AT + timedelta(hours=2)
    # Every 10 minutes around the complaint: the complaint is refuted.
    regular = _fixes([-60, -50, -40, -30, -20, -10, -2, 8, 18])
    out = bus_decision([STOP], {STOP.stop_id: regular}, SCHEDULE, AT, later, RULES)
    row = out.evidence[0]
    assert row.verdict is Verdict.REFUTES and row.details["scheduled_headway_s"] == 600
    assert row.details["gap_at_complaint_s"] == 600
    # Nothing for 45 minutes: confirmed.
    gap = _fixes([-60, -50, -40, -30, 15, 25])
    out = bus_decision([STOP], {STOP.stop_id: gap}, SCHEDULE, AT, later, RULES)
    assert out.evidence[0].verdict is Verdict.CONFIRMS
    # Another line's buses do not count; a line without timetable is unknown.
    out = bus_decision([STOP], {STOP.stop_id: _fixes([-5, 5], "B")}, SCHEDULE, AT, later, RULES)
    assert out.evidence[0].verdict is Verdict.CONFIRMS
    out = bus_decision([STOP], {STOP.stop_id: regular}, [], AT, later, RULES)
    assert out.evidence[0].verdict is Verdict.UNKNOWN
    # Judged only once the next bus had its chance to come.
    out = bus_decision([STOP], {}, SCHEDULE, AT, AT + timedelta(minutes=5), RULES)
    assert out.state is LinkState.PENDING


def test_no_service_hours_and_passage_grouping() -> None:
    midnight = datetime(2025, 12, 19, 23, 30, tzinfo=UTC)  # 00:30 local
    assert scheduled_headway(SCHEDULE, "A", midnight) is None
    out = bus_decision([STOP], {}, SCHEDULE, midnight, midnight + timedelta(hours=2), RULES)
    assert out.evidence[0].verdict is Verdict.REFUTES
    # A bus dwelling at the stop (fixes every 10 s for a minute) is one passage.
    dwell = [
        Fix("B-001", AT + timedelta(seconds=10 * k), LAT, LON + 0.00002 * k, 0.0, "A")
        for k in range(7)
    ]
    found = passages(STOP, dwell, RULES)
    assert len(found) == 1 and found[0].time == AT


def test_dangerous_driving_speeds() -> None:
    later = AT + timedelta(hours=1)
    fixes = [
        Fix("B-001", AT - timedelta(minutes=3), LAT, LON, 72.0, "A"),
        Fix("B-001", AT - timedelta(minutes=2), LAT, LON, 40.0, "A"),
        Fix("T-ARM-002", AT - timedelta(minutes=1), LAT, LON + 0.0005, 35.0),
        Fix("B-009", AT, LAT + 0.01, LON, 120.0, "3"),  # a kilometre away
    ]
    fleets = {"B-001": Fleet.BUS, "T-ARM-002": Fleet.TRUCK, "B-009": Fleet.BUS}
    out = driving_decision(LAT, LON, fixes, fleets, AT, later, RULES)
    assert [(e.asset_key, e.verdict) for e in out.evidence] == [
        ("B-001", Verdict.CONFIRMS),
        ("T-ARM-002", Verdict.REFUTES),
    ]
    assert out.evidence[0].details["speed_kmh"] == 72.0
    assert out.evidence[1].asset_kind == "truck"
    out = driving_decision(LAT, LON, [], fleets, AT, later, RULES)
    assert out.state is LinkState.NO_ASSET
