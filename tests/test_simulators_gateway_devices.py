"""Simulated devices' protocol identities and LoRaWAN uplinks (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from hypothesis import given
from hypothesis import strategies as st

from simulators.gateway_identities import in_share, light_dev_eui, luhn_digit, tracker_imei
from simulators.lorawan_nodes import LorawanNodes
from simulators.teltonika_link import position_records
from telemetry.protocols.lorawan_profile import (
    MappedUplink,
    load_profiles,
    map_uplink,
    shipped_profiles_folder,
)
from telemetry.protocols.lorawan_uplink import Uplink, parse_chirpstack_uplink
from telemetry.protocols.reports import Energy, Fault
from telemetry.protocols.teltonika import AvlPacket, records_to_reports

PROFILE = load_profiles(shipped_profiles_folder()).profiles[0]
T0 = 1_766_174_100_000  # 2025-12-19T19:55:00Z


def test_imeis_carry_a_valid_luhn_digit() -> None:
    # 490154203237518 is the IMEI 3GPP TS 23.003 and most references use as their example.
    assert luhn_digit("49015420323751") == "8"
    imei = tracker_imei("T-ARM-001")
    assert len(imei) == 15 and imei.isdigit() and luhn_digit(imei[:-1]) == imei[-1]
    assert tracker_imei("T-ARM-001") == imei != tracker_imei("T-ARM-002")


def test_dev_euis_are_stable_hex_and_shares_are_proportional() -> None:
    eui = light_dev_eui("L-MED-00001")
    assert len(eui) == 16 and int(eui, 16) >= 0 and eui == eui.lower()
    chosen = sum(in_share(f"L-MED-{i:05d}", 0.25) for i in range(4000))
    assert 900 < chosen < 1100
    assert not any(in_share(f"L-{i}", 0.0) for i in range(100))
    assert all(in_share(f"L-{i}", 1.0) for i in range(100))


@given(
    lat=st.floats(-89, 89),
    lon=st.floats(-179, 179),
    speed=st.floats(0, 120),
    heading=st.floats(0, 359.4),
)
def test_simulated_teltonika_records_decode_to_the_same_fix(
    lat: float, lon: float, speed: float, heading: float
) -> None:
    payload = {"ts": T0, "lat": lat, "lon": lon, "speed_kmh": speed, "heading_deg": heading}
    records = tuple(position_records(json.dumps(payload).encode()))
    positions, refusals = records_to_reports("1", AvlPacket(codec=0x8E, records=records, raw=b""))
    if (lat, lon) == (0.0, 0.0):
        assert [r.reason_code for r in refusals] == ["no_fix"]
        return
    (fix,) = positions
    assert fix.ts == T0 and abs(fix.lat - lat) <= 1e-7 and abs(fix.lon - lon) <= 1e-7
    assert fix.speed_kmh == (round(speed) if speed > 0.5 else 0)


def _mapped(
    nodes: LorawanNodes, channel: str, item: Mapping[str, object], status: int | None
) -> tuple[list[Energy | Fault], int | None]:
    uplinks = nodes.uplinks("L-1", "0004a30b001c0530", channel, json.dumps(item).encode())
    assert uplinks is not None
    reports: list[Energy | Fault] = []
    for topic, body in uplinks:
        uplink = parse_chirpstack_uplink(topic, body)
        assert isinstance(uplink, Uplink)
        mapped = map_uplink(PROFILE, uplink, previous_status=status)
        assert isinstance(mapped, MappedUplink), mapped
        reports += mapped.reports
        status = mapped.status
    return reports, status


@given(
    energy=st.floats(0, 1e6),
    power=st.floats(0, 400),
    dim=st.floats(0, 100),
    lamp_on=st.booleans(),
)
def test_a_light_through_its_simulated_node_reads_back_the_same(
    energy: float, power: float, dim: float, lamp_on: bool
) -> None:
    nodes = LorawanNodes(profile=PROFILE)
    item = {"ts": T0, "energy_wh": energy, "power_w": power, "dim_pct": dim, "lamp_on": lamp_on}
    reports, status = _mapped(nodes, "energy", item, None)
    (reading,) = reports
    assert isinstance(reading, Energy) and reading.ts == T0
    assert abs(reading.energy_wh - energy) <= 1e-3 and reading.lamp_on == lamp_on
    assert reading.power_w is not None and abs(reading.power_w - power) <= 1e-6
    assert reading.dim_pct is not None and abs(reading.dim_pct - dim) <= 1e-3
    faults, status = _mapped(
        nodes, "fault", {"ts": T0 + 1000, "fault": "lampFailure", "active": True}, status
    )
    (fault,) = faults
    assert isinstance(fault, Fault)
    assert (fault.ts, fault.fault, fault.active) == (T0 + 1000, "lampFailure", True)
    unmapped = nodes.uplinks(
        "L-1", "0004a30b001c0530", "fault", b'{"ts":1,"fault":"cabinetDoorOpen","active":true}'
    )
    assert unmapped is None  # the profile has no bit for it: the light says it over MQTT
