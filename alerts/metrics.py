"""Prometheus metrics of one alerts worker (its own registry, never the global one)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class AlertsMetrics:
    """Counters, gauges and histograms exported at ``/metrics``."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter(
            "rasd_alerts_messages_received", "MQTT messages received", registry=r
        )
        self.foreign = Counter(
            "rasd_alerts_messages_other_partition",
            "Messages of devices other workers own",
            registry=r,
        )
        self.observations = Counter(
            "rasd_alerts_observations", "Readings fed to the rules", ["type"], registry=r
        )
        self.changes = Counter("rasd_alerts_changes", "Alert changes committed", ["op"], registry=r)
        self.commit_seconds = Histogram(
            "rasd_alerts_commit_seconds",
            "Time to apply and commit one batch of effects",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.receipt_to_commit = Histogram(
            "rasd_alerts_receipt_to_commit_seconds",
            "From a message's receipt to the commit (and NOTIFY) of what it caused",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5),
            registry=r,
        )
        self.backlog = Gauge(
            "rasd_alerts_backlog_messages", "Messages received, not yet processed", registry=r
        )
        self.active = Gauge(
            "rasd_alerts_active_conditions", "Conditions the engine holds active", registry=r
        )
        self.catchup_seconds = Gauge(
            "rasd_alerts_catchup_seconds", "Duration of the start-up catch-up", registry=r
        )
        self.catchup_replayed = Gauge(
            "rasd_alerts_catchup_replayed", "Stored readings replayed at start-up", registry=r
        )
        self.escalations = Counter(
            "rasd_alerts_escalations", "Alerts escalated past their SLA", registry=r
        )
        self.db_errors = Counter(
            "rasd_alerts_db_errors", "Failed database operations (retried)", registry=r
        )
        self.connected = Gauge(
            "rasd_alerts_broker_connected", "1 while connected and subscribed", registry=r
        )
        self.reconnects = Counter(
            "rasd_alerts_broker_connects", "Successful broker connections", registry=r
        )
