"""Energy accounting (pure): the tariff file, the utility's bills, and the monthly reconciliation
of modelled, metered and billed electricity per cabinet, district and city, with its flags and
savings (docs/energy_accounting.md). Storage is ``telemetry.storage.energy_accounting``.
"""
