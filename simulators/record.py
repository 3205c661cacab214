"""Recordings: gzip-compressed JSON lines with timing, written by ``run --record`` or captured
from the broker by ``record``, and read back by ``replay``.

Line 1 is a header ``{"format": "rasd-recording", "version": 1, "prefix": ..., "t0": ...}``;
every other line is one message ``{"t": seconds after t0, "topic": ..., "payload": text}``
(``payload_b64`` when the payload is not UTF-8), plus ``defect``/``rejects`` when the
simulator knows it injected one. ``t0`` is the UTC epoch second the timing counts from.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from simulators.errors import PublishError, RecordingError
from simulators.messages import Message
from telemetry.mqtt_client import KEEPALIVE_S, BrokerTlsError, Handlers, new_client
from telemetry.mqtt_session.errors import TlsConfigError
from telemetry.settings import Settings

FORMAT: Final = "rasd-recording"
VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class Recorded:
    """One recorded message."""

    t: float  # seconds after the header's t0
    topic: str
    payload: bytes
    defect: str | None = None
    rejects: int = 0


@dataclass(frozen=True)
class Header:
    """What a recording says about itself."""

    prefix: str
    t0: float
    source: str
    extra: dict[str, Any] = field(default_factory=dict)


def _line(record: Recorded) -> str:
    try:
        text = record.payload.decode("utf-8")
        body = f'"payload":{json.dumps(text, ensure_ascii=False)}'
    except UnicodeDecodeError:
        body = f'"payload_b64":"{base64.b64encode(record.payload).decode()}"'
    extra = ""
    if record.defect is not None:
        extra = f',"defect":{json.dumps(record.defect)},"rejects":{record.rejects}'
    return f'{{"t":{round(record.t, 3)},"topic":{json.dumps(record.topic)},{body}{extra}}}\n'


class RecordingWriter:
    """Writes a recording; gzip without a timestamp so the same input gives the same bytes."""

    def __init__(self, path: Path, header: Header) -> None:
        self.path = path
        self.t0 = header.t0
        self.count = 0
        try:
            self._raw: IO[bytes] = path.open("wb")
        except OSError as exc:
            raise RecordingError(f"cannot write {path}: {exc}") from None
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0)
        self._text = io.TextIOWrapper(self._gz, encoding="utf-8", newline="\n")
        head = {
            "format": FORMAT,
            "version": VERSION,
            "prefix": header.prefix,
            "t0": header.t0,
            "source": header.source,
            **header.extra,
        }
        self._text.write(json.dumps(head, ensure_ascii=False) + "\n")

    def write(self, record: Recorded) -> None:
        """Append one message."""
        self._text.write(_line(record))
        self.count += 1

    def write_message(self, message: Message) -> None:
        """Append a simulator message, timed by its send time."""
        self.write(
            Recorded(
                message.at - self.t0,
                message.topic,
                message.payload,
                message.defect,
                message.rejects,
            )
        )

    def close(self) -> None:
        """Finish the gzip stream and the file."""
        self._text.close()
        self._raw.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _header(path: Path) -> Header:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            first = handle.readline()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise RecordingError(f"cannot read {path}: {exc}") from None
    try:
        head = json.loads(first)
    except ValueError:
        head = None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise RecordingError(f"{path} is not a Rasd recording (no {FORMAT} header)")
    if head.get("version") != VERSION:
        raise RecordingError(f"{path}: recording version {head.get('version')} is not {VERSION}")
    known = {"format", "version", "prefix", "t0", "source"}
    return Header(
        str(head["prefix"]),
        float(head["t0"]),
        str(head.get("source", "?")),
        {k: v for k, v in head.items() if k not in known},
    )


def _records(path: Path) -> Iterator[Recorded]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        handle.readline()
        for number, text in enumerate(handle, start=2):
            try:
                row = json.loads(text)
                payload = (
                    row["payload"].encode("utf-8")
                    if "payload" in row
                    else base64.b64decode(row["payload_b64"])
                )
                yield Recorded(
                    float(row["t"]),
                    str(row["topic"]),
                    payload,
                    row.get("defect"),
                    int(row.get("rejects", 0)),
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise RecordingError(f"{path} line {number}: {exc}") from None


def read_recording(path: Path) -> tuple[Header, Iterator[Recorded]]:
    """The header and a lazy iterator over the messages of a recording."""
    return _header(path), _records(path)


class BrokerRecorder:
    """Captures what the broker delivers on a topic filter into a recording (QoS 1)."""

    def __init__(
        self,
        settings: Settings,
        topic_filter: str,
        writer: RecordingWriter,
        started_monotonic: float,
    ) -> None:
        self.writer = writer
        self.topic_filter = topic_filter
        self._started = started_monotonic
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        handlers = Handlers(
            connected=self._on_connect, subscribed=self._on_subscribe, message=self._on_message
        )
        try:
            self.client = new_client(
                settings, f"rasd-sim-record-{int(time.time() * 1000)}", handlers
            )
        except TlsConfigError as exc:
            raise PublishError(str(exc)) from None
        self._host, self._port = settings.mqtt_host, settings.mqtt_port

    def _on_connect(self, reason_code: ReasonCode, session_present: bool) -> None:
        if not reason_code.is_failure:
            self.client.subscribe(self.topic_filter, options=SubscribeOptions(qos=1))

    def _on_subscribe(self, mid: int, reason_codes: list[ReasonCode]) -> None:
        self._subscribed.set()

    def _on_message(self, message: mqtt.MQTTMessage) -> None:
        t = time.monotonic() - self._started
        with self._lock:
            self.writer.write(Recorded(t, message.topic, bytes(message.payload)))

    def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; raises ``PublishError`` when the broker does not answer."""
        try:
            self.client.connect(self._host, self._port, keepalive=KEEPALIVE_S)
        except BrokerTlsError as exc:
            raise PublishError(str(exc)) from None  # names the broker and the CA file
        except OSError as exc:
            raise PublishError(f"broker {self._host}:{self._port} unreachable: {exc}") from None
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise PublishError(f"could not subscribe to {self.topic_filter!r}")

    @property
    def count(self) -> int:
        """Messages captured so far."""
        with self._lock:
            return self.writer.count

    def stop(self) -> None:
        """Disconnect; the caller closes the writer."""
        self.client.disconnect()
        self.client.loop_stop()
