"""``python -m api``: run the API server; ``python -m api tokens ...``: manage API tokens."""

from __future__ import annotations

import argparse
import asyncio
import sys

import psycopg
import uvicorn

from alerts.errors import AlertsError
from api.auth import Role, new_token, token_digest
from api.config import ApiSettings
from api.open311 import cli as complaints_cli
from api.open_data import cli as opendata_cli
from telemetry.db import conninfo
from telemetry.errors import TelemetryError
from telemetry.logs import configure_logging
from telemetry.settings import Settings
from telemetry.storage.tokens import StoredToken, insert_token, list_tokens, revoke_token


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the HTTP server (the default)")
    tokens = sub.add_parser("tokens", help="API tokens")
    tsub = tokens.add_subparsers(dest="tokens_command", required=True)
    create = tsub.add_parser("create", help="create a token and print it (shown only once)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument(
        "--district",
        action="append",
        default=[],
        metavar="D",
        help="district a crew token covers (repeat for several)",
    )
    create.add_argument("--label", help="who holds it (recorded as the actor of alert changes)")
    create.add_argument(
        "--print-url",
        action="store_true",
        help="print the page URL with the token (map for operator/admin, /crew for crew)",
    )
    tsub.add_parser("list", help="list tokens (never the tokens themselves)")
    revoke = tsub.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("token_id", type=int)
    complaints_cli.add_parser(sub)
    opendata_cli.add_parser(sub)
    return parser


def serve(settings: Settings, api: ApiSettings) -> None:
    """Run uvicorn until SIGTERM/SIGINT; the lifespan connects to the database and broker."""
    from api.app import create_app  # the app pulls in FastAPI; token commands stay fast

    uvicorn.run(
        create_app(settings, api),
        host=api.host,
        port=api.port,
        ws="websockets-sansio",
        ws_ping_interval=api.ws_ping_s,
        ws_ping_timeout=api.ws_ping_s,
        access_log=False,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=10,
    )


def page_url(api: ApiSettings, role: Role, token: str) -> str:
    """The page for the role, with the token in the fragment (never sent to the server)."""
    base = api.public_url or f"http://{api.host}:{api.port}"
    path = "/crew" if role is Role.CREW else "/"
    return f"{base.rstrip('/')}{path}#token={token}"


def _describe(row: StoredToken) -> str:
    districts = ",".join(row.districts) or "-"
    revoked = row.revoked_at.isoformat(timespec="seconds") if row.revoked_at else "-"
    return (
        f"{row.token_id}\t{row.role}\t{districts}\t{row.label or '-'}\t"
        f"{row.created_at.isoformat(timespec='seconds')}\t{revoked}"
    )


async def _tokens(args: argparse.Namespace, settings: Settings, api: ApiSettings) -> int:
    async with await psycopg.AsyncConnection.connect(
        conninfo(settings, app="rasd-api-tokens"), autocommit=True
    ) as conn:
        if args.tokens_command == "create":
            role = Role(args.role)
            districts = sorted({d.strip() for d in args.district if d.strip()})
            if role is Role.CREW and not districts:
                print("error: a crew token needs --district", file=sys.stderr)
                return 2
            token = new_token()
            row = await insert_token(conn, token_digest(token), role.value, districts, args.label)
            # Only the token on stdout, so  TOKEN=$(python -m api tokens create ...)  works.
            print(page_url(api, role, token) if args.print_url else token)
            print(f"created token {row.token_id} ({role.value})", file=sys.stderr)
        elif args.tokens_command == "list":
            print("id\trole\tdistricts\tlabel\tcreated_at\trevoked_at")
            for row in await list_tokens(conn):
                print(_describe(row))
        else:
            revoked = await revoke_token(conn, args.token_id)
            if revoked is None:
                print(f"error: no token {args.token_id}", file=sys.stderr)
                return 1
            print(_describe(revoked))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    settings = Settings()
    api = ApiSettings()
    if args.command in (None, "serve"):
        configure_logging(settings.log_level, json=settings.log_json)
        serve(settings, api)
        return 0
    configure_logging(settings.log_level, json=False)
    if args.command == "opendata":
        try:
            return opendata_cli.run(args, settings, api)
        except (psycopg.Error, TelemetryError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if args.command == "complaints":
        try:
            return complaints_cli.run(args, settings, api)
        except (psycopg.Error, TelemetryError, AlertsError, OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    try:
        return asyncio.run(_tokens(args, settings, api))
    except (psycopg.Error, TelemetryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
