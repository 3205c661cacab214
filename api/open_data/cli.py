"""``python -m api opendata refresh [--from D --to D] [--feed F]`` (materialise the complete
days now, waiting for a running refresh to finish) and ``python -m api opendata status``."""

from __future__ import annotations

import argparse
import asyncio
from datetime import date

import psycopg

from api.config import ApiSettings
from api.open_data.refresh import ForcedRange, OpenDataRefresher
from telemetry.db import conninfo
from telemetry.settings import Settings
from telemetry.storage.open_data import MATERIALISED, feed_states


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``opendata`` command and its subcommands."""
    opendata = sub.add_parser("opendata", help="open-data feeds (docs/open_data.md)")
    osub = opendata.add_subparsers(dest="opendata_command", required=True)
    refresh = osub.add_parser(
        "refresh",
        help="materialise the complete days from each feed's watermark (waits for a running "
        "refresh); with --from, recompute those days whatever the watermark",
    )
    refresh.add_argument("--from", dest="first", type=date.fromisoformat, metavar="YYYY-MM-DD")
    refresh.add_argument(
        "--to", dest="last", type=date.fromisoformat, metavar="YYYY-MM-DD", help="default: today"
    )
    refresh.add_argument(
        "--feed", action="append", choices=list(MATERIALISED), help="default: every feed"
    )
    osub.add_parser("status", help="each materialised feed's watermark")


async def _status(settings: Settings) -> int:
    info = conninfo(settings, app="rasd-api-opendata")
    async with await psycopg.AsyncConnection.connect(info, autocommit=True) as conn:
        states = await feed_states(conn)
    print("feed\twatermark\ttimezone\trefreshed_at")
    for state in states.values():
        refreshed = state.refreshed_at.isoformat(timespec="seconds") if state.refreshed_at else "-"
        print(f"{state.feed}\t{state.watermark or '-'}\t{state.timezone}\t{refreshed}")
    return 0


def run(args: argparse.Namespace, settings: Settings, api: ApiSettings) -> int:
    """Run one ``opendata`` subcommand; returns the exit code."""
    if args.opendata_command == "status":
        return asyncio.run(_status(settings))
    forced = None
    if args.first is not None:
        forced = ForcedRange(args.first, args.last or date.max)
    elif args.last is not None:
        print("error: --to needs --from")
        return 2
    feeds = tuple(args.feed) if args.feed else MATERIALISED
    refresher = OpenDataRefresher(settings, api)
    report = asyncio.run(refresher.refresh_once(wait=True, forced=forced, feeds=feeds))
    for feed, days in report.days.items():
        span = f" ({days[0]} .. {days[-1]})" if days else ""
        print(f"{feed}: {len(days)} days{span}")
    print(f"done in {report.seconds:.1f} s")
    return 0
