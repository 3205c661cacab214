"""``python -m telemetry energy``: import the utility's bills, reconcile a month, measure a
cabinet's baseline (docs/energy_accounting.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from telemetry.db import connect
from telemetry.energy_accounting.bills import parse_bills
from telemetry.energy_accounting.dispute import render_dispute
from telemetry.energy_accounting.month import by_district, reconcile_month, totals
from telemetry.energy_accounting.reconcile import AccountingError, Thresholds
from telemetry.energy_accounting.tariffs import EXAMPLE_FILE, load_tariffs
from telemetry.months import parse_month
from telemetry.settings import Settings
from telemetry.storage.energy_accounting import (
    import_bills,
    load_month,
    save_month,
    set_baseline,
    stored_month,
)


def _month(text: str) -> str:
    try:
        parse_month(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def energy_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``energy`` command and its subcommands to ``sub``."""
    energy = sub.add_parser("energy", help="energy accounting (docs/energy_accounting.md)")
    esub = energy.add_subparsers(dest="energy_command", required=True)
    bills = esub.add_parser("bills", help="the utility's bills")
    bsub = bills.add_subparsers(dest="bills_command", required=True)
    imp = bsub.add_parser("import", help="upsert bills by (meter, period) from CSV or JSON")
    imp.add_argument("file", help="CSV or JSON file (- for stdin, read as CSV unless JSON)")
    rec = esub.add_parser("reconcile", help="reconcile one month and store the result")
    rec.add_argument("--month", required=True, type=_month, help="YYYY-MM (local time)")
    rec.add_argument(
        "--tariffs",
        type=Path,
        default=None,
        help="tariff file (default: RASD_ENERGY_TARIFFS_FILE, else the shipped EXAMPLE)",
    )
    dispute = esub.add_parser(
        "dispute", help="a printable dispute summary (HTML) of a flagged cabinet month"
    )
    dispute.add_argument("cabinet_id")
    dispute.add_argument("--month", required=True, type=_month, help="YYYY-MM (reconciled)")
    dispute.add_argument("--lang", choices=("fr", "ar"), default="fr")
    dispute.add_argument("--out", default="-", help="file to write (default: stdout)")
    base = esub.add_parser("baseline", help="measure a cabinet's pre-retrofit baseline")
    base.add_argument("cabinet_id")
    base.add_argument("--from", dest="from_month", required=True, type=_month)
    base.add_argument("--to", dest="to_month", required=True, type=_month)


def run_energy(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``energy`` subcommand; returns the exit code (errors raise TelemetryError)."""
    if args.energy_command == "bills":
        name = args.file
        text = sys.stdin.read() if name == "-" else Path(name).read_text("utf-8")
        parsed = parse_bills(text, name)
        with connect(settings, autocommit=True) as conn:
            done = import_bills(conn, parsed)
        print(
            f"{len(parsed.bills)} bills imported: {done.created} new, {done.updated} changed, "
            f"{done.unchanged} unchanged"
        )
        return 0
    if args.energy_command == "dispute":
        with connect(settings, autocommit=True) as conn:
            rows = stored_month(conn, parse_month(args.month))
        row = next((r for r in rows if r.cabinet_id == args.cabinet_id), None)
        if row is None:
            raise AccountingError(
                f"cabinet {args.cabinet_id} is not in the {args.month} reconciliation"
            )
        if not row.flags:
            raise AccountingError(f"cabinet {args.cabinet_id} has no flag in {args.month}")
        html = render_dispute(row, args.lang)
        if args.out == "-":
            sys.stdout.write(html)
        else:
            Path(args.out).write_text(html, "utf-8")
        return 0
    if args.energy_command == "baseline":
        with connect(settings, autocommit=True) as conn:
            baseline = set_baseline(
                conn, args.cabinet_id, parse_month(args.from_month), parse_month(args.to_month)
            )
        print(
            f"baseline of {baseline.cabinet_id}: {baseline.kwh_per_burning_hour:.3f} kWh per "
            f"burning hour ({baseline.from_month:%Y-%m} to {baseline.to_month:%Y-%m})"
        )
        return 0
    configured = Path(settings.energy_tariffs_file) if settings.energy_tariffs_file else None
    path = args.tariffs or configured or EXAMPLE_FILE
    if path == EXAMPLE_FILE:
        print(f"warning: prices from the EXAMPLE tariff file {EXAMPLE_FILE}", file=sys.stderr)
    tariffs = load_tariffs(path)
    thresholds = Thresholds()
    month = parse_month(args.month)
    with connect(settings, autocommit=True) as conn:
        data = load_month(conn, month, thresholds=thresholds)
        rows = reconcile_month(data, tariffs, thresholds=thresholds)
        save_month(conn, month, rows, tariff_source=str(path), thresholds=thresholds)
    city = totals(rows, "city")
    print(
        f"{month:%Y-%m}: {city.cabinets} cabinets, {city.lights} lights; modelled "
        f"{city.modelled_kwh:,.0f} kWh, metered {city.metered_kwh:,.0f} kWh "
        f"({city.metered_cabinets} cabinets), billed {city.billed_kwh:,.0f} kWh for "
        f"{city.billed_dh:,.2f} DH (tariff: {city.recomputed_dh:,.2f} DH)"
    )
    for district in by_district(rows):
        flags = ", ".join(f"{k} {v}" for k, v in district.flags.items()) or "no flags"
        print(f"  {district.key or '(no district)'}: {district.cabinets} cabinets; {flags}")
    for row in rows:
        for flag in row.flags:
            print(f"  {row.cabinet_id} {flag.code.value}: {flag.message}")
    return 0
