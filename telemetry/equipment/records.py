"""Register records: assets (cabinet → circuit → pole → luminaire → driver / controller) and
equipment models, with the rules one record obeys on its own."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, Field

from telemetry.errors import TelemetryError


class EquipmentImportError(TelemetryError):
    """An equipment file is malformed or would break the register; nothing of it was imported."""


class AssetKind(StrEnum):
    """Where an asset sits in the lighting tree."""

    CABINET = "cabinet"
    CIRCUIT = "circuit"
    POLE = "pole"
    LUMINAIRE = "luminaire"
    DRIVER = "driver"
    CONTROLLER = "controller"


class ModelKind(StrEnum):
    """The catalogue's three kinds (TALQ LuminaireType, DriverType, ControllerType)."""

    LUMINAIRE = "luminaire"
    DRIVER = "driver"
    CONTROLLER = "controller"


#: The kinds each kind may hang from. A façade fitting (the Médina's alleys) hangs from its
#: circuit without a pole; a controller is a luminaire's node or a cabinet's segment controller.
PARENT_KINDS: Final[dict[AssetKind, frozenset[AssetKind]]] = {
    AssetKind.CABINET: frozenset(),
    AssetKind.CIRCUIT: frozenset({AssetKind.CABINET}),
    AssetKind.POLE: frozenset({AssetKind.CIRCUIT}),
    AssetKind.LUMINAIRE: frozenset({AssetKind.POLE, AssetKind.CIRCUIT}),
    AssetKind.DRIVER: frozenset({AssetKind.LUMINAIRE}),
    AssetKind.CONTROLLER: frozenset({AssetKind.LUMINAIRE, AssetKind.CABINET}),
}
#: Depth order, for exports that list parents before children.
KIND_RANK: Final = {kind: rank for rank, kind in enumerate(AssetKind)}
#: Asset kinds that name a catalogue model.
MODEL_KINDS: Final = frozenset({AssetKind.LUMINAIRE, AssetKind.DRIVER, AssetKind.CONTROLLER})
#: Columns only a cabinet carries: the utility's meter, contract and tariff (energy accounting).
CABINET_ONLY: Final = ("meter_id", "contracted_kw", "tariff")

ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DEVICE_ID_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}$"
_ISO_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> Any:
    """Only ``YYYY-MM-DD`` text becomes a date (no Unix times, no other layouts)."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("expected a date as YYYY-MM-DD")
    return value


Text = Annotated[str | None, Field(min_length=1, max_length=200)]
Id = Annotated[str, Field(pattern=ID_PATTERN)]
OptionalId = Annotated[str | None, Field(pattern=ID_PATTERN)]
IsoDate = Annotated[date | None, BeforeValidator(_iso_date)]
NonNegative = Annotated[float | None, Field(ge=0, allow_inf_nan=False)]


@dataclass(frozen=True, kw_only=True)
class Asset:
    """One asset of the register (TALQ *AssetFunction: serial, projectID, warranty...)."""

    asset_id: Id
    kind: AssetKind
    parent_id: OptionalId = None
    label: Text = None
    # The telemetry device measuring this asset (``devices.device_id``): a light's device sits
    # on its luminaire, a cabinet meter's on its cabinet.
    device_id: Annotated[str | None, Field(pattern=DEVICE_ID_PATTERN)] = None
    model_id: OptionalId = None
    serial: Text = None
    supplier: Text = None
    project_id: Text = None  # the tender (TALQ projectID)
    installed_on: IsoDate = None
    warranty_until: IsoDate = None  # TALQ warrantyExpirationDate
    lat: Annotated[float | None, Field(ge=-90, le=90, allow_inf_nan=False)] = None
    lon: Annotated[float | None, Field(ge=-180, le=180, allow_inf_nan=False)] = None
    district: Text = None
    meter_id: Text = None  # the utility's meter / contract number
    contracted_kw: Annotated[float | None, Field(gt=0, le=100_000, allow_inf_nan=False)] = None
    tariff: Text = None  # a tariff name of the energy-accounting tariff file

    def problems(self) -> list[str]:
        """What is wrong with this record on its own (the tree is checked elsewhere)."""
        found = []
        if self.kind is not AssetKind.CABINET:
            extra = [c for c in CABINET_ONLY if getattr(self, c) is not None]
            if extra:
                found.append(f"{', '.join(extra)}: only a cabinet carries them")
        if self.model_id is not None and self.kind not in MODEL_KINDS:
            found.append(f"model_id: a {self.kind.value} has no catalogue model")
        if (self.lat is None) != (self.lon is None):
            found.append("lat, lon: give both or neither")
        if (
            self.installed_on is not None
            and self.warranty_until is not None
            and self.warranty_until < self.installed_on
        ):
            found.append("warranty_until: before installed_on")
        if self.kind is AssetKind.CABINET and self.parent_id is not None:
            found.append("parent_id: a cabinet is a root")
        if self.kind is not AssetKind.CABINET and self.parent_id is None:
            found.append(f"parent_id: a {self.kind.value} needs a parent")
        return found


@dataclass(frozen=True, kw_only=True)
class EquipmentModel:
    """A catalogue entry: TALQ LuminaireType / DriverType / ControllerType."""

    model_id: Id
    kind: ModelKind
    manufacturer: Annotated[str, Field(min_length=1, max_length=200)]  # manufacturerName
    model: Annotated[str, Field(min_length=1, max_length=200)]
    rated_power_w: NonNegative = None  # powerConsumption
    power_at_min_dim_w: NonNegative = None  # powerAtMinimumDimLevel
    rated_life_h: Annotated[int | None, Field(gt=0)] = None  # maxOperatingHours
    warranty_years: Annotated[int | None, Field(ge=0, le=50)] = None
    replaceable_on_site: bool | None = None  # TALQ "On site" vs "Workshop" / "No replaceable"
    light_source: Annotated[str | None, Field(pattern=r"^[A-Z][A-Z ]{1,19}$")] = (
        None  # lightSourceType: LED, HPS, LPS, MH, ...
    )
    luminous_flux_lm: Annotated[int | None, Field(ge=0)] = None

    def problems(self) -> list[str]:
        """What is wrong with this entry on its own."""
        found = []
        if self.kind is ModelKind.LUMINAIRE and self.rated_power_w is None:
            found.append("rated_power_w: a luminaire model needs its rated power")
        if self.kind is not ModelKind.LUMINAIRE:
            extra = [
                c for c in ("light_source", "luminous_flux_lm") if getattr(self, c) is not None
            ]
            if extra:
                found.append(f"{', '.join(extra)}: only a luminaire model carries them")
        if (
            self.rated_power_w is not None
            and self.power_at_min_dim_w is not None
            and self.power_at_min_dim_w > self.rated_power_w
        ):
            found.append("power_at_min_dim_w: above rated_power_w")
        return found


ASSET_COLUMNS: Final = (
    "asset_id",
    "kind",
    "parent_id",
    "label",
    "device_id",
    "model_id",
    "serial",
    "supplier",
    "project_id",
    "installed_on",
    "warranty_until",
    "lat",
    "lon",
    "district",
    "meter_id",
    "contracted_kw",
    "tariff",
)
MODEL_COLUMNS: Final = (
    "model_id",
    "kind",
    "manufacturer",
    "model",
    "rated_power_w",
    "power_at_min_dim_w",
    "rated_life_h",
    "warranty_years",
    "replaceable_on_site",
    "light_source",
    "luminous_flux_lm",
)
