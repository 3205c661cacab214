"""Supply-loss grouping, pure: a circuit or district outage is ONE alert listing the lights."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.effects import AlertKey, Effect, Join, Leave, Raise
from alerts.engine import Engine
from alerts.observations import Fault
from telemetry.reference_data import Asset
from tests.support.alerts import EVENING, brief, engine, kinds_raised, light, only, run

OUTAGE_KINDS = {"supplyLoss", "circuit_outage", "district_outage"}


def _city(circuits: int, per_circuit: int, district: str = "medina") -> list[Asset]:
    return [
        light(f"L-{c}-{i:02d}", district=district, circuit=f"C-{c}")
        for c in range(circuits)
        for i in range(per_circuit)
    ]


def _loss(device: str, t: float, active: bool = True, received: float | None = None) -> Fault:
    return Fault(device, t, t if received is None else received, "supplyLoss", active)


def _outage_effects(effects: list[Effect]) -> list[Effect]:
    return [e for e in effects if e.key.kind in OUTAGE_KINDS]


def test_a_tripped_circuit_is_one_alert_listing_its_lights() -> None:
    eng = engine(*_city(2, 40))
    t = EVENING
    effects = run(eng, [_loss(f"L-0-{i:02d}", t) for i in range(40)])
    eng.tick(t + 3)
    effects += eng.take()
    assert brief(effects) == [("raise", "circuit_outage", "circuit:C-0", t, 40)]
    (raised,) = effects
    assert isinstance(raised, Raise)
    assert raised.subject.circuit == "C-0"
    assert raised.subject.district == "medina"
    assert raised.severity.value == "critical"
    # Supply back on all but one light: still open; the last one closes it (after the hold).
    back = run(eng, [_loss(f"L-0-{i:02d}", t + 600, False) for i in range(39)])
    assert [b[0] for b in brief(back)] == ["leave"] * 39
    last = run(eng, [_loss("L-0-39", t + 700, False)])
    eng.tick(t + 700 + 300)
    assert brief(last + eng.take()) == [
        ("leave", "circuit_outage", "circuit:C-0", 1),
        ("clear", "circuit_outage", "circuit:C-0", t + 700),
    ]


def test_a_few_losses_stay_single_alerts() -> None:
    eng = engine(*_city(1, 40))
    t = EVENING
    effects = run(eng, [_loss("L-0-01", t), _loss("L-0-02", t + 1)])
    eng.tick(t + 10)
    assert brief(effects + eng.take()) == [
        ("raise", "supplyLoss", "L-0-01", t, 0),
        ("raise", "supplyLoss", "L-0-02", t + 1, 0),
    ]


def test_grouping_wins_over_singles_opened_earlier_in_the_window() -> None:
    eng = engine(*_city(1, 40))
    t = EVENING
    effects = run(eng, [_loss("L-0-00", t), _loss("L-0-01", t + 1)])
    eng.tick(t + 10)  # two singles judged and opened
    late = [_loss(f"L-0-{i:02d}", t + 20) for i in range(2, 8)]
    effects += run(eng, late)
    eng.tick(t + 30)
    effects += run(eng, [_loss("L-0-30", t + 40)])  # joins the open group at once
    out = brief(effects + eng.take())
    assert out == [
        ("raise", "supplyLoss", "L-0-00", t, 0),
        ("raise", "supplyLoss", "L-0-01", t + 1, 0),
        ("raise", "circuit_outage", "circuit:C-0", t, 8),
        ("merge", "supplyLoss", "L-0-00", "circuit:C-0"),
        ("merge", "supplyLoss", "L-0-01", "circuit:C-0"),
        ("join", "circuit_outage", "circuit:C-0", 1),
    ]
    assert not eng.life.is_active(only("supplyLoss", effects)[0].key)


def test_a_district_blackout_is_one_district_alert_absorbing_circuit_alerts() -> None:
    eng = engine(*_city(4, 20), light("L-GUE", district="gueliz", circuit="C-9"))
    t = EVENING
    # Circuit 0 trips first and gets its circuit alert; then the whole district goes dark.
    effects = run(eng, [_loss(f"L-0-{i:02d}", t) for i in range(20)])
    eng.tick(t + 5)
    effects += run(eng, [_loss(f"L-{c}-{i:02d}", t + 30) for c in (1, 2, 3) for i in range(20)])
    effects += run(eng, [_loss("L-GUE", t + 30)])
    eng.tick(t + 40)
    out = brief(_outage_effects(effects + eng.take()))
    assert out == [
        ("raise", "circuit_outage", "circuit:C-0", t, 20),
        ("raise", "district_outage", "district:medina", t, 80),
        ("merge", "circuit_outage", "circuit:C-0", "district:medina"),
        ("raise", "supplyLoss", "L-GUE", t + 30, 0),
    ]
    # A later loss in the district joins the district alert.
    more = run(eng, [_loss("L-3-00", t + 100, False), _loss("L-3-00", t + 200)])
    assert [type(e) for e in more] == [Leave, Join]


def test_a_single_supply_loss_ends_like_any_fault() -> None:
    eng = engine(*_city(1, 10))
    t = EVENING
    effects = run(eng, [_loss("L-0-03", t), _loss("L-0-03", t + 120, False)])
    eng.tick(t + 120 + 300)
    assert brief(effects + eng.take()) == [
        ("raise", "supplyLoss", "L-0-03", t, 0),
        ("clear", "supplyLoss", "L-0-03", t + 120),
    ]


def test_a_blip_shorter_than_the_hold_is_still_reported() -> None:
    eng = engine(*_city(1, 10))
    t = EVENING
    effects = run(eng, [_loss(f"L-0-0{i}", t) for i in range(6)])
    effects += run(eng, [_loss(f"L-0-0{i}", t + 1, False, received=t + 1) for i in range(6)])
    eng.tick(t + 400)
    effects += eng.take()
    out = brief(effects)
    assert out == [
        ("raise", "circuit_outage", "circuit:C-0", t, 6),
        ("clear", "circuit_outage", "circuit:C-0", t + 1),
    ]
    raised = effects[0]
    assert isinstance(raised, Raise)
    assert all(m.recovered_at == t + 1 for m in raised.members)


@settings(max_examples=60, deadline=None)
@given(
    losses=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 9), st.floats(0, 300)),
        min_size=1,
        max_size=40,
        unique_by=lambda x: (x[0], x[1]),
    ),
    hold=st.floats(0, 10),
)
def test_no_light_is_left_in_an_unresolved_single_beside_its_group(
    losses: list[tuple[int, int, float]], hold: float
) -> None:
    base = engine(*_city(3, 10))
    eng = Engine(
        base.thresholds.model_copy(
            update={"outage": base.thresholds.outage.model_copy(update={"hold_s": hold})}
        ),
        base.catalog,
    )
    t = EVENING
    events = sorted((t + dt, f"L-{c}-{i:02d}") for c, i, dt in losses)
    effects = run(eng, [_loss(device, at) for at, device in events])
    eng.tick(t + 1000)
    effects += eng.take()
    active = set(eng.life.active_keys())
    groups = {k.asset_key.split(":")[1] for k in active if k.kind == "circuit_outage"}
    for key in active:
        if key.kind == "supplyLoss":
            circuit = key.asset_key.split("-")[1]
            assert f"C-{circuit}" not in groups, (key, groups)
    # Every light that lost supply is accounted for: in a group or in its own alert.
    listed = {m.device_id for e in effects if isinstance(e, Raise) for m in e.members}
    listed |= {m.device_id for e in effects if isinstance(e, Join) for m in e.members}
    singles = {
        e.key.asset_key for e in effects if isinstance(e, Raise) and e.key.kind == "supplyLoss"
    }
    assert {d for _, d in events} <= listed | singles


def test_a_group_resolved_by_hand_lets_new_losses_alert_again() -> None:
    eng = engine(*_city(2, 10))
    t = EVENING
    run(eng, [_loss(f"L-0-0{i}", t) for i in range(6)])
    eng.tick(t + 5)
    assert kinds_raised(eng.take()) == [("circuit_outage", "circuit:C-0")]
    # A person resolved the circuit alert while lights are still out; the engine learns it.
    assert eng.reconcile(set()) == [AlertKey("circuit_outage", "circuit:C-0")]
    effects = run(eng, [_loss(f"L-0-0{i}", t + 600) for i in range(6, 10)])
    eng.tick(t + 610)
    # Four new losses with the six earlier ones outside the window: single alerts, not lost.
    assert kinds_raised(effects + eng.take()) == [("supplyLoss", f"L-0-0{i}") for i in range(6, 10)]


@settings(max_examples=150, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 7), st.floats(0, 400), st.booleans()),
        min_size=1,
        max_size=60,
    ),
    hold=st.floats(0, 5),
)
def test_losses_and_restores_in_any_order_keep_every_dark_light_covered(
    events: list[tuple[int, int, float, bool]], hold: float
) -> None:
    base = engine(*_city(3, 8))
    th = base.thresholds.model_copy(
        update={
            "outage": base.thresholds.outage.model_copy(update={"hold_s": hold}),
            "lifecycle": base.thresholds.lifecycle.model_copy(update={"clear_hold_s": 0.0}),
        }
    )
    eng = Engine(th, base.catalog)
    t = EVENING
    for c, i, dt, lost in sorted(events, key=lambda e: e[2]):
        run(eng, [_loss(f"L-{c}-{i:02d}", t + dt, lost)])
    eng.tick(t + 1000)
    eng.take()
    active = set(eng.life.active_keys())
    group_circuits = {k.asset_key.split(":")[1] for k in active if k.kind == "circuit_outage"}
    # The loop below must cover every light still dark, so first: the engine knows them all.
    last: dict[str, bool] = {}
    for c, i, _dt, lost in sorted(events, key=lambda e: e[2]):
        last[f"L-{c}-{i:02d}"] = lost
    assert set(eng.outage.lost) == {d for d, dark in last.items() if dark}
    for device in eng.outage.lost:
        circuit = "C-" + device.split("-")[1]
        single = AlertKey("supplyLoss", device) in active
        grouped = circuit in group_circuits
        assert single != grouped, (device, single, grouped)
    for key in active:
        if key.kind == "circuit_outage":
            members = eng.outage._members[key]
            assert any(m in eng.outage.lost for m in members), key
