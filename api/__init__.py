"""The Rasd HTTP API: REST, WebSockets, GTFS-Realtime and the operator and crew pages."""
