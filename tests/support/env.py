"""Settings for one test: its own schema and topic prefix, so tests run in parallel."""

from __future__ import annotations

import itertools
import os
import random
import socket
import uuid
from typing import Any

from pydantic import SecretStr

from telemetry.settings import Settings

TEST_DATABASE_URL = os.environ.get(
    "RASD_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/rasd_test"
)
TEST_MQTT_URL = os.environ.get("RASD_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")


# Listening ports come from below Linux's ephemeral range (32768-60999): a port the kernel hands
# out as "free" is exactly the one the next outgoing connection (to PostgreSQL, Mosquitto or a
# service under test) may take before the service binds it. Each xdist worker owns its own slice,
# so two workers never pick the same port either; a random start keeps two runs apart.
_PORT_BASE, _PORT_SLICE = 20000, 1500
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0) % 8
_slice_start = _PORT_BASE + _WORKER * _PORT_SLICE
_offset = random.randrange(_PORT_SLICE)
_ports = itertools.cycle([_slice_start + (_offset + i) % _PORT_SLICE for i in range(_PORT_SLICE)])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now, outside the ephemeral range, from this worker's slice."""
    for _ in range(_PORT_SLICE):
        port = next(_ports)
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_slice_start}-{_slice_start + _PORT_SLICE - 1}")


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
        elif isinstance(value, SecretStr):
            text = value.get_secret_value()
        else:
            text = str(value.value if hasattr(value, "value") else value)
        env[f"RASD_{name.upper()}"] = text
    return env
