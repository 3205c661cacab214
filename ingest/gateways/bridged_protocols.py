"""The protocols bridged from MQTT: OwnTracks, ChirpStack v4 and The Things Stack v3 uplinks,
each a handler that makes one message safe (published or dead-lettered) or raises NotSafe."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from ingest.gateways.bridge import BridgeRoute
from ingest.gateways.forwarder import AckClock, Forwarder
from ingest.gateways.identities import IdentityBook
from telemetry.protocols.lorawan_profile import (
    MappedUplink,
    ProfileSet,
    load_profiles,
    map_uplink,
    shipped_profiles_folder,
)
from telemetry.protocols.lorawan_uplink import (
    Uplink,
    parse_chirpstack_uplink,
    parse_things_stack_uplink,
)
from telemetry.protocols.owntracks import parse_owntracks_mqtt
from telemetry.protocols.reports import Refusal, group_reports
from telemetry.protocols.tracker_fix import NotStored
from telemetry.settings import Settings
from telemetry.topics import Fleet

# How many trailing topic levels each protocol's own topic has: a deployment may subscribe
# under a prefix of its own (``city/owntracks/+/+``); the parsers read only these levels.
_OWN_LEVELS = {"owntracks": 3, "chirpstack": 6, "things_stack": 5}


def protocol_topic(protocol: str, topic: str) -> str:
    """``topic`` without a deployment's leading levels: the shape the protocol defines."""
    return "/".join(topic.split("/")[-_OWN_LEVELS[protocol] :])


def unknown_identity(identity: str, raw: bytes, what: str) -> Refusal:
    """The refusal of a message from a device the registry does not know."""
    return Refusal(
        reason_code="unknown_identity",
        detail=f"{what} {identity} is no device's external_id in the registry",
        raw=raw,
        identity=identity,
    )


@dataclass(kw_only=True)
class OwnTracksBridge:
    """OwnTracks location messages from ``owntracks/USER/DEVICE`` to contract positions."""

    book: IdentityBook
    forwarder: Forwarder
    protocol: str = "owntracks"

    async def handle(self, topic: str, payload: bytes) -> None:
        """Make one OwnTracks message safe."""
        clock = AckClock.start(self.forwarder.metrics, self.protocol)
        result = parse_owntracks_mqtt(protocol_topic(self.protocol, topic), payload)
        if isinstance(result, Refusal):
            await self.forwarder.refuse(self.protocol, result)
        elif not isinstance(result, NotStored):
            device = await self.book.resolve(self.protocol, result.identity, Fleet.TRUCK)
            if device is None:
                refusal = unknown_identity(result.identity, payload, "OwnTracks user/device")
                await self.forwarder.refuse(self.protocol, refusal)
            else:
                reports = group_reports(result.identity, result.positions)
                await self.forwarder.deliver(self.protocol, device, reports, [])
        clock.acked()


@dataclass(kw_only=True)
class LorawanBridge:
    """Uplinks of a LoRaWAN network server to energy readings and fault events, through the
    device profiles; remembers each node's status bits so that faults go out on change."""

    book: IdentityBook
    forwarder: Forwarder
    profiles: ProfileSet
    protocol: str  # "chirpstack" or "things_stack"
    status: dict[str, int | None] = field(default_factory=dict)
    # The bridge handles messages concurrently; one node's uplinks must still be mapped in the
    # order they came, or a fault cleared right after it was raised would be lost.
    _turns: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def handle(self, topic: str, payload: bytes) -> None:
        """Make one uplink safe."""
        clock = AckClock.start(self.forwarder.metrics, self.protocol)
        parse = (
            parse_chirpstack_uplink if self.protocol == "chirpstack" else parse_things_stack_uplink
        )
        uplink = parse(protocol_topic(self.protocol, topic), payload)
        if isinstance(uplink, Refusal):
            await self.forwarder.refuse(self.protocol, uplink)
        else:
            # Taken before any other await: tasks start in arrival order and asyncio's locks
            # are fair, so each node's uplinks go through one at a time, in order.
            async with self._turns.setdefault(uplink.dev_eui, asyncio.Lock()):
                await self._deliver(uplink)
        clock.acked()

    async def _deliver(self, uplink: Uplink) -> None:
        device = await self.book.resolve(self.protocol, uplink.dev_eui, Fleet.LIGHT)
        if device is None:
            await self.forwarder.refuse(
                self.protocol, unknown_identity(uplink.dev_eui, uplink.raw, "DevEUI")
            )
            return
        profile = self.profiles.profile_for(uplink)
        mapped: MappedUplink | Refusal = (
            profile
            if isinstance(profile, Refusal)
            else map_uplink(profile, uplink, previous_status=self.status.get(uplink.dev_eui))
        )
        if isinstance(mapped, Refusal):
            await self.forwarder.deliver(self.protocol, device, [], [mapped])
            return
        reports = group_reports(uplink.dev_eui, mapped.reports)
        await self.forwarder.deliver(self.protocol, device, reports, [])
        # Remembered only once the change is published: a failed delivery is retried as new.
        self.status[uplink.dev_eui] = mapped.status


def bridged_filters(settings: Settings) -> dict[str, str]:
    """protocol -> topic filter of the bridges the settings enable (empty filter: off)."""
    filters = {
        "owntracks": settings.gateway_owntracks_topics,
        "chirpstack": settings.gateway_chirpstack_topics,
        "things_stack": settings.gateway_things_stack_topics,
    }
    return {protocol: f for protocol, f in filters.items() if f}


def bridge_routes(
    settings: Settings, book: IdentityBook, forwarder: Forwarder
) -> list[BridgeRoute]:
    """The enabled bridges with their handlers; LoRaWAN profiles are loaded (and checked) here."""
    filters = bridged_filters(settings)
    routes: list[BridgeRoute] = []
    if "owntracks" in filters:
        owntracks = OwnTracksBridge(book=book, forwarder=forwarder)
        routes.append(BridgeRoute("owntracks", filters["owntracks"], owntracks.handle))
    lorawan = [p for p in ("chirpstack", "things_stack") if p in filters]
    if lorawan:
        folder = settings.gateway_lorawan_profiles
        profiles = load_profiles(Path(folder) if folder else shipped_profiles_folder())
        for protocol in lorawan:
            bridge = LorawanBridge(
                book=book, forwarder=forwarder, profiles=profiles, protocol=protocol
            )
            routes.append(BridgeRoute(protocol, filters[protocol], bridge.handle))
    return routes
