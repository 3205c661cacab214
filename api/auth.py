"""Who may do what: roles, permissions, district scopes and the token format (pure, no I/O)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

TOKEN_PREFIX: Final = "rasd_"


class Role(StrEnum):
    """A token's role."""

    OPERATOR = "operator"
    CREW = "crew"
    ADMIN = "admin"
    REPORTER = "reporter"  # an Open311 reporting app: may only submit complaints


class Permission(StrEnum):
    """One thing a request may do."""

    READ_CITY = "read_city"  # devices, positions, tracks, lights, energy, live positions
    READ_ALERTS = "read_alerts"
    ACK_ALERTS = "ack_alerts"
    RESOLVE_ALERTS = "resolve_alerts"
    ASSIGN_ALERTS = "assign_alerts"
    MANAGE_DEVICES = "manage_devices"
    MANAGE_TOKENS = "manage_tokens"
    SUBMIT_COMPLAINTS = "submit_complaints"  # Open311 POST requests.json
    READ_COMPLAINTS = "read_complaints"  # with their evidence (crews: own districts)
    CLOSE_COMPLAINTS = "close_complaints"
    READ_CONTACTS = "read_contacts"  # complainants' personal data: admins only


# Operators watch the city and dispatch (assign); crews act on alerts in their districts;
# admins can do everything, including devices and tokens; reporting apps only submit
# complaints (Open311).
GRANTS: Final[dict[Role, frozenset[Permission]]] = {
    Role.OPERATOR: frozenset(
        {
            Permission.READ_CITY,
            Permission.READ_ALERTS,
            Permission.ASSIGN_ALERTS,
            Permission.READ_COMPLAINTS,
            Permission.CLOSE_COMPLAINTS,
        }
    ),
    Role.CREW: frozenset(
        {
            Permission.READ_ALERTS,
            Permission.ACK_ALERTS,
            Permission.RESOLVE_ALERTS,
            Permission.READ_COMPLAINTS,
        }
    ),
    Role.ADMIN: frozenset(Permission),
    Role.REPORTER: frozenset({Permission.SUBMIT_COMPLAINTS}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """The holder of a valid token."""

    token_id: int
    role: Role
    districts: frozenset[str]
    label: str | None = None

    def can(self, permission: Permission) -> bool:
        """True when the role grants ``permission``."""
        return permission in GRANTS[self.role]

    @property
    def district_bound(self) -> bool:
        """True when this principal sees only its own districts (crews)."""
        return self.role is Role.CREW

    def sees_district(self, district: str | None) -> bool:
        """True when an asset in ``district`` is within this principal's reach."""
        return not self.district_bound or (district is not None and district in self.districts)

    def district_scope(self, requested: Iterable[str] | None) -> frozenset[str] | None:
        """Districts a query may cover: None for all, else a set; raises if asking outside."""
        wanted = frozenset(requested) if requested is not None else None
        if not self.district_bound:
            return wanted
        if wanted is None:
            return self.districts
        outside = wanted - self.districts
        if outside:
            raise DistrictRefused(sorted(outside))
        return wanted


class DistrictRefused(Exception):
    """A crew asked for districts outside its own."""

    def __init__(self, districts: list[str]) -> None:
        super().__init__(f"districts outside this token's scope: {', '.join(districts)}")
        self.districts = districts


def new_token() -> str:
    """A fresh random token: ``rasd_`` and 32 random bytes, URL-safe base64."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    """The SHA-256 digest stored for a token (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def plausible_token(token: str) -> bool:
    """Cheap shape check before any database lookup."""
    return token.startswith(TOKEN_PREFIX) and 20 <= len(token) <= 200 and token.isascii()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value or None
