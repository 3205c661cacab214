"""Helpers shared by the alerts tests: thresholds, assets, effect summaries, and
the driver that feeds a simulated scenario through decoding, the engine and the real store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from alerts.catalog import Catalog
from alerts.catchup import CatchUpReport, rebuild
from alerts.config import DEFAULT_THRESHOLDS, AlertsConfig, Thresholds, load_thresholds
from alerts.effects import Clear, Effect, Flap, Join, Leave, Merge, Raise
from alerts.engine import Engine
from alerts.observations import Observation, from_decoded
from alerts.partition import Partition
from alerts.routes_file import RoutesFile
from alerts.store import apply
from simulators.devices import build_devices, registry_records
from simulators.messages import Message
from simulators.network import network_file
from simulators.scenario import Scenario
from telemetry.decoding import Decoded, Limits, MessageDecoder
from telemetry.reference_data import Asset
from telemetry.settings import Settings
from telemetry.storage.backend import Backend
from telemetry.storage.devices import upsert_devices
from telemetry.storage.maintenance import ensure_partitions
from telemetry.storage.readings import Batch, ReadingStore
from telemetry.storage.reference import (
    assets_changed_since,
    collection_rounds,
    import_network,
    route_shapes,
)
from telemetry.topics import Fleet, parse_topic
from tests.support.database import open_db

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
    return Asset(
        device_id=device_id,
        fleet=Fleet.LIGHT,
        route=None,
        district=district,
        circuit=circuit,
        rated_w=rated_w,
        lat=at[0],
        lon=at[1],
    )


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
    return Asset(
        device_id=device_id,
        fleet=fleet,
        route=route,
        district=district,
        circuit=None,
        rated_w=None,
        lat=lat,
        lon=lon,
    )


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


# -- simulated scenarios through the engine and the real store ------------------------------------

SIM_PREFIX = "rasd/v1"


@dataclass(frozen=True)
class Outcome:
    """One alert as a scenario's verdict sees it."""

    kind: str
    asset_key: str
    opened: float
    resolved: float | None
    devices: int = 1
    flaps: int = 0


def stored_alerts(conn: psycopg.Connection) -> set[Outcome]:
    """Every alert of the schema, as outcomes."""
    rows = conn.execute(
        "SELECT kind, asset_key, opened_at, resolved_at, device_count, flap_count FROM alerts"
    ).fetchall()
    return {
        Outcome(
            r[0], r[1], r[2].timestamp(), None if r[3] is None else r[3].timestamp(), r[4], r[5]
        )
        for r in rows
    }


class ScenarioDriver:
    """Feeds simulator messages through decoding, the engine and the store, with the scenario's
    registry and network file imported as in production."""

    def __init__(self, settings: Settings, scenario: Scenario, *, ingest: bool) -> None:
        self.conn = open_db(settings)
        self.read = open_db(settings)
        self.decoder = MessageDecoder(Limits(prefix=SIM_PREFIX, max_age=timedelta(days=3650)))
        self.config = AlertsConfig()
        devices = build_devices(scenario)
        records = registry_records(devices, scenario)
        upsert_devices(self.conn, records)
        # The lines' real shapes and the trucks' real rounds: a bus following its line and a
        # truck driving its round must never raise anything.
        import_network(
            self.conn, RoutesFile.model_validate(network_file(scenario, devices)).network()
        )
        self.fleets = {r.device_id: r.fleet for r in records}
        self.readings = ReadingStore(self.conn) if ingest else None
        self.engine = self.fresh_engine()
        catalog = self.engine.catalog
        assert catalog.routes or not devices.buses, "the route rule must be armed"
        assert catalog.rounds or not devices.trucks, "the round rule must be armed"

    def fresh_engine(self) -> Engine:
        """An engine over the stored registry and network, as a (re)started worker has."""
        assets, _ = assets_changed_since(self.conn, None)
        return Engine(
            load_thresholds(),
            Catalog(assets, route_shapes(self.conn), collection_rounds(self.conn)),
        )

    def close(self) -> None:
        """Close both connections."""
        self.conn.close()
        self.read.close()

    def decode(self, message: Message) -> Decoded:
        """Decode as the services do, received at the simulated send time."""
        received = datetime.fromtimestamp(message.at, UTC)
        return self.decoder.decode(message.topic, message.payload, received, self.fleets)

    def store_readings(self, messages: list[Message]) -> None:
        """What the ingestor stores for these messages."""
        assert self.readings is not None
        if self.readings.backend is Backend.PLAIN and messages:
            # ReadingStore assumes the partitions it finds are contiguous; these scenarios lie
            # a year before the ones migrate made, so create the whole span up front.
            lo = datetime.fromtimestamp(messages[0].at, UTC) - timedelta(days=1)
            hi = datetime.fromtimestamp(messages[-1].at, UTC) + timedelta(days=1)
            for table in ("vehicle_positions", "light_energy", "light_faults"):
                ensure_partitions(self.conn, table, lo, hi)
        batch = Batch()
        for message in messages:
            batch.add(self.decode(message))
        self.readings.write(batch)

    def feed(self, messages: list[Message]) -> None:
        """The alerts worker's live path: tick, observe, commit effects with the checkpoint."""
        for message in messages:
            fleet = parse_topic(message.topic, SIM_PREFIX).fleet
            self.engine.tick(message.at)
            self.engine.observe_all(from_decoded(self.decode(message), fleet))
            self.commit()
        self.commit(always=True)

    def commit(self, *, always: bool = False) -> None:
        """Apply the engine's effects (and the checkpoint) in one transaction."""
        effects = self.engine.take()
        if effects or always:
            apply(self.conn, effects, worker=self.config.worker, checkpoint=self.engine.now)

    def feed_with_restart(
        self, messages: list[Message], crash: float, back: float
    ) -> CatchUpReport:
        """Feed ``messages``, crashing at ``crash`` and restarting through catch-up at
        ``back``; the ingestor stores everything meanwhile (needs ``ingest=True``)."""
        before = [m for m in messages if m.at < crash]
        down = [m for m in messages if crash <= m.at < back]
        after = [m for m in messages if m.at >= back]
        self.store_readings(before)
        self.feed(before[:-1])
        # Crash: the last message was received but its effects never committed (nor acked).
        self.store_readings(down)  # the ingestor kept storing while the worker was down
        self.engine = self.fresh_engine()
        report = rebuild(
            self.read,
            self.conn,
            self.engine,
            partition=Partition(),
            config=self.config,
            now=back - 1,
        )
        # The broker redelivers what was never acked (from the crash on), then live traffic.
        self.store_readings(after)
        self.feed(before[-1:] + down + after)
        return report

    def finish(self, at: float) -> set[Outcome]:
        """Tick to ``at``, commit, and return every stored alert."""
        self.engine.tick(at)
        self.commit(always=True)
        return stored_alerts(self.conn)
