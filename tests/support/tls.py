"""A throwaway PKI for TLS tests, made with the ``openssl`` command (``cryptography`` is not
installed): a CA, a server certificate it signed for ``localhost`` / 127.0.0.1, and an
unrelated CA that must be refused."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True, slots=True)
class Pki:
    """A CA with a server certificate for 127.0.0.1 and localhost, and an unrelated CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    other_ca: Path

    def broker_files(self) -> dict[str, str | bytes]:
        """The listener's files under the names deploy/mosquitto/mosquitto.conf gives them."""
        return {
            "ca.crt": self.ca.read_bytes(),
            "server.crt": self.server_cert.read_bytes(),
            "server.key": self.server_key.read_bytes(),
        }


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN=Rasd test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def make_pki(directory: Path) -> Pki:
    """Certificates made now in ``directory``; skips the test when openssl is missing."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    ca_cert, ca_key = _make_ca(directory, "ca")
    other_ca, _ = _make_ca(directory, "other-ca")
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    extensions = directory / "server.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n",
        encoding="utf-8",
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", extensions,
    )  # fmt: skip
    return Pki(ca=ca_cert, server_cert=cert, server_key=key, other_ca=other_ca)
