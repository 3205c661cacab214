"""Prometheus metrics of the gateways process (its own registry, never the global one)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class GatewayMetrics:
    """Connections, traffic per protocol, refusals by reason and device-ack latency."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.connections = Gauge(
            "rasd_gateway_connections", "Open device connections", ["protocol"], registry=r
        )
        self.received = Counter(
            "rasd_gateway_messages_received",
            "Device messages received (packets, requests, uplinks)",
            ["protocol"],
            registry=r,
        )
        self.published = Counter(
            "rasd_gateway_messages_published",
            "Contract v1 messages confirmed by the broker (PUBACK)",
            ["protocol"],
            registry=r,
        )
        self.reports = Counter(
            "rasd_gateway_reports_published",
            "Readings inside the published messages",
            ["protocol"],
            registry=r,
        )
        self.refusals = Counter(
            "rasd_gateway_refusals",
            "Input refused and dead-lettered",
            ["protocol", "reason"],
            registry=r,
        )
        self.unacked = Counter(
            "rasd_gateway_not_acknowledged",
            "Device messages left unacknowledged because the broker or database failed",
            ["protocol"],
            registry=r,
        )
        self.ack_seconds = Histogram(
            "rasd_gateway_ack_seconds",
            "From a device message's arrival to its acknowledgement",
            ["protocol"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.broker_connected = Gauge(
            "rasd_gateway_broker_connected", "1 while connected to the broker", registry=r
        )
