"""Work orders from maintenance alerts (pure): the state machine, which order an alert joins,
photo checks, the change events and the maintenance KPIs' arithmetic.

No I/O here: storage is ``telemetry.storage.work_orders``, HTTP ``api.routes.work_orders``.
"""
