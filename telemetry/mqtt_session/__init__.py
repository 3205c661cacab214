"""Rasd's own asyncio MQTT v5 client on the ``mqtt5`` codec: a sans-I/O core, a thin asyncio shell.

``core`` holds the protocol state (packet ids, in-flight publishes, send quota, acks) and
imports no I/O, ``framing`` the byte-level helpers around the codec, ``events`` what the core
reports; ``client.MqttSession`` runs it over asyncio with reconnects; ``tls`` builds the SSL
context from the settings; ``errors`` holds what the package raises.
"""
