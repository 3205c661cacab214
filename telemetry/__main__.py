"""``python -m telemetry``: migrate the schema, upkeep, import/export the device registry and the
equipment register."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from telemetry.db import connect
from telemetry.energy_cli import energy_parser, run_energy
from telemetry.equipment.files import (
    parse_assets,
    parse_models_csv,
    render_assets_csv,
    render_assets_geojson,
    render_models_csv,
)
from telemetry.equipment.ngsi_ld import register_entities
from telemetry.errors import TelemetryError
from telemetry.logs import configure_logging
from telemetry.maintenance_cli import maintenance_parser, run_maintenance
from telemetry.migrate import migrate
from telemetry.registry import parse_devices_csv, render_devices_csv
from telemetry.settings import Settings
from telemetry.storage.devices import all_devices, upsert_devices
from telemetry.storage.equipment import (
    all_assets,
    all_models,
    asset_history,
    import_assets,
    import_models,
    last_installed,
)
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
    _assets_parser(sub)
    energy_parser(sub)
    maintenance_parser(sub)
    return parser


def _assets_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    assets = sub.add_parser("assets", help="lighting equipment register (docs/equipment.md)")
    asub = assets.add_subparsers(dest="assets_command", required=True)
    imp = asub.add_parser(
        "import", help="upsert assets by asset_id from CSV or GeoJSON (- for stdin)"
    )
    imp.add_argument("file")
    models = asub.add_parser("import-models", help="upsert catalogue models from CSV")
    models.add_argument("file")
    exp = asub.add_parser("export", help="write the register (to stdout by default)")
    exp.add_argument("file", nargs="?", default="-")
    exp.add_argument("--format", choices=("csv", "geojson", "ngsi-ld"), default="csv")
    exp_models = asub.add_parser("export-models", help="write the model catalogue as CSV")
    exp_models.add_argument("file", nargs="?", default="-")
    history = asub.add_parser("history", help="one asset's history as JSON")
    history.add_argument("asset_id")


def _read(name: str) -> str:
    return sys.stdin.read() if name == "-" else Path(name).read_text("utf-8")


def _write(name: str, text: str) -> None:
    if name == "-":
        sys.stdout.write(text)
    else:
        Path(name).write_text(text, "utf-8")


def _assets(args: argparse.Namespace, settings: Settings) -> int:
    command = args.assets_command
    if command == "import":
        parsed = parse_assets(_read(args.file))
        with connect(settings, autocommit=True) as conn:
            done = import_assets(conn, parsed)
        print(
            f"{len(parsed.assets)} assets imported: {done.created} new, {done.updated} changed, "
            f"{done.unchanged} unchanged; {done.events} history events"
        )
    elif command == "import-models":
        models = parse_models_csv(_read(args.file))
        with connect(settings, autocommit=True) as conn:
            print(f"{import_models(conn, models)} models imported")
    elif command == "export-models":
        with connect(settings, autocommit=True) as conn:
            _write(args.file, render_models_csv(all_models(conn)))
    elif command == "export":
        with connect(settings, autocommit=True) as conn:
            assets = all_assets(conn)
            ngsi = args.format == "ngsi-ld"
            models = all_models(conn) if ngsi else []
            installed = last_installed(conn) if ngsi else {}
        if args.format == "csv":
            text = render_assets_csv(assets)
        elif args.format == "geojson":
            text = render_assets_geojson(assets)
        else:
            entities = register_entities(assets, models, installed)
            text = json.dumps(entities, ensure_ascii=False, indent=1) + "\n"
        _write(args.file, text)
    else:
        with connect(settings, autocommit=True) as conn:
            history = asset_history(conn, args.asset_id)
        if history is None:
            print(f"error: no asset {args.asset_id}", file=sys.stderr)
            return 1
        print(json.dumps(dataclasses.asdict(history), default=str, ensure_ascii=False, indent=1))
    return 0


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
        elif args.command == "assets":
            return _assets(args, settings)
        elif args.command == "energy":
            return run_energy(args, settings)
        elif args.command == "maintenance":
            return run_maintenance(args, settings)
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
