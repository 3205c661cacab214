"""LoRaWAN uplinks as LoRaWAN network servers publish them over MQTT (ChirpStack v4 with the
JSON marshaler, The Things Stack v3), read into one neutral ``Uplink``; and an encoder that
writes ChirpStack v4 uplink events for simulators and tests.

ChirpStack v4: chirpstack-docs ``src/chirpstack/integrations/events.md`` (event ``up``) and
``api/proto/integration/integration.proto`` (``UplinkEvent``); The Things Stack: its
documentation's "Data Formats" and "MQTT Server" pages (lorawan-stack-docs
``doc/content/integrations/data-formats/_index.md``, ``.../other-integrations/mqtt/_index.md``).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypeVar

import msgspec

from telemetry.contract import parse_ts
from telemetry.protocols.reports import Refusal

Source = Literal["chirpstack", "things_stack"]
_T = TypeVar("_T")

_DEV_EUI = re.compile(r"[0-9a-fA-F]{16}", re.ASCII)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_EPOCH_MS: Final = 253402300799999  # 9999-12-31T23:59:59.999Z, as the contract's ts
_MAX_F_CNT: Final = 2**32 - 1
_MAX_F_PORT: Final = 255
# Keys only an uplink event carries; ChirpStack's join, ack, txack, log, status and location
# events have none of them (integration.proto), and proto3 JSON leaves out zero values, so
# one of them being present is what tells an uplink apart.
_CHIRPSTACK_UPLINK_KEYS: Final = frozenset({"fCnt", "fPort", "dr", "data", "rxInfo"})

# Fixed identifiers for encoded events (ChirpStack's are random UUIDs): simulators replay
# the same bytes for the same inputs.
_NAMESPACE: Final = uuid.UUID("6f0b3f0e-5d1c-4a55-9a40-2f5b1c3e7d21")
_TENANT_ID: Final = "52f14cd4-c6f1-4fbd-8f87-4025e1d49242"
DEFAULT_APPLICATION_ID: Final = "17c82e96-be03-4f38-aef3-f83d48582d97"
_GATEWAY_ID: Final = "0016c001f153a14c"


@dataclass(kw_only=True, frozen=True, slots=True)
class Uplink:
    """One LoRaWAN uplink, whichever network server delivered it.

    ``dev_eui`` is 16 lowercase hex digits (the registry's ``external_id``); ``time_ms`` the
    network's time of the uplink in epoch ms; ``decoded`` the network server's codec output
    (None when it has no codec); ``profile_hint`` the ChirpStack device-profile name or The
    Things Stack model id; ``raw`` the message as received (no part in equality).
    """

    dev_eui: str
    time_ms: int
    f_port: int
    f_cnt: int
    data: bytes
    decoded: Mapping[str, Any] | None
    profile_hint: str | None
    source: Source
    raw: bytes = field(default=b"", compare=False, repr=False)


class _NotUplink(Exception):
    """A body this module refuses; carries the Refusal's code and detail."""

    def __init__(self, reason_code: str, detail: str, identity: str | None = None) -> None:
        super().__init__(detail)
        self.reason_code = reason_code
        self.detail = detail
        self.identity = identity


# ChirpStack v4 (proto3 JSON mapping: camelCase names, zero values left out).


class _CsDeviceInfo(msgspec.Struct, rename="camel"):
    dev_eui: str
    application_id: str = ""
    device_profile_name: str = ""


class _CsRxInfo(msgspec.Struct, rename="camel"):
    ns_time: str | None = None


class _CsUplink(msgspec.Struct, rename="camel"):
    device_info: _CsDeviceInfo
    time: str | None = None
    f_cnt: int = 0
    f_port: int = 0
    data: str = ""
    object: dict[str, Any] | None = None
    rx_info: list[_CsRxInfo] = []


# The Things Stack v3 (snake_case, empty fields left out).


class _TtsApplicationIds(msgspec.Struct):
    application_id: str


class _TtsDeviceIds(msgspec.Struct):
    device_id: str
    application_ids: _TtsApplicationIds
    dev_eui: str | None = None


class _TtsVersionIds(msgspec.Struct):
    model_id: str | None = None


class _TtsRxMetadata(msgspec.Struct):
    time: str | None = None


class _TtsUplinkMessage(msgspec.Struct):
    f_port: int = 0
    f_cnt: int = 0
    frm_payload: str = ""
    decoded_payload: dict[str, Any] | None = None
    received_at: str | None = None
    version_ids: _TtsVersionIds | None = None
    rx_metadata: list[_TtsRxMetadata] = []


class _TtsUp(msgspec.Struct):
    end_device_ids: _TtsDeviceIds
    uplink_message: _TtsUplinkMessage
    received_at: str | None = None


def parse_chirpstack_uplink(topic: str, body: bytes) -> Uplink | Refusal:
    """A ChirpStack v4 ``event/up`` message (JSON marshaler), or why it is refused."""
    return _parsed(_chirpstack, topic, body)


def parse_things_stack_uplink(topic: str, body: bytes) -> Uplink | Refusal:
    """A The Things Stack v3 ``.../devices/{device id}/up`` message, or why it is refused."""
    return _parsed(_things_stack, topic, body)


def _parsed(parse: Callable[[str, bytes], Uplink], topic: str, body: bytes) -> Uplink | Refusal:
    try:
        return parse(topic, body)
    except _NotUplink as refused:
        return Refusal(
            reason_code=refused.reason_code,
            detail=refused.detail,
            raw=body,
            identity=refused.identity,
        )


def _chirpstack(topic: str, body: bytes) -> Uplink:
    parts = topic.split("/")
    # The default event topic (chirpstack/src/config.rs), under any prefix.
    if len(parts) < 6 or (parts[-6], parts[-4], parts[-2], parts[-1]) != (
        "application",
        "device",
        "event",
        "up",
    ):
        raise _NotUplink(
            "unknown_topic", f"{topic!r} is not a ChirpStack application/+/device/+/event/up topic"
        )
    topic_eui = _dev_eui(parts[-3], where="the topic's DevEUI")
    try:
        return _chirpstack_body(parts, topic_eui, body)
    except _NotUplink as refused:
        # The topic names the device even when the body cannot: dead letters say whose it is.
        refused.identity = refused.identity or topic_eui
        raise


def _chirpstack_body(parts: list[str], topic_eui: str, body: bytes) -> Uplink:
    document = _json_object(body, hint="set the ChirpStack MQTT integration's marshaler to json")
    if "deviceInfo" not in document or not _CHIRPSTACK_UPLINK_KEYS & document.keys():
        raise _NotUplink("not_uplink", f"not a ChirpStack uplink event (keys: {_keys(document)})")
    event = _convert(document, _CsUplink)
    dev_eui = _dev_eui(event.device_info.dev_eui, where="deviceInfo.devEui")
    if dev_eui != topic_eui:
        raise _NotUplink(
            "invalid",
            f"deviceInfo.devEui {dev_eui} is not the topic's DevEUI {topic_eui}",
            identity=topic_eui,
        )
    if event.device_info.application_id not in ("", parts[-5]):
        raise _NotUplink(
            "invalid",
            f"deviceInfo.applicationId {event.device_info.application_id!r} is not the topic's "
            f"application {parts[-5]!r}",
            identity=dev_eui,
        )
    # ChirpStack fills ``time`` from the gateways' GPS time, else their clock, else its own
    # (chirpstack/src/uplink/helpers.rs, get_rx_timestamp); nsTime is its receive time.
    stamps = [event.time, *(rx.ns_time for rx in event.rx_info)]
    time_ms = _first_time(stamps, where="time / rxInfo[].nsTime", identity=dev_eui)
    return Uplink(
        dev_eui=dev_eui,
        time_ms=time_ms,
        f_port=_bounded(event.f_port, _MAX_F_PORT, "fPort", dev_eui),
        f_cnt=_bounded(event.f_cnt, _MAX_F_CNT, "fCnt", dev_eui),
        data=_base64(event.data, where="data", identity=dev_eui),
        decoded=event.object,
        profile_hint=event.device_info.device_profile_name or None,
        source="chirpstack",
        raw=body,
    )


def _things_stack(topic: str, body: bytes) -> Uplink:
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "v3" or parts[2] != "devices" or parts[4] != "up":
        raise _NotUplink(
            "unknown_topic",
            f"{topic!r} is not a The Things Stack v3/{{application}}/devices/{{device}}/up topic",
        )
    document = _json_object(body, hint="The Things Stack publishes JSON")
    if "uplink_message" not in document or "end_device_ids" not in document:
        raise _NotUplink(
            "not_uplink", f"not a The Things Stack uplink message (keys: {_keys(document)})"
        )
    message = _convert(document, _TtsUp)
    ids = message.end_device_ids
    if ids.dev_eui is None:
        raise _NotUplink(
            "invalid",
            f"device {ids.device_id!r} has no end_device_ids.dev_eui (an ABP device "
            "registered without a DevEUI?); Rasd knows LoRaWAN devices by DevEUI",
        )
    dev_eui = _dev_eui(ids.dev_eui, where="end_device_ids.dev_eui")
    application = parts[1].split("@", 1)[0]  # "{application id}@{tenant id}"
    if ids.device_id != parts[3] or ids.application_ids.application_id != application:
        raise _NotUplink(
            "invalid",
            f"end_device_ids {ids.application_ids.application_id}/{ids.device_id} are not the "
            f"topic's {application}/{parts[3]}",
            identity=dev_eui,
        )
    uplink = message.uplink_message
    # The Network Server's receive time, else the Application Server's; the gateways' clock
    # last (the documentation's MQTT example carries only that).
    stamps = [uplink.received_at, message.received_at, *(rx.time for rx in uplink.rx_metadata)]
    time_ms = _first_time(
        stamps,
        where="uplink_message.received_at / received_at / rx_metadata[].time",
        identity=dev_eui,
    )
    version = uplink.version_ids
    return Uplink(
        dev_eui=dev_eui,
        time_ms=time_ms,
        f_port=_bounded(uplink.f_port, _MAX_F_PORT, "uplink_message.f_port", dev_eui),
        f_cnt=_bounded(uplink.f_cnt, _MAX_F_CNT, "uplink_message.f_cnt", dev_eui),
        data=_base64(uplink.frm_payload, where="uplink_message.frm_payload", identity=dev_eui),
        decoded=uplink.decoded_payload,
        profile_hint=(version.model_id or None) if version is not None else None,
        source="things_stack",
        raw=body,
    )


def _json_object(body: bytes, *, hint: str) -> dict[str, Any]:
    try:
        document = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError) as error:
        raise _NotUplink("not_json", f"not JSON ({error}); {hint}") from None
    if not isinstance(document, dict):
        raise _NotUplink("not_object", f"JSON {type(document).__name__}, not an object")
    return document


def _convert(document: dict[str, Any], kind: type[_T]) -> _T:
    try:
        return msgspec.convert(document, type=kind)
    except msgspec.ValidationError as error:
        raise _NotUplink("invalid", str(error)) from None


def _keys(document: Mapping[str, Any]) -> str:
    names = sorted(document)
    shown = ", ".join(names[:8])
    return shown + (", ..." if len(names) > 8 else "") if names else "none"


def _dev_eui(text: str, *, where: str) -> str:
    if _DEV_EUI.fullmatch(text) is None:
        raise _NotUplink("invalid", f"{where} {text[:40]!r} is not 16 hex digits")
    return text.lower()


def _bounded(value: int, maximum: int, name: str, identity: str) -> int:
    if not 0 <= value <= maximum:
        raise _NotUplink("invalid", f"{name} {value} is outside 0..{maximum}", identity=identity)
    return value


def _first_time(stamps: list[str | None], *, where: str, identity: str) -> int:
    text = next((stamp for stamp in stamps if stamp), None)
    if text is None:
        raise _NotUplink("invalid", f"no time: none of {where} is set", identity=identity)
    try:
        moment = parse_ts(text)
    except ValueError as error:
        raise _NotUplink("invalid", f"time: {error}", identity=identity) from None
    time_ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    if not 0 <= time_ms <= _MAX_EPOCH_MS:
        raise _NotUplink("invalid", f"time {text!r} is before 1970", identity=identity)
    return time_ms


def _base64(text: str, *, where: str, identity: str) -> bytes:
    # Proto3 JSON allows standard or URL-safe base64, with or without padding.
    standard = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _NotUplink("invalid", f"{where} is not base64", identity=identity) from None


def encode_chirpstack_uplink(
    *,
    dev_eui: str,
    time_ms: int,
    f_port: int,
    f_cnt: int,
    data: bytes,
    decoded: Mapping[str, Any] | None,
    profile_name: str,
    application_id: str = DEFAULT_APPLICATION_ID,
) -> tuple[str, bytes]:
    """The topic and JSON body ChirpStack v4 publishes for this uplink (event ``up``)."""
    if _DEV_EUI.fullmatch(dev_eui) is None:
        raise ValueError(f"dev_eui {dev_eui!r} is not 16 hex digits")
    dev_eui = dev_eui.lower()
    moment = _EPOCH + timedelta(milliseconds=time_ms)
    # ChirpStack writes RFC 3339 with nanoseconds and "+00:00" (events.md example).
    stamp = moment.isoformat(timespec="milliseconds").removesuffix("+00:00") + "000000+00:00"
    seed = f"{dev_eui}/{f_cnt}/{time_ms}"
    event: dict[str, Any] = {
        "deduplicationId": str(uuid.uuid5(_NAMESPACE, seed)),
        "time": stamp,
        "deviceInfo": {
            "tenantId": _TENANT_ID,
            "tenantName": "ChirpStack",
            "applicationId": application_id,
            "applicationName": "Streetlights",
            "deviceProfileId": str(uuid.uuid5(_NAMESPACE, profile_name)),
            "deviceProfileName": profile_name,
            "deviceName": dev_eui,
            "devEui": dev_eui,
            "deviceClassEnabled": "CLASS_A",
            "tags": {},
        },
        "devAddr": f"{uuid.uuid5(_NAMESPACE, dev_eui).int & 0x01FFFFFF:08x}",
        "dr": 5,
        "fCnt": f_cnt,
        "fPort": f_port,
        "data": base64.b64encode(data).decode("ascii"),
        "object": None if decoded is None else _as_struct(decoded),
        "rxInfo": [
            {
                "gatewayId": _GATEWAY_ID,
                "uplinkId": uuid.uuid5(_NAMESPACE, seed).int & 0xFFFFFFFF,
                "nsTime": stamp,
                "rssi": -87,
                "snr": 7.5,
                "context": "E3OWOQ==",
                "metadata": {"region_common_name": "EU868", "region_config_id": "eu868"},
            }
        ],
        "txInfo": {
            "frequency": 867100000,
            "modulation": {
                "lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}
            },
        },
    }
    # Proto3 JSON leaves out zero values (the events.md example has no fCnt) and a missing
    # object (no codec).
    for key in ("fCnt", "fPort", "data", "object"):
        if event[key] in (0, "", None):
            del event[key]
    return (
        f"application/{application_id}/device/{dev_eui}/event/up",
        msgspec.json.encode(event),
    )


def _as_struct(value: Any) -> Any:
    """``value`` as a google.protobuf.Struct comes out of ChirpStack: every number a float
    (the events.md integration example shows ``10.0``)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(key): _as_struct(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_as_struct(item) for item in value]
    raise TypeError(f"{type(value).__name__} is not JSON")
