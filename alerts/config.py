"""The alerts service's configuration: process settings (``RASD_ALERTS_*``) and the rule
thresholds file (``alerts/thresholds.toml`` unless ``RASD_ALERTS_THRESHOLDS_FILE`` names
another). Both are documented in docs/alerts.md."""

from __future__ import annotations

import itertools
import tomllib
from datetime import time
from pathlib import Path
from typing import Annotated, Final, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.errors import ConfigError
from telemetry.alert_events import Severity
from telemetry.contract import FAULT_NAMES
from telemetry.settings import Settings

DEFAULT_THRESHOLDS: Final = Path(__file__).resolve().parent / "thresholds.toml"

#: The rule kinds besides the TALQ fault names (the ``kind`` column).
RULE_KINDS: Final = (
    "day_burning",
    "energy_anomaly",
    "silent_light",
    "circuit_outage",
    "district_outage",
    "vehicle_offline",
    "speeding",
    "idle",
    "route_deviation",
    "faulty_tracker",
    "missed_collection",
)

Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=1)]


class AlertsConfig(BaseSettings):
    """Process settings of ``python -m alerts`` (environment variables ``RASD_ALERTS_*``)."""

    model_config = SettingsConfigDict(env_prefix="RASD_ALERTS_", frozen=True, extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=9102, ge=0, le=65535)
    thresholds_file: Path = DEFAULT_THRESHOLDS
    workers: int = Field(default=1, ge=1, le=256)
    worker_index: int = Field(default=0, ge=0)
    share_group: str = Field(default="rasd-alerts", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    client_id: str | None = None
    session_expiry_s: int = Field(default=7 * 24 * 3600, gt=0)
    receive_maximum: int = Field(default=2000, ge=1, le=65535)
    batch_max: int = Field(default=2000, gt=0)
    tick_s: Positive = 1.0
    catchup_window_s: Positive = 2 * 3600.0
    catchup_positions_window_s: Positive = 10 * 3600.0
    catchup_lateness_s: NonNegative = 3600.0
    escalation_interval_s: Positive = 30.0
    metadata_refresh_s: Positive = 60.0
    drain_timeout_s: Positive = 30.0
    fresh_lag_s: Positive = 150.0

    @model_validator(mode="after")
    def _check_index(self) -> Self:
        if self.worker_index >= self.workers:
            raise ValueError(
                f"RASD_ALERTS_WORKER_INDEX ({self.worker_index}) must be below "
                f"RASD_ALERTS_WORKERS ({self.workers})"
            )
        return self

    @property
    def worker(self) -> str:
        """This worker's name, e.g. ``0of1``: its checkpoint and metrics label."""
        return f"{self.worker_index}of{self.workers}"

    def mqtt_client_id(self, settings: Settings) -> str:
        """Stable across restarts, unique per topic prefix and partition."""
        if self.client_id:
            return self.client_id
        return f"rasd-alerts-{settings.topic_prefix.replace('/', '-')}-{self.worker}"

    @property
    def group(self) -> str:
        """The shared-subscription group: one per partition, so each gets every message."""
        if self.workers == 1:
            return self.share_group
        return f"{self.share_group}-{self.worker}"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _increasing(hours: list[float]) -> list[float]:
    if any(b <= a for a, b in itertools.pairwise(hours)):
        raise ValueError("escalation levels must come at increasing times")
    return hours


EscalationHours = Annotated[list[NonNegative], AfterValidator(_increasing)]


class KindPolicy(_Section):
    """Severity, SLA, escalation levels and clear hold of one alert kind."""

    severity: Severity
    sla_hours: Positive | None = None
    # Hours after the SLA breach at which each escalation level falls due (None: the
    # [escalation] default).
    escalate_after_hours: EscalationHours | None = None
    clear_hold_s: NonNegative | None = None  # None: lifecycle.clear_hold_s


class EscalationThresholds(_Section):
    """Escalation levels of kinds that set none: hours after the SLA breach (level 1 first)."""

    after_sla_hours: EscalationHours = Field(default=[0.0, 24.0], min_length=1)


class LifecycleThresholds(_Section):
    """Flapping suppression."""

    clear_hold_s: NonNegative = 300.0


class LightThresholds(_Section):
    """Streetlight rules."""

    report_interval_s: Positive = 900.0
    silent_intervals: Positive = 3.0
    day_burning_min_elevation_deg: float = Field(default=3.0, ge=-5, le=30)
    day_burning_readings: Count = 1
    lamp_on_min_w: NonNegative = 2.0
    energy_tolerance: Annotated[float, Field(gt=0, lt=10)] = 0.3
    energy_readings: Count = 3
    energy_min_expected_w: NonNegative = 5.0


class OutageThresholds(_Section):
    """Grouping supply losses into circuit and district outages."""

    window_s: Positive = 60.0
    hold_s: NonNegative = 3.0
    circuit_min_lights: Count = 5
    district_min_lights: Count = 50
    district_min_circuits: Count = 3


class ServiceHours(_Section):
    """Local hours when a fleet is in service (an end before the start spans midnight)."""

    start: time = time(6, 0)
    end: time = time(23, 0)


class VehicleThresholds(_Section):
    """Vehicle rules."""

    timezone: str = "Africa/Casablanca"
    moving_kmh: NonNegative = 3.0
    offline_after_s: Positive = 600.0
    truck_offline_after_s: Positive = 1200.0
    active_window_s: Positive = 1800.0
    bus_service: ServiceHours = ServiceHours()
    bus_speed_limit_kmh: Positive = 70.0
    truck_speed_limit_kmh: Positive = 80.0
    speeding_min_s: NonNegative = 30.0
    idle_max_s: Positive = 2400.0
    idle_radius_m: Positive = 50.0
    idle_home_radius_m: NonNegative = 300.0
    route_max_distance_m: Positive = 150.0
    route_min_s: NonNegative = 180.0
    tracker_max_speed_kmh: Positive = 250.0
    tracker_min_jump_m: NonNegative = 1000.0
    tracker_bad_fixes: Count = 5
    tracker_window_s: Positive = 3600.0
    tracker_clear_after_s: Positive = 3600.0
    tracker_relocate_after: Count = 3
    collection_stop_kmh: NonNegative = 5.0
    collection_grace_s: NonNegative = 1800.0


class RoutingRule(_Section):
    """Alerts of this district and asset kind go to ``crew`` ("*" matches any)."""

    district: str = "*"
    asset_kind: str = "*"
    crew: str = Field(min_length=1, max_length=200)


class Thresholds(_Section):
    """Everything the rules need to decide; loaded from the thresholds TOML file."""

    lifecycle: LifecycleThresholds = LifecycleThresholds()
    escalation: EscalationThresholds = EscalationThresholds()
    lights: LightThresholds = LightThresholds()
    outage: OutageThresholds = OutageThresholds()
    vehicles: VehicleThresholds = VehicleThresholds()
    default_fault: KindPolicy = KindPolicy(severity=Severity.MEDIUM, sla_hours=72.0)
    kinds: dict[str, KindPolicy] = {}
    routing: list[RoutingRule] = []
    default_crew: str = "{asset_kind}-{district}"

    @model_validator(mode="after")
    def _check_kinds(self) -> Self:
        unknown = sorted(set(self.kinds) - set(RULE_KINDS) - set(FAULT_NAMES))
        if unknown:
            raise ValueError(f"unknown alert kinds {unknown}")
        missing = sorted(set(RULE_KINDS) - set(self.kinds))
        if missing:
            raise ValueError(f"kinds needs a severity for {missing}")
        return self

    def policy(self, kind: str) -> KindPolicy:
        """Severity and SLA of ``kind`` (TALQ faults without an entry use ``default_fault``)."""
        return self.kinds.get(kind, self.default_fault)

    def escalation_times(self, kind: str, opened: float) -> tuple[float, ...]:
        """When each escalation level of an alert of ``kind`` opened at ``opened`` falls due
        (epoch seconds, in order); none without an SLA."""
        policy = self.policy(kind)
        if policy.sla_hours is None:
            return ()
        due = opened + policy.sla_hours * 3600.0
        hours = policy.escalate_after_hours
        if hours is None:
            hours = self.escalation.after_sla_hours
        return tuple(due + h * 3600.0 for h in hours)

    def clear_hold_s(self, kind: str) -> float:
        """How long a condition must stay clear before its alert resolves."""
        hold = self.policy(kind).clear_hold_s
        return self.lifecycle.clear_hold_s if hold is None else hold

    def crew(self, district: str | None, asset_kind: str) -> str:
        """The crew alerts of this district and asset kind are routed to."""
        for rule in self.routing:
            if rule.district in ("*", district) and rule.asset_kind in ("*", asset_kind):
                return rule.crew
        return self.default_crew.format(asset_kind=asset_kind, district=district or "unknown")


def load_thresholds(path: Path = DEFAULT_THRESHOLDS) -> Thresholds:
    """Read and validate a thresholds TOML file."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"thresholds file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"thresholds file {path}: not valid TOML: {exc}") from None
    try:
        return Thresholds.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}"
            for e in exc.errors(include_url=False)[:10]
        )
        raise ConfigError(f"thresholds file {path}: {problems}") from None
