"""Prometheus metrics of one ingest process (its own registry, never the global one)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class IngestMetrics:
    """Counters, gauges and histograms exported at ``/metrics``."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter(
            "rasd_ingest_messages_received", "MQTT messages received", registry=r
        )
        self.rows = Counter("rasd_ingest_rows_written", "Rows newly stored", ["table"], registry=r)
        self.duplicates = Counter(
            "rasd_ingest_duplicates",
            "Readings already stored (redelivery, resend)",
            ["table"],
            registry=r,
        )
        self.dead_letters = Counter(
            "rasd_ingest_dead_letters", "Messages or elements refused", ["reason"], registry=r
        )
        self.batch_size = Histogram(
            "rasd_ingest_batch_messages",
            "Messages per committed batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
            registry=r,
        )
        self.commit_seconds = Histogram(
            "rasd_ingest_commit_seconds",
            "Time to write and commit one batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.backlog = Gauge(
            "rasd_ingest_backlog_messages", "Messages received, not yet committed", registry=r
        )
        self.db_errors = Counter(
            "rasd_ingest_db_errors", "Failed batch writes (retried)", registry=r
        )
        self.connected = Gauge(
            "rasd_ingest_broker_connected", "1 while connected and subscribed", registry=r
        )
        self.reconnects = Counter(
            "rasd_ingest_broker_connects", "Successful broker connections", registry=r
        )
        self.upkeep_passes = Counter(
            "rasd_ingest_upkeep_passes", "Upkeep passes completed", registry=r
        )
        self.upkeep_failures = Counter(
            "rasd_ingest_upkeep_failures",
            "Upkeep passes that failed (retried next period)",
            registry=r,
        )
        self.devices_registered = Counter(
            "rasd_ingest_devices_auto_registered",
            "Devices registered on first message",
            registry=r,
        )
