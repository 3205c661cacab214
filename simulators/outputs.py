"""Where ``run`` and ``replay`` send messages: stdout as JSON lines, a recording, or MQTT."""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Protocol

from simulators.messages import Message
from simulators.publish import MqttPublisher
from simulators.record import RecordingWriter


class Sink(Protocol):
    """Takes messages in send order."""

    def send(self, message: Message) -> None:
        """Emit one message."""

    def finish(self) -> None:
        """Flush and wait for whatever must complete before exit."""

    def idle(self, seconds: float) -> None:
        """Wait for the next message's time, doing any upkeep meanwhile."""


def stdout_line(topic: str, payload: bytes, defect: str | None, *, trusted_json: bool) -> str:
    """``{"topic": ..., "payload": ...}``: the payload embedded as JSON when it is JSON.

    ``json.dumps(line["payload"], separators=(",", ":"))`` gives back the published bytes
    for simulator output; a payload that is not JSON is embedded as a string.
    """
    text = payload.decode("utf-8", "replace")
    if not trusted_json:
        try:
            json.loads(text)
        except ValueError:
            text = json.dumps(text, ensure_ascii=False)
    tail = "" if defect is None else f',"defect":"{defect}"'
    return f'{{"topic":"{topic}","payload":{text}{tail}}}\n'


class StdoutSink:
    """One JSON object per line; buffered, so it keeps up with ``--fast``."""

    def __init__(self, stream: IO[str] | None = None, *, trusted_json: bool = True) -> None:
        self._stream = stream or sys.stdout
        self._trusted = trusted_json
        self._buffer: list[str] = []
        self.count = 0

    def send(self, message: Message) -> None:
        """Write one line (in batches of 1000)."""
        self._buffer.append(
            stdout_line(message.topic, message.payload, message.defect, trusted_json=self._trusted)
        )
        self.count += 1
        if len(self._buffer) >= 1000:
            self._write()

    def _write(self) -> None:
        self._stream.write("".join(self._buffer))
        self._buffer.clear()

    def finish(self) -> None:
        """Write what is buffered and flush."""
        self._write()
        self._stream.flush()

    def idle(self, seconds: float) -> None:
        """Show what is buffered before waiting, so real-time output is timely."""
        if self._buffer:
            self.finish()
        time.sleep(seconds)


class RecordSink:
    """Writes messages into a recording, timed by their simulated send time."""

    def __init__(self, writer: RecordingWriter) -> None:
        self.writer = writer
        self.count = 0

    def send(self, message: Message) -> None:
        """Append one message."""
        self.writer.write_message(message)
        self.count += 1

    def finish(self) -> None:
        """Close the file."""
        self.writer.close()

    def idle(self, seconds: float) -> None:
        """Nothing to do meanwhile."""
        time.sleep(seconds)


class MqttSink:
    """Publishes at QoS 1 and, at the end, waits for every PUBACK."""

    def __init__(self, publisher: MqttPublisher) -> None:
        self.publisher = publisher
        self.count = 0

    def send(self, message: Message) -> None:
        """Publish one message."""
        self.publisher.publish(message.device_id, message.topic, message.payload)
        self.count += 1

    def finish(self) -> None:
        """Wait for the acknowledgements."""
        self.publisher.flush()

    def idle(self, seconds: float) -> None:
        """Keep the connections serviced (acks, keepalive) while waiting."""
        self.publisher.idle(seconds)
