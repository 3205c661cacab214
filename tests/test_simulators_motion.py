"""Vehicle itineraries: a scripted race drives on at the racing speed without stopping, from
where the vehicle was, and everything planned after it happens earlier by the time it saved."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.motion import Itinerary, Leg, drive, stay
from simulators.paths import TravelPath

PATH = TravelPath([(31.60, -8.00), (31.62, -8.00), (31.62, -7.98)])  # ~4 km
RACE_KMH = 95.0

# One planned step: drive to a share of the path at a speed, or stand (parked or not).
steps = st.one_of(
    st.tuples(st.just("drive"), st.floats(0.0, 1.0), st.floats(5.0, 60.0)),
    st.tuples(st.just("stay"), st.floats(1.0, 300.0), st.booleans()),
)


class Planner:
    """Legs from a list of steps, repeated forever, each after the last."""

    def __init__(self, plan: list[tuple[str, float, float | bool]]) -> None:
        self.plan, self.t, self.d, self.i = plan, 0.0, 0.0, 0
        self.planned: list[Leg] = []

    def __call__(self) -> list[Leg]:
        kind, a, b = self.plan[self.i % len(self.plan)]
        self.i += 1
        if kind == "drive":
            target = PATH.length * float(a)
            if abs(target - self.d) < 10.0:  # somewhere else: the far end
                target = 0.0 if self.d > PATH.length / 2 else PATH.length
            leg = drive(self.t, PATH, self.d, target, float(b))
            self.d = target
        else:
            lat, lon, _ = PATH.at(self.d)
            leg = stay(self.t, float(a), lat, lon, parked=bool(b))
        self.t = leg.t1
        self.planned.append(leg)
        return [leg]


@settings(max_examples=150, deadline=None)
@given(
    plan=st.lists(steps, min_size=1, max_size=8).filter(lambda p: any(s[0] == "drive" for s in p)),
    at=st.floats(0.0, 2000.0),
    seconds=st.floats(1.0, 600.0),
)
def test_a_race_drives_fast_without_stopping_then_carries_on_early(
    plan: list[tuple[str, float, float | bool]], at: float, seconds: float
) -> None:
    planned, raced = Planner(plan), Planner(plan)
    before = Itinerary(planned)
    itinerary = Itinerary(raced)
    where = before.state_at(at)
    itinerary.state_at(0.0)
    shift = itinerary.race(at, seconds, RACE_KMH)
    raced.t += shift  # the planner carries on from the shifted timeline (as Tracker.speeding)
    assert shift <= 1e-6  # faster than any planned leg, and no stops
    start = itinerary.state_at(at)
    assert abs(start.lat - where.lat) < 1e-9 and abs(start.lon - where.lon) < 1e-9
    t, ended = at, False
    while t < at + seconds - 1e-6:
        state = itinerary.state_at(t)
        if state.parked:
            ended = True  # out of service: the race is over
            break
        assert state.moving and abs(state.speed_kmh - RACE_KMH) < 1e-6
        t = min(state.leg_end, at + seconds) + 1e-3
    # From the race's end on, everything happens where and as planned, ``shift`` earlier.
    resumed = (t if ended else at + seconds) - shift  # in the planned timeline
    for k in range(1, 40):
        tau = resumed + 75.0 * k
        now, then = itinerary.state_at(tau + shift), before.state_at(tau)
        assert abs(now.lat - then.lat) < 1e-9 and abs(now.lon - then.lon) < 1e-9
        assert abs(now.speed_kmh - then.speed_kmh) < 1e-6 and now.parked == then.parked
