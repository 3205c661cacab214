"""The device registry record and its CSV form (pure: parsing and rendering, no I/O)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from telemetry.errors import RegistryImportError
from telemetry.topics import Fleet

CSV_COLUMNS: Final = (
    "device_id",
    "fleet",
    "label",
    "route",
    "district",
    "circuit",
    "rated_w",
    "lat",
    "lon",
    "operator",
    "external_id",
)
REQUIRED_COLUMNS: Final = ("device_id", "fleet")

OptionalText = Annotated[str | None, Field(default=None, max_length=200)]


class DeviceRecord(BaseModel):
    """One row of the ``devices`` table as imported and exported."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    fleet: Fleet
    label: OptionalText = None
    route: OptionalText = None
    district: OptionalText = None
    circuit: OptionalText = None
    rated_w: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    lat: float | None = Field(default=None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(default=None, ge=-180, le=180, allow_inf_nan=False)
    operator: OptionalText = None
    # The device's identity in its own protocol (IMEI, DevEUI, ...), which gateways map to
    # device_id; printable ASCII without spaces.
    external_id: str | None = Field(default=None, pattern=r"^[!-~]{1,64}$")

    def as_row(self) -> tuple[object, ...]:
        """Values in ``CSV_COLUMNS`` order."""
        return tuple(getattr(self, c) if c != "fleet" else self.fleet.value for c in CSV_COLUMNS)


def parse_devices_csv(text: str) -> list[DeviceRecord]:
    """Parse a registry CSV (header naming ``devices`` columns); all rows valid or an error."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in CSV_COLUMNS]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if unknown or missing:
        raise RegistryImportError(
            f"bad header: unknown columns {unknown}, missing {missing}; "
            f"allowed: {', '.join(CSV_COLUMNS)}"
        )
    records: list[DeviceRecord] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    seen_external: dict[str, int] = {}
    for line_no, raw in enumerate(reader, start=2):
        values = {k: (v.strip() if v is not None else None) for k, v in raw.items() if k}
        cleaned = {k: (v if v != "" else None) for k, v in values.items()}
        try:
            record = DeviceRecord.model_validate(cleaned)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in first["loc"])
            problems.append(f"line {line_no}: {loc}: {first['msg']}")
            continue
        if record.device_id in seen:
            problems.append(
                f"line {line_no}: device_id {record.device_id} "
                f"repeats line {seen[record.device_id]}"
            )
            continue
        if record.external_id is not None and record.external_id in seen_external:
            problems.append(
                f"line {line_no}: external_id {record.external_id} "
                f"repeats line {seen_external[record.external_id]}"
            )
            continue
        seen[record.device_id] = line_no
        if record.external_id is not None:
            seen_external[record.external_id] = line_no
        records.append(record)
    if problems:
        shown = "; ".join(problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise RegistryImportError(f"{len(problems)} bad rows, nothing imported: {shown}{more}")
    return records


def render_devices_csv(records: Iterable[DeviceRecord]) -> str:
    """Render records as registry CSV with the standard header."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        writer.writerow(["" if v is None else v for v in record.as_row()])
    return out.getvalue()
