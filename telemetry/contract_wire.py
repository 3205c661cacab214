"""Device contract v1 as msgspec Structs: the decoder's fast path (see docs/contract.md).

These accept a subset of what the pydantic models in ``telemetry.contract`` accept, never more:
strict types (``"31.6"`` is not a number, ``1`` is not a boolean), the same bounds, unknown keys
ignored. ``ts`` is epoch milliseconds in the contract's range, or a string that the contract's
own ``parse_ts`` parses.
Whatever these refuse goes through the pydantic models, which name the reason.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec

from telemetry.contract import MAX_EPOCH_MS, MAX_SEQ, MIN_EPOCH_MS, FaultName
from telemetry.topics import Channel

_Ts = Annotated[int, msgspec.Meta(ge=MIN_EPOCH_MS, le=MAX_EPOCH_MS)] | str
_Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
_NonNegative = Annotated[float, msgspec.Meta(ge=0)]
_Route = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class PositionWire(msgspec.Struct, frozen=True):
    """A GPS fix from a bus or a garbage truck."""

    ts: _Ts
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    speed_kmh: _NonNegative | None = None
    heading_deg: Annotated[float, msgspec.Meta(ge=0, lt=360)] | None = None
    accuracy_m: _NonNegative | None = None
    route: _Route | None = None
    seq: _Seq | None = None


class EnergyWire(msgspec.Struct, frozen=True):
    """A streetlight's meter reading and lamp state."""

    ts: _Ts
    energy_wh: _NonNegative
    power_w: _NonNegative | None = None
    voltage_v: _NonNegative | None = None
    current_a: _NonNegative | None = None
    power_factor: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    lamp_on: bool | None = None
    dim_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None
    seq: _Seq | None = None


class FaultWire(msgspec.Struct, frozen=True):
    """A TALQ fault condition starting (``active``) or ending on a streetlight."""

    ts: _Ts
    fault: FaultName
    active: bool
    detail: Annotated[str, msgspec.Meta(max_length=1024)] | None = None


WireReport = PositionWire | EnergyWire | FaultWire

# Decoders are built once (building one per call costs more than decoding a report).
OBJECT_DECODER: Final[dict[Channel, msgspec.json.Decoder[WireReport]]] = {
    Channel.POSITION: msgspec.json.Decoder(PositionWire),
    Channel.ENERGY: msgspec.json.Decoder(EnergyWire),
    Channel.FAULT: msgspec.json.Decoder(FaultWire),
}
ARRAY_DECODER: Final[dict[Channel, msgspec.json.Decoder[list[WireReport]]]] = {
    Channel.POSITION: msgspec.json.Decoder(list[PositionWire]),
    Channel.ENERGY: msgspec.json.Decoder(list[EnergyWire]),
    Channel.FAULT: msgspec.json.Decoder(list[FaultWire]),
}
