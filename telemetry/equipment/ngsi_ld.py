"""FIWARE Smart Data Models NGSI-LD entities (normalized form) for the register (pure).

Attribute names follow dataModel.Streetlighting's schemas (``Streetlight/schema.json``,
``StreetlightModel/schema.json``, ``StreetlightControlCabinet/schema.json``,
smart-data-models/dataModel.Streetlighting; its ``context.jsonld`` defines them). What those
schemas lack keeps TALQ 2.7.1's attribute name (``LuminaireAssetFunction``: ``serial``,
``projectID``, ``warrantyExpirationDate``; ``LuminaireType``: ``warrantyYears``), which the
broker expands with its default context. Luminaires become ``Streetlight``, cabinets
``StreetlightControlCabinet``, luminaire models ``StreetlightModel``; circuits are referenced as
``StreetlightGroup`` and devices as ``Device``. Poles, drivers and controllers have no FIWARE
type of their own: a pole is the Streetlight's ``streetPoleNum``.

``read_entities`` reads the entities back, so that an export is checked to carry what it claims.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final

from telemetry.equipment.records import (
    Asset,
    AssetKind,
    EquipmentImportError,
    EquipmentModel,
    ModelKind,
)

CONTEXT: Final = [
    "https://raw.githubusercontent.com/smart-data-models/dataModel.Streetlighting/master/context.jsonld"
]
_URN: Final = "urn:ngsi-ld:"


def urn(entity_type: str, ident: str) -> str:
    """The NGSI-LD id of one of Rasd's entities: ``urn:ngsi-ld:{type}:{id}``."""
    return f"{_URN}{entity_type}:{ident}"


def _ident(value: str, entity_type: str) -> str:
    prefix = urn(entity_type, "")
    if not value.startswith(prefix):
        raise EquipmentImportError(f"{value}: not an id of type {entity_type}")
    return value[len(prefix) :]


def _prop(value: object) -> dict[str, Any]:
    if isinstance(value, date):
        return {"type": "Property", "value": {"@type": "Date", "@value": value.isoformat()}}
    return {"type": "Property", "value": value}


def _rel(target: str | list[str]) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


def _point(lat: float, lon: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def _put(entity: dict[str, Any], name: str, value: object) -> None:
    if value is not None:
        entity[name] = _prop(value)


def _ancestor(asset: Asset, by_id: Mapping[str, Asset], kind: AssetKind) -> Asset | None:
    current = by_id.get(asset.parent_id) if asset.parent_id else None
    while current is not None and current.kind is not kind:
        current = by_id.get(current.parent_id) if current.parent_id else None
    return current


def _located(asset: Asset, by_id: Mapping[str, Asset]) -> Asset | None:
    """The asset itself when it has a location, else its nearest located ancestor."""
    current: Asset | None = asset
    while current is not None and current.lat is None:
        current = by_id.get(current.parent_id) if current.parent_id else None
    return current


def _common(entity: dict[str, Any], asset: Asset, by_id: Mapping[str, Asset]) -> None:
    _put(entity, "name", asset.label)
    _put(entity, "areaServed", asset.district)
    place = _located(asset, by_id)
    if place is not None and place.lat is not None and place.lon is not None:
        entity["location"] = _point(place.lat, place.lon)
    _put(entity, "dateServiceStarted", asset.installed_on)
    _put(entity, "serial", asset.serial)
    _put(entity, "supplier", asset.supplier)
    _put(entity, "projectID", asset.project_id)
    _put(entity, "warrantyExpirationDate", asset.warranty_until)


def streetlight(
    asset: Asset,
    by_id: Mapping[str, Asset],
    models: Mapping[str, EquipmentModel],
    has_controller: bool,
    last_change: datetime | None = None,
) -> dict[str, Any]:
    """A luminaire (its light point) as a FIWARE ``Streetlight``; ``last_change`` is when its
    current luminaire went in (``dateLastLampChange``)."""
    entity: dict[str, Any] = {"id": urn("Streetlight", asset.asset_id), "type": "Streetlight"}
    _common(entity, asset, by_id)
    if last_change is not None:
        entity["dateLastLampChange"] = {
            "type": "Property",
            "value": {"@type": "DateTime", "@value": last_change.isoformat()},
        }
    parent = by_id.get(asset.parent_id) if asset.parent_id else None
    circuit = _ancestor(asset, by_id, AssetKind.CIRCUIT)
    cabinet = _ancestor(asset, by_id, AssetKind.CABINET)
    if circuit is not None:
        entity["circuit"] = _prop(circuit.asset_id)
        entity["refStreetlightGroup"] = _rel(urn("StreetlightGroup", circuit.asset_id))
    if cabinet is not None:
        entity["refStreetlightControlCabinet"] = _rel(
            urn("StreetlightControlCabinet", cabinet.asset_id)
        )
    if parent is not None and parent.kind is AssetKind.POLE:
        entity["streetPoleNum"] = _prop(parent.asset_id)
    else:
        entity["locationCategory"] = _prop("facade")
    if asset.model_id is not None:
        entity["refStreetlightModel"] = _rel(urn("StreetlightModel", asset.model_id))
        rated = models[asset.model_id].rated_power_w if asset.model_id in models else None
        _put(entity, "powerRating", rated)
    if asset.device_id is not None:
        entity["refDevice"] = _rel([urn("Device", asset.device_id)])
    entity["controllingMethod"] = _prop("individual" if has_controller else "group")
    # The schema requires a status; the register does not know it (telemetry does), so "ok"
    # until the live state is merged in by whoever publishes the entity.
    entity["status"] = _prop("ok")
    entity["@context"] = CONTEXT
    return entity


def control_cabinet(
    asset: Asset, by_id: Mapping[str, Asset], circuits: Sequence[str]
) -> dict[str, Any]:
    """A cabinet as a FIWARE ``StreetlightControlCabinet``."""
    entity: dict[str, Any] = {
        "id": urn("StreetlightControlCabinet", asset.asset_id),
        "type": "StreetlightControlCabinet",
    }
    _common(entity, asset, by_id)
    entity.pop("serial", None)
    _put(entity, "serialNumber", asset.serial)
    _put(entity, "maximumPowerAvailable", asset.contracted_kw)  # kW "by contract"
    _put(entity, "meterId", asset.meter_id)
    _put(entity, "tariff", asset.tariff)
    if circuits:
        entity["refStreetlightGroup"] = _rel([urn("StreetlightGroup", c) for c in circuits])
    if asset.device_id is not None:
        entity["refDevice"] = _rel([urn("Device", asset.device_id)])
    entity["@context"] = CONTEXT
    return entity


def streetlight_model(model: EquipmentModel) -> dict[str, Any]:
    """A luminaire model as a FIWARE ``StreetlightModel``."""
    entity: dict[str, Any] = {
        "id": urn("StreetlightModel", model.model_id),
        "type": "StreetlightModel",
        "name": _prop(f"{model.manufacturer} {model.model}"),
        "lanternManufacturerName": _prop(model.manufacturer),
        "lanternModelName": _prop(model.model),
    }
    _put(entity, "lampTechnology", model.light_source)
    _put(entity, "powerConsumption", model.rated_power_w)
    _put(entity, "minPowerConsumption", model.power_at_min_dim_w)
    _put(entity, "workingLife", model.rated_life_h)
    _put(entity, "luminousFlux", model.luminous_flux_lm)
    _put(entity, "warrantyYears", model.warranty_years)
    _put(entity, "replaceableOnSite", model.replaceable_on_site)
    entity["@context"] = CONTEXT
    return entity


def register_entities(
    assets: Iterable[Asset],
    models: Iterable[EquipmentModel],
    installed_at: Mapping[str, datetime] | None = None,
) -> list[dict[str, Any]]:
    """The register as NGSI-LD entities: models, then cabinets, then streetlights, by id.

    ``installed_at`` maps an asset to its latest installation (from its history)."""
    installed_at = installed_at or {}
    by_id = {a.asset_id: a for a in assets}
    model_by_id = {m.model_id: m for m in models}
    circuits: dict[str, list[str]] = {}
    controlled: set[str] = set()
    for asset in by_id.values():
        if asset.kind is AssetKind.CIRCUIT and asset.parent_id is not None:
            circuits.setdefault(asset.parent_id, []).append(asset.asset_id)
        if asset.kind is AssetKind.CONTROLLER and asset.parent_id is not None:
            controlled.add(asset.parent_id)
    entities = [
        streetlight_model(m)
        for m in sorted(model_by_id.values(), key=lambda m: m.model_id)
        if m.kind is ModelKind.LUMINAIRE
    ]
    ordered = sorted(by_id.values(), key=lambda a: a.asset_id)
    entities += [
        control_cabinet(a, by_id, sorted(circuits.get(a.asset_id, [])))
        for a in ordered
        if a.kind is AssetKind.CABINET
    ]
    entities += [
        streetlight(a, by_id, model_by_id, a.asset_id in controlled, installed_at.get(a.asset_id))
        for a in ordered
        if a.kind is AssetKind.LUMINAIRE
    ]
    return entities


def _value(entity: Mapping[str, Any], name: str) -> Any:
    attr = entity.get(name)
    if attr is None:
        return None
    value = attr.get("object") if attr.get("type") == "Relationship" else attr.get("value")
    if isinstance(value, dict) and "@value" in value:
        return value["@value"]
    return value


def _located_fields(entity: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "label": _value(entity, "name"),
        "district": _value(entity, "areaServed"),
        "installed_on": _value(entity, "dateServiceStarted"),
        "supplier": _value(entity, "supplier"),
        "project_id": _value(entity, "projectID"),
        "warranty_until": _value(entity, "warrantyExpirationDate"),
    }
    point = _value(entity, "location")
    if point is not None:
        values["lon"], values["lat"] = point["coordinates"][:2]
    devices = _value(entity, "refDevice")
    if devices:
        values["device_id"] = _ident(devices[0], "Device")
    return values


def read_entities(
    entities: Iterable[Mapping[str, Any]],
) -> tuple[list[Asset], list[EquipmentModel]]:
    """Cabinets, luminaires and luminaire models back from ``register_entities``' output."""
    assets: list[Asset] = []
    models: list[EquipmentModel] = []
    for entity in entities:
        kind = entity.get("type")
        if kind == "StreetlightModel":
            models.append(
                EquipmentModel(
                    model_id=_ident(entity["id"], "StreetlightModel"),
                    kind=ModelKind.LUMINAIRE,
                    manufacturer=_value(entity, "lanternManufacturerName"),
                    model=_value(entity, "lanternModelName"),
                    light_source=_value(entity, "lampTechnology"),
                    rated_power_w=_value(entity, "powerConsumption"),
                    power_at_min_dim_w=_value(entity, "minPowerConsumption"),
                    rated_life_h=_value(entity, "workingLife"),
                    luminous_flux_lm=_value(entity, "luminousFlux"),
                    warranty_years=_value(entity, "warrantyYears"),
                    replaceable_on_site=_value(entity, "replaceableOnSite"),
                )
            )
        elif kind == "StreetlightControlCabinet":
            values = _located_fields(entity)
            assets.append(
                Asset(
                    asset_id=_ident(entity["id"], "StreetlightControlCabinet"),
                    kind=AssetKind.CABINET,
                    serial=_value(entity, "serialNumber"),
                    contracted_kw=_value(entity, "maximumPowerAvailable"),
                    meter_id=_value(entity, "meterId"),
                    tariff=_value(entity, "tariff"),
                    **_dates(values),
                )
            )
        elif kind == "Streetlight":
            values = _located_fields(entity)
            pole = _value(entity, "streetPoleNum")
            model = _value(entity, "refStreetlightModel")
            assets.append(
                Asset(
                    asset_id=_ident(entity["id"], "Streetlight"),
                    kind=AssetKind.LUMINAIRE,
                    parent_id=pole if pole is not None else _value(entity, "circuit"),
                    model_id=None if model is None else _ident(model, "StreetlightModel"),
                    serial=_value(entity, "serial"),
                    **_dates(values),
                )
            )
        else:
            raise EquipmentImportError(f"{entity.get('id')}: unexpected entity type {kind}")
    return assets, models


def _dates(values: dict[str, Any]) -> dict[str, Any]:
    for name in ("installed_on", "warranty_until"):
        if values.get(name) is not None:
            values[name] = date.fromisoformat(values[name])
    return values
