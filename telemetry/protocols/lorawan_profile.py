"""LoRaWAN device profiles: TOML files saying which fields of a network server's decoded
payload make a contract v1 energy reading and which status bits are TALQ faults
(docs/lorawan_profiles.md), and the mapping of an ``Uplink`` through one of them."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

import msgspec
import pydantic

from telemetry.contract import FAULT_NAMES, EnergyReport, FaultName
from telemetry.protocols.lorawan_uplink import Uplink
from telemetry.protocols.reports import Energy, Fault, Refusal

#: Contract energy fields a profile may fill, and whether each takes a number or a boolean.
ENERGY_FIELDS: Final[Mapping[str, type]] = {
    "energy_wh": float,
    "power_w": float,
    "voltage_v": float,
    "current_a": float,
    "power_factor": float,
    "lamp_on": bool,
    "dim_pct": float,
}
_MAX_BIT: Final = 63
_MAX_PATH: Final = 200
_PROFILE_KEYS: Final = frozenset(
    {"name", "default", "chirpstack_device_profiles", "things_stack_models", "fports"}
)


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the key."""


@dataclass(kw_only=True, frozen=True, slots=True)
class FieldMapping:
    """One contract energy field taken from a decoded field (a dotted path), times ``scale``."""

    contract_field: str
    path: tuple[str, ...]
    scale: float = 1.0

    @property
    def field_name(self) -> str:
        """The decoded field as the profile spells it."""
        return ".".join(self.path)


@dataclass(kw_only=True, frozen=True, slots=True)
class FaultBits:
    """An integer decoded field whose bits are TALQ fault conditions (bit number -> name)."""

    path: tuple[str, ...]
    bits: Mapping[int, FaultName]

    @property
    def field_name(self) -> str:
        """The decoded field as the profile spells it."""
        return ".".join(self.path)


@dataclass(kw_only=True, frozen=True, slots=True)
class Profile:
    """One device profile: which uplinks it takes and how their decoded fields map."""

    name: str
    source: str  # the file it came from, for messages
    default: bool
    chirpstack_device_profiles: tuple[str, ...]
    things_stack_models: tuple[str, ...]
    fports: frozenset[int]
    energy: tuple[FieldMapping, ...]  # empty, or holding energy_wh
    faults: FaultBits | None


@dataclass(kw_only=True, frozen=True, slots=True)
class ProfileSet:
    """The profiles in force, indexed by what an uplink names its device profile with."""

    profiles: tuple[Profile, ...]
    by_chirpstack: Mapping[str, Profile]
    by_things_stack: Mapping[str, Profile]
    default: Profile | None

    def profile_for(self, uplink: Uplink) -> Profile | Refusal:
        """The profile named by the uplink's hint, else the default one, else a refusal."""
        index = self.by_chirpstack if uplink.source == "chirpstack" else self.by_things_stack
        if uplink.profile_hint is not None and uplink.profile_hint in index:
            return index[uplink.profile_hint]
        if self.default is not None:
            return self.default
        what = "ChirpStack device profile" if uplink.source == "chirpstack" else "TTS model id"
        named = repr(uplink.profile_hint) if uplink.profile_hint else "(none given)"
        return Refusal(
            reason_code="unmapped_uplink",
            detail=f"no LoRaWAN profile for {what} {named} and none has default = true "
            f"(profiles: {', '.join(p.name for p in self.profiles) or 'none'})",
            raw=uplink.raw,
            identity=uplink.dev_eui,
        )


@dataclass(kw_only=True, frozen=True, slots=True)
class MappedUplink:
    """What one uplink gives: contract reports (faults on change only) and the status bits
    seen now (None: this uplink carried none), for the caller to keep per device."""

    reports: list[Energy | Fault]
    status: int | None


# Loading.


def parse_profile(text: str, *, source: str) -> Profile:
    """One profile from TOML text; ``source`` (a file name) prefixes every error."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"{source}: not valid TOML: {error}") from None
    _only_keys(document, {"profile", "energy", "faults"}, source, "")
    head = _table(document, "profile", source, "")
    if head is None:
        raise ProfileError(f"{source}: [profile]: required table is missing")
    _only_keys(head, _PROFILE_KEYS, source, "[profile]")
    name = head.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ProfileError(f"{source}: [profile] name: required, a non-empty string")
    default = head.get("default", False)
    if not isinstance(default, bool):
        raise ProfileError(f"{source}: [profile] default: must be true or false")
    chirpstack = _strings(head, "chirpstack_device_profiles", source)
    things_stack = _strings(head, "things_stack_models", source)
    if not (default or chirpstack or things_stack):
        raise ProfileError(
            f"{source}: [profile]: matches no uplink; give chirpstack_device_profiles, "
            "things_stack_models or default = true"
        )
    energy = _energy(_table(document, "energy", source, ""), source)
    faults = _faults(_table(document, "faults", source, ""), source)
    if not energy and faults is None:
        raise ProfileError(f"{source}: needs an [energy] or a [faults] table, or both")
    return Profile(
        name=name,
        source=source,
        default=default,
        chirpstack_device_profiles=chirpstack,
        things_stack_models=things_stack,
        fports=_fports(head, source),
        energy=energy,
        faults=faults,
    )


def profile_set(profiles: Iterable[Profile]) -> ProfileSet:
    """Profiles indexed by their match keys; ``ProfileError`` when two claim the same one."""
    ordered = tuple(profiles)
    names: dict[str, Profile] = {}
    by_chirpstack: dict[str, Profile] = {}
    by_things_stack: dict[str, Profile] = {}
    default: Profile | None = None
    for profile in ordered:
        _claim(names, profile.name, profile, "profile name")
        for key in profile.chirpstack_device_profiles:
            _claim(by_chirpstack, key, profile, "chirpstack_device_profiles entry")
        for key in profile.things_stack_models:
            _claim(by_things_stack, key, profile, "things_stack_models entry")
        if profile.default:
            if default is not None:
                raise ProfileError(
                    f"{profile.source}: [profile] default: {default.source} is the default "
                    "already; only one profile may have default = true"
                )
            default = profile
    return ProfileSet(
        profiles=ordered,
        by_chirpstack=by_chirpstack,
        by_things_stack=by_things_stack,
        default=default,
    )


def load_profiles(folder: Path) -> ProfileSet:
    """Every ``*.toml`` profile in ``folder``; ``ProfileError`` on the first bad one."""
    if not folder.is_dir():
        raise ProfileError(f"{folder}: not a folder of LoRaWAN profiles")
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise ProfileError(f"{folder}: holds no *.toml LoRaWAN profile")
    profiles = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ProfileError(f"{path}: cannot be read: {error}") from None
        profiles.append(parse_profile(text, source=str(path)))
    return profile_set(profiles)


def shipped_profiles_folder() -> Path:
    """The ``lorawan_profiles`` folder shipped beside this module."""
    folder = resources.files(__package__ or "telemetry.protocols") / "lorawan_profiles"
    return Path(str(folder))


def _claim(index: dict[str, Profile], key: str, profile: Profile, what: str) -> None:
    taken = index.get(key)
    if taken is not None:
        raise ProfileError(
            f"{profile.source}: [profile] {what} {key!r} is claimed by {taken.source} already"
        )
    index[key] = profile


def _only_keys(table: Mapping[str, Any], allowed: Iterable[str], source: str, at: str) -> None:
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        where = f"{at} " if at else ""
        raise ProfileError(
            f"{source}: {where}{unknown[0]}: unknown key (known: {', '.join(sorted(allowed))})"
        )


def _table(document: Mapping[str, Any], key: str, source: str, at: str) -> dict[str, Any] | None:
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProfileError(f"{source}: {at}{key}: must be a table")
    return value


def _strings(head: Mapping[str, Any], key: str, source: str) -> tuple[str, ...]:
    value = head.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ProfileError(f"{source}: [profile] {key}: must be a list of non-empty strings")
    if len(set(value)) != len(value):
        raise ProfileError(f"{source}: [profile] {key}: lists an entry twice")
    return tuple(value)


def _fports(head: Mapping[str, Any], source: str) -> frozenset[int]:
    value = head.get("fports")
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 223 for v in value)
    ):
        raise ProfileError(
            f"{source}: [profile] fports: required, a non-empty list of LoRaWAN application "
            "ports (1-223)"
        )
    return frozenset(value)


def _path(value: Any, source: str, at: str) -> tuple[str, ...]:
    if not isinstance(value, str) or not value or len(value) > _MAX_PATH:
        raise ProfileError(f"{source}: {at}: field must be a decoded field name (a.b for nested)")
    path = tuple(value.split("."))
    if not all(path):
        raise ProfileError(f"{source}: {at}: field {value!r} has an empty part")
    return path


def _energy(table: Mapping[str, Any] | None, source: str) -> tuple[FieldMapping, ...]:
    if table is None:
        return ()
    mappings = []
    for contract_field, spec in table.items():
        at = f"[energy] {contract_field}"
        if contract_field not in ENERGY_FIELDS:
            raise ProfileError(
                f"{source}: {at}: unknown contract energy field (known: {', '.join(ENERGY_FIELDS)})"
            )
        if not isinstance(spec, dict):
            raise ProfileError(f'{source}: {at}: must be a table, e.g. {{ field = "name" }}')
        _only_keys(spec, {"field", "scale"}, source, at)
        path = _path(spec.get("field"), source, at)
        scale = spec.get("scale", 1.0)
        if ENERGY_FIELDS[contract_field] is bool and "scale" in spec:
            raise ProfileError(f"{source}: {at}: scale: {contract_field} is a boolean")
        if (
            isinstance(scale, bool)
            or not isinstance(scale, int | float)
            or not math.isfinite(scale)
            or scale <= 0
        ):
            raise ProfileError(f"{source}: {at}: scale: must be a number above 0, not {scale!r}")
        mappings.append(FieldMapping(contract_field=contract_field, path=path, scale=float(scale)))
    if mappings and "energy_wh" not in table:
        raise ProfileError(
            f"{source}: [energy] energy_wh: required (the contract's cumulative meter)"
        )
    return tuple(mappings)


def _faults(table: Mapping[str, Any] | None, source: str) -> FaultBits | None:
    if table is None:
        return None
    _only_keys(table, {"field", "bits"}, source, "[faults]")
    path = _path(table.get("field"), source, "[faults]")
    bits_table = table.get("bits")
    if not isinstance(bits_table, dict) or not bits_table:
        raise ProfileError(
            f"{source}: [faults] bits: required, a table of bit number = TALQ fault name"
        )
    bits: dict[int, FaultName] = {}
    for key, name in bits_table.items():
        at = f"[faults] bits.{key}"
        if not key.isascii() or not key.isdigit() or int(key) > _MAX_BIT:
            raise ProfileError(f"{source}: {at}: a bit number 0-{_MAX_BIT} is needed")
        fault = next((known for known in FAULT_NAMES if known == name), None)
        if fault is None:
            raise ProfileError(
                f"{source}: {at}: {name!r} is not a TALQ fault name "
                f"(known: {', '.join(FAULT_NAMES)})"
            )
        if int(key) in bits:
            raise ProfileError(f"{source}: {at}: bit {int(key)} is named twice")
        if fault in bits.values():
            raise ProfileError(f"{source}: {at}: {fault} is given to another bit already")
        bits[int(key)] = fault
    return FaultBits(path=path, bits=bits)


# Mapping.


class _Refused(Exception):
    def __init__(self, reason_code: str, detail: str) -> None:
        super().__init__(detail)
        self.reason_code = reason_code
        self.detail = detail


_MISSING: Final = object()


def map_uplink(
    profile: Profile, uplink: Uplink, *, previous_status: int | None
) -> MappedUplink | Refusal:
    """The uplink's energy reading and fault changes (against ``previous_status``, the status
    of the device's last uplink; None: unknown, every set bit is reported), or a refusal."""
    try:
        return _map(profile, uplink, previous_status)
    except _Refused as refused:
        return Refusal(
            reason_code=refused.reason_code,
            detail=refused.detail,
            raw=uplink.raw,
            identity=uplink.dev_eui,
        )


def _map(profile: Profile, uplink: Uplink, previous_status: int | None) -> MappedUplink:
    port = uplink.f_port
    if port not in profile.fports:
        ports = ", ".join(str(p) for p in sorted(profile.fports))
        raise _Refused(
            "unmapped_uplink",
            f"uplink on fPort {port}: profile {profile.name} maps fPort {ports} only",
        )
    decoded = uplink.decoded
    if decoded is None:
        raise _Refused(
            "unmapped_uplink",
            f"uplink on fPort {port} has no decoded payload: give the network server's device "
            f"profile a payload codec (profile {profile.name} reads decoded fields)",
        )
    reports: list[Energy | Fault] = []
    energy = _energy_report(profile, uplink, decoded)
    if energy is not None:
        reports.append(energy)
    status: int | None = None
    if profile.faults is not None:
        status = _status(profile.faults, decoded)
        if status is not None:
            reports.extend(_fault_changes(profile.faults, status, previous_status, uplink))
    if energy is None and status is None:
        wanted = [f"{m.field_name} (energy_wh)" for m in profile.energy[:1]]
        if profile.faults is not None:
            wanted.append(f"{profile.faults.field_name} (faults)")
        raise _Refused(
            "unmapped_uplink",
            f"uplink on fPort {port} has no field {' nor '.join(wanted)} in its decoded "
            f"payload (profile {profile.name}; it has: {_field_list(decoded)})",
        )
    return MappedUplink(reports=reports, status=status)


def _lookup(decoded: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = decoded
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    # A codec writes null for what it did not measure: the same as leaving it out.
    return _MISSING if value is None else value


def _energy_report(profile: Profile, uplink: Uplink, decoded: Mapping[str, Any]) -> Energy | None:
    if not profile.energy:
        return None
    values: dict[str, float | bool] = {}
    for mapping in profile.energy:
        value = _lookup(decoded, mapping.path)
        if value is _MISSING:
            if mapping.contract_field == "energy_wh":
                return None  # the contract has no energy reading without its meter
            continue
        values[mapping.contract_field] = _converted(value, mapping)
    try:
        EnergyReport.model_validate({"ts": uplink.time_ms, **values})
    except pydantic.ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        source = next((m.field_name for m in profile.energy if m.contract_field == name), name)
        raise _Refused(
            "invalid", f"{name} {values.get(name)!r} (from decoded {source}): {first['msg']}"
        ) from None
    return msgspec.convert({"ts": uplink.time_ms, **values}, type=Energy)


def _converted(value: Any, mapping: FieldMapping) -> float | bool:
    wanted = ENERGY_FIELDS[mapping.contract_field]
    if wanted is bool:
        if not isinstance(value, bool):
            raise _Refused(
                "invalid",
                f"decoded {mapping.field_name} (-> {mapping.contract_field}) is "
                f"{_kind(value)}, true or false is needed",
            )
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refused(
            "invalid",
            f"decoded {mapping.field_name} (-> {mapping.contract_field}) is {_kind(value)}, "
            "a number is needed",
        )
    try:
        result = float(value) * mapping.scale
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise _Refused(
            "invalid",
            f"decoded {mapping.field_name} (-> {mapping.contract_field}) is out of range",
        )
    return result


def _status(faults: FaultBits, decoded: Mapping[str, Any]) -> int | None:
    value = _lookup(decoded, faults.path)
    if value is _MISSING:
        return None
    # ChirpStack hands codec output over as a protobuf Struct: every number is a float.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise _Refused(
            "invalid",
            f"decoded {faults.field_name} (faults) is {_kind(value)}, an integer of status "
            "bits (0 to 2^64-1) is needed",
        )
    return value


def _fault_changes(
    faults: FaultBits, status: int, previous: int | None, uplink: Uplink
) -> list[Fault]:
    changes = []
    for bit, name in sorted(faults.bits.items()):
        now = bool(status >> bit & 1)
        # The first uplink since start (no previous): set bits are news, clear ones are not.
        changed = now if previous is None else now != bool(previous >> bit & 1)
        if changed:
            changes.append(
                Fault(
                    ts=uplink.time_ms,
                    fault=name,
                    active=now,
                    detail=f"bit {bit} of {faults.field_name} = {status:#x}",
                )
            )
    return changes


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, int) and value.bit_length() > 64:
        return "a number too large"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _field_list(decoded: Mapping[str, Any]) -> str:
    names = sorted(str(key) for key in decoded)
    shown = ", ".join(names[:12])
    return (shown + (", ..." if len(names) > 12 else "")) if names else "no fields"
