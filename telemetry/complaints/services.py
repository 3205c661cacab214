"""The Open311 service catalogue: what citizens can report, and which telemetry answers it.

``service_code`` values are the ``complaints.service_code`` column; ``domain`` picks the
linking rules (docs/open311.md, Linking). The catalogue is code, not data: adding a service
means adding the rules that link it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from telemetry.i18n import Locale
from telemetry.i18n.catalogues import pgettext


class Domain(StrEnum):
    """Which assets and telemetry a service is linked to."""

    LIGHTING = "lighting"
    WASTE = "waste"
    TRANSPORT = "transport"


@dataclass(frozen=True, slots=True)
class Service:
    """One Open311 service (GET services.json) and what Rasd does with its requests."""

    code: str
    name: str
    description: str
    domain: Domain
    keywords: tuple[str, ...]
    agency: str
    notice: str  # Open311 service_notice: what happens next, returned by POST and GET

    @property
    def group(self) -> str:
        """The Open311 ``group`` (the domain's name)."""
        return self.domain.value

    def localised(self, locale: Locale) -> Service:
        """The service with its name, description and notice in ``locale`` (the catalogues'
        ``service.<code>.*`` entries; English is the source)."""
        return replace(
            self,
            name=pgettext(locale, f"service.{self.code}.name", self.name),
            description=pgettext(locale, f"service.{self.code}.description", self.description),
            notice=pgettext(locale, f"service.{self.code}.notice", self.notice),
        )


_LIGHTING_AGENCY: Final = "Commune de Marrakech - Eclairage public"
_WASTE_AGENCY: Final = "Commune de Marrakech - Proprete (delegated operators Arma, Mecomar)"
_TRANSPORT_AGENCY: Final = "Commune de Marrakech - Transport urbain (Alsa City Bus)"

SERVICES: Final[tuple[Service, ...]] = (
    Service(
        "streetlight_out",
        "Streetlight out",
        "A streetlight that stays dark at night.",
        Domain.LIGHTING,
        ("lamp", "dark", "light", "eclairage", "lampadaire"),
        _LIGHTING_AGENCY,
        "The nearest light's telemetry is checked and a maintenance crew is dispatched.",
    ),
    Service(
        "streetlight_day",
        "Streetlight on by day",
        "A streetlight that is lit in daylight.",
        Domain.LIGHTING,
        ("lamp", "day", "waste of energy", "eclairage"),
        _LIGHTING_AGENCY,
        "The nearest light's telemetry is checked and a maintenance crew is dispatched.",
    ),
    Service(
        "damaged_pole",
        "Damaged pole",
        "A streetlight pole or fitting that is damaged, leaning or open.",
        Domain.LIGHTING,
        ("pole", "lamppost", "cable", "danger", "poteau"),
        _LIGHTING_AGENCY,
        "A maintenance crew will inspect and secure the pole.",
    ),
    Service(
        "missed_collection",
        "Missed waste collection",
        "Household waste was not collected on the scheduled night.",
        Domain.WASTE,
        ("garbage", "trash", "collection", "dechets", "ordures"),
        _WASTE_AGENCY,
        "The collection truck's GPS record for that night is checked; a missed point is "
        "reported to the operator.",
    ),
    Service(
        "overflowing_container",
        "Overflowing container",
        "A waste container is full or overflowing.",
        Domain.WASTE,
        ("container", "bin", "full", "conteneur"),
        _WASTE_AGENCY,
        "The collection round covering the place is informed.",
    ),
    Service(
        "illegal_dumping",
        "Illegal dumping",
        "Waste, rubble or bulky items dumped in a public place.",
        Domain.WASTE,
        ("dumping", "rubble", "depot sauvage", "gravats"),
        _WASTE_AGENCY,
        "The collection round covering the place is informed.",
    ),
    Service(
        "bus_late",
        "Bus did not come / late",
        "A bus did not come at a stop, or came much later than its timetable.",
        Domain.TRANSPORT,
        ("bus", "late", "waiting", "headway", "retard"),
        _TRANSPORT_AGENCY,
        "The buses' actual passages at the stop are compared with the line's timetable.",
    ),
    Service(
        "dangerous_driving",
        "Dangerous driving",
        "A bus or municipal truck driven dangerously or too fast.",
        Domain.TRANSPORT,
        ("speed", "driver", "danger", "vitesse"),
        _TRANSPORT_AGENCY,
        "The speeds the vehicles recorded near that place and time are checked.",
    ),
)

BY_CODE: Final[dict[str, Service]] = {s.code: s for s in SERVICES}


def service(code: str) -> Service | None:
    """The service with this code, or None."""
    return BY_CODE.get(code)
