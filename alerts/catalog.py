"""What the engine knows about the city: device metadata, route polylines, collection rounds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from alerts.effects import Subject
from telemetry.geometry import LatLon, Polyline
from telemetry.reference_data import Asset, CollectionRound
from telemetry.topics import Fleet


class Catalog:
    """In-memory reference data, refreshed from the database by the service."""

    def __init__(
        self,
        assets: Iterable[Asset] = (),
        routes: Mapping[str, Sequence[LatLon]] | None = None,
        rounds: Mapping[str, CollectionRound] | None = None,
    ) -> None:
        self.assets: dict[str, Asset] = {}
        self.routes: dict[str, Polyline] = {}
        self.rounds: dict[str, CollectionRound] = {}
        self.update_assets(assets)
        self.set_routes(routes or {})
        self.set_rounds(rounds or {})

    def update_assets(self, assets: Iterable[Asset]) -> None:
        """Add or replace devices."""
        for asset in assets:
            self.assets[asset.device_id] = asset

    def retain(self, device_ids: set[str]) -> list[str]:
        """Forget devices no longer registered (taken out of service); returns their ids."""
        gone = [d for d in self.assets if d not in device_ids]
        for device_id in gone:
            del self.assets[device_id]
        return gone

    def set_routes(self, routes: Mapping[str, Sequence[LatLon]]) -> None:
        """Replace every route polyline."""
        self.routes = {name: Polyline(points) for name, points in routes.items() if points}

    def set_rounds(self, rounds: Mapping[str, CollectionRound]) -> None:
        """Replace every collection round."""
        self.rounds = dict(rounds)

    def subject(self, device_id: str, fleet: Fleet) -> Subject:
        """The alert subject for one device (district and place when registered)."""
        asset = self.assets.get(device_id)
        if asset is None:
            return Subject(fleet, device_id)
        return Subject(asset.fleet, device_id, asset.district, asset.circuit, asset.lat, asset.lon)

    def route_of(self, asset: Asset | None, reported: str | None) -> Polyline | None:
        """The polyline of the route a position reports, else of the bus's registered route."""
        name = reported or (asset.route if asset is not None else None)
        return None if name is None else self.routes.get(name)

    def round_of(self, asset: Asset) -> CollectionRound | None:
        """A truck's round: the one named by its route, else the one named by its device id."""
        if asset.route is not None and asset.route in self.rounds:
            return self.rounds[asset.route]
        return self.rounds.get(asset.device_id)
