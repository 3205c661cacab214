"""A private Mosquitto for tests: own temp directory, free 127.0.0.1 port, cleaned up on exit.

``MosquittoInstance(config_text)`` runs any config; ``MosquittoInstance.from_deploy_config()``
runs deploy/mosquitto/mosquitto.conf with its file paths moved into the temp directory. Every
``listener`` line gets its own free port on 127.0.0.1: ``port`` is the first plain one,
``tls_port`` the first one with a ``certfile``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from tests.support.env import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_CONFIG = REPO_ROOT / "deploy" / "mosquitto" / "mosquitto.conf"
DEPLOY_ACL = REPO_ROOT / "deploy" / "mosquitto" / "acl"
MOSQUITTO = os.environ.get(
    "RASD_TEST_MOSQUITTO", shutil.which("mosquitto") or "/usr/sbin/mosquitto"
)

# Options whose value is a file; they are redirected to the temp directory (same base name).
_FILE_OPTIONS = frozenset(
    {"password_file", "acl_file", "psk_file", "cafile", "certfile", "keyfile", "crlfile"}
)
# Options that configure the listener above them (Mosquitto 2.0 mosquitto.conf(5)); a listener
# block is its line and the run of these that follows it.
_LISTENER_OPTIONS = frozenset(
    {
        "protocol", "cafile", "capath", "certfile", "keyfile", "crlfile", "tls_version",
        "require_certificate", "use_identity_as_username", "use_subject_as_username",
        "ciphers", "ciphers_tls1.3", "dhparamfile", "psk_hint", "psk_file", "mount_point",
        "socket_domain", "bind_interface", "max_connections", "http_dir",
        "use_username_as_clientid", "tls_engine", "tls_keyform",
    }
)  # fmt: skip
# Options the helper owns and drops from the given text.
_DROPPED_OPTIONS = frozenset(
    {"port", "bind_address", "user", "pid_file", "log_dest", "persistence_location", "include_dir"}
)


def _options(config_text: str) -> list[tuple[str, str]]:
    """(option, value) for each line that is not blank or a comment."""
    pairs = []
    for raw in config_text.splitlines():
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            option, _, value = stripped.partition(" ")
            pairs.append((option, value.strip()))
    return pairs


def _listener_blocks(config_text: str) -> list[tuple[list[int], bool]]:
    """Each listener block as (its line numbers, whether it is TLS), in the config's order."""
    blocks: list[tuple[list[int], bool]] = []
    in_block = False
    for number, raw in enumerate(config_text.splitlines()):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        option = stripped.partition(" ")[0]
        if option == "listener":
            blocks.append(([number], False))
            in_block = True
        elif in_block and option in _LISTENER_OPTIONS:
            numbers, tls = blocks[-1]
            blocks[-1] = ([*numbers, number], tls or option == "certfile")
        else:
            in_block = False
    return blocks


def listener_kinds(config_text: str) -> list[bool]:
    """For each ``listener`` of the config, in order, whether it is a TLS listener."""
    return [tls for _, tls in _listener_blocks(config_text)]


def without_tls_listeners(config_text: str) -> str:
    """The config with every TLS listener block removed (for tests without certificates)."""
    dropped = {n for numbers, tls in _listener_blocks(config_text) if tls for n in numbers}
    lines = config_text.splitlines()
    return "\n".join(line for n, line in enumerate(lines) if n not in dropped) + "\n"


class MosquittoError(RuntimeError):
    """The broker did not start (the message includes its log)."""


class MosquittoInstance:
    """Context manager running one Mosquitto process; ``restart()`` keeps port and data."""

    def __init__(
        self,
        config_text: str,
        *,
        files: Mapping[str, str | bytes] | None = None,
        verbose: bool = False,
        startup_timeout: float = 10.0,
    ) -> None:
        self.host = "127.0.0.1"
        self.ports: list[int] = []  # one per listener, in the config's order
        self.listener_tls = listener_kinds(config_text) or [False]
        self.config_text = config_text
        self.files: dict[str, str | bytes] = dict(files or {})
        self.verbose = verbose
        self.startup_timeout = startup_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_deploy_config(
        cls,
        *,
        password_file: str | None = None,
        acl: str | None = None,
        tls_files: Mapping[str, str | bytes] | None = None,
        verbose: bool = False,
    ) -> MosquittoInstance:
        """deploy/mosquitto/mosquitto.conf with this password file text and (default) deploy ACL.

        ``tls_files`` (``ca.crt``, ``server.crt``, ``server.key``) keep its TLS listener;
        without them that listener is left out and only the plain one runs.
        """
        files: dict[str, str | bytes] = {
            "passwd": password_file or "",
            "acl": DEPLOY_ACL.read_text(encoding="utf-8") if acl is None else acl,
        }
        config = DEPLOY_CONFIG.read_text(encoding="utf-8")
        if tls_files is None:
            config = without_tls_listeners(config)
        else:
            files.update(tls_files)
        return cls(config, files=files, verbose=verbose)

    # -- paths --------------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        """The temp directory holding config, files, persistence and log."""
        if self._tmp is None:
            raise RuntimeError("MosquittoInstance is not started")
        return Path(self._tmp.name)

    @property
    def config_path(self) -> Path:
        """The rewritten config the broker runs with."""
        return self.directory / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        """The broker's stderr (its log)."""
        return self.directory / "mosquitto.log"

    @property
    def data_dir(self) -> Path:
        """persistence_location."""
        return self.directory / "data"

    @property
    def port(self) -> int:
        """The first plain listener's port (else the first listener's); 0 before start."""
        if not self.ports:
            return 0
        plain = [p for p, tls in zip(self.ports, self.listener_tls, strict=True) if not tls]
        return (plain or self.ports)[0]

    @property
    def tls_port(self) -> int | None:
        """The first TLS listener's port, None without one."""
        tls = [p for p, is_tls in zip(self.ports, self.listener_tls, strict=True) if is_tls]
        return tls[0] if tls else None

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT`` (for RASD_MQTT_URL)."""
        return f"mqtt://{self.host}:{self.port}"

    def tls_url(self, host: str = "localhost") -> str:
        """``mqtts://localhost:TLS_PORT``: a name the test server certificate holds."""
        if self.tls_port is None:
            raise RuntimeError("this broker has no TLS listener")
        return f"mqtts://{host}:{self.tls_port}"

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self._process.pid if self._process is not None else None

    def log_text(self) -> str:
        """Everything the broker has logged so far (all runs)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    # -- config -------------------------------------------------------------------------------

    def render_config(self) -> str:
        """The config text with listeners, paths, logging and user set for this instance."""
        directory = self.directory
        listeners = iter(f"listener {port} {self.host}" for port in self.ports)
        lines = ["# generated by tests/broker_instance.py"]
        seen_listener = False
        for option, value in _options(self.config_text):
            if option == "listener":
                # In place: the listener options below it still apply to it.
                lines.append(next(listeners))
                seen_listener = True
                continue
            if option in _DROPPED_OPTIONS:
                continue
            if option in _FILE_OPTIONS:
                name = Path(value).name
                if name not in self.files:
                    raise ValueError(f"{option} {value}: pass files={{{name!r}: ...}}")
                lines.append(f"{option} {directory / name}")
                continue
            lines.append(f"{option} {value}".rstrip())
        if not seen_listener:
            lines.insert(1, next(listeners))
        lines.append(f"persistence_location {self.data_dir}/")
        lines.append("log_dest stderr")
        if self.verbose:
            lines.append("log_type all")
        if os.geteuid() == 0:
            # Mosquitto drops root to user "mosquitto", which could not read our temp files.
            lines.append("user root")
        return "\n".join(lines) + "\n"

    def write_file(self, name: str, content: str | bytes) -> Path:
        """Create or replace a file in the instance directory (e.g. then ``reload()``)."""
        path = self.directory / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        path.chmod(0o600)
        self.files[name] = content
        return path

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Create the directory, pick a port, start the broker and wait until it listens."""
        if self._process is not None:
            raise RuntimeError("already running")
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rasd-mosquitto-")
            self.data_dir.mkdir()
            for name, content in self.files.items():
                self.write_file(name, content)
        try:
            for attempt in range(3):
                self.ports = self._free_ports(len(self.listener_tls))
                try:
                    self._launch()
                    return
                except MosquittoError:
                    # Another process may have taken the port between probe and bind.
                    if attempt == 2 or "Address already in use" not in self.log_text():
                        raise
        except BaseException:
            self.close()
            raise

    def _free_ports(self, count: int) -> list[int]:
        ports: list[int] = []
        while len(ports) < count:
            port = free_port(self.host)
            if port not in ports:
                ports.append(port)
        return ports

    def _launch(self) -> None:
        self.config_path.write_text(self.render_config(), encoding="utf-8")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
            )
        try:
            self._wait_listening()
        except BaseException:
            self._terminate()
            raise

    def _wait_listening(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.005
        while True:
            if self._process.poll() is not None:
                raise MosquittoError(
                    f"mosquitto exited with {self._process.returncode}:\n{self.log_text()}"
                )
            if all(self._accepts_connections(port) for port in self.ports):
                return
            if time.monotonic() > deadline:
                raise MosquittoError(
                    f"mosquitto not listening on {self.ports} after {self.startup_timeout}s:\n"
                    f"{self.log_text()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _accepts_connections(self, port: int) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=0.5) as sock:
                # A connect to a closed port in the ephemeral range can "self-connect".
                return bool(sock.getsockname() != sock.getpeername())
        except OSError:
            return False

    def _terminate(self, timeout: float = 10.0) -> int | None:
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (the broker saves its persistence file), wait, then SIGKILL if needed."""
        return self._terminate(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, no persistence save."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        self._terminate()

    def restart(self) -> None:
        """Stop and start again on the same port with the same directory (sessions persist)."""
        self.stop()
        self._launch()

    def reload(self) -> None:
        """SIGHUP: re-read password file and ACL."""
        if self._process is None:
            raise RuntimeError("not running")
        self._process.send_signal(signal.SIGHUP)

    def close(self) -> None:
        """Stop the broker and delete the directory; safe to call twice."""
        try:
            self._terminate()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    def __enter__(self) -> MosquittoInstance:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
