"""The GTFS network from Rasd's reference data (the imported network file): stops, each line's
stop sequence and shape, and its schedule bands."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import time

from telemetry.geometry import LatLon
from telemetry.gtfs.records import Network, NetworkLine, NetworkStop, ServiceBand
from telemetry.reference_data import BusStop, LineSchedule, LineStop


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def network_of(
    stops: Iterable[BusStop],
    line_stops: Iterable[LineStop],
    schedules: Iterable[LineSchedule],
    shapes: Mapping[str, Sequence[LatLon]],
) -> Network:
    """Every line that has stops, with its shape (if any) and bands (local times, as the
    schedules give them: the feed's timezone is the agency's)."""
    sequences: dict[str, list[tuple[int, str]]] = {}
    for ls in line_stops:
        sequences.setdefault(ls.route, []).append((ls.seq, ls.stop_id))
    bands: dict[str, list[ServiceBand]] = {}
    for s in schedules:
        bands.setdefault(s.route, []).append(
            ServiceBand(
                start_s=_seconds(s.start_local), end_s=_seconds(s.end_local), headway_s=s.headway_s
            )
        )
    return Network(
        stops={
            s.stop_id: NetworkStop(stop_id=s.stop_id, name=s.name, lat=s.lat, lon=s.lon)
            for s in stops
        },
        lines=[
            NetworkLine(
                route_id=route,
                shape=tuple(shapes.get(route, ())),
                stop_ids=tuple(stop for _, stop in sorted(seq)),
                bands=tuple(bands.get(route, ())),
            )
            for route, seq in sorted(sequences.items())
        ],
    )
