"""Prometheus metrics of one API process (its own registry, so several apps can coexist)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class ApiMetrics:
    """Counters, gauges and histograms exported at ``/metrics``."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "rasd_api_requests", "HTTP requests answered", ["route", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "rasd_api_request_seconds",
            "Time to answer an HTTP request",
            ["route"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.ws_clients = Gauge(
            "rasd_api_ws_clients", "Connected WebSocket clients", ["stream"], registry=r
        )
        self.ws_frames = Counter(
            "rasd_api_ws_frames", "WebSocket frames sent", ["stream"], registry=r
        )
        self.ws_bytes = Counter(
            "rasd_api_ws_bytes", "WebSocket payload bytes sent", ["stream"], registry=r
        )
        self.ws_refused = Counter(
            "rasd_api_ws_refused", "WebSocket connections refused", ["reason"], registry=r
        )
        self.live_positions = Counter(
            "rasd_api_live_positions", "Valid positions received from the broker", registry=r
        )
        self.live_invalid = Counter(
            "rasd_api_live_invalid", "Broker messages skipped as invalid", registry=r
        )
        self.live_vehicles = Gauge(
            "rasd_api_live_vehicles", "Vehicles held on the live board", registry=r
        )
        self.alert_events = Counter(
            "rasd_api_alert_events", "Alert change notifications received", registry=r
        )
        self.broker_connected = Gauge(
            "rasd_api_broker_connected", "1 while subscribed to live positions", registry=r
        )
        self.auth_failures = Counter(
            "rasd_api_auth_failures", "Requests refused for a missing or bad token", registry=r
        )
