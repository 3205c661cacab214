"""A reconciled month of electricity: modelled, metered and billed per cabinet, district and
city, with the flags and their evidence (docs/energy_accounting.md)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.deps import DbDep, ReadCity, RuntimeDep
from api.errors import ERROR_RESPONSES, ApiError
from telemetry.energy_accounting.dispute import render_dispute
from telemetry.energy_accounting.month import Totals, by_district, totals
from telemetry.energy_accounting.reconcile import CabinetMonth
from telemetry.months import parse_month
from telemetry.storage.energy_accounting import reconciliation

router = APIRouter(prefix="/api/v1/energy", tags=["energy"], responses=ERROR_RESPONSES)

Month = Annotated[str, Query(description="local month, YYYY-MM", pattern=r"^\d{4}-\d{2}$")]
District = Annotated[str | None, Query(min_length=1, max_length=200, description="one district")]


class FlagOut(BaseModel):
    """One finding with its evidence."""

    code: str
    message: str
    evidence: dict[str, Any]


class TotalsOut(BaseModel):
    """A district's or the city's month (kWh, DH, kg CO2e)."""

    key: str = Field(description='district, "" for cabinets without one, or "city"')
    cabinets: int
    lights: int
    modelled_kwh: float
    metered_kwh: float
    metered_cabinets: int
    billed_kwh: float
    billed_dh: float
    recomputed_dh: float
    billed_cabinets: int
    dimming_saved_kwh: float
    retrofit_saved_kwh: float
    saved_dh: float
    saved_co2_kg: float
    flags: dict[str, int]


class CabinetOut(BaseModel):
    """One cabinet's reconciled month."""

    cabinet_id: str
    district: str | None
    meter_id: str | None
    tariff: str | None
    contracted_kw: float | None
    lights: int
    lights_reporting: int
    connected_kw: float
    burning_hours: float
    modelled_kwh: float
    lights_metered_kwh: float
    cabinet_metered_kwh: float | None
    metered_kwh: float | None
    metered_source: str | None
    peak_kw: float | None
    day_burning_kwh: float
    bill_number: str | None
    bill_period_start: date | None
    bill_period_end: date | None
    billed_kwh: float | None
    billed_dh: float | None
    bill_estimated: bool | None
    bill_metered_kwh: float | None
    recomputed_dh: float | None
    expected_dh: float | None
    dimming_saved_kwh: float
    retrofit_saved_kwh: float | None
    saved_dh: float | None
    saved_co2_kg: float
    flags: list[FlagOut]
    notes: list[str]


class ReconciliationOut(BaseModel):
    """A month as last reconciled by ``python -m telemetry energy reconcile``."""

    month: str
    district: str | None
    computed_at: datetime
    tariff_source: str
    city: TotalsOut
    districts: list[TotalsOut]
    cabinets: list[CabinetOut]


def _totals(t: Totals) -> TotalsOut:
    return TotalsOut(**vars(t))


def _cabinet(row: CabinetMonth) -> CabinetOut:
    values = {k: v for k, v in vars(row).items() if k not in ("month", "flags")}
    flags = [FlagOut(code=f.code.value, message=f.message, evidence=f.evidence) for f in row.flags]
    return CabinetOut(**values, flags=flags)


def _first_day(month: str) -> date:
    try:
        first = parse_month(month)
    except ValueError as exc:
        raise ApiError(422, "invalid_month", str(exc)) from None
    # The API's days are 1970-2099 (api/timerange.py), narrower than the months' own range.
    if not 1970 <= first.year <= 2099:
        raise ApiError(422, "invalid_month", f"month {month!r}: year out of range 1970-2099")
    return first


@router.get("/reconciliation", summary="A month's modelled, metered and billed electricity")
async def energy_reconciliation(
    month: Month,
    _: ReadCity,
    conn: DbDep,
    runtime: RuntimeDep,
    district: District = None,
) -> ReconciliationOut:
    """Per cabinet, per district and city-wide: modelled energy (inventory × dimming ×
    astronomical clock), metered energy (cabinet meter, lights' meters), the bill and its
    cost recomputed from the tariff, savings, and the flags with their evidence."""
    run, rows = await reconciliation(conn, _first_day(month), district)
    if run is None:
        raise ApiError(404, "not_found", f"{month} has not been reconciled")
    if district is not None and not rows:
        raise ApiError(404, "not_found", f"no cabinets in district {district} in {month}")
    return ReconciliationOut(
        month=month,
        district=district,
        computed_at=run.computed_at.astimezone(ZoneInfo(runtime.api.timezone)),
        tariff_source=run.tariff_source,
        city=_totals(totals(rows, district or "city")),
        districts=[_totals(t) for t in by_district(rows)],
        cabinets=[_cabinet(r) for r in rows],
    )


#: The CSV's columns: every figure of a cabinet month, its flags as space-separated codes.
CSV_COLUMNS: Final = (
    "month",
    *(name for name in CabinetOut.model_fields if name not in ("flags", "notes")),
    "flags",
)
_CSV_RESPONSE: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": f"one row per cabinet (header: {','.join(CSV_COLUMNS)})",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
_HTML_RESPONSE: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "description": "a printable page (HTML) in French or Arabic",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}


async def _stored(conn: DbDep, month: str, district: str | None) -> tuple[date, list[CabinetMonth]]:
    first = _first_day(month)
    run, rows = await reconciliation(conn, first, district)
    if run is None:
        raise ApiError(404, "not_found", f"{month} has not been reconciled")
    return first, rows


@router.get(
    "/reconciliation.csv",
    summary="A reconciled month per cabinet, as CSV",
    response_class=Response,
    responses=_CSV_RESPONSE,
)
async def energy_reconciliation_csv(
    month: Month, _: ReadCity, conn: DbDep, district: District = None
) -> Response:
    """The cabinets of a reconciled month (one district's, or all), one row each, for the
    finance department's spreadsheets."""
    first, rows = await _stored(conn, month, district)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = vars(row)
        writer.writerow(
            [
                f"{first:%Y-%m}",
                *("" if values[c] is None else values[c] for c in CSV_COLUMNS[1:-1]),
                " ".join(row.flag_codes),
            ]
        )
    name = f"energy-reconciliation_{month}{'_' + district if district else ''}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


CabinetId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get(
    "/reconciliation/{cabinet_id}/dispute",
    summary="A printable dispute summary of a flagged cabinet month",
    response_class=Response,
    responses=_HTML_RESPONSE,
)
async def energy_dispute(
    cabinet_id: CabinetId,
    month: Month,
    _: ReadCity,
    conn: DbDep,
    lang: Annotated[Literal["fr", "ar"], Query(description="fr or ar")] = "fr",
) -> Response:
    """The summary to send the distributor: the bill, what was measured and modelled, each
    finding with its figures (French, or Arabic right to left)."""
    rows = (await _stored(conn, month, None))[1]
    row = next((r for r in rows if r.cabinet_id == cabinet_id), None)
    if row is None:
        raise ApiError(404, "not_found", f"no cabinet {cabinet_id} in {month}")
    if not row.flags:
        raise ApiError(404, "not_found", f"cabinet {cabinet_id} has no flag in {month}")
    page = render_dispute(row, lang, stylesheet="/static/dispute.css")
    return Response(page, media_type="text/html; charset=utf-8")
