"""GeoJSON (RFC 7946) renderings of positions and tracks (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

MEDIA_TYPE: Final = "application/geo+json"


def wants_geojson(format_param: str | None, accept: str | None) -> bool:
    """True when ``?format=geojson`` or the Accept header asks for GeoJSON first."""
    if format_param is not None:
        return format_param.lower() == "geojson"
    if not accept:
        return False
    first = accept.split(",")[0].split(";")[0].strip().lower()
    return first == MEDIA_TYPE


def point_feature(
    lon: float, lat: float, properties: Mapping[str, Any], fid: str | None = None
) -> dict[str, Any]:
    """A Point feature; coordinates are [lon, lat] as GeoJSON requires."""
    feature: dict[str, Any] = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": dict(properties),
    }
    if fid is not None:
        feature["id"] = fid
    return feature


def feature_collection(features: Iterable[Mapping[str, Any]], **foreign: Any) -> dict[str, Any]:
    """A FeatureCollection, with optional foreign members (e.g. server_ts)."""
    body: dict[str, Any] = {"type": "FeatureCollection"}
    body.update(foreign)
    body["features"] = list(features)
    return body


def track_feature(
    device_id: str,
    coordinates: Sequence[tuple[float, float]],
    times: Sequence[str],
    properties: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A track as one LineString (a single fix becomes a Point), with its fix times."""
    props = {"device_id": device_id, "times": list(times), **(properties or {})}
    if len(coordinates) == 1:
        lon, lat = coordinates[0]
        return point_feature(lon, lat, props, device_id)
    return {
        "type": "Feature",
        "id": device_id,
        "geometry": {"type": "LineString", "coordinates": [[x, y] for x, y in coordinates]},
        "properties": props,
    }
