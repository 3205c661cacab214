"""The HTTP gateways on one port: OsmAnd / Traccar Client at ``/``, OwnTracks' HTTP mode at
``/owntracks``, Traccar's JSON forwarding at ``/traccar``. A request is answered 200 only once
its fixes are confirmed by the broker; 4xx says what was wrong, 503 asks the device to retry."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ingest.gateways.forwarder import AckClock, Forwarder, NotSafe
from ingest.gateways.identities import IdentityBook
from ingest.gateways.metrics import GatewayMetrics
from telemetry.protocols.osmand import parse_osmand
from telemetry.protocols.owntracks import parse_owntracks_http
from telemetry.protocols.reports import Refusal, group_reports
from telemetry.protocols.traccar_forward import parse_traccar_forward
from telemetry.protocols.tracker_fix import HttpRequestView, NotStored, TrackerFix
from telemetry.topics import Fleet

MAX_BODY_BYTES = 64 * 1024
Parser = Callable[[HttpRequestView], TrackerFix | NotStored | Refusal]


@dataclass(frozen=True, slots=True)
class _Endpoint:
    protocol: str
    parse: Parser
    ok: Callable[[], Response]


def _empty_ok() -> Response:
    return Response(status_code=200)


def _owntracks_ok() -> Response:
    # The OwnTracks app expects a JSON array (of messages for it) in every answer.
    return JSONResponse([])


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(text + "\n", status_code=status, headers=headers)


@dataclass(kw_only=True)
class HttpGateway:
    """Turns requests into contract fixes, files what it refuses, answers after the PUBACK."""

    book: IdentityBook
    forwarder: Forwarder
    metrics: GatewayMetrics

    def app(self) -> Starlette:
        """The ASGI application for the OsmAnd port."""
        endpoints = {
            "/": _Endpoint("osmand", parse_osmand, _empty_ok),
            "/owntracks": _Endpoint("owntracks", parse_owntracks_http, _owntracks_ok),
            "/traccar": _Endpoint("traccar", parse_traccar_forward, _empty_ok),
        }
        routes = [
            Route(path, self._route(endpoint), methods=["GET", "POST"])
            for path, endpoint in endpoints.items()
        ]
        return Starlette(routes=routes)

    def _route(self, endpoint: _Endpoint) -> Callable[[Request], object]:
        async def handle(request: Request) -> Response:
            return await self._handle(endpoint, request)

        return handle

    async def _handle(self, endpoint: _Endpoint, request: Request) -> Response:
        clock = AckClock.start(self.metrics, endpoint.protocol)
        declared = request.headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _text(413, f"body over {MAX_BODY_BYTES} bytes")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _text(413, f"body over {MAX_BODY_BYTES} bytes")
        view = HttpRequestView(
            method=request.method,
            query=tuple(request.query_params.multi_items()),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            received_ms=time.time_ns() // 1_000_000,
        )
        try:
            # Dead letters keep what came in: the body, or for a GET the query as sent.
            raw = body or request.url.query.encode()
            response = await self._answer(endpoint, view, raw)
        except NotSafe as exc:
            return _text(503, f"not stored, send again: {exc}", {"Retry-After": "5"})
        if response.status_code == 200:
            clock.acked()
        return response

    async def _answer(self, endpoint: _Endpoint, view: HttpRequestView, raw: bytes) -> Response:
        result = endpoint.parse(view)
        if isinstance(result, Refusal):
            await self.forwarder.refuse(endpoint.protocol, result)
            return _text(400, result.reason)
        if isinstance(result, NotStored):
            return endpoint.ok()
        device = await self.book.resolve(endpoint.protocol, result.identity, Fleet.TRUCK)
        if device is None:
            refusal = Refusal(
                reason_code="unknown_identity",
                detail=f"id {result.identity!r} is no device's external_id in the registry",
                raw=raw,
                identity=result.identity,
            )
            await self.forwarder.refuse(endpoint.protocol, refusal)
            return _text(403, refusal.reason)
        reports = group_reports(result.identity, list(result.positions))
        await self.forwarder.deliver(endpoint.protocol, device, reports, [])
        return endpoint.ok()
