"""Alerts: maintenance and fleet rules with a lifecycle, routed to crews (python -m alerts)."""
