"""The one settings object for every Rasd service, read from ``RASD_*`` environment variables."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from functools import cached_property
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")


class TimescaleMode(StrEnum):
    """Whether storage uses TimescaleDB: when installed (auto), always (on) or never (off)."""

    AUTO = "auto"
    ON = "on"
    OFF = "off"


class Settings(BaseSettings):
    """Configuration shared by ingest, alerts, api and simulators (see README, Configuration)."""

    model_config = SettingsConfigDict(env_prefix="RASD_", frozen=True, extra="ignore")

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    # A SecretStr so that a logged or printed Settings shows ********** instead of it.
    mqtt_password: SecretStr | None = None
    # mqtts:// only: the CA that signed the broker's certificate (None: the system's CAs), and
    # an optional client certificate and key. The broker's host name is always checked.
    mqtt_ca_file: str | None = None
    mqtt_cert_file: str | None = None
    mqtt_key_file: str | None = None
    database_url: str = "postgresql://postgres@127.0.0.1:5432/rasd"
    database_schema: str = "public"
    topic_prefix: str = "rasd/v1"

    timescaledb: TimescaleMode = TimescaleMode.AUTO
    auto_register: bool = False
    max_age_s: int = Field(default=7 * 24 * 3600, gt=0)
    max_future_s: int = Field(default=300, ge=0)
    max_payload_bytes: int = Field(default=64 * 1024, gt=0)
    max_batch_items: int = Field(default=1000, gt=0)

    retention_positions_days: int = Field(default=90, gt=0)
    retention_energy_days: int = Field(default=1825, gt=0)
    retention_faults_days: int = Field(default=1825, gt=0)
    retention_dead_letters_days: int = Field(default=30, gt=0)
    partitions_ahead_days: int = Field(default=7, ge=1)

    ingest_http_host: str = "127.0.0.1"
    ingest_http_port: int = Field(default=9101, ge=0, le=65535)
    ingest_share_group: str = "rasd-ingest"
    ingest_client_id: str | None = None
    ingest_instance: str = "0"
    ingest_batch_max: int = Field(default=5000, gt=0)
    ingest_batch_age_ms: int = Field(default=200, gt=0)
    ingest_receive_maximum: int = Field(default=20000, ge=1, le=65535)
    ingest_session_expiry_s: int = Field(default=7 * 24 * 3600, gt=0)
    ingest_registry_refresh_s: float = Field(default=30.0, gt=0)
    ingest_maintenance_interval_s: float = Field(default=3600.0, gt=0)

    # Device gateways (python -m ingest.gateways, docs/gateways.md). A port of 0 or an empty
    # topic filter switches that gateway off.
    gateway_http_host: str = "127.0.0.1"
    gateway_http_port: int = Field(default=9103, ge=0, le=65535)
    gateway_listen_host: str = "0.0.0.0"
    gateway_teltonika_port: int = Field(default=5027, ge=0, le=65535)
    gateway_osmand_port: int = Field(default=5055, ge=0, le=65535)
    gateway_owntracks_topics: str = "owntracks/+/+"
    gateway_chirpstack_topics: str = "application/+/device/+/event/up"
    gateway_things_stack_topics: str = "v3/+/devices/+/up"
    gateway_lorawan_profiles: str | None = None  # folder of TOML profiles; None: shipped ones
    gateway_client_id: str | None = None
    gateway_ack_timeout_s: float = Field(default=30.0, gt=0)
    gateway_idle_timeout_s: float = Field(default=600.0, gt=0)

    # The municipality's tariff sheet (docs/energy_accounting.md); None: the shipped EXAMPLE,
    # whose prices are invented, and `energy reconcile` says so.
    energy_tariffs_file: str | None = None

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("database_schema")
    @classmethod
    def _check_schema(cls, value: str) -> str:
        if not _SCHEMA_RE.match(value):
            raise ValueError("must be a lower-case SQL identifier ([a-z_][a-z0-9_]*)")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _PREFIX_RE.match(value):
            raise ValueError("must be topic levels of [A-Za-z0-9_-], no wildcards")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl") or not parts.hostname:
            raise ValueError("must look like mqtt://host:port or mqtts://host:port")
        return value

    @cached_property
    def mqtt_tls(self) -> bool:
        """Whether the broker is reached over TLS (``mqtts://``)."""
        return urlsplit(self.mqtt_url).scheme in ("mqtts", "ssl")

    @cached_property
    def mqtt_host(self) -> str:
        """Host name of the broker."""
        return urlsplit(self.mqtt_url).hostname or "127.0.0.1"

    @cached_property
    def mqtt_port(self) -> int:
        """TCP port of the broker."""
        return urlsplit(self.mqtt_url).port or (8883 if self.mqtt_tls else 1883)

    @property
    def max_age(self) -> timedelta:
        """Oldest device timestamp the ingestor accepts."""
        return timedelta(seconds=self.max_age_s)

    @property
    def max_future(self) -> timedelta:
        """How far ahead of the server clock a device timestamp may be."""
        return timedelta(seconds=self.max_future_s)

    @property
    def gateway_id(self) -> str:
        """The gateways' MQTT client id: stable across restarts, one per topic prefix."""
        if self.gateway_client_id:
            return self.gateway_client_id
        return f"rasd-gateways-{self.topic_prefix.replace('/', '-')}"

    @property
    def ingest_id(self) -> str:
        """MQTT client id: stable across restarts and unique per topic prefix and instance."""
        if self.ingest_client_id:
            return self.ingest_client_id
        return f"rasd-ingest-{self.topic_prefix.replace('/', '-')}-{self.ingest_instance}"
