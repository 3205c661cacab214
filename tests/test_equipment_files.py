"""Equipment register files (pure): CSV, GeoJSON and NGSI-LD round trips, refusals with line
numbers, tree rules, and a property test of the CSV parser."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.equipment.files import (
    parse_assets,
    parse_assets_csv,
    parse_assets_geojson,
    parse_models_csv,
    render_assets_csv,
    render_assets_geojson,
    render_models_csv,
    tree_order,
)
from telemetry.equipment.ngsi_ld import read_entities, register_entities
from telemetry.equipment.records import Asset, AssetKind, EquipmentImportError
from telemetry.equipment.tree import Node, tree_problems

MODELS = """model_id,kind,manufacturer,model,rated_power_w,power_at_min_dim_w,rated_life_h,warranty_years,replaceable_on_site,light_source,luminous_flux_lm
LUM-LED-40,luminaire,Atlas Lumière,"Zellige, façade 40W",40,6,100000,10,true,LED,5200
DRV-D4I,driver,Nour Lighting,D4i driver,,,60000,5,yes,,
OLC-ECO,controller,Rif Controls,LoRa Eco node,0.9,,40000,2,false,,
"""  # noqa: E501

ASSETS = """asset_id,kind,parent_id,label,device_id,model_id,serial,supplier,project_id,installed_on,warranty_until,lat,lon,district,meter_id,contracted_kw,tariff
CAB-0001,cabinet,,"Bab Doukkala, cabinet 1",,,CB18-1,Enertika,HAA-2016-LED,2018-03-01,2023-03-01,31.6341,-7.999,medina,RDM-0001,6,eclairage_public_bt
C-001,circuit,CAB-0001,circuit C-001,,,,,,2018-03-01,,,,medina,,,
C-002,circuit,CAB-0001,,,,,,,,,,,medina,,,
P-MED-00001,pole,C-001,,,,,,,2005-06-01,,31.6342,-7.9991,medina,,,
LUM-MED-00001,luminaire,P-MED-00001,,L-MED-00001,LUM-LED-40,LU18-7,Enertika,HAA-2016-LED,2018-03-02,2028-03-02,31.6342,-7.9991,medina,,,
LUM-MED-00002,luminaire,C-002,façade fitting,L-MED-00002,LUM-LED-40,LU18-8,Enertika,HAA-2016-LED,2018-03-02,2028-03-02,31.6344,-7.9993,medina,,,
DRV-MED-00001,driver,LUM-MED-00001,,,DRV-D4I,DR18-1,Enertika,HAA-2016-LED,2018-03-02,2023-03-02,,,medina,,,
OLC-MED-00001,controller,LUM-MED-00001,,,OLC-ECO,NC18-1,Enertika,HAA-2016-LED,2018-03-02,2020-03-02,,,medina,,,
"""  # noqa: E501


def test_csv_round_trip() -> None:
    parsed = parse_assets_csv(ASSETS)
    assert len(parsed.assets) == 8 and parsed.where["C-001"] == "line 3"
    cabinet = parsed.assets[0]
    assert cabinet.kind is AssetKind.CABINET and cabinet.contracted_kw == 6.0
    assert cabinet.label == "Bab Doukkala, cabinet 1" and cabinet.installed_on == date(2018, 3, 1)
    assert parse_assets_csv(render_assets_csv(parsed.assets)).assets == tree_order(parsed.assets)
    models = parse_models_csv(MODELS)
    assert models[1].replaceable_on_site is True and models[2].replaceable_on_site is False
    assert parse_models_csv(render_models_csv(models)) == sorted(models, key=lambda m: m.model_id)


def test_geojson_round_trip_and_format_sniffing() -> None:
    assets = parse_assets_csv(ASSETS).assets
    text = render_assets_geojson(assets)
    body = json.loads(text)
    first = body["features"][0]
    assert first["geometry"] == {"type": "Point", "coordinates": [-7.999, 31.6341]}
    assert "lat" not in first["properties"] and first["id"] == "CAB-0001"
    circuit = next(f for f in body["features"] if f["id"] == "C-001")
    assert circuit["geometry"] is None
    back = parse_assets(text)
    assert back.assets == tree_order(assets) and back.where["CAB-0001"] == "feature 1"
    assert parse_assets(ASSETS).assets == assets  # CSV when it does not start with "{"


def test_ngsi_ld_round_trip_uses_fiware_names() -> None:
    assets = parse_assets_csv(ASSETS).assets
    models = parse_models_csv(MODELS)
    entities = json.loads(json.dumps(register_entities(assets, models)))
    by_type: dict[str, list[dict[str, object]]] = {}
    for e in entities:
        by_type.setdefault(str(e["type"]), []).append(e)
    assert sorted(by_type) == ["Streetlight", "StreetlightControlCabinet", "StreetlightModel"]
    light = by_type["Streetlight"][0]
    # Attribute names from dataModel.Streetlighting's Streetlight/schema.json.
    assert light["id"] == "urn:ngsi-ld:Streetlight:LUM-MED-00001"
    assert light["refStreetlightModel"] == {
        "type": "Relationship",
        "object": "urn:ngsi-ld:StreetlightModel:LUM-LED-40",
    }
    assert light["refStreetlightControlCabinet"]["object"] == (  # type: ignore[index]
        "urn:ngsi-ld:StreetlightControlCabinet:CAB-0001"
    )
    assert light["circuit"] == {"type": "Property", "value": "C-001"}
    assert light["streetPoleNum"] == {"type": "Property", "value": "P-MED-00001"}
    assert light["controllingMethod"]["value"] == "individual"  # type: ignore[index]
    assert light["refDevice"]["object"] == ["urn:ngsi-ld:Device:L-MED-00001"]  # type: ignore[index]
    assert light["location"] == {
        "type": "GeoProperty",
        "value": {"type": "Point", "coordinates": [-7.9991, 31.6342]},
    }
    assert light["status"]["value"] == "ok"  # type: ignore[index]
    facade = by_type["Streetlight"][1]
    assert facade["locationCategory"]["value"] == "facade"  # type: ignore[index]
    assert facade["controllingMethod"]["value"] == "group"  # type: ignore[index]
    cabinet = by_type["StreetlightControlCabinet"][0]
    # StreetlightControlCabinet/schema.json: the contracted power is maximumPowerAvailable (kW).
    assert cabinet["maximumPowerAvailable"] == {"type": "Property", "value": 6.0}
    assert cabinet["refStreetlightGroup"]["object"] == [  # type: ignore[index]
        "urn:ngsi-ld:StreetlightGroup:C-001",
        "urn:ngsi-ld:StreetlightGroup:C-002",
    ]
    assert cabinet["serialNumber"]["value"] == "CB18-1"  # type: ignore[index]
    model = by_type["StreetlightModel"][0]
    assert model["lampTechnology"]["value"] == "LED"  # type: ignore[index]
    assert model["workingLife"]["value"] == 100000  # type: ignore[index]
    assert len(by_type["StreetlightModel"]) == 1  # drivers and controllers have no FIWARE type

    back_assets, back_models = read_entities(entities)
    carried = [a for a in assets if a.kind in (AssetKind.CABINET, AssetKind.LUMINAIRE)]
    assert sorted(back_assets, key=lambda a: a.asset_id) == sorted(
        carried, key=lambda a: a.asset_id
    )
    assert back_models == [m for m in models if m.kind.value == "luminaire"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("asset_id,colour\nX,red\n", "line 1: bad header: unknown columns ['colour']"),
        ("asset_id,parent_id\nX,Y\n", "missing ['kind']"),
        ("asset_id,kind,kind\nX,pole,cabinet\n", "repeated ['kind']"),
        ("asset_id,kind\nCAB 1,cabinet\n", "line 2: asset_id: String should match"),
        ("asset_id,kind\nCAB-1,cabinet\nX,tram\n", "line 3: kind: Input should be"),
        ("asset_id,kind,installed_on\nCAB-1,cabinet,01/03/2018\n", "line 2: installed_on"),
        ("asset_id,kind,lat\nCAB-1,cabinet,91\n", "line 2: lat: Input should be less"),
        ("asset_id,kind,lat\nCAB-1,cabinet,31.6\n", "line 2: lat, lon: give both"),
        (
            "asset_id,kind,installed_on,warranty_until\nCAB-1,cabinet,2020-01-01,2019-01-01\n",
            "line 2: warranty_until: before installed_on",
        ),
        (
            "asset_id,kind,parent_id,meter_id\nP-1,pole,C-1,RDM-1\n",
            "line 2: meter_id: only a cabinet",
        ),
        ("asset_id,kind\nP-1,pole\n", "line 2: parent_id: a pole needs a parent"),
        ("asset_id,kind,parent_id\nCAB-1,cabinet,CAB-2\n", "line 2: parent_id: a cabinet is"),
        ("asset_id,kind,model_id\nCAB-1,cabinet,M-1\n", "line 2: model_id: a cabinet has no"),
        ("asset_id,kind\nCAB-1,cabinet\nCAB-1,cabinet\n", "line 3: asset_id CAB-1 repeats line 2"),
        (
            "asset_id,kind,meter_id\nCAB-1,cabinet,RDM-1\nCAB-2,cabinet,RDM-1\n",
            "line 3: meter_id RDM-1 is also asset CAB-1's",
        ),
        (
            "asset_id,kind,parent_id,device_id\nCAB-1,cabinet,,L-1\nC-1,circuit,CAB-1,L-1\n",
            "line 3: device_id L-1 is also asset CAB-1's",
        ),
        ("asset_id,kind\nCAB-1,cabinet,extra\n", "line 2: 1 values more than the header's"),
        ('{"type": "FeatureCollection",\n "features": [}', "line 2: not JSON"),
        ('{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": null,'
            ' "properties": {"asset_id": "CAB-1", "kind": "cabinet"}}, {"type": "Feature",'
            ' "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},'
            ' "properties": {"asset_id": "CAB-2", "kind": "cabinet"}}]}',
            "feature 2: geometry must be a Point",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": null,'
            ' "properties": {"asset_id": "CAB-1", "kind": "cabinet", "colour": "red"}}]}',
            "feature 1: unknown properties ['colour']",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": null,'
            ' "properties": {"asset_id": "CAB-1", "kind": "cabinet", "contracted_kw": -3}}]}',
            "feature 1: contracted_kw: Input should be greater than 0",
        ),
    ],
)
def test_bad_asset_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(EquipmentImportError) as e:
        parse_assets(text)
    assert message in str(e.value)


def test_every_problem_is_reported_not_just_the_first() -> None:
    bad = "asset_id,kind,lat,lon\nA,cabinet,95,0\nB,tram,,\nC,cabinet,,\nD,pole,,\n"
    with pytest.raises(EquipmentImportError) as e:
        parse_assets_csv(bad)
    text = str(e.value)
    assert text.startswith("3 problems, nothing imported")
    assert "line 2: lat" in text and "line 3: kind" in text and "line 5: parent_id" in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_id,kind,manufacturer\nM,driver,X\n", "missing ['model']"),
        ("model_id,kind,manufacturer,model\nM,ballast,X,Y\n", "line 2: kind"),
        ("model_id,kind,manufacturer,model\nM,luminaire,X,Y\n", "line 2: rated_power_w: a lum"),
        (
            "model_id,kind,manufacturer,model,light_source\nM,driver,X,Y,LED\n",
            "line 2: light_source: only a luminaire model",
        ),
        (
            "model_id,kind,manufacturer,model,rated_power_w,power_at_min_dim_w\n"
            "M,luminaire,X,Y,40,50\n",
            "line 2: power_at_min_dim_w: above rated_power_w",
        ),
        (
            "model_id,kind,manufacturer,model,replaceable_on_site\nM,driver,X,Y,perhaps\n",
            "line 2: replaceable_on_site",
        ),
        ("model_id,kind,manufacturer,model\nM,driver,X,Y\nM,driver,X,Z\n", "line 3: model_id M"),
    ],
)
def test_bad_model_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(EquipmentImportError) as e:
        parse_models_csv(text)
    assert message in str(e.value)


def _nodes(*rows: tuple[str, AssetKind, str | None]) -> dict[str, Node]:
    return {
        a: Node(asset_id=a, kind=k, parent_id=p, where=f"line {n}")
        for n, (a, k, p) in enumerate(rows, start=2)
    }


def test_tree_rules() -> None:
    good = _nodes(
        ("CAB", AssetKind.CABINET, None),
        ("SC", AssetKind.CONTROLLER, "CAB"),  # a cabinet's segment controller
        ("C", AssetKind.CIRCUIT, "CAB"),
        ("P", AssetKind.POLE, "C"),
        ("L", AssetKind.LUMINAIRE, "P"),
        ("F", AssetKind.LUMINAIRE, "C"),  # a façade fitting, no pole
        ("D", AssetKind.DRIVER, "L"),
        ("O", AssetKind.CONTROLLER, "L"),
    )
    assert tree_problems(good) == []
    missing = _nodes(("C", AssetKind.CIRCUIT, "CAB-9"))
    assert tree_problems(missing) == ["line 2: parent_id CAB-9 of C is no asset"]
    wrong = _nodes(
        ("CAB", AssetKind.CABINET, None),
        ("P", AssetKind.POLE, "CAB"),
        ("D", AssetKind.DRIVER, "P"),
    )
    assert tree_problems(wrong) == [
        "line 3: pole P must hang from circuit, not from cabinet CAB",
        "line 4: driver D must hang from luminaire, not from pole P",
    ]
    cycle = _nodes(
        ("P1", AssetKind.POLE, "P2"),
        ("P2", AssetKind.POLE, "P1"),
        ("L", AssetKind.LUMINAIRE, "P1"),
    )
    problems = tree_problems(cycle)
    assert problems[0] == "line 2: P1 is its own ancestor (P1 → P2 → P1)"
    assert len(problems) == 1  # P2 is in the same loop; L merely hangs below it
    assert tree_problems(_nodes(("C", AssetKind.CIRCUIT, "C"))) == [
        "line 2: C is its own ancestor (C → C)"
    ]


_TEXT = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=40
).filter(lambda s: s == s.strip())
_IDS = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,20}\Z")
_DAYS = st.dates(min_value=date(1950, 1, 1), max_value=date(2090, 1, 1))
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def _assets(draw: st.DrawFn) -> list[Asset]:
    ids = draw(st.lists(_IDS, min_size=1, max_size=12, unique=True))
    out = []
    for n, asset_id in enumerate(ids):
        kind = AssetKind.CABINET if n == 0 else draw(st.sampled_from(list(AssetKind)))
        cabinet = kind is AssetKind.CABINET
        installed = draw(st.none() | _DAYS)
        warranty = None
        if installed is not None and draw(st.booleans()):
            warranty = installed + timedelta(days=draw(st.integers(0, 5000)))
        located = draw(st.booleans())
        out.append(
            Asset(
                asset_id=asset_id,
                kind=kind,
                parent_id=None if cabinet else draw(st.sampled_from(ids)),
                label=draw(st.none() | _TEXT),
                device_id=f"D-{n}" if draw(st.booleans()) else None,
                model_id=draw(st.none() | _IDS) if kind.value in ("luminaire", "driver") else None,
                serial=draw(st.none() | _TEXT),
                supplier=draw(st.none() | _TEXT),
                project_id=draw(st.none() | _TEXT),
                installed_on=installed,
                warranty_until=warranty,
                lat=draw(st.floats(-90, 90)) if located else None,
                lon=draw(st.floats(-180, 180)) if located else None,
                district=draw(st.none() | _TEXT),
                meter_id=f"RDM-{n}" if cabinet and draw(st.booleans()) else None,
                contracted_kw=(
                    draw(st.none() | _FLOATS.filter(lambda x: 0 < x <= 100_000))
                    if cabinet
                    else None
                ),
                tariff=draw(st.none() | _TEXT) if cabinet else None,
            )
        )
    return out


@settings(max_examples=200, deadline=None)
@given(_assets())
def test_csv_parser_reads_back_what_it_writes(assets: list[Asset]) -> None:
    """Any register (the tree aside, which the parser does not judge) survives CSV and GeoJSON."""
    assert parse_assets_csv(render_assets_csv(assets)).assets == tree_order(assets)
    assert parse_assets_geojson(render_assets_geojson(assets)).assets == tree_order(assets)


def test_the_register_domain_imports_no_io() -> None:
    probe = (
        "import sys, json, telemetry.equipment.files, telemetry.equipment.ngsi_ld, "
        "telemetry.equipment.tree, simulators.equipment\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('psycopg', 'paho') or m.startswith('telemetry.storage') or m == 'telemetry.db')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout) == []
