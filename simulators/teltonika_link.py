"""Simulated trackers speaking Teltonika Codec 8 Extended to the gateway over TCP, as FMB
devices do: IMEI handshake, then each packet resent until the gateway acknowledges its count."""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field

from simulators.errors import PublishError
from telemetry.contract import parse_ts
from telemetry.protocols.teltonika import IO_IGNITION, IO_MOVEMENT, AvlRecord, encode_avl_packet
from telemetry.protocols.teltonika import encode_imei as teltonika_imei_frame

#: A fix's satellites when the simulated GPS has one; (0, 0) cold-start fixes send none.
_SATELLITES_WITH_FIX = 9
_ATTEMPTS = 5


def position_records(payload: bytes) -> list[AvlRecord]:
    """AVL records for a contract v1 position payload (one object or an array of them)."""
    value = json.loads(payload)
    items = value if isinstance(value, list) else [value]
    records = []
    for item in items:
        ts = parse_ts(item["ts"])
        lat, lon = float(item["lat"]), float(item["lon"])
        speed = float(item.get("speed_kmh") or 0.0)
        moving = speed > 0.5
        records.append(
            AvlRecord(
                timestamp_ms=round(ts.timestamp() * 1000),
                priority=0,
                longitude_e7=round(lon * 1e7),
                latitude_e7=round(lat * 1e7),
                altitude_m=460,  # Marrakech's plain
                angle_deg=round(float(item.get("heading_deg") or 0.0)) % 360,
                satellites=0 if (lat, lon) == (0.0, 0.0) else _SATELLITES_WITH_FIX,
                speed_kmh=round(speed),
                event_io_id=0,
                io={IO_IGNITION: 1, IO_MOVEMENT: int(moving)},
            )
        )
    return records


@dataclass(kw_only=True)
class TeltonikaLink:
    """One tracker's TCP connection to the gateway; reconnects and resends like a device."""

    host: str
    port: int
    imei: str
    timeout_s: float = 30.0
    _sock: socket.socket | None = field(default=None, repr=False)

    def send(self, records: list[AvlRecord]) -> None:
        """Send one packet and wait for its acknowledgement, resending after a failure."""
        packet = encode_avl_packet(records)
        for attempt in range(_ATTEMPTS):
            try:
                sock = self._connected()
                sock.sendall(packet)
                ack = _read_exactly(sock, 4)
                if int.from_bytes(ack, "big") == len(records):
                    return
                self.close()  # a wrong count: the device sends the packet again
            except OSError:
                self.close()
            time.sleep(min(2.0, 0.2 * 2**attempt))
        raise PublishError(
            f"gateway {self.host}:{self.port} did not acknowledge tracker {self.imei}'s packet"
        )

    def _connected(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        try:
            sock.sendall(teltonika_imei_frame(self.imei))
            if _read_exactly(sock, 1) != b"\x01":
                raise PublishError(f"gateway refused tracker IMEI {self.imei} (not registered?)")
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        return sock

    def close(self) -> None:
        """Close the connection (the next send opens a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("gateway closed the connection")
        data += chunk
    return data
