"""Teltonika FMB/FMC trackers (Codec 8 and Codec 8 Extended over TCP), pure: framing and
records in ``teltonika_frames`` / ``teltonika_avl``, their translation to contract v1 here."""

from __future__ import annotations

from telemetry.protocols.reports import Position, Refusal
from telemetry.protocols.teltonika_avl import (
    AVL_CODECS,
    CODEC_8,
    CODEC_8E,
    AvlFormatError,
    AvlRecord,
    crc16_ibm,
    encode_avl_packet,
    encode_avl_record,
    encode_imei,
)
from telemetry.protocols.teltonika_frames import (
    DEFAULT_MAX_DATA_LENGTH,
    AvlPacket,
    BadPacket,
    ImeiReceived,
    ProtocolViolation,
    TeltonikaConnection,
    TeltonikaEvent,
)

__all__ = [
    "AVL_CODECS",
    "CODEC_8",
    "CODEC_8E",
    "DEFAULT_MAX_DATA_LENGTH",
    "IO_IGNITION",
    "IO_MOVEMENT",
    "AvlFormatError",
    "AvlPacket",
    "AvlRecord",
    "BadPacket",
    "ImeiReceived",
    "ProtocolViolation",
    "TeltonikaConnection",
    "TeltonikaEvent",
    "crc16_ibm",
    "encode_avl_packet",
    "encode_avl_record",
    "encode_imei",
    "record_to_position",
    "records_to_reports",
]

# AVL IDs from Teltonika's "FMB AVL ID" list (wiki, FMB130 "Teltonika AVL ID List" page):
# 239 Ignition (0 off, 1 on), 240 Movement (0 not moving, 1 moving).
IO_IGNITION = 239
IO_MOVEMENT = 240


def records_to_reports(imei: str, packet: AvlPacket) -> tuple[list[Position], list[Refusal]]:
    """Contract v1 positions of ``packet``'s records in packet order, and a ``no_fix`` refusal
    (with the record's bytes and its index in the packet) for each record without satellites."""
    positions: list[Position] = []
    refusals: list[Refusal] = []
    for index, record in enumerate(packet.records):
        position = record_to_position(record)
        if position is not None:
            positions.append(position)
            continue
        refusals.append(
            Refusal(
                reason_code="no_fix",
                detail=f"record {index} has no GPS fix (0 satellites)",
                raw=record.raw or encode_avl_record(record, packet.codec),
                identity=imei,
                element_index=index,
            )
        )
    return positions, refusals


def record_to_position(record: AvlRecord) -> Position | None:
    """The record as a contract v1 position, or None when it has no fix (0 satellites).

    A (0, 0) fix with satellites passes: the contract's ``null_island`` rule refuses it. No
    ``accuracy_m``: the only hint, HDOP (AVL ID 182), needs an assumed receiver error to
    become metres, and a made-up figure is worse than none.
    """
    if record.satellites == 0:
        return None
    # A parked vehicle's GPS drifts by a few km/h; the tracker's own movement sensor and
    # ignition line know better.
    stopped = record.io.get(IO_MOVEMENT) == 0 or record.io.get(IO_IGNITION) == 0
    return Position(
        ts=record.timestamp_ms,
        lat=record.latitude_e7 / 1e7,
        lon=record.longitude_e7 / 1e7,
        speed_kmh=0.0 if stopped else float(record.speed_kmh),
        heading_deg=float(record.angle_deg % 360),
    )
