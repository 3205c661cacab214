"""What only the benchmarks share: a private broker and drains, the city traffic, services.

Everything a test also needs (free ports, settings, service processes, the broker instance)
comes from ``tests.support`` and ``tests.broker_instance``; this package imports those, never
the other way round.
"""

from __future__ import annotations


class BenchmarkError(Exception):
    """A benchmark run could not complete (a consumer stalled or died)."""
