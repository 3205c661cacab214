"""LoRaWAN network-server uplinks (ChirpStack v4, The Things Stack v3) and the TOML device
profiles that map them to contract reports: documentation vectors, refusals, profile
validation, mapping, and properties (no input raises; encode -> parse round-trips)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.contract import EnergyReport, FaultReport
from telemetry.protocols.lorawan_profile import (
    MappedUplink,
    Profile,
    ProfileError,
    load_profiles,
    map_uplink,
    parse_profile,
    profile_set,
    shipped_profiles_folder,
)
from telemetry.protocols.lorawan_uplink import (
    Uplink,
    encode_chirpstack_uplink,
    parse_chirpstack_uplink,
    parse_things_stack_uplink,
)
from telemetry.protocols.reports import Energy, Fault, Refusal

# ChirpStack documentation, "Event types", event `up` (chirpstack/chirpstack-docs,
# src/chirpstack/integrations/events.md), verbatim. No fCnt: proto3 JSON leaves out zeros.
CHIRPSTACK_DOCS_UP = b"""{
    "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
    "time": "2022-07-18T09:34:15.775023242+00:00",
    "deviceInfo": {
        "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
        "tenantName": "ChirpStack",
        "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
        "applicationName": "Test application",
        "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
        "deviceProfileName": "Test device-profile",
        "deviceName": "Test device",
        "devEui": "0101010101010101",
        "tags": {"key": "value"}
    },
    "devAddr": "00189440",
    "dr": 1,
    "fPort": 1,
    "data": "qg==",
    "rxInfo": [{
        "gatewayId": "0016c001f153a14c",
        "uplinkId": 4217106255,
        "rssi": -36,
        "snr": 10.5,
        "context": "E3OWOQ==",
        "metadata": {"region_name": "eu868", "region_common_name": "EU868"}
    }],
    "txInfo": {
        "frequency": 867100000,
        "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 11, "codeRate": "CR_4_5"}}
    }
}"""
# ChirpStack's default event topic, application/{application_id}/device/{dev_eui}/event/{event}
# (chirpstack/chirpstack, chirpstack/src/config.rs), for the example above.
CHIRPSTACK_DOCS_TOPIC = (
    "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up"
)
# Same page, event `join`, verbatim.
CHIRPSTACK_DOCS_JOIN = b"""{
    "deduplicationId": "c9dbe358-2578-4fb7-b295-66b44edc45a6",
    "time": "2022-07-18T09:33:28.823500726+00:00",
    "deviceInfo": {
        "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
        "tenantName": "ChirpStack",
        "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
        "applicationName": "Test application",
        "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
        "deviceProfileName": "Test device-profile",
        "deviceName": "Test device",
        "devEui": "0101010101010101",
        "tags": {"key": "value"}
    },
    "devAddr": "00189440"
}"""
# Same page, event `status`, verbatim.
CHIRPSTACK_DOCS_STATUS = b"""{
    "deduplicationId": "bf2a9746-1c8b-49be-a92e-f0b89c8534e4",
    "time": "2022-07-18T09:35:06.927172638+00:00",
    "deviceInfo": {
        "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
        "tenantName": "ChirpStack",
        "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
        "applicationName": "Test application",
        "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
        "deviceProfileName": "Test device-profile",
        "deviceName": "Test device",
        "devEui": "0101010101010101"
    },
    "margin": 10,
    "batteryLevel": 88.3
}"""

# The Things Stack documentation, "Data Formats", "Uplink message example"
# (TheThingsIndustries/lorawan-stack-docs, doc/content/integrations/data-formats/_index.md),
# verbatim. It has no f_port (the format description above it shows one).
TTS_DOCS_UP = b"""{
  "end_device_ids" : {
    "device_id" : "dev1",
    "application_ids" : {"application_id" : "app1"},
    "dev_eui" : "0004A30B001C0530",
    "join_eui" : "800000000000000C",
    "dev_addr" : "00BCB929"
  },
  "correlation_ids" : [
    "as:up:01E0WZGT6Y7657CPFPE5WEYDSQ",
    "gs:conn:01E0WDEC6T5T4XXBAX7S1VMFKE",
    "gs:uplink:01E0WZGSZWT07NE5TS2APTV1Z9",
    "ns:uplink:01E0WZGSZXZXZS8RFAWZX0F2FY",
    "rpc:/ttn.lorawan.v3.GsNs/HandleUplink:01E0WZGSZXGE1KS577PFBWRJEE"
  ],
  "received_at" : "2020-02-12T15:15:46.014773143Z",
  "uplink_message" : {
    "session_key_id" : "AXA50tHUGUucuzS/bCGMNw==",
    "f_cnt" : 1,
    "frm_payload" : "gkHe",
    "decoded_payload" : {"temperature": 1.0, "luminosity": 0.64},
    "rx_metadata" : [ {
      "gateway_ids" : {"gateway_id" : "gtw1", "eui" : "9C5C8E00001A05C4"},
      "time" : "2020-02-12T15:15:45.787Z",
      "timestamp" : 2463457000,
      "rssi" : -35,
      "channel_rssi" : -35,
      "snr" : 5,
      "uplink_token" : "ChIKEAoEZ3R3MRIInFyOAAAaBcQQ6L3Vlgk=",
      "channel_index" : 2
    } ],
    "settings" : {
      "data_rate" : {"lora" : {"bandwidth" : 125000, "spreading_factor" : 7}},
      "data_rate_index" : 5,
      "coding_rate" : "4/6",
      "frequency" : "868300000",
      "timestamp" : 2463457000,
      "time" : "2020-02-12T15:15:45.787Z"
    },
    "consumed_airtime": "0.056576s",
    "locations": {
      "user": {
        "latitude": 37.97155556731436,
        "longitude": 23.72678801175413,
        "altitude": 10,
        "source": "SOURCE_REGISTRY"
      }
    },
    "received_at" : "2020-02-12T15:15:45.789585559Z"
  }
}"""
# The Things Stack documentation, "MQTT Server", topic of the examples
# (lorawan-stack-docs, doc/content/integrations/other-integrations/mqtt/_index.md).
TTS_DOCS_TOPIC = "v3/app1@tenant1/devices/dev1/up"
# Same page, "Show uplink message example", verbatim: no received_at at all.
TTS_MQTT_DOCS_UP = b"""{
  "end_device_ids": {
    "device_id": "dev1",
    "application_ids": {"application_id": "app1"},
    "dev_eui": "4200000000000000",
    "join_eui": "4200000000000000",
    "dev_addr": "01DA1F15"
  },
  "correlation_ids": [
    "gs:conn:01D2CSNX7FJVKQPCVG612QF1TX",
    "gs:uplink:01D2CV8HF62ME0D7MZWE38HHH8",
    "ns:uplink:01D2CV8HF6FYJHKZ45YY1DB3MR",
    "rpc:/ttn.lorawan.v3.GsNs/HandleUplink:01D2CV8HF6XR7ZFVK768PDG3J4",
    "as:up:01D2CV8HNGJ57G25BW0FCZNY07"
  ],
  "uplink_message": {
    "session_key_id": "AWiZpAyXrAfEkUNkBljRoA==",
    "f_port": 15,
    "frm_payload": "VGVtcGVyYXR1cmUgPSAwLjA=",
    "rx_metadata": [
      {
        "gateway_ids": {"gateway_id": "eui-0242020000247803", "eui": "0242020000247803"},
        "time": "2019-01-29T13:02:34.981Z",
        "timestamp": 1283325000,
        "rssi": -35,
        "snr": 5,
        "uplink_token": "CiIKIAoUZXVpLTAyNDIwMjAwMDAyNDc4MDMSCAJCAgAAJHgDEMj49+ME"
      }
    ],
    "settings": {
      "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
      "coding_rate": "4/6",
      "frequency": "868500000",
      "gateway_channel_index": 2,
      "device_channel_index": 2
    }
  }
}"""
# Same page, "Show join accept message example", verbatim.
TTS_MQTT_DOCS_JOIN = b"""{
  "end_device_ids": {
    "device_id": "dev1",
    "application_ids": {"application_id": "app1"},
    "dev_eui": "4200000000000000",
    "join_eui": "4200000000000000",
    "dev_addr": "01DA1F15"
  },
  "correlation_ids": [
    "gs:conn:01D2CSNX7FJVKQPCVG612QF1TX",
    "gs:uplink:01D2CT834K2YD17ZWZ6357HC0Z",
    "ns:uplink:01D2CT834KNYD7BT2NHK5R1WVA",
    "rpc:/ttn.lorawan.v3.GsNs/HandleUplink:01D2CT834KJ4AVSD1SJ637NAV6",
    "as:up:01D2CT83AXQFQYQ35SR74CTWKH"
  ],
  "join_accept": {"session_key_id": "AWiZpAyXrAfEkUNkBljRoA=="}
}"""

DEV_EUI = "0101010101010101"


def edited(body: bytes, change: dict[str, Any]) -> bytes:
    """``body`` (JSON) with keys replaced at dotted paths; a value of ``...`` removes it."""
    document = json.loads(body)
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        target = document
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    return json.dumps(document).encode()


def refused(result: Uplink | Refusal | MappedUplink | Profile, code: str) -> Refusal:
    assert isinstance(result, Refusal), result
    assert result.reason_code == code, result.reason
    return result


# ChirpStack.


def test_chirpstack_documentation_uplink() -> None:
    uplink = parse_chirpstack_uplink(CHIRPSTACK_DOCS_TOPIC, CHIRPSTACK_DOCS_UP)
    assert uplink == Uplink(
        dev_eui=DEV_EUI,
        time_ms=1658136855775,
        f_port=1,
        f_cnt=0,
        data=b"\xaa",
        decoded=None,
        profile_hint="Test device-profile",
        source="chirpstack",
    )
    assert isinstance(uplink, Uplink)
    assert uplink.raw == CHIRPSTACK_DOCS_UP


def test_chirpstack_decoded_object_and_frame_counter() -> None:
    body = edited(CHIRPSTACK_DOCS_UP, {"fCnt": 4711, "object": {"status": 2.0, "x": {"y": 1}}})
    uplink = parse_chirpstack_uplink(CHIRPSTACK_DOCS_TOPIC, body)
    assert isinstance(uplink, Uplink)
    assert (uplink.f_cnt, uplink.decoded) == (4711, {"status": 2.0, "x": {"y": 1}})


@pytest.mark.parametrize("event", [CHIRPSTACK_DOCS_JOIN, CHIRPSTACK_DOCS_STATUS])
def test_chirpstack_other_events_are_not_uplinks(event: bytes) -> None:
    refusal = refused(parse_chirpstack_uplink(CHIRPSTACK_DOCS_TOPIC, event), "not_uplink")
    assert refusal.raw == event


def test_chirpstack_time_falls_back_to_network_server_time() -> None:
    body = edited(CHIRPSTACK_DOCS_UP, {"time": ..., "rxInfo.0.nsTime": "2022-07-18T09:34:15.900Z"})
    uplink = parse_chirpstack_uplink(CHIRPSTACK_DOCS_TOPIC, body)
    assert isinstance(uplink, Uplink)
    assert uplink.time_ms == 1658136855900
    no_time = edited(CHIRPSTACK_DOCS_UP, {"time": ...})
    assert (
        "no time"
        in refused(parse_chirpstack_uplink(CHIRPSTACK_DOCS_TOPIC, no_time), "invalid").detail
    )


def test_chirpstack_dev_eui_must_match_the_topic() -> None:
    topic = CHIRPSTACK_DOCS_TOPIC.replace(DEV_EUI, "0202020202020202")
    refusal = refused(parse_chirpstack_uplink(topic, CHIRPSTACK_DOCS_UP), "invalid")
    assert "not the topic's DevEUI" in refusal.detail
    assert refusal.identity == "0202020202020202"


def test_chirpstack_upper_case_dev_eui_is_the_same_device() -> None:
    body = edited(CHIRPSTACK_DOCS_UP, {"deviceInfo.devEui": "0A0B0C0D0E0F0102"})
    topic = CHIRPSTACK_DOCS_TOPIC.replace(DEV_EUI, "0a0b0c0d0e0f0102")
    uplink = parse_chirpstack_uplink(topic, body)
    assert isinstance(uplink, Uplink)
    assert uplink.dev_eui == "0a0b0c0d0e0f0102"


@pytest.mark.parametrize(
    "dev_eui", ["010101010101010", "01010101010101011", "010101010101010g", "", "٠١٠١٠١٠١٠١٠١٠١٠١"]
)
def test_chirpstack_invalid_dev_eui(dev_eui: str) -> None:
    body = edited(CHIRPSTACK_DOCS_UP, {"deviceInfo.devEui": dev_eui})
    topic = CHIRPSTACK_DOCS_TOPIC.replace(DEV_EUI, dev_eui or "x")
    refusal = refused(parse_chirpstack_uplink(topic, body), "invalid")
    assert "16 hex digits" in refusal.detail


def test_chirpstack_application_must_match_the_topic() -> None:
    topic = CHIRPSTACK_DOCS_TOPIC.replace("17c82e96", "27c82e96")
    assert (
        "application"
        in refused(parse_chirpstack_uplink(topic, CHIRPSTACK_DOCS_UP), "invalid").detail
    )


@pytest.mark.parametrize(
    "topic",
    [
        "application/x/device/0101010101010101/event/join",
        "application/x/device/0101010101010101/up",
        "v3/app1/devices/dev1/up",
        "",
    ],
)
def test_chirpstack_unknown_topic(topic: str) -> None:
    refused(parse_chirpstack_uplink(topic, CHIRPSTACK_DOCS_UP), "unknown_topic")


@pytest.mark.parametrize("data", ["@@@@", "q", "qg==qg==", "qg==\n", "ü"])
def test_chirpstack_data_that_is_not_base64(data: str) -> None:
    body = edited(CHIRPSTACK_DOCS_UP, {"data": data})
    refusal = refused(parse_chirpstack_uplink(CHIRPSTACK_DOCS_TOPIC, body), "invalid")
    assert refusal.detail == "data is not base64"
    assert refusal.identity == DEV_EUI


@pytest.mark.parametrize(("data", "expected"), [("qg", b"\xaa"), ("-_8=", b"\xfb\xff")])
def test_chirpstack_data_base64_variants_of_proto3_json(data: str, expected: bytes) -> None:
    # Proto3 JSON: standard or URL-safe alphabet, padding optional.
    uplink = parse_chirpstack_uplink(
        CHIRPSTACK_DOCS_TOPIC, edited(CHIRPSTACK_DOCS_UP, {"data": data})
    )
    assert isinstance(uplink, Uplink)
    assert uplink.data == expected


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"fCnt": "12"}, "$.fCnt"),
        ({"fCnt": 2**32}, "fCnt"),
        ({"fPort": 256}, "fPort"),
        ({"fPort": True}, "$.fPort"),
        ({"time": "yesterday"}, "time"),
        ({"time": "1969-12-31T23:59:59Z"}, "before 1970"),
        ({"object": [1, 2]}, "$.object"),
        ({"deviceInfo": "x"}, "$.deviceInfo"),
    ],
)
def test_chirpstack_mistyped_fields(change: dict[str, Any], words: str) -> None:
    body = edited(CHIRPSTACK_DOCS_UP, change)
    assert words in refused(parse_chirpstack_uplink(CHIRPSTACK_DOCS_TOPIC, body), "invalid").detail


def test_chirpstack_protobuf_body_is_not_json() -> None:
    # What the Protobuf marshaler sends: field 1 (deduplication_id) as a length-delimited string.
    protobuf = b"\x0a\x243ac7e3c4-4401-4b8d-9386-a5c902f9202d\x12\x0c\x08\xd7\xa5\xd5\x96\x06"
    refusal = refused(parse_chirpstack_uplink(CHIRPSTACK_DOCS_TOPIC, protobuf), "not_json")
    assert "marshaler" in refusal.detail
    assert refusal.identity == DEV_EUI  # from the topic


@pytest.mark.parametrize("body", [b"[]", b"12", b'"up"', b"null"])
def test_chirpstack_json_that_is_not_an_object(body: bytes) -> None:
    refused(parse_chirpstack_uplink(CHIRPSTACK_DOCS_TOPIC, body), "not_object")


def test_deeply_nested_json_is_not_json() -> None:
    refused(parse_chirpstack_uplink(CHIRPSTACK_DOCS_TOPIC, b"[" * 100_000), "not_json")


def test_encode_chirpstack_uplink_is_shaped_like_chirpstack() -> None:
    topic, body = encode_chirpstack_uplink(
        dev_eui=DEV_EUI,
        time_ms=1795640645123,
        f_port=2,
        f_cnt=7,
        data=b"\x01\x02",
        decoded={"status": 3, "lamp_on": True},
        profile_name="DALI lighting node",
        application_id="17c82e96-be03-4f38-aef3-f83d48582d97",
    )
    assert topic == CHIRPSTACK_DOCS_TOPIC
    event = json.loads(body)
    docs = json.loads(CHIRPSTACK_DOCS_UP)
    assert set(docs) <= set(event) | {"fCnt"}
    assert set(docs["deviceInfo"]) <= set(event["deviceInfo"])
    assert event["time"] == "2026-11-25T21:04:05.123000000+00:00"
    assert event["object"] == {"status": 3.0, "lamp_on": True}
    assert b'"status":3.0' in body  # a protobuf Struct's numbers are doubles
    again = encode_chirpstack_uplink(
        dev_eui=DEV_EUI,
        time_ms=1795640645123,
        f_port=2,
        f_cnt=7,
        data=b"\x01\x02",
        decoded={"status": 3, "lamp_on": True},
        profile_name="DALI lighting node",
        application_id="17c82e96-be03-4f38-aef3-f83d48582d97",
    )
    assert again == (topic, body)  # simulators replay the same bytes


def test_encode_chirpstack_uplink_wants_a_dev_eui() -> None:
    with pytest.raises(ValueError, match="16 hex digits"):
        encode_chirpstack_uplink(
            dev_eui="L-MED-00042",
            time_ms=0,
            f_port=1,
            f_cnt=0,
            data=b"",
            decoded=None,
            profile_name="p",
        )


def test_encode_chirpstack_uplink_leaves_out_zero_values() -> None:
    _, body = encode_chirpstack_uplink(
        dev_eui=DEV_EUI, time_ms=0, f_port=0, f_cnt=0, data=b"", decoded=None, profile_name="p"
    )
    event = json.loads(body)
    assert not {"fCnt", "fPort", "data", "object"} & set(event)


# The Things Stack.


def test_things_stack_documentation_uplink() -> None:
    uplink = parse_things_stack_uplink(TTS_DOCS_TOPIC, TTS_DOCS_UP)
    assert uplink == Uplink(
        dev_eui="0004a30b001c0530",
        time_ms=1581520545789,  # uplink_message.received_at: the Network Server's
        f_port=0,
        f_cnt=1,
        data=b"\x82\x41\xde",
        decoded={"temperature": 1.0, "luminosity": 0.64},
        profile_hint=None,
        source="things_stack",
    )


def test_things_stack_mqtt_documentation_uplink_has_only_gateway_time() -> None:
    uplink = parse_things_stack_uplink(TTS_DOCS_TOPIC, TTS_MQTT_DOCS_UP)
    assert uplink == Uplink(
        dev_eui="4200000000000000",
        time_ms=1548766954981,
        f_port=15,
        f_cnt=0,
        data=b"Temperature = 0.0",
        decoded=None,
        profile_hint=None,
        source="things_stack",
    )


def test_things_stack_time_order() -> None:
    no_ns_time = edited(TTS_DOCS_UP, {"uplink_message.received_at": ...})
    uplink = parse_things_stack_uplink(TTS_DOCS_TOPIC, no_ns_time)
    assert isinstance(uplink, Uplink)
    assert uplink.time_ms == 1581520546014  # the Application Server's received_at
    none = edited(no_ns_time, {"received_at": ..., "uplink_message.rx_metadata": []})
    refused(parse_things_stack_uplink(TTS_DOCS_TOPIC, none), "invalid")


def test_things_stack_model_id_is_the_profile_hint() -> None:
    # The documentation example plus uplink_message.version_ids (TTS 3.13.0 release notes:
    # "Include end device version identifiers in upstream messages").
    body = edited(
        TTS_DOCS_UP,
        {"uplink_message.version_ids": {"brand_id": "acme", "model_id": "dali-node"}},
    )
    uplink = parse_things_stack_uplink(TTS_DOCS_TOPIC, body)
    assert isinstance(uplink, Uplink)
    assert uplink.profile_hint == "dali-node"


def test_things_stack_join_is_not_an_uplink() -> None:
    refused(parse_things_stack_uplink(TTS_DOCS_TOPIC, TTS_MQTT_DOCS_JOIN), "not_uplink")


@pytest.mark.parametrize(
    "topic",
    [
        "v3/app1@tenant1/devices/dev2/up",
        "v3/app2@tenant1/devices/dev1/up",
        "v3/app2/devices/dev1/up",
    ],
)
def test_things_stack_ids_must_match_the_topic(topic: str) -> None:
    refusal = refused(parse_things_stack_uplink(topic, TTS_DOCS_UP), "invalid")
    assert refusal.identity == "0004a30b001c0530"


def test_things_stack_open_source_topic_has_no_tenant() -> None:
    assert isinstance(parse_things_stack_uplink("v3/app1/devices/dev1/up", TTS_DOCS_UP), Uplink)


@pytest.mark.parametrize(
    "topic", ["v3/app1/devices/dev1/join", "v3/app1/devices/dev1/down/ack", "v2/a/devices/d/up"]
)
def test_things_stack_unknown_topic(topic: str) -> None:
    refused(parse_things_stack_uplink(topic, TTS_DOCS_UP), "unknown_topic")


def test_things_stack_device_without_dev_eui() -> None:
    body = edited(TTS_DOCS_UP, {"end_device_ids.dev_eui": ...})
    assert "ABP" in refused(parse_things_stack_uplink(TTS_DOCS_TOPIC, body), "invalid").detail


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"uplink_message.frm_payload": "g$He"}, "invalid"),
        ({"end_device_ids.dev_eui": "0004A30B001C053"}, "invalid"),
        ({"uplink_message.f_port": -1}, "invalid"),
        ({"uplink_message.decoded_payload": "x"}, "invalid"),
        ({"uplink_message": None}, "invalid"),
    ],
)
def test_things_stack_bad_fields(change: dict[str, Any], code: str) -> None:
    refused(parse_things_stack_uplink(TTS_DOCS_TOPIC, edited(TTS_DOCS_UP, change)), code)


@pytest.mark.parametrize(("body", "code"), [(b"\xff\x00", "not_json"), (b"[1]", "not_object")])
def test_things_stack_not_json(body: bytes, code: str) -> None:
    refused(parse_things_stack_uplink(TTS_DOCS_TOPIC, body), code)


# Profiles: loading and validation.

GOOD_PROFILE = """
[profile]
name = "node"
chirpstack_device_profiles = ["DALI lighting node"]
things_stack_models = ["dali-node"]
fports = [2, 3]

[energy]
energy_wh = { field = "energy_kwh", scale = 1000 }
power_w = { field = "power_w" }
current_a = { field = "meter.current_ma", scale = 0.001 }
lamp_on = { field = "lamp_on" }
dim_pct = { field = "dim_level", scale = 0.3937007874 }

[faults]
field = "status"
bits = { 0 = "lampFailure", 1 = "controlGearFailure", 5 = "communicationFailure" }
"""


def profile(text: str = GOOD_PROFILE, source: str = "node.toml") -> Profile:
    return parse_profile(text, source=source)


def test_shipped_profile_loads() -> None:
    profiles = load_profiles(shipped_profiles_folder())
    [shipped] = profiles.profiles
    assert shipped.name == "dali-lighting-node"
    assert profiles.by_chirpstack["DALI lighting node"] is shipped
    assert profiles.by_things_stack["dali-node"] is shipped
    assert shipped.faults is not None and shipped.faults.bits[1] == "lampFailure"


def test_good_profile() -> None:
    parsed = profile()
    assert parsed.fports == {2, 3}
    assert [(m.contract_field, m.field_name, m.scale) for m in parsed.energy][:3] == [
        ("energy_wh", "energy_kwh", 1000.0),
        ("power_w", "power_w", 1.0),
        ("current_a", "meter.current_ma", 0.001),
    ]


def broken(old: str, new: str) -> str:
    assert old in GOOD_PROFILE
    return GOOD_PROFILE.replace(old, new)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (broken("power_w = {", "power_kw = {"), "[energy] power_kw: unknown contract energy field"),
        (broken('"communicationFailure"', '"commsLost"'), "bits.5: 'commsLost' is not a TALQ"),
        (
            broken("scale = 1000", "scale = 0"),
            "[energy] energy_wh: scale: must be a number above 0",
        ),
        (broken("scale = 1000", "scale = -2"), "scale: must be a number above 0"),
        (broken("scale = 1000", 'scale = "1000"'), "scale: must be a number above 0"),
        (broken("scale = 1000", "scale = true"), "scale: must be a number above 0"),
        (broken("scale = 1000", "scale = inf"), "scale: must be a number above 0"),
        (
            broken('lamp_on = { field = "lamp_on" }', 'lamp_on = { field = "l", scale = 2 }'),
            "lamp_on is a boolean",
        ),
        (broken('energy_wh = { field = "energy_kwh", scale = 1000 }', ""), "energy_wh: required"),
        (broken('field = "power_w"', 'feild = "power_w"'), "[energy] power_w feild: unknown key"),
        (broken('field = "power_w"', 'field = "a..b"'), "empty part"),
        (broken("power_w = {", "power_w = 3 #"), "power_w: must be a table"),
        (broken("fports = [2, 3]", "fports = []"), "fports: required"),
        (broken("fports = [2, 3]", "fports = [0]"), "fports: required"),
        (broken("fports = [2, 3]", ""), "fports: required"),
        (broken("5 = ", "64 = "), "bits.64: a bit number 0-63"),
        (broken("5 = ", "x = "), "bits.x: a bit number"),
        (broken("5 = ", "00 = "), "bit 0 is named twice"),
        (
            broken('1 = "controlGearFailure"', '1 = "lampFailure"'),
            "lampFailure is given to another bit",
        ),
        (broken('name = "node"', "name = 7"), "[profile] name: required"),
        (broken('name = "node"', 'name = "node"\ncolour = "red"'), "[profile] colour: unknown key"),
        (broken("[faults]", "[fault]"), "fault: unknown key"),
        (
            broken('chirpstack_device_profiles = ["DALI lighting node"]', "").replace(
                'things_stack_models = ["dali-node"]', ""
            ),
            "matches no uplink",
        ),
        (broken("[profile]", "[profile\n"), "not valid TOML"),
        ("[energy]\n", "[profile]: required table is missing"),
    ],
)
def test_profile_errors_name_the_file_and_key(text: str, words: str) -> None:
    with pytest.raises(ProfileError) as error:
        profile(text, source="lights/node.toml")
    assert str(error.value).startswith("lights/node.toml: ")
    assert words in str(error.value)


def test_profile_needs_energy_or_faults() -> None:
    text = '[profile]\nname = "x"\ndefault = true\nfports = [1]\n'
    with pytest.raises(ProfileError, match=r"needs an \[energy\] or a \[faults\] table"):
        profile(text)


def test_duplicate_match_keys_across_profiles() -> None:
    other = GOOD_PROFILE.replace('name = "node"', 'name = "other"').replace(
        '"dali-node"', '"other-model"'
    )
    with pytest.raises(ProfileError, match=r"b.toml: .*'DALI lighting node' is claimed by a.toml"):
        profile_set([profile(source="a.toml"), profile(other, source="b.toml")])
    with pytest.raises(ProfileError, match=r"profile name 'node' is claimed by a\.toml"):
        profile_set([profile(source="a.toml"), profile(source="b.toml")])


def test_only_one_default_profile() -> None:
    first = (
        '[profile]\nname = "a"\ndefault = true\nfports = [1]\n'
        '[faults]\nfield = "s"\nbits = { 0 = "lampFailure" }\n'
    )
    second = first.replace('name = "a"', 'name = "b"')
    with pytest.raises(ProfileError, match="only one profile may have default = true"):
        profile_set([profile(first, "a.toml"), profile(second, "b.toml")])


def test_load_profiles_from_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="holds no"):
        load_profiles(tmp_path)
    with pytest.raises(ProfileError, match="not a folder"):
        load_profiles(tmp_path / "missing")
    (tmp_path / "a.toml").write_text(GOOD_PROFILE, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a profile", encoding="utf-8")
    assert [p.name for p in load_profiles(tmp_path).profiles] == ["node"]
    (tmp_path / "b.toml").write_text(broken("scale = 1000", "scale = 0"), encoding="utf-8")
    with pytest.raises(ProfileError, match=r"b\.toml: \[energy\] energy_wh: scale"):
        load_profiles(tmp_path)


# Profiles: choosing one for an uplink.


def uplink(
    decoded: dict[str, Any] | None,
    *,
    f_port: int = 2,
    hint: str | None = "DALI lighting node",
    source: Any = "chirpstack",
) -> Uplink:
    return Uplink(
        dev_eui=DEV_EUI,
        time_ms=1795640645000,
        f_port=f_port,
        f_cnt=1,
        data=b"",
        decoded=decoded,
        profile_hint=hint,
        source=source,
        raw=b"{...}",
    )


def test_profile_chosen_by_hint_then_default() -> None:
    fallback = profile(
        '[profile]\nname = "any"\ndefault = true\nfports = [1]\n'
        '[faults]\nfield = "s"\nbits = { 0 = "lampFailure" }\n',
        "any.toml",
    )
    node = profile()
    both = profile_set([node, fallback])
    assert both.profile_for(uplink({})) is node
    assert both.profile_for(uplink({}, hint="dali-node", source="things_stack")) is node
    assert both.profile_for(uplink({}, hint="dali-node")) is fallback  # a TTS key, not CS
    assert both.profile_for(uplink({}, hint=None)) is fallback
    alone = profile_set([node])
    refusal = refused(alone.profile_for(uplink({}, hint="Other node")), "unmapped_uplink")
    assert "'Other node'" in refusal.detail and refusal.identity == DEV_EUI
    assert refusal.raw == b"{...}"


# Profiles: mapping.


def test_energy_reading_with_scales() -> None:
    decoded = {
        "energy_kwh": 12.5,
        "power_w": 61,
        "meter": {"current_ma": 270},
        "lamp_on": True,
        "dim_level": 254.0,
        "unrelated": "ok",
    }
    mapped = map_uplink(profile(), uplink(decoded), previous_status=None)
    assert isinstance(mapped, MappedUplink)
    [energy] = mapped.reports
    assert isinstance(energy, Energy)
    assert energy.ts == 1795640645000
    assert energy.energy_wh == 12500.0
    assert energy.power_w == 61.0
    assert energy.current_a == pytest.approx(0.27)
    assert energy.lamp_on is True
    assert energy.dim_pct is not None and 99.999 < energy.dim_pct <= 100
    assert energy.voltage_v is None
    assert mapped.status is None


def test_null_fields_are_left_out() -> None:
    mapped = map_uplink(profile(), uplink({"energy_kwh": 1, "power_w": None}), previous_status=None)
    assert isinstance(mapped, MappedUplink)
    assert mapped.reports == [Energy(ts=1795640645000, energy_wh=1000.0)]


def test_first_uplink_reports_set_bits_only() -> None:
    mapped = map_uplink(profile(), uplink({"status": 0b100011}), previous_status=None)
    assert isinstance(mapped, MappedUplink)
    assert mapped.status == 0b100011
    assert [(f.fault, f.active) for f in mapped.reports if isinstance(f, Fault)] == [
        ("lampFailure", True),
        ("controlGearFailure", True),
        ("communicationFailure", True),
    ]
    quiet = map_uplink(profile(), uplink({"status": 0}), previous_status=None)
    assert quiet == MappedUplink(reports=[], status=0)


def test_faults_on_change_only() -> None:
    decoded = {"energy_kwh": 2, "status": 0b000010}
    mapped = map_uplink(profile(), uplink(decoded), previous_status=0b100001)
    assert isinstance(mapped, MappedUplink)
    assert isinstance(mapped.reports[0], Energy)
    assert mapped.reports[1:] == [
        Fault(ts=1795640645000, fault="lampFailure", active=False, detail="bit 0 of status = 0x2"),
        Fault(
            ts=1795640645000,
            fault="controlGearFailure",
            active=True,
            detail="bit 1 of status = 0x2",
        ),
        Fault(
            ts=1795640645000,
            fault="communicationFailure",
            active=False,
            detail="bit 5 of status = 0x2",
        ),
    ]
    same = map_uplink(profile(), uplink({"status": 2}), previous_status=2)
    assert same == MappedUplink(reports=[], status=2)


def test_unmapped_bits_change_nothing() -> None:
    mapped = map_uplink(profile(), uplink({"status": 0b1000}), previous_status=0)
    assert mapped == MappedUplink(reports=[], status=0b1000)


def test_chirpstack_float_status_is_an_integer() -> None:
    # ChirpStack's object is a protobuf Struct: the codec's 3 arrives as 3.0.
    topic, body = encode_chirpstack_uplink(
        dev_eui=DEV_EUI,
        time_ms=1795640645000,
        f_port=2,
        f_cnt=9,
        data=b"\x03",
        decoded={"status": 3, "energy_kwh": 4},
        profile_name="DALI lighting node",
    )
    parsed = parse_chirpstack_uplink(topic, body)
    assert isinstance(parsed, Uplink)
    mapped = map_uplink(profile(), parsed, previous_status=None)
    assert isinstance(mapped, MappedUplink)
    assert mapped.status == 3
    assert [type(r).__name__ for r in mapped.reports] == ["Energy", "Fault", "Fault"]


def test_uplink_without_decoded_payload() -> None:
    refusal = refused(map_uplink(profile(), uplink(None), previous_status=None), "unmapped_uplink")
    assert "no decoded payload" in refusal.detail and "codec" in refusal.detail
    assert refusal.raw == b"{...}" and refusal.identity == DEV_EUI


def test_uplink_on_an_unmapped_port() -> None:
    refusal = refused(
        map_uplink(profile(), uplink({"energy_kwh": 1}, f_port=9), previous_status=None),
        "unmapped_uplink",
    )
    assert refusal.detail == "uplink on fPort 9: profile node maps fPort 2, 3 only"


def test_uplink_with_neither_meter_nor_status() -> None:
    refusal = refused(
        map_uplink(
            profile(), uplink({"power_w": 50, "battery": 3.1}, f_port=3), previous_status=None
        ),
        "unmapped_uplink",
    )
    assert refusal.detail.startswith(
        "uplink on fPort 3 has no field energy_kwh (energy_wh) nor status (faults)"
    )
    assert "battery, power_w" in refusal.detail


@pytest.mark.parametrize(
    ("decoded", "words"),
    [
        (
            {"energy_kwh": "12.5"},
            "decoded energy_kwh (-> energy_wh) is a string ('12.5'), a number",
        ),
        ({"energy_kwh": True}, "is a boolean (true), a number is needed"),
        (
            {"energy_kwh": 1, "lamp_on": 1},
            "decoded lamp_on (-> lamp_on) is the number 1, true or false",
        ),
        (
            {"energy_kwh": 1, "meter": {"current_ma": [1]}},
            "meter.current_ma (-> current_a) is a list",
        ),
        (
            {"energy_kwh": -1},
            "energy_wh -1000.0 (from decoded energy_kwh): Input should be greater",
        ),
        ({"energy_kwh": 1, "dim_level": 255}, "dim_pct 100.39"),
        ({"energy_kwh": 10**400}, "out of range"),
        ({"status": "ok"}, "decoded status (faults) is a string"),
        ({"status": 2.5}, "decoded status (faults) is the number 2.5"),
        ({"status": -1}, "decoded status (faults) is the number -1"),
        ({"status": 2**64}, "decoded status (faults) is a number too large"),
        ({"status": False}, "decoded status (faults) is a boolean"),
    ],
)
def test_mistyped_or_out_of_range_values(decoded: dict[str, Any], words: str) -> None:
    refusal = refused(map_uplink(profile(), uplink(decoded), previous_status=None), "invalid")
    assert words in refusal.detail


def test_mapped_reports_are_contract_reports() -> None:
    decoded = {"energy_kwh": 0.25, "power_w": 0, "lamp_on": False, "dim_level": 0, "status": 1}
    mapped = map_uplink(profile(), uplink(decoded), previous_status=None)
    assert isinstance(mapped, MappedUplink)
    energy, fault = mapped.reports
    EnergyReport.model_validate_json(msgspec.json.encode(energy))
    FaultReport.model_validate_json(msgspec.json.encode(fault))


# Properties.

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
interesting_keys = st.sampled_from(
    ["energy_kwh", "power_w", "meter", "current_ma", "lamp_on", "dim_level", "status", "x"]
)
any_values = json_values | st.floats() | st.integers()


def decoded_mappings() -> st.SearchStrategy[dict[str, Any]]:
    nested = st.dictionaries(interesting_keys, any_values, max_size=3)
    return st.dictionaries(interesting_keys | st.text(max_size=6), any_values | nested, max_size=8)


@settings(max_examples=300)
@given(body=st.binary(max_size=300), topic=st.text(max_size=60))
def test_any_bytes_never_crash_the_parsers(body: bytes, topic: str) -> None:
    for parse, good_topic in (
        (parse_chirpstack_uplink, CHIRPSTACK_DOCS_TOPIC),
        (parse_things_stack_uplink, TTS_DOCS_TOPIC),
    ):
        for result in (parse(good_topic, body), parse(topic, body)):
            assert isinstance(result, Refusal)
            assert result.raw == body


def mutated(body: bytes, paths: list[str]) -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda path, value: edited(body, {path: value}), st.sampled_from(paths), json_values
    )


@settings(max_examples=300)
@given(
    body=mutated(
        CHIRPSTACK_DOCS_UP,
        [
            "time",
            "fCnt",
            "fPort",
            "data",
            "object",
            "deviceInfo",
            "deviceInfo.devEui",
            "deviceInfo.deviceProfileName",
            "rxInfo",
            "rxInfo.0.nsTime",
            "deviceInfo.applicationId",
        ],
    )
)
def test_mutated_chirpstack_uplinks_never_crash(body: bytes) -> None:
    result = parse_chirpstack_uplink(CHIRPSTACK_DOCS_TOPIC, body)
    if isinstance(result, Refusal):
        assert result.reason_code in {"invalid", "not_uplink"}
    else:
        assert len(result.dev_eui) == 16 and result.time_ms >= 0


@settings(max_examples=300)
@given(
    body=mutated(
        TTS_DOCS_UP,
        [
            "received_at",
            "end_device_ids",
            "end_device_ids.dev_eui",
            "end_device_ids.device_id",
            "uplink_message",
            "uplink_message.f_port",
            "uplink_message.f_cnt",
            "uplink_message.frm_payload",
            "uplink_message.decoded_payload",
            "uplink_message.received_at",
            "uplink_message.version_ids",
            "uplink_message.rx_metadata",
        ],
    )
)
def test_mutated_things_stack_uplinks_never_crash(body: bytes) -> None:
    result = parse_things_stack_uplink(TTS_DOCS_TOPIC, body)
    if isinstance(result, Refusal):
        assert result.reason_code in {"invalid", "not_uplink"}
    else:
        assert result.dev_eui == "0004a30b001c0530"


SHIPPED = load_profiles(shipped_profiles_folder()).profiles[0]


@settings(max_examples=400)
@given(
    decoded=st.none() | decoded_mappings(),
    previous=st.none() | st.integers(min_value=0, max_value=2**64 - 1),
    f_port=st.sampled_from([2, 3, 9]),
)
def test_any_decoded_mapping_never_crashes_map_uplink(
    decoded: dict[str, Any] | None, previous: int | None, f_port: int
) -> None:
    for chosen in (profile(), SHIPPED):
        result = map_uplink(chosen, uplink(decoded, f_port=f_port), previous_status=previous)
        if isinstance(result, Refusal):
            assert result.reason_code in {"invalid", "unmapped_uplink"}
            continue
        for report in result.reports:
            model = EnergyReport if isinstance(report, Energy) else FaultReport
            model.model_validate_json(msgspec.json.encode(report))


dev_euis = st.text(alphabet="0123456789abcdefABCDEF", min_size=16, max_size=16)
round_trip_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300)
@given(
    dev_eui=dev_euis,
    time_ms=st.integers(min_value=0, max_value=253402300799999),
    f_port=st.integers(min_value=0, max_value=255),
    f_cnt=st.integers(min_value=0, max_value=2**32 - 1),
    data=st.binary(max_size=64),
    decoded=st.none() | st.dictionaries(st.text(max_size=8), round_trip_values, max_size=5),
    profile_name=st.text(max_size=20),
)
def test_encode_then_parse_chirpstack_round_trips(
    dev_eui: str,
    time_ms: int,
    f_port: int,
    f_cnt: int,
    data: bytes,
    decoded: dict[str, Any] | None,
    profile_name: str,
) -> None:
    topic, body = encode_chirpstack_uplink(
        dev_eui=dev_eui,
        time_ms=time_ms,
        f_port=f_port,
        f_cnt=f_cnt,
        data=data,
        decoded=decoded,
        profile_name=profile_name,
    )
    assert parse_chirpstack_uplink(topic, body) == Uplink(
        dev_eui=dev_eui.lower(),
        time_ms=time_ms,
        f_port=f_port,
        f_cnt=f_cnt,
        data=data,
        decoded=decoded,
        profile_hint=profile_name or None,
        source="chirpstack",
    )


def test_scale_rounding_keeps_full_dim_level_in_range() -> None:
    assert 254 * SHIPPED.energy[-1].scale <= 100
    assert math.isclose(254 * SHIPPED.energy[-1].scale, 100)
