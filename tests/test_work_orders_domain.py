"""Work orders' pure domain: the state machine and the grouping of alerts into orders (property
tests against small models), photo checks by magic bytes, and the KPIs' arithmetic."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telemetry.work_orders.grouping import (
    SUPPLY_KINDS,
    Candidate,
    Place,
    covering_keys,
    order_to_join,
    scope_of,
)
from telemetry.work_orders.kpis import (
    Reading,
    RepairSample,
    ServiceSample,
    between_failures,
    daylight_burning_hours,
    month_bounds,
    per_thousand,
    percentile,
    repair_stats,
    under_warranty,
)
from telemetry.work_orders.photos import PhotoError, checked_photo, photo_type
from telemetry.work_orders.states import (
    UNFINISHED,
    OrderState,
    OrderStateError,
    Step,
    allowed,
    next_state,
)

PEOPLE_STEPS = [Step.ASSIGN, Step.START, Step.COMPLETE, Step.CANCEL, Step.REOPEN, Step.JOIN]


@given(st.lists(st.sampled_from(PEOPLE_STEPS), max_size=40))
def test_the_state_machine_follows_open_assigned_in_progress_done(steps: list[Step]) -> None:
    state, assigned = OrderState.OPEN, False
    path = [state]
    for step in steps:
        if not allowed(state, step):
            with pytest.raises(OrderStateError):
                next_state(state, step, assigned=assigned)
            continue
        after = next_state(state, step, assigned=assigned)
        assert state is not OrderState.CANCELLED, "cancelled is final"
        if after is OrderState.DONE and state is not OrderState.DONE:
            # Done only by completing work that was started after an assignment.
            assert step is Step.COMPLETE and state is OrderState.IN_PROGRESS
            assert OrderState.ASSIGNED in path
        if step is Step.REOPEN:
            assert state is OrderState.DONE
            assert after is (OrderState.ASSIGNED if assigned else OrderState.OPEN)
        if step is Step.JOIN:
            assert after is state and state in UNFINISHED
        assigned = assigned or step is Step.ASSIGN
        state = after
        path.append(state)
    assert state in OrderState


def test_refused_steps_say_why() -> None:
    with pytest.raises(OrderStateError, match="is open: only an assigned order can be started"):
        next_state(OrderState.OPEN, Step.START)
    with pytest.raises(OrderStateError, match="only an unfinished order can be cancelled"):
        next_state(OrderState.DONE, Step.CANCEL)


# -- grouping ---------------------------------------------------------------------------------

LIGHT_KINDS = ["lampFailure", "supplyLoss", "day_burning", "silent_light", "energy_anomaly"]


@st.composite
def alerts(draw: st.DrawFn) -> list[tuple[str, Place]]:
    """Alerts over a small city: 2 districts x 2 circuits x 3 poles, a light per pole."""
    out = []
    for _ in range(draw(st.integers(1, 30))):
        d, c, p = draw(st.integers(0, 1)), draw(st.integers(0, 1)), draw(st.integers(0, 2))
        place = Place(
            device_id=f"L-{d}{c}{p}",
            pole_id=f"P-{d}{c}{p}",
            circuit=f"C-{d}{c}",
            district=f"D-{d}",
        )
        kind = draw(st.sampled_from([*LIGHT_KINDS, "circuit_outage", "district_outage"]))
        if kind == "circuit_outage":
            place = Place(circuit=place.circuit, district=place.district)
        elif kind == "district_outage":
            place = Place(district=place.district)
        out.append((kind, place))
    return out


def _covers(order_key: str, kind: str, place: Place) -> bool:
    level, _, name = order_key.partition(":")
    return {
        "pole": place.pole_id,
        "light": place.device_id,
        "circuit": place.circuit,
        "district": place.district,
    }[level] == name


@given(alerts(), st.lists(st.booleans(), max_size=30))
def test_every_alert_gets_one_order_that_covers_it(
    stream: list[tuple[str, Place]], closes: list[bool]
) -> None:
    orders: list[Candidate] = []
    for index, (kind, place) in enumerate(stream):
        chosen = order_to_join(kind, place, orders)
        if chosen is None:
            own = scope_of(kind, place)
            assert own is not None
            # Never a second unfinished order for a scope.
            assert not any(o.scope_key == own.key and o.state in UNFINISHED for o in orders)
            orders.append(
                Candidate(
                    work_order_id=len(orders) + 1,
                    scope_key=own.key,
                    kind=kind,
                    state=OrderState.OPEN,
                    verified=False,
                )
            )
        else:
            assert _covers(chosen.scope_key, kind, place)
            if chosen.scope_key != covering_keys(kind, place)[0]:
                # A wider order takes only supply alerts, and only when it is a supply order.
                assert kind in SUPPLY_KINDS and chosen.kind in SUPPLY_KINDS
        if index < len(closes) and closes[index] and orders:
            # A crew closes the newest order (verified: it takes nothing any more).
            last = orders[-1]
            orders[-1] = Candidate(
                work_order_id=last.work_order_id,
                scope_key=last.scope_key,
                kind=last.kind,
                state=OrderState.DONE,
                verified=True,
            )
    open_keys = [o.scope_key for o in orders if o.state in UNFINISHED]
    assert len(open_keys) == len(set(open_keys))


def test_forty_supply_losses_of_a_tripped_circuit_join_its_one_order() -> None:
    outage = Candidate(
        work_order_id=1,
        scope_key="circuit:C-1",
        kind="circuit_outage",
        state=OrderState.ASSIGNED,
        verified=False,
    )
    for i in range(40):
        place = Place(device_id=f"L-{i}", pole_id=f"P-{i}", circuit="C-1", district="medina")
        assert order_to_join("supplyLoss", place, [outage]) == outage
        # A lamp failure in that circuit is another visit: its own pole order.
        assert order_to_join("lampFailure", place, [outage]) is None


def test_a_lamp_failure_joins_its_poles_open_order_and_reopens_an_unverified_one() -> None:
    place = Place(device_id="L-1", pole_id="P-1", circuit="C-1", district="medina")
    done = Candidate(
        work_order_id=3,
        scope_key="pole:P-1",
        kind="day_burning",
        state=OrderState.DONE,
        verified=False,
    )
    assert order_to_join("lampFailure", place, [done]) == done
    checked = Candidate(
        work_order_id=3,
        scope_key="pole:P-1",
        kind="day_burning",
        state=OrderState.DONE,
        verified=True,
    )
    assert order_to_join("lampFailure", place, [checked]) is None
    assert scope_of("lampFailure", Place(device_id="L-9")) is not None


# -- photos -------------------------------------------------------------------------------------


def test_photos_are_told_by_their_magic_bytes() -> None:
    # Signatures: JPEG SOI FF D8 FF, PNG's 8-byte signature (RFC 2083 section 3.1), WebP's
    # RIFF....WEBP header (RFC 9649 section 2.5).
    assert photo_type(b"\xff\xd8\xff\xdb" + b"\x00" * 8) == "image/jpeg"
    assert photo_type(b"\x89PNG\r\n\x1a\n" + b"\x00" * 8) == "image/png"
    assert photo_type(b"RIFF\x24\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert photo_type(b"GIF89a") is None
    assert photo_type(b"<svg") is None
    with pytest.raises(PhotoError, match="exceeds"):
        checked_photo(b"\xff\xd8\xff" + b"\x00" * 100, limit=50)
    with pytest.raises(PhotoError, match="empty"):
        checked_photo(b"")


# -- KPIs' arithmetic -----------------------------------------------------------------------------


def test_percentiles_are_nearest_rank() -> None:
    hours = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert percentile(hours, 0.5) == 5.0
    assert percentile(hours, 0.9) == 9.0
    assert percentile([7.0], 0.9) == 7.0
    assert percentile([], 0.5) is None
    stats = repair_stats(
        [RepairSample(district="medina", kind="lampFailure", hours=h) for h in hours]
        + [RepairSample(district="gueliz", kind="lampFailure", hours=100.0)]
    )
    medina = next(s for s in stats if s.district == "medina")
    city = next(s for s in stats if s.district is None)
    assert (medina.repairs, medina.p50_h, medina.p90_h, medina.within_48h) == (10, 5.0, 9.0, 1.0)
    assert (city.repairs, city.p90_h, city.within_48h) == (11, 10.0, 10 / 11)


def test_outages_per_thousand_and_months_in_local_time() -> None:
    assert per_thousand(3, 1500) == 2.0
    assert per_thousand(1, 0) is None
    # Morocco keeps UTC+1 except during Ramadan (UTC+0: 1 March 2026 falls in it).
    start, end = month_bounds("2025-12", "Africa/Casablanca")
    assert start == datetime(2025, 11, 30, 23, 0, tzinfo=UTC)
    assert end - start == timedelta(days=31)
    assert month_bounds("2026-03", "Africa/Casablanca")[0] == datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="YYYY-MM"):
        month_bounds("2026-13", "Africa/Casablanca")
    for far in ("0000-06", "0001-01", "9999-12"):
        with pytest.raises(ValueError, match="out of range"):
            month_bounds(far, "Africa/Casablanca")


def test_time_between_failures_is_service_hours_over_failures() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = start + timedelta(days=30)
    got = between_failures(
        [
            ServiceSample(group="LUM-A", installed=None, failures=1),
            ServiceSample(group="LUM-A", installed=start + timedelta(days=20), failures=1),
            ServiceSample(group="LUM-B", installed=None, failures=0),
            ServiceSample(group="LUM-C", installed=end, failures=0),  # not in service yet
        ],
        start,
        end,
    )
    assert [(g.group, g.parts, g.failures, g.service_h, g.mtbf_h) for g in got] == [
        ("LUM-A", 2, 2, 960.0, 480.0),
        ("LUM-B", 1, 0, 720.0, None),
    ]


def test_day_burning_counts_lit_daylight_inside_the_alert_only() -> None:
    # Marrakech, 19 Dec 2025: sunrise ~07:30 UTC, sunset ~17:25 UTC; readings every 15 min.
    day = datetime(2025, 12, 19, tzinfo=UTC)
    readings = [Reading(at=day + timedelta(minutes=15 * i), lit=True) for i in range(97)]
    alert = [(day + timedelta(hours=10), day + timedelta(hours=12))]
    assert daylight_burning_hours(readings, 31.62, -7.99, alert) == pytest.approx(2.0)
    night = [(day + timedelta(hours=20), day + timedelta(hours=23))]
    assert daylight_burning_hours(readings, 31.62, -7.99, night) == 0.0
    dark = [Reading(at=r.at, lit=False) for r in readings]
    assert daylight_burning_hours(dark, 31.62, -7.99, alert) == 0.0
    sparse = readings[::16]  # 4-hour gaps: unknown, not counted
    assert daylight_burning_hours(sparse, 31.62, -7.99, alert) == 0.0


def test_warranty_runs_through_its_last_day() -> None:
    assert under_warranty(date(2026, 3, 2), date(2026, 3, 2))
    assert not under_warranty(date(2026, 3, 3), date(2026, 3, 2))
    assert not under_warranty(date(2026, 3, 3), None)


def test_the_domain_loads_no_database_driver() -> None:
    probe = (
        "import sys, telemetry.work_orders.states, telemetry.work_orders.grouping, "
        "telemetry.work_orders.kpis, telemetry.work_orders.photos, telemetry.work_orders.events\n"
        "print([m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool') "
        "or m.startswith('telemetry.storage') or m == 'telemetry.db'])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
