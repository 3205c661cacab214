"""Settings of the HTTP API, read from ``RASD_API_*`` environment variables.

The shared ``RASD_*`` settings (broker, database, schema, topic prefix) come from
``telemetry.settings.Settings``; these are only what the API adds.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Configuration of ``python -m api`` (see docs/api.md, Configuration)."""

    model_config = SettingsConfigDict(env_prefix="RASD_API_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The address printed by ``tokens create --print-url``, when the API sits behind a proxy.
    public_url: str | None = None

    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tile_attribution: str = "&copy; OpenStreetMap contributors"
    tile_max_zoom: int = Field(default=19, ge=1, le=22)

    db_pool_min: int = Field(default=2, ge=1)
    db_pool_max: int = Field(default=10, ge=1)
    db_timeout_s: float = Field(default=10.0, gt=0)

    # Frames every 50 ms keep publish-to-client p99 under 100 ms (a frame's wait is uniform
    # over the interval); clients that want fewer frames ask for interval_ms (docs/api.md).
    ws_frame_ms: int = Field(default=50, ge=10, le=10_000)
    ws_min_frame_ms: int = Field(default=50, ge=10, le=10_000)
    ws_heartbeat_s: float = Field(default=15.0, gt=0)
    ws_ping_s: float = Field(default=20.0, gt=0)
    ws_send_timeout_s: float = Field(default=30.0, gt=0)
    ws_max_clients: int = Field(default=5000, ge=1)

    # Per-client queue bound: distinct vehicles a lagging client may have pending.
    live_max_vehicles: int = Field(default=50_000, ge=1)
    mqtt_client_prefix: str = "rasd-api"
    registry_refresh_s: float = Field(default=10.0, gt=0)
    alerts_reconnect_s: float = Field(default=2.0, gt=0)

    stale_after_s: float = Field(default=120.0, gt=0)
    light_silent_after_s: float = Field(default=2700.0, gt=0)

    page_default: int = Field(default=100, ge=1)
    page_max: int = Field(default=1000, ge=1)
    track_max_hours: float = Field(default=7 * 24.0, gt=0)
    track_max_points: int = Field(default=20_000, ge=2)
    energy_max_hours: int = Field(default=31 * 24, ge=1)
    energy_max_days: int = Field(default=3 * 366, ge=1)
    energy_max_months: int = Field(default=120, ge=1)
    timezone: str = "Africa/Casablanca"
    # Circuit/district energy: add the hours after the rollups' watermark, computed on read
    # (exact to the minute; ~0.15 s for a 26,000-light district), or serve the materialised
    # hours only (a few ms; the newest hour is missing until the rollups next advance).
    energy_realtime: bool = True

    gtfs_max_age_s: float = Field(default=300.0, gt=0)
    # The static GTFS (docs/gtfs.md): who runs the buses (city-facts: Supratours since the
    # 2025/26 contract) and who publishes the feed; run times learned from this many days of
    # stored traces (0: default speeds only); the export is rebuilt this often in the background
    # (requests get the previous one meanwhile), the live matching's timetable (network tables
    # only) this often.
    gtfs_agency_name: str = Field(default="Supratours", min_length=1)
    gtfs_agency_url: str = "https://www.supratours.ma"
    gtfs_lang: str = Field(default="fr", min_length=2, max_length=35)
    gtfs_publisher_name: str = Field(default="Commune de Marrakech", min_length=1)
    gtfs_publisher_url: str = "https://www.marrakech.ma"
    gtfs_contact_email: str | None = None
    gtfs_learn_days: float = Field(default=7.0, ge=0)
    gtfs_static_refresh_s: float = Field(default=3600.0, gt=0)
    gtfs_timetable_refresh_s: float = Field(default=60.0, gt=0)
    auth_cache_s: float = Field(default=5.0, ge=0)

    # Citizens' complaints (docs/open311.md): the Open311 endpoint, the POST rate limits (fixed
    # windows counted in PostgreSQL, so they hold across API processes) and the linking rules.
    open311_jurisdiction: str = Field(default="marrakech.ma", min_length=1, max_length=100)
    open311_rate_window_s: int = Field(default=3600, ge=1)
    open311_rate_per_key: int = Field(default=1000, ge=1)
    open311_rate_per_address: int = Field(default=20, ge=1)
    # The reporter token the public asset page (/a/{asset_id}, a pole's QR code) posts with. It
    # is written into that public page, as any web client's key is: make it a reporter token of
    # its own, so the per-key limit and a revocation touch that page only. Unset: no form.
    public_report_key: str | None = Field(default=None, min_length=1, max_length=200)
    complaint_sweep_s: float = Field(default=60.0, gt=0)
    complaint_alert_severity: Literal["low", "medium", "high", "critical"] = "medium"
    complaint_alert_sla_h: float = Field(default=72.0, gt=0)
    # Overrides of the linking radii and windows (telemetry.complaints.matching.LinkRules), as JSON:
    # RASD_API_COMPLAINT_RULES='{"light_radius_m": 50}'.
    complaint_rules: dict[str, float] = Field(default_factory=dict)

    # Open data (docs/open_data.md): the background refresh of the materialised daily figures
    # (0 = none in this process: run `python -m api opendata refresh` from a timer instead), the
    # days recomputed for late readings when a new day completes, the request range limits and
    # the licence the feeds are published under.
    opendata_refresh_s: float = Field(default=900.0, ge=0)
    opendata_recheck_days: int = Field(default=8, ge=0, le=366)
    opendata_max_days: int = Field(default=3 * 366, ge=1)
    opendata_max_months: int = Field(default=120, ge=1)
    opendata_licence: str = "CC-BY-4.0"
    opendata_licence_url: str = "https://creativecommons.org/licenses/by/4.0/"
