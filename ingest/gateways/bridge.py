"""Protocols that arrive over MQTT (OwnTracks, ChirpStack, The Things Stack): each message is
translated, republished on its contract topic and only then acknowledged to the broker.

Messages are handled concurrently (a bounded window), but acknowledged in the order they came,
as MQTT requires of QoS 1 PUBACKs; one that cannot be made safe is retried, never skipped.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from ingest.gateways.forwarder import NotSafe
from telemetry.backoff import Backoff
from telemetry.mqtt_session.client import MqttSession
from telemetry.mqtt_session.events import Message
from telemetry.topics import filter_matches

log = structlog.get_logger("ingest.gateways.bridge")


Handler = Callable[[str, bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class BridgeRoute:
    """One bridged protocol: its subscription filter and its handler (raises ``NotSafe``)."""

    protocol: str
    topic_filter: str
    handle: Handler


@dataclass(kw_only=True)
class MqttBridge:
    """Feeds bridged messages to their handlers and acknowledges each once it is safe."""

    session: MqttSession
    routes: list[BridgeRoute]
    window: int = 256
    grace_s: float = 30.0  # shutdown: how long messages in hand may take to become safe

    def route_for(self, topic: str) -> BridgeRoute | None:
        """The route whose filter matches ``topic``."""
        return next((r for r in self.routes if filter_matches(r.topic_filter, topic)), None)

    async def run(self) -> None:
        """Bridge until cancelled; on cancellation, finish and acknowledge what is in hand."""
        pending: collections.deque[tuple[Message, asyncio.Task[None]]] = collections.deque()
        try:
            async for message in self.session.messages():
                pending.append((message, asyncio.create_task(self._safely(message))))
                await self._ack_done(pending, wait=len(pending) >= self.window)
        finally:
            # Shutdown: let the messages in hand finish (their handlers are bounded by the
            # forwarder's ack timeout), acknowledge them in order, then stop.
            await asyncio.shield(self._finish(pending))

    async def _finish(self, pending: collections.deque[tuple[Message, asyncio.Task[None]]]) -> None:
        if pending:
            _, late = await asyncio.wait([t for _, t in pending], timeout=self.grace_s)
            for task in late:  # left unacknowledged: the broker sends them again
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._ack_done(pending, wait=False)

    async def _ack_done(
        self, pending: collections.deque[tuple[Message, asyncio.Task[None]]], *, wait: bool
    ) -> None:
        if wait and pending:
            await pending[0][1]
        while pending and pending[0][1].done():
            message, task = pending.popleft()
            if task.cancelled():
                continue
            if (error := task.exception()) is not None:
                # A bug, not bad input (handlers file bad input): the message stays unacked.
                log.error("bridge_handler_failed", topic=message.topic, error=repr(error))
                continue
            self.session.ack(message)

    async def _safely(self, message: Message) -> None:
        route = self.route_for(message.topic)
        if route is None:
            log.warning("bridge_unrouted_topic", topic=message.topic)
            return  # acknowledged: nothing of ours (a subscription changed under us)
        backoff = Backoff(base=0.2, cap=5.0)
        while True:
            try:
                await route.handle(message.topic, message.payload)
                return
            except NotSafe as exc:
                delay = backoff.next_delay()
                log.warning(
                    "bridge_retry", protocol=route.protocol, error=str(exc), retry_in_s=delay
                )
                await asyncio.sleep(delay)
