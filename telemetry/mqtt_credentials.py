"""Mosquitto 2.0 password-file lines (``$7$`` = PBKDF2-HMAC-SHA512) made in pure Python.

``mosquitto_passwd`` needs one process per user; this writes 72,000 device entries in seconds.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from telemetry.topics import DEVICE_ID_RE

#: What ``mosquitto_passwd`` 2.0 uses; the broker reads the count from each line.
DEFAULT_ITERATIONS = 101
#: The broker refuses any other salt length (``unpwd__decode_passwords``).
SALT_BYTES = 12
#: Accounts of the Rasd services (see deploy/mosquitto/acl); never device ids.
RESERVED_USERNAMES = frozenset({"rasd-ingest", "rasd-service", "rasd-sim"})

_SECRET_BYTES = 24  # 192 bits, 32 URL-safe characters


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS
) -> str:
    """The ``$7$<iterations>$<b64 salt>$<b64 hash>`` field of a Mosquitto 2.0 password line.

    ``salt`` (exactly 12 bytes) defaults to a fresh random one."""
    if "\0" in password:
        raise ValueError("password must not contain NUL (the broker hashes up to the first NUL)")
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    elif len(salt) != SALT_BYTES:
        raise ValueError(f"salt must be exactly {SALT_BYTES} bytes, Mosquitto rejects others")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    salt64 = base64.b64encode(salt).decode("ascii")
    hash64 = base64.b64encode(digest).decode("ascii")
    return f"$7${iterations}${salt64}${hash64}"


def _check_username(username: str) -> None:
    if not username or username != username.strip():
        raise ValueError(f"username {username!r} is empty or has surrounding whitespace")
    if username.startswith("#"):
        raise ValueError(f"username {username!r} would be read as a comment")
    bad = set(username) & set(":+#/\r\n\0")
    if bad:
        raise ValueError(f"username {username!r} contains forbidden characters {sorted(bad)}")
    if len(username.encode("utf-8")) > 65535:
        raise ValueError("username is longer than MQTT allows")


def password_line(username: str, password: str) -> str:
    """One ``username:$7$...`` line, without the newline, for a fresh random salt."""
    _check_username(username)
    return f"{username}:{hash_password(password)}"


def generate_device_passwords(device_ids: Iterable[str]) -> dict[str, str]:
    """A new random secret per device id, as ``{device_id: password}`` (plaintext)."""
    credentials: dict[str, str] = {}
    for device_id in device_ids:
        if not DEVICE_ID_RE.match(device_id):
            raise ValueError(f"device id {device_id!r} must match [A-Za-z0-9_-]{{1,64}}")
        if device_id in RESERVED_USERNAMES:
            raise ValueError(f"device id {device_id!r} is reserved for a service account")
        if device_id in credentials:
            raise ValueError(f"device id {device_id!r} is listed twice")
        credentials[device_id] = secrets.token_urlsafe(_SECRET_BYTES)
    return credentials


def write_password_file(
    path: str | os.PathLike[str], credentials: Mapping[str, str], *, mode: int = 0o600
) -> None:
    """Hash ``{username: password}`` into a Mosquitto password file, replaced atomically.

    The broker reads it after dropping to user mosquitto: chown it, or pass ``mode=0o640``."""
    lines = [password_line(username, password) for username, password in credentials.items()]
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write("".join(line + "\n" for line in lines))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
