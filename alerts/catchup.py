"""Restart safety: rebuild a worker's engine from the database before it goes live.

1. Unresolved alerts of the worker's devices seed the engine (what is open stays known, and
   a condition that clears later resolves its alert even if it began long ago).
2. Stored readings received since a little before the worker's checkpoint are replayed in
   receipt order, the engine clock following the replayed receipt times, so per-device state
   (runs, timers, groups, last-heard times) is rebuilt and every condition that arose while
   the worker was down is found, with the same open and close times as a live run.
3. Devices the replay did not hear from (silent since before the window, or never heard
   at all) get their silence clocks from the latest-reading tables (``light_latest``,
   ``vehicle_latest``) or, never heard, from their registration: a device silent since before
   the service's first start is reported too.
4. The effects are applied idempotently: alerts the previous run already opened or resolved
   are recognised (``telemetry.storage.alerts.open_alert`` checks the episode), so replaying
   opens no duplicate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg
import structlog

from alerts.catalog import Catalog
from alerts.config import AlertsConfig
from alerts.engine import Engine
from alerts.observations import from_row
from alerts.partition import Partition, partition_key
from alerts.rules.outage import CIRCUIT_OUTAGE, DISTRICT_OUTAGE
from alerts.store import Applied, apply, utc
from telemetry.alert_records import Alert
from telemetry.storage.alerts import load_checkpoint, unresolved_alerts, unresolved_members
from telemetry.storage.reference import last_heard, stored_readings

log = structlog.get_logger("alerts.catchup")


def owned(alert: Alert, partition: Partition, catalog: Catalog) -> bool:
    """Whether an unresolved alert belongs to this worker's devices."""
    if alert.kind == DISTRICT_OUTAGE:
        return partition.owns_key(f"district:{alert.asset_key.split(':', 1)[1]}")
    if alert.kind == CIRCUIT_OUTAGE:
        if alert.district:
            return partition.owns_key(f"district:{alert.district}")
        return partition.owns_key(alert.asset_key)
    device = alert.device_id or alert.asset_key
    return partition.owns_key(partition_key(device, catalog.assets.get(device)))


@dataclass(slots=True)
class CatchUpReport:
    """What a rebuild did."""

    restored: int = 0
    replayed: int = 0
    seeded: int = 0  # silence clocks started from the latest-reading tables
    skipped: int = 0
    lights_from: float = 0.0
    positions_from: float = 0.0
    until: float = 0.0
    newest: float | None = None  # receipt time of the last replayed reading
    seconds: float = 0.0
    applied: Applied = field(default_factory=Applied)


def rebuild(
    read: psycopg.Connection,
    write: psycopg.Connection,
    engine: Engine,
    *,
    partition: Partition,
    config: AlertsConfig,
    now: float,
    apply_every: int = 5000,
) -> CatchUpReport:
    """Restore unresolved alerts, replay stored readings up to ``now``, apply what follows."""
    started = time.perf_counter()
    report = CatchUpReport(until=now)
    catalog = engine.catalog
    alerts = [a for a in unresolved_alerts(read) if owned(a, partition, catalog)]
    engine.restore(alerts, unresolved_members(read))
    report.restored = len(alerts)
    checkpoint = load_checkpoint(read, config.worker)
    anchor = now if checkpoint is None else min(now, checkpoint.timestamp())
    report.lights_from = anchor - config.catchup_window_s
    report.positions_from = anchor - config.catchup_positions_window_s
    engine.begin(min(report.lights_from, report.positions_from))
    rows = stored_readings(
        read,
        utc(report.lights_from),
        utc(now),
        positions_from=utc(report.positions_from),
        lateness=timedelta(seconds=config.catchup_lateness_s),
    )
    next_tick = float("-inf")
    assets = catalog.assets
    for row in rows:
        observation = from_row(row)
        if observation is None:
            continue
        device = observation.device_id
        if not partition.owns(device, assets.get(device)):
            report.skipped += 1
            continue
        if observation.received >= next_tick:
            engine.tick(observation.received)
            next_tick = observation.received + config.tick_s
        engine.observe(observation)
        report.newest = observation.received
        report.replayed += 1
        if report.replayed % apply_every == 0:
            _merge(report.applied, apply(write, engine.take()))
    # Devices the replay did not hear from (silent since before the window, or never heard):
    # their silence clocks start from what the database last heard, or their registration.
    report.seeded = engine.seed_silence(
        d for d in last_heard(read) if partition.owns(d.device_id, assets.get(d.device_id))
    )
    # Judge silences only up to the newest stored receipt: if the ingestor was down too, what
    # came after is still queued in the broker, and ticking to `now` would call every device
    # silent. The live loop ticks on once that backlog is drained (see alerts.worker).
    horizon = now if report.newest is None else min(now, report.newest)
    engine.tick(horizon)
    _merge(report.applied, apply(write, engine.take(), worker=config.worker, checkpoint=horizon))
    report.seconds = time.perf_counter() - started
    log.info(
        "caught_up",
        restored=report.restored,
        replayed=report.replayed,
        seeded=report.seeded,
        lights_from=utc(report.lights_from).isoformat(),
        positions_from=utc(report.positions_from).isoformat(),
        changes=dict(report.applied.changes),
        seconds=round(report.seconds, 2),
    )
    return report


def _merge(total: Applied, part: Applied) -> None:
    total.changes.update(part.changes)
    total.skipped += part.skipped
