"""Applies the engine's effects to PostgreSQL through ``telemetry.storage.alerts``.

One ``apply`` call is one transaction: the alert changes, their history rows, their NOTIFY
events and the worker's checkpoint commit together (or not at all). Every operation is
idempotent, so a batch re-applied after a crash or replayed during catch-up changes nothing
twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from alerts.effects import (
    AlertKey,
    Clear,
    Detail,
    Effect,
    Flap,
    Join,
    Leave,
    Member,
    Merge,
    Raise,
)
from telemetry.alert_records import NewAlert, NewMember
from telemetry.storage import alerts as alert_store
from telemetry.storage import work_orders


def utc(t: float) -> datetime:
    """UTC epoch seconds as an aware datetime."""
    return datetime.fromtimestamp(t, UTC)


def _member(m: Member) -> NewMember:
    return NewMember(
        device_id=m.device_id,
        circuit=m.circuit,
        since=utc(m.since),
        recovered_at=None if m.recovered_at is None else utc(m.recovered_at),
    )


def new_alert(effect: Raise) -> NewAlert:
    """The row a ``Raise`` asks for."""
    s = effect.subject
    return NewAlert(
        kind=effect.key.kind,
        asset_kind=s.asset_kind,
        asset_key=effect.key.asset_key,
        opened_at=utc(effect.at),
        severity=effect.severity,
        device_id=s.device_id,
        circuit=s.circuit,
        district=s.district,
        crew=effect.crew,
        summary=effect.summary,
        details=effect.details,
        lat=s.lat,
        lon=s.lon,
        sla_due_at=None if effect.sla_due is None else utc(effect.sla_due),
        members=[_member(m) for m in effect.members],
        escalate_at=[utc(t) for t in effect.escalations],
    )


@dataclass(slots=True)
class Applied:
    """What one ``apply`` changed in the database, by operation."""

    changes: Counter[str] = field(default_factory=Counter)
    skipped: int = 0


def apply_one(conn: psycopg.Connection, effect: Effect, applied: Applied) -> None:
    """Apply one effect in the caller's transaction."""
    changed: object
    if isinstance(effect, Raise):
        changed = alert_store.open_alert(conn, new_alert(effect))
        name = "open"
        if changed is not None:
            # In the alert's own transaction: the order commits with the alert or not at all.
            work_orders.open_for_alert(conn, changed)
    elif isinstance(effect, Clear):
        key = effect.key
        changed = alert_store.clear_alert(
            conn, key.asset_key, key.kind, utc(effect.at), note=effect.note
        )
        name = "resolve"
    elif isinstance(effect, Flap):
        changed = alert_store.note_flap(conn, effect.key.asset_key, effect.key.kind, utc(effect.at))
        name = "flap"
    elif isinstance(effect, Merge):
        changed = alert_store.merge_into_group(
            conn,
            effect.key.asset_key,
            effect.key.kind,
            effect.into.asset_key,
            effect.into.kind,
            utc(effect.at),
        )
        name = "merge"
        if changed is not None:
            work_orders.absorb_merged(conn, changed)
    elif isinstance(effect, Join):
        changed = alert_store.add_members(
            conn, effect.key.asset_key, effect.key.kind, [_member(m) for m in effect.members]
        )
        name = "join"
    elif isinstance(effect, Leave):
        recovered = dict.fromkeys(effect.device_ids, utc(effect.at))
        changed = alert_store.members_recovered(
            conn, effect.key.asset_key, effect.key.kind, recovered
        )
        name = "leave"
    else:
        assert isinstance(effect, Detail)
        changed = alert_store.update_details(
            conn, effect.key.asset_key, effect.key.kind, effect.details, effect.summary
        )
        name = "detail"
    if changed is None:
        applied.skipped += 1
    else:
        applied.changes[name] += 1


def coalesce(effects: Sequence[Effect]) -> list[Effect | _Recovered]:
    """Merge runs of Join (or Leave) effects of one group into one change each.

    A tripped circuit coming back is 40 Leave effects in a row: one database update and one
    ``update`` event instead of 40, each light keeping its own recovery time.
    """
    out: list[Effect | _Recovered] = []
    for effect in effects:
        last = out[-1] if out else None
        if isinstance(effect, Join) and isinstance(last, Join) and last.key == effect.key:
            # One row per light in one INSERT ... ON CONFLICT: the latest listing wins.
            merged = {m.device_id: m for m in (*last.members, *effect.members)}
            out[-1] = Join(effect.key, tuple(merged.values()))
        elif isinstance(effect, Leave):
            times = dict.fromkeys(effect.device_ids, effect.at)
            if isinstance(last, _Recovered) and last.key == effect.key:
                last.times.update(times)
            else:
                out.append(_Recovered(effect.key, times))
        else:
            out.append(effect)
    return out


@dataclass(slots=True)
class _Recovered:
    """Several Leave effects of one group, merged: light -> recovery time."""

    key: AlertKey
    times: dict[str, float]


def apply(
    conn: psycopg.Connection,
    effects: Sequence[Effect],
    *,
    worker: str | None = None,
    checkpoint: float | None = None,
) -> Applied:
    """Apply effects (and advance ``worker``'s checkpoint) in one transaction."""
    applied = Applied()
    with conn.transaction():
        for effect in coalesce(effects):
            if isinstance(effect, _Recovered):
                recovered = {d: utc(t) for d, t in effect.times.items()}
                changed = alert_store.members_recovered(
                    conn, effect.key.asset_key, effect.key.kind, recovered
                )
                if changed is None:
                    applied.skipped += 1
                else:
                    applied.changes["leave"] += 1
            else:
                apply_one(conn, effect, applied)
        if worker is not None and checkpoint is not None:
            alert_store.save_checkpoint(conn, worker, utc(checkpoint))
    return applied
