"""The sans-I/O MQTT session core and its framing: pure, no broker."""

from __future__ import annotations

import itertools

import mqtt5
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemetry.mqtt_session import framing
from telemetry.mqtt_session.core import MAX_PACKET_ID, PacketIds, SessionCore, SessionOptions, State
from telemetry.mqtt_session.errors import ProtocolViolation
from telemetry.mqtt_session.events import (
    BrokerDisconnected,
    Connected,
    ConnectionRefused,
    Event,
    Message,
    ProtocolFailure,
    PublishAcknowledged,
    Subscribed,
    SubscriptionRefused,
)

Q1 = mqtt5.QoS.AT_LEAST_ONCE
Q0 = mqtt5.QoS.AT_MOST_ONCE


def parse_all(data: bytes) -> list[mqtt5.Packet]:
    """Every packet in ``data`` (which must hold whole packets only)."""
    packets, used, violation = framing.read_packets(data)
    assert violation is None
    assert used == len(data)
    return packets


def connack(*, receive_max: int = 65535, session_present: bool = False, code: int = 0) -> bytes:
    """A CONNACK as a broker would send it."""
    return mqtt5.ConnAckPacket(
        session_present=session_present,
        reason_code=mqtt5.ConnAckReasonCode(code),
        receive_max=receive_max,
    ).write()


def broker_publish(packet_id: int | None, topic: str = "t/a", payload: bytes = b"x") -> bytes:
    """A PUBLISH from the broker (QoS 1 with an id, QoS 0 without)."""
    if packet_id is None:
        return mqtt5.PublishPacket(topic, payload, qos=Q0).write()
    return mqtt5.PublishPacket(topic, payload, qos=Q1, packet_id=packet_id).write()


def connected_core(
    *,
    receive_max: int = 65535,
    subscriptions: tuple[tuple[str, int], ...] = (),
    receive_maximum: int = 65535,
    keepalive_s: int = 30,
    now: float = 0.0,
) -> tuple[SessionCore[str], list[Event[str]]]:
    """A core past CONNACK (its CONNECT already taken), and the CONNACK's events."""
    core: SessionCore[str] = SessionCore(
        SessionOptions(
            client_id="c",
            subscriptions=subscriptions,
            receive_maximum=receive_maximum,
            keepalive_s=keepalive_s,
        )
    )
    core.connection_made(now)
    assert isinstance(parse_all(core.data_to_send(now))[0], mqtt5.ConnectPacket)
    events = core.receive_data(connack(receive_max=receive_max))
    return core, events


def written_publishes(core: SessionCore[str], now: float = 0.0) -> list[mqtt5.PublishPacket]:
    """The PUBLISH packets the core writes now."""
    return [p for p in parse_all(core.data_to_send(now)) if isinstance(p, mqtt5.PublishPacket)]


# --- framing -------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=MAX_PACKET_ID))
def test_short_puback_is_what_the_codec_writes(packet_id: int) -> None:
    assert framing.encode_puback(packet_id) == mqtt5.PubAckPacket(packet_id).write()


@given(
    topic=st.text(
        alphabet=st.characters(exclude_characters="+#\x00", exclude_categories=["Cs"]),
        min_size=1,
        max_size=40,
    ),
    payload=st.binary(max_size=300),
    packet_id=st.integers(min_value=1, max_value=MAX_PACKET_ID),
    dup=st.booleans(),
    retain=st.booleans(),
)
def test_stamped_publish_is_what_the_codec_writes(
    topic: str, payload: bytes, packet_id: int, dup: bool, retain: bool
) -> None:
    template, offset = framing.publish_template(topic, payload, qos=1, retain=retain)
    assert offset is not None
    expected = mqtt5.PublishPacket(
        topic, payload, qos=Q1, packet_id=packet_id, duplicate=dup, retain=retain
    ).write()
    assert framing.stamp_publish(template, offset, packet_id, dup=dup) == expected


@pytest.mark.parametrize("topic", ["", "a/+", "a/#", "a\x00b"])
def test_forbidden_publish_topics_raise_value_error(topic: str) -> None:
    with pytest.raises(ValueError, match=r"(?i)topic"):
        framing.publish_template(topic, b"", qos=1, retain=False)


def test_frame_length_reads_the_fixed_header() -> None:
    assert framing.frame_length(b"\x30", 0) is None
    assert framing.frame_length(b"\x30\x80", 0) is None  # continuation bit, next byte missing
    assert framing.frame_length(b"\x30\x05", 0) == 7
    assert framing.frame_length(b"\x30\xc1\x02", 0) == 3 + 321
    with pytest.raises(ProtocolViolation):
        framing.frame_length(b"\x30\xff\xff\xff\xff\x01", 0)


def test_incomplete_buffers_wait_and_malformed_ones_fail() -> None:
    whole = broker_publish(7)
    for cut in range(len(whole)):
        packets, used, violation = framing.read_packets(whole[:cut])
        assert (packets, used, violation) == ([], 0, None)
    # The codec's own refusals, each a complete frame (found by probing mqtt5 0.8.0).
    for bad in (b"\x00\x00", b"\x30\x03\x00\x05a", b"\x32\x04\x00\x01a\x00", b"\x30\x02\x00\x00"):
        _, _, violation = framing.read_packets(bad)
        assert violation is not None
        assert violation.reason_code == 0x81


# mqtt5 0.8.0 panics on any string that is not UTF-8 (topic, reason string, user property):
# a pyo3 PanicException (a BaseException), after reporting the UnicodeDecodeError as unraisable.
CODEC_PANICS = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@CODEC_PANICS
def test_non_utf8_strings_are_a_violation_not_a_crash() -> None:
    packets, used, violation = framing.read_packets(broker_publish(1) + b"\x30\x03\x00\x01\xff")
    assert len(packets) == 1
    assert used == len(broker_publish(1))
    assert violation is not None
    reason = b"\x40\x08\x00\x01\x80\x04\x1f\x00\x01\xff"  # PUBACK, reason string 0xFF
    assert framing.read_packets(reason)[2] is not None


def test_oversized_frame_is_refused_before_it_is_buffered() -> None:
    _, _, violation = framing.read_packets(b"\x30\xff\xff\x03", max_packet_size=1024)
    assert violation is not None
    assert violation.reason_code == 0x95


_TOPICS = st.text(alphabet="abc/xyz", min_size=1, max_size=12).filter(lambda t: "//" not in t)


@st.composite
def broker_streams(draw: st.DrawFn) -> list[bytes]:
    """A CONNACK then publishes (QoS 0 and 1, unique ids), PINGRESPs and PUBACKs of nothing."""
    count = draw(st.integers(min_value=0, max_value=30))
    ids = iter(
        draw(st.lists(st.integers(1, MAX_PACKET_ID), min_size=count, max_size=count, unique=True))
    )
    frames = [connack()]
    for _ in range(count):
        kind = draw(st.sampled_from(["q0", "q1", "ping"]))
        if kind == "ping":
            frames.append(mqtt5.PingRespPacket().write())
            next(ids)
            continue
        topic, payload = draw(_TOPICS), draw(st.binary(max_size=200))
        frames.append(broker_publish(next(ids) if kind == "q1" else None, topic, payload))
    return frames


@given(frames=broker_streams(), cuts=st.lists(st.integers(min_value=0), max_size=40))
def test_any_chunking_of_a_stream_gives_the_same_messages(
    frames: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(frames)
    points = sorted({cut % (len(stream) + 1) for cut in cuts} | {0, len(stream)})
    core: SessionCore[str] = SessionCore(SessionOptions(client_id="c"))
    core.connection_made(0.0)
    events: list[Event[str]] = []
    for start, end in itertools.pairwise(points):
        events.extend(core.receive_data(stream[start:end]))
    assert [type(e) for e in events] == [Connected]
    expected = [p for p in parse_all(b"".join(frames[1:])) if isinstance(p, mqtt5.PublishPacket)]
    got = [m.packet for m in core.inbox]
    assert [(p.topic, p.payload, p.qos, p.packet_id) for p in got] == [
        (p.topic, p.payload, p.qos, p.packet_id) for p in expected
    ]


@CODEC_PANICS
@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_any_bytes_from_the_broker_never_crash(data: bytes) -> None:
    core, _ = connected_core()
    events = core.receive_data(data)
    expected = (ProtocolFailure, BrokerDisconnected, PublishAcknowledged, Connected, Subscribed)
    assert all(isinstance(e, (*expected, SubscriptionRefused)) for e in events)
    if any(isinstance(e, ProtocolFailure) for e in events):
        assert core.state is State.BROKEN
        assert core.receive_data(broker_publish(1)) == []


# --- packet ids ----------------------------------------------------------------------------


@given(st.lists(st.tuples(st.booleans(), st.integers(min_value=0)), max_size=400))
def test_packet_ids_are_never_handed_out_twice_while_in_use(ops: list[tuple[bool, int]]) -> None:
    ids = PacketIds()
    in_use: list[int] = []
    for allocate, pick in ops:
        if allocate or not in_use:
            packet_id = ids.allocate()
            assert packet_id is not None
            assert 1 <= packet_id <= MAX_PACKET_ID
            assert packet_id not in in_use
            in_use.append(packet_id)
        else:
            ids.release(in_use.pop(pick % len(in_use)))
        assert len(ids) == len(in_use)


def test_packet_ids_run_out_at_65535_and_come_back() -> None:
    ids = PacketIds()
    allocated = {ids.allocate() for _ in range(MAX_PACKET_ID)}
    assert allocated == set(range(1, MAX_PACKET_ID + 1))
    assert ids.allocate() is None
    ids.release(4242)
    assert ids.allocate() == 4242


@st.composite
def session_scripts(draw: st.DrawFn) -> list[tuple[str, int]]:
    """Publishes, PUBACKs of a random in-flight id, and reconnects, in any order."""
    return draw(
        st.lists(
            st.tuples(st.sampled_from(["publish", "puback", "reconnect"]), st.integers(0, 10**6)),
            max_size=120,
        )
    )


@given(script=session_scripts(), quota=st.integers(min_value=1, max_value=8))
def test_a_new_publish_never_takes_an_id_in_flight(
    script: list[tuple[str, int]], quota: int
) -> None:
    core, _ = connected_core(receive_max=quota)
    acked: list[str] = []
    published = 0
    for op, pick in script:
        before = core.in_flight_ids()
        if op == "publish":
            core.publish("t/x", str(published).encode(), tag=str(published))
            published += 1
        elif op == "puback" and before:
            packet_id = sorted(before)[pick % len(before)]
            events = core.receive_data(mqtt5.PubAckPacket(packet_id).write())
            acked.extend(e.tag for e in events if isinstance(e, PublishAcknowledged))
        elif op == "reconnect":
            core.connection_lost()
            core.connection_made(0.0)
            core.data_to_send(0.0)
            core.receive_data(connack(receive_max=quota, session_present=pick % 2 == 0))
        for packet in written_publishes(core):
            assert packet.packet_id is not None
            if not packet.duplicate:
                assert packet.packet_id not in before
            else:
                assert packet.packet_id in before
        assert len(core.in_flight_ids()) <= quota + len(before)
        assert core.send_quota >= 0
    # Nothing lost, nothing acked twice: every publish is acked, in flight or waiting.
    assert len(acked) == len(set(acked))
    assert len(acked) + core.in_flight + core.waiting == published


# --- quota, retransmission, acks, keepalive --------------------------------------------------


def test_receive_maximum_of_the_broker_is_a_send_quota() -> None:
    core, _ = connected_core(receive_max=3)
    for index in range(10):
        core.publish("t/q", b"%d" % index, tag=f"m{index}")
    first = written_publishes(core)
    assert [p.payload for p in first] == [b"0", b"1", b"2"]
    assert core.send_quota == 0
    assert written_publishes(core) == []
    events = core.receive_data(mqtt5.PubAckPacket(first[1].packet_id or 0).write())
    assert [e.tag for e in events if isinstance(e, PublishAcknowledged)] == ["m1"]
    assert [p.payload for p in written_publishes(core)] == [b"3"]


def test_in_flight_publishes_are_resent_with_dup_and_same_ids_before_new_ones() -> None:
    core, _ = connected_core(receive_max=2)
    for index in range(3):
        core.publish("t/r", b"%d" % index, tag=f"m{index}")
    first = written_publishes(core)
    assert [(p.payload, p.duplicate) for p in first] == [(b"0", False), (b"1", False)]
    core.connection_lost()
    assert written_publishes(core) == []  # offline: nothing goes out
    for session_present in (True, False):  # resent either way: at-least-once
        core.connection_made(0.0)
        core.data_to_send(0.0)
        events = core.receive_data(connack(receive_max=2, session_present=session_present))
        connected = [e for e in events if isinstance(e, Connected)]
        assert connected[0].retransmitting == 2
        again = written_publishes(core)
        assert [(p.payload, p.duplicate, p.packet_id) for p in again] == [
            (p.payload, True, p.packet_id) for p in first
        ]
        core.connection_lost()
    core.connection_made(0.0)
    core.data_to_send(0.0)
    core.receive_data(connack(receive_max=5))
    assert [p.payload for p in written_publishes(core)] == [b"0", b"1", b"2"]


def test_puback_failure_is_reported_with_its_name() -> None:
    core, _ = connected_core()
    core.publish("t/f", b"", tag="only")
    [packet] = written_publishes(core)
    refusal = mqtt5.PubAckPacket(
        packet.packet_id or 0, reason_code=mqtt5.PubAckReasonCode.NOT_AUTHORIZED
    ).write()
    [event] = core.receive_data(refusal)
    assert isinstance(event, PublishAcknowledged)
    assert (event.tag, event.reason_code, event.reason) == ("only", 0x87, "NOT_AUTHORIZED (0x87)")
    assert core.counters.publishes_refused == 1


def test_acks_are_batched_never_doubled_and_dropped_with_their_connection() -> None:
    core, _ = connected_core()
    core.receive_data(b"".join(broker_publish(i) for i in range(1, 6)) + broker_publish(None))
    messages = list(core.inbox)
    assert [m.packet_id for m in messages] == [1, 2, 3, 4, 5, None]
    assert core.ack(messages[5]) is False  # QoS 0: nothing to ack
    assert all(core.ack(m) for m in messages[:3])
    assert core.ack(messages[0]) is False  # second ack of the same message
    assert core.data_to_send(1.0) == b"".join(framing.encode_puback(i) for i in (1, 2, 3))
    core.connection_lost()
    core.connection_made(2.0)
    core.data_to_send(2.0)
    core.receive_data(connack(session_present=True))
    assert not core.ack(messages[3])  # the broker redelivers it on this connection
    assert core.data_to_send(3.0) == b""
    assert core.counters.acks_sent == 3
    assert core.counters.acks_dropped == 2


def test_queued_acks_of_a_lost_connection_are_not_written_on_the_next() -> None:
    core, _ = connected_core()
    core.receive_data(broker_publish(9))
    assert core.ack(core.inbox.popleft())
    core.connection_lost()
    core.connection_made(0.0)
    assert [type(p) for p in parse_all(core.data_to_send(0.0))] == [mqtt5.ConnectPacket]


def test_broker_exceeding_our_receive_maximum_is_counted_not_fatal() -> None:
    core, _ = connected_core(receive_maximum=2)
    assert core.receive_data(b"".join(broker_publish(i) for i in (1, 2, 3))) == []
    assert core.counters.receive_maximum_overruns == 1
    assert len(core.inbox) == 3
    assert core.state is State.CONNECTED


def test_a_violation_disconnects_with_its_reason_and_keeps_what_came_before() -> None:
    core, _ = connected_core()
    qos2 = mqtt5.PublishPacket("t/2", b"", qos=mqtt5.QoS.EXACTLY_ONCE, packet_id=9).write()
    [failure] = core.receive_data(broker_publish(1) + qos2 + broker_publish(2))
    assert isinstance(failure, ProtocolFailure)
    [disconnect] = parse_all(core.data_to_send(0.0))
    assert isinstance(disconnect, mqtt5.DisconnectPacket)
    assert int(disconnect.reason_code) == 0x82
    assert [m.packet_id for m in core.inbox] == [1]
    assert core.state is State.BROKEN


def test_keepalive_pings_when_idle_and_declares_a_silent_broker_dead() -> None:
    core, _ = connected_core(keepalive_s=10, now=0.0)
    assert core.poll_keepalive(4.0) == pytest.approx(6.0)
    assert core.poll_keepalive(10.0) == pytest.approx(10.0)
    assert core.data_to_send(10.0) == framing.PINGREQ
    assert core.poll_keepalive(15.0) == pytest.approx(5.0)
    core.receive_data(mqtt5.PingRespPacket().write())
    assert core.poll_keepalive(15.0) == pytest.approx(5.0)  # idle since the ping at 10
    assert core.poll_keepalive(20.0) == pytest.approx(10.0)
    core.data_to_send(20.0)
    assert core.poll_keepalive(29.9) == pytest.approx(0.1)
    assert core.poll_keepalive(30.0) is None


def test_connack_refusal_names_its_reason() -> None:
    core: SessionCore[str] = SessionCore(SessionOptions(client_id="c"))
    core.connection_made(0.0)
    core.data_to_send(0.0)
    [event] = core.receive_data(connack(code=0x87))
    assert isinstance(event, ConnectionRefused)
    assert event.reason == "NOT_AUTHORIZED (0x87)"
    assert core.state is State.REFUSED


def test_subscriptions_go_out_after_every_connack_and_failures_are_reported() -> None:
    subscriptions = (("$share/g/a/#", 1), ("b/#", 0))
    core, events = connected_core(subscriptions=subscriptions)
    assert [type(e) for e in events] == [Connected]
    [subscribe] = parse_all(core.data_to_send(0.0))
    assert isinstance(subscribe, mqtt5.SubscribePacket)
    assert [f.pattern for f in subscribe.topic_filters] == ["$share/g/a/#", "b/#"]
    granted = mqtt5.SubAckPacket(
        subscribe.packet_id,
        [mqtt5.SubAckReasonCode.GRANTED_QOS_AT_LEAST_ONCE, mqtt5.SubAckReasonCode.NOT_AUTHORIZED],
    ).write()
    [refused] = core.receive_data(granted)
    assert isinstance(refused, SubscriptionRefused)
    assert refused.refused == {"b/#": "NOT_AUTHORIZED (0x87)"}
    core.connection_lost()
    core.connection_made(0.0)
    core.data_to_send(0.0)
    core.receive_data(connack())
    [again] = parse_all(core.data_to_send(0.0))
    assert isinstance(again, mqtt5.SubscribePacket)
    ok = mqtt5.SubAckPacket(
        again.packet_id,
        [mqtt5.SubAckReasonCode.GRANTED_QOS_AT_LEAST_ONCE] * 2,
    ).write()
    assert core.receive_data(ok) == [Subscribed(granted=(1, 1))]


def test_close_writes_pending_acks_then_disconnect_and_abandons_the_rest() -> None:
    core, _ = connected_core(receive_max=1)
    core.receive_data(broker_publish(3))
    core.ack(core.inbox.popleft())
    core.publish("t/c", b"a", tag="a")
    core.publish("t/c", b"b", tag="b")
    packets = parse_all(core.close())
    assert [type(p) for p in packets] == [mqtt5.PubAckPacket, mqtt5.DisconnectPacket]
    assert [r.tag for r in core.abandon()] == ["a", "b"]
    assert core.in_flight == core.waiting == 0
    with pytest.raises(ProtocolViolation):
        core.publish("t/c", b"c", tag="c")


def test_message_fields_come_from_the_packet() -> None:
    packet = mqtt5.PublishPacket("a/b", b"p", qos=Q1, packet_id=5, duplicate=True, retain=True)
    message = Message(packet=packet, generation=3)
    assert (message.topic, message.payload, message.qos, message.packet_id) == ("a/b", b"p", 1, 5)
    assert message.dup and message.retain
