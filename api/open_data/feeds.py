"""The public feeds: their columns, units, filters and sources, and the definitions behind the
materialised figures (pure; docs/open_data.md says the same in prose)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

ColumnType = Literal["date", "month", "datetime", "string", "integer", "number"]
Period = Literal["day", "month", "now"]
Filter = Literal["district", "operator", "service_code", "line"]

# Definitions of the materialised figures (passed to the SQL of migration 0013).
#: A truck visits a collection point with a fix within its radius at or below this speed
#: (the missed_collection rule's default, alerts/thresholds.toml collection_stop_kmh).
STOP_KMH: Final = 5.0
#: A bus passes a terminus with a fix within this distance of the stop.
TERMINUS_M: Final = 150.0
#: Terminus passages further apart than this are not one trip.
MAX_TRIP: Final = timedelta(hours=3)
#: A day (or night) is materialised this long after it ended, so most late fixes are in.
SETTLE: Final = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a feed: the same name, value and order in CSV and JSON."""

    name: str
    type: ColumnType
    description: str
    unit: str | None = None
    source: str | None = None  # attribute of the storage row (default: name)
    scale: float = 1.0
    digits: int | None = None  # rounding of numbers

    @property
    def attribute(self) -> str:
        """The storage row's attribute this column reads."""
        return self.source or self.name


@dataclass(frozen=True, slots=True)
class Feed:
    """A public feed, served as ``/open-data/v1/<name>.csv`` and ``.json``."""

    name: str
    title: str
    description: str
    period: Period
    columns: tuple[Column, ...]
    filters: tuple[Filter, ...]
    update: str
    source: str

    @property
    def column_names(self) -> list[str]:
        """Column names in order (the CSV header)."""
        return [c.name for c in self.columns]


def _date(name: str = "date") -> Column:
    return Column(name, "date", "local day (Africa/Casablanca), YYYY-MM-DD", source="period")


_MONTH: Final = Column(
    "month", "month", "local month (Africa/Casablanca), YYYY-MM", source="period"
)
_DISTRICT: Final = Column(
    "district", "string", "arrondissement of the lights (empty: lights without a district)"
)
_LIGHTS_MAX: Final = Column(
    "lights", "integer", "most lights reporting a reading in any hour of the period", "lights"
)
_HOURS: Final = Column("hours", "integer", "hours of the period with readings", "h")
_ENERGY: Final = Column(
    "energy_kwh",
    "number",
    "lighting consumption: the rise of each light's meter, summed over the district",
    "kWh",
    source="energy_wh",
    scale=0.001,
    digits=3,
)
_LIGHT_COUNTS: Final = (
    Column("lights", "integer", "registered streetlights", "lights"),
    Column("in_service", "integer", "lights with no active fault that reported recently", "lights"),
    Column("faulty", "integer", "lights with an active fault condition", "lights"),
    Column(
        "silent",
        "integer",
        "lights without a fault that sent no reading in the last 45 minutes",
        "lights",
    ),
)
_WASTE_COUNTS: Final = (
    Column("planned", "integer", "rounds planned (one per round per night)", "rounds"),
    Column("completed", "integer", "rounds with every point visited", "rounds"),
    Column("points", "integer", "collection points planned", "points"),
    Column("points_visited", "integer", "collection points visited", "points"),
)
_BUS_COUNTS: Final = (
    Column("km", "number", "service kilometres driven on the line (GPS)", "km", digits=3),
    Column("trips", "integer", "terminus-to-terminus trips completed", "trips"),
)
_OPERATOR: Final = Column(
    "operator", "string", "collection operator of the round's truck (empty: unassigned round)"
)
_WASTE_DISTRICT: Final = Column(
    "district", "string", "district of the round's truck (empty: unassigned round)"
)
_LINE: Final = Column("line", "string", "bus line")

_ENERGY_SOURCE: Final = (
    "circuit/district hourly energy rollups (materialised hours only: the current hour is "
    "missing until the rollups pass it)"
)

FEEDS: Final[tuple[Feed, ...]] = (
    Feed(
        "energy-daily",
        "Street lighting energy per district and day",
        "Electricity used by the streetlights of each district per local day.",
        "day",
        (_date(), _DISTRICT, _ENERGY, _LIGHTS_MAX, _HOURS),
        ("district",),
        "hourly (every rollup refresh, up to 15 minutes)",
        _ENERGY_SOURCE,
    ),
    Feed(
        "energy-monthly",
        "Street lighting energy per district and month",
        "Electricity used by the streetlights of each district per local month.",
        "month",
        (_MONTH, _DISTRICT, _ENERGY, _LIGHTS_MAX, _HOURS),
        ("district",),
        "hourly (every rollup refresh, up to 15 minutes)",
        _ENERGY_SOURCE,
    ),
    Feed(
        "lights-status",
        "Streetlights in service and faulty per district, now",
        "Every registered streetlight classified now: faulty (an active fault condition), "
        "else silent (no reading for 45 minutes), else in service.",
        "now",
        (
            Column("as_of", "datetime", "when the figures were read, RFC 3339 local time"),
            _DISTRICT,
            *_LIGHT_COUNTS,
        ),
        ("district",),
        "live (computed on each request)",
        "latest reading and fault state of every light",
    ),
    Feed(
        "lights-status-daily",
        "Streetlights in service and faulty per district and day",
        "The same classification at the end of each local day, and how many lights had a "
        "fault at any time of the day.",
        "day",
        (
            _date(),
            _DISTRICT,
            *_LIGHT_COUNTS,
            Column(
                "faulty_during_day",
                "integer",
                "lights with an active fault condition at any time of the day",
                "lights",
            ),
        ),
        ("district",),
        "daily, shortly after local midnight; the last 8 days are recomputed then",
        "fault events and readings of every light, materialised per day",
    ),
    Feed(
        "fault-repairs-monthly",
        "Streetlight fault repair times per district and month",
        "Light faults repaired in each local month (by the time of repair): how many, and the "
        "median and 90th percentile of the time from the fault's start to its repair.",
        "month",
        (
            _MONTH,
            Column("district", "string", "district of the fault (empty: none recorded)"),
            Column("repairs", "integer", "faults repaired in the month", "repairs"),
            Column("median_hours", "number", "median time to repair", "h", digits=2),
            Column("p90_hours", "number", "90th percentile of the time to repair", "h", digits=2),
        ),
        ("district",),
        "live (computed on each request)",
        "maintenance alerts of streetlights, resolved as cleared by the telemetry or by a "
        "crew; not communication losses (silent_light) nor energy anomalies",
    ),
    Feed(
        "complaints-monthly",
        "Citizens' complaints per service and month",
        "Complaints received in each local month, complaints closed in it, and the median and "
        "90th percentile time from request to closure of those closed.",
        "month",
        (
            _MONTH,
            Column("service_code", "string", "Open311 service code of the complaint"),
            Column("received", "integer", "complaints received in the month", "complaints"),
            Column("closed", "integer", "complaints closed in the month", "complaints"),
            Column(
                "median_hours",
                "number",
                "median handling time of the complaints closed (empty: none closed)",
                "h",
                digits=2,
            ),
            Column(
                "p90_hours",
                "number",
                "90th percentile handling time of the complaints closed",
                "h",
                digits=2,
            ),
        ),
        ("service_code",),
        "live (computed on each request)",
        "complaints (Open311 and imported), counts and times only: no text, place or contact",
    ),
    Feed(
        "waste-rounds-daily",
        "Waste collection rounds completed vs planned per night",
        "Rounds planned for each night (the local date the shift starts) and completed: every "
        "point of the round visited by a truck of the round during its shift.",
        "day",
        (_date("night"), _OPERATOR, _WASTE_DISTRICT, *_WASTE_COUNTS),
        ("operator", "district"),
        "daily, shortly after the last shift of the night ends; the last 8 nights are "
        "recomputed then",
        "collection rounds and truck GPS fixes, materialised per night",
    ),
    Feed(
        "waste-rounds-monthly",
        "Waste collection rounds completed vs planned per month",
        "The nightly figures summed per local month.",
        "month",
        (
            _MONTH,
            _OPERATOR,
            _WASTE_DISTRICT,
            *_WASTE_COUNTS,
            Column("nights", "integer", "nights with planned rounds", "nights"),
        ),
        ("operator", "district"),
        "daily (as waste-rounds-daily)",
        "collection rounds and truck GPS fixes, materialised per night",
    ),
    Feed(
        "bus-service-daily",
        "Bus service delivered per line and day",
        "Kilometres driven and terminus-to-terminus trips completed by the buses of each line "
        "per local day.",
        "day",
        (
            _date(),
            _LINE,
            *_BUS_COUNTS,
            Column("vehicles", "integer", "buses that drove on the line", "buses"),
        ),
        ("line",),
        "daily, shortly after local midnight; the last 8 days are recomputed then",
        "bus GPS fixes, line stops and route shapes, materialised per day",
    ),
    Feed(
        "bus-service-monthly",
        "Bus service delivered per line and month",
        "The daily figures summed per local month.",
        "month",
        (
            _MONTH,
            _LINE,
            *_BUS_COUNTS,
            Column("vehicles", "integer", "most buses on the line on one day", "buses"),
            Column("days", "integer", "days with service on the line", "days"),
        ),
        ("line",),
        "daily (as bus-service-daily)",
        "bus GPS fixes, line stops and route shapes, materialised per day",
    ),
    Feed(
        "energy-accounting-monthly",
        "Street lighting electricity per district and month: modelled, metered and billed",
        "The monthly reconciliation of the lighting bill (docs/energy_accounting.md): the "
        "electricity the inventory should use (rated power × dimming × astronomical clock), what "
        "the meters measured, what the utility billed and what the tariff says it should cost, "
        "and the savings of dimming and LED retrofits; cabinets counted, never named.",
        "month",
        (
            _MONTH,
            Column("district", "string", "district of the cabinets (empty: none recorded)"),
            Column("cabinets", "integer", "lighting cabinets reconciled", "cabinets"),
            Column("lights", "integer", "lights of those cabinets", "lights"),
            Column("modelled_kwh", "number", "modelled consumption", "kWh", digits=3),
            Column(
                "metered_kwh",
                "number",
                "measured consumption: cabinet meters, else the lights' own meters",
                "kWh",
                digits=3,
            ),
            Column("billed_kwh", "number", "energy on the utility's bills", "kWh", digits=3),
            Column("billed_dh", "number", "amount of those bills, VAT included", "DH", digits=2),
            Column(
                "recomputed_dh",
                "number",
                "the same bills recomputed from the published tariff",
                "DH",
                digits=2,
            ),
            Column(
                "saved_kwh",
                "number",
                "saved by dimming and LED retrofits against a measured baseline (IPMVP option B)",
                "kWh",
                digits=3,
            ),
            Column("saved_co2_kg", "number", "CO2 not emitted for the saved kWh", "kg", digits=1),
            Column(
                "flagged_cabinets",
                "integer",
                "cabinets with at least one finding to check",
                "cabinets",
            ),
        ),
        ("district",),
        "monthly, when `python -m telemetry energy reconcile` runs for a month",
        "energy reconciliation per cabinet: equipment register, meters, bills and tariff file",
    ),
    Feed(
        "maintenance-kpis-monthly",
        "Streetlight maintenance indicators per district and month",
        "The maintenance KPIs of each local month (docs/work_orders.md), from telemetry "
        "timestamps rather than paperwork, for the whole city (empty district) and each "
        "district. Each row holds one section: `totals` (outages per 1,000 light points, faults "
        "and the share the telemetry found before any citizen complaint, day-burning hours, "
        "warranty claims), `repairs` (repair times of one fault kind: first fault reading to "
        "first healthy reading, nearest-rank median and 90th percentile) or `warranty` "
        "(failures under warranty of one supplier and tender). Figures only: no person, crew, "
        "light or serial number.",
        "month",
        (
            _MONTH,
            Column("district", "string", "district (empty: the whole city)"),
            Column(
                "section",
                "string",
                "which figures the row holds: totals, repairs (of one kind) or warranty (of one "
                "supplier and tender)",
            ),
            Column("kind", "string", "fault kind of the repair times (repairs rows)"),
            Column("supplier", "string", "supplier of the failed parts (warranty rows)"),
            Column("tender", "string", "tender (project) of the failed parts (warranty rows)"),
            Column(
                "lights",
                "integer",
                "registered streetlights (light points)",
                "lights",
                source="light_points",
            ),
            Column(
                "outages",
                "integer",
                "outages: a dark fault of a light, or a light in a circuit or district outage",
                "outages",
            ),
            Column(
                "outages_per_1000",
                "number",
                "outages per 1,000 light points",
                "outages per 1,000 lights",
                digits=2,
            ),
            Column(
                "faults",
                "integer",
                "faults of the month, whoever reported them first",
                "faults",
            ),
            Column(
                "found_by_telemetry",
                "integer",
                "faults the telemetry found before any citizen complaint",
                "faults",
            ),
            Column(
                "found_by_telemetry_share",
                "number",
                "share of the faults the telemetry found first (0 to 1)",
                "share",
                digits=3,
            ),
            Column(
                "day_burning_hours",
                "number",
                "hours lights burned with the Sun up, during day-burning alerts",
                "h",
                digits=2,
            ),
            Column("repairs", "integer", "faults repaired in the month", "repairs"),
            Column(
                "median_hours",
                "number",
                "median repair time (nearest rank)",
                "h",
                source="p50_hours",
                digits=2,
            ),
            Column(
                "p90_hours",
                "number",
                "90th percentile of the repair time (nearest rank)",
                "h",
                digits=2,
            ),
            Column(
                "warranty_claims",
                "integer",
                "failures of a part still under warranty",
                "claims",
            ),
        ),
        ("district",),
        "daily, shortly after local midnight, for the last complete month (until 8 days after "
        "its end) and the current month so far",
        "maintenance alerts of streetlights, citizens' complaints (times only), energy readings "
        "and the equipment register, stored per month",
    ),
)

BY_NAME: Final[dict[str, Feed]] = {f.name: f for f in FEEDS}

#: Column names that would carry personal data; no feed may have one (tests check it).
PERSONAL_COLUMNS: Final = frozenset(
    {
        "first_name",
        "last_name",
        "name",
        "email",
        "phone",
        "account_id",
        "device_id",
        "address",
        "description",
        "media_url",
        "lat",
        "lon",
        "status_notes",
    }
)
