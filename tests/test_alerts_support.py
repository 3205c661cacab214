"""Helpers shared by the alerts tests (no tests here): thresholds, assets, effect summaries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alerts.catalog import Catalog
from alerts.config import DEFAULT_THRESHOLDS, Thresholds, load_thresholds
from alerts.effects import Clear, Effect, Flap, Join, Leave, Merge, Raise
from alerts.engine import Engine
from alerts.observations import Observation
from telemetry.settings import Settings
from telemetry.storage.assets import Asset
from telemetry.topics import Fleet
from tests.support.env import free_port
from tests.support.service_process import ServiceProcess

#: A winter evening in Marrakech (UTC+1 all year, sunset ~18:25): 19 Dec 2025 21:00 local.
EVENING = datetime(2025, 12, 19, 20, 0, tzinfo=UTC).timestamp()
#: Noon the same day, Sun high.
NOON = datetime(2025, 12, 19, 12, 0, tzinfo=UTC).timestamp()
KOUTOUBIA = (31.62417, -7.99343)


def thresholds(**sections: dict[str, Any]) -> Thresholds:
    """The shipped thresholds with some fields of some sections replaced."""
    base = load_thresholds()
    update: dict[str, Any] = {}
    for name, values in sections.items():
        section = getattr(base, name)
        update[name] = (
            section.model_copy(update=values) if hasattr(section, "model_copy") else values
        )
    return base.model_copy(update=update)


def light(
    device_id: str,
    *,
    district: str | None = "medina",
    circuit: str | None = "C-1",
    rated_w: float | None = 60.0,
    at: tuple[float, float] = KOUTOUBIA,
) -> Asset:
    """A registered streetlight."""
    return Asset(device_id, Fleet.LIGHT, None, district, circuit, rated_w, at[0], at[1])


def vehicle(
    device_id: str,
    fleet: Fleet = Fleet.BUS,
    *,
    route: str | None = None,
    home: tuple[float, float] | None = None,
    district: str | None = None,
) -> Asset:
    """A registered bus or truck (``home``: its depot)."""
    lat, lon = home if home is not None else (None, None)
    return Asset(device_id, fleet, route, district, None, None, lat, lon)


def engine(
    *assets: Asset, th: Thresholds | None = None, now: float = 0.0, **catalog: Any
) -> Engine:
    """An engine over a catalog of ``assets``."""
    return Engine(th or thresholds(), Catalog(assets, **catalog), now=now)


def run(eng: Engine, observations: Iterable[Observation], *, tick_s: float = 1.0) -> list[Effect]:
    """Feed observations in order, ticking the clock at each one's receipt time."""
    for observation in observations:
        eng.tick(observation.received)
        eng.observe(observation)
        eng.tick(observation.received)
    return eng.take()


def brief(effects: Iterable[Effect]) -> list[tuple[Any, ...]]:
    """Effects as comparable tuples: (type, kind, asset_key, at[, extra])."""
    out: list[tuple[Any, ...]] = []
    for e in effects:
        if isinstance(e, Raise):
            out.append(("raise", e.key.kind, e.key.asset_key, e.at, len(e.members)))
        elif isinstance(e, Clear):
            out.append(("clear", e.key.kind, e.key.asset_key, e.at))
        elif isinstance(e, Flap):
            out.append(("flap", e.key.kind, e.key.asset_key, e.at))
        elif isinstance(e, Merge):
            out.append(("merge", e.key.kind, e.key.asset_key, e.into.asset_key))
        elif isinstance(e, Join):
            out.append(("join", e.key.kind, e.key.asset_key, len(e.members)))
        elif isinstance(e, Leave):
            out.append(("leave", e.key.kind, e.key.asset_key, len(e.device_ids)))
        else:
            out.append(("detail", e.key.kind, e.key.asset_key))
    return out


def kinds_raised(effects: Iterable[Effect]) -> list[tuple[str, str]]:
    """(kind, asset key) of every Raise."""
    return [(e.key.kind, e.key.asset_key) for e in effects if isinstance(e, Raise)]


def only(kind: str, effects: Iterable[Effect]) -> list[Effect]:
    """The effects about one alert kind."""
    return [e for e in effects if e.key.kind == kind]


class AlertsProcess(ServiceProcess):
    """``python -m alerts`` as a real child process on its own ops port."""

    module = "alerts"
    healthy_timeout = 60.0  # healthy only once caught up and subscribed

    def __init__(self, settings: Settings, log_path: Path, **env: str) -> None:
        port = int(env.get("RASD_ALERTS_HTTP_PORT", "0")) or free_port()
        super().__init__(settings, log_path, port, **(env | {"RASD_ALERTS_HTTP_PORT": str(port)}))

    def start(self, *, wait_healthy: bool = True) -> AlertsProcess:
        """Start, and by default wait until ``/healthz`` answers 200 (caught up, subscribed)."""
        super().start(wait_healthy=wait_healthy)
        return self


def thresholds_file(path: Path, **replacements: str) -> Path:
    """A copy of the shipped thresholds with ``key = value`` lines replaced (by key)."""
    lines = DEFAULT_THRESHOLDS.read_text("utf-8").splitlines()
    out = []
    for line in lines:
        key = line.split("=", 1)[0].strip()
        out.append(f"{key} = {replacements[key]}" if key in replacements and "=" in line else line)
    path.write_text("\n".join(out) + "\n", "utf-8")
    load_thresholds(path)  # fail here, not in the child, if a replacement is invalid
    return path
