"""Register files: assets as CSV or GeoJSON, the model catalogue as CSV (pure).

Parsing is all-or-nothing: every problem is reported with its line (CSV) or feature (GeoJSON)
and nothing is returned unless the whole file is good.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from enum import Enum
from typing import Any, Final, TypeVar

from pydantic import TypeAdapter, ValidationError

from telemetry.equipment.records import (
    ASSET_COLUMNS,
    KIND_RANK,
    MODEL_COLUMNS,
    Asset,
    EquipmentImportError,
    EquipmentModel,
)

T = TypeVar("T", Asset, EquipmentModel)

_ASSET: Final = TypeAdapter(Asset)
_MODEL: Final = TypeAdapter(EquipmentModel)
_SHOWN: Final = 20


@dataclass(frozen=True, kw_only=True)
class AssetFile:
    """A parsed asset file: its records, and where each came from (``line 7``, ``feature 3``)."""

    assets: list[Asset]
    where: dict[str, str]


def _fail(problems: Sequence[str]) -> EquipmentImportError:
    shown = "; ".join(problems[:_SHOWN])
    more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
    noun = "problem" if len(problems) == 1 else "problems"
    return EquipmentImportError(f"{len(problems)} {noun}, nothing imported: {shown}{more}")


def place_order(problem: str) -> int:
    """Sort key putting problems in file order: ``line 7: ...`` by its number, others first."""
    head = problem.split(":", 1)[0].split()
    return int(head[-1]) if head and head[-1].isdigit() else 0


def _first_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"]) or "row"
    return f"{loc}: {first['msg']}"


def _validate(
    adapter: TypeAdapter[T], rows: Iterable[tuple[str, dict[str, Any]]], key: str
) -> tuple[list[T], dict[str, str], list[str]]:
    """Validate rows (with their location), refusing repeated ``key`` values."""
    records: list[T] = []
    where: dict[str, str] = {}
    problems: list[str] = []
    for place, values in rows:
        try:
            record = adapter.validate_python(values)
        except ValidationError as exc:
            problems.append(f"{place}: {_first_error(exc)}")
            continue
        own = record.problems()
        if own:
            problems.extend(f"{place}: {p}" for p in own)
            continue
        ident = getattr(record, key)
        if ident in where:
            problems.append(f"{place}: {key} {ident} repeats {where[ident]}")
            continue
        where[ident] = place
        records.append(record)
    return records, where, problems


def _unique(assets: Sequence[Asset], where: Mapping[str, str], column: str) -> list[str]:
    seen: dict[str, str] = {}
    problems = []
    for asset in assets:
        value = getattr(asset, column)
        if value is None:
            continue
        if value in seen:
            problems.append(
                f"{where[asset.asset_id]}: {column} {value} is also asset {seen[value]}'s"
            )
        else:
            seen[value] = asset.asset_id
    return problems


def _csv_rows(
    text: str, columns: Sequence[str], required: Sequence[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    header = [c.strip() for c in reader.fieldnames or []]
    unknown = [c for c in header if c not in columns]
    missing = [c for c in required if c not in header]
    twice = sorted({c for c in header if header.count(c) > 1})
    if unknown or missing or twice:
        raise EquipmentImportError(
            f"line 1: bad header: unknown columns {unknown}, missing {missing}, "
            f"repeated {twice}; allowed: {', '.join(columns)}"
        )
    reader.fieldnames = header
    for raw in reader:
        extra = raw.get(None)
        place = f"line {reader.line_num}"
        if extra:
            raise _fail([f"{place}: {len(extra)} values more than the header's columns"])
        values = {k: v.strip() for k, v in raw.items() if k and v is not None}
        yield place, {k: v for k, v in values.items() if v != ""}


def parse_assets_csv(text: str) -> AssetFile:
    """Parse an asset CSV (header naming ``ASSET_COLUMNS``, ``asset_id`` and ``kind`` required)."""
    records, where, problems = _validate(
        _ASSET, _csv_rows(text, ASSET_COLUMNS, ("asset_id", "kind")), "asset_id"
    )
    return _checked(records, where, problems)


def _checked(records: list[Asset], where: dict[str, str], problems: list[str]) -> AssetFile:
    for column in ("device_id", "meter_id"):
        problems += _unique(records, where, column)
    if problems:
        raise _fail(sorted(problems, key=place_order))
    return AssetFile(assets=records, where=where)


def _geojson_rows(text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EquipmentImportError(f"line {exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise EquipmentImportError("not a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list):
        raise EquipmentImportError("FeatureCollection without a features array")
    for number, feature in enumerate(features, start=1):
        place = f"feature {number}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise _fail([f"{place}: not a GeoJSON Feature"])
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            raise _fail([f"{place}: properties is not an object"])
        unknown = sorted(k for k in props if k not in ASSET_COLUMNS)
        if unknown:
            raise _fail([f"{place}: unknown properties {unknown}"])
        values = {k: v for k, v in props.items() if v is not None and v != ""}
        geometry = feature.get("geometry")
        if geometry is not None:
            coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
            if (
                not isinstance(geometry, dict)
                or geometry.get("type") != "Point"
                or not isinstance(coords, list)
                or len(coords) not in (2, 3)
            ):
                raise _fail([f"{place}: geometry must be a Point [lon, lat] or null"])
            if ("lat" in values and values["lat"] != coords[1]) or (
                "lon" in values and values["lon"] != coords[0]
            ):
                raise _fail([f"{place}: lat/lon properties disagree with the geometry"])
            values["lon"], values["lat"] = coords[0], coords[1]
        if "asset_id" not in values and isinstance(feature.get("id"), str):
            values["asset_id"] = feature["id"]
        yield place, values


def parse_assets_geojson(text: str) -> AssetFile:
    """Parse a GeoJSON FeatureCollection whose features' properties carry asset columns."""
    records, where, problems = _validate(_ASSET, _geojson_rows(text), "asset_id")
    return _checked(records, where, problems)


def parse_assets(text: str) -> AssetFile:
    """An asset file in either format: GeoJSON when it starts with ``{``, else CSV."""
    if text.lstrip("\ufeff \t\r\n").startswith("{"):
        return parse_assets_geojson(text)
    return parse_assets_csv(text)


def parse_models_csv(text: str) -> list[EquipmentModel]:
    """Parse a model catalogue CSV (header naming ``MODEL_COLUMNS``)."""
    required = ("model_id", "kind", "manufacturer", "model")
    records, _, problems = _validate(_MODEL, _csv_rows(text, MODEL_COLUMNS, required), "model_id")
    if problems:
        raise _fail(problems)
    return records


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)  # floats: the shortest text that reads back as the same number


def _json_value(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    return value


def tree_order(assets: Iterable[Asset]) -> list[Asset]:
    """Parents before children: by kind depth, then id."""
    return sorted(assets, key=lambda a: (KIND_RANK[a.kind], a.asset_id))


def render_assets_csv(assets: Iterable[Asset]) -> str:
    """Assets as CSV with the full header, parents first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ASSET_COLUMNS)
    for asset in tree_order(assets):
        writer.writerow([_cell(getattr(asset, c)) for c in ASSET_COLUMNS])
    return out.getvalue()


def render_assets_geojson(assets: Iterable[Asset]) -> str:
    """Assets as a GeoJSON FeatureCollection (Point geometry, or null without a location)."""
    features = []
    for asset in tree_order(assets):
        props = {
            c: _json_value(getattr(asset, c)) for c in ASSET_COLUMNS if c not in ("lat", "lon")
        }
        geometry = (
            None
            if asset.lat is None or asset.lon is None
            else {"type": "Point", "coordinates": [asset.lon, asset.lat]}
        )
        features.append(
            {"type": "Feature", "id": asset.asset_id, "geometry": geometry, "properties": props}
        )
    body = {"type": "FeatureCollection", "features": features}
    return json.dumps(body, ensure_ascii=False, indent=1) + "\n"


def render_models_csv(models: Iterable[EquipmentModel]) -> str:
    """The model catalogue as CSV with the full header, by id."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MODEL_COLUMNS)
    for model in sorted(models, key=lambda m: m.model_id):
        writer.writerow([_cell(getattr(model, c)) for c in MODEL_COLUMNS])
    return out.getvalue()


assert tuple(f.name for f in fields(Asset)) == ASSET_COLUMNS
assert tuple(f.name for f in fields(EquipmentModel)) == MODEL_COLUMNS
