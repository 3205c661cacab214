"""The alerts worker loop: MQTT messages in, alert changes (and their NOTIFY) out.

It runs in a thread because the database driver is synchronous (the MQTT session runs in the
intake's own thread and event loop); the asyncio service owns it and stops it through
``request_stop``. Order of work per batch: decode, feed the engine, tick the clock, apply the
effects and the checkpoint in one transaction, and only then acknowledge the messages (at
least once, never lost). Nothing is waited for before processing: under load, messages queue
while a batch commits, which makes the batches.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime

import psycopg
import structlog

from alerts.catalog import Catalog
from alerts.catchup import rebuild
from alerts.config import AlertsConfig, Thresholds
from alerts.effects import Effect
from alerts.engine import Engine
from alerts.metrics import AlertsMetrics
from alerts.observations import Energy, Fault, NullFix, Position, from_decoded
from alerts.partition import Partition
from alerts.store import apply, utc
from telemetry.backoff import Backoff
from telemetry.db import connect
from telemetry.decoding import Limits, MessageDecoder
from telemetry.mqtt_intake import Inbound, MqttIntake
from telemetry.settings import Settings
from telemetry.storage.alerts import escalate_due, unresolved_keys
from telemetry.storage.reference import (
    assets_changed_since,
    collection_rounds,
    registered_ids,
    route_shapes,
)
from telemetry.storage.work_orders import (
    IDEMPOTENCY_KEPT,
    forget_idempotency_keys,
    verify_completed,
)
from telemetry.topics import Fleet, device_id_of

log = structlog.get_logger("alerts.worker")

_OBSERVATION_TYPES = {Position: "position", Energy: "energy", Fault: "fault", NullFix: "null_fix"}


class Worker:
    """Owns the engine, the database connection and the loop; ``run`` returns when drained."""

    def __init__(
        self,
        settings: Settings,
        config: AlertsConfig,
        thresholds: Thresholds,
        source: MqttIntake,
        metrics: AlertsMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.config = config
        self.thresholds = thresholds
        self.source = source
        self.metrics = metrics
        self.clock = clock
        self.ready = threading.Event()
        self.partition = Partition(config.worker_index, config.workers)
        self.decoder = MessageDecoder(Limits.from_settings(settings))
        self.catalog = Catalog()
        self.engine = Engine(thresholds, self.catalog)
        self._fleets: dict[str, Fleet] = {}
        self._assets_since: datetime | None = None
        self._conn: psycopg.Connection | None = None
        self._stop = threading.Event()
        self._stop_deadline = float("inf")
        self._backoff = Backoff(base=0.2, cap=10.0)
        self._next_refresh = 0.0
        self._next_escalation = 0.0
        self._next_checkpoint = 0.0
        self._last_unknown_refresh = 0.0
        # After a start the broker may replay a backlog: receipt times then say nothing about
        # when devices spoke, so the silence clock waits until traffic is fresh again.
        self.backlog = True

    def request_stop(self) -> None:
        """Finish what was received, commit, ack, and return from ``run``."""
        self._stop_deadline = time.monotonic() + self.config.drain_timeout_s
        self.source.stop_accepting()
        self._stop.set()

    # -- main loop ---------------------------------------------------------------------------

    def run(self) -> None:
        """Catch up, then loop until stopped and drained."""
        try:
            if not self._start():
                return
            while True:
                messages = self._take()
                if messages:
                    self._process(messages)
                elif not self._stop.is_set():
                    self.backlog = False  # a quiet tick: nothing is queued for us
                if not self.backlog:
                    self.engine.tick(self.clock())
                if not self._commit(self.engine.take(), messages):
                    break  # stopping with the database down: nothing acked, nothing lost
                if messages:
                    self.source.ack(messages)
                elif self._stop.is_set():
                    break
                self._periodic()
        finally:
            if self._conn is not None:
                self._conn.close()
            log.info("drained", observed=self.engine.observed, left_unacked=len(self.source.inbox))

    def _take(self) -> list[Inbound]:
        source = self.source
        if not source.inbox and not self._stop.is_set():
            source.wake.wait(self.config.tick_s)
            source.wake.clear()
        messages = source.take(self.config.batch_max)
        self.metrics.messages.inc(len(messages))
        self.metrics.backlog.set(len(source.inbox))
        return messages

    # -- start-up ------------------------------------------------------------------------------

    def _start(self) -> bool:
        """Load reference data, rebuild state from the database; retry until done or stopped."""
        while not self._stop.is_set():
            try:
                conn = self._connection()
                self.catalog = Catalog()
                self._assets_since = None
                self._refresh(conn)
                self.engine = Engine(self.thresholds, self.catalog)
                with connect(self.settings, app="rasd-alerts-catchup", autocommit=True) as read:
                    report = rebuild(
                        read,
                        conn,
                        self.engine,
                        partition=self.partition,
                        config=self.config,
                        now=self.clock(),
                    )
                self.metrics.catchup_seconds.set(report.seconds)
                self.metrics.catchup_replayed.set(report.replayed)
                self._count(report.applied.changes)
                self._backoff.reset()
                self.ready.set()
                return True
            except psycopg.Error as exc:
                self._fail("catchup_failed", exc)
        return False

    # -- database ------------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.settings, app="rasd-alerts", autocommit=True)
        return self._conn

    def _fail(self, event: str, exc: psycopg.Error) -> float:
        self.metrics.db_errors.inc()
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        delay = self._backoff.next_delay()
        log.warning(event, error=str(exc).strip(), retry_in_s=round(delay, 2))
        if self._stop.is_set():
            time.sleep(delay)  # draining: keep trying until the drain deadline
        else:
            self._stop.wait(delay)
        return delay

    def _refresh(self, conn: psycopg.Connection) -> None:
        registered = registered_ids(conn)
        assets, self._assets_since = assets_changed_since(conn, self._assets_since)
        # Deleted from the registry (out of service): no more silence alerts for it.
        gone = self.catalog.retain(registered)
        if gone:
            log.info("devices_unregistered", devices=gone[:20], count=len(gone))
        self.catalog.update_assets(assets)
        self._fleets.update((a.device_id, a.fleet) for a in assets)
        self.catalog.set_routes(route_shapes(conn))
        self.catalog.set_rounds(collection_rounds(conn))
        self._next_refresh = time.monotonic() + self.config.metadata_refresh_s

    def _commit(self, effects: list[Effect], messages: list[Inbound]) -> bool:
        """Apply effects with the checkpoint, retrying; False only when giving up to stop."""
        now = time.monotonic()
        if not effects and not messages and now < self._next_checkpoint:
            return True
        while True:
            try:
                started = time.perf_counter()
                applied = apply(
                    self._connection(),
                    effects,
                    worker=self.config.worker,
                    checkpoint=self.engine.now,
                )
                self.metrics.commit_seconds.observe(time.perf_counter() - started)
                self._count(applied.changes)
                if effects:
                    done = self.clock()
                    for message in messages:
                        self.metrics.receipt_to_commit.observe(max(0.0, done - message.received))
                self._next_checkpoint = now + self.config.tick_s * 10
                self._backoff.reset()
                return True
            except psycopg.Error as exc:
                delay = self._fail("database_write_failed", exc)
                if time.monotonic() + delay > self._stop_deadline:
                    log.error("drain_abandoned_database_down", unacked=len(messages))
                    return False

    def _count(self, changes: dict[str, int]) -> None:
        for op, n in changes.items():
            self.metrics.changes.labels(op).inc(n)

    def _periodic(self) -> None:
        now = time.monotonic()
        try:
            if now >= self._next_escalation:
                self._next_escalation = now + self.config.escalation_interval_s
                escalated = escalate_due(self._connection(), utc(self.clock()))
                self.metrics.escalations.inc(len(escalated))
                self._count({"escalate": len(escalated)})
                for alert in escalated:
                    log.info(
                        "escalated", alert_id=alert.alert_id, kind=alert.kind, asset=alert.asset_key
                    )
                # Done work orders against the telemetry: verified, or reopened with a note.
                now_utc = utc(self.clock())
                for checked in verify_completed(self._connection(), now_utc):
                    log.info(
                        "work_order_reopened" if checked.reopened else "work_order_verified",
                        work_order_id=checked.order.work_order_id,
                    )
                forget_idempotency_keys(self._connection(), now_utc - IDEMPOTENCY_KEPT)
            if now >= self._next_refresh:
                conn = self._connection()
                self._refresh(conn)
                dropped = self.engine.reconcile(unresolved_keys(conn))
                if dropped:
                    log.info(
                        "resolved_by_people",
                        alerts=[f"{k.kind}:{k.asset_key}" for k in dropped][:20],
                    )
        except psycopg.Error as exc:
            self._fail("periodic_failed", exc)
        self.metrics.active.set(len(self.engine.life.active_keys()))

    # -- messages ------------------------------------------------------------------------------

    def _process(self, messages: list[Inbound]) -> None:
        prefix = self.settings.topic_prefix
        assets = self.catalog.assets
        if any(
            (d := device_id_of(m.topic, prefix)) is not None and d not in self._fleets
            for m in messages
        ):
            self._refresh_for_unknown()
        engine = self.engine
        counts: Counter[str] = Counter()
        fresh = stale = 0
        for message in messages:
            device = device_id_of(message.topic, prefix)
            if device is None:
                continue
            if not self.partition.owns(device, assets.get(device)):
                self.metrics.foreign.inc()
                continue
            decoded = self.decoder.decode(
                message.topic, message.payload, message.received_at, self._fleets
            )
            fleet_level = message.topic[len(prefix) + 1 :].split("/", 1)[0]
            fleet = Fleet(fleet_level) if fleet_level in Fleet._value2member_map_ else None
            for observation in from_decoded(decoded, fleet):
                counts[_OBSERVATION_TYPES[type(observation)]] += 1
                if observation.received - observation.ts <= self.config.fresh_lag_s:
                    fresh += 1
                else:
                    stale += 1
                engine.observe(observation)
        if self.backlog and fresh and fresh >= 9 * stale:
            self.backlog = False
            log.info("backlog_drained")
        for name, n in counts.items():
            self.metrics.observations.labels(name).inc(n)

    def _refresh_for_unknown(self) -> None:
        """A device we do not know yet: registered since our last refresh? Look (rate-limited)."""
        now = time.monotonic()
        if now - self._last_unknown_refresh < 5.0:
            return
        self._last_unknown_refresh = now
        try:
            self._refresh(self._connection())
        except psycopg.Error as exc:
            self._fail("refresh_failed", exc)
