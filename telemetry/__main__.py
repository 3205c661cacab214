"""``python -m telemetry``: migrate the schema, upkeep, and import/export the device registry."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from telemetry.db import connect
from telemetry.errors import TelemetryError
from telemetry.logs import configure_logging
from telemetry.migrate import migrate
from telemetry.registry import parse_devices_csv, render_devices_csv
from telemetry.settings import Settings
from telemetry.storage.devices import all_devices, upsert_devices
from telemetry.storage.maintenance import run_upkeep


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m telemetry", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create the database/schema and apply pending migrations")
    sub.add_parser("upkeep", help="create partitions ahead, apply retention")
    devices = sub.add_parser("devices", help="device registry")
    dsub = devices.add_subparsers(dest="devices_command", required=True)
    imp = dsub.add_parser("import", help="upsert devices from a CSV file (- for stdin)")
    imp.add_argument("file")
    exp = dsub.add_parser("export", help="write the registry as CSV (to stdout by default)")
    exp.add_argument("file", nargs="?", default="-")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one telemetry command; returns the process exit code."""
    args = _parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_level, json=False)
    try:
        if args.command == "migrate":
            applied = migrate(settings)
            print(f"schema {settings.database_schema}: {len(applied)} migrations applied")
        elif args.command == "upkeep":
            with connect(settings, autocommit=True) as conn:
                print(run_upkeep(conn, settings))
        elif args.devices_command == "import":
            text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
            records = parse_devices_csv(text)
            with connect(settings, autocommit=True) as conn:
                count = upsert_devices(conn, records)
            print(f"{count} devices imported")
        else:
            with connect(settings, autocommit=True) as conn:
                text = render_devices_csv(all_devices(conn))
            if args.file == "-":
                sys.stdout.write(text)
            else:
                Path(args.file).write_text(text, "utf-8")
    except (TelemetryError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
