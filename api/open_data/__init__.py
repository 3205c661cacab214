"""Open data: the public feeds (definitions, shaping to CSV and JSON), the refresh of their
materialised days, and the ``python -m api opendata`` command (docs/open_data.md)."""
