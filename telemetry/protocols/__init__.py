"""Device protocols other than contract v1, pure (bytes in, contract reports and replies out).

Gateways (``ingest.gateways``) put these under asyncio servers; simulators use the encoders to
speak like the devices cities buy.
"""
