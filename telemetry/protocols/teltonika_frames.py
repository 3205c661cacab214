"""Teltonika TCP framing, sans-I/O: one ``TeltonikaConnection`` per tracker connection turns
the bytes as they arrive into typed events and builds the server's replies.

The conversation (Teltonika wiki, "Teltonika Data Sending Protocols", communication with
server): the tracker sends its IMEI frame, the server answers 0x01 (accept) or 0x00 (reject);
then the tracker sends AVL data packets and the server answers each with the number of records
it accepted (4 bytes, big-endian). A packet not acknowledged with its record count is sent
again, so a ``BadPacket`` is left unacknowledged and the connection goes on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from telemetry.protocols.teltonika_avl import (
    AVL_CODECS,
    AvlFormatError,
    AvlRecord,
    crc16_ibm,
    decode_avl_records,
)

# Teltonika documents at most 1,280 bytes per packet (512 on FMB640); Codec 8E variable-length
# elements can be larger, so the default leaves room without letting a peer make us buffer more.
DEFAULT_MAX_DATA_LENGTH = 65_536

_HEADER = 8  # preamble (4 zero bytes) and data field length (4)
_CRC = 4
_IMEI_LENGTHS = range(15, 18)


@dataclass(kw_only=True, frozen=True, slots=True)
class ImeiReceived:
    """The tracker's first frame: its IMEI. Answer with ``accept_imei`` or ``reject_imei``."""

    imei: str
    raw: bytes


@dataclass(kw_only=True, frozen=True, slots=True)
class AvlPacket:
    """A well-formed AVL data packet; ``raw`` is the whole frame as received."""

    codec: int
    records: tuple[AvlRecord, ...]
    raw: bytes


@dataclass(kw_only=True, frozen=True, slots=True)
class BadPacket:
    """A frame whose length framing holds but whose content is wrong; the stream goes on.

    ``reason_code``: ``bad_crc``, ``unsupported_codec`` (codec 12/13/14 command frames, codec
    16, ...) or ``malformed_record`` (records that do not parse, number of data 1 != number of
    data 2, no records, bytes left over).
    """

    reason_code: str
    detail: str
    raw: bytes


@dataclass(kw_only=True, frozen=True, slots=True)
class ProtocolViolation:
    """Input after which the framing is lost: close the connection; ``feed`` yields no more.

    ``reason_code``: ``bad_imei`` (a length outside 15-17 or non-digits), ``data_before_imei``
    (an AVL preamble where the IMEI was due), ``data_before_accept`` (bytes before the server
    answered the IMEI), ``data_after_reject``, ``bad_preamble`` (non-zero bytes where the 4 zero
    bytes are due) or ``bad_length`` (data field length 0 or over the maximum).
    """

    reason_code: str
    detail: str
    raw: bytes


TeltonikaEvent = ImeiReceived | AvlPacket | BadPacket | ProtocolViolation


class _State(enum.Enum):
    AWAIT_IMEI = enum.auto()
    AWAIT_VERDICT = enum.auto()  # IMEI received, the server has not answered yet
    ACCEPTED = enum.auto()
    REJECTED = enum.auto()
    CLOSED = enum.auto()  # after a ProtocolViolation


class TeltonikaConnection:
    """The server side of one tracker connection: ``feed`` it bytes, send back its replies."""

    def __init__(self, *, max_data_length: int = DEFAULT_MAX_DATA_LENGTH) -> None:
        self.max_data_length = max_data_length
        self._buffer = bytearray()
        self._state = _State.AWAIT_IMEI

    @property
    def closed(self) -> bool:
        """True once a ``ProtocolViolation`` was yielded: the caller should close the socket."""
        return self._state is _State.CLOSED

    def feed(self, data: bytes) -> list[TeltonikaEvent]:
        """Events completed by ``data`` (any chunk of the stream); never raises on input."""
        if self._state is _State.CLOSED or not data:
            return []
        self._buffer += data
        events: list[TeltonikaEvent] = []
        while self._buffer and not self.closed:
            event = self._next_event()
            if event is None:
                break
            events.append(event)
        return events

    def accept_imei(self) -> bytes:
        """The reply accepting the IMEI just received; AVL packets may follow."""
        self._verdict(_State.ACCEPTED)
        return b"\x01"

    def reject_imei(self) -> bytes:
        """The reply rejecting the IMEI just received; any further input is a violation."""
        self._verdict(_State.REJECTED)
        return b"\x00"

    def ack(self, packet: AvlPacket) -> bytes:
        """The reply acknowledging every record of ``packet``."""
        return len(packet.records).to_bytes(4, "big")

    def _verdict(self, state: _State) -> None:
        if self._state is not _State.AWAIT_VERDICT:
            raise RuntimeError(f"no IMEI awaits an answer (state {self._state.name})")
        self._state = state

    def _next_event(self) -> TeltonikaEvent | None:
        match self._state:
            case _State.AWAIT_IMEI:
                return self._imei_frame()
            case _State.AWAIT_VERDICT:
                return self._violation(
                    "data_before_accept", "bytes arrived before the server answered the IMEI"
                )
            case _State.REJECTED:
                return self._violation(
                    "data_after_reject", "bytes arrived after the IMEI was rejected"
                )
            case _:
                return self._avl_frame()

    def _violation(self, reason_code: str, detail: str) -> ProtocolViolation:
        raw = bytes(self._buffer)
        self._buffer.clear()
        self._state = _State.CLOSED
        return ProtocolViolation(reason_code=reason_code, detail=detail, raw=raw)

    def _take(self, size: int) -> bytes:
        frame = bytes(self._buffer[:size])
        del self._buffer[:size]
        return frame

    def _imei_frame(self) -> TeltonikaEvent | None:
        if len(self._buffer) < 2:
            return None
        length = int.from_bytes(self._buffer[:2], "big")
        if length == 0:
            return self._violation("data_before_imei", "IMEI length 0: AVL data before the IMEI")
        if length not in _IMEI_LENGTHS:
            return self._violation("bad_imei", f"IMEI length {length}, not 15 to 17")
        if len(self._buffer) < 2 + length:
            return None
        digits = bytes(self._buffer[2 : 2 + length])
        if not (digits.isascii() and digits.isdigit()):
            return self._violation("bad_imei", f"IMEI {digits!r} is not ASCII digits")
        raw = self._take(2 + length)
        self._state = _State.AWAIT_VERDICT
        return ImeiReceived(imei=digits.decode("ascii"), raw=raw)

    def _avl_frame(self) -> TeltonikaEvent | None:
        if any(self._buffer[:4]):
            return self._violation(
                "bad_preamble", f"packet starts {self._buffer[:4].hex()}, not 4 zero bytes"
            )
        if len(self._buffer) < _HEADER:
            return None
        length = int.from_bytes(self._buffer[4:_HEADER], "big")
        if not 0 < length <= self.max_data_length:
            return self._violation(
                "bad_length", f"data field length {length}, not 1 to {self.max_data_length}"
            )
        if len(self._buffer) < _HEADER + length + _CRC:
            return None
        raw = self._take(_HEADER + length + _CRC)
        return _packet(raw, raw[_HEADER : _HEADER + length])


def _packet(raw: bytes, body: bytes) -> AvlPacket | BadPacket:
    """The frame ``raw`` judged by its data field ``body`` (codec id .. number of data 2)."""
    # The CRC field is 4 bytes whose first 2 are documented as zero; only the low 2 are
    # checked, so a firmware filling the spare bytes does not get every packet refused.
    sent_crc = int.from_bytes(raw[-2:], "big")
    crc = crc16_ibm(body)
    if sent_crc != crc:
        return BadPacket(
            reason_code="bad_crc", detail=f"CRC 0x{sent_crc:04X}, computed 0x{crc:04X}", raw=raw
        )
    codec = body[0]
    if codec not in AVL_CODECS:
        return BadPacket(
            reason_code="unsupported_codec",
            detail=f"codec 0x{codec:02X} (only Codec 8 and 8E AVL data are decoded)",
            raw=raw,
        )
    if len(body) < 3:
        return _malformed(f"data field of {len(body)} bytes has no room for the record counts", raw)
    count, count_2 = body[1], body[-1]
    if count != count_2:
        return _malformed(f"number of data 1 is {count}, number of data 2 is {count_2}", raw)
    if count == 0:
        return _malformed("number of data is 0", raw)
    try:
        records = decode_avl_records(codec, count, body[2:-1])
    except AvlFormatError as exc:
        return _malformed(str(exc), raw)
    return AvlPacket(codec=codec, records=records, raw=raw)


def _malformed(detail: str, raw: bytes) -> BadPacket:
    return BadPacket(reason_code="malformed_record", detail=detail, raw=raw)
