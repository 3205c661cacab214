"""Device gateways: Teltonika, OsmAnd, OwnTracks, Traccar forwarding and LoRaWAN network servers
translated into contract v1 and published to the broker (docs/gateways.md).

The decoders are pure (``telemetry.protocols``); this package holds their asyncio servers and the
one rule they share: a device is answered only once the broker has confirmed what it sent.
"""
