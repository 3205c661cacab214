"""All SQL on alerts: listing and detail for the API, the people's lifecycle steps, the engine's
open/clear/group/escalate operations, and the alerts worker checkpoint.

Every function that changes an alert writes one ``alert_history`` row and sends one
``telemetry.alert_events.AlertEvent`` with ``pg_notify`` on ``{current_schema()}_alerts`` in the
same transaction (a rolled-back change publishes nothing). Functions open their own
``conn.transaction()``: on an autocommit connection each call commits on return; inside a
caller's transaction they nest as savepoints and publish at the caller's commit.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from telemetry.alert_events import AlertEventType, AlertState, Severity, alert_channel
from telemetry.alert_records import Alert, AlertMember, HistoryEntry, NewAlert, NewMember, OpenCount
from telemetry.errors import TelemetryError
from telemetry.topics import Fleet

#: The actor recorded for changes made by the alerts service itself.
ENGINE_ACTOR: Final = "rasd-alerts"
MAX_PAGE: Final = 500


class AlertNotFoundError(TelemetryError):
    """No alert has this id."""


class AlertStateError(TelemetryError):
    """The lifecycle step is not allowed from the alert's current state (HTTP 409)."""


_COLUMNS: Final = (
    "alert_id, kind, asset_kind, asset_key, device_id, circuit, district, device_count, "
    "severity, state, crew, assignee, summary, details, lat, lon, opened_at, detected_at, "
    "acknowledged_at, acknowledged_by, assigned_at, assigned_by, resolved_at, resolved_by, "
    "resolution, cleared_at, grouped_into, sla_due_at, escalated_at, flap_count, last_flap_at, "
    "updated_at, escalation_level, next_escalation_at"
)

_BY_ID: Final = "SELECT " + _COLUMNS + " FROM alerts WHERE alert_id = %s"
_BY_ID_LOCKED: Final = _BY_ID + " FOR UPDATE"
_UNRESOLVED: Final = (
    "SELECT " + _COLUMNS + " FROM alerts WHERE asset_key = %s AND kind = %s AND state <> 'resolved'"
)
_UNRESOLVED_LOCKED: Final = _UNRESOLVED + " FOR UPDATE"


# -- reads for the API ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts to list; empty collections and None mean "any"."""

    states: Collection[AlertState] = ()
    kinds: Collection[str] = ()
    asset_kinds: Collection[Fleet] = ()
    districts: Collection[str] = ()
    severities: Collection[Severity] = ()
    crew: str | None = None
    assignee: str | None = None
    device_id: str | None = None  # the alert's own device or a light listed in a group
    opened_from: datetime | None = None  # inclusive
    opened_before: datetime | None = None  # exclusive
    escalated: bool | None = None


@dataclass(frozen=True, slots=True)
class AlertPage:
    """A page of alerts, newest opened first; pass ``next_cursor`` to get the next page."""

    items: list[Alert]
    next_cursor: str | None


def _where(f: AlertFilter) -> tuple[sql.Composable, dict[str, Any]]:
    parts: list[sql.Composable] = [sql.SQL("true")]
    params: dict[str, Any] = {}

    def any_of(column: str, name: str, values: Collection[Any]) -> None:
        if values:
            parts.append(
                sql.SQL("{} = ANY({})").format(sql.Identifier(column), sql.Placeholder(name))
            )
            params[name] = [str(v) for v in values]

    any_of("state", "states", f.states)
    any_of("kind", "kinds", f.kinds)
    any_of("asset_kind", "asset_kinds", f.asset_kinds)
    any_of("district", "districts", f.districts)
    any_of("severity", "severities", f.severities)
    for column in ("crew", "assignee"):
        value = getattr(f, column)
        if value is not None:
            parts.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column)))
            params[column] = value
    if f.device_id is not None:
        parts.append(
            sql.SQL(
                "(device_id = %(device_id)s OR EXISTS (SELECT 1 FROM alert_members m "
                "WHERE m.alert_id = alerts.alert_id AND m.device_id = %(device_id)s))"
            )
        )
        params["device_id"] = f.device_id
    if f.opened_from is not None:
        parts.append(sql.SQL("opened_at >= %(opened_from)s"))
        params["opened_from"] = f.opened_from
    if f.opened_before is not None:
        parts.append(sql.SQL("opened_at < %(opened_before)s"))
        params["opened_before"] = f.opened_before
    if f.escalated is not None:
        parts.append(sql.SQL("escalated_at IS NOT NULL" if f.escalated else "escalated_at IS NULL"))
    return sql.SQL(" AND ").join(parts), params


def _encode_cursor(alert: Alert) -> str:
    raw = f"{alert.opened_at.isoformat()}|{alert.alert_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        opened, alert_id = raw.rsplit("|", 1)
        return datetime.fromisoformat(opened), int(alert_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError(f"invalid cursor {cursor!r}") from None


def list_alerts(
    conn: psycopg.Connection,
    filters: AlertFilter | None = None,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> AlertPage:
    """Alerts matching ``filters``, newest opened first, ``limit`` per page (keyset paging)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    where, params = _where(filters or AlertFilter())
    if cursor is not None:
        params["c_opened"], params["c_id"] = _decode_cursor(cursor)
        where = sql.SQL("{} AND (opened_at, alert_id) < (%(c_opened)s, %(c_id)s)").format(where)
    params["limit"] = limit + 1
    query = sql.SQL(
        "SELECT {} FROM alerts WHERE {} ORDER BY opened_at DESC, alert_id DESC LIMIT %(limit)s"
    ).format(sql.SQL(_COLUMNS), where)
    with conn.cursor(row_factory=class_row(Alert)) as cur:
        rows = cur.execute(query, params).fetchall()
    more = len(rows) > limit
    items = rows[:limit]
    return AlertPage(items=items, next_cursor=_encode_cursor(items[-1]) if more else None)


def count_alerts(conn: psycopg.Connection, filters: AlertFilter | None = None) -> int:
    """How many alerts match ``filters``."""
    where, params = _where(filters or AlertFilter())
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM alerts WHERE {}").format(where), params
    ).fetchone()
    return int(row[0]) if row else 0


def unresolved_counts(conn: psycopg.Connection) -> list[OpenCount]:
    """Unresolved alerts counted by district, asset kind, kind and severity."""
    with conn.cursor(row_factory=class_row(OpenCount)) as cur:
        return cur.execute(
            "SELECT district, asset_kind, kind, severity, count(*) AS count FROM alerts "
            "WHERE state <> 'resolved' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
        ).fetchall()


def get_alert(conn: psycopg.Connection, alert_id: int) -> Alert | None:
    """One alert by id, or None."""
    return _one(conn, _BY_ID, (alert_id,))


def alert_members(conn: psycopg.Connection, alert_id: int) -> list[AlertMember]:
    """The lights a grouped alert lists, by device id."""
    with conn.cursor(row_factory=class_row(AlertMember)) as cur:
        return cur.execute(
            "SELECT alert_id, device_id, circuit, since, recovered_at FROM alert_members "
            "WHERE alert_id = %s ORDER BY device_id",
            (alert_id,),
        ).fetchall()


def alert_history(conn: psycopg.Connection, alert_id: int) -> list[HistoryEntry]:
    """Every step of one alert, oldest first."""
    with conn.cursor(row_factory=class_row(HistoryEntry)) as cur:
        return cur.execute(
            "SELECT history_id, alert_id, event, at, actor, note, state, severity, details "
            "FROM alert_history WHERE alert_id = %s ORDER BY history_id",
            (alert_id,),
        ).fetchall()


# -- shared write helpers -----------------------------------------------------------------------

_RECORD: Final = (
    "INSERT INTO alert_history (alert_id, event, at, actor, note, state, severity, details) "
    "VALUES (%s, %s, coalesce(%s, now()), %s, %s, %s, %s, %s) RETURNING at"
)
_NOTIFY: Final = "SELECT pg_notify(current_schema() || '_alerts', %s)"


def _record(
    conn: psycopg.Connection,
    alert: Alert,
    event: AlertEventType,
    actor: str,
    note: str | None,
    *,
    at: datetime | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """History row and NOTIFY for one change, in the caller's transaction."""
    row = conn.execute(
        _RECORD,
        (
            alert.alert_id,
            event.value,
            at,
            actor,
            note,
            alert.state.value,
            alert.severity.value,
            Jsonb(dict(details or {})),
        ),
    ).fetchone()
    assert row is not None
    conn.execute(_NOTIFY, (alert.event(event, row[0]).payload(),))


def _one(
    conn: psycopg.Connection,
    query: LiteralString | sql.Composed,
    params: Sequence[Any] | Mapping[str, Any],
) -> Alert | None:
    with conn.cursor(row_factory=class_row(Alert)) as cur:
        return cur.execute(query, params).fetchone()


def _locked(conn: psycopg.Connection, alert_id: int) -> Alert:
    alert = _one(conn, _BY_ID_LOCKED, (alert_id,))
    if alert is None:
        raise AlertNotFoundError(f"no alert {alert_id}")
    return alert


# -- lifecycle steps by people (the API) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
    """A lifecycle step by a person: why it is refused (None: allowed), its UPDATE (the first
    two placeholders take the step's time and who took it, the last the alert id), and the
    event it records."""

    refusal: Callable[[Alert], str | None]
    update: LiteralString
    event: AlertEventType


def _step(
    refusal: Callable[[Alert], str | None], assignments: LiteralString, event: AlertEventType
) -> _Step:
    update = (
        "UPDATE alerts SET " + assignments + ", updated_at = now() "
        "WHERE alert_id = %s RETURNING " + _COLUMNS
    )
    return _Step(refusal, update, event)


def _by_person(
    conn: psycopg.Connection,
    alert_id: int,
    step: _Step,
    who: str,
    note: str | None,
    at: datetime | None,
    *extra: Any,
    details: Mapping[str, Any] | None = None,
) -> Alert:
    """One step by a person: lock the row, refuse it if ``step.refusal`` says why (AlertStateError
    "alert N <why>"), set its assignments from ``at``, ``who``, ``extra``; history and NOTIFY."""
    with conn.transaction():
        why = step.refusal(_locked(conn, alert_id))
        if why is not None:
            raise AlertStateError(f"alert {alert_id} {why}")
        alert = _one(conn, step.update, (at, who, *extra, alert_id))
        assert alert is not None
        _record(conn, alert, step.event, who, note, at=at, details=details)
    return alert


def _unless_open(alert: Alert) -> str | None:
    if alert.state is AlertState.OPEN:
        return None
    return f"is {alert.state.value}: only an open alert can be acknowledged"


def _if_resolved(why: str) -> Callable[[Alert], str | None]:
    return lambda alert: why if alert.state is AlertState.RESOLVED else None


_ACKNOWLEDGE: Final = _step(
    _unless_open,
    "state = 'acknowledged', acknowledged_at = coalesce(%s, now()), acknowledged_by = %s",
    AlertEventType.ACK,
)
_ASSIGN: Final = _step(
    _if_resolved("is resolved: it cannot be assigned"),
    "assigned_at = coalesce(%s, now()), assigned_by = %s, assignee = %s",
    AlertEventType.ASSIGN,
)
_RESOLVE: Final = _step(
    _if_resolved("is already resolved"),
    "state = 'resolved', resolved_at = coalesce(%s, now()), resolved_by = %s, "
    "resolution = 'manual'",
    AlertEventType.RESOLVE,
)


def acknowledge(
    conn: psycopg.Connection,
    alert_id: int,
    who: str,
    note: str | None = None,
    *,
    at: datetime | None = None,
) -> Alert:
    """open -> acknowledged by ``who``; AlertStateError from any other state."""
    return _by_person(conn, alert_id, _ACKNOWLEDGE, who, note, at)


def assign(
    conn: psycopg.Connection,
    alert_id: int,
    assignee: str | None,
    who: str,
    note: str | None = None,
    *,
    at: datetime | None = None,
) -> Alert:
    """Give an unresolved alert to ``assignee`` (None takes it back); the state is unchanged."""
    return _by_person(
        conn, alert_id, _ASSIGN, who, note, at, assignee, details={"assignee": assignee}
    )


def resolve(
    conn: psycopg.Connection,
    alert_id: int,
    who: str,
    note: str | None = None,
    *,
    at: datetime | None = None,
) -> Alert:
    """open or acknowledged -> resolved by a person; AlertStateError if already resolved."""
    return _by_person(conn, alert_id, _RESOLVE, who, note, at)


# -- operations of the alerts engine --------------------------------------------------------------


_COVERED: Final = (
    "SELECT alert_id FROM alerts WHERE asset_key = %(key)s AND kind = %(kind)s "
    "AND opened_at <= %(at)s "
    "AND (state <> 'resolved' OR %(at)s <= coalesce(cleared_at, resolved_at)) LIMIT 1"
)
_INSERT: Final = (
    "INSERT INTO alerts (kind, asset_kind, asset_key, device_id, circuit, district, device_count, "
    "severity, crew, summary, details, lat, lon, opened_at, sla_due_at, escalate_at, "
    "next_escalation_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (asset_key, kind) WHERE state <> 'resolved' DO NOTHING "
    f"RETURNING {_COLUMNS}"
)
_ADD_MEMBERS: Final = (
    "INSERT INTO alert_members (alert_id, device_id, circuit, since, recovered_at) "
    "SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[]) "
    "ON CONFLICT (alert_id, device_id) DO UPDATE SET recovered_at = EXCLUDED.recovered_at "
    "WHERE alert_members.recovered_at IS NOT NULL AND EXCLUDED.recovered_at IS NULL"
)


def _insert_members(conn: psycopg.Connection, alert_id: int, members: Sequence[NewMember]) -> int:
    cur = conn.execute(
        _ADD_MEMBERS,
        (
            alert_id,
            [m.device_id for m in members],
            [m.circuit for m in members],
            [m.since for m in members],
            [m.recovered_at for m in members],
        ),
    )
    return cur.rowcount


def open_alert(
    conn: psycopg.Connection, new: NewAlert, *, actor: str = ENGINE_ACTOR
) -> Alert | None:
    """Open an alert, or None when one of this asset and kind already covers ``opened_at``.

    Idempotent: replaying the readings that opened an alert (restart, redelivery) finds the
    alert (open, or resolved after ``opened_at``) and opens nothing; an unresolved alert of the
    same asset and kind also blocks a second one (the partial unique index).
    """
    with conn.transaction():
        params = {"key": new.asset_key, "kind": new.kind, "at": new.opened_at}
        if conn.execute(_COVERED, params).fetchone() is not None:
            return None
        count = len(new.members) if new.members else (1 if new.device_id else 0)
        levels = list(new.escalate_at) or ([new.sla_due_at] if new.sla_due_at else [])
        alert = _one(
            conn,
            _INSERT,
            (
                new.kind,
                new.asset_kind.value,
                new.asset_key,
                new.device_id,
                new.circuit,
                new.district,
                count,
                new.severity.value,
                new.crew,
                new.summary,
                Jsonb(dict(new.details)),
                new.lat,
                new.lon,
                new.opened_at,
                new.sla_due_at,
                levels,
                levels[0] if levels else None,
            ),
        )
        if alert is None:
            return None  # an unresolved alert of a later episode holds the dedup key
        if new.members:
            _insert_members(conn, alert.alert_id, new.members)
        _record(conn, alert, AlertEventType.OPEN, actor, new.summary or None)
    return alert


@dataclass(frozen=True, slots=True)
class _Change:
    """An engine change to the unresolved alert of one asset and kind (%(key)s, %(kind)s): its
    UPDATE, and the event it records."""

    update: LiteralString
    event: AlertEventType


def _change(assignments: LiteralString, condition: LiteralString, event: AlertEventType) -> _Change:
    """What the change sets, and a further condition (empty or starting with AND)."""
    update = (
        "UPDATE alerts SET " + assignments + ", updated_at = now() "
        "WHERE asset_key = %(key)s AND kind = %(kind)s AND state <> 'resolved'"
        + condition
        + " RETURNING "
        + _COLUMNS
    )
    return _Change(update, event)


_CLEAR: Final = _change(
    "state = 'resolved', resolved_at = greatest(%(at)s, opened_at), cleared_at = %(at)s, "
    "resolved_by = %(actor)s, resolution = 'cleared'",
    " AND opened_at <= %(at)s",
    AlertEventType.RESOLVE,
)
_GROUPED: Final = _change(
    "state = 'resolved', resolved_at = greatest(%(at)s, opened_at), resolved_by = %(actor)s, "
    "resolution = 'grouped', grouped_into = %(group)s",
    "",
    AlertEventType.RESOLVE,
)
_FLAP: Final = _change(
    "flap_count = flap_count + 1, last_flap_at = %(at)s",
    " AND (last_flap_at IS NULL OR last_flap_at < %(at)s)",
    AlertEventType.UPDATE,
)
_DETAILS: Final = _change(
    "details = details || %(details)s, summary = %(summary)s",
    " AND NOT details @> %(details)s",
    AlertEventType.UPDATE,
)


def _change_unresolved(
    conn: psycopg.Connection,
    change: _Change,
    key_kind: tuple[str, str],
    params: Mapping[str, Any],
    actor: str,
    note: str | None,
    details: Callable[[Alert], Mapping[str, Any]] | None = None,
) -> Alert | None:
    """Apply ``change`` to the unresolved alert of this (asset key, kind) and record its event,
    in the caller's transaction; None when no alert matched."""
    alert = _one(conn, change.update, {"key": key_kind[0], "kind": key_kind[1], **params})
    if alert is not None:
        extra = None if details is None else details(alert)
        _record(conn, alert, change.event, actor, note, details=extra)
    return alert


def _unresolved(
    conn: psycopg.Connection, asset_key: str, kind: str, *, lock: bool = True
) -> Alert | None:
    return _one(conn, _UNRESOLVED_LOCKED if lock else _UNRESOLVED, (asset_key, kind))


def clear_alert(
    conn: psycopg.Connection,
    asset_key: str,
    kind: str,
    at: datetime,
    *,
    note: str | None = None,
    actor: str = ENGINE_ACTOR,
) -> Alert | None:
    """Resolve the unresolved alert of this asset and kind because its condition ended at ``at``."""
    with conn.transaction():
        params = {"at": at, "actor": actor}
        note = note or "condition cleared"
        return _change_unresolved(conn, _CLEAR, (asset_key, kind), params, actor, note)


def merge_into_group(
    conn: psycopg.Connection,
    asset_key: str,
    kind: str,
    group_key: str,
    group_kind: str,
    at: datetime,
    *,
    actor: str = ENGINE_ACTOR,
) -> Alert | None:
    """Resolve a single (or smaller group) alert as listed in the unresolved group alert."""
    with conn.transaction():
        group = _unresolved(conn, group_key, group_kind, lock=False)
        if group is None:
            return None
        params = {"at": at, "actor": actor, "group": group.alert_id}
        note = f"grouped into {group_kind} alert {group.alert_id}"
        return _change_unresolved(
            conn,
            _GROUPED,
            (asset_key, kind),
            params,
            actor,
            note,
            lambda _: {"grouped_into": group.alert_id},
        )


def add_members(
    conn: psycopg.Connection,
    asset_key: str,
    kind: str,
    members: Sequence[NewMember],
    *,
    actor: str = ENGINE_ACTOR,
) -> Alert | None:
    """List more lights (or lights failing again) in an unresolved grouped alert."""
    if not members:
        return None
    with conn.transaction():
        group = _unresolved(conn, asset_key, kind)
        if group is None:
            return None
        if _insert_members(conn, group.alert_id, members) == 0:
            return group
        alert = _one(
            conn,
            "UPDATE alerts SET device_count = (SELECT count(*) FROM alert_members "
            "WHERE alert_id = %(id)s), updated_at = now() "
            f"WHERE alert_id = %(id)s RETURNING {_COLUMNS}",
            {"id": group.alert_id},
        )
        assert alert is not None
        _record(
            conn,
            alert,
            AlertEventType.UPDATE,
            actor,
            f"{len(members)} lights listed",
            details={"added": [m.device_id for m in members][:50]},
        )
    return alert


def members_recovered(
    conn: psycopg.Connection,
    asset_key: str,
    kind: str,
    recovered: Mapping[str, datetime],
    *,
    actor: str = ENGINE_ACTOR,
) -> Alert | None:
    """Mark lights of an unresolved grouped alert as back (supply restored): light -> when."""
    if not recovered:
        return None
    with conn.transaction():
        group = _unresolved(conn, asset_key, kind)
        if group is None:
            return None
        cur = conn.execute(
            "UPDATE alert_members m SET recovered_at = r.at "
            "FROM unnest(%s::text[], %s::timestamptz[]) AS r(device_id, at) "
            "WHERE m.alert_id = %s AND m.device_id = r.device_id AND m.recovered_at IS NULL",
            (list(recovered), list(recovered.values()), group.alert_id),
        )
        if cur.rowcount:
            _record(
                conn,
                group,
                AlertEventType.UPDATE,
                actor,
                f"{cur.rowcount} lights back",
                details={"recovered": sorted(recovered)[:50]},
            )
    return group


def note_flap(
    conn: psycopg.Connection,
    asset_key: str,
    kind: str,
    at: datetime,
    *,
    actor: str = ENGINE_ACTOR,
) -> Alert | None:
    """Count a condition that came back while its clearing was on hold (flapping)."""
    with conn.transaction():
        return _change_unresolved(
            conn,
            _FLAP,
            (asset_key, kind),
            {"at": at},
            actor,
            "condition came back before the clear hold ended (flapping)",
            lambda alert: {"flap_count": alert.flap_count},
        )


def update_details(
    conn: psycopg.Connection,
    asset_key: str,
    kind: str,
    details: Mapping[str, Any],
    summary: str,
    *,
    actor: str = ENGINE_ACTOR,
) -> Alert | None:
    """Merge ``details`` into the unresolved alert of this asset and kind when they change it."""
    with conn.transaction():
        params = {"details": Jsonb(dict(details)), "summary": summary}
        return _change_unresolved(conn, _DETAILS, (asset_key, kind), params, actor, summary)


_SEVERITY_UP: Final = (
    "CASE a.severity WHEN 'low' THEN 'medium' WHEN 'medium' THEN 'high' ELSE 'critical' END"
)
# One level up for every unresolved alert whose next level is due (arrays count from 1: the
# level after the new level L+1 is escalate_at[L+2]).
_ESCALATE: Final = (
    "WITH due AS (SELECT alert_id FROM alerts WHERE state <> 'resolved' "
    "AND next_escalation_at <= %(now)s ORDER BY next_escalation_at "
    "LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
    "UPDATE alerts a SET escalation_level = a.escalation_level + 1, "
    "escalated_at = coalesce(a.escalated_at, %(now)s), "
    "next_escalation_at = a.escalate_at[a.escalation_level + 2], "
    f"severity = {_SEVERITY_UP}, updated_at = now() FROM due WHERE a.alert_id = due.alert_id "
    f"RETURNING {', '.join('a.' + c.strip() for c in _COLUMNS.split(','))}"
)
#: More levels than any alert has: one statement per level reached in the same call.
_MAX_LEVELS: Final = 16


def escalate_due(
    conn: psycopg.Connection, now: datetime, *, actor: str = ENGINE_ACTOR, limit: int = 500
) -> list[Alert]:
    """Escalate unresolved alerts whose next escalation level is due by ``now``: one level up
    each (severity one step up, ``escalation_level`` + 1), a history row and an ``escalate``
    event per level. Levels missed while no worker ran are all reached in one call.

    Safe from several workers at once: rows are claimed with SKIP LOCKED, each level once.
    """
    escalated: list[Alert] = []
    with conn.transaction(), conn.cursor(row_factory=class_row(Alert)) as cur:
        for _ in range(_MAX_LEVELS):
            rows = cur.execute(_ESCALATE, {"now": now, "limit": limit}).fetchall()
            for alert in rows:
                _record(
                    conn,
                    alert,
                    AlertEventType.ESCALATE,
                    actor,
                    _escalation_note(alert),
                    details={
                        "level": alert.escalation_level,
                        "next_at": None
                        if alert.next_escalation_at is None
                        else alert.next_escalation_at.isoformat(),
                    },
                )
            escalated += rows
            more_due = any(
                a.next_escalation_at is not None and a.next_escalation_at <= now for a in rows
            )
            if len(rows) < limit and not more_due:
                break
    return escalated


def _escalation_note(alert: Alert) -> str:
    due = alert.sla_due_at.isoformat() if alert.sla_due_at else "?"
    if alert.escalation_level <= 1:
        return f"SLA breached: not resolved by {due}"
    return f"escalation level {alert.escalation_level}: still not resolved (SLA {due})"


# -- engine state rebuild and checkpoint ---------------------------------------------------------


def unresolved_alerts(conn: psycopg.Connection, kinds: Iterable[str] | None = None) -> list[Alert]:
    """Every unresolved alert (optionally of some kinds), oldest first."""
    wanted = None if kinds is None else list(kinds)
    with conn.cursor(row_factory=class_row(Alert)) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM alerts WHERE state <> 'resolved' "
            "AND (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s)) ORDER BY opened_at, alert_id",
            {"kinds": wanted},
        ).fetchall()


def unresolved_members(conn: psycopg.Connection) -> dict[int, list[AlertMember]]:
    """Members of every unresolved grouped alert, by alert id."""
    with conn.cursor(row_factory=class_row(AlertMember)) as cur:
        rows = cur.execute(
            "SELECT m.alert_id, m.device_id, m.circuit, m.since, m.recovered_at "
            "FROM alert_members m JOIN alerts a USING (alert_id) WHERE a.state <> 'resolved' "
            "ORDER BY m.alert_id, m.device_id"
        ).fetchall()
    out: dict[int, list[AlertMember]] = {}
    for member in rows:
        out.setdefault(member.alert_id, []).append(member)
    return out


def load_checkpoint(conn: psycopg.Connection, worker: str) -> datetime | None:
    """Receipt time up to which ``worker`` committed its work, or None on its first start."""
    row = conn.execute(
        "SELECT processed_until FROM alert_checkpoints WHERE worker = %s", (worker,)
    ).fetchone()
    return None if row is None else row[0]


def save_checkpoint(conn: psycopg.Connection, worker: str, until: datetime) -> None:
    """Advance ``worker``'s checkpoint (never backwards)."""
    conn.execute(
        "INSERT INTO alert_checkpoints (worker, processed_until) VALUES (%s, %s) "
        "ON CONFLICT (worker) DO UPDATE SET processed_until = "
        "greatest(alert_checkpoints.processed_until, EXCLUDED.processed_until), updated_at = now()",
        (worker, until),
    )


# -- listening, for the API and the benchmark ------------------------------------------------------


def listen_statement(schema: str) -> sql.Composed:
    """The ``LISTEN`` on the schema's alerts channel, for a sync or an async connection."""
    return sql.SQL("LISTEN {}").format(sql.Identifier(alert_channel(schema)))


def listen(conn: psycopg.Connection, schema: str) -> str:
    """LISTEN on the schema's alerts channel (autocommit connection); returns the channel.

    Then ``for n in conn.notifies(timeout=...)`` yields notifications whose ``payload`` is
    ``telemetry.alert_events.parse_event``-able.
    """
    conn.execute(listen_statement(schema))
    return alert_channel(schema)


def drop_schema(conn: psycopg.Connection, schema: str) -> None:
    """Drop a whole schema (the benchmark's throwaway schema); never used on a live one."""
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def unresolved_keys(conn: psycopg.Connection) -> set[tuple[str, str]]:
    """(kind, asset_key) of every unresolved alert: what the engine may hold active."""
    rows = conn.execute("SELECT kind, asset_key FROM alerts WHERE state <> 'resolved'").fetchall()
    return {(r[0], r[1]) for r in rows}
