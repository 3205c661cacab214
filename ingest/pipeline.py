"""The batch loop: take received messages, decode them, commit one transaction, then ack.

Two stages, so that the database and the CPU work at the same time: the worker thread
(``run``) takes a batch from the MQTT inbox, decodes it and builds its COPY data while two
writer threads, each on its own connection, commit the batches before it; a batch is acked
after its commit, in the order the batches were taken. Two, because one PostgreSQL backend
runs one statement at a time: while a writer waits for its INSERT (triggers included) or its
commit, the other sends the next batch (the triggers take their locks in device order, so
concurrent batches do not deadlock). One decoded batch at most waits for a writer, so nothing
piles up: the broker's Receive Maximum bounds the rest. The database is used only by the
writers; a batch naming a device the registry cache cannot judge yet is decoded by its writer,
after looking the device up. The asyncio service owns the worker thread and stops it through
``request_stop``.
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
from telemetry.decoding import DeadLetter, Limits, MessageDecoder
from telemetry.mqtt_intake import Inbound, MqttIntake
from telemetry.settings import Settings
from telemetry.storage.readings import Batch, ReadingStore, RowEncoder, WriteResult
from telemetry.topics import device_id_of

log = structlog.get_logger("ingest.pipeline")

#: Writer threads (and database connections) per ingest process.
WRITERS = 2


class _Connection:
    """One writer's database connection and its store, opened on first use."""

    def __init__(self) -> None:
        self.conn: psycopg.Connection | None = None
        self.store: ReadingStore | None = None
        self.backoff = Backoff(base=0.2, cap=10.0)


@dataclass(slots=True)
class _Work:
    """A batch on its way from the worker thread to the writer."""

    seq: int  # order taken from the inbox, which is the order its acks go out in
    messages: list[Inbound]
    decoded: Batch | None  # None: the writer decodes it (the registry must look)


class _AckOrder:
    """Sends each committed batch's acks once every batch taken before it is settled.

    Mosquitto finds an acked message by walking its in-flight list from the oldest: acks of a
    batch sent before those of the batch ahead of it (the other writer's, still committing)
    make it walk past that whole batch for each one (measured: twice the broker's CPU).
    """

    def __init__(self, source: MqttIntake) -> None:
        self._source = source
        self._lock = threading.Lock()
        self._next = 0
        self._settled: dict[int, list[Inbound] | None] = {}

    def settle(self, seq: int, committed: list[Inbound] | None) -> None:
        """Batch ``seq`` is committed (its messages) or given up (None, never acked)."""
        with self._lock:
            self._settled[seq] = committed
            while self._next in self._settled:
                messages = self._settled.pop(self._next)
                self._next += 1
                if messages:
                    self._source.ack(messages)

    def flush(self) -> None:
        """Ack every committed batch still waiting (a batch before it will never settle)."""
        with self._lock:
            for seq in sorted(self._settled):
                messages = self._settled.pop(seq)
                if messages:
                    self._source.ack(messages)


class Pipeline:
    """Moves messages from the MQTT inbox into the database, at least once, exactly once."""

    def __init__(
        self,
        settings: Settings,
        source: MqttIntake,
        metrics: IngestMetrics,
        *,
        drain_timeout_s: float = 30.0,
        writers: int = WRITERS,
    ) -> None:
        self.settings = settings
        self.source = source
        self.metrics = metrics
        self.decoder = MessageDecoder(Limits.from_settings(settings))
        self._encoder = RowEncoder()  # the worker thread's; a writer formats its own rows
        self.registry = RegistryCache(settings.ingest_registry_refresh_s)
        # The writers refresh, resolve and teach the cache; the worker only reads it.
        self._registry_lock = threading.Lock()
        self._connections = [_Connection() for _ in range(writers)]
        self._counts_lock = threading.Lock()
        self._acks = _AckOrder(source)
        self._taken = 0
        self._handoff: queue.Queue[_Work | None] = queue.Queue(maxsize=1)
        self._writer_gone = threading.Event()  # gave up (stopping, database down) or crashed
        self._writer_error: BaseException | None = None
        self.db_ready = threading.Event()
        self._stop = threading.Event()
        self._drain_timeout_s = drain_timeout_s
        self._stop_deadline = float("inf")
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
        writers = [
            threading.Thread(
                target=self._write_loop, args=(link,), name=f"ingest-writer-{n}", daemon=True
            )
            for n, link in enumerate(self._connections)
        ]
        try:
            self._connect_until_ready(self._connections[0])
            for writer in writers:
                writer.start()
            while not self._writer_gone.is_set():
                messages = self._take()
                if messages:
                    work = _Work(self._taken, messages, self._decode_known(messages))
                    self._taken += 1
                    self._hand_over(work)
                elif self._stop.is_set():
                    break
        finally:
            started = [w for w in writers if w.ident is not None]
            for _ in started:
                self._hand_over_stop(started)
            for writer in started:
                writer.join()
            self._acks.flush()
            self.metrics.backlog.set(len(self.source.inbox))
            for link in self._connections:
                if link.conn is not None:
                    link.conn.close()
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

    def _hand_over_stop(self, writers: list[threading.Thread]) -> None:
        """Queue one writer's stop, waiting while the queue is full and some writer runs."""
        while any(w.is_alive() for w in writers):
            try:
                self._handoff.put(None, timeout=0.1)
                return
            except queue.Full:
                continue

    def _write_loop(self, link: _Connection) -> None:
        """A writer thread: commit each batch, then ack it; stop at None or when giving up."""
        decoder = MessageDecoder(Limits.from_settings(self.settings))  # per-call state
        try:
            while (work := self._handoff.get()) is not None:
                if not self._commit(link, decoder, work.messages, work.decoded):
                    self._acks.settle(work.seq, None)
                    return  # stopping with the database down: nothing acked, nothing lost
                self._acks.settle(work.seq, work.messages)
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

    def _ensure_store(self, link: _Connection) -> ReadingStore:
        if link.store is not None and link.conn is not None and not link.conn.closed:
            return link.store
        conn = connect(self.settings, app="rasd-ingest", autocommit=True)
        link.conn = conn
        link.store = ReadingStore(conn)
        with self._registry_lock:
            self.registry.refresh(conn, force=True)
        self.db_ready.set()
        log.info("database_connected", backend=link.store.backend.value)
        return link.store

    def _connect_until_ready(self, link: _Connection) -> None:
        while not self._stop.is_set():
            try:
                self._ensure_store(link)
                return
            except psycopg.Error as exc:
                self._drop_connection(link)
                delay = link.backoff.next_delay()
                log.warning(
                    "database_unreachable", error=str(exc).strip(), retry_in_s=round(delay, 2)
                )
                self._stop.wait(delay)

    def _drop_connection(self, link: _Connection) -> None:
        self.db_ready.clear()
        if link.conn is not None:
            link.conn.close()
        link.conn = None
        link.store = None

    def _device_ids(self, messages: list[Inbound]) -> set[str]:
        prefix = self.settings.topic_prefix
        ids = {device_id_of(m.topic, prefix) for m in messages}
        ids.discard(None)
        return ids  # type: ignore[return-value]  # None was just discarded

    def _decode_known(self, messages: list[Inbound]) -> Batch | None:
        """Decode (and encode for COPY) in the worker thread when the registry cache can
        judge every device."""
        if not self.registry.knows(self._device_ids(messages)):
            return None
        batch = self._decode_batch(self.decoder, messages)
        batch.encode(self._encoder)
        return batch

    def _decode_batch(self, decoder: MessageDecoder, messages: list[Inbound]) -> Batch:
        """Every message decoded straight into one batch's lists (no record per message)."""
        fleets = self.registry.fleets
        batch = Batch()
        new_devices = batch.new_devices
        decode_into = decoder.decode_into
        for m in messages:
            device = decode_into(m.topic, m.payload, m.received_at, fleets, batch)
            if device is not None:
                new_devices.setdefault(device[0], device[1])
        return batch

    def _decode(
        self, store: ReadingStore, decoder: MessageDecoder, messages: list[Inbound]
    ) -> Batch:
        with self._registry_lock:
            self.registry.resolve(store.conn, self._device_ids(messages))
        return self._decode_batch(decoder, messages)

    def _commit(
        self,
        link: _Connection,
        decoder: MessageDecoder,
        messages: list[Inbound],
        decoded: Batch | None,
    ) -> bool:
        """Write a batch, retrying until it is committed; False only when giving up to stop.

        ``decoded``: the worker thread's decoding, used unless the registry changed under it
        (a refresh, a reconnect) or it is missing.
        """
        while True:
            try:
                store = self._ensure_store(link)
                with self._registry_lock:
                    changed = self.registry.refresh(store.conn)
                if changed:
                    decoded = None
                batch = decoded if decoded is not None else self._decode(store, decoder, messages)
                started = time.perf_counter()
                try:
                    result = self._write(store, batch)
                except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
                    log.warning("batch_refused_isolating", error=str(exc), messages=len(messages))
                    result = self._write_one_by_one(store, decoder, messages)
                self.metrics.commit_seconds.observe(time.perf_counter() - started)
                link.backoff.reset()
                self._record(result, len(messages))
                return True
            except psycopg.Error as exc:
                self.metrics.db_errors.inc()
                self._drop_connection(link)
                decoded = None  # decoded again after the registry reloads
                delay = link.backoff.next_delay()
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

    def _write(self, store: ReadingStore, batch: Batch) -> WriteResult:
        result = store.write(batch)
        if batch.new_devices:
            with self._registry_lock:
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

    def _write_one_by_one(
        self, store: ReadingStore, decoder: MessageDecoder, messages: list[Inbound]
    ) -> WriteResult:
        """Isolate the message the database refuses and dead-letter it with the error."""
        inserted: dict[str, int] = {}
        staged: dict[str, int] = {}
        dead = 0
        registered = 0
        for m in messages:
            try:
                part = self._write(store, self._decode_batch(decoder, [m]))
            except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
                refused = Batch()
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
                part = self._write(store, refused)
            for table, n in part.inserted.items():
                inserted[table] = inserted.get(table, 0) + n
            for table, n in part.staged.items():
                staged[table] = staged.get(table, 0) + n
            dead += part.dead_letters
            registered += part.devices_registered
        return WriteResult(inserted, staged, dead, registered)

    def _record(self, result: WriteResult, messages: int) -> None:
        with self._counts_lock:
            self._committed_messages += messages
            self._committed_rows += sum(result.inserted.values())
        self.metrics.batch_size.observe(messages)
        for table, n in result.inserted.items():
            self.metrics.rows.labels(table).inc(n)
            self.metrics.duplicates.labels(table).inc(result.staged[table] - n)
        self.metrics.devices_registered.inc(result.devices_registered)
