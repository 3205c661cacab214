"""What a protocol decoder yields: contract v1 reports for a device known by its protocol
identity, and refusals that go to ``dead_letters`` with their raw bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from telemetry.topics import Channel


class Position(msgspec.Struct, omit_defaults=True, frozen=True):
    """A contract v1 position report (docs/contract.md); ``ts`` in epoch milliseconds."""

    ts: int
    lat: float
    lon: float
    speed_kmh: float | None = None
    heading_deg: float | None = None
    accuracy_m: float | None = None
    route: str | None = None
    seq: int | None = None


class Energy(msgspec.Struct, omit_defaults=True, frozen=True):
    """A contract v1 energy report; ``ts`` in epoch milliseconds."""

    ts: int
    energy_wh: float
    power_w: float | None = None
    voltage_v: float | None = None
    current_a: float | None = None
    power_factor: float | None = None
    lamp_on: bool | None = None
    dim_pct: float | None = None
    seq: int | None = None


class Fault(msgspec.Struct, omit_defaults=True, frozen=True):
    """A contract v1 fault event (a TALQ fault name starting or ending); ``ts`` in epoch ms."""

    ts: int
    fault: str
    active: bool
    detail: str | None = None


Report = Position | Energy | Fault

CHANNEL_OF: dict[type[Report], Channel] = {
    Position: Channel.POSITION,
    Energy: Channel.ENERGY,
    Fault: Channel.FAULT,
}


@dataclass(kw_only=True, frozen=True, slots=True)
class DeviceReports:
    """Reports of one device on one channel, published as one contract v1 message (an array
    when there are several)."""

    identity: str  # the registry's external_id: IMEI, OsmAnd id, USER/DEVICE, DevEUI
    channel: Channel
    reports: tuple[Report, ...]

    def payload(self) -> bytes:
        """The contract v1 JSON payload: one object, or an array of them."""
        if len(self.reports) == 1:
            return msgspec.json.encode(self.reports[0])
        return msgspec.json.encode(self.reports)


@dataclass(kw_only=True, frozen=True, slots=True)
class Refusal:
    """Input a decoder refused, with the bytes as received; stored in ``dead_letters``."""

    reason_code: str  # short and stable, e.g. "bad_crc", "unknown_identity", "no_fix"
    detail: str
    raw: bytes
    identity: str | None = None
    element_index: int | None = None

    @property
    def reason(self) -> str:
        """The text stored in ``dead_letters.reason``: ``"<code>: <detail>"``."""
        return f"{self.reason_code}: {self.detail}"


def group_reports(identity: str, reports: Sequence[Report]) -> list[DeviceReports]:
    """Reports split per channel, keeping their order, one message per channel."""
    by_channel: dict[Channel, list[Report]] = {}
    for report in reports:
        by_channel.setdefault(CHANNEL_OF[type(report)], []).append(report)
    return [
        DeviceReports(identity=identity, channel=channel, reports=tuple(items))
        for channel, items in by_channel.items()
    ]
