"""Request filters shared by REST and WebSockets: lists, bounding boxes, vehicle filters (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from telemetry.topics import Fleet

VEHICLE_FLEETS = frozenset({Fleet.BUS.value, Fleet.TRUCK.value})
MAX_LIST_ITEMS = 200


class FilterError(ValueError):
    """A filter parameter is malformed; the message says how."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


def split_list(parameter: str, raw: str | list[str] | None) -> frozenset[str] | None:
    """``a,b`` or repeated parameters as a set; None when absent."""
    if raw is None:
        return None
    parts = [raw] if isinstance(raw, str) else list(raw)
    items = {item.strip() for part in parts for item in part.split(",") if item.strip()}
    if not items:
        return None
    if len(items) > MAX_LIST_ITEMS:
        raise FilterError(parameter, f"at most {MAX_LIST_ITEMS} values")
    return frozenset(items)


def vehicle_fleets(raw: str | list[str] | None) -> frozenset[str] | None:
    """The ``fleet`` filter of vehicle queries: bus, truck or both."""
    fleets = split_list("fleet", raw)
    if fleets is not None and not fleets <= VEHICLE_FLEETS:
        bad = ", ".join(sorted(fleets - VEHICLE_FLEETS))
        raise FilterError("fleet", f"unknown vehicle fleet {bad}; use bus or truck")
    return fleets


def device_fleets(raw: str | list[str] | None) -> frozenset[str] | None:
    """The ``fleet`` filter of device queries: any of bus, truck, light."""
    fleets = split_list("fleet", raw)
    known = {f.value for f in Fleet}
    if fleets is not None and not fleets <= known:
        bad = ", ".join(sorted(fleets - known))
        raise FilterError("fleet", f"unknown fleet {bad}; use bus, truck or light")
    return fleets


@dataclass(frozen=True, slots=True)
class BBox:
    """A lon/lat rectangle (not crossing the antimeridian)."""

    west: float
    south: float
    east: float
    north: float

    @classmethod
    def parse(cls, raw: str) -> BBox:
        """Parse ``west,south,east,north`` in degrees (GeoJSON order: lon before lat)."""
        parts = raw.split(",")
        if len(parts) != 4:
            raise FilterError("bbox", "must be west,south,east,north (4 numbers, lon/lat)")
        try:
            west, south, east, north = (float(p) for p in parts)
        except ValueError:
            raise FilterError("bbox", f"{raw!r} has a part that is not a number") from None
        if not all(math.isfinite(v) for v in (west, south, east, north)):
            raise FilterError("bbox", "values must be finite")
        if not (-180 <= west <= 180 and -180 <= east <= 180):
            raise FilterError("bbox", "longitudes must be within -180..180")
        if not (-90 <= south <= 90 and -90 <= north <= 90):
            raise FilterError("bbox", "latitudes must be within -90..90")
        if west > east or south > north:
            raise FilterError("bbox", "west must be <= east and south <= north")
        return cls(west, south, east, north)

    def contains(self, lat: float, lon: float) -> bool:
        """True when the point lies inside or on the edge."""
        return self.south <= lat <= self.north and self.west <= lon <= self.east

    def as_tuple(self) -> tuple[float, float, float, float]:
        """(west, south, east, north)."""
        return (self.west, self.south, self.east, self.north)


class Located(Protocol):
    """What a vehicle filter looks at."""

    @property
    def fleet(self) -> str: ...
    @property
    def route(self) -> str | None: ...
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...


@dataclass(frozen=True, slots=True)
class VehicleFilter:
    """Which vehicles a client wants; hashable, so identical filters share encoded frames."""

    fleets: frozenset[str] | None = None
    routes: frozenset[str] | None = None
    bbox: BBox | None = None

    def matches(self, vehicle: Located) -> bool:
        """True when the vehicle passes every given criterion."""
        if self.fleets is not None and vehicle.fleet not in self.fleets:
            return False
        if self.routes is not None and vehicle.route not in self.routes:
            return False
        return self.bbox is None or self.bbox.contains(vehicle.lat, vehicle.lon)

    @classmethod
    def from_params(
        cls,
        fleet: str | list[str] | None,
        route: str | list[str] | None,
        bbox: str | None,
    ) -> VehicleFilter:
        """Build from query parameters, raising ``FilterError`` on bad input."""
        return cls(
            fleets=vehicle_fleets(fleet),
            routes=split_list("route", route),
            bbox=BBox.parse(bbox) if bbox else None,
        )
