"""Arrival predictions (pure): properties over random trips, positions, learned times and
clocks (arrivals strictly increase along the trip, never lie in the past, only stops still
ahead), the dwell model, learned times replacing defaults, and an accuracy floor on a small
seeded held-out simulated morning (``python -m bench.predictions``'s method on a small city,
deterministic)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.gtfs.feed import TripPattern, build_feed
from telemetry.gtfs.predictions import (
    DEFAULT_DWELL_S,
    STOP_RADIUS_M,
    Progress,
    TravelModel,
    advance,
    predict,
    stop_at,
)
from telemetry.gtfs.records import (
    FeedConfig,
    LinkTime,
    Network,
    NetworkLine,
    NetworkStop,
    ServiceBand,
    StopDwell,
)
from telemetry.gtfs.runtimes import MIN_SAMPLES, PERIODS
from telemetry.settings import Settings

TZ = "Africa/Casablanca"
CONFIG = FeedConfig(
    agency_id="supratours",
    agency_name="Supratours",
    agency_url="https://www.supratours.ma",
    timezone=TZ,
    lang="fr",
    publisher_name="Commune de Marrakech",
    publisher_url="https://www.marrakech.ma",
    start_date=date(2026, 1, 1),
    end_date=date(2027, 12, 31),
)
T0 = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)  # 09:00 local


def _pattern(gaps: list[float]) -> TripPattern:
    """Direction 0 of a line due north with stops ``gaps`` metres apart."""
    lat = 31.60
    stops = {}
    for k, gap in enumerate([0.0, *gaps]):
        lat += gap / 111_195.0
        stops[f"s{k}"] = NetworkStop(stop_id=f"s{k}", name=f"Stop {k}", lat=lat, lon=-8.0)
    network = Network(
        stops=stops,
        lines=[
            NetworkLine(
                route_id="L",
                stop_ids=tuple(stops),
                bands=(ServiceBand(start_s=0, end_s=86_399, headway_s=600),),
            )
        ],
    )
    feed = build_feed(network, CONFIG)
    return next(p for p in feed.lines["L"].trips if p.direction_id == 0)


gaps_st = st.lists(st.floats(min_value=20.0, max_value=2500.0), min_size=1, max_size=12)


@st.composite
def models(draw: st.DrawFn, pattern: TripPattern) -> TravelModel:
    """Learned medians for some links and stops (any period), the rest default."""
    links, dwells = [], []
    for a, b in zip(pattern.stop_ids, pattern.stop_ids[1:], strict=False):
        for period in draw(st.lists(st.sampled_from(PERIODS), max_size=3, unique=True)):
            links.append(
                LinkTime(
                    route_id="L",
                    from_stop=a,
                    to_stop=b,
                    period=period.name,
                    median_s=draw(st.floats(min_value=0.5, max_value=3000.0)),
                    samples=draw(st.integers(min_value=0, max_value=30)),
                )
            )
    for stop in pattern.stop_ids:
        for period in draw(st.lists(st.sampled_from(PERIODS), max_size=2, unique=True)):
            dwells.append(
                StopDwell(
                    route_id="L",
                    stop_id=stop,
                    period=period.name,
                    median_s=draw(st.floats(min_value=0.0, max_value=600.0)),
                    samples=draw(st.integers(min_value=0, max_value=30)),
                )
            )
    return TravelModel(links, dwells)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), gaps=gaps_st)
def test_arrivals_increase_along_the_trip_and_never_lie_in_the_past(
    data: st.DataObject, gaps: list[float]
) -> None:
    pattern = _pattern(gaps)
    model = data.draw(models(pattern))
    length = pattern.stop_dist_m[-1]
    dist = data.draw(st.floats(min_value=0.0, max_value=length))
    fix_time = T0 + timedelta(seconds=data.draw(st.integers(0, 86_400 * 2)))
    # The clock may run ahead of the fix (a bus not heard from for a while) or, by a clock
    # skew, a little behind it.
    now = fix_time + timedelta(seconds=data.draw(st.floats(min_value=-30.0, max_value=3600.0)))
    at = stop_at(pattern, dist)
    since = None
    if at is not None:
        since = fix_time - timedelta(seconds=data.draw(st.floats(0.0, 900.0)))
    progress = Progress(dist_m=dist, time=fix_time, at_stop=at, at_stop_since=since)
    limit = data.draw(st.none() | st.integers(min_value=1, max_value=5))
    arrivals = predict(pattern, progress, model, now, TZ, limit=limit)

    # Ahead: past the stop it is at (the farthest of overlapping radii), else past its place.
    ahead = [
        k for k, d in enumerate(pattern.stop_dist_m) if (k > at if at is not None else d > dist)
    ]
    expected = ahead[:limit] if limit is not None else ahead
    assert [a.stop_sequence - 1 for a in arrivals] == expected
    assert [a.stop_id for a in arrivals] == [pattern.stop_ids[k] for k in expected]
    floor = now.replace(microsecond=0)
    for a in arrivals:
        assert a.arrival >= floor  # never in the past
        assert a.arrival <= a.departure
        assert a.arrival.microsecond == 0 and a.departure.microsecond == 0
    for a, b in itertools.pairwise(arrivals):
        assert a.departure < b.arrival  # times strictly increase along the trip
        assert a.stop_sequence < b.stop_sequence


@settings(max_examples=200, deadline=None)
@given(data=st.data(), gaps=gaps_st)
def test_a_bus_farther_along_is_not_predicted_later(data: st.DataObject, gaps: list[float]) -> None:
    """At one moment, of two buses on the same trip, the one ahead reaches a stop first."""
    pattern = _pattern(gaps)
    model = data.draw(models(pattern))
    length = pattern.stop_dist_m[-1]
    behind = data.draw(st.floats(min_value=0.0, max_value=length))
    ahead = data.draw(st.floats(min_value=behind, max_value=length))
    for d in (behind, ahead):
        # Outside every stop's radius: inside one, the rest of the dwell decides.
        if stop_at(pattern, d) is not None:
            return
    first = predict(pattern, Progress(dist_m=behind, time=T0), model, T0, TZ)
    second = predict(pattern, Progress(dist_m=ahead, time=T0), model, T0, TZ)
    later = {a.stop_id: a.arrival for a in first}
    for a in second:
        assert a.arrival <= later[a.stop_id] + timedelta(seconds=1)


def test_learned_link_and_dwell_times_drive_the_prediction() -> None:
    pattern = _pattern([600.0, 600.0, 600.0])
    learned = TravelModel(
        [
            LinkTime(
                route_id="L",
                from_stop=f"s{k}",
                to_stop=f"s{k + 1}",
                period="morning",
                median_s=150.0,
                samples=MIN_SAMPLES,
            )
            for k in range(3)
        ],
        [
            StopDwell(route_id="L", stop_id=s, period="morning", median_s=30.0, samples=9)
            for s in ("s1", "s2")
        ],
    )
    # Leaving the first terminus: 150 s to s1 (the learned link time from a terminus runs
    # from its departure), then 150 s arrival to arrival.
    at_start = predict(pattern, Progress(dist_m=0.0, time=T0, at_stop=0), learned, T0, TZ)
    assert [(a.arrival - T0).total_seconds() for a in at_start] == [150.0, 300.0, 450.0]
    assert [(a.departure - a.arrival).total_seconds() for a in at_start] == [30.0, 30.0, 0.0]
    # Halfway between s1 and s2 (outside both radii): half of the 120 s drive is left.
    half = predict(pattern, Progress(dist_m=900.0, time=T0), learned, T0, TZ)
    assert [(a.arrival - T0).total_seconds() for a in half] == pytest.approx([60, 210], abs=1)
    # At s1 for 10 s of its 30 s dwell: 20 s more, then the 120 s drive.
    dwelling = Progress(dist_m=600.0, time=T0, at_stop=1, at_stop_since=T0 - timedelta(seconds=10))
    assert (predict(pattern, dwelling, learned, T0, TZ)[0].arrival - T0).total_seconds() == 140
    # Too few passages: the default speed and dwell instead.
    sparse = TravelModel(
        [
            LinkTime(
                route_id="L",
                from_stop="s1",
                to_stop="s2",
                period="morning",
                median_s=150.0,
                samples=MIN_SAMPLES - 1,
            )
        ]
    )
    default = predict(pattern, Progress(dist_m=900.0, time=T0), sparse, T0, TZ)
    drive = 600.0 / (16.0 / 3.6) - DEFAULT_DWELL_S  # 16 km/h off peak, dwell inside
    assert (default[0].arrival - T0).total_seconds() == pytest.approx(drive / 2, abs=2.0)


def test_a_late_bus_moves_all_its_predictions_to_now() -> None:
    pattern = _pattern([600.0, 600.0])
    model = TravelModel()
    heard = Progress(dist_m=300.0, time=T0)
    on_time = predict(pattern, heard, model, T0, TZ)
    ten_minutes_later = T0 + timedelta(minutes=10)
    late = predict(pattern, heard, model, ten_minutes_later, TZ)
    assert late[0].arrival == ten_minutes_later
    assert late[1].arrival - late[0].arrival == on_time[1].arrival - on_time[0].arrival


def test_the_dwell_clock_starts_at_the_first_fix_inside_the_radius() -> None:
    pattern = _pattern([600.0, 600.0])
    near = 600.0 - STOP_RADIUS_M / 2
    first = advance(None, pattern, 500.0, T0, 20.0)
    assert first.at_stop is None and first.speed_ms == pytest.approx(20 / 3.6)
    inside = advance(first, pattern, near, T0 + timedelta(seconds=10))
    assert inside.at_stop == 1 and inside.at_stop_since == T0 + timedelta(seconds=10)
    still = advance(inside, pattern, 600.0, T0 + timedelta(seconds=40))
    assert still.at_stop_since == T0 + timedelta(seconds=10)
    gone = advance(still, pattern, 700.0, T0 + timedelta(seconds=50))
    assert gone.at_stop is None and gone.at_stop_since is None


def test_accuracy_floor_on_a_seeded_held_out_morning(migrated: Settings) -> None:
    """Two simulated days of four lines teach the predictor; another seed's morning scores
    it against the buses' true arrivals (the benchmark's method, on a small city)."""
    from bench import predictions as bench

    scenario = bench.scenario_of(8, lines=["A", "11", "19", "1"])
    default_feed, _, model = bench.train(migrated, scenario, 7, 2)
    day = bench.FIRST_DAY + timedelta(days=2)
    start, score_from, end = bench._local(day, 5.5), bench._local(day, 6.5), bench._local(day, 10)
    rows = list(bench.positions(scenario, 1007, start, end))
    visits = bench.truth(scenario, 1007, start, end)
    scores = bench.replay(
        default_feed,
        rows,
        {"predictor": bench.learned(model), "baseline": bench.schedule_only(default_feed)},
        visits,
        score_from,
    )
    ours, baseline = scores["predictor"], scores["baseline"]
    assert sum(ours.total) > 1000 and ours.total[0] > 300
    overall = sum(ours.good) / sum(ours.total)
    near = ours.good[0] / ours.total[0]
    print(f"overall {overall:.3f}, 0-3 min {near:.3f}")
    assert overall >= 0.80 and near >= 0.88
    assert overall > sum(baseline.good) / sum(baseline.total) + 0.05
