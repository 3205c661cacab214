"""MQTT topic shapes of device contract v1: ``{prefix}/{fleet}/{device_id}/{channel}``."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

from telemetry.errors import Rejection

DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Fleet(StrEnum):
    """The three kinds of device Rasd tracks."""

    BUS = "bus"
    TRUCK = "truck"
    LIGHT = "light"


class Channel(StrEnum):
    """What a message reports."""

    POSITION = "position"
    ENERGY = "energy"
    FAULT = "fault"


CHANNELS_BY_FLEET: dict[Fleet, frozenset[Channel]] = {
    Fleet.BUS: frozenset({Channel.POSITION}),
    Fleet.TRUCK: frozenset({Channel.POSITION}),
    Fleet.LIGHT: frozenset({Channel.ENERGY, Channel.FAULT}),
}


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed device topic."""

    fleet: Fleet
    device_id: str
    channel: Channel


def topic_name(prefix: str, fleet: Fleet, device_id: str, channel: Channel) -> str:
    """The topic a device publishes on."""
    return f"{prefix}/{fleet.value}/{device_id}/{channel.value}"


def subscription_filter(prefix: str) -> str:
    """Everything under ``prefix``, so that malformed topics reach the ingestor's dead letters."""
    return f"{prefix}/#"


# Device topics repeat all day (one per light channel and vehicle: ~150,000 in the city), so
# parsing each once is worth a bounded cache on the ingest hot path.
@functools.lru_cache(maxsize=1 << 18)
def parse_topic(topic: str, prefix: str) -> Topic:
    """Split a topic into fleet, device id and channel, or raise a ``Rejection``."""
    head = prefix + "/"
    if not topic.startswith(head):
        raise Rejection("unknown_topic", f"topic {topic!r} is not under {prefix!r}")
    parts = topic[len(head) :].split("/")
    if len(parts) != 3:
        raise Rejection("unknown_topic", f"topic {topic!r} is not {prefix}/fleet/device_id/channel")
    fleet_s, device_id, channel_s = parts
    try:
        fleet = Fleet(fleet_s)
        channel = Channel(channel_s)
    except ValueError:
        raise Rejection(
            "unknown_topic", f"topic {topic!r}: unknown fleet or channel {fleet_s}/{channel_s}"
        ) from None
    if channel not in CHANNELS_BY_FLEET[fleet]:
        raise Rejection("unknown_topic", f"topic {topic!r}: a {fleet} has no {channel} channel")
    if not DEVICE_ID_RE.match(device_id):
        raise Rejection(
            "unknown_topic", f"topic {topic!r}: device id must match [A-Za-z0-9_-]{{1,64}}"
        )
    return Topic(fleet, device_id, channel)


def device_id_of(topic: str, prefix: str) -> str | None:
    """The device id level of a topic under ``prefix``, without validating the rest."""
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix) + 1 :].split("/")
    return parts[1] if len(parts) == 3 else None


def filter_matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches an MQTT topic filter (``+`` one level, ``#`` the rest).

    A ``$share/<group>/`` prefix is ignored; topics starting with ``$`` match no filter that
    starts with a wildcard (MQTT v5 4.7.2)."""
    if topic_filter.startswith("$share/"):
        topic_filter = topic_filter.split("/", 2)[2] if topic_filter.count("/") >= 2 else ""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    levels = topic.split("/")
    for i, part in enumerate(topic_filter.split("/")):
        if part == "#":
            return True
        if i >= len(levels) or (part != "+" and part != levels[i]):
            return False
    return len(topic_filter.split("/")) == len(levels)
