"""Errors of the ingest service."""

from __future__ import annotations


class IngestError(Exception):
    """Base class of the ingest service's own errors."""


class BenchmarkError(IngestError):
    """A benchmark run could not complete (a consumer stalled or died)."""
