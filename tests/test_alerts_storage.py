"""The alerts storage API on the real database: dedup, lifecycle, history, NOTIFY, paging."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from telemetry.alert_events import (
    AlertEvent,
    AlertEventType,
    AlertState,
    Severity,
    alert_channel,
    parse_event,
)
from telemetry.alert_records import NewAlert, NewMember
from telemetry.settings import Settings
from telemetry.storage import alerts as store
from telemetry.storage.alerts import AlertFilter, AlertNotFoundError, AlertStateError
from telemetry.topics import Fleet
from tests.support.database import open_db

T0 = datetime(2026, 1, 5, 21, 0, tzinfo=UTC)


def _lamp(asset_key: str = "L-MED-00042", at: datetime = T0, **extra: object) -> NewAlert:
    values: dict[str, object] = {
        "kind": "lampFailure",
        "asset_kind": Fleet.LIGHT,
        "asset_key": asset_key,
        "device_id": asset_key,
        "district": "medina",
        "opened_at": at,
        "severity": Severity.HIGH,
        "crew": "lights-medina",
        "sla_due_at": at + timedelta(hours=72),
    }
    values.update(extra)
    return NewAlert(**values)  # type: ignore[arg-type]


@pytest.fixture
def listener(migrated: Settings) -> Iterator[psycopg.Connection]:
    """A connection listening on the schema's alerts channel."""
    with open_db(migrated) as conn:
        store.listen(conn, migrated.database_schema)
        yield conn


def _events(conn: psycopg.Connection, expected: int) -> list[AlertEvent]:
    out = [parse_event(n.payload) for n in conn.notifies(timeout=5, stop_after=expected)]
    assert len(out) == expected, out
    return out


def _no_event(conn: psycopg.Connection) -> None:
    assert list(conn.notifies(timeout=0.2)) == []


def test_open_is_deduplicated_and_published(
    db: psycopg.Connection, listener: psycopg.Connection
) -> None:
    alert = store.open_alert(db, _lamp())
    assert alert is not None
    assert alert.state is AlertState.OPEN
    assert alert.device_count == 1
    (event,) = _events(listener, 1)
    assert (event.alert_id, event.event, event.kind, event.district) == (
        alert.alert_id,
        AlertEventType.OPEN,
        "lampFailure",
        "medina",
    )
    # Same episode replayed, and a later rise while it is open: no second alert.
    assert store.open_alert(db, _lamp()) is None
    assert store.open_alert(db, _lamp(at=T0 + timedelta(minutes=5))) is None
    # Another kind on the same lamp is another alert.
    other = store.open_alert(db, _lamp(kind="relayFailure"))
    assert other is not None
    assert other.alert_id != alert.alert_id
    assert len(_events(listener, 1)) == 1
    # The database itself refuses a second unresolved alert of one asset and kind.
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(
            "INSERT INTO alerts (kind, asset_kind, asset_key, severity, opened_at) "
            "VALUES ('lampFailure', 'light', 'L-MED-00042', 'high', now())"
        )


def test_clear_then_replay_of_the_same_episode_opens_nothing(db: psycopg.Connection) -> None:
    opened = store.open_alert(db, _lamp())
    assert opened is not None
    cleared = store.clear_alert(db, "L-MED-00042", "lampFailure", T0 + timedelta(hours=1))
    assert cleared is not None
    assert cleared.state is AlertState.RESOLVED
    assert cleared.resolution == "cleared"
    assert cleared.resolved_at == T0 + timedelta(hours=1)
    assert store.clear_alert(db, "L-MED-00042", "lampFailure", T0 + timedelta(hours=1)) is None
    # Replayed rise inside the resolved episode: covered.
    assert store.open_alert(db, _lamp(at=T0 + timedelta(minutes=30))) is None
    # A new rise after the episode: a new alert.
    again = store.open_alert(db, _lamp(at=T0 + timedelta(hours=2)))
    assert again is not None
    assert again.alert_id != opened.alert_id


def test_people_steps_with_history_and_events(
    db: psycopg.Connection, listener: psycopg.Connection
) -> None:
    alert = store.open_alert(db, _lamp())
    assert alert is not None
    acked = store.acknowledge(db, alert.alert_id, "hafida", "crew on the way")
    assert acked.state is AlertState.ACKNOWLEDGED
    assert acked.acknowledged_by == "hafida"
    with pytest.raises(AlertStateError):
        store.acknowledge(db, alert.alert_id, "hafida")
    assigned = store.assign(db, alert.alert_id, "crew-7", "hafida")
    assert assigned.assignee == "crew-7"
    assert assigned.state is AlertState.ACKNOWLEDGED
    done = store.resolve(db, alert.alert_id, "youssef", "lamp replaced")
    assert done.state is AlertState.RESOLVED
    assert done.resolution == "manual"
    with pytest.raises(AlertStateError):
        store.resolve(db, alert.alert_id, "youssef")
    with pytest.raises(AlertStateError):
        store.assign(db, alert.alert_id, "crew-1", "youssef")
    with pytest.raises(AlertNotFoundError):
        store.acknowledge(db, 999_999, "nobody")
    events = _events(listener, 4)
    assert [e.event for e in events] == ["open", "ack", "assign", "resolve"]
    assert events[-1].state is AlertState.RESOLVED
    history = store.alert_history(db, alert.alert_id)
    assert [(h.event, h.actor, h.note) for h in history] == [
        (AlertEventType.OPEN, "rasd-alerts", None),
        (AlertEventType.ACK, "hafida", "crew on the way"),
        (AlertEventType.ASSIGN, "hafida", None),
        (AlertEventType.RESOLVE, "youssef", "lamp replaced"),
    ]
    # After a person resolved it, the condition clearing changes nothing.
    assert store.clear_alert(db, "L-MED-00042", "lampFailure", T0 + timedelta(hours=3)) is None


def _open_then_fail(conn: psycopg.Connection) -> None:
    with conn.transaction():
        store.open_alert(conn, _lamp())
        conn.execute("SELECT 1 / 0")  # the transaction fails after the change


def test_a_rolled_back_change_publishes_nothing(
    migrated: Settings, listener: psycopg.Connection
) -> None:
    with open_db(migrated) as conn:
        with pytest.raises(psycopg.errors.DivisionByZero):
            _open_then_fail(conn)
        assert store.get_alert(conn, 1) is None
        _no_event(listener)
        with conn.transaction():
            alert = store.open_alert(conn, _lamp())
            _no_event(listener)  # not before the commit
    assert alert is not None
    assert _events(listener, 1)[0].alert_id == alert.alert_id


def test_grouping_members_and_merge(db: psycopg.Connection) -> None:
    single = store.open_alert(db, _lamp("L-1", kind="supplyLoss"))
    group = store.open_alert(
        db,
        _lamp(
            "circuit:C-1",
            kind="circuit_outage",
            device_id=None,
            circuit="C-1",
            members=[NewMember(device_id=f"L-{i}", circuit="C-1", since=T0) for i in range(1, 4)],
        ),
    )
    assert single is not None
    assert group is not None
    assert group.device_count == 3
    merged = store.merge_into_group(db, "L-1", "supplyLoss", "circuit:C-1", "circuit_outage", T0)
    assert merged is not None
    assert merged.resolution == "grouped"
    assert merged.grouped_into == group.alert_id
    grown = store.add_members(
        db, "circuit:C-1", "circuit_outage", [NewMember(device_id="L-9", circuit="C-1", since=T0)]
    )
    assert grown is not None
    assert grown.device_count == 4
    store.members_recovered(
        db,
        "circuit:C-1",
        "circuit_outage",
        {"L-1": T0 + timedelta(minutes=9), "L-2": T0 + timedelta(minutes=9)},
    )
    members = {m.device_id: m.recovered_at for m in store.alert_members(db, group.alert_id)}
    assert members == {
        "L-1": T0 + timedelta(minutes=9),
        "L-2": T0 + timedelta(minutes=9),
        "L-3": None,
        "L-9": None,
    }
    # A light failing again is listed as failing again.
    store.add_members(
        db, "circuit:C-1", "circuit_outage", [NewMember(device_id="L-1", circuit="C-1", since=T0)]
    )
    assert {
        m.device_id for m in store.alert_members(db, group.alert_id) if m.recovered_at is None
    } == {
        "L-1",
        "L-3",
        "L-9",
    }
    assert store.unresolved_members(db)[group.alert_id][0].device_id == "L-1"
    assert store.list_alerts(db, AlertFilter(device_id="L-9")).items[0].alert_id == group.alert_id


def test_escalation_once_past_the_sla(db: psycopg.Connection, listener: psycopg.Connection) -> None:
    alert = store.open_alert(db, _lamp(severity=Severity.MEDIUM))
    assert alert is not None
    assert alert.sla_due_at is not None
    assert store.escalate_due(db, alert.sla_due_at - timedelta(seconds=1)) == []
    (escalated,) = store.escalate_due(db, alert.sla_due_at)
    assert escalated.severity is Severity.HIGH
    assert escalated.escalated_at == alert.sla_due_at
    assert store.escalate_due(db, alert.sla_due_at + timedelta(days=1)) == []
    assert [e.event for e in _events(listener, 2)] == ["open", "escalate"]


def test_escalation_in_levels(db: psycopg.Connection, listener: psycopg.Connection) -> None:
    due = T0 + timedelta(hours=72)
    levels = [due, due + timedelta(days=1), due + timedelta(days=2)]
    alert = store.open_alert(db, _lamp(severity=Severity.LOW, escalate_at=levels))
    assert alert is not None
    assert (alert.escalation_level, alert.next_escalation_at) == (0, due)
    assert store.escalate_due(db, due - timedelta(seconds=1)) == []
    (one,) = store.escalate_due(db, due)
    assert (one.escalation_level, one.severity, one.escalated_at) == (1, Severity.MEDIUM, due)
    assert one.next_escalation_at == levels[1]
    assert store.escalate_due(db, due + timedelta(hours=23)) == []
    # Acknowledged is not resolved: the SLA still runs.
    store.acknowledge(db, alert.alert_id, "crew-1")
    (two,) = store.escalate_due(db, levels[1] + timedelta(hours=1))
    assert (two.escalation_level, two.severity, two.escalated_at) == (2, Severity.HIGH, due)
    (three,) = store.escalate_due(db, levels[2])
    assert (three.escalation_level, three.severity, three.next_escalation_at) == (
        3,
        Severity.CRITICAL,
        None,
    )
    assert store.escalate_due(db, due + timedelta(days=30)) == []
    history = [h for h in store.alert_history(db, alert.alert_id) if h.event == "escalate"]
    assert [h.details["level"] for h in history] == [1, 2, 3]
    assert [h.severity for h in history] == [Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]
    events = [e.event for e in _events(listener, 5)]
    assert events == ["open", "escalate", "ack", "escalate", "escalate"]


def test_levels_missed_while_down_are_all_reached_at_once(db: psycopg.Connection) -> None:
    due = T0 + timedelta(hours=72)
    late = store.open_alert(db, _lamp("L-1", escalate_at=[due, due + timedelta(hours=1)]))
    single = store.open_alert(db, _lamp("L-2"))  # no levels given: one, at its SLA
    resolved = store.open_alert(db, _lamp("L-3", escalate_at=[due]))
    assert late is not None and single is not None and resolved is not None
    store.resolve(db, resolved.alert_id, "crew-2")
    escalated = store.escalate_due(db, due + timedelta(hours=5))
    assert sorted((a.asset_key, a.escalation_level) for a in escalated) == [
        ("L-1", 1),
        ("L-1", 2),
        ("L-2", 1),
    ]
    assert store.escalate_due(db, due + timedelta(days=9)) == []


def test_list_filters_and_keyset_pages(db: psycopg.Connection) -> None:
    for i in range(7):
        district = "medina" if i % 2 else "gueliz"
        store.open_alert(db, _lamp(f"L-{i}", at=T0 + timedelta(minutes=i), district=district))
    store.open_alert(db, _lamp("B-001", kind="speeding", asset_kind=Fleet.BUS, district=None))
    assert store.count_alerts(db) == 8
    medina = store.list_alerts(db, AlertFilter(districts=["medina"]))
    assert [a.asset_key for a in medina.items] == ["L-5", "L-3", "L-1"]
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_alerts(db, AlertFilter(asset_kinds=[Fleet.LIGHT]), limit=3, cursor=cursor)
        seen += [a.asset_key for a in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"L-{i}" for i in reversed(range(7))]
    assert store.count_alerts(db, AlertFilter(kinds=["speeding"], states=[AlertState.OPEN])) == 1
    counts = {(c.district, c.kind): c.count for c in store.unresolved_counts(db)}
    assert counts[("medina", "lampFailure")] == 3
    with pytest.raises(ValueError, match="cursor"):
        store.list_alerts(db, cursor="not-a-cursor")


def test_checkpoint_only_moves_forward(db: psycopg.Connection) -> None:
    assert store.load_checkpoint(db, "0of1") is None
    store.save_checkpoint(db, "0of1", T0)
    store.save_checkpoint(db, "0of1", T0 - timedelta(hours=1))
    assert store.load_checkpoint(db, "0of1") == T0


def test_channel_name_is_per_schema() -> None:
    assert alert_channel("t_abc") == "t_abc_alerts"
    with pytest.raises(ValueError, match="too long"):
        alert_channel("s" * 60)
