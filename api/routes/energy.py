"""Energy per light, circuit and district, per local hour, day or month."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query

from api.deps import DbDep, ReadCity, RuntimeDep
from api.errors import ERROR_RESPONSES, ApiError
from api.runtime import Runtime
from api.schemas import EnergyOut, EnergyPeriodOut
from api.timerange import Unit, energy_range
from telemetry.storage.devices import get_device, list_devices
from telemetry.storage.energy import EnergyPeriod, Scope, group_energy, light_energy

router = APIRouter(prefix="/api/v1/energy", tags=["energy"], responses=ERROR_RESPONSES)

Key = Annotated[str, Path(min_length=1, max_length=200)]
UnitParam = Annotated[Literal["hour", "day", "month"], Query(description="period length")]
Start = Annotated[datetime | None, Query(description="RFC 3339; default: 24 periods back")]
End = Annotated[datetime | None, Query(description="RFC 3339; default: now")]


def _range(
    runtime: Runtime, unit: Unit, start: datetime | None, end: datetime | None
) -> tuple[ZoneInfo, datetime, datetime]:
    api = runtime.api
    tz = ZoneInfo(api.timezone)
    limit = {
        "hour": api.energy_max_hours,
        "day": api.energy_max_days,
        "month": api.energy_max_months,
    }[unit]
    span = energy_range(start, end, unit, tz, now=datetime.now(UTC), max_periods=limit)
    return tz, span.start, span.end


def energy_out(
    scope: Literal["light", "circuit", "district"],
    key: str,
    unit: Unit,
    tz: ZoneInfo,
    start: datetime,
    end: datetime,
    periods: list[EnergyPeriod],
) -> EnergyOut:
    """The answer: periods in local time and their total."""
    return EnergyOut(
        scope=scope,
        key=key,
        unit=unit,
        timezone=str(tz),
        start=start.astimezone(tz),
        end=end.astimezone(tz),
        total_wh=round(sum(p.energy_wh for p in periods), 3),
        periods=[
            EnergyPeriodOut(
                start=p.period.astimezone(tz),
                energy_wh=round(p.energy_wh, 3),
                lights=p.lights,
                hours=p.hours,
            )
            for p in periods
        ],
    )


@router.get("/lights/{device_id}", summary="A light's consumption per period")
async def energy_of_light(
    device_id: Key,
    _: ReadCity,
    conn: DbDep,
    runtime: RuntimeDep,
    unit: UnitParam = "hour",
    start: Start = None,
    end: End = None,
) -> EnergyOut:
    """Consumption of one light per local hour, day or month."""
    tz, lo, hi = _range(runtime, unit, start, end)
    device = await get_device(conn, device_id)
    if device is None or device.fleet != "light":
        raise ApiError(404, "not_found", f"no light {device_id}")
    periods = await light_energy(conn, device_id, unit, lo, hi, str(tz))
    return energy_out("light", device_id, unit, tz, lo, hi, periods)


Group = Annotated[Literal["circuits", "districts"], Path(description="circuits or districts")]
_SCOPES: Final[dict[str, Scope]] = {"circuits": "circuit", "districts": "district"}
_MISSING: Final = {"circuit": "no circuit {}", "district": "no lights in district {}"}


@router.get("/{group}/{key}", summary="A circuit's or district's consumption per period")
async def energy_of_group(
    group: Group,
    key: Key,
    _: ReadCity,
    conn: DbDep,
    runtime: RuntimeDep,
    unit: UnitParam = "day",
    start: Start = None,
    end: End = None,
) -> EnergyOut:
    """Consumption of every light of a circuit or district per local hour, day or month."""
    scope = _SCOPES[group]
    tz, lo, hi = _range(runtime, unit, start, end)
    members = (
        await list_devices(conn, fleets=["light"], circuits=[key], limit=1)
        if scope == "circuit"
        else await list_devices(conn, fleets=["light"], districts=[key], limit=1)
    )
    if not members:
        raise ApiError(404, "not_found", _MISSING[scope].format(key))
    periods = await group_energy(
        conn, scope, key, unit, lo, hi, str(tz), realtime=runtime.api.energy_realtime
    )
    return energy_out(scope, key, unit, tz, lo, hi, periods)
