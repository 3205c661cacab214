"""Reference data records (pure): what the alert rules know about the city, as
``telemetry.storage.reference`` reads and stores it: device metadata, when each device was
last heard, collection rounds, bus stops, line schedules, and a whole network file.

No I/O here, so the rules can hold these without importing a database driver. Stored rows are
built by column name (psycopg ``class_row``), which hands ``fleet`` over as ``str``:
``__post_init__`` makes it a ``Fleet``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time

from telemetry.geometry import LatLon
from telemetry.topics import Fleet


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """What the rules need to know about one device."""

    device_id: str
    fleet: Fleet
    route: str | None
    district: str | None
    circuit: str | None
    rated_w: float | None
    lat: float | None
    lon: float | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fleet", Fleet(self.fleet))


@dataclass(frozen=True, slots=True, kw_only=True)
class LastHeard:
    """When Rasd last received anything from a registered device, from the latest-reading
    tables (``received_at`` None: never), and a vehicle's newest fix."""

    device_id: str
    fleet: Fleet
    registered_at: datetime
    received_at: datetime | None
    fix_time: datetime | None = None
    lat: float | None = None
    lon: float | None = None
    speed_kmh: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fleet", Fleet(self.fleet))


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectionPoint:
    """A site a truck must visit on its round."""

    seq: int
    lat: float
    lon: float
    radius_m: float = 40.0
    label: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectionRound:
    """A truck round: its points and the local shift it must be done in."""

    round: str
    shift_start: time
    shift_end: time
    timezone: str
    points: tuple[CollectionPoint, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class BusStop:
    """A bus stop; lines list it in ``line_stops``."""

    stop_id: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True, kw_only=True)
class LineStop:
    """The ``seq``-th stop (0-based, in driving order) of a line (``devices.route``)."""

    route: str
    seq: int
    stop_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LineSchedule:
    """A line's scheduled headway over a band of local time (an end before the start spans
    midnight)."""

    route: str
    start_local: time
    end_local: time
    headway_s: int
    timezone: str = "Africa/Casablanca"


@dataclass(frozen=True, slots=True, kw_only=True)
class Network:
    """Everything a network (routes) file holds, ready to store."""

    shapes: Mapping[str, Sequence[LatLon]] = field(default_factory=dict)
    rounds: Sequence[CollectionRound] = ()
    stops: Sequence[BusStop] = ()
    line_stops: Mapping[str, Sequence[str]] = field(default_factory=dict)
    schedules: Sequence[LineSchedule] = ()
