"""The city's GTFS: the static feed built from Rasd's network (pure records, CSV and zip bytes)
and the matching of live buses to its trip instances for GTFS-Realtime. No I/O here."""
