"""deploy/mosquitto (config + ACL) and telemetry.mqtt_credentials against a real Mosquitto 2.0."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from telemetry.mqtt_credentials import (
    DEFAULT_ITERATIONS,
    generate_device_passwords,
    hash_password,
    password_line,
    write_password_file,
)
from tests.broker_instance import MOSQUITTO, MosquittoInstance

pytestmark = pytest.mark.skipif(
    shutil.which(MOSQUITTO) is None, reason="needs the mosquitto binary"
)

WAIT_S = 5.0
# Mosquitto 2.0.11 answers every refused login (bad password, unknown user, anonymous) with
# 0x87 Not authorized, never 0x86 Bad user name or password.
NOT_AUTHORIZED = 0x87
NO_MATCHING_SUBSCRIBERS = 0x10  # a success code
SHARED_FILTER = "$share/rasd-ingest/rasd/v1/+/+/+"
LINE_RE = re.compile(
    r"^(?P<user>[^:]+):\$7\$(?P<it>\d+)\$(?P<salt>[A-Za-z0-9+/]{16})\$(?P<hash>[A-Za-z0-9+/]{86}==)$"
)

# A line mosquitto_passwd 2.0.11 wrote (`mosquitto_passwd -c -b pw alice secret`).
MOSQUITTO_PASSWD_ALICE = (
    "alice:$7$101$rWWzJLI5pbxi17Qu$m1YfuZnq+zcVHtJYkDr2JdgcnS43VXH7VLEeipBQq6dfzyWowY9cO4k81cn+"
    "zrf6IYngbH4d9MewDlw95m+Sdw=="
)

CREDENTIALS = {
    "B-001": "bus-secret",
    "L-002": "light-secret",
    "rasd-ingest": "ingest-secret",
    "rasd-service": "service-secret",
}
SLOW_HASH_USER = ("slow-hash", "pbkdf2-1000-rounds")  # exercises a non-default iteration count


# --- unit tests: telemetry.mqtt_credentials ------------------------------------------------


def test_hash_password_matches_mosquitto_passwd_output() -> None:
    user, field_ = MOSQUITTO_PASSWD_ALICE.split(":", 1)
    _, _, iterations, salt64, _ = field_.split("$")
    ours = hash_password("secret", salt=base64.b64decode(salt64), iterations=int(iterations))
    assert ours == field_
    assert f"{user}:{ours}" == MOSQUITTO_PASSWD_ALICE


def test_hash_password_format() -> None:
    line = password_line("B-001", "pw")
    match = LINE_RE.match(line)
    assert match, line
    assert match["user"] == "B-001"
    assert int(match["it"]) == DEFAULT_ITERATIONS == 101
    assert len(base64.b64decode(match["salt"])) == 12
    assert len(base64.b64decode(match["hash"])) == 64


def test_hash_password_uses_a_fresh_salt_each_time() -> None:
    hashes = {hash_password("same password") for _ in range(20)}
    assert len(hashes) == 20
    salts = {h.split("$")[3] for h in hashes}
    assert len(salts) == 20


def test_hash_password_iterations_change_the_hash() -> None:
    salt = bytes(range(12))
    h101 = hash_password("pw", salt=salt)
    h1000 = hash_password("pw", salt=salt, iterations=1000)
    assert h101.startswith("$7$101$")
    assert h1000.startswith("$7$1000$")
    assert h101.split("$")[4] != h1000.split("$")[4]
    assert hash_password("pw", salt=salt, iterations=1000) == h1000  # deterministic given salt


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"salt": b"short"}, "12 bytes"),
        ({"salt": bytes(16)}, "12 bytes"),
        ({"iterations": 0}, "iterations"),
    ],
)
def test_hash_password_rejects_what_mosquitto_would(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        hash_password("pw", **kwargs)  # type: ignore[arg-type]


def test_hash_password_rejects_nul() -> None:
    with pytest.raises(ValueError, match="NUL"):
        hash_password("a\0b")


@settings(max_examples=50, deadline=None)
@given(password=st.text(st.characters(codec="utf-8", exclude_characters="\0")))
def test_hash_password_is_pbkdf2_sha512_of_utf8(password: str) -> None:
    _, _, iterations, salt64, hash64 = hash_password(password).split("$")
    expected = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), base64.b64decode(salt64), int(iterations)
    )
    assert base64.b64decode(hash64) == expected


@pytest.mark.parametrize("username", ["", " B-1", "a:b", "#x", "a+b", "a#b", "a/b", "a\nb"])
def test_password_line_rejects_unsafe_usernames(username: str) -> None:
    with pytest.raises(ValueError, match="username"):
        password_line(username, "pw")


def test_generate_device_passwords() -> None:
    ids = [f"L-{n:05d}" for n in range(500)]
    creds = generate_device_passwords(iter(ids))
    assert list(creds) == ids
    assert len(set(creds.values())) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{32}", pw) for pw in creds.values())


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (["ok", "bad id"], "must match"),
        (["x" * 65], "must match"),
        (["rasd-ingest"], "reserved"),
        (["B-1", "B-1"], "twice"),
    ],
)
def test_generate_device_passwords_rejects(ids: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_device_passwords(ids)


def test_write_password_file_is_private_and_atomic(tmp_path: Path) -> None:
    target = tmp_path / "passwd"
    target.write_text("old:contents\n")
    target.chmod(0o644)
    write_password_file(target, {"B-001": "a", "L-002": "b"})
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    lines = target.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["B-001", "L-002"]
    assert all(LINE_RE.match(line) for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwd"]  # no temp file left


def test_write_password_file_leaves_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "passwd"
    target.write_text("old:contents\n")
    with pytest.raises(ValueError, match="username"):
        write_password_file(target, {"ok": "a", "bad:name": "b"})
    assert target.read_text() == "old:contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["passwd"]


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs mosquitto_passwd")
def test_same_format_as_mosquitto_passwd(tmp_path: Path) -> None:
    theirs_file = tmp_path / "theirs"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(theirs_file), "B-001", "s3cret"],
        check=True,
        capture_output=True,
    )
    theirs = theirs_file.read_text().strip()
    theirs_match = LINE_RE.match(theirs)
    assert theirs_match, theirs
    ours = password_line("B-001", "s3cret")
    ours_match = LINE_RE.match(ours)
    assert ours_match, ours
    assert ours_match["it"] == theirs_match["it"]
    salt = base64.b64decode(theirs_match["salt"])
    assert "B-001:" + hash_password("s3cret", salt=salt) == theirs


# --- broker tests --------------------------------------------------------------------------


def _password_text() -> str:
    """The password file, as telemetry.mqtt_credentials writes it."""
    with tempfile.TemporaryDirectory() as directory:
        passwd = Path(directory) / "passwd"
        write_password_file(passwd, CREDENTIALS)
        text = passwd.read_text()
    username, password = SLOW_HASH_USER
    return text + f"{username}:{hash_password(password, iterations=1000)}\n"


@pytest.fixture(scope="module")
def broker() -> Iterator[MosquittoInstance]:
    """deploy/mosquitto/mosquitto.conf + deploy/mosquitto/acl, shared by this module's tests."""
    with MosquittoInstance.from_deploy_config(password_file=_password_text()) as instance:
        yield instance


@dataclass
class Session:
    """A paho client on its own network thread, with events for what the tests wait on."""

    client: mqtt.Client
    connected: threading.Event = field(default_factory=threading.Event)
    connack: ReasonCode | None = None
    session_present: bool = False
    subscribed: threading.Event = field(default_factory=threading.Event)
    suback: list[ReasonCode] = field(default_factory=list)
    messages: list[mqtt.MQTTMessage] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    pubacks: dict[int, ReasonCode] = field(default_factory=dict)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT_S) -> bool:
        """Wait until ``predicate()`` (about the received messages) holds."""
        with self.arrived:
            return self.arrived.wait_for(predicate, timeout)

    def subscribe(self, topic_filter: str) -> None:
        """Subscribe at QoS 1 and wait for the SUBACK (Mosquitto 2.0 grants every filter)."""
        self.subscribed.clear()
        self.client.subscribe(topic_filter, qos=1)
        assert self.subscribed.wait(WAIT_S), "no SUBACK"
        assert [rc.value for rc in self.suback] == [1], self.suback

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(WAIT_S)
        assert info.is_published(), "no PUBACK"
        return self.pubacks[info.mid]

    def received(self, topic: str) -> list[bytes]:
        """Payloads received on ``topic`` so far."""
        with self.arrived:
            return [bytes(m.payload) for m in self.messages if m.topic == topic]

    def close(self) -> None:
        """Disconnect (ending a non-persistent session) and stop the network thread."""
        _shut_down(self.client)


class Clients:
    """Makes connected MQTT v5 clients of one broker; ``close()`` stops them all."""

    def __init__(self, broker: MosquittoInstance) -> None:
        self.broker = broker
        self.sessions: list[Session] = []
        self._ids = itertools.count()

    def __call__(
        self,
        username: str | None,
        password: str | None = None,
        *,
        expect_ok: bool = True,
        client_id: str | None = None,
        session_expiry_s: int = 0,
    ) -> Session:
        """Connect (clean start unless ``session_expiry_s``) and wait for the CONNACK."""
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{next(self._ids)}-{username}",
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,
        )
        session = Session(client)
        self.sessions.append(session)
        if username is not None:
            client.username_pw_set(username, password)

        def on_connect(
            c: mqtt.Client, u: object, f: mqtt.ConnectFlags, rc: ReasonCode, p: Properties | None
        ) -> None:
            session.connack = rc
            session.session_present = f.session_present
            session.connected.set()

        def on_subscribe(
            c: mqtt.Client, u: object, mid: int, rcs: list[ReasonCode], p: Properties | None
        ) -> None:
            session.suback = rcs
            session.subscribed.set()

        def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
            with session.arrived:
                session.messages.append(message)
                session.arrived.notify_all()

        def on_publish(
            c: mqtt.Client, u: object, mid: int, rc: ReasonCode, p: Properties | None
        ) -> None:
            session.pubacks[mid] = rc

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.on_publish = on_publish
        properties = None
        if session_expiry_s:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = session_expiry_s
        client.connect(
            self.broker.host,
            self.broker.port,
            keepalive=30,
            clean_start=not session_expiry_s,
            properties=properties,
        )
        client.loop_start()
        assert session.connected.wait(WAIT_S), "no CONNACK"
        if expect_ok:
            assert session.connack is not None
            assert not session.connack.is_failure, session.connack
        return session

    def close(self) -> None:
        """Disconnect every client made so far."""
        for session in self.sessions:
            session.close()


@pytest.fixture
def connect(broker: MosquittoInstance) -> Iterator[Clients]:
    """Clients of the module's broker."""
    clients = Clients(broker)
    yield clients
    clients.close()


@pytest.fixture
def own_broker() -> Iterator[MosquittoInstance]:
    """A broker for one test, for tests that leave state behind (share groups, restarts)."""
    with MosquittoInstance.from_deploy_config(password_file=_password_text()) as instance:
        yield instance


@pytest.fixture
def own_connect(own_broker: MosquittoInstance) -> Iterator[Clients]:
    """Clients of ``own_broker``."""
    clients = Clients(own_broker)
    yield clients
    clients.close()


def test_ingest_receives_device_message_via_shared_subscription(connect: Clients) -> None:
    ingest = connect("rasd-ingest", CREDENTIALS["rasd-ingest"])
    ingest.subscribe(SHARED_FILTER)
    bus = connect("B-001", CREDENTIALS["B-001"])
    topic = "rasd/v1/bus/B-001/position"

    assert bus.publish(topic, b'{"n":1}').value == 0
    assert ingest.wait_for(lambda: bool(ingest.received(topic))), "ingest got nothing"
    (message,) = [m for m in ingest.messages if m.topic == topic]
    assert message.payload == b'{"n":1}'
    assert message.qos == 1


def test_device_cannot_publish_under_another_device_id(connect: Clients) -> None:
    ingest = connect("rasd-ingest", CREDENTIALS["rasd-ingest"])
    ingest.subscribe(SHARED_FILTER)
    bus = connect("B-001", CREDENTIALS["B-001"])
    forged = "rasd/v1/bus/L-002/position"
    own = "rasd/v1/bus/B-001/position"

    assert bus.publish(forged, b"forged").value == NOT_AUTHORIZED
    # Same publisher, same subscriber: once the later message is in, the forged one would be too.
    assert bus.publish(own, b"after").value == 0
    assert ingest.wait_for(lambda: bool(ingest.received(own)))
    assert ingest.received(forged) == []


@pytest.mark.parametrize(
    ("username", "topic"),
    [
        ("B-001", "rasd/v1/truck/L-002/position"),
        ("B-001", "rasd/v1/events/B-001/x"),  # devices never write events
        ("B-001", "rasd/v1/bus/B-001"),
        ("L-002", "rasd/v1/light/L-002/position"),  # only CHANNELS_BY_FLEET
        ("L-002", "other/light/L-002/energy"),
        ("rasd-ingest", "rasd/v1/bus/rasd-ingest/position"),  # services are not devices
        ("rasd-service", "rasd/v1/bus/B-001/position"),
    ],
)
def test_publish_refused(connect: Clients, username: str, topic: str) -> None:
    session = connect(username, CREDENTIALS[username])
    assert session.publish(topic, b"x").value == NOT_AUTHORIZED


@pytest.mark.parametrize(
    ("username", "topic"),
    [
        ("B-001", "rasd/v1/truck/B-001/position"),
        ("L-002", "rasd/v1/light/L-002/energy"),
        ("L-002", "rasd/v1/light/L-002/fault"),
        ("rasd-service", "rasd/v1/events/alert/1"),
    ],
)
def test_publish_allowed(connect: Clients, username: str, topic: str) -> None:
    session = connect(username, CREDENTIALS[username])
    assert session.publish(topic, b"x").value in (0, NO_MATCHING_SUBSCRIBERS)


def test_device_reads_nothing(connect: Clients) -> None:
    """Mosquitto grants every SUBSCRIBE; the ACL filters each delivery instead."""
    snoop = connect("L-002", CREDENTIALS["L-002"])
    snoop.subscribe("rasd/v1/#")
    snoop.subscribe("#")
    service = connect("rasd-service", CREDENTIALS["rasd-service"])
    service.subscribe("rasd/v1/#")
    bus = connect("B-001", CREDENTIALS["B-001"])
    topic = "rasd/v1/bus/B-001/position"

    assert bus.publish(topic, b"private").value == 0
    assert service.wait_for(lambda: bool(service.received(topic)))
    # Mosquitto routes a message to every subscriber before it PUBACKs the publisher, so by the
    # time the second copy reached the service, a first copy for the snoop would have been sent.
    assert bus.publish(topic, b"again").value == 0
    assert service.wait_for(lambda: len(service.received(topic)) == 2)
    assert snoop.messages == []


def test_mosquitto_2_0_quirk_share_group_member_without_read_swallows_messages(
    own_connect: Clients,
) -> None:
    """Documents a Mosquitto 2.0.x limitation (see deploy/mosquitto/acl, CAVEAT).

    Any account may join a share group; messages routed to a member that may not read them are
    dropped, not re-routed. If this starts failing after a broker upgrade, revisit that note.
    """
    ingest = own_connect("rasd-ingest", CREDENTIALS["rasd-ingest"])
    ingest.subscribe(SHARED_FILTER)
    ingest.subscribe("rasd/v1/events/#")  # end marker, outside the shared filter
    intruder = own_connect("L-002", CREDENTIALS["L-002"])
    intruder.subscribe(SHARED_FILTER)
    bus = own_connect("B-001", CREDENTIALS["B-001"])
    service = own_connect("rasd-service", CREDENTIALS["rasd-service"])
    topic = "rasd/v1/bus/B-001/position"

    for n in range(6):
        assert bus.publish(topic, b"%d" % n).value == 0
    assert service.publish("rasd/v1/events/marker", b"end").value == 0
    assert ingest.wait_for(lambda: bool(ingest.received("rasd/v1/events/marker")))
    assert len(ingest.received(topic)) == 3  # strict round-robin: every other one is lost
    assert intruder.messages == []


def test_wrong_password_refused_at_connect(connect: Clients) -> None:
    session = connect("B-001", "not-the-password", expect_ok=False)
    assert session.connack is not None
    assert session.connack.value == NOT_AUTHORIZED


def test_unknown_user_refused_at_connect(connect: Clients) -> None:
    session = connect("B-999", "whatever", expect_ok=False)
    assert session.connack is not None
    assert session.connack.value == NOT_AUTHORIZED


def test_anonymous_refused_at_connect(connect: Clients) -> None:
    session = connect(None, expect_ok=False)
    assert session.connack is not None
    assert session.connack.value == NOT_AUTHORIZED


def test_broker_accepts_hash_password_with_other_iterations(connect: Clients) -> None:
    username, password = SLOW_HASH_USER
    assert connect(username, password).connack is not None
    refused = connect(username, password + "x", expect_ok=False).connack
    assert refused is not None
    assert refused.value == NOT_AUTHORIZED


def test_broker_accepts_mosquitto_passwd_and_our_lines_side_by_side(tmp_path: Path) -> None:
    """One file mixing both tools' lines: the broker logs in both users."""
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("needs mosquitto_passwd")
    theirs = tmp_path / "theirs"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(theirs), "theirs", "pw-1"],
        check=True,
        capture_output=True,
    )
    text = theirs.read_text() + password_line("ours", "pw-2") + "\n"
    config = "listener 1883\nallow_anonymous false\npassword_file /x/passwd\n"
    with MosquittoInstance(config, files={"passwd": text}) as instance:
        for username, password in [("theirs", "pw-1"), ("ours", "pw-2")]:
            assert _connack(instance, username, password) == 0
        assert _connack(instance, "ours", "pw-1") == NOT_AUTHORIZED


def _connack(instance: MosquittoInstance, username: str, password: str) -> int:
    """Reason code of a blocking MQTT v5 CONNECT."""
    done = threading.Event()
    result: list[int] = []
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        protocol=mqtt.MQTTv5,
        reconnect_on_failure=False,
    )
    client.username_pw_set(username, password)

    def on_connect(
        c: mqtt.Client, u: object, f: mqtt.ConnectFlags, rc: ReasonCode, p: Properties | None
    ) -> None:
        result.append(rc.value)
        done.set()

    client.on_connect = on_connect
    client.connect(instance.host, instance.port)
    client.loop_start()
    try:
        assert done.wait(WAIT_S), "no CONNACK"
    finally:
        _shut_down(client)
    return result[0]


def _shut_down(client: mqtt.Client) -> None:
    """Disconnect, join the network thread and close every socket now.

    paho keeps loop_start()'s wake-up socket pair open until the client is garbage collected;
    collected inside a reference cycle it can trigger a ResourceWarning (an error here).
    """
    client.disconnect()
    client.loop_stop()
    client._reset_sockets()


def test_persistent_session_survives_restart(
    own_connect: Clients, own_broker: MosquittoInstance
) -> None:
    """The deploy config's persistence keeps the ingestor's queue across a broker restart.

    Also covers MosquittoInstance.restart(): same port and URL, same data directory.
    """
    url = own_broker.url
    ingest_login = ("rasd-ingest", CREDENTIALS["rasd-ingest"])
    first = own_connect(*ingest_login, client_id="rasd-ingest-test-0", session_expiry_s=3600)
    first.subscribe(SHARED_FILTER)
    first.close()  # the session (and its shared subscription) stays on the broker
    bus = own_connect("B-001", CREDENTIALS["B-001"])
    topic = "rasd/v1/bus/B-001/position"
    for n in range(3):
        assert bus.publish(topic, b"%d" % n).value == 0
    bus.close()

    own_broker.restart()
    assert own_broker.url == url
    assert (own_broker.data_dir / "mosquitto.db").exists()

    again = own_connect(*ingest_login, client_id="rasd-ingest-test-0", session_expiry_s=3600)
    assert again.session_present
    assert again.wait_for(lambda: len(again.received(topic)) == 3), again.received(topic)
    assert again.received(topic) == [b"0", b"1", b"2"]
