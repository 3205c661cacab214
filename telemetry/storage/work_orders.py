"""All SQL on work orders: opening or joining an order from an alert (in the alert's own
transaction), the crews' steps, parts and photos, Rasd's check of completed orders against the
telemetry, the idempotency keys of replayed requests, and the reads for the API.

Every change writes one ``work_order_steps`` row and sends one
``telemetry.work_orders.events.WorkOrderEvent`` with ``pg_notify`` on
``{current_schema()}_work_orders`` in the same transaction. Functions open their own
``conn.transaction()``: inside a caller's transaction (the alerts store's) they nest as
savepoints and publish at the caller's commit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, LiteralString

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from telemetry.alert_records import Alert
from telemetry.errors import TelemetryError
from telemetry.storage._rows import filter_values
from telemetry.topics import Fleet
from telemetry.work_orders.events import WorkOrderEvent, work_order_channel
from telemetry.work_orders.grouping import (
    Candidate,
    Place,
    ScopeLevel,
    covering_keys,
    order_to_join,
    scope_of,
)
from telemetry.work_orders.photos import MAX_PHOTOS, checked_photo
from telemetry.work_orders.states import OrderState, OrderStateError, Step, next_state

#: The actor recorded for steps Rasd takes itself (opening, joining, reopening, verifying).
RASD_ACTOR: Final = "rasd"
MAX_PAGE: Final = 500
#: How long an Idempotency-Key's answer is kept: an offline outbox replays within days.
IDEMPOTENCY_KEPT: Final = timedelta(days=30)
#: Parts that name a register kind find their asset from the order's light.
PART_KINDS: Final = frozenset({"luminaire", "driver", "controller"})


class WorkOrderNotFoundError(TelemetryError):
    """No work order (or photo) has this id."""


class WorkOrderInputError(TelemetryError):
    """A completion's parts or photos are not acceptable (HTTP 422)."""


class IdempotencyKeyReusedError(TelemetryError):
    """An Idempotency-Key came back with a different request (HTTP 422)."""


_COLUMNS: Final = (
    "work_order_id, kind, scope, scope_key, asset_id, device_id, circuit, district, crew, "
    "assignee, state, summary, lat, lon, opened_at, created_at, assigned_at, started_at, "
    "done_at, cancelled_at, crew_minutes, reopen_count, verified_at, updated_at"
)


@dataclass(frozen=True, kw_only=True)
class WorkOrder:
    """One row of ``work_orders``."""

    work_order_id: int
    kind: str
    scope: str
    scope_key: str
    asset_id: str | None
    device_id: str | None
    circuit: str | None
    district: str | None
    crew: str | None
    assignee: str | None
    state: OrderState
    summary: str
    lat: float | None
    lon: float | None
    opened_at: datetime
    created_at: datetime
    assigned_at: datetime | None
    started_at: datetime | None
    done_at: datetime | None
    cancelled_at: datetime | None
    crew_minutes: int | None
    reopen_count: int
    verified_at: datetime | None
    updated_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", OrderState(self.state))


@dataclass(frozen=True, kw_only=True)
class StepRow:
    """One step of an order: who did what, when, with which note."""

    step: str
    state: str
    at: datetime
    actor: str
    note: str | None
    details: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class OrderAlert:
    """An alert an order covers, with what the telemetry says of it."""

    alert_id: int
    kind: str
    state: str
    device_id: str | None
    device_count: int
    opened_at: datetime
    cleared_at: datetime | None
    resolution: str | None


@dataclass(frozen=True, kw_only=True)
class PartRow:
    """A part swapped on completion."""

    seq: int
    part: str
    asset_id: str | None
    removed_serial: str | None
    installed_serial: str | None


@dataclass(frozen=True, kw_only=True)
class PhotoRow:
    """A photo's facts (its bytes are read one at a time)."""

    photo_id: int
    content_type: str
    size: int
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class PartIn:
    """A part a crew swapped: what, on which asset (else found from ``part``), which serials."""

    part: str
    asset_id: str | None = None
    removed_serial: str | None = None
    installed_serial: str | None = None


@dataclass(frozen=True, kw_only=True)
class OrderFilter:
    """Which orders to list; empty means any."""

    states: Collection[OrderState] = ()
    districts: Collection[str] | None = None
    kinds: Collection[str] = ()
    crew: str | None = None
    assignee: str | None = None
    asset_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Verified:
    """What Rasd's check did to one done order."""

    order: WorkOrder
    reopened: bool


# -- shared helpers -------------------------------------------------------------------------------

_STEP: Final = (
    "INSERT INTO work_order_steps (work_order_id, step, state, at, actor, note, details) "
    "VALUES (%s, %s, %s, coalesce(%s, now()), %s, %s, %s) RETURNING at"
)
_NOTIFY: Final = "SELECT pg_notify(current_schema() || '_work_orders', %s)"
_BY_ID: Final = "SELECT " + _COLUMNS + " FROM work_orders WHERE work_order_id = %s"


def _one(
    conn: psycopg.Connection, query: LiteralString, params: Sequence[Any] | Mapping[str, Any]
) -> WorkOrder | None:
    with conn.cursor(row_factory=class_row(WorkOrder)) as cur:
        return cur.execute(query, params).fetchone()


def _record(
    conn: psycopg.Connection,
    order: WorkOrder,
    step: Step,
    actor: str,
    note: str | None,
    *,
    at: datetime | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Step row and NOTIFY for one change, in the caller's transaction."""
    row = conn.execute(
        _STEP,
        (
            order.work_order_id,
            step.value,
            order.state.value,
            at,
            actor,
            note,
            Jsonb(dict(details or {})),
        ),
    ).fetchone()
    assert row is not None
    event = WorkOrderEvent(
        work_order_id=order.work_order_id,
        event=step,
        state=order.state,
        kind=order.kind,
        district=order.district,
        crew=order.crew,
        assignee=order.assignee,
        at=row[0],
    )
    conn.execute(_NOTIFY, (event.payload(),))


def _locked(conn: psycopg.Connection, order_id: int) -> WorkOrder:
    order = _one(conn, _BY_ID + " FOR UPDATE", (order_id,))
    if order is None:
        raise WorkOrderNotFoundError(f"no work order {order_id}")
    return order


# -- opening from alerts (the alerts service, in the alert's transaction) -------------------------

# The light's luminaire, the pole it hangs from (a wall fitting stands for its own pole), and
# the register's circuit and district above it: plain joins by key (the tree has fixed levels
# here), not the recursive equipment_device_cabinets view, which would walk the whole register.
_PLACE: Final = """
SELECT l.asset_id AS luminaire_id,
       CASE WHEN p.kind = 'pole' THEN p.asset_id ELSE l.asset_id END AS pole_id,
       CASE p.kind WHEN 'circuit' THEN p.asset_id WHEN 'pole' THEN p.parent_id END AS circuit_id,
       coalesce(l.district, p.district) AS district,
       coalesce(l.lat, p.lat) AS lat, coalesce(l.lon, p.lon) AS lon
FROM equipment_assets l
LEFT JOIN equipment_assets p ON p.asset_id = l.parent_id
WHERE l.device_id = %s AND l.kind = 'luminaire'
"""
_CANDIDATES: Final = (
    "SELECT work_order_id, scope_key, kind, state, verified_at IS NOT NULL AS verified "
    "FROM work_orders WHERE scope_key = ANY(%s) "
    "AND (state IN ('open', 'assigned', 'in_progress') OR (state = 'done' AND verified_at IS NULL))"
)
_INSERT: Final = (
    "INSERT INTO work_orders (kind, scope, scope_key, asset_id, device_id, circuit, district, "
    "crew, summary, lat, lon, opened_at) "
    "VALUES (%(kind)s, %(scope)s, %(scope_key)s, "
    "(SELECT asset_id FROM equipment_assets WHERE asset_id = %(asset_id)s), "
    "%(device_id)s, %(circuit)s, %(district)s, %(crew)s, %(summary)s, %(lat)s, %(lon)s, "
    f"%(opened_at)s) RETURNING {_COLUMNS}"
)
_LINK: Final = (
    "INSERT INTO work_order_alerts (alert_id, work_order_id) VALUES (%s, %s) "
    "ON CONFLICT (alert_id) DO NOTHING"
)


@dataclass(frozen=True, kw_only=True)
class _Located:
    place: Place
    asset_id: str | None
    lat: float | None
    lon: float | None


def _locate(conn: psycopg.Connection, alert: Alert) -> _Located:
    """Where the alert's fault is, from the register when its light is in it."""
    row = None
    if alert.device_id is not None:
        row = conn.execute(_PLACE, (alert.device_id,)).fetchone()
    if row is None:
        place = Place(device_id=alert.device_id, circuit=alert.circuit, district=alert.district)
        return _Located(place=place, asset_id=None, lat=alert.lat, lon=alert.lon)
    place = Place(
        device_id=alert.device_id,
        pole_id=row[1],
        circuit=alert.circuit or row[2],
        district=alert.district or row[3],
    )
    return _Located(
        place=place,
        asset_id=row[1],
        lat=alert.lat if alert.lat is not None else row[4],
        lon=alert.lon if alert.lon is not None else row[5],
    )


def open_for_alert(
    conn: psycopg.Connection, alert: Alert, *, actor: str = RASD_ACTOR
) -> WorkOrder | None:
    """Open the work order of a new maintenance alert, or join it to the order covering it.

    Idempotent: an alert already linked changes nothing (None); so do alerts of buses and
    trucks. A done order not verified yet that takes the alert is reopened: its fault is back."""
    if alert.asset_kind is not Fleet.LIGHT:
        return None
    with conn.transaction():
        if conn.execute(
            "SELECT 1 FROM work_order_alerts WHERE alert_id = %s", (alert.alert_id,)
        ).fetchone():
            return None
        located = _locate(conn, alert)
        place = located.place
        keys = covering_keys(alert.kind, place)
        own = scope_of(alert.kind, place)
        if own is None:
            return None  # a light alert with neither device, circuit nor district: no place
        for key in sorted(keys):
            # Two workers never share a district, but a person's step may race this one.
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 20))", (key,))
        with conn.cursor(row_factory=class_row(Candidate)) as cur:
            candidates = cur.execute(_CANDIDATES, (keys,)).fetchall()
        chosen = order_to_join(alert.kind, place, candidates)
        if chosen is not None:
            return _join(conn, chosen.work_order_id, alert, actor)
        scope_asset = {ScopeLevel.CIRCUIT: place.circuit, ScopeLevel.DISTRICT: None}.get(
            own.level, located.asset_id
        )
        order = _one(
            conn,
            _INSERT,
            {
                "kind": alert.kind,
                "scope": own.level.value,
                "scope_key": own.key,
                "asset_id": scope_asset,
                "device_id": alert.device_id,
                "circuit": place.circuit,
                "district": place.district,
                "crew": alert.crew,
                "summary": alert.summary,
                "lat": located.lat,
                "lon": located.lon,
                "opened_at": alert.opened_at,
            },
        )
        assert order is not None
        conn.execute(_LINK, (alert.alert_id, order.work_order_id))
        _record(
            conn,
            order,
            Step.OPEN,
            actor,
            alert.summary or None,
            details={"alert_id": alert.alert_id, "alert_kind": alert.kind},
        )
    return order


def _join(conn: psycopg.Connection, order_id: int, alert: Alert, actor: str) -> WorkOrder:
    order = _locked(conn, order_id)
    if order.state is OrderState.DONE:
        order = _reopen(
            conn,
            order,
            f"{alert.kind} (alert {alert.alert_id}) after completion: the fault is back",
            actor,
        )
    conn.execute(_LINK, (alert.alert_id, order.work_order_id))
    _record(
        conn,
        order,
        Step.JOIN,
        actor,
        alert.summary or None,
        details={"alert_id": alert.alert_id, "alert_kind": alert.kind},
    )
    return order


def absorb_merged(
    conn: psycopg.Connection, merged: Alert, *, actor: str = RASD_ACTOR
) -> WorkOrder | None:
    """An alert was resolved as grouped into a group alert: its order, when it still only
    waits for dispatch (open) and covers nothing else, is cancelled and the alert joins the
    group's order. Returns the order cancelled, else None."""
    if merged.grouped_into is None:
        return None
    with conn.transaction():
        row = conn.execute(
            "SELECT work_order_id FROM work_order_alerts WHERE alert_id = %s", (merged.alert_id,)
        ).fetchone()
        group = conn.execute(
            "SELECT work_order_id FROM work_order_alerts WHERE alert_id = %s",
            (merged.grouped_into,),
        ).fetchone()
        if row is None or group is None or row[0] == group[0]:
            return None
        order = _locked(conn, row[0])
        others = conn.execute(
            "SELECT count(*) FROM work_order_alerts WHERE work_order_id = %s AND alert_id <> %s",
            (order.work_order_id, merged.alert_id),
        ).fetchone()
        if order.state is not OrderState.OPEN or (others is not None and others[0] > 0):
            return None
        conn.execute(
            "UPDATE work_order_alerts SET work_order_id = %s, linked_at = now() "
            "WHERE alert_id = %s",
            (group[0], merged.alert_id),
        )
        cancelled = _set_state(
            conn, order, Step.CANCEL, actor, f"covered by work order {group[0]}", "cancelled_at"
        )
        target = _locked(conn, group[0])
        _record(
            conn,
            target,
            Step.JOIN,
            actor,
            f"alert {merged.alert_id} grouped into this order's alert",
            details={"alert_id": merged.alert_id, "from_work_order": order.work_order_id},
        )
    return cancelled


# -- steps by people (the API) --------------------------------------------------------------------

_TIME_COLUMNS: Final[dict[str, LiteralString]] = {
    "assigned_at": "assigned_at",
    "started_at": "started_at",
    "done_at": "done_at",
    "cancelled_at": "cancelled_at",
}


def _set_state(
    conn: psycopg.Connection,
    order: WorkOrder,
    step: Step,
    actor: str,
    note: str | None,
    time_column: str,
    *,
    at: datetime | None = None,
    assignee: str | None = None,
    minutes: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> WorkOrder:
    """Move a locked order by ``step`` (OrderStateError when not allowed), stamp its time."""
    try:
        state = next_state(order.state, step, assigned=order.assignee is not None)
    except OrderStateError as exc:
        raise OrderStateError(f"work order {order.work_order_id} {exc}") from None
    column = _TIME_COLUMNS[time_column]
    updated = _one(
        conn,
        "UPDATE work_orders SET state = %(state)s, "
        + column
        + " = coalesce(%(at)s, now()), assignee = coalesce(%(assignee)s, assignee), "
        "crew_minutes = coalesce(%(minutes)s, crew_minutes), updated_at = now() "
        f"WHERE work_order_id = %(id)s RETURNING {_COLUMNS}",
        {
            "state": state.value,
            "at": at,
            "assignee": assignee,
            "minutes": minutes,
            "id": order.work_order_id,
        },
    )
    assert updated is not None
    _record(conn, updated, step, actor, note, at=at, details=details)
    return updated


def get_work_order(conn: psycopg.Connection, order_id: int) -> WorkOrder | None:
    """One order by id, or None."""
    return _one(conn, _BY_ID, (order_id,))


def assign(
    conn: psycopg.Connection,
    order_id: int,
    assignee: str,
    who: str,
    note: str | None = None,
    *,
    at: datetime | None = None,
) -> WorkOrder:
    """open or assigned -> assigned to ``assignee`` (a crew member or team)."""
    with conn.transaction():
        order = _locked(conn, order_id)
        return _set_state(
            conn,
            order,
            Step.ASSIGN,
            who,
            note,
            "assigned_at",
            at=at,
            assignee=assignee,
            details={"assignee": assignee},
        )


def start(
    conn: psycopg.Connection,
    order_id: int,
    who: str,
    note: str | None = None,
    *,
    at: datetime | None = None,
) -> WorkOrder:
    """assigned -> in_progress: the crew is at the asset."""
    with conn.transaction():
        return _set_state(conn, _locked(conn, order_id), Step.START, who, note, "started_at", at=at)


def cancel(
    conn: psycopg.Connection,
    order_id: int,
    who: str,
    note: str | None = None,
    *,
    at: datetime | None = None,
) -> WorkOrder:
    """open, assigned or in_progress -> cancelled (a duplicate, a false alarm)."""
    with conn.transaction():
        order = _locked(conn, order_id)
        return _set_state(conn, order, Step.CANCEL, who, note, "cancelled_at", at=at)


_PART_ASSET: Final = """
SELECT a.asset_id, a.serial FROM equipment_assets a
WHERE a.kind = %(kind)s AND (
    a.device_id = %(device)s
    OR a.parent_id = (SELECT l.asset_id FROM equipment_assets l
                      WHERE l.device_id = %(device)s AND l.kind = 'luminaire'))
ORDER BY a.asset_id LIMIT 1
"""


def _part_asset(
    conn: psycopg.Connection, order: WorkOrder, part: PartIn, place: str
) -> tuple[str | None, str | None]:
    """The register asset a part was swapped on and its serial there, when one is named."""
    if part.asset_id is not None:
        row = conn.execute(
            "SELECT asset_id, serial FROM equipment_assets WHERE asset_id = %s", (part.asset_id,)
        ).fetchone()
        if row is None:
            raise WorkOrderInputError(f"{place}: asset_id {part.asset_id} is not in the register")
        return row[0], row[1]
    if part.part in PART_KINDS and order.device_id is not None:
        row = conn.execute(_PART_ASSET, {"kind": part.part, "device": order.device_id}).fetchone()
        if row is not None:
            return row[0], row[1]
    if part.installed_serial is not None:
        raise WorkOrderInputError(
            f"{place}: name the asset_id the {part.part} went on (the register is updated)"
        )
    return None, None


def _swap(
    conn: psycopg.Connection,
    order: WorkOrder,
    asset_id: str,
    registered: str | None,
    part: PartIn,
    at: datetime,
) -> None:
    """The register follows a swap: removed and installed events, the asset's new serial."""
    removed = part.removed_serial or registered
    detail = f"work order {order.work_order_id}: {part.part}"
    if registered is not None and part.removed_serial not in (None, registered):
        detail += f" (the register said serial {registered})"
    ref = str(order.work_order_id)
    rows = [(asset_id, at, "removed", removed, detail, "work_order", ref)]
    if part.installed_serial is not None:
        rows.append((asset_id, at, "installed", part.installed_serial, detail, "work_order", ref))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO equipment_events (asset_id, at, kind, serial, model_id, detail, source, "
            "source_ref) SELECT %s, %s, %s, %s, (SELECT model_id FROM equipment_assets "
            "WHERE asset_id = %s), %s, %s, %s",
            [(r[0], r[1], r[2], r[3], r[0], r[4], r[5], r[6]) for r in rows],
        )
    if part.installed_serial is not None:
        conn.execute(
            "UPDATE equipment_assets SET serial = %s, updated_at = now() WHERE asset_id = %s",
            (part.installed_serial, asset_id),
        )


def complete(
    conn: psycopg.Connection,
    order_id: int,
    who: str,
    note: str | None = None,
    *,
    crew_minutes: int | None = None,
    parts: Sequence[PartIn] = (),
    photos: Sequence[bytes] = (),
    at: datetime | None = None,
) -> WorkOrder:
    """in_progress -> done with the parts swapped (the register follows) and photos; Rasd then
    checks the telemetry (``verify_completed``)."""
    if len(photos) > MAX_PHOTOS:
        raise WorkOrderInputError(f"photos: at most {MAX_PHOTOS}")
    checked: list[tuple[str, bytes]] = []
    for index, data in enumerate(photos, 1):
        try:
            checked.append((checked_photo(data), data))
        except TelemetryError as exc:
            raise WorkOrderInputError(f"photo {index}: {exc}") from None
    with conn.transaction():
        order = _locked(conn, order_id)
        if order.state is not OrderState.IN_PROGRESS:
            # Refused before any part touches the register (the step itself checks again).
            try:
                next_state(order.state, Step.COMPLETE)
            except OrderStateError as exc:
                raise OrderStateError(f"work order {order_id} {exc}") from None
        now = conn.execute("SELECT now()").fetchone()
        assert now is not None
        when: datetime = at or now[0]
        swapped = []
        for seq, part in enumerate(parts):
            asset_id, registered = _part_asset(conn, order, part, f"part {seq + 1}")
            conn.execute(
                "INSERT INTO work_order_parts (work_order_id, seq, part, asset_id, removed_serial, "
                "installed_serial) VALUES (%s, %s, %s, %s, %s, %s)",
                (order_id, seq, part.part, asset_id, part.removed_serial, part.installed_serial),
            )
            if asset_id is not None and (part.installed_serial or part.removed_serial):
                _swap(conn, order, asset_id, registered, part, when)
                swapped.append(asset_id)
        for content_type, data in checked:
            conn.execute(
                "INSERT INTO work_order_photos (work_order_id, content_type, data) "
                "VALUES (%s, %s, %s)",
                (order_id, content_type, data),
            )
        return _set_state(
            conn,
            order,
            Step.COMPLETE,
            who,
            note,
            "done_at",
            at=when,
            minutes=crew_minutes,
            details={"parts": len(parts), "photos": len(checked), "swapped": swapped},
        )


# -- Rasd's check of completed orders against the telemetry ---------------------------------------

# An alert still shows its fault while it is unresolved (only the telemetry clears it), or when
# a person resolved it while the light's latest report of that fault is still active.
_PERSISTING: Final = """
SELECT a.alert_id, a.kind, a.device_id FROM work_order_alerts w JOIN alerts a USING (alert_id)
WHERE w.work_order_id = %s AND (
    a.state <> 'resolved'
    OR (a.resolution = 'manual' AND a.device_id IS NOT NULL AND (
        SELECT f.active FROM light_faults f WHERE f.device_id = a.device_id AND f.fault = a.kind
        ORDER BY f.time DESC LIMIT 1)))
ORDER BY a.alert_id
"""
_DUE: Final = (
    "SELECT " + _COLUMNS + " FROM work_orders WHERE state = 'done' AND verified_at IS NULL "
    "AND done_at <= %(now)s ORDER BY done_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED"
)


def _reopen(conn: psycopg.Connection, order: WorkOrder, note: str, actor: str) -> WorkOrder:
    state = next_state(order.state, Step.REOPEN, assigned=order.assignee is not None)
    updated = _one(
        conn,
        "UPDATE work_orders SET state = %s, done_at = NULL, started_at = NULL, "
        "reopen_count = reopen_count + 1, updated_at = now() "
        f"WHERE work_order_id = %s RETURNING {_COLUMNS}",
        (state.value, order.work_order_id),
    )
    assert updated is not None
    _record(conn, updated, Step.REOPEN, actor, note)
    return updated


def verify_completed(
    conn: psycopg.Connection,
    now: datetime,
    *,
    grace_s: float = 3600.0,
    actor: str = RASD_ACTOR,
    limit: int = 200,
) -> list[Verified]:
    """Check done orders against the telemetry: verified when none of their alerts shows its
    fault any more, reopened (with a note naming them) when some still do ``grace_s`` after
    completion (time for the light's next reports and the alert's clear hold).

    Safe from several workers at once: orders are claimed with SKIP LOCKED."""
    out: list[Verified] = []
    with conn.transaction():
        with conn.cursor(row_factory=class_row(WorkOrder)) as cur:
            due = cur.execute(_DUE, {"now": now, "limit": limit}).fetchall()
        for order in due:
            persisting = conn.execute(_PERSISTING, (order.work_order_id,)).fetchall()
            if not persisting:
                verified = _one(
                    conn,
                    "UPDATE work_orders SET verified_at = %s, updated_at = now() "
                    f"WHERE work_order_id = %s RETURNING {_COLUMNS}",
                    (now, order.work_order_id),
                )
                assert verified is not None
                _record(conn, verified, Step.VERIFY, actor, "the telemetry shows the fault gone")
                out.append(Verified(order=verified, reopened=False))
                continue
            assert order.done_at is not None
            if (now - order.done_at).total_seconds() < grace_s:
                continue
            faults = ", ".join(
                f"{r[1]}{' on ' + r[2] if r[2] else ''} (alert {r[0]})" for r in persisting[:5]
            )
            note = f"closed while the telemetry still shows the fault: {faults}"
            out.append(Verified(order=_reopen(conn, order, note, actor), reopened=True))
    return out


# -- idempotency keys -----------------------------------------------------------------------------


def idempotent(
    conn: psycopg.Connection,
    token_id: int,
    key: str,
    fingerprint: bytes,
    work: Callable[[psycopg.Connection], tuple[int, dict[str, Any]]],
) -> tuple[int, dict[str, Any], bool]:
    """Run ``work`` once per (token, key): (status, body, replayed).

    The key row is inserted first in the same transaction as the change; a concurrent replay
    waits on it and then reads the stored answer. A failed change stores nothing, so its
    retry is judged afresh. The same key with another request: IdempotencyKeyReusedError."""
    with conn.transaction():
        inserted = conn.execute(
            "INSERT INTO idempotency_keys (token_id, key, fingerprint, status, body) "
            "VALUES (%s, %s, %s, 0, 'null') ON CONFLICT (token_id, key) DO NOTHING RETURNING 1",
            (token_id, key, fingerprint),
        ).fetchone()
        if inserted is None:
            row = conn.execute(
                "SELECT fingerprint, status, body FROM idempotency_keys "
                "WHERE token_id = %s AND key = %s",
                (token_id, key),
            ).fetchone()
            assert row is not None
            if bytes(row[0]) != fingerprint:
                raise IdempotencyKeyReusedError(
                    f"Idempotency-Key {key!r} was used for a different request"
                )
            return int(row[1]), dict(row[2]), True
        status, body = work(conn)
        conn.execute(
            "UPDATE idempotency_keys SET status = %s, body = %s WHERE token_id = %s AND key = %s",
            (status, Jsonb(body), token_id, key),
        )
    return status, body, False


def forget_idempotency_keys(conn: psycopg.Connection, before: datetime) -> int:
    """Drop keys stored before ``before`` (an outbox replays within days, not months)."""
    return conn.execute("DELETE FROM idempotency_keys WHERE created_at < %s", (before,)).rowcount


# -- reads for the API ----------------------------------------------------------------------------


def list_work_orders(
    conn: psycopg.Connection, filters: OrderFilter, *, limit: int = 100, before: int | None = None
) -> list[WorkOrder]:
    """Orders matching ``filters``, newest first (``before``: ids below it, for paging)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    params = {
        "states": filter_values([s.value for s in filters.states] or None),
        "districts": filter_values(filters.districts),
        "kinds": filter_values(list(filters.kinds) or None),
        "crew": filters.crew,
        "assignee": filters.assignee,
        "asset": filters.asset_id,
        "before": before,
        "limit": limit,
    }
    with conn.cursor(row_factory=class_row(WorkOrder)) as cur:
        return cur.execute(
            "SELECT " + _COLUMNS + " FROM work_orders WHERE "
            "(%(states)s::text[] IS NULL OR state = ANY(%(states)s)) "
            "AND (%(districts)s::text[] IS NULL OR district = ANY(%(districts)s)) "
            "AND (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s)) "
            "AND (%(crew)s::text IS NULL OR crew = %(crew)s) "
            "AND (%(assignee)s::text IS NULL OR assignee = %(assignee)s) "
            "AND (%(asset)s::text IS NULL OR asset_id = %(asset)s OR work_order_id IN ("
            "  SELECT source_ref::bigint FROM equipment_events "
            "  WHERE source = 'work_order' AND asset_id = %(asset)s)) "
            "AND (%(before)s::bigint IS NULL OR work_order_id < %(before)s) "
            "ORDER BY work_order_id DESC LIMIT %(limit)s",
            params,
        ).fetchall()


def order_steps(conn: psycopg.Connection, order_id: int) -> list[StepRow]:
    """Every step of an order, oldest first."""
    with conn.cursor(row_factory=class_row(StepRow)) as cur:
        return cur.execute(
            "SELECT step, state, at, actor, note, details FROM work_order_steps "
            "WHERE work_order_id = %s ORDER BY step_id",
            (order_id,),
        ).fetchall()


def order_alerts(conn: psycopg.Connection, order_id: int) -> list[OrderAlert]:
    """The alerts an order covers, oldest first."""
    with conn.cursor(row_factory=class_row(OrderAlert)) as cur:
        return cur.execute(
            "SELECT a.alert_id, a.kind, a.state, a.device_id, a.device_count, a.opened_at, "
            "a.cleared_at, a.resolution FROM work_order_alerts w JOIN alerts a USING (alert_id) "
            "WHERE w.work_order_id = %s ORDER BY a.opened_at, a.alert_id",
            (order_id,),
        ).fetchall()


def order_parts(conn: psycopg.Connection, order_id: int) -> list[PartRow]:
    """The parts swapped on an order, in the crew's order."""
    with conn.cursor(row_factory=class_row(PartRow)) as cur:
        return cur.execute(
            "SELECT seq, part, asset_id, removed_serial, installed_serial FROM work_order_parts "
            "WHERE work_order_id = %s ORDER BY seq",
            (order_id,),
        ).fetchall()


def order_photos(conn: psycopg.Connection, order_id: int) -> list[PhotoRow]:
    """The photos of an order (without their bytes)."""
    with conn.cursor(row_factory=class_row(PhotoRow)) as cur:
        return cur.execute(
            "SELECT photo_id, content_type, octet_length(data) AS size, created_at "
            "FROM work_order_photos WHERE work_order_id = %s ORDER BY photo_id",
            (order_id,),
        ).fetchall()


def photo_data(conn: psycopg.Connection, order_id: int, photo_id: int) -> tuple[str, bytes]:
    """One photo's media type and bytes; WorkOrderNotFoundError when there is none."""
    row = conn.execute(
        "SELECT content_type, data FROM work_order_photos WHERE work_order_id = %s "
        "AND photo_id = %s",
        (order_id, photo_id),
    ).fetchone()
    if row is None:
        raise WorkOrderNotFoundError(f"no photo {photo_id} on work order {order_id}")
    return str(row[0]), bytes(row[1])


def listen_statement(schema: str) -> sql.Composed:
    """The ``LISTEN`` on the schema's work-orders channel, for a sync or an async connection."""
    return sql.SQL("LISTEN {}").format(sql.Identifier(work_order_channel(schema)))
