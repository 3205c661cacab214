"""``python -m ingest``: run the MQTT ingestor until SIGTERM."""

from __future__ import annotations

import asyncio
import sys

from ingest.service import run_ingest
from telemetry.gc_tuning import tune_gc
from telemetry.logs import configure_logging
from telemetry.settings import Settings


def main() -> int:
    """Entry point; exit code 0 after a clean drain."""
    settings = Settings()
    tune_gc()
    configure_logging(settings.log_level, json=settings.log_json)
    asyncio.run(run_ingest(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
