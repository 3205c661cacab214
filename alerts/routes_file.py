"""The network file of ``python -m alerts routes import FILE.json`` (pure: parsing only).

    {
      "routes": {"A": [[31.617, -8.066], [31.624, -8.044], ...], "11": [...]},
      "stops": [{"stop_id": "bab-doukkala", "name": "Bab Doukkala",
                 "lat": 31.63394, "lon": -7.999}, ...],
      "line_stops": {"A": ["massira", "tafilalet", ..., "bab-doukkala"]},
      "schedules": [{"route": "A", "start_local": "06:00", "end_local": "23:00",
                     "headway_s": 410, "timezone": "Africa/Casablanca"}],
      "rounds": [
        {"round": "T-ARM-001", "shift_start": "21:00", "shift_end": "04:00",
         "timezone": "Africa/Casablanca",
         "points": [{"lat": 31.63, "lon": -8.0, "radius_m": 40, "label": "GUE-0017"}]}
      ]
    }

Every section is optional. Route names match ``devices.route`` of buses (or the ``route`` a
position reports); a truck's round is the one named by its ``devices.route``, else by its
device id. ``line_stops`` lists each line's stops in driving order from its first terminus;
every stop it names must be in ``stops`` of the same file. ``python -m simulators network``
writes this file for the simulated city (docs/simulators.md).
"""

from __future__ import annotations

from collections import Counter
from datetime import time
from typing import Annotated, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerts.errors import RoutesImportError
from telemetry.reference_data import (
    BusStop,
    CollectionPoint,
    CollectionRound,
    LineSchedule,
    Network,
)


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


def _local(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a local time has no offset: the time zone is given separately")
    return value


Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=64)]
Zone = Annotated[str, AfterValidator(_known_zone)]
LocalTime = Annotated[time, AfterValidator(_local)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PointSpec(_Strict):
    """A collection point."""

    lat: Lat
    lon: Lon
    radius_m: float = Field(default=40.0, gt=0, le=1000)
    label: str | None = Field(default=None, max_length=200)


class RoundSpec(_Strict):
    """A truck round and its local shift."""

    round: Name
    shift_start: LocalTime
    shift_end: LocalTime
    timezone: Zone = "Africa/Casablanca"
    points: list[PointSpec] = Field(min_length=1)


class StopSpec(_Strict):
    """A bus stop."""

    stop_id: Name
    name: str = Field(default="", max_length=200)
    lat: Lat
    lon: Lon


class ScheduleSpec(_Strict):
    """A line's scheduled headway over a band of local time."""

    route: Name
    start_local: LocalTime
    end_local: LocalTime
    headway_s: int = Field(gt=0, le=86_400)
    timezone: Zone = "Africa/Casablanca"

    @model_validator(mode="after")
    def _band(self) -> Self:
        if self.start_local == self.end_local:
            raise ValueError("start_local and end_local are equal: an empty band")
        return self


def _twice(values: list[str]) -> list[str]:
    return sorted(v for v, n in Counter(values).items() if n > 1)


class RoutesFile(_Strict):
    """The whole file."""

    routes: dict[Name, Annotated[list[tuple[Lat, Lon]], Field(min_length=2)]] = {}
    rounds: list[RoundSpec] = []
    stops: list[StopSpec] = []
    line_stops: dict[Name, Annotated[list[Name], Field(min_length=1)]] = {}
    schedules: list[ScheduleSpec] = []

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = []
        if twice := _twice([r.round for r in self.rounds]):
            problems.append(f"rounds named twice: {', '.join(twice[:10])}")
        if twice := _twice([s.stop_id for s in self.stops]):
            problems.append(f"stop ids given twice: {', '.join(twice[:10])}")
        known = {s.stop_id for s in self.stops}
        for route, ids in self.line_stops.items():
            if unknown := sorted(set(ids) - known):
                problems.append(
                    f"line_stops.{route}: stops not in 'stops': {', '.join(unknown[:10])}"
                )
        bands = [f"{s.route} {s.start_local.isoformat('minutes')}" for s in self.schedules]
        if twice := _twice(bands):
            problems.append(f"schedule bands given twice: {', '.join(twice[:10])}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def collection_rounds(self) -> list[CollectionRound]:
        """The rounds as stored."""
        return [
            CollectionRound(
                round=r.round,
                shift_start=r.shift_start,
                shift_end=r.shift_end,
                timezone=r.timezone,
                points=tuple(
                    CollectionPoint(seq=i, lat=p.lat, lon=p.lon, radius_m=p.radius_m, label=p.label)
                    for i, p in enumerate(r.points)
                ),
            )
            for r in self.rounds
        ]

    def network(self) -> Network:
        """Everything in the file, as stored."""
        return Network(
            shapes=self.routes,
            rounds=self.collection_rounds(),
            stops=[
                BusStop(stop_id=s.stop_id, name=s.name, lat=s.lat, lon=s.lon) for s in self.stops
            ],
            line_stops=self.line_stops,
            schedules=[
                LineSchedule(
                    route=s.route,
                    start_local=s.start_local,
                    end_local=s.end_local,
                    headway_s=s.headway_s,
                    timezone=s.timezone,
                )
                for s in self.schedules
            ],
        )


def parse_routes(text: str) -> RoutesFile:
    """Validate a network file; every problem is reported, nothing is half-imported."""
    try:
        return RoutesFile.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors(include_url=False)[:20]
        )
        raise RoutesImportError(f"routes file: {problems}") from None
