"""Settings for one test: its own schema and topic prefix, so tests run in parallel."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from telemetry.settings import Settings

TEST_DATABASE_URL = os.environ.get(
    "RASD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/rasd_test"
)
TEST_MQTT_URL = os.environ.get("RASD_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_settings(**overrides: Any) -> Settings:
    """Settings with a fresh schema, topic prefix and ops port for one test."""
    tag = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "database_url": TEST_DATABASE_URL,
        "mqtt_url": TEST_MQTT_URL,
        "database_schema": f"t_{tag}",
        "topic_prefix": f"test/{tag}/v1",
        "ingest_http_port": free_port(),
        "ingest_share_group": f"g{tag}",
        "ingest_batch_age_ms": 50,
        # Sessions on the shared broker must not outlive the test run for long.
        "ingest_session_expiry_s": 600,
        "log_json": True,
    }
    values.update(overrides)
    return Settings(**values)


def settings_env(settings: Settings) -> dict[str, str]:
    """The RASD_* environment that reproduces ``settings`` in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RASD_")}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value.value if hasattr(value, "value") else value)
        env[f"RASD_{name.upper()}"] = text
    return env
