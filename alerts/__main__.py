"""``python -m alerts``: run the alerts service (default), or import a network file (route
shapes, bus stops and headways, truck rounds)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import psycopg
from pydantic import ValidationError

from alerts.config import AlertsConfig, load_thresholds
from alerts.errors import AlertsError
from alerts.routes_file import parse_routes
from alerts.service import run_alerts
from telemetry.db import connect
from telemetry.errors import TelemetryError
from telemetry.gc_tuning import tune_gc
from telemetry.logs import configure_logging
from telemetry.settings import Settings
from telemetry.storage.reference import import_network


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m alerts", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the alerts service until SIGTERM (the default)")
    sub.add_parser("check", help="validate the settings and the thresholds file, then exit")
    routes = sub.add_parser("routes", help="route polylines, bus stops, schedules, truck rounds")
    rsub = routes.add_subparsers(dest="routes_command", required=True)
    imp = rsub.add_parser(
        "import", help="store a network JSON file in one transaction (- for stdin)"
    )
    imp.add_argument("file")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one alerts command; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
        config = AlertsConfig()
        thresholds = load_thresholds(config.thresholds_file)
    except ValidationError as exc:
        print(f"error: settings: {exc}", file=sys.stderr)
        return 2
    except AlertsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = args.command or "run"
    if command == "run":
        configure_logging(settings.log_level, json=settings.log_json)
        tune_gc()
        asyncio.run(run_alerts(settings, config, thresholds))
        return 0
    configure_logging(settings.log_level, json=False)
    if command == "check":
        print(f"worker {config.worker}, thresholds {config.thresholds_file}: ok")
        return 0
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
        parsed = parse_routes(text)
        with connect(settings, app="rasd-alerts-import", autocommit=True) as conn:
            import_network(conn, parsed.network())
        print(
            f"{len(parsed.routes)} routes, {len(parsed.stops)} stops, "
            f"{len(parsed.line_stops)} line stop sequences, {len(parsed.schedules)} schedule "
            f"bands and {len(parsed.rounds)} rounds imported"
        )
    except (AlertsError, TelemetryError, OSError, psycopg.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
