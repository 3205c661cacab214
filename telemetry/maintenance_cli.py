"""``python -m telemetry maintenance``: the monthly maintenance KPIs (run nightly) and Rasd's
check of completed work orders against the telemetry."""

from __future__ import annotations

import argparse
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telemetry.db import connect
from telemetry.settings import Settings
from telemetry.storage.equipment import DEFAULT_TIMEZONE
from telemetry.storage.maintenance_kpis import maintenance_kpis, store_month
from telemetry.storage.work_orders import verify_completed


def maintenance_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``maintenance`` commands to the telemetry CLI."""
    maintenance = sub.add_parser("maintenance", help="maintenance KPIs and work-order checks")
    msub = maintenance.add_subparsers(dest="maintenance_command", required=True)
    kpis = msub.add_parser("kpis", help="one local month's KPIs as JSON (docs/work_orders.md)")
    kpis.add_argument("--month", required=True, help="YYYY-MM")
    kpis.add_argument("--district", default=None)
    kpis.add_argument(
        "--store",
        action="store_true",
        help="compute the city and every district and store them for open data (replaces the "
        "month's stored figures)",
    )
    kpis.add_argument("--timezone", default=DEFAULT_TIMEZONE, help="local months' time zone")
    verify = msub.add_parser("verify", help="check done work orders against the telemetry now")
    verify.add_argument("--grace-s", type=float, default=3600.0)


def run_maintenance(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``maintenance`` command; returns the exit code."""
    if args.maintenance_command == "kpis":
        try:
            ZoneInfo(args.timezone)
        except (ValueError, ZoneInfoNotFoundError):
            print(f"error: unknown time zone {args.timezone!r}")
            return 2
    with connect(settings, autocommit=True) as conn:
        if args.maintenance_command == "kpis" and args.store:
            if args.district is not None:
                print("error: --store stores the whole city and every district: no --district")
                return 2
            complete = datetime.now(ZoneInfo(args.timezone)).date() - timedelta(days=1)
            try:
                rows = store_month(
                    conn, args.month, complete_until=complete, timezone=args.timezone
                )
            except ValueError as exc:
                print(f"error: {exc}")
                return 2
            areas = len({r.district for r in rows})
            print(f"{args.month}: {len(rows)} rows stored for {areas} areas (city and districts)")
        elif args.maintenance_command == "kpis":
            try:
                found = maintenance_kpis(
                    conn, args.month, district=args.district, timezone=args.timezone
                )
            except ValueError as exc:
                print(f"error: {exc}")
                return 2
            print(json.dumps(dataclasses.asdict(found), default=str, ensure_ascii=False, indent=1))
        else:
            checked = verify_completed(conn, datetime.now(UTC), grace_s=args.grace_s)
            reopened = sum(c.reopened for c in checked)
            print(f"{len(checked) - reopened} work orders verified, {reopened} reopened")
    return 0
