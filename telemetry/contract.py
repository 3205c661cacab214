"""Device contract v1: the JSON reports devices publish (see docs/contract.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from telemetry.topics import Channel

MAX_SEQ: Final = 2**63 - 1

FaultName = Literal[
    "lampFailure",
    "controlGearFailure",
    "supplyLoss",
    "supplyVoltageTooHigh",
    "supplyVoltageTooLow",
    "lampUnexpectedOn",
    "powerFactorTooLow",
    "temperatureTooHigh",
    "orientationChanged",
    "impactDetected",
    "communicationFailure",
    "relayFailure",
    "cabinetDoorOpen",
]
#: The TALQ fault names, in the order above.
FAULT_NAMES: Final[tuple[FaultName, ...]] = get_args(FaultName)

# Epoch milliseconds outside these bounds cannot be a device clock; they are garbage.
MIN_EPOCH_MS: Final = 0
MAX_EPOCH_MS: Final = 253402300799999  # 9999-12-31T23:59:59.999Z


def parse_ts(value: Any) -> datetime:
    """Parse ``ts`` (RFC 3339 with an offset, or integer epoch ms) to an aware datetime."""
    if isinstance(value, bool):
        raise ValueError("ts must be an RFC 3339 string or integer epoch milliseconds, not a bool")
    if isinstance(value, int):
        if not MIN_EPOCH_MS <= value <= MAX_EPOCH_MS:
            raise ValueError(f"ts {value} is out of range for epoch milliseconds")
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        if len(value) > 40 or len(value) < 20 or value[10] not in "Tt ":
            raise ValueError("ts must be RFC 3339 date-time, e.g. 2026-11-25T21:04:05+01:00")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"ts {value!r} is not an RFC 3339 date-time") from None
        if parsed.tzinfo is None:
            raise ValueError(f"ts {value!r} has no UTC offset")
        return parsed
    raise ValueError("ts must be an RFC 3339 string or integer epoch milliseconds")


Timestamp = Annotated[datetime, BeforeValidator(parse_ts)]
Seq = Annotated[int, Field(ge=0, le=MAX_SEQ)]
Route = Annotated[str, Field(min_length=1, max_length=64)]


class _Report(BaseModel):
    # Strict: "12.5" is not a number; unknown keys are ignored so devices can add fields later.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, allow_inf_nan=False)

    ts: Timestamp


class PositionReport(_Report):
    """A GPS fix from a bus or a garbage truck."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    speed_kmh: float | None = Field(default=None, ge=0)
    heading_deg: float | None = Field(default=None, ge=0, lt=360)
    accuracy_m: float | None = Field(default=None, ge=0)
    route: Route | None = None
    seq: Seq | None = None


class EnergyReport(_Report):
    """A streetlight's meter reading and lamp state."""

    energy_wh: float = Field(ge=0)
    power_w: float | None = Field(default=None, ge=0)
    voltage_v: float | None = Field(default=None, ge=0)
    current_a: float | None = Field(default=None, ge=0)
    power_factor: float | None = Field(default=None, ge=0, le=1)
    lamp_on: bool | None = None
    dim_pct: float | None = Field(default=None, ge=0, le=100)
    seq: Seq | None = None


class FaultReport(_Report):
    """A TALQ fault condition starting (``active``) or ending on a streetlight."""

    fault: FaultName
    active: bool
    detail: str | None = Field(default=None, max_length=1024)


Report = PositionReport | EnergyReport | FaultReport

REPORT_MODEL: Final[
    dict[Channel, type[PositionReport] | type[EnergyReport] | type[FaultReport]]
] = {
    Channel.POSITION: PositionReport,
    Channel.ENERGY: EnergyReport,
    Channel.FAULT: FaultReport,
}
