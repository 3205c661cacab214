"""What one API process holds while it runs: pools, live hubs, feeds, caches and metrics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from psycopg_pool import AsyncConnectionPool, ConnectionPool

from api.config import ApiSettings
from api.gtfs_feeds import GtfsState
from api.live.alerts_hub import AlertHub
from api.live.positions import PositionHub
from api.live.registry import VehicleRegistry
from api.metrics import ApiMetrics
from api.tokencache import TokenCache
from telemetry.settings import Settings


@dataclass
class Runtime:
    """The state the lifespan builds and every request reaches through ``request.state``."""

    settings: Settings
    api: ApiSettings
    pool: AsyncConnectionPool
    # The alerts storage module is synchronous; its calls run in threads on this pool.
    sync_pool: ConnectionPool
    positions: PositionHub
    alerts: AlertHub
    registry: VehicleRegistry
    metrics: ApiMetrics
    tokens: TokenCache
    gtfs: GtfsState = field(default_factory=GtfsState)  # the static feed, model and live trips
    broker_subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    alerts_listening: asyncio.Event = field(default_factory=asyncio.Event)
