"""Scenario files (TOML): fleets, sizes, rates, defects and scripted events, validated."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simulators.city import District
from simulators.errors import ScenarioError

SCENARIO_DIR: Final = Path(__file__).resolve().parent / "scenarios"

Rate = Annotated[float, Field(ge=0, le=1)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BusConfig(_Section):
    """City buses (city-facts sections 2 and 7)."""

    count: int = Field(default=250, ge=0)
    lines: list[str] | None = None  # None: every line in simulators.routes
    report_moving_s: Positive = 10.0
    report_stopped_s: Positive = 60.0
    report_parked_s: Positive = 3600.0  # ignition off, out of service
    service_start: str = "06:00"
    service_end: str = "23:00"
    layover_min: tuple[NonNegative, NonNegative] = (5.0, 10.0)
    operator: str = "Supratours"


class TruckConfig(_Section):
    """Garbage trucks of Arma and Mecomar (city-facts section 3)."""

    count: int = Field(default=120, ge=0)
    arma_share: Rate = 0.625  # 75 of 120 [A]
    report_moving_s: Positive = 30.0
    report_stopped_s: Positive = 300.0
    report_parked_s: Positive = 3600.0
    # Emptying bins at a round point: one record per lift cycle (PTO input events).
    report_working_s: Positive = 10.0
    send_period_s: Positive = 120.0  # store-and-forward batches [S]
    max_batch: int = Field(default=100, ge=1, le=1000)
    shift_start: str = "21:00"
    shift_end: str = "04:00"
    washdown_start: str = "05:00"
    # A collecting truck's fixed round: trips_per_shift trips of points_per_round sites each
    # (one count per truck and trip, drawn from layout_seed: the same round every night).
    points_per_round: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] = (15, 25)
    trips_per_shift: int = Field(default=2, ge=1, le=4)


class FaultRates(_Section):
    """Per luminaire per year unless noted (city-facts section 7, streetlights)."""

    led_module_failure: NonNegative = 0.005
    driver_failure: NonNegative = 0.010
    controller_fault: NonNegative = 0.020
    comm_loss_transient: NonNegative = 0.10
    day_burning: NonNegative = 0.005
    over_temperature: NonNegative = 0.005
    tilt_or_impact: NonNegative = 0.002
    power_factor_low: NonNegative = 0.003
    hps_lamp_failure: NonNegative = 0.20
    circuit_supply_loss_per_circuit: NonNegative = 4.0


class LightConfig(_Section):
    """Streetlights: counts, reporting, photocells and fault processes."""

    count: int = Field(default=72_000, ge=0)
    by_district: dict[District, int] | None = None  # overrides count when given
    report_s: Positive = 900.0
    lamps_per_circuit: int = Field(default=40, ge=1)
    fault_rates: FaultRates = FaultRates()
    fault_rate_multiplier: NonNegative = 1.0  # speeds faults up for demos
    mttr_luminaire_days: Positive = 5.0
    mttr_circuit_days: Positive = 2.0
    comm_loss_hours: tuple[Positive, Positive] = (1.0, 24.0)
    medina_controller_factor: NonNegative = 3.0  # cheap controllers fail often there [S]
    photocell_delay_min: tuple[NonNegative, NonNegative] = (5.0, 25.0)
    operator: str = "SDL Hadirat Al Anwar"


class GpsConfig(_Section):
    """Receiver noise by area; realism, not defects (city-facts section 6)."""

    noise: bool = True
    open_sigma_m: NonNegative = 2.0
    avenue_sigma_m: NonNegative = 4.0
    medina_sigma_m: NonNegative = 10.0
    speed_noise_kmh: NonNegative = 1.0
    heading_noise_deg: NonNegative = 5.0
    drift_sigma_m: NonNegative = 0.7
    drift_max_m: NonNegative = 15.0
    typical_skew_s: NonNegative = 2.0


class DefectConfig(_Section):
    """Deliberate misbehaviour; ``enabled = false`` or a rate of 0 switches one off."""

    enabled: bool = True
    multipath: Rate = 0.01  # per fix
    multipath_medina: Rate = 0.03
    multipath_offset_m: tuple[NonNegative, NonNegative] = (30.0, 100.0)
    fix_loss_medina: Rate = 0.10  # per fix in the Médina: no record
    zero_coords: Rate = 0.001  # per fix: (0, 0) after a cold start
    future_ts: Rate = 0.0005  # per fix: clock jumped ahead
    future_ts_s: tuple[NonNegative, NonNegative] = (7200.0, 172_800.0)
    epoch_garbage: Rate = 0.0005  # per fix: 1970 or GPS-epoch timestamp
    bad_clock_devices: Rate = 0.01  # share of trackers with a skewed clock
    bad_clock_skew_s: tuple[NonNegative, NonNegative] = (30.0, 120.0)
    tz_bug_devices: Rate = 0.01  # share of buses stamping Ramadan local time one hour ahead
    duplicate: Rate = 0.01  # per message: resent
    out_of_order: Rate = 0.02  # per message: overtaken by later ones
    late: Rate = 0.005  # per message
    late_delay_s: tuple[NonNegative, NonNegative] = (300.0, 3600.0)
    coverage_gap_per_day: NonNegative = 0.2  # per vehicle and day: backlog flushed after
    coverage_gap_s: tuple[NonNegative, NonNegative] = (60.0, 900.0)


class EventSpec(_Section):
    """A scripted event: ``at`` is ``HH:MM`` local, ``+10m`` after start, or ISO date-time.

    ``point`` names the round point of ``skip_collection``: its seq (0-based) or its label.
    """

    at: str
    target: str
    action: str
    duration: str | float | None = None
    detail: str | None = Field(default=None, max_length=512)
    point: str | int | None = None


class Scenario(_Section):
    """A whole simulated city run."""

    name: str = "unnamed"
    description: str = ""
    start: str = "2025-12-19T20:30:00+01:00"
    duration: str | float | None = None
    seed: int = 1
    layout_seed: int = 1
    speed: Positive = 1.0
    scale: Positive = 1.0
    buses: BusConfig = BusConfig()
    trucks: TruckConfig = TruckConfig()
    lights: LightConfig = LightConfig()
    gps: GpsConfig = GpsConfig()
    defects: DefectConfig = DefectConfig()
    events: list[EventSpec] = []

    @field_validator("events", mode="before")
    @classmethod
    def _compact_events(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [parse_event_line(v) if isinstance(v, str) else v for v in value]
        return value

    def scaled(self, count: int) -> int:
        """A fleet size multiplied by ``scale``."""
        return round(count * self.scale)


#: Actions whose fourth word names a round point, not a duration.
POINT_ACTIONS: Final = ("skip_collection",)


def parse_event_line(line: str) -> dict[str, Any]:
    """``"00:10 L-MED-00042 lampFailure 2h"`` or ``"+10m T-ARM-001 skip_collection 3"`` ->
    the fields of an ``EventSpec``."""
    parts = line.split()
    if len(parts) not in (3, 4):
        raise ValueError(f"event {line!r}: write 'AT TARGET ACTION [DURATION | POINT]'")
    event: dict[str, Any] = {"at": parts[0], "target": parts[1], "action": parts[2]}
    if len(parts) == 4:
        event["point" if parts[2] in POINT_ACTIONS else "duration"] = parts[3]
    return event


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_url=False)[:10]:
        loc = ".".join(str(p) for p in item["loc"]) or "scenario"
        lines.append(f"{loc}: {item['msg']}")
    return "; ".join(lines)


def scenario_path(name_or_path: str) -> Path:
    """A shipped scenario by name (``city``, ``smoke``) or a path to a TOML file."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ScenarioError(f"scenario file {path} does not exist")
        return path
    shipped = SCENARIO_DIR / f"{name_or_path}.toml"
    if not shipped.is_file():
        names = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")))
        raise ScenarioError(f"no scenario {name_or_path!r}; shipped: {names}")
    return shipped


def parse_scenario(text: str, source: str = "scenario") -> Scenario:
    """Validate TOML text as a scenario."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {_describe(exc)}") from None


def load_scenario(name_or_path: str) -> Scenario:
    """Read and validate a scenario by shipped name or path."""
    path = scenario_path(name_or_path)
    return parse_scenario(path.read_text("utf-8"), str(path))


def shipped_scenarios() -> list[str]:
    """Names of the scenarios under ``simulators/scenarios``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))
