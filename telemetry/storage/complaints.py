"""All SQL on complaints: creating them (Open311 POST, platform imports), the shared rate-limit
counters, the telemetry the linking rules read, the links and evidence they write, and the
public and operator reads.

Personal data (``complaint_contacts``) is written by ``insert_complaint`` and read only by
``contact_of``; no other query here selects it. Writes are synchronous (the linker and the
alerts storage are); the API's reads are async. Rows come back as the records of
``telemetry.complaints.records`` and ``.facts``, built by column name.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, TypeVar

import psycopg
from psycopg.rows import BaseRowFactory, class_row, kwargs_row
from psycopg.types.json import Jsonb

from telemetry.complaints.chikaya import ImportedComplaint
from telemetry.complaints.facts import AlertRef, Fix, Headway, Reading
from telemetry.complaints.records import (
    BBox,
    ComplaintRow,
    Contact,
    EvidenceRow,
    ImportCounts,
    LightRow,
    LightTelemetry,
    LinkedAlert,
    NewComplaint,
    PointRow,
    RequestFilter,
    StopRow,
    StoredEvidence,
)

T = TypeVar("T")

_COLUMNS: Final = (
    "complaint_id, source, external_id, service_code, description, status, status_notes, "
    "agency_responsible, requested_at, updated_at, expected_at, closed_at, address, lat, lon, "
    "district, media_url, alert_id, link_state, linked_at, link_note"
)


# -- creating ----------------------------------------------------------------------------------


def insert_complaint(conn: psycopg.Connection, new: NewComplaint, contact: Contact) -> ComplaintRow:
    """Store a complaint and its contact (caller's transaction: both or neither)."""
    state = "pending" if new.lat is not None else "no_location"
    with conn.transaction(), conn.cursor(row_factory=class_row(ComplaintRow)) as cur:
        row = cur.execute(
            "INSERT INTO complaints (source, external_id, service_code, description, status, "
            "requested_at, closed_at, address, lat, lon, media_url, agency_responsible, "
            "link_state) VALUES (%s, %s, %s, %s, %s, %s, "
            "CASE WHEN %s = 'closed' THEN %s::timestamptz END, %s, %s, %s, %s, %s, %s) "
            f"RETURNING {_COLUMNS}",
            (
                new.source,
                new.external_id,
                new.service_code,
                new.description,
                new.status,
                new.requested_at,
                new.status,
                new.requested_at,
                new.address,
                new.lat,
                new.lon,
                new.media_url,
                new.agency_responsible,
                state,
            ),
        ).fetchone()
        assert row is not None
        if not contact.empty():
            cur.execute(
                "INSERT INTO complaint_contacts (complaint_id, first_name, last_name, email, "
                "phone, account_id, device_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    row.complaint_id,
                    contact.first_name,
                    contact.last_name,
                    contact.email,
                    contact.phone,
                    contact.account_id,
                    contact.device_id,
                ),
            )
    return row


def import_complaints(
    conn: psycopg.Connection,
    source: str,
    complaints: Sequence[ImportedComplaint],
    agencies: Mapping[str, str],
) -> ImportCounts:
    """Upsert by (source, id) in one transaction: new ones are added; for known ones only
    the status may change, and only from open to closed (a complaint Rasd closed stays
    closed); nothing is ever added twice."""
    created = closed = unchanged = 0
    with conn.transaction(), conn.cursor() as cur:
        # One lock per source: two imports of the same export cannot interleave.
        cur.execute(
            "SELECT pg_advisory_xact_lock(hashtext('rasd-complaints-import:' || %s))", (source,)
        )
        known = {
            r[0]: (r[1], r[2])
            for r in cur.execute(
                "SELECT external_id, complaint_id, status FROM complaints "
                "WHERE source = %s AND external_id = ANY(%s)",
                (source, [c.external_id for c in complaints]),
            ).fetchall()
        }
        for c in complaints:
            found = known.get(c.external_id)
            if found is None:
                insert_complaint(
                    conn,
                    NewComplaint(
                        source=source,
                        external_id=c.external_id,
                        service_code=c.service_code,
                        requested_at=c.requested_at,
                        description=c.description,
                        address=c.address,
                        lat=c.lat,
                        lon=c.lon,
                        agency_responsible=agencies.get(c.service_code),
                        status=c.status,
                    ),
                    Contact(),
                )
                created += 1
            elif c.status == "closed" and found[1] == "open":
                close_complaint(conn, found[0], "Closed on the national complaints platform.")
                closed += 1
            else:
                unchanged += 1
    return ImportCounts(created=created, closed=closed, unchanged=unchanged)


def close_complaint(
    conn: psycopg.Connection, complaint_id: int, note: str, at: datetime | None = None
) -> bool:
    """Close an open complaint with a citizen-facing note; False when not open."""
    cur = conn.execute(
        "UPDATE complaints SET status = 'closed', "
        "closed_at = greatest(coalesce(%s, now()), requested_at), status_notes = %s, "
        "updated_at = now() WHERE complaint_id = %s AND status = 'open'",
        (at, note, complaint_id),
    )
    return cur.rowcount == 1


# -- rate limits --------------------------------------------------------------------------------


async def hit_rate_counters(
    conn: psycopg.AsyncConnection, buckets: Sequence[str], window_start: datetime
) -> list[int]:
    """Count one more request in each bucket's window; returns the new counts, in order.

    One statement per call: concurrent API processes add up exactly (the row lock of the
    upsert serialises them), so a limit holds across processes.
    """
    cur = await conn.execute(
        "INSERT INTO complaint_rate_counters AS c (bucket, window_start, hits) "
        "SELECT b, %s, 1 FROM unnest(%s::text[]) AS b "
        "ON CONFLICT (bucket, window_start) DO UPDATE SET hits = c.hits + 1 "
        "RETURNING bucket, hits",
        (window_start, list(buckets)),
    )
    counts = {r[0]: int(r[1]) for r in await cur.fetchall()}
    return [counts[b] for b in buckets]


def purge_rate_counters(conn: psycopg.Connection, before: datetime) -> int:
    """Drop counters of windows that started before ``before``."""
    return conn.execute(
        "DELETE FROM complaint_rate_counters WHERE window_start < %s", (before,)
    ).rowcount


# -- what the linker reads ------------------------------------------------------------------------


def lights_version(conn: psycopg.Connection) -> tuple[int, datetime | None]:
    """(count, newest update) of the lights: changes when the registry of lights does."""
    row = conn.execute(
        "SELECT count(*), max(updated_at) FROM devices WHERE fleet = 'light'"
    ).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def light_rows(conn: psycopg.Connection) -> list[LightRow]:
    """Every light with a position, by id."""
    with conn.cursor(row_factory=class_row(LightRow), binary=True) as cur:
        return cur.execute(
            "SELECT device_id, lat, lon, district, circuit FROM devices "
            "WHERE fleet = 'light' AND lat IS NOT NULL AND lon IS NOT NULL ORDER BY device_id"
        ).fetchall()


def _by_device(cls: type[T]) -> BaseRowFactory[tuple[str, T]]:
    """Rows as (the ``device`` column, ``cls`` built from the other columns by name): the rows
    of several devices read in one query, to be grouped by device."""

    def make(device: str, **columns: Any) -> tuple[str, T]:
        return device, cls(**columns)

    return kwargs_row(make)


def light_telemetry(
    conn: psycopg.Connection, device_ids: Collection[str], since: datetime, until: datetime
) -> dict[str, LightTelemetry]:
    """Readings in [since, until], the newest reading and active faults of some lights."""
    ids = sorted(device_ids)
    with conn.cursor(row_factory=_by_device(Reading)) as cur:
        latest = dict(
            cur.execute(
                "SELECT device_id AS device, time, lamp_on, power_w, dim_pct FROM light_latest "
                "WHERE device_id = ANY(%s)",
                (ids,),
            ).fetchall()
        )
        readings: dict[str, list[Reading]] = {}
        for device_id, reading in cur.execute(
            "SELECT device_id AS device, time, lamp_on, power_w, dim_pct FROM light_energy "
            "WHERE device_id = ANY(%s) AND time >= %s AND time <= %s ORDER BY device_id, time",
            (ids, since, until),
        ).fetchall():
            readings.setdefault(device_id, []).append(reading)
    faults: dict[str, list[tuple[str, datetime]]] = {}
    for r in conn.execute(
        "SELECT device_id, fault, time FROM light_fault_state "
        "WHERE device_id = ANY(%s) AND active ORDER BY device_id, time",
        (ids,),
    ).fetchall():
        faults.setdefault(r[0], []).append((r[1], r[2]))
    return {
        d: LightTelemetry(
            latest=latest.get(d),
            readings=tuple(readings.get(d, ())),
            faults=tuple(faults.get(d, ())),
        )
        for d in ids
    }


def light_alerts(
    conn: psycopg.Connection, device_ids: Collection[str]
) -> dict[str, list[AlertRef]]:
    """Unresolved alerts of some lights: their own, and outage groups still listing them."""
    out: dict[str, list[AlertRef]] = {}
    with conn.cursor(row_factory=_by_device(AlertRef)) as cur:
        for device, ref in cur.execute(
            "SELECT device_id AS device, alert_id, kind, device_id, false AS grouped FROM alerts "
            "WHERE state <> 'resolved' AND device_id = ANY(%(ids)s) "
            "UNION ALL "
            "SELECT m.device_id, a.alert_id, a.kind, a.device_id, true FROM alert_members m "
            "JOIN alerts a USING (alert_id) WHERE a.state <> 'resolved' "
            "AND m.device_id = ANY(%(ids)s) AND m.recovered_at IS NULL "
            "ORDER BY 1, 2",
            {"ids": sorted(device_ids)},
        ).fetchall():
            out.setdefault(device, []).append(ref)
    return out


def collection_points_in(conn: psycopg.Connection, box: BBox) -> list[PointRow]:
    """Collection points inside a box, with their round (a truck's round is named by its
    ``devices.route``, else by its device id: as in the missed-collection rule)."""
    south, west, north, east = box
    with conn.cursor(row_factory=class_row(PointRow)) as cur:
        return cur.execute(
            "SELECT p.round, p.seq, p.label, p.lat, p.lon, p.radius_m, r.shift_start, "
            "r.shift_end, r.timezone, coalesce(ARRAY(SELECT d.device_id FROM devices d "
            "WHERE d.fleet = 'truck' AND (d.route = p.round OR (d.device_id = p.round AND "
            "(d.route IS NULL OR NOT EXISTS (SELECT 1 FROM collection_rounds o "
            "WHERE o.round = d.route)))) ORDER BY d.device_id), '{}') AS trucks "
            "FROM collection_points p JOIN collection_rounds r USING (round) "
            "WHERE p.lat BETWEEN %s AND %s AND p.lon BETWEEN %s AND %s ORDER BY p.round, p.seq",
            (south, north, west, east),
        ).fetchall()


def vehicle_fixes(
    conn: psycopg.Connection,
    start: datetime,
    end: datetime,
    box: BBox,
    *,
    device_ids: Collection[str] | None = None,
    fleets: Collection[str] | None = None,
) -> list[Fix]:
    """Stored positions in [start, end) inside a box, of some devices (by the primary key)
    or of some fleets (by the time index); the route is the reported one, else the
    registered one."""
    south, west, north, east = box
    with conn.cursor(row_factory=class_row(Fix)) as cur:
        return cur.execute(
            "SELECT p.device_id, p.time, p.lat, p.lon, p.speed_kmh, "
            "coalesce(p.route, d.route) AS route "
            "FROM vehicle_positions p LEFT JOIN devices d ON d.device_id = p.device_id "
            "WHERE p.time >= %(start)s AND p.time < %(end)s "
            "AND p.lat BETWEEN %(south)s AND %(north)s AND p.lon BETWEEN %(west)s AND %(east)s "
            "AND (%(ids)s::text[] IS NULL OR p.device_id = ANY(%(ids)s)) "
            "AND (%(fleets)s::text[] IS NULL OR d.fleet = ANY(%(fleets)s)) "
            "ORDER BY p.time, p.device_id",
            {
                "start": start,
                "end": end,
                "south": south,
                "north": north,
                "west": west,
                "east": east,
                "ids": None if device_ids is None else sorted(device_ids),
                "fleets": None if fleets is None else sorted(fleets),
            },
        ).fetchall()


def fix_counts(
    conn: psycopg.Connection, device_ids: Collection[str], start: datetime, end: datetime
) -> dict[str, int]:
    """How many positions each device stored in [start, end)."""
    rows = conn.execute(
        "SELECT device_id, count(*) FROM vehicle_positions WHERE device_id = ANY(%s) "
        "AND time >= %s AND time < %s GROUP BY device_id",
        (sorted(device_ids), start, end),
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def stops_in(conn: psycopg.Connection, box: BBox) -> list[StopRow]:
    """Bus stops inside a box with the routes serving them."""
    south, west, north, east = box
    with conn.cursor(row_factory=class_row(StopRow)) as cur:
        return cur.execute(
            "SELECT s.stop_id, s.name, s.lat, s.lon, coalesce(ARRAY(SELECT DISTINCT l.route "
            "FROM line_stops l WHERE l.stop_id = s.stop_id ORDER BY l.route), '{}') AS routes "
            "FROM bus_stops s WHERE s.lat BETWEEN %s AND %s AND s.lon BETWEEN %s AND %s "
            "ORDER BY s.stop_id",
            (south, north, west, east),
        ).fetchall()


def schedules(conn: psycopg.Connection, routes: Collection[str]) -> list[Headway]:
    """The timetable bands of some lines."""
    with conn.cursor(row_factory=class_row(Headway)) as cur:
        return cur.execute(
            "SELECT route, start_local, end_local, headway_s, timezone FROM line_schedules "
            "WHERE route = ANY(%s) ORDER BY route, start_local",
            (sorted(routes),),
        ).fetchall()


def buses_of(conn: psycopg.Connection, routes: Collection[str]) -> list[str]:
    """Buses registered on some lines."""
    rows = conn.execute(
        "SELECT device_id FROM devices WHERE fleet = 'bus' AND route = ANY(%s) ORDER BY 1",
        (sorted(routes),),
    ).fetchall()
    return [r[0] for r in rows]


# -- what the linker writes ----------------------------------------------------------------------


def claim_due(conn: psycopg.Connection, now: datetime) -> ComplaintRow | None:
    """Lock the next pending complaint due for linking (skipping ones another process holds).

    Call inside a transaction; the lock lasts until it ends.
    """
    with conn.cursor(row_factory=class_row(ComplaintRow)) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM complaints WHERE link_state = 'pending' "
            "AND (link_after IS NULL OR link_after <= %s) "
            "ORDER BY link_after NULLS FIRST, complaint_id LIMIT 1 FOR UPDATE SKIP LOCKED",
            (now,),
        ).fetchone()


def lock_complaint(conn: psycopg.Connection, complaint_id: int) -> ComplaintRow | None:
    """Lock one complaint for relinking (inside a transaction)."""
    with conn.cursor(row_factory=class_row(ComplaintRow)) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM complaints WHERE complaint_id = %s FOR UPDATE",
            (complaint_id,),
        ).fetchone()


def save_link(
    conn: psycopg.Connection,
    complaint_id: int,
    state: str,
    evidence: Sequence[EvidenceRow],
    *,
    alert_id: int | None,
    note: str | None,
    retry_at: datetime | None,
    district: str | None,
) -> None:
    """Replace a complaint's evidence and record its link (caller's transaction)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("DELETE FROM complaint_evidence WHERE complaint_id = %s", (complaint_id,))
        cur.executemany(
            "INSERT INTO complaint_evidence (complaint_id, seq, kind, asset_kind, asset_key, "
            "distance_m, verdict, observed_at, details) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    complaint_id,
                    seq,
                    e.kind,
                    e.asset_kind,
                    e.asset_key,
                    e.distance_m,
                    e.verdict,
                    e.observed_at,
                    Jsonb(dict(e.details)),
                )
                for seq, e in enumerate(evidence)
            ],
        )
        cur.execute(
            "UPDATE complaints SET link_state = %s, alert_id = coalesce(%s, alert_id), "
            "link_note = %s, link_after = %s, district = coalesce(%s, district), "
            "linked_at = CASE WHEN %s = 'pending' THEN linked_at ELSE now() END, "
            "updated_at = now() WHERE complaint_id = %s",
            (state, alert_id, note, retry_at, district, state, complaint_id),
        )


def defer_link(conn: psycopg.Connection, complaint_id: int, retry_at: datetime, note: str) -> int:
    """Count a failed linking attempt and retry later; returns the attempts so far."""
    row = conn.execute(
        "UPDATE complaints SET link_attempts = link_attempts + 1, link_after = %s, "
        "link_note = %s WHERE complaint_id = %s RETURNING link_attempts",
        (retry_at, note[:500], complaint_id),
    ).fetchone()
    return int(row[0]) if row else 0


_ALERT_STATE: Final = "SELECT alert_id, state, summary, details, asset_key, kind FROM alerts "


def alert_state(conn: psycopg.Connection, alert_id: int) -> LinkedAlert | None:
    """An alert's state, summary and details."""
    with conn.cursor(row_factory=class_row(LinkedAlert)) as cur:
        return cur.execute(_ALERT_STATE + "WHERE alert_id = %s", (alert_id,)).fetchone()


def covering_alert(
    conn: psycopg.Connection, asset_key: str, kind: str, at: datetime
) -> LinkedAlert | None:
    """The alert of this asset and kind that is unresolved, or was open at ``at``."""
    with conn.cursor(row_factory=class_row(LinkedAlert)) as cur:
        return cur.execute(
            _ALERT_STATE
            + "WHERE asset_key = %(key)s AND kind = %(kind)s AND (state <> 'resolved' OR "
            "(opened_at <= %(at)s AND %(at)s <= coalesce(cleared_at, resolved_at))) "
            "ORDER BY (state <> 'resolved') DESC, opened_at DESC LIMIT 1",
            {"key": asset_key, "kind": kind, "at": at},
        ).fetchone()


def complaints_of_alert(conn: psycopg.Connection, alert_id: int) -> list[int]:
    """Ids of the complaints attached to an alert."""
    rows = conn.execute(
        "SELECT complaint_id FROM complaints WHERE alert_id = %s ORDER BY complaint_id",
        (alert_id,),
    ).fetchall()
    return [int(r[0]) for r in rows]


# -- reads for the API ---------------------------------------------------------------------------


_FILTER: Final = (
    "(%(ids)s::bigint[] IS NULL OR complaint_id = ANY(%(ids)s)) "
    "AND (%(codes)s::text[] IS NULL OR service_code = ANY(%(codes)s)) "
    "AND (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s)) "
    "AND (%(start)s::timestamptz IS NULL OR requested_at >= %(start)s) "
    "AND (%(end)s::timestamptz IS NULL OR requested_at <= %(end)s) "
    "AND (%(districts)s::text[] IS NULL OR district = ANY(%(districts)s)) "
    "AND (%(states)s::text[] IS NULL OR link_state = ANY(%(states)s)) "
    "AND (%(alert)s::bigint IS NULL OR alert_id = %(alert)s) "
    "AND (%(south)s::float8 IS NULL OR (lat BETWEEN %(south)s AND %(north)s "
    "AND lon BETWEEN %(west)s AND %(east)s))"
)


def _params(f: RequestFilter) -> dict[str, Any]:
    south, west, north, east = f.bbox if f.bbox is not None else (None, None, None, None)

    def opt(values: Sequence[Any] | None) -> list[Any] | None:
        return None if values is None else list(values)

    return {
        "ids": opt(f.ids),
        "codes": opt(f.service_codes),
        "statuses": opt(f.statuses),
        "start": f.start,
        "end": f.end,
        "districts": opt(f.districts),
        "states": opt(f.link_states),
        "alert": f.alert_id,
        "south": south,
        "west": west,
        "north": north,
        "east": east,
    }


async def list_complaints(
    conn: psycopg.AsyncConnection, f: RequestFilter, limit: int
) -> list[ComplaintRow]:
    """Complaints matching ``f``, newest requested first, at most ``limit``."""
    params = _params(f) | {"limit": limit}
    async with conn.cursor(row_factory=class_row(ComplaintRow)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM complaints WHERE {_FILTER} "
            "ORDER BY requested_at DESC, complaint_id DESC LIMIT %(limit)s",
            params,
        )
        return await cur.fetchall()


async def get_complaint(conn: psycopg.AsyncConnection, complaint_id: int) -> ComplaintRow | None:
    """One complaint by id (no contact details)."""
    async with conn.cursor(row_factory=class_row(ComplaintRow)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM complaints WHERE complaint_id = %s", (complaint_id,)
        )
        return await cur.fetchone()


async def evidence_of(
    conn: psycopg.AsyncConnection, complaint_ids: Collection[int]
) -> dict[int, list[StoredEvidence]]:
    """The evidence rows of some complaints, by complaint, in order."""
    out: dict[int, list[StoredEvidence]] = {}
    async with conn.cursor(row_factory=class_row(StoredEvidence)) as cur:
        await cur.execute(
            "SELECT complaint_id, seq, kind, asset_kind, asset_key, distance_m, verdict, "
            "observed_at, details FROM complaint_evidence WHERE complaint_id = ANY(%s) "
            "ORDER BY complaint_id, seq",
            (sorted(complaint_ids),),
        )
        for row in await cur.fetchall():
            out.setdefault(row.complaint_id, []).append(row)
    return out


async def contact_of(conn: psycopg.AsyncConnection, complaint_id: int) -> Contact | None:
    """The personal data of a complaint's author (admins only; see docs/open311.md)."""
    async with conn.cursor(row_factory=class_row(Contact)) as cur:
        await cur.execute(
            "SELECT first_name, last_name, email, phone, account_id, device_id "
            "FROM complaint_contacts WHERE complaint_id = %s",
            (complaint_id,),
        )
        return await cur.fetchone()


async def close_open_complaint(conn: psycopg.AsyncConnection, complaint_id: int, note: str) -> bool:
    """Close an open complaint (an operator's decision); False when not open."""
    cur = await conn.execute(
        "UPDATE complaints SET status = 'closed', closed_at = greatest(now(), requested_at), "
        "status_notes = %s, updated_at = now() WHERE complaint_id = %s AND status = 'open'",
        (note, complaint_id),
    )
    return cur.rowcount == 1
