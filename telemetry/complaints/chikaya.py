"""The import format of complaints exported by the national platform (Chikaya), pure.

CSV with the header ``id,date,category,description,address,lat,lon,status`` (any order;
``description``, ``address``, ``lat``, ``lon`` optional), or JSON: a list of objects with the
same keys, bare or as ``{"complaints": [...]}``. A row needs an address or both coordinates.
The whole file is validated first: any bad row and nothing is imported, every problem is
reported with its CSV line (or JSON item) number. Documented in docs/open311.md.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from telemetry.complaints.services import BY_CODE
from telemetry.errors import TelemetryError

SOURCE: Final = "chikaya"
COLUMNS: Final = ("id", "date", "category", "description", "address", "lat", "lon", "status")
REQUIRED: Final = ("id", "date", "category", "status")
MAX_PROBLEMS_SHOWN: Final = 20
_ID_RE: Final = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")

#: Platform categories (normalised: lower case, no accents, words joined by "_") -> service
#: code. Every service code is accepted as a category too.
CATEGORIES: Final[dict[str, str]] = {
    **{code: code for code in BY_CODE},
    "eclairage_public_panne": "streetlight_out",
    "eclairage_public_en_panne": "streetlight_out",
    "lampadaire_eteint": "streetlight_out",
    "eclairage_eteint": "streetlight_out",
    "eclairage_public_allume_le_jour": "streetlight_day",
    "lampadaire_allume_le_jour": "streetlight_day",
    "poteau_endommage": "damaged_pole",
    "poteau_electrique_endommage": "damaged_pole",
    "lampadaire_endommage": "damaged_pole",
    "collecte_non_effectuee": "missed_collection",
    "dechets_non_collectes": "missed_collection",
    "ordures_non_ramassees": "missed_collection",
    "conteneur_plein": "overflowing_container",
    "bac_deborde": "overflowing_container",
    "conteneur_deborde": "overflowing_container",
    "depot_sauvage": "illegal_dumping",
    "depot_sauvage_de_dechets": "illegal_dumping",
    "bus_absent": "bus_late",
    "bus_en_retard": "bus_late",
    "retard_bus": "bus_late",
    "conduite_dangereuse": "dangerous_driving",
    "exces_de_vitesse": "dangerous_driving",
}

#: Platform statuses (normalised) -> Open311 status.
STATUSES: Final[dict[str, Literal["open", "closed"]]] = {
    "open": "open",
    "new": "open",
    "nouvelle": "open",
    "recue": "open",
    "en_cours": "open",
    "en_traitement": "open",
    "in_progress": "open",
    "closed": "closed",
    "resolved": "closed",
    "traitee": "closed",
    "resolue": "closed",
    "cloturee": "closed",
    "rejetee": "closed",
}


class ComplaintImportError(TelemetryError):
    """A complaints file is malformed; nothing of it was imported."""


@dataclass(frozen=True, slots=True)
class ImportedComplaint:
    """One valid complaint of an import file."""

    external_id: str
    requested_at: datetime
    service_code: str
    category: str
    description: str
    address: str | None
    lat: float | None
    lon: float | None
    status: Literal["open", "closed"]


def normalise(text: str) -> str:
    """``"Éclairage public - panne"`` -> ``"eclairage_public_panne"``."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", plain.lower()).strip("_")


class _RowError(ValueError):
    pass


def _text(raw: dict[str, Any], key: str, limit: int) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    value = value.strip()
    if not value:
        return None
    if len(value) > limit:
        raise _RowError(f"{key}: longer than {limit} characters")
    return value


def _coordinate(raw: dict[str, Any], key: str, bound: float) -> float | None:
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise _RowError(f"{key}: not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _RowError(f"{key}: not a number: {value!r}") from None
    if not -bound <= number <= bound:
        raise _RowError(f"{key}: {number} is outside -{bound:g}..{bound:g}")
    return number


def _date(value: str | None, zone: ZoneInfo) -> datetime:
    if value is None:
        raise _RowError("date: missing")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _RowError(f"date: not an ISO 8601 date and time: {value!r}") from None
    # Platform exports without an offset are in the city's local time.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def parse_row(raw: dict[str, Any], zone: ZoneInfo) -> ImportedComplaint:
    """Validate one row (keys as in ``COLUMNS``); ValueError says what is wrong."""
    external_id = _text(raw, "id", 128)
    if external_id is None or not _ID_RE.match(external_id):
        raise _RowError(f"id: missing or not 1-128 of A-Z a-z 0-9 . _ : / -: {raw.get('id')!r}")
    requested_at = _date(_text(raw, "date", 64), zone)
    category = _text(raw, "category", 200)
    if category is None:
        raise _RowError("category: missing")
    code = CATEGORIES.get(normalise(category))
    if code is None:
        raise _RowError(f"category: unknown {category!r} (docs/open311.md lists the categories)")
    status_text = _text(raw, "status", 64)
    status = STATUSES.get(normalise(status_text or ""))
    if status is None:
        raise _RowError(f"status: unknown {status_text!r}; use one of {', '.join(STATUSES)}")
    lat = _coordinate(raw, "lat", 90)
    lon = _coordinate(raw, "lon", 180)
    if (lat is None) != (lon is None):
        raise _RowError("lat and lon: give both or neither")
    address = _text(raw, "address", 500)
    if lat is None and address is None:
        raise _RowError("location: give an address or lat and lon")
    return ImportedComplaint(
        external_id=external_id,
        requested_at=requested_at,
        service_code=code,
        category=category,
        description=_text(raw, "description", 4000) or "",
        address=address,
        lat=lat,
        lon=lon,
        status=status,
    )


def _csv_rows(text: str) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    unknown = [c for c in header if c not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    if unknown or missing:
        raise ComplaintImportError(
            f"bad header: unknown columns {unknown}, missing {missing}; "
            f"allowed: {', '.join(COLUMNS)}"
        )
    rows = []
    for raw in reader:
        values = {k.strip(): v for k, v in raw.items() if k is not None}
        if None in raw:
            values["__extra__"] = raw[None]
        rows.append((f"line {reader.line_num}", values))
    return rows


def _json_rows(text: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ComplaintImportError(f"not valid JSON: line {exc.lineno}: {exc.msg}") from None
    if isinstance(data, dict) and set(data) == {"complaints"}:
        data = data["complaints"]
    if not isinstance(data, list):
        raise ComplaintImportError('JSON: expected a list of complaints or {"complaints": [...]}')
    rows: list[tuple[str, dict[str, Any]]] = []
    for n, item in enumerate(data, start=1):
        where = f"item {n}"
        if not isinstance(item, dict):
            rows.append((where, {"__not_object__": True}))
            continue
        rows.append((where, item))
    return rows


def detect_format(name: str, text: str) -> Literal["csv", "json"]:
    """JSON when the file name ends in .json or the text starts with [ or {, else CSV."""
    if name.lower().endswith(".json") or text.lstrip("\ufeff \t\r\n")[:1] in ("[", "{"):
        return "json"
    return "csv"


def parse_complaints(
    text: str, fmt: Literal["csv", "json"], *, timezone: str = "Africa/Casablanca"
) -> list[ImportedComplaint]:
    """Every complaint of an export file, or ComplaintImportError listing every bad row."""
    zone = ZoneInfo(timezone)
    rows = _csv_rows(text) if fmt == "csv" else _json_rows(text)
    complaints: list[ImportedComplaint] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for where, raw in rows:
        if raw.get("__not_object__"):
            problems.append(f"{where}: not an object")
            continue
        if "__extra__" in raw:
            problems.append(f"{where}: more values than header columns")
            continue
        unknown = sorted(k for k in raw if k not in COLUMNS)
        if unknown:
            problems.append(f"{where}: unknown keys {unknown}")
            continue
        try:
            complaint = parse_row(raw, zone)
        except _RowError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if complaint.external_id in seen:
            problems.append(
                f"{where}: id {complaint.external_id} repeats {seen[complaint.external_id]}"
            )
            continue
        seen[complaint.external_id] = where
        complaints.append(complaint)
    if problems:
        shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
        more = len(problems) - MAX_PROBLEMS_SHOWN
        tail = f" (and {more} more)" if more > 0 else ""
        raise ComplaintImportError(f"{len(problems)} bad rows, nothing imported: {shown}{tail}")
    return complaints
