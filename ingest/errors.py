"""Errors of the ingest service."""

from __future__ import annotations


class IngestError(Exception):
    """Base class of the ingest service's own errors."""


class BrokerRefused(IngestError):
    """The broker refused the connection or the subscription (credentials, ACL)."""
