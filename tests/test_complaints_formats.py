"""The pure formats: the platform's import file (CSV/JSON, all or nothing, line-numbered
errors) and the Open311 POST form and GET filters."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.open311.wire import Open311Error, parse_filter, parse_post, services_json
from telemetry.complaints.chikaya import (
    CATEGORIES,
    COLUMNS,
    STATUSES,
    ComplaintImportError,
    detect_format,
    normalise,
    parse_complaints,
)
from telemetry.complaints.services import SERVICES

GOOD_CSV = """id,date,category,description,address,lat,lon,status
CH-2025-0001,2025-12-19T22:10:00+01:00,Éclairage public - panne,Rue sombre,,31.6295,-7.9811,nouvelle
CH-2025-0002,2025-12-20 08:30,Collecte non effectuée,,"Derb Dabachi, Médina",,,en_cours
CH-2025-0003,2025-12-20T09:00:00Z,bus_late,Bus A absent,,31.64,-8.01,traitée
"""


def test_csv_parses_every_column() -> None:
    rows = parse_complaints(GOOD_CSV, "csv")
    assert [r.external_id for r in rows] == ["CH-2025-0001", "CH-2025-0002", "CH-2025-0003"]
    assert [r.service_code for r in rows] == ["streetlight_out", "missed_collection", "bus_late"]
    assert [r.status for r in rows] == ["open", "open", "closed"]
    assert rows[0].lat == 31.6295 and rows[0].lon == -7.9811
    # No offset: the city's local time (UTC+1 in December).
    assert rows[1].requested_at == datetime(2025, 12, 20, 7, 30, tzinfo=UTC)
    assert rows[1].address == "Derb Dabachi, Médina" and rows[1].lat is None


def test_bad_rows_are_all_reported_with_their_line_and_nothing_is_kept() -> None:
    bad = (
        "id,date,category,status,lat,lon,address\n"
        "A1,2025-12-19T22:10:00+01:00,lampadaire eteint,open,31.6,-8.0,\n"  # line 2: fine
        "A2,yesterday,lampadaire eteint,open,31.6,-8.0,\n"  # line 3: date
        "A3,2025-12-19T22:10:00+01:00,potholes,open,31.6,-8.0,\n"  # line 4: category
        "A4,2025-12-19T22:10:00+01:00,depot sauvage,open,31.6,,\n"  # line 5: lon missing
        "A1,2025-12-19T22:10:00+01:00,depot sauvage,open,,,Bab Ftouh\n"  # line 6: repeated id
        "A6,2025-12-19T22:10:00+01:00,depot sauvage,archived,,,Bab Ftouh\n"  # line 7: status
        "A7,2025-12-19T22:10:00+01:00,depot sauvage,open,,,\n"  # line 8: no location
    )
    with pytest.raises(ComplaintImportError) as caught:
        parse_complaints(bad, "csv")
    message = str(caught.value)
    assert message.startswith("6 bad rows, nothing imported")
    for expected in (
        "line 3: date",
        "line 4: category",
        "line 5: lat and lon",
        "line 6: id A1 repeats line 2",
        "line 7: status",
        "line 8: location",
    ):
        assert expected in message
    with pytest.raises(ComplaintImportError, match="bad header"):
        parse_complaints("id,when,category,status\n", "csv")


def test_json_list_or_object_with_item_numbers() -> None:
    items: list[Any] = [
        {"id": "J1", "date": "2025-12-19T22:10:00+01:00", "category": "conteneur plein",
         "status": "open", "lat": 31.63, "lon": -7.99},
        {"id": "J2", "date": "2025-12-19T22:10:00+01:00", "category": "conduite dangereuse",
         "status": "closed", "address": "Avenue Mohammed V"},
    ]  # fmt: skip
    rows = parse_complaints(json.dumps({"complaints": items}), "json")
    assert [r.service_code for r in rows] == ["overflowing_container", "dangerous_driving"]
    assert parse_complaints(json.dumps(items), "json") == rows
    with pytest.raises(ComplaintImportError, match=r"item 2: not an object.*item 3: unknown keys"):
        parse_complaints(json.dumps([items[0], 3, {**items[1], "phone": "x"}]), "json")
    with pytest.raises(ComplaintImportError, match="not valid JSON"):
        parse_complaints("[{", "json")
    assert detect_format("export.csv", " [") == "json"
    assert detect_format("export.txt", "id,date") == "csv"


def test_every_service_is_a_category_and_statuses_map_to_open311() -> None:
    for s in SERVICES:
        assert CATEGORIES[s.code] == s.code
    assert set(STATUSES.values()) == {"open", "closed"}
    assert normalise("Éclairage Public — allumé le jour!") == "eclairage_public_allume_le_jour"


rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.from_regex(r"[A-Za-z0-9._:-]{1,20}", fullmatch=True),
            "date": st.datetimes(
                min_value=datetime(2020, 1, 1),
                max_value=datetime(2030, 1, 1),
                timezones=st.just(UTC),
            ),
            "category": st.sampled_from(sorted(CATEGORIES)),
            "description": st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=50),
            "lat": st.floats(31.5, 31.7, allow_nan=False),
            "lon": st.floats(-8.1, -7.9, allow_nan=False),
            "status": st.sampled_from(sorted(STATUSES)),
        }
    ),
    max_size=20,
    unique_by=lambda r: r["id"],
)


@settings(max_examples=50, deadline=None)
@given(rows_strategy)
def test_csv_and_json_renderings_parse_alike(rows: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({**r, "date": r["date"].isoformat(), "lat": repr(r["lat"]),
                         "lon": repr(r["lon"])})  # fmt: skip
    from_csv = parse_complaints(out.getvalue(), "csv")
    from_json = parse_complaints(
        json.dumps([{**r, "date": r["date"].isoformat()} for r in rows]), "json"
    )
    assert from_csv == from_json
    assert [c.external_id for c in from_csv] == [r["id"] for r in rows]
    assert all(
        c.description == r["description"].strip() for c, r in zip(from_csv, rows, strict=True)
    )


NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


def _form(**values: str) -> dict[str, list[str]]:
    return {k: [v] for k, v in values.items()}


def test_post_form_validation() -> None:
    ok = parse_post(
        _form(service_code="streetlight_out", lat="31.63", long="-7.99", email="a@b.ma",
              first_name="Amina", description="Dark street\nsince Monday"),
        jurisdiction="marrakech.ma",
        now=NOW,
    )  # fmt: skip
    assert ok.complaint.lat == 31.63 and ok.contact.email == "a@b.ma"
    assert ok.complaint.source == "open311" and ok.complaint.requested_at == NOW
    cases: list[tuple[dict[str, list[str]], int, str]] = [
        (_form(lat="31.6", long="-8"), 400, "service_code was not provided"),
        (_form(service_code="potholes", lat="31.6", long="-8"), 404, "not found"),
        (_form(service_code="bus_late"), 400, "location is required"),
        (_form(service_code="bus_late", address_id="12"), 400, "address_id"),
        (_form(service_code="bus_late", lat="31.6"), 400, "lat and long"),
        (_form(service_code="bus_late", lat="91", long="0"), 400, "lat: must be between"),
        (_form(service_code="bus_late", lat="x", long="0"), 400, "not a number"),
        (_form(service_code="bus_late", lat="nan", long="0"), 400, "lat"),
        (_form(service_code="bus_late", address_string="x", email="nope"), 400, "email"),
        (_form(service_code="bus_late", address_string="x", media_url="ftp://x"), 400, "media"),
        (_form(service_code="bus_late", address_string="x", description="d" * 4001), 400, "4,000"),
        (_form(service_code="bus_late", address_string="x\x00"), 400, "control"),
        (_form(service_code="bus_late", address_string="x", jurisdiction_id="rabat"), 404, "rabat"),
        ({"service_code": ["bus_late", "bus_late"], "address_string": ["x"]}, 400, "2 times"),
    ]
    for form, status, words in cases:
        with pytest.raises(Open311Error) as caught:
            parse_post(form, jurisdiction="marrakech.ma", now=NOW)
        assert caught.value.status == status, form
        assert words in caught.value.description, (form, caught.value.description)
        assert caught.value.body() == [{"code": status, "description": caught.value.description}]


def test_get_filters_default_and_limit_to_90_days() -> None:
    f = parse_filter({}, now=NOW)
    assert f.start == NOW - timedelta(days=90) and f.end is None
    f = parse_filter({"start_date": ["2025-12-01T00:00:00Z"]}, now=NOW)
    assert f.end == datetime(2026, 3, 1, tzinfo=UTC)
    f = parse_filter({"end_date": ["2025-12-01"]}, now=NOW)
    assert f.start == datetime(2025, 9, 2, tzinfo=UTC)
    f = parse_filter(
        {"service_request_id": ["3,1", "2"], "status": ["open"], "service_code": ["x"]}, now=NOW
    )
    assert f.ids == [1, 2, 3] and f.statuses is None  # ids override every other argument
    f = parse_filter({"status": ["open,closed"], "service_code": ["bus_late"]}, now=NOW)
    assert f.statuses == ["closed", "open"] and f.service_codes == ["bus_late"]
    for params, words in [
        ({"start_date": ["2025-01-01T00:00:00Z"], "end_date": ["2025-06-01T00:00:00Z"]}, "90 days"),
        ({"start_date": ["2025-01-02T00:00:00Z"], "end_date": ["2025-01-01T00:00:00Z"]}, "after"),
        ({"start_date": ["2025-01-01T00:00:00"]}, "time zone"),
        ({"start_date": ["soon"]}, "w3"),
        ({"status": ["pending"]}, "status"),
        ({"service_request_id": ["1,x"]}, "numbers"),
    ]:
        with pytest.raises(Open311Error, match=words):
            parse_filter(params, now=NOW)


def test_services_list_has_the_spec_fields() -> None:
    listed = services_json()
    codes = {s["service_code"] for s in listed}
    assert {
        "streetlight_out", "streetlight_day", "damaged_pole", "missed_collection",
        "overflowing_container", "illegal_dumping", "bus_late", "dangerous_driving",
    } <= codes  # fmt: skip
    for s in listed:
        assert set(s) == {
            "service_code", "service_name", "description", "metadata", "type", "keywords",
            "group",
        }  # fmt: skip
        assert s["metadata"] is False and s["type"] == "realtime"
