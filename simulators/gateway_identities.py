"""The protocol identities of simulated devices (pure): an IMEI for each tracker, a DevEUI for
each light controller, derived from the device id so the registry and the devices agree."""

from __future__ import annotations

import hashlib
import zlib
from typing import Final

# 35 is a GSMA reporting-body prefix used by real tracker IMEIs; the rest comes from the id.
_IMEI_HEAD: Final = "35"


def luhn_digit(digits: str) -> str:
    """The Luhn check digit IMEIs end with."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return str((10 - total % 10) % 10)


def tracker_imei(device_id: str) -> str:
    """A stable, valid-looking 15-digit IMEI for a simulated tracker."""
    number = int.from_bytes(hashlib.sha256(device_id.encode()).digest()[:8], "big")
    body = _IMEI_HEAD + f"{number % 10**12:012d}"
    return body + luhn_digit(body)


def light_dev_eui(device_id: str) -> str:
    """A stable DevEUI (16 lowercase hex digits) for a simulated light controller."""
    return hashlib.sha256(b"deveui:" + device_id.encode()).hexdigest()[:16]


def in_share(device_id: str, share: float) -> bool:
    """Whether a device falls in the first ``share`` (0..1) of the fleet, stably by its id."""
    return zlib.crc32(device_id.encode()) % 10_000 < round(share * 10_000)
