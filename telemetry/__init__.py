"""Rasd's core: the device contract, the schema and migrations, and storage reads and writes."""
