"""Work orders end to end on the real database, from the simulators' scripted faults fed through
decoding, the alerts engine and the alerts store (which opens the orders in the alert's own
transaction): one order per circuit outage, a part swap updates the register, an order closed
while the fault persists is reopened, and an Idempotency-Key replay over HTTP applies once."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.observations import Fault
from alerts.store import apply
from api.auth import Role
from simulators.clock import parse_start
from simulators.devices import build_devices
from simulators.engine import Engine as SimEngine
from simulators.equipment import equipment_register
from simulators.messages import Message
from simulators.scenario import Scenario
from telemetry.equipment.files import AssetFile
from telemetry.settings import Settings
from telemetry.storage import work_orders as store
from telemetry.storage.equipment import asset_history, get_asset, import_assets, import_models
from telemetry.work_orders.states import OrderState
from tests.support.alerts import EVENING, ScenarioDriver, light
from tests.support.alerts import SIM_PREFIX as PREFIX
from tests.support.alerts import engine as alert_engine
from tests.support.alerts import run as feed
from tests.support.api_server import ApiServer, Frames, api_server, make_token, ws_connect

START = "2025-12-19T19:00:00+01:00"
DURATION = 2 * 3600.0
EVENTS = [
    "+5m L-MED-00014 lampFailure",
    "+10m C-002 supply_loss 20m",
    "+40m L-MEN-00001 supply_loss 5m",
]


def scenario() -> Scenario:
    """A small quiet city where only the scripted faults happen."""
    return Scenario.model_validate(
        {
            "name": "work-orders-test",
            "buses": {"count": 0},
            "trucks": {"count": 0},
            "lights": {"count": 200, "fault_rate_multiplier": 0.0},
            "defects": {"enabled": False},
            "events": EVENTS,
        }
    )


@pytest.fixture(scope="module")
def run() -> tuple[float, list[Message]]:
    """Start time and every message of the scenario."""
    start = parse_start(START)
    sim = SimEngine(scenario(), seed=3, start=start, duration=DURATION, prefix=PREFIX)
    return start, list(sim.messages())


@pytest.fixture
def driver(make_settings: Callable[..., Settings]) -> Iterator[ScenarioDriver]:
    """A driver on a fresh schema with the scenario's equipment register imported."""
    d = ScenarioDriver(make_settings(), scenario(), ingest=True)
    register = equipment_register(build_devices(scenario()), scenario())
    import_models(d.conn, register.models)
    where = {a.asset_id: f"asset {a.asset_id}" for a in register.assets}
    import_assets(d.conn, AssetFile(assets=list(register.assets), where=where))
    yield d
    d.close()


def _orders(d: ScenarioDriver) -> list[store.WorkOrder]:
    return store.list_work_orders(d.conn, store.OrderFilter(), limit=500)


def test_a_circuit_outage_is_one_order_and_a_lamp_failure_another(
    run: tuple[float, list[Message]], driver: ScenarioDriver
) -> None:
    start, messages = run
    lights = build_devices(scenario()).lights
    c002 = sum(1 for c in lights.circuit.tolist() if lights.circuit_ids[c] == "C-002")
    assert c002 >= 5, "the scenario must trip a whole circuit"
    driver.store_readings(messages)
    driver.feed(messages)
    driver.finish(start + DURATION)
    by_scope = {o.scope_key: o for o in _orders(driver)}
    # L-MED-00014 is a Medina façade fitting (no pole): its luminaire stands for the pole.
    assert sorted(by_scope) == ["circuit:C-002", "pole:LUM-MED-00014", "pole:P-MEN-00001"]
    circuit = by_scope["circuit:C-002"]
    assert circuit.kind == "circuit_outage" and circuit.asset_id == "C-002"
    alerts = store.order_alerts(driver.conn, circuit.work_order_id)
    assert [(a.kind, a.device_count) for a in alerts] == [("circuit_outage", c002)]
    lamp = by_scope["pole:LUM-MED-00014"]
    assert (lamp.kind, lamp.device_id, lamp.state) == ("lampFailure", "L-MED-00014", "open")
    assert lamp.opened_at == datetime.fromtimestamp(start + 300, UTC)
    # Every light alert belongs to exactly one order; replaying the whole stream adds none.
    linked = driver.conn.execute("SELECT count(*) FROM work_order_alerts").fetchone()
    light_alerts = driver.conn.execute(
        "SELECT count(*) FROM alerts WHERE asset_kind = 'light'"
    ).fetchone()
    assert linked == light_alerts
    driver.engine = driver.fresh_engine()
    driver.feed(messages)
    assert len(_orders(driver)) == 3


def _lamp_order(driver: ScenarioDriver, messages: list[Message], until: float) -> store.WorkOrder:
    early = [m for m in messages if m.at < until]
    driver.store_readings(early)
    driver.feed(early)
    (order,) = [o for o in _orders(driver) if o.device_id == "L-MED-00014"]
    return order


def test_a_part_swap_updates_the_register_and_its_history(
    run: tuple[float, list[Message]], driver: ScenarioDriver
) -> None:
    start, messages = run
    order = _lamp_order(driver, messages, start + 8 * 60)
    conn = driver.conn
    store.assign(conn, order.work_order_id, "crew-medina-1", "operator:dispatch")
    store.start(conn, order.work_order_id, "crew:amina")
    before = get_asset(conn, "LUM-MED-00014")
    assert before is not None and before.serial
    done = store.complete(
        conn,
        order.work_order_id,
        "crew:amina",
        "lamp module swapped",
        crew_minutes=35,
        parts=[
            store.PartIn(
                part="luminaire", removed_serial=before.serial, installed_serial="NEW-LUM-1"
            )
        ],
        photos=[b"\xff\xd8\xff\xe0" + b"\x00" * 64],
    )
    assert done.state is OrderState.DONE and done.crew_minutes == 35
    after = get_asset(conn, "LUM-MED-00014")
    assert after is not None and after.serial == "NEW-LUM-1"
    history = asset_history(conn, "LUM-MED-00014")
    assert history is not None
    swaps = [
        (e.kind, e.serial, e.source, e.source_ref)
        for e in history.entries
        if e.source == "work_order"
    ]
    ref = str(order.work_order_id)
    assert swaps == [
        ("removed", before.serial, "work_order", ref),
        ("installed", "NEW-LUM-1", "work_order", ref),
    ]
    assert [p.content_type for p in store.order_photos(conn, order.work_order_id)] == ["image/jpeg"]
    steps = [(s.step, s.state, s.actor) for s in store.order_steps(conn, order.work_order_id)]
    assert steps == [
        ("open", "open", "rasd"),
        ("assign", "assigned", "operator:dispatch"),
        ("start", "in_progress", "crew:amina"),
        ("complete", "done", "crew:amina"),
    ]
    with pytest.raises(store.WorkOrderInputError, match="not a JPEG, PNG or WebP"):
        store.complete(conn, order.work_order_id, "crew:amina", photos=[b"GIF89a......"])


def test_an_order_closed_while_the_fault_persists_reopens(
    run: tuple[float, list[Message]], driver: ScenarioDriver
) -> None:
    start, messages = run
    # The lamp failure never clears in this scenario: the light still reports its fault.
    order = _lamp_order(driver, messages, start + 8 * 60)
    conn = driver.conn
    store.assign(conn, order.work_order_id, "crew-medina-1", "operator:dispatch")
    store.start(conn, order.work_order_id, "crew:amina")
    done = store.complete(conn, order.work_order_id, "crew:amina", "fixed")
    assert done.done_at is not None
    # Within the grace period the light may not have reported yet: nothing happens.
    assert store.verify_completed(conn, done.done_at + timedelta(minutes=5)) == []
    (checked,) = store.verify_completed(conn, done.done_at + timedelta(hours=2))
    assert checked.reopened
    reopened = store.get_work_order(conn, order.work_order_id)
    assert reopened is not None
    assert (reopened.state, reopened.assignee, reopened.reopen_count) == (
        OrderState.ASSIGNED,
        "crew-medina-1",
        1,
    )
    last = store.order_steps(conn, order.work_order_id)[-1]
    assert last.step == "reopen" and last.actor == "rasd"
    assert last.note is not None and "lampFailure on L-MED-00014" in last.note
    # The outage order, whose lights all came back, is verified instead once done.
    rest = [m for m in messages if m.at >= start + 8 * 60]
    driver.store_readings(rest)
    driver.feed(rest)
    driver.finish(start + DURATION)
    (outage,) = [o for o in _orders(driver) if o.scope_key == "circuit:C-002"]
    store.assign(conn, outage.work_order_id, "crew-medina-2", "operator:dispatch")
    store.start(conn, outage.work_order_id, "crew:youssef")
    closed = store.complete(conn, outage.work_order_id, "crew:youssef", "breaker reset")
    assert closed.done_at is not None
    verified = store.verify_completed(conn, closed.done_at)
    assert [(v.order.work_order_id, v.reopened) for v in verified] == [
        (outage.work_order_id, False)
    ]


@pytest.fixture
async def api(migrated: Settings) -> AsyncIterator[ApiServer]:
    """The API on the test schema."""
    async for server in api_server(migrated):
        yield server


async def test_an_idempotency_key_replay_applies_once(
    run: tuple[float, list[Message]], api: ApiServer
) -> None:
    start, messages = run
    d = ScenarioDriver(api.settings, scenario(), ingest=True)
    try:
        order = _lamp_order(d, messages, start + 8 * 60)
        store.assign(d.conn, order.work_order_id, "crew-medina-1", "operator:dispatch")
        oid = order.work_order_id
        crew = await make_token(api.settings, Role.CREW, districts=["medina"])
        other = await make_token(api.settings, Role.CREW, districts=["gueliz"])
        async with api.client(crew) as client:
            url = f"/api/v1/work-orders/{oid}/start"
            headers = {"Idempotency-Key": "outbox-7f3a"}
            first = await client.post(url, json={"note": "on site"}, headers=headers)
            assert first.status_code == 200, first.text
            assert first.headers["Idempotent-Replayed"] == "false"
            again = await client.post(url, json={"note": "on site"}, headers=headers)
            assert again.status_code == 200
            assert again.headers["Idempotent-Replayed"] == "true"
            assert again.json() == first.json()
            # Without the key the same step is refused: the order is already in progress.
            plain = await client.post(url, json={"note": "on site"})
            assert plain.status_code == 409
            reused = await client.post(url, json={"note": "other"}, headers=headers)
            assert reused.status_code == 422
            listed = await client.get("/api/v1/work-orders", params={"state": "in_progress"})
            assert [o["work_order_id"] for o in listed.json()["items"]] == [oid]
        starts = [s for s in store.order_steps(d.conn, oid) if s.step == "start"]
        assert len(starts) == 1
        async with api.client(other) as client:
            refused = await client.get(f"/api/v1/work-orders/{oid}")
            assert refused.status_code == 403
            assert (await client.get("/api/v1/work-orders")).json()["items"] == []
    finally:
        d.close()


def test_idempotency_keys_are_per_token(migrated: Settings) -> None:
    from tests.support.database import open_db

    with open_db(migrated) as conn:
        calls: list[int] = []

        def work(_: object) -> tuple[int, dict[str, object]]:
            calls.append(1)
            return 200, {"n": len(calls)}

        assert store.idempotent(conn, 1, "k", b"f", work) == (200, {"n": 1}, False)
        assert store.idempotent(conn, 1, "k", b"f", work) == (200, {"n": 1}, True)
        assert store.idempotent(conn, 2, "k", b"f", work) == (200, {"n": 2}, False)
        with pytest.raises(store.IdempotencyKeyReusedError):
            store.idempotent(conn, 1, "k", b"g", work)
        assert len(calls) == 2


async def test_every_step_reaches_the_crew_live_and_rest_shows_the_register(
    run: tuple[float, list[Message]], api: ApiServer
) -> None:
    start, messages = run
    d = ScenarioDriver(api.settings, scenario(), ingest=True)
    try:
        register = equipment_register(build_devices(scenario()), scenario())
        import_models(d.conn, register.models)
        where = {a.asset_id: a.asset_id for a in register.assets}
        import_assets(d.conn, AssetFile(assets=list(register.assets), where=where))
        order = _lamp_order(d, messages, start + 8 * 60)
        oid = order.work_order_id
        operator = await make_token(api.settings, Role.OPERATOR)
        crew = await make_token(api.settings, Role.CREW, districts=["medina"], label="amina")
        async with await ws_connect(api.ws_url("/ws/alerts", token=crew)) as ws:
            frames = Frames(ws)
            await frames.until(lambda: any(f["type"] == "snapshot" for f in frames.frames))
            (snapshot,) = [f for f in frames.frames if f["type"] == "snapshot"]
            assert [o["work_order_id"] for o in snapshot["work_orders"]] == [oid]
            async with api.client(operator) as client:
                assigned = await client.post(
                    f"/api/v1/work-orders/{oid}/assign", json={"assignee": "amina"}
                )
                assert assigned.status_code == 200, assigned.text
                refused = await client.post(f"/api/v1/work-orders/{oid}/start")
                assert refused.status_code == 403  # operators dispatch, crews work
            await frames.until(
                lambda: any(
                    f["type"] == "work_order"
                    and f["event"] == "assign"
                    and f["work_order"]["assignee"] == "amina"
                    for f in frames.frames
                ),
                what="the assign step on /ws/alerts",
            )
            photo = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()
            async with api.client(crew) as client:
                assert (await client.post(f"/api/v1/work-orders/{oid}/start")).status_code == 200
                bad = await client.post(
                    f"/api/v1/work-orders/{oid}/complete",
                    json={"photos": [base64.b64encode(b"<svg/>").decode()]},
                )
                assert bad.status_code == 422 and "JPEG, PNG or WebP" in bad.text
                done = await client.post(
                    f"/api/v1/work-orders/{oid}/complete",
                    json={
                        "note": "driver swapped",
                        "crew_minutes": 20,
                        "parts": [{"part": "driver", "installed_serial": "DRV-NEW-9"}],
                        "photos": [photo],
                    },
                )
                assert done.status_code == 200, done.text
                body = done.json()
                assert body["state"] == "done" and body["parts"][0]["asset_id"] == "DRV-MED-00014"
                (shot,) = body["photos"]
                got = await client.get(f"/api/v1/work-orders/{oid}/photos/{shot['photo_id']}")
                assert got.headers["content-type"] == "image/png"
                again = await client.post(f"/api/v1/work-orders/{oid}/complete", json={})
                assert again.status_code == 409
                asset = (await client.get("/api/v1/assets/DRV-MED-00014")).json()
                assert asset["serial"] == "DRV-NEW-9"
                assert [o["work_order_id"] for o in asset["work_orders"]] == [oid]
                assert ("installed", "DRV-NEW-9", "work_order") in [
                    (e["kind"], e["serial"], e["source"]) for e in asset["history"]
                ]
                listed = await client.get("/api/v1/assets", params={"parent_id": "LUM-MED-00014"})
                assert {a["kind"] for a in listed.json()["items"]} == {"driver", "controller"}
                outside = await client.get("/api/v1/assets", params={"district": "gueliz"})
                assert outside.status_code == 403
                month = datetime.fromtimestamp(start, UTC).strftime("%Y-%m")
                kpis = await client.get("/api/v1/maintenance/kpis", params={"month": month})
                assert kpis.status_code == 200 and kpis.json()["district"] == "medina"
                wrong = await client.get("/api/v1/maintenance/kpis", params={"month": "2025-13"})
                assert wrong.status_code == 422
            await frames.until(
                lambda: any(
                    f["type"] == "work_order" and f["event"] == "complete" for f in frames.frames
                ),
                what="the complete step on /ws/alerts",
            )
    finally:
        d.close()


def test_singles_a_circuit_outage_takes_over_hand_their_orders_to_it(
    db: psycopg.Connection,
) -> None:
    eng = alert_engine(*[light(f"L-0-{i:02d}", circuit="C-0") for i in range(40)])
    t = EVENING

    def loss(device: str, at: float) -> Fault:
        return Fault(device, at, at, "supplyLoss", True)

    effects = feed(eng, [loss("L-0-00", t), loss("L-0-01", t + 1)])
    eng.tick(t + 10)
    apply(db, effects + eng.take())
    singles = store.list_work_orders(db, store.OrderFilter(), limit=10)
    assert sorted(o.scope_key for o in singles) == ["light:L-0-00", "light:L-0-01"]
    store.assign(db, singles[0].work_order_id, "crew-1", "operator:dispatch")  # L-0-01's
    effects = feed(eng, [loss(f"L-0-{i:02d}", t + 20) for i in range(2, 8)])
    eng.tick(t + 30)
    apply(db, effects + eng.take())
    orders = {o.scope_key: o for o in store.list_work_orders(db, store.OrderFilter(), limit=10)}
    circuit = orders["circuit:C-0"]
    # The open single order is cancelled into the circuit's; the assigned one stays its crew's.
    assert orders["light:L-0-00"].state is OrderState.CANCELLED
    assert orders["light:L-0-01"].state is OrderState.ASSIGNED
    kinds = sorted(a.kind for a in store.order_alerts(db, circuit.work_order_id))
    assert kinds == ["circuit_outage", "supplyLoss"]
    note = store.order_steps(db, orders["light:L-0-00"].work_order_id)[-1].note
    assert note == f"covered by work order {circuit.work_order_id}"
