"""The routes file of ``python -m alerts routes import FILE.json`` (pure: parsing only).

    {
      "routes": {"A": [[31.617, -8.066], [31.624, -8.044], ...], "11": [...]},
      "rounds": [
        {"round": "T-ARM-001", "shift_start": "21:00", "shift_end": "04:00",
         "timezone": "Africa/Casablanca",
         "points": [{"lat": 31.63, "lon": -8.0, "radius_m": 40, "label": "Bab Doukkala"}]}
      ]
    }

Route names match ``devices.route`` of buses (or the ``route`` a position reports); a truck's
round is the one named by its ``devices.route``, else by its device id.
"""

from __future__ import annotations

from datetime import time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alerts.errors import RoutesImportError
from telemetry.storage.assets import CollectionPoint, CollectionRound

Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=64)]


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
    shift_start: time
    shift_end: time
    timezone: str = "Africa/Casablanca"
    points: list[PointSpec] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class RoutesFile(_Strict):
    """The whole file."""

    routes: dict[Name, Annotated[list[tuple[Lat, Lon]], Field(min_length=2)]] = {}
    rounds: list[RoundSpec] = []

    def collection_rounds(self) -> list[CollectionRound]:
        """The rounds as stored."""
        return [
            CollectionRound(
                r.round,
                r.shift_start,
                r.shift_end,
                r.timezone,
                tuple(
                    CollectionPoint(i, p.lat, p.lon, p.radius_m, p.label)
                    for i, p in enumerate(r.points)
                ),
            )
            for r in self.rounds
        ]


def parse_routes(text: str) -> RoutesFile:
    """Validate a routes file; every problem is reported, nothing is half-imported."""
    try:
        parsed = RoutesFile.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}"
            for e in exc.errors(include_url=False)[:20]
        )
        raise RoutesImportError(f"routes file: {problems}") from None
    names = [r.round for r in parsed.rounds]
    if len(set(names)) != len(names):
        raise RoutesImportError("routes file: a round name appears twice")
    return parsed
