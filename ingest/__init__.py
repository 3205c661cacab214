"""The MQTT ingestor: validates device messages and stores them at least once, exactly once."""
