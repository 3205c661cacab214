"""Teltonika AVL data: the records inside a Codec 8 / Codec 8 Extended packet, their CRC, and
encoders (Teltonika wiki, "Teltonika Data Sending Protocols", sections Codec 8 and Codec 8
Extended)."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

CODEC_8 = 0x08
CODEC_8E = 0x8E
AVL_CODECS = frozenset({CODEC_8, CODEC_8E})

# Timestamp, priority, longitude, latitude, altitude, angle, satellites, speed.
_GPS = struct.Struct(">QBiihHBH")
_FIXED_WIDTHS = (1, 2, 4, 8)
_MAX_RECORDS = 255  # "Number of Data" is one byte


class AvlFormatError(ValueError):
    """AVL data that does not parse, or a record that cannot be encoded in a codec."""


@dataclass(kw_only=True, frozen=True, slots=True)
class AvlRecord:
    """One AVL record as the tracker sent it: raw integers, no units applied.

    ``io`` maps an AVL ID to its value: an unsigned int for 1/2/4/8-byte elements (the AVL ID
    list says which are signed or scaled), bytes for variable-length (NX, Codec 8E) elements.
    ``raw`` holds the record's bytes as received (empty for records built in code); it takes no
    part in equality.
    """

    timestamp_ms: int
    priority: int
    longitude_e7: int
    latitude_e7: int
    altitude_m: int
    angle_deg: int
    satellites: int
    speed_kmh: int
    event_io_id: int
    io: Mapping[int, int | bytes]
    raw: bytes = field(default=b"", compare=False, repr=False)


def crc16_ibm(data: bytes) -> int:
    """CRC-16/IBM (a.k.a. CRC-16/ARC): reflected polynomial 0xA001, initial value 0."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


class _Reader:
    """Big-endian reads over a bytes body that raise ``AvlFormatError`` when it runs out."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise AvlFormatError(f"record data ends at byte {len(self.data)}, needs {end}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")


def decode_avl_records(codec: int, count: int, data: bytes) -> tuple[AvlRecord, ...]:
    """Exactly ``count`` records of ``codec`` filling ``data``; ``AvlFormatError`` otherwise."""
    if codec not in AVL_CODECS:
        raise AvlFormatError(f"codec 0x{codec:02X} carries no AVL records")
    reader = _Reader(data)
    records = []
    for index in range(count):
        try:
            records.append(_decode_record(codec, reader))
        except AvlFormatError as exc:
            raise AvlFormatError(f"record {index}: {exc}") from None
    if reader.pos != len(data):
        raise AvlFormatError(f"{len(data) - reader.pos} bytes after the {count} records")
    return tuple(records)


def _decode_record(codec: int, reader: _Reader) -> AvlRecord:
    start = reader.pos
    ts, priority, lon, lat, alt, angle, sats, speed = _GPS.unpack(reader.take(_GPS.size))
    # Codec 8E widens IO ids and every count from one byte to two.
    small = 1 if codec == CODEC_8 else 2
    event_io_id = reader.uint(small)
    reader.uint(small)  # total IO count: redundant with the group counts, not trusted
    # An id sent twice keeps its last value; the record's raw bytes still hold both.
    io: dict[int, int | bytes] = {}
    for width in _FIXED_WIDTHS:
        for _ in range(reader.uint(small)):
            io_id = reader.uint(small)
            io[io_id] = reader.uint(width)
    if codec == CODEC_8E:
        for _ in range(reader.uint(2)):
            io_id = reader.uint(2)
            io[io_id] = reader.take(reader.uint(2))
    return AvlRecord(
        timestamp_ms=ts,
        priority=priority,
        longitude_e7=lon,
        latitude_e7=lat,
        altitude_m=alt,
        angle_deg=angle,
        satellites=sats,
        speed_kmh=speed,
        event_io_id=event_io_id,
        io=io,
        raw=reader.data[start : reader.pos],
    )


def encode_avl_record(
    record: AvlRecord, codec: int, *, io_widths: Mapping[int, int] | None = None
) -> bytes:
    """The record's bytes in ``codec``. An int IO value goes in the 1/2/4/8-byte group that
    ``io_widths`` names for its AVL ID (as a device's AVL ID list fixes it), else in the
    narrowest group it fits.

    Raises ``AvlFormatError`` when a field does not fit the codec (NX values or ids over 255
    in Codec 8, out-of-range integers, a width that is not 1, 2, 4 or 8).
    """
    if codec not in AVL_CODECS:
        raise AvlFormatError(f"codec 0x{codec:02X} carries no AVL records")
    small = 1 if codec == CODEC_8 else 2
    try:
        gps = _GPS.pack(
            record.timestamp_ms,
            record.priority,
            record.longitude_e7,
            record.latitude_e7,
            record.altitude_m,
            record.angle_deg,
            record.satellites,
            record.speed_kmh,
        )
    except struct.error as exc:
        raise AvlFormatError(f"GPS element out of range: {exc}") from None
    groups: dict[int, list[tuple[int, int]]] = {width: [] for width in _FIXED_WIDTHS}
    variable: list[tuple[int, bytes]] = []
    for io_id, value in record.io.items():
        if isinstance(value, bytes):
            if codec == CODEC_8:
                raise AvlFormatError(f"IO {io_id}: Codec 8 has no variable-length elements")
            variable.append((io_id, value))
        else:
            width = _width(io_id, value, None if io_widths is None else io_widths.get(io_id))
            groups[width].append((io_id, value))
    parts = [gps, _uint(record.event_io_id, small, "event IO id"), _uint(len(record.io), small)]
    for width in _FIXED_WIDTHS:
        parts.append(_uint(len(groups[width]), small, f"{width}-byte IO count"))
        for io_id, value in groups[width]:
            parts += (_uint(io_id, small, "IO id"), value.to_bytes(width, "big"))
    if codec == CODEC_8E:
        parts.append(_uint(len(variable), 2, "NX IO count"))
        for io_id, blob in variable:
            parts += (_uint(io_id, 2, "IO id"), _uint(len(blob), 2, "NX length"), blob)
    return b"".join(parts)


def _width(io_id: int, value: int, wanted: int | None) -> int:
    if value < 0:
        raise AvlFormatError(f"IO {io_id}: value {value} is negative (values are unsigned)")
    if wanted is not None and wanted not in _FIXED_WIDTHS:
        raise AvlFormatError(f"IO {io_id}: width {wanted} is not 1, 2, 4 or 8 bytes")
    for width in (wanted,) if wanted else _FIXED_WIDTHS:
        if value < 1 << (8 * width):
            return width
    raise AvlFormatError(f"IO {io_id}: value {value} does not fit {wanted or 8} byte(s)")


def _uint(value: int, size: int, what: str = "IO count") -> bytes:
    if not 0 <= value < 1 << (8 * size):
        raise AvlFormatError(f"{what} {value} does not fit {size} byte(s)")
    return value.to_bytes(size, "big")


def encode_avl_packet(
    records: Sequence[AvlRecord],
    *,
    codec: int = CODEC_8E,
    io_widths: Mapping[int, int] | None = None,
) -> bytes:
    """A whole TCP AVL data packet (preamble, length, data, CRC) holding ``records``;
    ``io_widths`` as for ``encode_avl_record``."""
    if codec not in AVL_CODECS:
        raise AvlFormatError(f"codec 0x{codec:02X} carries no AVL records")
    if not 1 <= len(records) <= _MAX_RECORDS:
        raise AvlFormatError(f"a packet holds 1 to {_MAX_RECORDS} records, not {len(records)}")
    count = len(records).to_bytes(1, "big")
    body = b"".join(
        [
            codec.to_bytes(1, "big"),
            count,
            *(encode_avl_record(r, codec, io_widths=io_widths) for r in records),
            count,
        ]
    )
    return b"\0\0\0\0" + len(body).to_bytes(4, "big") + body + crc16_ibm(body).to_bytes(4, "big")


def encode_imei(imei: str) -> bytes:
    """The tracker's first frame: the IMEI's length (2 bytes) and its ASCII digits."""
    if not (15 <= len(imei) <= 17 and imei.isascii() and imei.isdigit()):
        raise AvlFormatError(f"an IMEI is 15 to 17 ASCII digits, not {imei!r}")
    return len(imei).to_bytes(2, "big") + imei.encode("ascii")
