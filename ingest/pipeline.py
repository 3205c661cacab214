"""The batch loop: take received messages, decode them, commit one transaction, then ack.

Two stages, so that the database and the CPU work at the same time: the worker thread
(``run``) takes a batch from the MQTT inbox and decodes it while the writer thread commits the
previous one and acks it right after the commit. One decoded batch at most waits between
them, so nothing piles up: the broker's Receive Maximum bounds the rest. The database is
used only by the writer; a batch naming a device the registry cache cannot judge yet is
decoded by the writer, after looking the device up. The asyncio service owns the worker
thread and stops it through ``request_stop``.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import psycopg
import structlog

from ingest.metrics import IngestMetrics
from ingest.registry_cache import RegistryCache
from telemetry.backoff import Backoff
from telemetry.db import connect
from telemetry.decoding import DeadLetter, Decoded, Limits, MessageDecoder
from telemetry.mqtt_intake import Inbound, MqttIntake
from telemetry.settings import Settings
from telemetry.storage.readings import Batch, ReadingStore, WriteResult
from telemetry.topics import device_id_of

log = structlog.get_logger("ingest.pipeline")


@dataclass(slots=True)
class _Pending:
    message: Inbound
    decoded: Decoded


@dataclass(slots=True)
class _Work:
    """A batch on its way from the worker thread to the writer."""

    messages: list[Inbound]
    pending: list[_Pending] | None  # None: the writer decodes it (the registry must look)


class Pipeline:
    """Moves messages from the MQTT inbox into the database, at least once, exactly once."""

    def __init__(
        self,
        settings: Settings,
        source: MqttIntake,
        metrics: IngestMetrics,
        *,
        drain_timeout_s: float = 30.0,
    ) -> None:
        self.settings = settings
        self.source = source
        self.metrics = metrics
        self.decoder = MessageDecoder(Limits.from_settings(settings))
        # The writer's own: a decoder keeps per-call state, and both threads decode.
        self._writer_decoder = MessageDecoder(Limits.from_settings(settings))
        self.registry = RegistryCache(settings.ingest_registry_refresh_s)
        self._handoff: queue.Queue[_Work | None] = queue.Queue(maxsize=1)
        self._writer_gone = threading.Event()  # gave up (stopping, database down) or crashed
        self._writer_error: BaseException | None = None
        self.db_ready = threading.Event()
        self._stop = threading.Event()
        self._drain_timeout_s = drain_timeout_s
        self._stop_deadline = float("inf")
        self._conn: psycopg.Connection | None = None
        self._store: ReadingStore | None = None
        self._backoff = Backoff(base=0.2, cap=10.0)
        self._committed_messages = 0
        self._committed_rows = 0

    def request_stop(self) -> None:
        """Finish what was received, commit, ack, and return from ``run``."""
        self._stop_deadline = time.monotonic() + self._drain_timeout_s
        self.source.stop_accepting()
        self._stop.set()

    # -- main loop ---------------------------------------------------------------------------

    def run(self) -> None:
        """Loop until stopped and drained (or the drain deadline passes with the database down)."""
        writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        try:
            self._connect_until_ready()
            writer.start()
            while not self._writer_gone.is_set():
                messages = self._take()
                if messages:
                    self._hand_over(_Work(messages, self._decode_known(messages)))
                elif self._stop.is_set():
                    break
        finally:
            if writer.ident is not None:
                self._hand_over(None)
                writer.join()
            self.metrics.backlog.set(len(self.source.inbox))
            if self._conn is not None:
                self._conn.close()
            log.info(
                "drained",
                messages_committed=self._committed_messages,
                rows_committed=self._committed_rows,
                left_unacked=len(self.source.inbox),
            )
        if self._writer_error is not None:
            raise self._writer_error

    def _hand_over(self, work: _Work | None) -> None:
        """Queue ``work`` for the writer, waiting while it is busy; dropped if it is gone."""
        while not self._writer_gone.is_set():
            try:
                self._handoff.put(work, timeout=0.1)
                return
            except queue.Full:
                continue

    def _write_loop(self) -> None:
        """The writer thread: commit each batch, then ack it; stop at None or when giving up."""
        try:
            while (work := self._handoff.get()) is not None:
                if not self._commit(work.messages, work.pending):
                    return  # stopping with the database down: nothing acked, nothing lost
                self.source.ack(work.messages)
        except BaseException as exc:  # re-raised by ``run``, in the thread the service watches
            self._writer_error = exc
        finally:
            self._writer_gone.set()

    def _take(self) -> list[Inbound]:
        inbox = self.source.inbox
        batch_max = self.settings.ingest_batch_max
        batch_age = self.settings.ingest_batch_age_ms / 1000
        while True:
            count = len(inbox)
            if count >= batch_max or (self._stop.is_set() and count):
                break
            if count:
                waited = time.monotonic() - inbox[0].arrived
                if waited >= batch_age:
                    break
                timeout = batch_age - waited
            elif self._stop.is_set():
                return []
            else:
                timeout = batch_age
            self.source.wake.wait(timeout)
            self.source.wake.clear()
        taken = self.source.take(batch_max)
        self.metrics.messages.inc(len(taken))
        self.metrics.backlog.set(len(inbox) + len(taken))
        return taken

    # -- database ------------------------------------------------------------------------------

    def _ensure_store(self) -> ReadingStore:
        if self._store is not None and self._conn is not None and not self._conn.closed:
            return self._store
        conn = connect(self.settings, app="rasd-ingest", autocommit=True)
        self._conn = conn
        self._store = ReadingStore(conn)
        self.registry.refresh(conn, force=True)
        self.db_ready.set()
        log.info("database_connected", backend=self._store.backend.value)
        return self._store

    def _connect_until_ready(self) -> None:
        while not self._stop.is_set():
            try:
                self._ensure_store()
                return
            except psycopg.Error as exc:
                self._drop_connection()
                delay = self._backoff.next_delay()
                log.warning(
                    "database_unreachable", error=str(exc).strip(), retry_in_s=round(delay, 2)
                )
                self._stop.wait(delay)

    def _drop_connection(self) -> None:
        self.db_ready.clear()
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._store = None

    def _device_ids(self, messages: list[Inbound]) -> set[str]:
        prefix = self.settings.topic_prefix
        ids = {device_id_of(m.topic, prefix) for m in messages}
        ids.discard(None)
        return ids  # type: ignore[return-value]  # None was just discarded

    def _decode_known(self, messages: list[Inbound]) -> list[_Pending] | None:
        """Decode in the worker thread when the registry cache can judge every device."""
        if not self.registry.knows(self._device_ids(messages)):
            return None
        fleets = self.registry.fleets
        decode = self.decoder.decode
        return [_Pending(m, decode(m.topic, m.payload, m.received_at, fleets)) for m in messages]

    def _decode(self, store: ReadingStore, messages: list[Inbound]) -> list[_Pending]:
        self.registry.resolve(store.conn, self._device_ids(messages))
        fleets = self.registry.fleets
        decode = self._writer_decoder.decode
        return [_Pending(m, decode(m.topic, m.payload, m.received_at, fleets)) for m in messages]

    def _commit(self, messages: list[Inbound], decoded: list[_Pending] | None) -> bool:
        """Write a batch, retrying until it is committed; False only when giving up to stop.

        ``decoded``: the worker thread's decoding, used unless the registry changed under it
        (a refresh, a reconnect) or it is missing.
        """
        while True:
            try:
                store = self._ensure_store()
                if self.registry.refresh(store.conn):
                    decoded = None
                pending = decoded if decoded is not None else self._decode(store, messages)
                started = time.perf_counter()
                try:
                    result = self._write(store, pending)
                except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
                    log.warning("batch_refused_isolating", error=str(exc), messages=len(pending))
                    result = self._write_one_by_one(store, pending)
                self.metrics.commit_seconds.observe(time.perf_counter() - started)
                self._backoff.reset()
                self._record(result, len(messages))
                return True
            except psycopg.Error as exc:
                self.metrics.db_errors.inc()
                self._drop_connection()
                decoded = None  # decoded again after the registry reloads
                delay = self._backoff.next_delay()
                log.warning(
                    "database_write_failed",
                    error=str(exc).strip(),
                    retry_in_s=round(delay, 2),
                    messages=len(messages),
                )
                if time.monotonic() + delay > self._stop_deadline:
                    log.error("drain_abandoned_database_down", unacked=len(messages))
                    return False
                time.sleep(delay)

    def _write(self, store: ReadingStore, pending: list[_Pending]) -> WriteResult:
        batch = Batch()
        for item in pending:
            batch.add(item.decoded)
        result = store.write(batch)
        if batch.new_devices:
            self.registry.learn(batch.new_devices)
        for letter in batch.dead_letters:
            self.metrics.dead_letters.labels(letter.reason_code).inc()
            log.warning(
                "dead_letter",
                topic=letter.topic,
                device_id=letter.device_id,
                reason=letter.reason,
                element_index=letter.element_index,
            )
        return result

    def _write_one_by_one(self, store: ReadingStore, pending: list[_Pending]) -> WriteResult:
        """Isolate the message the database refuses and dead-letter it with the error."""
        inserted: dict[str, int] = {}
        staged: dict[str, int] = {}
        dead = 0
        registered = 0
        for item in pending:
            try:
                part = self._write(store, [item])
            except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
                m = item.message
                refused = Decoded()
                refused.dead_letters.append(
                    DeadLetter(
                        m.received_at,
                        m.topic,
                        m.payload,
                        f"storage_refused: {str(exc).strip()}",
                        "storage_refused",
                        device_id_of(m.topic, self.settings.topic_prefix),
                        None,
                    )
                )
                part = self._write(store, [_Pending(m, refused)])
            for table, n in part.inserted.items():
                inserted[table] = inserted.get(table, 0) + n
            for table, n in part.staged.items():
                staged[table] = staged.get(table, 0) + n
            dead += part.dead_letters
            registered += part.devices_registered
        return WriteResult(inserted, staged, dead, registered)

    def _record(self, result: WriteResult, messages: int) -> None:
        self._committed_messages += messages
        self._committed_rows += sum(result.inserted.values())
        self.metrics.batch_size.observe(messages)
        for table, n in result.inserted.items():
            self.metrics.rows.labels(table).inc(n)
            self.metrics.duplicates.labels(table).inc(result.staged[table] - n)
        self.metrics.devices_registered.inc(result.devices_registered)
