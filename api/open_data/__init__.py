"""Open data: the public feeds (definitions, shaping to CSV and JSON, the catalogue), their
routes and the storage reads behind them, the refresh of their materialised days, and the
``python -m api opendata`` command (docs/open_data.md)."""
