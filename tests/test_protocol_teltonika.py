"""Teltonika Codec 8 / 8E: vendor and Traccar vectors, framing over arbitrary TCP chunks, the
IMEI handshake, refusals, and properties (no input raises; encode -> decode round-trips)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.protocols.reports import Position
from telemetry.protocols.teltonika import (
    CODEC_8,
    CODEC_8E,
    AvlFormatError,
    AvlPacket,
    AvlRecord,
    BadPacket,
    ImeiReceived,
    ProtocolViolation,
    TeltonikaConnection,
    TeltonikaEvent,
    crc16_ibm,
    encode_avl_packet,
    encode_avl_record,
    encode_imei,
    records_to_reports,
)

IMEI = "356307042441013"

# Teltonika wiki, "Teltonika Data Sending Protocols"
# (https://wiki.teltonika-gps.com/view/Teltonika_Data_Sending_Protocols): the IMEI frame of
# the "Communication with server" examples, IMEI 356307042441013.
WIKI_IMEI_FRAME = "000F333536333037303432343431303133"
# Same page, section "Codec 8", 1st example: one record, 1/2/4/8-byte IO elements.
WIKI_CODEC8_1 = (
    "000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F"
    "01F10000601A014E0000000000000000010000C7CF"
)
# Same page, section "Codec 8", 2nd example: one record, 1- and 2-byte IO elements.
WIKI_CODEC8_2 = (
    "000000000000002808010000016B40D9AD80010000000000000000000000000000000103021503010101425E10"
    "0000010000F22A"
)
# Same page, section "Codec 8", 3rd example: two records, one 1-byte IO element each.
WIKI_CODEC8_3 = (
    "000000000000004308020000016B40D57B480100000000000000000000000000000001010101000000000000016B"
    "40D5C198010000000000000000000000000000000101010101000000020000252C"
)
# Same page, section "Codec 8 Extended", example: one record, 2-byte ids, 1/2/4/8-byte IO.
WIKI_CODEC8E = (
    "000000000000004A8E010000016B412CEE000100000000000000000000000000000000010005000100010100010011"
    "001D00010010015E2C880002000B000000003544C87A000E000000001DD7E06A00000100002994"
)
# Same page, section "Codec 16", example (two records of a codec this module does not decode).
WIKI_CODEC16 = (
    "000000000000005F10020000016BDBC7833000000000000000000000000000000000000B05040200010000030002"
    "000B00270042563A00000000016BDBC7871800000000000000000000000000000000000B05040200010000030002"
    "000B00260042563A00000200005FB3"
)
# Same page, section "Codec 12", example: the server's "getinfo" command.
WIKI_CODEC12_GETINFO = "000000000000000F0C010500000007676574696E666F0100004312"

# The next vectors are from traccar/traccar,
# src/test/java/org/traccar/protocol/TeltonikaProtocolDecoderTest.java (testDecode; read at
# commit 9e5c458ad0bf). Traccar decodes without checking CRCs; the CRC here says which are sound.
# Codec 8, three records (FMB, Karachi), event IO 250 in the first.
TRACCAR_CODEC8_3_RECORDS = (
    "00000000000000da08030000017fcedf499600280431be0eded45d0038012d100000fa100901000200b300b40045"
    "01500415034702fa00054232a1180000cd3b2fce281d43001f02c700000006f10000a029000000017fcedea99600"
    "280432070eded3dd00380046130009000f0801010200b300b400450150051502470205423276180009cd3b2fce28"
    "1d43001f02c700000027f10000a0290000000179d50853180027f65d3f0ed67212001500f1110061000f08010102"
    "00b300b4004501500515034702054234f4180061cd53d1ce28c043003e02c700000147f1000000290003000052cb"
)
# Codec 8E, one record with two NX elements: AVL ID 256 (VIN) and 281 (fault codes).
TRACCAR_CODEC8E_NX = (
    "00000000000000a38e0100000178b11c9e1000040bbbc91f03190c002100e113001300000010000600ef0100f001"
    "00150300c800004501001e070005004237e00018000a00ce166200430f970024059f000300f10000665900c70000"
    "001e00100000a1b500000002010000115756315a5a5a32455a38363031353338380119002950303239392c503036"
    "37352c50303637342c50303637322c50303637312c50303437312c50324241430100001ad8"
)
# Codec 8E, two records whose only IO element is a 23-byte NX value (AVL ID 385).
TRACCAR_CODEC8E_NX_2_RECORDS = (
    "00000000000000858e0200000174431aadc100061d888f21000e8a0032002e0c00000181000100000000000000000"
    "0010181001711210102030405060708090a0b0c0d0e0f10020b010ad000000174431a389100061d888f21000e8a"
    "0033002e0d000001810001000000000000000000010181001711210102030405060708090a0b0c0d0e0f10020b01"
    "0ad2020000492b"
)
# Codec 8E, two records without a GPS fix (0 satellites).
TRACCAR_CODEC8E_NO_FIX = (
    "00000000000000b98e0200000179555c7bf8010b3a1cfbebc142b00000000000000000ec000f000900f000001500"
    "00c80000450200710100740001070100fa0000ec01000500b500000018000000430d560044000000190000000100"
    "f1000000000000000000000179555c83c8010b3a1cfbebc142b0000000000000000185000f000900f00000150000"
    "c80000450200710100740001070100fa00018511000500b500000018000000430d56004400000019000000010"
    "0f100000000000000000200003251"
)
# Codec 8, four records, each with an 8-byte IO 78 (iButton).
TRACCAR_CODEC8_IBUTTON = (
    "000000000000009f080400000159738f76b8012e13b796110ab27600d700000b00004e01000000014e0000000000"
    "00000000000159738f6ee8012e13b796110ab27600d700000a00004e01000000014e01000b00791c179300000159"
    "738f6b00012e13b796110ab27600d700000a00004e01000000014e000000000000000000000159738f5f48012e13"
    "b796110ab27600d700000b00004e01000000014e01000b00791c17930400009671"
)
# Codec 8, one record, negative altitude, Movement (IO 240) = 0.
TRACCAR_CODEC8_PARKED = (
    "000000000000002b080100000140d4e3ec6e000cc661d01674a5e0fffc00000900000004020100f00002423223180"
    "00000000100007a04"
)
# Codec 12 response frame (not AVL data).
TRACCAR_CODEC12 = "00000000000000100C010600000008010300010015D5C5010000D988"
# Codec 7 (older GH trackers): not decoded here.
TRACCAR_CODEC7 = (
    "0000000000000055070450aa14320201f00150aa17f3031f42332a4c4193d68c008d00020901f00150aa1b6a031f"
    "423383f54193624f009d00000a01f00150aa1c230fc01a0000552b040164f400dd00f0010143100c010500000005"
    "0400006846"
)
# Codec 13 frame whose CRC field (0x4990) is not the CRC-16/IBM of its data (0x4715); Traccar
# does not check CRCs.
TRACCAR_CODEC13_BAD_CRC = (
    "000000000000001C0D01050000001056E924222347455420444154414F524445520D0A0100004990"
)
# Two Codec 8 vectors of that file, the same packet with the same CRC field 0x3FCA, except that
# the first 1-byte IO elements read 01=00 02=00 in one and FD=01 FE=21 in the other; CRC-16/IBM
# confirms the first.
TRACCAR_CODEC8_SOUND = (
    "000000000000008c08010000013feb55ff74000f0ea850209a690000940000120000001e09010002000300040016"
    "014703f0001504c8000c0900730a00460b00501300464306d7440000b5000bb60007422e9f180000cd0386ce0001"
    "07c700000000f10000601a46000001344800000bb84900000bb84a00000bb84c00000000024e0000000000000000"
    "cf00000000000000000100003fca"
)
TRACCAR_CODEC8_EDITED = TRACCAR_CODEC8_SOUND.replace("1e0901000200", "1e09fd01fe21", 1)
# Traccar's "invalid length and checksum" vector: a data field length of 0.
TRACCAR_ZERO_LENGTH = (
    "0000000000000000080100000113fc208dff00209cca800f14f650006f00d60400040004030101150316030001"
    "460000015d000100000000"
)


def accepted() -> TeltonikaConnection:
    """A connection whose IMEI frame was received and accepted."""
    conn = TeltonikaConnection()
    (event,) = conn.feed(encode_imei(IMEI))
    assert isinstance(event, ImeiReceived)
    assert conn.accept_imei() == b"\x01"
    return conn


def one_packet(hex_frame: str) -> AvlPacket:
    """The single AvlPacket an accepted connection yields for ``hex_frame``."""
    events = accepted().feed(bytes.fromhex(hex_frame))
    assert len(events) == 1
    assert isinstance(events[0], AvlPacket), events[0]
    return events[0]


def one_event(conn: TeltonikaConnection, data: bytes) -> TeltonikaEvent:
    """The single event ``data`` completes."""
    events = conn.feed(data)
    assert len(events) == 1, events
    return events[0]


def record(**changes: object) -> AvlRecord:
    """A plausible Marrakech record with a fix; ``changes`` override fields."""
    fields: dict[str, object] = {
        "timestamp_ms": 1_795_640_645_000,
        "priority": 0,
        "longitude_e7": -80_172_600,
        "latitude_e7": 316_309_600,
        "altitude_m": 466,
        "angle_deg": 92,
        "satellites": 9,
        "speed_kmh": 17,
        "event_io_id": 0,
        "io": {239: 1, 240: 1, 66: 12_500},
    }
    fields.update(changes)
    return AvlRecord(**fields)  # type: ignore[arg-type]


# -- CRC ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "crc"),
    [
        (b"", 0x0000),
        # The CRC catalogue's check value for CRC-16/ARC (= CRC-16/IBM): "123456789".
        (b"123456789", 0xBB3D),
        # The wiki's Codec 8 / 8E examples: CRC over codec id .. number of data 2.
        (bytes.fromhex(WIKI_CODEC8_1)[8:-4], 0xC7CF),
        (bytes.fromhex(WIKI_CODEC8_2)[8:-4], 0xF22A),
        (bytes.fromhex(WIKI_CODEC8_3)[8:-4], 0x252C),
        (bytes.fromhex(WIKI_CODEC8E)[8:-4], 0x2994),
    ],
)
def test_crc16_ibm_known_values(data: bytes, crc: int) -> None:
    assert crc16_ibm(data) == crc


# -- IMEI handshake -----------------------------------------------------------------------


def test_wiki_imei_frame_is_received_and_accepted() -> None:
    conn = TeltonikaConnection()
    event = one_event(conn, bytes.fromhex(WIKI_IMEI_FRAME))
    assert event == ImeiReceived(imei=IMEI, raw=bytes.fromhex(WIKI_IMEI_FRAME))
    assert encode_imei(IMEI) == bytes.fromhex(WIKI_IMEI_FRAME)
    assert conn.accept_imei() == b"\x01"
    assert isinstance(one_event(conn, bytes.fromhex(WIKI_CODEC8_2)), AvlPacket)


def test_rejected_imei_refuses_any_further_data() -> None:
    conn = TeltonikaConnection()
    one_event(conn, encode_imei(IMEI))
    assert conn.reject_imei() == b"\x00"
    event = one_event(conn, bytes.fromhex(WIKI_CODEC8_2))
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == "data_after_reject"
    assert conn.closed
    assert conn.feed(bytes.fromhex(WIKI_CODEC8_2)) == []


def test_avl_data_before_the_imei_is_a_violation() -> None:
    event = one_event(TeltonikaConnection(), bytes.fromhex(WIKI_CODEC8_1))
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == "data_before_imei"
    assert event.raw == bytes.fromhex(WIKI_CODEC8_1)


def test_avl_data_before_the_imei_is_answered_is_a_violation() -> None:
    conn = TeltonikaConnection()
    events = conn.feed(encode_imei(IMEI) + bytes.fromhex(WIKI_CODEC8_2))
    assert isinstance(events[0], ImeiReceived)
    assert isinstance(events[1], ProtocolViolation)
    assert events[1].reason_code == "data_before_accept"
    assert len(events) == 2
    with pytest.raises(RuntimeError):
        conn.accept_imei()


@pytest.mark.parametrize(
    "frame",
    [
        b"\x00\x0e" + b"35630704244101",  # 14 digits
        b"\x00\x12" + b"356307042441013000",  # 18 digits
        b"\xff\xff",  # a length no IMEI has, known from the first two bytes
        b"\x00\x0f" + b"35630704244101X",  # not digits
        b"\x00\x0f" + "٣٥٦٣٠٧٠٤٢٤٤١٠١".encode()[:15],  # not ASCII
    ],
)
def test_bad_imei_frame_is_a_violation(frame: bytes) -> None:
    conn = TeltonikaConnection()
    event = one_event(conn, frame)
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == "bad_imei"
    assert conn.closed


def test_seventeen_digit_identity_is_accepted() -> None:
    event = one_event(TeltonikaConnection(), encode_imei("35630704244101399"))
    assert event == ImeiReceived(imei="35630704244101399", raw=encode_imei("35630704244101399"))


def test_verdict_without_an_imei_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError):
        TeltonikaConnection().accept_imei()
    with pytest.raises(RuntimeError):
        accepted().reject_imei()


# -- The wiki's documented packets ----------------------------------------------------------


def test_wiki_codec8_example_1() -> None:
    packet = one_packet(WIKI_CODEC8_1)
    assert packet.codec == CODEC_8
    assert packet.raw == bytes.fromhex(WIKI_CODEC8_1)
    (rec,) = packet.records
    # The wiki: GMT Monday, June 10, 2019 10:04:46 AM; priority 1; GPS element all zero.
    assert rec == AvlRecord(
        timestamp_ms=1_560_161_086_000,
        priority=1,
        longitude_e7=0,
        latitude_e7=0,
        altitude_m=0,
        angle_deg=0,
        satellites=0,
        speed_kmh=0,
        event_io_id=1,
        io={21: 3, 1: 1, 66: 0x5E0F, 241: 0x601A, 78: 0},
    )
    assert accepted().ack(packet) == bytes.fromhex("00000001")


def test_wiki_codec8_example_2() -> None:
    (rec,) = one_packet(WIKI_CODEC8_2).records
    assert rec.timestamp_ms == 1_560_161_136_000  # June 10, 2019 10:05:36 AM
    assert rec.event_io_id == 1
    assert dict(rec.io) == {21: 3, 1: 1, 66: 0x5E10}


def test_wiki_codec8_example_3_two_records() -> None:
    packet = one_packet(WIKI_CODEC8_3)
    first, second = packet.records
    assert first.timestamp_ms == 1_560_160_861_000  # June 10, 2019 10:01:01 AM
    assert second.timestamp_ms == 1_560_160_879_000  # June 10, 2019 10:01:19 AM
    assert (first.priority, second.priority) == (1, 1)
    assert (dict(first.io), dict(second.io)) == ({1: 0}, {1: 1})
    assert accepted().ack(packet) == bytes.fromhex("00000002")


def test_wiki_codec8_extended_example() -> None:
    packet = one_packet(WIKI_CODEC8E)
    assert packet.codec == CODEC_8E
    (rec,) = packet.records
    assert rec.timestamp_ms == 1_560_166_592_000  # June 10, 2019 11:36:32 AM
    assert rec.priority == 1
    assert rec.event_io_id == 1
    assert dict(rec.io) == {1: 1, 17: 0x1D, 16: 0x015E2C88, 11: 0x3544C87A, 14: 0x1DD7E06A}
    assert accepted().ack(packet) == bytes.fromhex("00000001")


@pytest.mark.parametrize(
    ("hex_frame", "codec", "widths"),
    [
        (WIKI_CODEC8_1, CODEC_8, {21: 1, 1: 1, 66: 2, 241: 4, 78: 8}),
        (WIKI_CODEC8_3, CODEC_8, {1: 1}),
        (WIKI_CODEC8E, CODEC_8E, {1: 1, 17: 2, 16: 4, 11: 8, 14: 8}),
    ],
)
def test_encoder_reproduces_wiki_packets(
    hex_frame: str, codec: int, widths: dict[int, int]
) -> None:
    packet = one_packet(hex_frame)
    encoded = encode_avl_packet(packet.records, codec=codec, io_widths=widths)
    assert encoded == bytes.fromhex(hex_frame)


# -- Traccar's vectors ----------------------------------------------------------------------


def test_traccar_codec8_three_records() -> None:
    packet = one_packet(TRACCAR_CODEC8_3_RECORDS)
    assert accepted().ack(packet) == bytes.fromhex("00000003")
    first = packet.records[0]
    assert first.timestamp_ms == 0x17FCEDF4996
    assert (first.longitude_e7, first.latitude_e7) == (0x280431BE, 0x0EDED45D)
    assert (first.altitude_m, first.angle_deg, first.satellites, first.speed_kmh) == (
        56,
        301,
        16,
        0,
    )
    assert first.event_io_id == 250
    assert first.io[66] == 0x32A1 and first.io[241] == 0xA029 and first.io[199] == 6
    assert [r.speed_kmh for r in packet.records] == [0, 9, 97]
    positions, refusals = records_to_reports(IMEI, packet)
    assert refusals == []
    assert [p.ts for p in positions] == [r.timestamp_ms for r in packet.records]
    assert positions[2] == Position(
        ts=0x179D5085318, lat=24.893493, lon=67.0457151, speed_kmh=97.0, heading_deg=241.0
    )
    # 24 bytes of timestamp, priority and GPS; event id, total; 9 + 5 + 2 + 0 IO elements.
    assert len(packet.records[0].raw) == 24 + 2 + (1 + 9 * 2) + (1 + 5 * 3) + (1 + 2 * 5) + 1
    assert b"".join(r.raw for r in packet.records) == packet.raw[10:-5]


def test_traccar_codec8e_variable_length_elements() -> None:
    (rec,) = one_packet(TRACCAR_CODEC8E_NX).records
    assert rec.io[256] == b"WV1ZZZ2EZ86015388"
    assert rec.io[281] == b"P0299,P0675,P0674,P0672,P0671,P0471,P2BAC"
    assert rec.io[239] == 1 and rec.io[240] == 1 and rec.io[16] == 0xA1B5
    assert (rec.latitude_e7, rec.longitude_e7, rec.satellites, rec.speed_kmh) == (
        0x1F03190C,
        0x040BBBC9,
        19,
        19,
    )


def test_traccar_codec8e_nx_two_records() -> None:
    packet = one_packet(TRACCAR_CODEC8E_NX_2_RECORDS)
    assert accepted().ack(packet) == bytes.fromhex("00000002")
    blob = bytes.fromhex("1121") + bytes(range(1, 17)) + bytes.fromhex("020b010a")
    assert [dict(r.io) for r in packet.records] == [{385: blob + b"\xd0"}, {385: blob + b"\xd2"}]
    assert [r.event_io_id for r in packet.records] == [385, 385]
    assert [r.satellites for r in packet.records] == [12, 13]


def test_traccar_codec8_eight_byte_values() -> None:
    packet = one_packet(TRACCAR_CODEC8_IBUTTON)
    assert accepted().ack(packet) == bytes.fromhex("00000004")
    assert [r.io[78] for r in packet.records] == [0, 0x01000B00791C1793, 0, 0x01000B00791C1793]


def test_traccar_records_without_fix_become_no_fix_refusals() -> None:
    packet = one_packet(TRACCAR_CODEC8E_NO_FIX)
    positions, refusals = records_to_reports(IMEI, packet)
    assert positions == []
    assert [(r.reason_code, r.element_index, r.identity) for r in refusals] == [
        ("no_fix", 0, IMEI),
        ("no_fix", 1, IMEI),
    ]
    assert [r.raw for r in refusals] == [rec.raw for rec in packet.records]
    assert b"".join(r.raw for r in refusals) == packet.raw[10:-5]
    # Still acknowledged: the tracker must not resend records that can never be stored.
    assert accepted().ack(packet) == bytes.fromhex("00000002")


def test_traccar_parked_record_reports_zero_speed() -> None:
    packet = one_packet(TRACCAR_CODEC8_PARKED)
    (rec,) = packet.records
    assert rec.altitude_m == -4
    assert rec.io[240] == 0
    (position,), _ = records_to_reports(IMEI, packet)
    assert position == Position(
        ts=0x140D4E3EC6E, lat=37.6743392, lon=21.432776, speed_kmh=0.0, heading_deg=0.0
    )


@pytest.mark.parametrize(
    "hex_frame", [TRACCAR_CODEC12, TRACCAR_CODEC7, WIKI_CODEC16, WIKI_CODEC12_GETINFO]
)
def test_other_codecs_are_unsupported_and_the_stream_goes_on(hex_frame: str) -> None:
    conn = accepted()
    events = conn.feed(bytes.fromhex(hex_frame) + bytes.fromhex(WIKI_CODEC8_2))
    assert isinstance(events[0], BadPacket)
    assert events[0].reason_code == "unsupported_codec"
    assert events[0].raw == bytes.fromhex(hex_frame)
    assert isinstance(events[1], AvlPacket)


def test_traccar_codec13_vector_fails_its_crc() -> None:
    event = one_event(accepted(), bytes.fromhex(TRACCAR_CODEC13_BAD_CRC))
    assert isinstance(event, BadPacket)
    assert event.reason_code == "bad_crc"


def test_traccar_edited_vector_fails_its_crc() -> None:
    conn = accepted()
    events = conn.feed(bytes.fromhex(TRACCAR_CODEC8_EDITED) + bytes.fromhex(TRACCAR_CODEC8_SOUND))
    assert isinstance(events[0], BadPacket)
    assert events[0].reason_code == "bad_crc"
    assert isinstance(events[1], AvlPacket)
    (rec,) = events[1].records
    assert rec.io[1] == 0 and rec.io[2] == 0 and rec.io[3] == 0
    assert rec.io[78] == 0 and rec.io[207] == 0  # two 8-byte elements


def test_traccar_zero_length_vector_is_a_violation() -> None:
    conn = accepted()
    event = one_event(conn, bytes.fromhex(TRACCAR_ZERO_LENGTH))
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == "bad_length"
    assert conn.feed(bytes.fromhex(WIKI_CODEC8_2)) == []


# -- Bad packets and violations --------------------------------------------------------------


def test_a_flipped_byte_is_a_bad_crc_and_the_resend_is_accepted() -> None:
    frame = bytearray.fromhex(WIKI_CODEC8_1)
    frame[30] ^= 0x01
    conn = accepted()
    events = conn.feed(bytes(frame) + bytes.fromhex(WIKI_CODEC8_1))
    assert isinstance(events[0], BadPacket)
    assert (events[0].reason_code, events[0].raw) == ("bad_crc", bytes(frame))
    assert isinstance(events[1], AvlPacket)


def with_body(body: bytes) -> bytes:
    """A frame with a correct length and CRC around ``body``."""
    return b"\0" * 4 + len(body).to_bytes(4, "big") + body + crc16_ibm(body).to_bytes(4, "big")


def test_count_mismatch_is_malformed() -> None:
    body = bytearray(bytes.fromhex(WIKI_CODEC8_3)[8:-4])
    body[-1] = 3
    event = one_event(accepted(), with_body(bytes(body)))
    assert isinstance(event, BadPacket)
    assert event.reason_code == "malformed_record"
    assert "number of data 1 is 2, number of data 2 is 3" in event.detail


@pytest.mark.parametrize(
    "body",
    [
        bytes.fromhex(WIKI_CODEC8_2)[8:-5] + b"\xaa" + b"\x01",  # a byte after the record
        bytes.fromhex(WIKI_CODEC8_2)[8:-9] + b"\x01",  # the record cut short
        bytes.fromhex(WIKI_CODEC8_3)[8:-4].replace(b"\x08\x02", b"\x08\x01", 1)[:-1] + b"\x01",
        b"\x08\x00\x00",  # no records
        b"\x08\x01",  # no room for number of data 2
        b"\x08",
    ],
)
def test_records_that_do_not_fill_the_data_field_are_malformed(body: bytes) -> None:
    event = one_event(accepted(), with_body(body))
    assert isinstance(event, BadPacket)
    assert event.reason_code == "malformed_record"


def test_non_zero_preamble_is_a_violation_as_soon_as_it_shows() -> None:
    conn = accepted()
    event = one_event(conn, b"\x00\x00\x01")
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == "bad_preamble"
    assert conn.closed


def test_data_length_over_the_maximum_is_a_violation() -> None:
    frame = bytes.fromhex(WIKI_CODEC8_3)  # data field length 0x43 = 67
    conn = TeltonikaConnection(max_data_length=66)
    one_event(conn, encode_imei(IMEI))
    conn.accept_imei()
    event = one_event(conn, frame[:8])
    assert isinstance(event, ProtocolViolation)
    assert event.reason_code == "bad_length"


def test_violation_stops_the_events_of_the_same_chunk() -> None:
    conn = accepted()
    events = conn.feed(
        bytes.fromhex(WIKI_CODEC8_2) + b"\x01\x02\x03\x04" + bytes.fromhex(WIKI_CODEC8_2)
    )
    assert [type(e) for e in events] == [AvlPacket, ProtocolViolation]


# -- TCP chunking -------------------------------------------------------------------------


def test_packet_fed_byte_by_byte() -> None:
    conn = TeltonikaConnection()
    stream = bytes.fromhex(WIKI_IMEI_FRAME)
    events: list[TeltonikaEvent] = []
    for i in range(len(stream)):
        events += conn.feed(stream[i : i + 1])
    assert [type(e) for e in events] == [ImeiReceived]
    conn.accept_imei()
    frame = bytes.fromhex(TRACCAR_CODEC8E_NX)
    for i in range(len(frame)):
        events += conn.feed(frame[i : i + 1])
        assert len(events) == (1 if i < len(frame) - 1 else 2)
    assert events[1] == one_packet(TRACCAR_CODEC8E_NX)
    assert isinstance(events[1], AvlPacket)
    assert events[1].raw == frame


def test_concatenated_packets_in_one_chunk_keep_their_order() -> None:
    hexes = [WIKI_CODEC8_1, WIKI_CODEC8_2, WIKI_CODEC8_3, WIKI_CODEC8E, TRACCAR_CODEC8_3_RECORDS]
    events = accepted().feed(b"".join(bytes.fromhex(h) for h in hexes))
    assert [e.raw for e in events] == [bytes.fromhex(h) for h in hexes]
    assert [len(e.records) for e in events if isinstance(e, AvlPacket)] == [1, 1, 2, 1, 3]


def test_empty_chunk_yields_nothing() -> None:
    assert TeltonikaConnection().feed(b"") == []
    assert accepted().feed(b"") == []


# -- records_to_reports ---------------------------------------------------------------------


def packet_of(records: Sequence[AvlRecord], codec: int = CODEC_8E) -> AvlPacket:
    """The packet the tracker's encoding of ``records`` decodes to."""
    event = one_event(accepted(), encode_avl_packet(records, codec=codec))
    assert isinstance(event, AvlPacket)
    return event


def test_position_fields() -> None:
    (position,), refusals = records_to_reports(IMEI, packet_of([record()]))
    assert refusals == []
    assert position == Position(
        ts=1_795_640_645_000, lat=31.63096, lon=-8.01726, speed_kmh=17.0, heading_deg=92.0
    )
    assert position.accuracy_m is None


@pytest.mark.parametrize(
    ("io", "speed"),
    [
        ({240: 0, 239: 1}, 0.0),  # Movement off: GPS drift while parked
        ({240: 1, 239: 0}, 0.0),  # Ignition off
        ({239: 0}, 0.0),
        ({240: 0}, 0.0),
        ({240: 1, 239: 1}, 23.0),
        ({}, 23.0),  # neither element sent: the GPS speed stands
    ],
)
def test_movement_and_ignition_decide_a_stop(io: dict[int, int | bytes], speed: float) -> None:
    (position,), _ = records_to_reports(IMEI, packet_of([record(io=io, speed_kmh=23)]))
    assert position.speed_kmh == speed


def test_heading_is_taken_modulo_360() -> None:
    (position,), _ = records_to_reports(IMEI, packet_of([record(angle_deg=360)]))
    assert position.heading_deg == 0.0


def test_null_island_with_satellites_passes_through() -> None:
    (position,), refusals = records_to_reports(
        IMEI, packet_of([record(latitude_e7=0, longitude_e7=0)])
    )
    assert (position.lat, position.lon) == (0.0, 0.0)
    assert refusals == []


def test_no_fix_refusal_keeps_packet_order_and_index() -> None:
    records = [record(timestamp_ms=1000 + i, satellites=0 if i == 1 else 7) for i in range(3)]
    packet = packet_of(records, CODEC_8)
    positions, refusals = records_to_reports(IMEI, packet)
    assert [p.ts for p in positions] == [1000, 1002]
    (refusal,) = refusals
    assert (refusal.reason_code, refusal.element_index, refusal.identity) == ("no_fix", 1, IMEI)
    assert refusal.raw == encode_avl_record(records[1], CODEC_8)
    assert refusal.raw in packet.raw


def test_no_fix_refusal_of_a_record_built_in_code_has_its_encoding() -> None:
    rec = record(satellites=0)
    packet = AvlPacket(codec=CODEC_8E, records=(rec,), raw=b"")
    _, (refusal,) = records_to_reports(IMEI, packet)
    assert refusal.raw == encode_avl_record(rec, CODEC_8E)


# -- Encoders -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("records", "codec"),
    [
        ([record(io={256: b"VIN"})], CODEC_8),  # Codec 8 has no NX elements
        ([record(io={300: 1})], CODEC_8),  # nor ids over 255
        ([record(event_io_id=256)], CODEC_8),
        ([record(io={1: -1})], CODEC_8E),
        ([record(io={1: 1 << 64})], CODEC_8E),
        ([record(latitude_e7=1 << 31)], CODEC_8E),
        ([], CODEC_8E),
        ([record()] * 256, CODEC_8E),
        ([record()], 0x10),
    ],
)
def test_encoder_refuses_what_the_codec_cannot_carry(records: list[AvlRecord], codec: int) -> None:
    with pytest.raises(AvlFormatError):
        encode_avl_packet(records, codec=codec)


def test_encoder_refuses_a_width_the_value_does_not_fit() -> None:
    with pytest.raises(AvlFormatError):
        encode_avl_packet([record(io={66: 300})], io_widths={66: 1})
    with pytest.raises(AvlFormatError):
        encode_avl_packet([record(io={66: 3})], io_widths={66: 3})


@pytest.mark.parametrize("imei", ["35630704244101", "356307042441013000", "35630704244101X", ""])
def test_encode_imei_refuses_what_is_no_imei(imei: str) -> None:
    with pytest.raises(AvlFormatError):
        encode_imei(imei)


# -- Properties ---------------------------------------------------------------------------

chunkings = st.lists(st.integers(min_value=1, max_value=64), max_size=40)


def split(data: bytes, sizes: list[int]) -> list[bytes]:
    """``data`` cut into chunks of ``sizes`` (cycled), the rest in a last chunk."""
    chunks, pos = [], 0
    for size in sizes:
        chunks.append(data[pos : pos + size])
        pos += size
    chunks.append(data[pos:])
    return chunks


def kinds(events: list[TeltonikaEvent]) -> list[tuple[str, str]]:
    """Each event's type and reason (raw bytes of a violation depend on the chunking)."""
    return [(type(e).__name__, getattr(e, "reason_code", "")) for e in events]


@settings(max_examples=300)
@given(data=st.binary(max_size=400), sizes=chunkings, imei_first=st.booleans())
def test_any_bytes_in_any_chunks_yield_only_events(
    data: bytes, sizes: list[int], imei_first: bool
) -> None:
    conn = accepted() if imei_first else TeltonikaConnection()
    whole = accepted() if imei_first else TeltonikaConnection()
    events: list[TeltonikaEvent] = []
    for chunk in split(data, sizes):
        events += conn.feed(chunk)
    assert all(
        isinstance(e, ImeiReceived | AvlPacket | BadPacket | ProtocolViolation) for e in events
    )
    assert kinds(events) == kinds(whole.feed(data))
    assert all(isinstance(e, ProtocolViolation) for e in events[-1:]) or not conn.closed


@settings(max_examples=200)
@given(
    data=st.binary(max_size=300),
    sizes=chunkings,
)
def test_bytes_after_a_valid_packet_never_spoil_it(data: bytes, sizes: list[int]) -> None:
    conn = accepted()
    events: list[TeltonikaEvent] = []
    for chunk in split(bytes.fromhex(WIKI_CODEC8E) + data, sizes):
        events += conn.feed(chunk)
    assert isinstance(events[0], AvlPacket)
    assert events[0].raw == bytes.fromhex(WIKI_CODEC8E)


u8, u16 = st.integers(0, 0xFF), st.integers(0, 0xFFFF)
i32 = st.integers(-(1 << 31), (1 << 31) - 1)
io_value = st.one_of(u8, u16, st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 64) - 1))


@st.composite
def avl_records(draw: st.DrawFn, codec: int) -> AvlRecord:
    """Records ``codec`` can carry: one-byte ids and no NX values in Codec 8."""
    io_id = u8 if codec == CODEC_8 else u16
    value = io_value if codec == CODEC_8 else st.one_of(io_value, st.binary(max_size=40))
    return AvlRecord(
        timestamp_ms=draw(st.integers(0, (1 << 64) - 1)),
        priority=draw(u8),
        longitude_e7=draw(i32),
        latitude_e7=draw(i32),
        altitude_m=draw(st.integers(-(1 << 15), (1 << 15) - 1)),
        angle_deg=draw(u16),
        satellites=draw(u8),
        speed_kmh=draw(u16),
        event_io_id=draw(io_id),
        io=draw(st.dictionaries(io_id, value, max_size=12)),
    )


@st.composite
def codec_and_records(draw: st.DrawFn) -> tuple[int, list[AvlRecord]]:
    """A codec and 1 to 5 records it can carry."""
    codec = draw(st.sampled_from([CODEC_8, CODEC_8E]))
    return codec, draw(st.lists(avl_records(codec), min_size=1, max_size=5))


@settings(max_examples=200)
@given(case=codec_and_records(), sizes=chunkings)
def test_encode_then_decode_round_trips(
    case: tuple[int, list[AvlRecord]], sizes: list[int]
) -> None:
    codec, records = case
    frame = encode_avl_packet(records, codec=codec)
    conn = accepted()
    events: list[TeltonikaEvent] = []
    for chunk in split(frame, sizes):
        events += conn.feed(chunk)
    (packet,) = events
    assert isinstance(packet, AvlPacket)
    assert (packet.codec, list(packet.records), packet.raw) == (codec, records, frame)
    assert b"".join(r.raw for r in packet.records) == frame[10:-5]
    assert conn.ack(packet) == len(records).to_bytes(4, "big")


@settings(max_examples=200)
@given(case=codec_and_records())
def test_records_to_reports_on_generated_records(case: tuple[int, list[AvlRecord]]) -> None:
    codec, records = case
    packet = packet_of(records, codec)
    positions, refusals = records_to_reports(IMEI, packet)
    with_fix = [r for r in records if r.satellites]
    assert [p.ts for p in positions] == [r.timestamp_ms for r in with_fix]
    assert [f.element_index for f in refusals] == [
        i for i, r in enumerate(records) if not r.satellites
    ]
    assert all(f.reason_code == "no_fix" and f.raw for f in refusals)
    for position, rec in zip(positions, with_fix, strict=True):
        assert position.lat == rec.latitude_e7 / 1e7
        assert position.lon == rec.longitude_e7 / 1e7
        assert position.heading_deg is not None and 0 <= position.heading_deg < 360
        stopped = rec.io.get(240) == 0 or rec.io.get(239) == 0
        assert position.speed_kmh == (0.0 if stopped else rec.speed_kmh)
