"""Energy accounting, pure: the tariff file and its arithmetic, the bill parser, the model of a
night, and every flag on hand-made months (raised when it should be, and not otherwise)."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.dimming import Profile
from telemetry.energy_accounting.bills import (
    COLUMNS,
    Bill,
    BillImportError,
    billing_month,
    parse_bills,
    parse_bills_csv,
    parse_bills_json,
)
from telemetry.energy_accounting.dispute import (
    STYLE,
    Language,
    finding,
    number,
    render_dispute,
)
from telemetry.energy_accounting.model import Clock, day_grid, model_lights
from telemetry.energy_accounting.reconcile import (
    Baseline,
    BillInputs,
    CabinetInputs,
    Circuit,
    Flag,
    FlagCode,
    reconcile_cabinet,
)
from telemetry.energy_accounting.tariffs import (
    EXAMPLE_FILE,
    TariffError,
    load_tariffs,
    parse_tariffs,
    period_cost,
)
from telemetry.solar import sunrise_sunset

TARIFFS = load_tariffs(EXAMPLE_FILE)

_FLAT = """
co2_kg_per_kwh = 0.6
[[tariffs]]
name = "flat"
valid_from = 2020-01-01
fixed_dh_per_month = 20.0
power_dh_per_kw_month = 5.0
  [[tariffs.bands]]
  name = "all"
  from = "00:00"
  to = "24:00"
  dh_per_kwh = 1.25
[[tariffs]]
name = "flat"
valid_from = 2026-03-16
fixed_dh_per_month = 30.0
power_dh_per_kw_month = 5.0
  [[tariffs.bands]]
  name = "all"
  from = "00:00"
  to = "24:00"
  dh_per_kwh = 1.5
"""
FLAT = parse_tariffs(_FLAT, "flat.toml")


# -- tariff file ----------------------------------------------------------------------------


def test_the_example_file_loads_with_every_tariff_the_simulated_register_names() -> None:
    assert set(TARIFFS.tariffs) == {"eclairage_public_bt", "eclairage_public_mt"}
    assert TARIFFS.co2_kg_per_kwh == pytest.approx(0.607)
    mt = TARIFFS.version("eclairage_public_mt", date(2026, 7, 1))
    assert mt.band_at(18 * 60 + 30, 7).name == "peak"
    assert mt.band_at(18 * 60 + 30, 1).name == "peak"
    assert mt.band_at(17 * 60 + 30, 7).name == "normal"
    assert mt.vat_pct == 14.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('to = "24:00"', 'to = "23:00"'), "no band at 23:00"),
        (('from = "00:00"', 'from = "00:60"'), "expected a local time"),
        (("valid_from = 2026-03-16", "valid_from = 2020-01-01"), "same day"),
        (("valid_from = 2026-03-16", 'valid_from = "2026-03-16"'), "TOML date"),
        (("co2_kg_per_kwh = 0.6", ""), "co2_kg_per_kwh is missing"),
        (("dh_per_kwh = 1.5", "dh_per_kwh = -1.5"), "between 0 and"),
        (("dh_per_kwh = 1.5", "dh_per_kwh = 1.5\n  price = 2"), "unknown key(s) price"),
        (('name = "flat"', 'name = "Flat Rate"'), "lower_snake_case"),
        (("power_dh_per_kw_month = 5.0", "power_steps_kw = [6, 3]"), "increasing order"),
    ],
)
def test_a_bad_tariff_file_is_refused_naming_the_place(
    change: tuple[str, str], message: str
) -> None:
    text = (
        _FLAT.replace(*change, 1)
        if change[0] != "valid_from = 2026-03-16"
        else (_FLAT.replace(*change))
    )
    with pytest.raises(TariffError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_tariffs(text, "bad.toml")


def test_overlapping_bands_are_refused() -> None:
    text = (
        _FLAT
        + """
  [[tariffs.bands]]
  name = "night"
  from = "22:00"
  to = "06:00"
  dh_per_kwh = 1.0
"""
    )
    with pytest.raises(TariffError, match="overlap in month 1 at 00:00"):
        parse_tariffs(text, "bad.toml")


def test_a_tariff_not_in_the_file_or_not_yet_valid_is_an_error() -> None:
    with pytest.raises(TariffError, match="no tariff 'unknown'"):
        FLAT.version("unknown", date(2026, 1, 1))
    with pytest.raises(TariffError, match="no version valid on 2019-12-31"):
        FLAT.version("flat", date(2019, 12, 31))


# -- tariff arithmetic ------------------------------------------------------------------------

kwh = st.floats(min_value=0, max_value=1e6, allow_nan=False)
kw = st.one_of(st.none(), st.floats(min_value=0.5, max_value=500))


@given(kwh, kw)
def test_a_calendar_month_pays_its_energy_one_fixed_charge_and_vat(
    k: float, p: float | None
) -> None:
    cost = period_cost(FLAT, "flat", date(2026, 1, 1), date(2026, 1, 31), k, contracted_kw=p)
    before = k * 1.25 + 20.0 + (p or 0.0) * 5.0
    assert cost.before_vat_dh == pytest.approx(before, rel=1e-9, abs=1e-9)
    assert cost.vat_dh == pytest.approx(0.14 * before, rel=1e-9, abs=1e-9)
    assert cost.total_dh == pytest.approx(1.14 * before, rel=1e-9, abs=1e-9)


@given(
    st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 1)),
    st.integers(min_value=1, max_value=80),
    st.integers(min_value=0, max_value=79),
    st.lists(st.floats(min_value=0, max_value=100), min_size=81, max_size=81),
    kw,
)
def test_splitting_a_period_in_two_bills_costs_the_same(
    first: date, days: int, cut: int, raw: list[float], p: float | None
) -> None:
    """Across a price change too (2026-03-16): each day pays its own version."""
    cut = min(cut, days - 1)
    last = first + timedelta(days=days - 1)
    weights = [w + 0.01 for w in raw[:days]]
    total_kwh = sum(weights) * 3.0
    whole = period_cost(
        FLAT, "flat", first, last, total_kwh, contracted_kw=p, daily_weights=weights
    )
    if cut == days - 1:
        return
    mid = first + timedelta(days=cut)
    a = period_cost(
        FLAT,
        "flat",
        first,
        mid,
        sum(weights[: cut + 1]) * 3.0,
        contracted_kw=p,
        daily_weights=weights[: cut + 1],
    )
    b = period_cost(
        FLAT,
        "flat",
        mid + timedelta(days=1),
        last,
        sum(weights[cut + 1 :]) * 3.0,
        contracted_kw=p,
        daily_weights=weights[cut + 1 :],
    )
    assert a.total_dh + b.total_dh == pytest.approx(whole.total_dh, rel=1e-9, abs=1e-6)
    assert a.vat_dh + b.vat_dh == pytest.approx(whole.vat_dh, rel=1e-9, abs=1e-6)


@given(kwh, kwh)
def test_cost_grows_with_energy(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    first, last = date(2026, 6, 1), date(2026, 6, 30)
    assert (
        period_cost(TARIFFS, "eclairage_public_mt", first, last, lo, contracted_kw=60).total_dh
        <= period_cost(TARIFFS, "eclairage_public_mt", first, last, hi, contracted_kw=60).total_dh
        + 1e-6
    )


@given(st.floats(min_value=0, max_value=1), kwh)
def test_bands_share_the_energy_at_their_own_prices(peak: float, k: float) -> None:
    shares = {"peak": peak, "off_peak": 1 - peak}
    cost = period_cost(
        TARIFFS,
        "eclairage_public_mt",
        date(2026, 1, 1),
        date(2026, 1, 31),
        k,
        contracted_kw=None,
        band_shares=shares,
    )
    if peak in (0.0, 1.0) and k == 0:
        return
    expected = k * (peak * 1.52 + (1 - peak) * 0.86)
    assert cost.energy_dh == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_a_bill_across_a_price_change_pays_each_version_its_days() -> None:
    cost = period_cost(FLAT, "flat", date(2026, 3, 1), date(2026, 3, 31), 310.0, contracted_kw=None)
    # 15 days at 1.25, 16 at 1.5; half a month of fixed charge at each (by days of March).
    assert cost.energy_dh == pytest.approx(150 * 1.25 + 160 * 1.5)
    assert cost.fixed_dh == pytest.approx(15 / 31 * 20 + 16 / 31 * 30)


def test_a_period_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(TariffError, match="before it starts"):
        period_cost(FLAT, "flat", date(2026, 3, 2), date(2026, 3, 1), 1.0, contracted_kw=None)


# -- bills ------------------------------------------------------------------------------------

_HEADER = ",".join(COLUMNS)


def _bill(**over: object) -> Bill:
    values: dict[str, object] = {
        "meter_id": "RDM-1",
        "period_start": date(2026, 1, 1),
        "period_end": date(2026, 1, 31),
        "billed_kwh": 1200.0,
        "amount_dh": 1555.2,
        "estimated": False,
    }
    values.update(over)
    return Bill(**values)  # type: ignore[arg-type]


def _csv(bills: list[Bill], delimiter: str = ",") -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(COLUMNS)
    for b in bills:
        row = []
        for c in COLUMNS:
            v = getattr(b, c)
            if v is None:
                row.append("")
            elif isinstance(v, bool):
                row.append("oui" if v else "non")
            elif isinstance(v, float):
                row.append(repr(v).replace(".", ",") if delimiter == ";" else repr(v))
            elif isinstance(v, date):
                row.append(v.strftime("%d/%m/%Y") if delimiter == ";" else v.isoformat())
            else:
                row.append(str(v))
        writer.writerow(row)
    return out.getvalue()


money = st.floats(min_value=0, max_value=1e7, allow_nan=False).map(lambda x: round(x, 2))


@st.composite
def bill_lists(draw: st.DrawFn) -> list[Bill]:
    count = draw(st.integers(min_value=1, max_value=6))
    bills = []
    start = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 1, 1)))
    for k in range(count):
        days = draw(st.integers(min_value=1, max_value=93))
        has_index = draw(st.booleans())
        index_start = draw(money) if has_index else None
        bills.append(
            Bill(
                meter_id=draw(st.sampled_from(["RDM-1", "RDM-2", "A.b/c_9"])) + f"-{k}",
                period_start=start,
                period_end=start + timedelta(days=days - 1),
                billed_kwh=draw(money),
                amount_dh=draw(money),
                estimated=draw(st.booleans()),
                index_start=index_start,
                index_end=None if index_start is None else index_start + draw(money),
                reactive_kvarh=draw(st.one_of(st.none(), money)),
                fixed_charges_dh=draw(st.one_of(st.none(), money)),
                vat_dh=None,
                bill_number=draw(
                    st.one_of(st.none(), st.from_regex(r"[A-Z0-9-]{1,20}", fullmatch=True))
                ),
            )
        )
    return bills


@given(bill_lists(), st.sampled_from([",", ";"]))
def test_bills_written_as_csv_read_back_the_same(bills: list[Bill], delimiter: str) -> None:
    assert parse_bills_csv(_csv(bills, delimiter)).bills == bills


@given(bill_lists())
def test_bills_written_as_json_read_back_the_same(bills: list[Bill]) -> None:
    items = [
        {k: (v.isoformat() if isinstance(v, date) else v) for k, v in dataclasses.asdict(b).items()}
        for b in bills
    ]
    assert parse_bills_json(json.dumps({"bills": items})).bills == bills
    assert parse_bills(json.dumps(items), "x.txt").bills == bills


@given(st.text(max_size=300))
@settings(max_examples=200)
def test_any_text_is_parsed_or_refused_never_crashes(text: str) -> None:
    for parse in (parse_bills_csv, parse_bills_json):
        with contextlib.suppress(BillImportError):
            parse(text)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("RDM-1,2026-01-01,2026-01-31,-5,10,false,,,,,,", "line 3: billed_kwh '-5'"),
        ("RDM-1,2026-01-01,2025-12-31,5,10,false,,,,,,", "line 3: period_end 2025-12-31 is before"),
        ("RDM-1,2026-01-01,2026-05-31,5,10,false,,,,,,", "line 3: a 151-day period"),
        ("RDM-1,2026-13-01,2026-01-31,5,10,false,,,,,,", "line 3: period_start"),
        ("RDM-1,2026-01-01,2026-01-31,5,10,peut-être,,,,,,", "line 3: estimated"),
        ("RDM-1,2026-01-01,2026-01-31,5,10,false,100,,,,,", "index_start and index_end together"),
        ("RDM-1,2026-01-01,2026-01-31,5,10,false,100,90,,,,", "index_end 90 is below"),
        ("RDM 1,2026-01-01,2026-01-31,5,10,false,,,,,,", "line 3: meter_id"),
        (
            "RDM-0,2026-01-15,2026-02-14,5,10,false,,,,,,",
            "line 3: meter RDM-0 2026-01-15..2026-02-14 overlaps line 2",
        ),
        ("RDM-0,2026-01-01,2026-01-31,5,10,false,,,,,,", "bills the same period as line 2"),
        (",2026-02-01,2026-02-28,5,10,false,,,,,,", "line 3: meter_id is missing"),
        ("RDM-1,2026-02-01,2026-02-28,5,10,false,,,,,,,", "line 3: more fields than the header"),
    ],
)
def test_a_bad_line_refuses_the_whole_file_naming_it(line: str, message: str) -> None:
    good = "RDM-0,2026-01-01,2026-01-31,1200,1555.20,false,,,,,,F-1"
    with pytest.raises(BillImportError, match="nothing imported") as info:
        parse_bills_csv(f"{_HEADER}\n{good}\n{line}\n")
    assert message in str(info.value)


def test_a_file_without_a_required_column_is_refused() -> None:
    with pytest.raises(BillImportError, match="missing column\\(s\\) amount_dh"):
        parse_bills_csv("meter_id,period_start,period_end,billed_kwh,estimated\n")
    with pytest.raises(BillImportError, match="unknown column\\(s\\) price"):
        parse_bills_csv(_HEADER + ",price\n")
    with pytest.raises(BillImportError, match="holds no bill"):
        parse_bills_csv(_HEADER + "\n")
    with pytest.raises(BillImportError, match="bill 1: estimated is missing"):
        parse_bills_json('[{"meter_id": "A"}]')


def test_a_bill_is_reconciled_in_the_month_holding_most_of_its_days() -> None:
    assert billing_month(_bill()) == (2026, 1)
    assert billing_month(_bill(period_start=date(2026, 1, 20), period_end=date(2026, 2, 18))) == (
        2026,
        2,
    )
    assert billing_month(_bill(period_start=date(2026, 1, 17), period_end=date(2026, 2, 15))) == (
        2026,
        2,
    )


# -- the model of a night ---------------------------------------------------------------------


def test_a_street_light_burns_dusk_to_dawn_at_the_profile_levels() -> None:
    """Hand computation for the night of 2026-11-10 at the Koutoubia, from solar.sunrise_sunset:
    100 % from sunset to 23:00, 70 % to 01:00, 50 % to 05:00, 80 % to sunrise (UTC+1)."""
    day, lat, lon = date(2026, 11, 10), 31.624, -7.994
    sun = sunrise_sunset(day, lat, lon)
    sun_next = sunrise_sunset(day + timedelta(days=1), lat, lon)
    assert sun is not None and sun_next is not None
    local = timedelta(hours=1)
    dusk = sun[1] + local
    dawn = sun_next[0] + local
    midnight = datetime(2026, 11, 11, tzinfo=UTC)

    def hours(a: datetime, b: datetime) -> float:
        return (b - a).total_seconds() / 3600

    d23 = datetime(2026, 11, 10, 23, tzinfo=UTC)
    level_hours = (
        100 * hours(dusk, d23) + 70 * 2 + 50 * 4 + 80 * hours(midnight + timedelta(hours=5), dawn)
    )
    grid = day_grid([day, day + timedelta(days=1)])
    modelled = model_lights(
        lat=np.array([lat]),
        lon=np.array([lon]),
        circuit_w=np.array([100.0]),
        light_source=["LED"],
        profile=[Profile.STREET],
        grid=grid,
        clock=Clock(),
    )
    # The evening of the 10th plus the morning of the 11th is that one night.
    night_wh = (
        modelled.energy_wh[0, 0]
        - _morning_wh(day, lat, lon)
        + _morning_wh(day + timedelta(days=1), lat, lon)
    )
    assert night_wh == pytest.approx(level_hours, rel=2e-3)


def _morning_wh(day: date, lat: float, lon: float) -> float:
    sun = sunrise_sunset(day, lat, lon)
    assert sun is not None
    dawn = sun[0] + timedelta(hours=1)
    minutes = (dawn - datetime(day.year, day.month, day.day, tzinfo=UTC)).total_seconds() / 60
    # 70 % until 01:00, 50 % until 05:00, 80 % after (dawn is after 05:00 in November).
    return (70 * 60 + 50 * 240 + 80 * (minutes - 300)) / 60


def test_sodium_lamps_burn_at_full_power_and_the_medina_keeps_100_until_two() -> None:
    grid = day_grid([date(2026, 11, 10)])
    m = model_lights(
        lat=np.array([31.63, 31.63, 31.63]),
        lon=np.array([-8.0, -8.0, -8.0]),
        circuit_w=np.array([168.0, 100.0, 100.0]),
        light_source=["HPS", "LED", "LED"],
        profile=[Profile.STREET, Profile.MEDINA, Profile.STREET],
        grid=grid,
        clock=Clock(),
    )
    assert m.energy_wh[0, 0] == pytest.approx(m.full_wh[0, 0])
    assert m.full_wh[0, 0] == pytest.approx(168.0 * m.burning_h[0, 0])
    assert m.energy_wh[1, 0] > m.energy_wh[2, 0]


# -- flags on hand-made months ------------------------------------------------------------------

MONTH = date(2026, 1, 1)


def clean(**over: object) -> CabinetInputs:
    """A cabinet month where everything agrees: 40 lights of 60 W, its meter, its bill."""
    bill = _bill(billed_kwh=1000.0, amount_dh=0.0)
    cost = period_cost(
        TARIFFS, "eclairage_public_bt", MONTH, date(2026, 1, 31), 1000.0, contracted_kw=3.0
    )
    bill = dataclasses.replace(bill, amount_dh=round(cost.total_dh, 2))
    values: dict[str, object] = {
        "cabinet_id": "CAB-1",
        "district": "gueliz",
        "meter_id": "RDM-1",
        "contracted_kw": 3.0,
        "tariff": "eclairage_public_bt",
        "first_day": MONTH,
        "last_day": date(2026, 1, 31),
        "lights": 40,
        "lights_reporting": 40,
        "connected_kw": 2.4,
        "burning_hours": 420.0,
        "modelled_kwh": 1020.0,
        "full_level_kwh": 1360.0,
        "lights_metered_kwh": 985.0,
        "lights_estimated_kwh": 985.0,
        "lights_covered_kwh": 1020.0,
        "cabinet_metered_kwh": 1000.0,
        "peak_kw": 2.4,
        "peak_source": "cabinet_meter",
        "day_kwh": 0.5,
        "day_hours": 1,
        "circuits": [
            Circuit(
                circuit_id="C-1",
                lights=20,
                lights_reporting=20,
                modelled_kwh=510.0,
                metered_kwh=492.0,
            ),
            Circuit(
                circuit_id="C-2",
                lights=20,
                lights_reporting=20,
                modelled_kwh=510.0,
                metered_kwh=493.0,
            ),
        ],
        "bill": BillInputs(
            bill=bill,
            metered_kwh=1000.0,
            metered_source="cabinet_meter",
            modelled_kwh=1020.0,
            daily_weights=[1.0] * 31,
            band_shares={},
        ),
        "baseline": None,
        "month_weights": [1.0] * 31,
        "month_band_shares": {},
    }
    values.update(over)
    return CabinetInputs(**values)  # type: ignore[arg-type]


def codes(inputs: CabinetInputs) -> list[str]:
    return reconcile_cabinet(inputs, TARIFFS).flag_codes


def _with_bill(base: CabinetInputs, **over: object) -> CabinetInputs:
    assert base.bill is not None
    bill = dataclasses.replace(base.bill.bill, **over)  # type: ignore[arg-type]
    return dataclasses.replace(base, bill=dataclasses.replace(base.bill, bill=bill))


def _priced(c: CabinetInputs, billed: float, **over: object) -> CabinetInputs:
    cost = period_cost(
        TARIFFS, "eclairage_public_bt", MONTH, date(2026, 1, 31), billed, contracted_kw=3.0
    )
    return _with_bill(c, billed_kwh=billed, amount_dh=round(cost.total_dh, 2), **over)


def _measured(c: CabinetInputs, kwh: float) -> CabinetInputs:
    assert c.bill is not None
    return dataclasses.replace(c, bill=dataclasses.replace(c.bill, metered_kwh=kwh))


def test_a_clean_month_raises_nothing_and_prices_the_bill() -> None:
    month = reconcile_cabinet(clean(), TARIFFS)
    assert month.flags == []
    assert month.recomputed_dh == month.billed_dh
    assert month.metered_source == "cabinet_meter"
    assert month.dimming_saved_kwh == pytest.approx(1000 * 1360 / 1020 - 1000)


def test_billed_vs_metered_over_three_percent_only() -> None:
    assert codes(_priced(clean(), 1029.0)) == []
    assert codes(_priced(clean(), 1031.0)) == ["billed_vs_metered"]
    assert codes(_priced(clean(), 969.0)) == ["billed_vs_metered"]
    flag = reconcile_cabinet(_priced(clean(), 1100.0), TARIFFS).flags[0]
    assert flag.evidence["gap_kwh"] == pytest.approx(100.0)
    assert flag.evidence["gap_pct"] == pytest.approx(10.0)


def test_an_estimated_bill_is_flagged_as_such_with_its_gap() -> None:
    month = reconcile_cabinet(_priced(clean(), 1200.0, estimated=True), TARIFFS)
    assert month.flag_codes == ["estimated_bill"]
    assert month.flags[0].evidence["gap_kwh"] == pytest.approx(200.0)
    assert codes(_with_bill(clean(), estimated=True)) == ["estimated_bill"]


def test_the_same_kwh_three_bills_running_is_a_flat_rate() -> None:
    base = clean()
    assert base.bill is not None

    def previous(*kwh: float) -> list[Bill]:
        return [
            _bill(
                billed_kwh=k,
                period_start=date(2025, 11 + i, 1) if 11 + i <= 12 else date(2026, i - 1, 1),
                period_end=(date(2025, 12, 1) if i == 0 else date(2026, 1, 1)) - timedelta(days=1),
            )
            for i, k in enumerate(kwh)
        ]

    flat = dataclasses.replace(
        base, bill=dataclasses.replace(base.bill, previous=previous(1000.0, 1000.0))
    )
    assert codes(flat) == ["flat_rate_bill"]
    varied = dataclasses.replace(
        base, bill=dataclasses.replace(base.bill, previous=previous(1100.0, 1000.0))
    )
    assert codes(varied) == []
    short = dataclasses.replace(
        base, bill=dataclasses.replace(base.bill, previous=previous(1000.0))
    )
    assert codes(short) == []


def test_a_cabinet_meter_well_above_its_lights_is_an_unmetered_load() -> None:
    # 985 kWh of lights + 3 % losses = 1014.6; over it by max(20 kWh, 10 %) flags.
    tap = _measured(_priced(clean(cabinet_metered_kwh=1200.0), 1200.0), 1200.0)
    month = reconcile_cabinet(tap, TARIFFS)
    assert month.flag_codes == ["unmetered_load"]
    assert month.flags[0].evidence["excess_kwh"] == pytest.approx(1200 - 985 * 1.03)
    near = _measured(_priced(clean(cabinet_metered_kwh=1100.0), 1100.0), 1100.0)
    assert codes(near) == []
    # Lights too silent to stand for the cabinet: no comparison.
    assert (
        codes(
            clean(cabinet_metered_kwh=1000.0, lights_covered_kwh=500.0, lights_estimated_kwh=500.0)
        )
        == []
    )


def test_a_circuit_metered_under_half_its_model_is_dark() -> None:
    circuits = [
        Circuit(
            circuit_id="C-1", lights=20, lights_reporting=20, modelled_kwh=510.0, metered_kwh=492.0
        ),
        Circuit(
            circuit_id="C-2", lights=20, lights_reporting=3, modelled_kwh=510.0, metered_kwh=80.0
        ),
    ]
    month = reconcile_cabinet(clean(circuits=circuits), TARIFFS)
    assert month.flag_codes == ["dark_circuit"]
    assert month.flags[0].evidence["circuits"] == ["C-2"]
    circuits[1] = dataclasses.replace(circuits[1], metered_kwh=260.0)
    assert codes(clean(circuits=circuits)) == []
    tiny = [
        Circuit(circuit_id="C-3", lights=1, lights_reporting=0, modelled_kwh=5.0, metered_kwh=0.0)
    ]
    assert codes(clean(circuits=circuits[:1] + tiny)) == []


def test_energy_in_full_daylight_is_day_burning() -> None:
    assert codes(clean(day_kwh=21.0, day_hours=40)) == ["day_burning_energy"]
    assert codes(clean(day_kwh=19.0, day_hours=40)) == []  # under 2 % of 1,000 kWh
    assert codes(clean(day_kwh=4.0, day_hours=4)) == []


def test_a_contract_far_above_the_peak_is_over_contracted_when_a_lower_step_fits() -> None:
    big = clean(contracted_kw=12.0)
    big = _with_bill(
        big,
        amount_dh=round(
            period_cost(
                TARIFFS, "eclairage_public_bt", MONTH, date(2026, 1, 31), 1000.0, contracted_kw=12.0
            ).total_dh,
            2,
        ),
    )
    month = reconcile_cabinet(big, TARIFFS)
    assert month.flag_codes == ["over_contracted_power"]
    assert month.flags[0].evidence["suggested_kw"] == 3.0
    # 3 kW for a 1.2 kW peak: far above, but no smaller contract exists.
    assert codes(clean(peak_kw=1.2)) == []


def test_an_amount_off_the_tariff_is_a_mismatch() -> None:
    base = clean()
    assert base.bill is not None
    right = base.bill.bill.amount_dh
    assert codes(_with_bill(base, amount_dh=right + 1.5)) == []
    assert codes(_with_bill(base, amount_dh=right * 1.05)) == ["tariff_mismatch"]
    flag = reconcile_cabinet(_with_bill(base, amount_dh=right + 100), TARIFFS).flags[0]
    assert flag.evidence["difference_dh"] == pytest.approx(100.0, abs=0.01)


def test_savings_against_a_measured_baseline() -> None:
    baseline = Baseline(
        cabinet_id="CAB-1",
        kwh_per_burning_hour=5.0,
        from_month=date(2017, 1, 1),
        to_month=date(2017, 12, 1),
    )
    month = reconcile_cabinet(clean(baseline=baseline), TARIFFS)
    undimmed = 1000 * 1360 / 1020
    assert month.retrofit_saved_kwh == pytest.approx(5.0 * 420 - undimmed)
    saved = 5.0 * 420 - 1000
    assert month.saved_co2_kg == pytest.approx(saved * 0.607, rel=1e-6)
    assert month.saved_dh == pytest.approx(saved * 1.16 * 1.14, rel=1e-3)  # from 2025-07-01


def test_several_flags_come_in_a_fixed_order() -> None:
    c = _with_bill(clean(day_kwh=50.0, day_hours=30), billed_kwh=1500.0, amount_dh=5.0)
    assert codes(c) == ["billed_vs_metered", "day_burning_energy", "tariff_mismatch"]


def test_the_domain_imports_no_database_driver() -> None:
    probe = (
        "import sys, telemetry.dimming, telemetry.energy_accounting.bills, "
        "telemetry.energy_accounting.tariffs, telemetry.energy_accounting.model, "
        "telemetry.energy_accounting.reconcile, telemetry.energy_accounting.month; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'paho') "
        "or m.startswith('telemetry.storage') or m == 'telemetry.db'))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_energy_billed_where_nothing_was_measured_is_a_gap() -> None:
    month = reconcile_cabinet(_measured(_priced(clean(), 50.0), 0.0), TARIFFS)
    assert month.flag_codes == ["billed_vs_metered"]
    assert month.flags[0].evidence["gap_pct"] is None
    assert month.flags[0].evidence["gap_kwh"] == pytest.approx(50.0)


energy = st.floats(min_value=0, max_value=1e5, allow_nan=False)


@given(
    modelled=energy,
    lights_kwh=energy,
    cabinet=st.one_of(st.none(), energy),
    billed=energy,
    metered=st.one_of(st.none(), energy),
    day=energy,
    peak=st.one_of(st.none(), st.floats(min_value=0, max_value=500)),
    lights=st.integers(min_value=0, max_value=200),
)
def test_any_month_gives_json_evidence(
    modelled: float,
    lights_kwh: float,
    cabinet: float | None,
    billed: float,
    metered: float | None,
    day: float,
    peak: float | None,
    lights: int,
) -> None:
    c = _measured(
        _priced(
            clean(
                modelled_kwh=modelled,
                full_level_kwh=modelled * 1.3,
                lights_metered_kwh=lights_kwh,
                lights_estimated_kwh=lights_kwh,
                lights_covered_kwh=modelled,
                cabinet_metered_kwh=cabinet,
                day_kwh=day,
                peak_kw=peak,
                lights=lights,
            ),
            billed,
        ),
        metered if metered is not None else 0.0,
    )
    month = reconcile_cabinet(c, TARIFFS)
    json.dumps([f.evidence for f in month.flags], allow_nan=False)
    json.dumps(dataclasses.asdict(month), default=str, allow_nan=False)


@pytest.mark.parametrize("language", ["fr", "ar"])
def test_a_dispute_summary_states_every_finding_with_its_figures(language: Language) -> None:
    base = reconcile_cabinet(_measured(_priced(clean(), 1200.0), 1000.0), TARIFFS)
    # Every kind of finding, with the evidence the reconciliation gives it.
    samples = [
        reconcile_cabinet(c, TARIFFS).flags
        for c in (
            _measured(_priced(clean(), 1200.0), 1000.0),
            _priced(clean(), 1200.0, estimated=True),
            _measured(_priced(clean(cabinet_metered_kwh=1200.0), 1200.0), 1200.0),
            clean(
                circuits=[
                    Circuit(
                        circuit_id="C-2",
                        lights=20,
                        lights_reporting=3,
                        modelled_kwh=510.0,
                        metered_kwh=80.0,
                    )
                ]
            ),
            clean(day_kwh=50.0, day_hours=30),
            clean(contracted_kw=12.0),
            _with_bill(clean(), amount_dh=5.0),
        )
    ]
    flags = [f for found in samples for f in found]
    flat = Flag(
        code=FlagCode.FLAT_RATE_BILL,
        message="",
        evidence={"periods": ["a", "b", "c"], "billed_kwh": [1000.0, 1000.0, 1000.0]},
    )
    flags.append(flat)
    assert {f.code for f in flags} == set(FlagCode)
    row = dataclasses.replace(base, flags=flags, bill_number="<F-1&2>")
    page = render_dispute(row, language)
    assert f'lang="{language}" dir="{"rtl" if language == "ar" else "ltr"}"' in page
    assert "&lt;F-1&amp;2&gt;" in page and "<F-1" not in page
    assert page.count("<li ") == len(flags)
    for flag in flags:
        assert finding(flag, language) and "{" not in finding(flag, language)
    assert "1\u202f200" in page  # the billed kWh, as the bills print it
    assert ("Réclamation" in page) == (language == "fr")
    assert ("شكاية" in page) == (language == "ar")
    assert number(1234.5, 2) == "1\u202f234,50" and number(None) == "—"


def test_the_served_dispute_page_links_the_same_style() -> None:
    css = (Path(__file__).parents[1] / "api" / "static" / "dispute.css").read_text("utf-8")
    assert css.split("\n", 1)[1] == STYLE.lstrip()
    row = reconcile_cabinet(_priced(clean(), 1200.0, estimated=True), TARIFFS)
    served = render_dispute(row, "fr", stylesheet="/static/dispute.css")
    assert '<link rel="stylesheet" href="/static/dispute.css">' in served
    assert "<style>" not in served and "<style>" in render_dispute(row, "fr")
