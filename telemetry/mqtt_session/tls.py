"""The TLS context for ``mqtts://`` brokers, built from the settings."""

from __future__ import annotations

import ssl

from telemetry.mqtt_session.errors import TlsConfigError
from telemetry.settings import Settings


def client_ssl_context(settings: Settings) -> ssl.SSLContext:
    """A verifying client context: ``mqtt_ca_file`` (else the system CAs), optional client cert.

    The broker's certificate and host name are always checked. Raises TlsConfigError naming
    the file when a CA, certificate or key file cannot be read.
    """
    ca_file = settings.mqtt_ca_file
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load CA file {ca_file!r} (RASD_MQTT_CA_FILE): {exc}") from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    cert_file, key_file = settings.mqtt_cert_file, settings.mqtt_key_file
    if key_file and not cert_file:
        raise TlsConfigError("RASD_MQTT_KEY_FILE is set without RASD_MQTT_CERT_FILE")
    if cert_file:
        try:
            context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(
                f"cannot load client certificate {cert_file!r} / key {key_file!r}: {exc}"
            ) from exc
    return context


def describe_trust(settings: Settings) -> str:
    """Which CAs verify the broker, for error messages."""
    return f"CA file {settings.mqtt_ca_file!r}" if settings.mqtt_ca_file else "the system's CAs"
