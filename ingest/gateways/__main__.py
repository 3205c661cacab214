"""``python -m ingest.gateways``: every enabled device gateway in one process, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import sys

from ingest.gateways.service import run_gateways
from telemetry.logs import configure_logging
from telemetry.settings import Settings


def main() -> int:
    """Entry point; exit code 0 after a clean drain."""
    # Thousands of trackers hold a connection each: take every descriptor the system allows.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(OSError, ValueError):  # a sandbox may forbid it: keep the soft one
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    asyncio.run(run_gateways(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
