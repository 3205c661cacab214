"""``python -m api complaints import FILE`` (the national platform's export, CSV or JSON) and
``python -m api complaints link`` (link due pending complaints now)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg
from psycopg_pool import ConnectionPool

from api.config import ApiSettings
from telemetry.complaints.chikaya import SOURCE, detect_format, parse_complaints
from telemetry.complaints.services import SERVICES
from telemetry.db import conninfo
from telemetry.settings import Settings
from telemetry.storage.complaints import import_complaints


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``complaints`` command and its subcommands."""
    complaints = sub.add_parser("complaints", help="citizens' complaints (docs/open311.md)")
    csub = complaints.add_subparsers(dest="complaints_command", required=True)
    imp = csub.add_parser(
        "import", help="import the national platform's export (CSV or JSON; - for stdin)"
    )
    imp.add_argument("file")
    imp.add_argument("--format", choices=["csv", "json"], help="default: from the name/content")
    imp.add_argument("--source", default=SOURCE, help=f"platform name (default {SOURCE})")
    csub.add_parser("link", help="link the pending complaints that are due, now")


def run(args: argparse.Namespace, settings: Settings, api: ApiSettings) -> int:
    """Run one ``complaints`` subcommand; returns the exit code."""
    if args.complaints_command == "import":
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
        fmt = args.format or detect_format(args.file, text)
        parsed = parse_complaints(text, fmt, timezone=api.timezone)
        agencies = {s.code: s.agency for s in SERVICES}
        with psycopg.connect(conninfo(settings, app="rasd-complaints-import")) as conn:
            conn.autocommit = True
            counts = import_complaints(conn, args.source, parsed, agencies)
        print(
            f"{len(parsed)} complaints read: {counts.created} new, {counts.closed} closed, "
            f"{counts.unchanged} unchanged"
        )
        return 0
    from api.open311.desk import ComplaintDesk  # the linker pulls in numpy: only when linking

    info = conninfo(settings, app="rasd-complaints-link")
    with ConnectionPool(info, min_size=1, max_size=1, kwargs={"autocommit": True}) as pool:
        report = ComplaintDesk(api, pool).sweep_once()
    print(
        f"{report.linked} linked, {report.pending} still pending, {report.failed} failed "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(report.states.items())) or 'none due'})"
    )
    return 0
