"""Pure decoding of one MQTT message into storable rows and dead letters (no I/O)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import msgspec
from pydantic import ValidationError

from telemetry.contract import (
    REPORT_MODEL,
    EnergyReport,
    FaultReport,
    PositionReport,
    parse_ts,
)
from telemetry.contract_wire import (
    ARRAY_DECODER,
    OBJECT_DECODER,
    EnergyWire,
    PositionWire,
    WireReport,
)
from telemetry.errors import Rejection
from telemetry.topics import Fleet, Topic, parse_topic

if TYPE_CHECKING:
    from telemetry.settings import Settings


class PositionRow(NamedTuple):
    """One row of ``vehicle_positions``, in column order."""

    device_id: str
    time: datetime
    received_at: datetime
    lat: float
    lon: float
    speed_kmh: float | None
    heading_deg: float | None
    accuracy_m: float | None
    route: str | None
    seq: int | None


class EnergyRow(NamedTuple):
    """One row of ``light_energy``, in column order."""

    device_id: str
    time: datetime
    received_at: datetime
    energy_wh: float
    power_w: float | None
    voltage_v: float | None
    current_a: float | None
    power_factor: float | None
    lamp_on: bool | None
    dim_pct: float | None
    seq: int | None


class FaultRow(NamedTuple):
    """One row of ``light_faults``, in column order."""

    device_id: str
    time: datetime
    received_at: datetime
    fault: str
    active: bool
    detail: str | None


class DeadLetter(NamedTuple):
    """A rejected message or batch element, kept with the reason it was refused."""

    received_at: datetime
    topic: str
    payload: bytes
    reason: str
    reason_code: str
    device_id: str | None
    element_index: int | None


def _refused_object(
    received_at: datetime, topic_str: str, payload: bytes, topic: Topic, rejection: Rejection
) -> DeadLetter:
    """The dead letter of a whole single-object message."""
    return DeadLetter(
        received_at, topic_str, payload, rejection.reason, rejection.code, topic.device_id, None
    )


@dataclass(frozen=True, slots=True)
class Limits:
    """The contract's bounds on one message."""

    prefix: str
    max_payload_bytes: int = 64 * 1024
    max_batch_items: int = 1000
    max_age: timedelta = timedelta(days=7)
    max_future: timedelta = timedelta(minutes=5)
    auto_register: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits the ``RASD_*`` settings ask for (every service decodes with the same)."""
        return cls(
            prefix=settings.topic_prefix,
            max_payload_bytes=settings.max_payload_bytes,
            max_batch_items=settings.max_batch_items,
            max_age=settings.max_age,
            max_future=settings.max_future,
            auto_register=settings.auto_register,
        )


@dataclass(slots=True)
class Decoded:
    """Everything one message turned into."""

    positions: list[PositionRow] = field(default_factory=list)
    energy: list[EnergyRow] = field(default_factory=list)
    faults: list[FaultRow] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    new_device: tuple[str, Fleet] | None = None


class RowSink(Protocol):
    """Where decoding appends: one message's ``Decoded``, or a whole batch's lists."""

    positions: list[PositionRow]
    energy: list[EnergyRow]
    faults: list[FaultRow]
    dead_letters: list[DeadLetter]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


# Built once: json.loads with keyword arguments builds a new decoder per call.
_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False)[:5]:
        loc = ".".join(str(p) for p in item["loc"]) or "payload"
        msg = item["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def _wire_ts(value: int | str) -> datetime:
    """A wire report's ts: epoch milliseconds already range-checked by msgspec, or a string."""
    if type(value) is int:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return parse_ts(value)


def registry_rejection(
    topic: Topic, registry: Mapping[str, Fleet], auto_register: bool
) -> Rejection | None:
    """Why a device may not publish on this topic, or None when it may."""
    fleet = registry.get(topic.device_id)
    if fleet is None:
        if auto_register:
            return None
        return Rejection("unknown_device", f"device {topic.device_id!r} is not in the registry")
    if fleet != topic.fleet:
        return Rejection(
            "fleet_mismatch",
            f"device {topic.device_id!r} is registered as {fleet.value}, topic says {topic.fleet}",
        )
    return None


class MessageDecoder:
    """Turns raw MQTT messages into rows, judging each batch element on its own.

    Most messages are well-formed: msgspec parses and validates them in one pass (the fast
    path, ``telemetry.contract_wire``). Anything it refuses, and any batch with a refused
    element, goes through the pydantic models, which say precisely why.
    """

    __slots__ = ("_earliest", "_latest", "_window_of", "fast_path", "limits")

    def __init__(self, limits: Limits, *, fast_path: bool = True) -> None:
        self.limits = limits
        # False: pydantic only (the reference the fast path is tested and measured against).
        self.fast_path = fast_path
        # The accepted ts window for the last ``received_at`` (a batch shares one).
        self._window_of: datetime | None = None
        self._earliest = datetime.min.replace(tzinfo=UTC)
        self._latest = self._earliest

    def decode(
        self,
        topic_str: str,
        payload: bytes,
        received_at: datetime,
        registry: Mapping[str, Fleet],
    ) -> Decoded:
        """Decode one message; never raises for bad input, it dead-letters instead."""
        out = Decoded()
        out.new_device = self.decode_into(topic_str, payload, received_at, registry, out)
        return out

    def decode_into(
        self,
        topic_str: str,
        payload: bytes,
        received_at: datetime,
        registry: Mapping[str, Fleet],
        out: RowSink,
    ) -> tuple[str, Fleet] | None:
        """Decode one message into ``out``'s lists (a whole batch's); returns the device to
        register, if any. Same rows and dead letters as ``decode``, without a record per
        message. Never raises for bad input, it dead-letters instead."""
        device_id: str | None = None
        new_device: tuple[str, Fleet] | None = None
        try:
            if len(payload) > self.limits.max_payload_bytes:
                raise Rejection(
                    "too_large",
                    f"payload is {len(payload)} bytes, limit {self.limits.max_payload_bytes}",
                )
            topic = parse_topic(topic_str, self.limits.prefix)
            device_id = topic.device_id
            refusal = registry_rejection(topic, registry, self.limits.auto_register)
            if refusal is not None:
                raise refusal
            if device_id not in registry:
                new_device = (device_id, topic.fleet)
            first = payload[:1]
            if not self.fast_path:
                if first == b"{" and self._store_object_pydantic(
                    topic_str, topic, payload, received_at, out
                ):
                    return new_device
            elif first == b"{":
                if self._store_object(topic_str, topic, payload, received_at, out):
                    return new_device
            elif first == b"[" and self._store_array(topic, payload, received_at, out):
                return new_device
            elements = self._elements(payload)
        except Rejection as rejection:
            out.dead_letters.append(
                DeadLetter(
                    received_at,
                    topic_str,
                    payload,
                    rejection.reason,
                    rejection.code,
                    device_id,
                    None,
                )
            )
            return new_device
        single = len(elements) == 1 and not payload.lstrip().startswith(b"[")
        for index, element in enumerate(elements):
            try:
                self._store(topic, element, received_at, out)
            except Rejection as rejection:
                raw = payload if single else json.dumps(element, allow_nan=False).encode()
                out.dead_letters.append(
                    DeadLetter(
                        received_at,
                        topic_str,
                        raw,
                        rejection.reason,
                        rejection.code,
                        topic.device_id,
                        None if single else index,
                    )
                )
        return new_device

    # -- fast path (msgspec) ------------------------------------------------------------------

    def _store_object(
        self, topic_str: str, topic: Topic, payload: bytes, received_at: datetime, out: RowSink
    ) -> bool:
        """The common single object, parsed and validated in one pass.

        False when it does not validate: the general path then says precisely why.
        """
        try:
            report = OBJECT_DECODER[topic.channel].decode(payload)
            ts = _wire_ts(report.ts)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError):
            return False
        try:
            self._append(topic, report, ts, received_at, out)
        except Rejection as rejection:
            out.dead_letters.append(
                _refused_object(received_at, topic_str, payload, topic, rejection)
            )
        return True

    def _store_array(
        self, topic: Topic, payload: bytes, received_at: datetime, out: RowSink
    ) -> bool:
        """A batch whose every element is good, in one pass; False sends it the general way.

        A refused element's dead letter holds that element as JSON, unknown keys included,
        which only the general path still has: so any refusal hands the whole batch over.
        """
        try:
            reports = ARRAY_DECODER[topic.channel].decode(payload)
            if not reports or len(reports) > self.limits.max_batch_items:
                return False
            stamps = [_wire_ts(report.ts) for report in reports]
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError):
            return False
        staged = Decoded()
        try:
            for report, ts in zip(reports, stamps, strict=True):
                self._append(topic, report, ts, received_at, staged)
        except Rejection:
            return False
        out.positions.extend(staged.positions)
        out.energy.extend(staged.energy)
        out.faults.extend(staged.faults)
        return True

    # -- general path (json + pydantic): precise reasons --------------------------------------

    def _store_object_pydantic(
        self, topic_str: str, topic: Topic, payload: bytes, received_at: datetime, out: RowSink
    ) -> bool:
        """A single object through pydantic's one-pass JSON validation; False: not valid."""
        try:
            report = REPORT_MODEL[topic.channel].model_validate_json(payload)
        except ValidationError:
            return False
        try:
            self._append(topic, report, report.ts, received_at, out)
        except Rejection as rejection:
            out.dead_letters.append(
                _refused_object(received_at, topic_str, payload, topic, rejection)
            )
        return True

    def _elements(self, payload: bytes) -> list[Any]:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            detail = f"payload is not UTF-8 ({exc.reason} at byte {exc.start})"
            raise Rejection("not_utf8", detail) from None
        try:
            document = _JSON.decode(text)
        except ValueError as exc:
            raise Rejection("not_json", f"payload is not JSON ({exc})") from None
        if isinstance(document, dict):
            return [document]
        if isinstance(document, list):
            if not document:
                raise Rejection("empty_batch", "payload is an empty array")
            if len(document) > self.limits.max_batch_items:
                raise Rejection(
                    "batch_too_large",
                    f"batch has {len(document)} elements, limit {self.limits.max_batch_items}",
                )
            return document
        raise Rejection("not_object", "payload must be a JSON object or an array of objects")

    def _store(self, topic: Topic, element: Any, received_at: datetime, out: RowSink) -> None:
        if not isinstance(element, dict):
            raise Rejection(
                "not_object", f"element is a JSON {type(element).__name__}, not an object"
            )
        model = REPORT_MODEL[topic.channel]
        try:
            report = model.model_validate(element)
        except ValidationError as exc:
            raise Rejection("invalid", _describe(exc)) from None
        self._append(topic, report, report.ts, received_at, out)

    # -- both paths ---------------------------------------------------------------------------

    def _check_window(self, ts: datetime, received_at: datetime) -> None:
        if received_at != self._window_of:
            self._window_of = received_at
            self._earliest = received_at - self.limits.max_age
            self._latest = received_at + self.limits.max_future
        if ts > self._latest:
            ahead = (ts - received_at).total_seconds()
            raise Rejection(
                "ts_future",
                f"ts {ts.isoformat()} is {ahead:.0f} s ahead of server time "
                f"(limit {self.limits.max_future.total_seconds():.0f} s)",
            )
        if ts < self._earliest:
            raise Rejection(
                "ts_too_old",
                f"ts {ts.isoformat()} is older than the {self.limits.max_age} accepted",
            )

    def _append(
        self,
        topic: Topic,
        report: PositionReport | EnergyReport | FaultReport | WireReport,
        ts: datetime,
        received_at: datetime,
        out: RowSink,
    ) -> None:
        """Check the time window and position sanity, then add the row."""
        self._check_window(ts, received_at)
        device_id = topic.device_id
        if isinstance(report, PositionWire | PositionReport):
            if report.lat == 0 and report.lon == 0:
                raise Rejection("null_island", "lat/lon is exactly (0, 0): a tracker without a fix")
            out.positions.append(
                PositionRow(
                    device_id,
                    ts,
                    received_at,
                    report.lat,
                    report.lon,
                    report.speed_kmh,
                    report.heading_deg,
                    report.accuracy_m,
                    report.route,
                    report.seq,
                )
            )
        elif isinstance(report, EnergyWire | EnergyReport):
            out.energy.append(
                EnergyRow(
                    device_id,
                    ts,
                    received_at,
                    report.energy_wh,
                    report.power_w,
                    report.voltage_v,
                    report.current_a,
                    report.power_factor,
                    report.lamp_on,
                    report.dim_pct,
                    report.seq,
                )
            )
        else:
            out.faults.append(
                FaultRow(device_id, ts, received_at, report.fault, report.active, report.detail)
            )
