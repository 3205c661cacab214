"""Byte-level MQTT framing helpers around the ``mqtt5`` codec (pure, no I/O).

The codec raises ``IndexError`` when a buffer holds too few bytes, but it raises the same error
for a complete frame whose inner lengths overrun it, and a ``pyo3`` ``PanicException`` (a
``BaseException``) for a PUBLISH topic that is not UTF-8. :func:`read_packets` tells a short
buffer from a malformed frame by reading the fixed header itself.
"""

from __future__ import annotations

from typing import Final

import mqtt5

from telemetry.mqtt_session.errors import ProtocolViolation

PUBACK_HEADER: Final = b"\x40\x02"  # PUBACK, remaining length 2: id only, reason 0 implied
PINGREQ: Final = mqtt5.PingReqPacket().write()
DUP_FLAG: Final = 0x08
MALFORMED: Final = 0x81
TOO_LARGE: Final = 0x95
_MAX_LENGTH_BYTES: Final = 4  # variable byte integer: at most 4 bytes (MQTT 5, 1.5.5)


def frame_length(buffer: bytes | bytearray | memoryview, offset: int) -> int | None:
    """Total length of the frame starting at ``offset``, or None while its header is incomplete.

    Raises ProtocolViolation when the remaining-length field is longer than 4 bytes.
    """
    end = len(buffer)
    value = 0
    shift = 0
    index = offset + 1
    for _ in range(_MAX_LENGTH_BYTES):
        if index >= end:
            return None
        byte = buffer[index]
        index += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return index - offset + value
        shift += 7
    raise ProtocolViolation("malformed remaining length (over 4 bytes)", reason_code=MALFORMED)


def read_packets(
    buffer: bytes | bytearray, max_packet_size: int | None = None
) -> tuple[list[mqtt5.Packet], int, ProtocolViolation | None]:
    """Every complete packet in ``buffer``, the bytes they took, and the violation that stopped it.

    Bytes after the last complete packet are a partial packet, left for the next call; after a
    violation the rest of the buffer is meaningless and the connection must be dropped.
    """
    packets: list[mqtt5.Packet] = []
    offset = 0
    size = len(buffer)
    read = mqtt5.read
    with memoryview(buffer) as view:
        while offset < size:
            try:
                packet, used = read(view[offset:])
            except IndexError:
                try:
                    length = frame_length(view, offset)
                except ProtocolViolation as violation:
                    return packets, offset, violation
                if length is not None and max_packet_size and length > max_packet_size:
                    return (
                        packets,
                        offset,
                        ProtocolViolation(
                            f"packet of {length} bytes too large", reason_code=TOO_LARGE
                        ),
                    )
                if length is None or size - offset < length:
                    break  # a partial packet: wait for more bytes
                return (
                    packets,
                    offset,
                    ProtocolViolation("malformed packet (inner length)", reason_code=MALFORMED),
                )
            except Exception as exc:  # the codec's ValueError, UnicodeDecodeError, ...
                return (
                    packets,
                    offset,
                    ProtocolViolation(f"malformed packet: {exc}", reason_code=MALFORMED),
                )
            except BaseException as exc:
                # pyo3's PanicException derives from BaseException; it is a decoding failure.
                if type(exc).__name__ != "PanicException":
                    raise
                return (
                    packets,
                    offset,
                    ProtocolViolation(f"malformed packet: {exc}", reason_code=MALFORMED),
                )
            packets.append(packet)
            offset += used
    return packets, offset, None


def encode_puback(packet_id: int) -> bytes:
    """PUBACK with reason Success, in the short form MQTT 5 allows (3.4.2.1): 4 bytes."""
    return PUBACK_HEADER + packet_id.to_bytes(2, "big")


def publish_template(
    topic: str, payload: bytes, *, qos: int, retain: bool
) -> tuple[bytes, int | None]:
    """A PUBLISH encoded once, and the offset of its packet id (None for QoS 0).

    Raises ValueError for a topic the protocol forbids (wildcards, empty, NUL).
    """
    if not topic or "\x00" in topic:
        raise ValueError(f"invalid topic name {topic!r}")
    if qos not in (0, 1):
        raise ValueError(f"qos must be 0 or 1, not {qos!r}")
    if qos == 0:
        packet = mqtt5.PublishPacket(topic, payload, qos=mqtt5.QoS.AT_MOST_ONCE, retain=retain)
        return packet.write(), None
    packet = mqtt5.PublishPacket(
        topic, payload, qos=mqtt5.QoS.AT_LEAST_ONCE, retain=retain, packet_id=1
    )
    encoded = packet.write()
    index = 1
    while encoded[index] & 0x80:
        index += 1
    index += 1  # past the fixed header; the variable header starts with the topic
    topic_length = int.from_bytes(encoded[index : index + 2], "big")
    return encoded, index + 2 + topic_length


def stamp_publish(template: bytes, id_offset: int, packet_id: int, *, dup: bool) -> bytes:
    """The template with its packet id replaced and, for a retransmission, DUP set."""
    stamped = bytearray(template)
    stamped[id_offset : id_offset + 2] = packet_id.to_bytes(2, "big")
    if dup:
        stamped[0] |= DUP_FLAG
    return bytes(stamped)
