"""Equipment register reads and writes: model catalogue, assets (upsert by ``asset_id``, one
transaction, tree-checked), and each asset's history (events, faults, operating hours)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

import psycopg
from psycopg.rows import class_row

from telemetry.equipment.files import AssetFile, place_order
from telemetry.equipment.records import (
    ASSET_COLUMNS,
    MODEL_COLUMNS,
    Asset,
    AssetKind,
    EquipmentImportError,
    EquipmentModel,
    ModelKind,
)
from telemetry.equipment.tree import Node, tree_problems

#: The city's clock: install dates are local days, operating hours are counted by local month.
DEFAULT_TIMEZONE: Final = "Africa/Casablanca"
_SHOWN: Final = 20

_ASSET_COLS: Final = ", ".join(ASSET_COLUMNS)
_MODEL_COLS: Final = ", ".join(MODEL_COLUMNS)

_UPSERT_MODEL: Final = f"""
INSERT INTO equipment_models ({_MODEL_COLS})
VALUES ({", ".join(["%s"] * len(MODEL_COLUMNS))})
ON CONFLICT (model_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in MODEL_COLUMNS[1:])}, updated_at = now()
"""

_STAGE: Final = """
CREATE TEMP TABLE equipment_assets_in (LIKE equipment_assets INCLUDING DEFAULTS) ON COMMIT DROP
"""

# Events first, while the old rows are still there. A new serial or model on an existing asset
# is a part swap: the old part removed and the new one installed, on the new installed_on when
# it changed, else at the import. A new asset with a part is an installation on installed_on.
_AT: Final = """
CASE WHEN i.installed_on IS NOT NULL AND i.installed_on IS DISTINCT FROM e.installed_on
     THEN i.installed_on::timestamp AT TIME ZONE %(tz)s ELSE now() END
"""
_REMOVED: Final = f"""
INSERT INTO equipment_events (asset_id, at, kind, serial, model_id, detail, source)
SELECT e.asset_id, {_AT}, 'removed', e.serial, e.model_id,
       'replaced by serial ' || coalesce(i.serial, '(none)'), 'import'
FROM equipment_assets e JOIN equipment_assets_in i USING (asset_id)
WHERE (i.serial, i.model_id) IS DISTINCT FROM (e.serial, e.model_id)
  AND (e.serial IS NOT NULL OR e.model_id IS NOT NULL)
"""
_INSTALLED: Final = f"""
INSERT INTO equipment_events (asset_id, at, kind, serial, model_id, source)
SELECT i.asset_id, {_AT}, 'installed', i.serial, i.model_id, 'import'
FROM equipment_assets_in i LEFT JOIN equipment_assets e USING (asset_id)
WHERE (i.serial IS NOT NULL OR i.model_id IS NOT NULL)
  AND (e.asset_id IS NULL OR (i.serial, i.model_id) IS DISTINCT FROM (e.serial, e.model_id))
"""
_UPSERT_ASSETS: Final = f"""
INSERT INTO equipment_assets ({_ASSET_COLS})
SELECT {_ASSET_COLS} FROM equipment_assets_in
ON CONFLICT (asset_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in ASSET_COLUMNS[1:])}, updated_at = now()
WHERE ({", ".join(f"equipment_assets.{c}" for c in ASSET_COLUMNS[1:])})
      IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in ASSET_COLUMNS[1:])})
RETURNING (xmax = 0) AS created
"""

_SUBTREE: Final = """
WITH RECURSIVE sub AS (
    SELECT asset_id, device_id, 0 AS depth FROM equipment_assets WHERE asset_id = %(id)s
    UNION ALL
    SELECT a.asset_id, a.device_id, s.depth + 1
    FROM equipment_assets a JOIN sub s ON a.parent_id = s.asset_id
    WHERE s.depth < 8
)
SELECT asset_id, device_id FROM sub
"""
_ANCESTOR_DEVICE: Final = """
WITH RECURSIVE up AS (
    SELECT asset_id, parent_id, device_id, 0 AS depth FROM equipment_assets
    WHERE asset_id = %(id)s
    UNION ALL
    SELECT p.asset_id, p.parent_id, p.device_id, u.depth + 1
    FROM equipment_assets p JOIN up u ON p.asset_id = u.parent_id
    WHERE u.depth < 8
)
SELECT asset_id, device_id FROM up WHERE device_id IS NOT NULL ORDER BY depth LIMIT 1
"""
_EVENTS: Final = """
SELECT at, kind, asset_id, NULL::text AS device_id, NULL::text AS fault, serial, model_id,
       detail, source, source_ref
FROM equipment_events WHERE asset_id = ANY(%(ids)s)
"""
_FAULTS: Final = """
SELECT time AS at, CASE WHEN active THEN 'fault_started' ELSE 'fault_ended' END AS kind,
       NULL::text AS asset_id, device_id, fault, NULL::text AS serial, NULL::text AS model_id,
       detail, 'telemetry' AS source, NULL::text AS source_ref
FROM light_faults WHERE device_id = ANY(%(devices)s)
"""
# A light burns between two readings when the first says so (lamp_on, or power drawn when the
# device does not report lamp_on); gaps over 3 hours (the energy definition's lookback) are
# not counted, since what happened in them is unknown.
_HOURS: Final = """
WITH r AS (
    SELECT time, coalesce(lamp_on, power_w > 0) AS burning,
           lead(time) OVER (ORDER BY time) AS next_time
    FROM light_energy
    WHERE device_id = %(device)s AND (%(since)s::timestamptz IS NULL OR time >= %(since)s)
)
SELECT (date_trunc('month', time AT TIME ZONE %(tz)s))::date AS month,
       (coalesce(sum(extract(epoch FROM next_time - time)) FILTER (
           WHERE burning AND next_time - time <= INTERVAL '3 hours'), 0) / 3600.0
       )::double precision AS hours
FROM r GROUP BY 1 ORDER BY 1
"""


@dataclass(frozen=True, kw_only=True)
class AssetRow:
    """One row of ``equipment_assets``."""

    asset_id: str
    kind: str
    parent_id: str | None
    label: str | None
    device_id: str | None
    model_id: str | None
    serial: str | None
    supplier: str | None
    project_id: str | None
    installed_on: date | None
    warranty_until: date | None
    lat: float | None
    lon: float | None
    district: str | None
    meter_id: str | None
    contracted_kw: float | None
    tariff: str | None
    created_at: datetime
    updated_at: datetime

    def record(self) -> Asset:
        """The register record (without the bookkeeping times)."""
        values = {c: getattr(self, c) for c in ASSET_COLUMNS}
        values["kind"] = AssetKind(self.kind)
        return Asset(**values)


@dataclass(frozen=True, kw_only=True)
class ModelRow:
    """One row of ``equipment_models``."""

    model_id: str
    kind: str
    manufacturer: str
    model: str
    rated_power_w: float | None
    power_at_min_dim_w: float | None
    rated_life_h: int | None
    warranty_years: int | None
    replaceable_on_site: bool | None
    light_source: str | None
    luminous_flux_lm: int | None

    def record(self) -> EquipmentModel:
        """The catalogue record."""
        values = {c: getattr(self, c) for c in MODEL_COLUMNS}
        values["kind"] = ModelKind(self.kind)
        return EquipmentModel(**values)


@dataclass(frozen=True, kw_only=True)
class ImportSummary:
    """What an asset import changed."""

    created: int
    updated: int
    unchanged: int
    events: int


@dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    """One thing that happened to an asset or one below it: a part installed or removed (by
    serial), a fault starting or ending on its device; later, work orders' steps."""

    at: datetime
    kind: str  # installed, removed, fault_started, fault_ended, ...
    asset_id: str | None
    device_id: str | None
    fault: str | None
    serial: str | None
    model_id: str | None
    detail: str | None
    source: str  # import, telemetry, ...
    source_ref: str | None


@dataclass(frozen=True, kw_only=True)
class MonthHours:
    """Burning hours in one local calendar month."""

    month: date
    hours: float


@dataclass(frozen=True, kw_only=True)
class OperatingHours:
    """Burning hours of the device that measures an asset, since its current part went in."""

    device_id: str
    since: datetime | None
    hours: float
    months: list[MonthHours]


@dataclass(frozen=True, kw_only=True)
class AssetHistory:
    """An asset with its history, oldest first."""

    asset: AssetRow
    entries: list[HistoryEntry]
    operating_hours: OperatingHours | None


def _fail(problems: Sequence[str]) -> EquipmentImportError:
    shown = "; ".join(problems[:_SHOWN])
    more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
    noun = "problem" if len(problems) == 1 else "problems"
    return EquipmentImportError(f"{len(problems)} {noun}, nothing imported: {shown}{more}")


def import_models(conn: psycopg.Connection, models: Sequence[EquipmentModel]) -> int:
    """Insert or update catalogue models by ``model_id`` in one transaction; returns how many.

    A model's kind cannot change while assets of the old kind use it."""
    rows = [
        tuple(getattr(m, c).value if c == "kind" else getattr(m, c) for c in MODEL_COLUMNS)
        for m in models
    ]
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(_UPSERT_MODEL, rows)
    except psycopg.errors.ForeignKeyViolation as exc:
        detail = exc.diag.message_detail or ""
        raise EquipmentImportError(
            f"nothing imported: a model's kind changed while assets use it ({detail})"
        ) from None
    return len(rows)


def _register_problems(conn: psycopg.Connection, parsed: AssetFile) -> list[str]:
    """Problems of the file against the register it would join (the caller holds the lock)."""
    existing = conn.execute(
        "SELECT asset_id, kind, parent_id, device_id, meter_id FROM equipment_assets"
    ).fetchall()
    nodes = {
        r[0]: Node(asset_id=r[0], kind=AssetKind(r[1]), parent_id=r[2], where="in the register")
        for r in existing
    }
    file_ids = {a.asset_id for a in parsed.assets}
    for a in parsed.assets:
        nodes[a.asset_id] = Node(
            asset_id=a.asset_id, kind=a.kind, parent_id=a.parent_id, where=parsed.where[a.asset_id]
        )
    problems = tree_problems(nodes)
    for column, index in (("device_id", 3), ("meter_id", 4)):
        holders = {
            r[index]: r[0] for r in existing if r[index] is not None and r[0] not in file_ids
        }
        for a in parsed.assets:
            value = getattr(a, column)
            if value is not None and value in holders:
                problems.append(
                    f"{parsed.where[a.asset_id]}: {column} {value} belongs to asset "
                    f"{holders[value]} in the register"
                )
    devices = sorted({a.device_id for a in parsed.assets if a.device_id is not None})
    known = {
        r[0]
        for r in conn.execute("SELECT device_id FROM devices WHERE device_id = ANY(%s)", (devices,))
    }
    models = sorted({a.model_id for a in parsed.assets if a.model_id is not None})
    model_kinds: dict[str, str] = dict(
        conn.execute(
            "SELECT model_id, kind FROM equipment_models WHERE model_id = ANY(%s)", (models,)
        ).fetchall()
    )
    for a in parsed.assets:
        place = parsed.where[a.asset_id]
        if a.device_id is not None and a.device_id not in known:
            problems.append(f"{place}: device_id {a.device_id} is not in the device registry")
        if a.model_id is not None:
            kind = model_kinds.get(a.model_id)
            if kind is None:
                problems.append(f"{place}: model_id {a.model_id} is not in the catalogue")
            elif kind != a.kind.value:
                problems.append(
                    f"{place}: model_id {a.model_id} is a {kind} model, not a {a.kind.value}"
                )
    return sorted(problems, key=place_order)


def import_assets(
    conn: psycopg.Connection, parsed: AssetFile, *, timezone: str = DEFAULT_TIMEZONE
) -> ImportSummary:
    """Upsert assets by ``asset_id`` in one transaction, after checking the tree they make with
    the register, their devices and models; records part swaps as events. All or nothing."""
    with conn.transaction(), conn.cursor() as cur:
        # One import at a time; readers go on reading the previous register meanwhile.
        cur.execute("LOCK TABLE equipment_assets IN SHARE ROW EXCLUSIVE MODE")
        problems = _register_problems(conn, parsed)
        if problems:
            raise _fail(problems)
        cur.execute(_STAGE)
        with cur.copy(f"COPY equipment_assets_in ({_ASSET_COLS}) FROM STDIN") as copy:
            for a in parsed.assets:
                copy.write_row(
                    tuple(
                        getattr(a, c).value if c == "kind" else getattr(a, c) for c in ASSET_COLUMNS
                    )
                )
        cur.execute(_REMOVED, {"tz": timezone})
        events = cur.rowcount
        cur.execute(_INSTALLED, {"tz": timezone})
        events += cur.rowcount
        cur.execute(_UPSERT_ASSETS)
        created = [bool(r[0]) for r in cur.fetchall()]
    return ImportSummary(
        created=sum(created),
        updated=len(created) - sum(created),
        unchanged=len(parsed.assets) - len(created),
        events=events,
    )


def all_assets(conn: psycopg.Connection) -> list[Asset]:
    """Every asset of the register, by id."""
    with conn.cursor(row_factory=class_row(AssetRow)) as cur:
        cur.execute(
            f"SELECT {_ASSET_COLS}, created_at, updated_at FROM equipment_assets ORDER BY asset_id"
        )
        return [r.record() for r in cur.fetchall()]


def all_models(conn: psycopg.Connection) -> list[EquipmentModel]:
    """Every catalogue model, by id."""
    with conn.cursor(row_factory=class_row(ModelRow)) as cur:
        cur.execute(f"SELECT {_MODEL_COLS} FROM equipment_models ORDER BY model_id")
        return [r.record() for r in cur.fetchall()]


def last_installed(conn: psycopg.Connection) -> dict[str, datetime]:
    """Each asset's latest ``installed`` event: when its current part went in."""
    rows = conn.execute(
        "SELECT asset_id, max(at) FROM equipment_events WHERE kind = 'installed' GROUP BY 1"
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def get_asset(conn: psycopg.Connection, asset_id: str) -> AssetRow | None:
    """One asset, or None."""
    with conn.cursor(row_factory=class_row(AssetRow)) as cur:
        cur.execute(
            f"SELECT {_ASSET_COLS}, created_at, updated_at FROM equipment_assets "
            "WHERE asset_id = %s",
            (asset_id,),
        )
        return cur.fetchone()


def _since(conn: psycopg.Connection, asset: AssetRow, timezone: str) -> datetime | None:
    """When the asset's current part went in: its last installation event, else its
    ``installed_on`` (local midnight), else unknown."""
    row = conn.execute(
        "SELECT coalesce(max(at), %(day)s::timestamp AT TIME ZONE %(tz)s) FROM equipment_events "
        "WHERE asset_id = %(id)s AND kind = 'installed'",
        {"id": asset.asset_id, "day": asset.installed_on, "tz": timezone},
    ).fetchone()
    return row[0] if row else None


def operating_hours(
    conn: psycopg.Connection,
    device_id: str,
    since: datetime | None,
    *,
    timezone: str = DEFAULT_TIMEZONE,
) -> OperatingHours:
    """Burning hours of ``device_id`` from its energy readings since ``since``, by local month."""
    with conn.cursor(row_factory=class_row(MonthHours)) as cur:
        cur.execute(_HOURS, {"device": device_id, "since": since, "tz": timezone})
        months = cur.fetchall()
    return OperatingHours(
        device_id=device_id, since=since, hours=sum((m.hours for m in months), 0.0), months=months
    )


def asset_history(
    conn: psycopg.Connection, asset_id: str, *, timezone: str = DEFAULT_TIMEZONE
) -> AssetHistory | None:
    """An asset's history (None when there is no such asset), oldest first.

    Entries cover the asset and everything below it: part events, and the faults of the
    devices that measure them (the subtree's devices, or the nearest ancestor's when the
    subtree has none: a driver is measured by its luminaire's light). Operating hours come
    when one device measures the asset, counted since its current part went in."""
    asset = get_asset(conn, asset_id)
    if asset is None:
        return None
    subtree = conn.execute(_SUBTREE, {"id": asset_id}).fetchall()
    measured = {r[1]: r[0] for r in subtree if r[1] is not None}
    if not measured:
        up = conn.execute(_ANCESTOR_DEVICE, {"id": asset_id}).fetchone()
        if up is not None:
            measured = {up[1]: up[0]}
    with conn.cursor(row_factory=class_row(HistoryEntry)) as cur:
        cur.execute(_EVENTS, {"ids": [r[0] for r in subtree]})
        entries = cur.fetchall()
        cur.execute(_FAULTS, {"devices": sorted(measured)})
        faults = cur.fetchall()
    entries += [
        HistoryEntry(
            at=f.at,
            kind=f.kind,
            asset_id=measured.get(f.device_id or ""),
            device_id=f.device_id,
            fault=f.fault,
            serial=None,
            model_id=None,
            detail=f.detail,
            source=f.source,
            source_ref=None,
        )
        for f in faults
    ]
    entries.sort(key=lambda e: (e.at, e.kind != "removed", e.asset_id or "", e.fault or ""))
    hours = None
    if len(measured) == 1:
        device_id = next(iter(measured))
        hours = operating_hours(conn, device_id, _since(conn, asset, timezone), timezone=timezone)
    return AssetHistory(asset=asset, entries=entries, operating_hours=hours)


def list_assets(
    conn: psycopg.Connection,
    *,
    kinds: Sequence[str] | None = None,
    districts: Sequence[str] | None = None,
    parent_id: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[AssetRow]:
    """Assets by id, filtered (None: any), ``limit`` after ``after`` (keyset paging)."""
    with conn.cursor(row_factory=class_row(AssetRow)) as cur:
        cur.execute(
            f"SELECT {_ASSET_COLS}, created_at, updated_at FROM equipment_assets WHERE "
            "(%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s)) "
            "AND (%(districts)s::text[] IS NULL OR district = ANY(%(districts)s)) "
            "AND (%(parent)s::text IS NULL OR parent_id = %(parent)s) "
            "AND (%(after)s::text IS NULL OR asset_id > %(after)s) "
            "ORDER BY asset_id LIMIT %(limit)s",
            {
                "kinds": None if kinds is None else sorted(kinds),
                "districts": None if districts is None else sorted(districts),
                "parent": parent_id,
                "after": after,
                "limit": limit,
            },
        )
        return cur.fetchall()
