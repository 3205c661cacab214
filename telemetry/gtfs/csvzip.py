"""GTFS files as bytes: CSV with a header from the record's fields, and a deterministic zip
(same feed, same bytes: fixed member order and timestamps)."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import zipfile
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Final

_EPOCH: Final = (1980, 1, 1, 0, 0, 0)  # the oldest time a zip member can carry


def gtfs_time(seconds: int) -> str:
    """``27000`` -> ``"07:30:00"``; hours go past 24 after midnight of the service day."""
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


_COORDINATES: Final = frozenset({"stop_lat", "stop_lon", "shape_pt_lat", "shape_pt_lon"})
_TIMES: Final = frozenset({"arrival_time", "departure_time", "start_time", "end_time"})


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    if isinstance(value, float):
        # Coordinates to ~0.1 m, distances to the centimetre.
        text = f"{value:.6f}" if name in _COORDINATES else f"{value:.2f}"
        return text.rstrip("0").rstrip(".") if name in _COORDINATES else text
    if isinstance(value, int) and name in _TIMES:
        return gtfs_time(value)
    return str(value)


def table_bytes(records: Sequence[Any], record_type: type[Any]) -> bytes:
    """One GTFS file: header row from ``record_type``'s fields, then one row per record."""
    names = [f.name for f in dataclasses.fields(record_type)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(names)
    for record in records:
        writer.writerow(_cell(n, getattr(record, n)) for n in names)
    return out.getvalue().encode("utf-8")


def digest(files: Mapping[str, bytes]) -> str:
    """A short content hash of some files (order-independent), for ``feed_version``."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode())
        h.update(hashlib.sha256(files[name]).digest())
    return h.hexdigest()[:16]


def zip_bytes(files: Mapping[str, bytes]) -> bytes:
    """The files in one zip archive, by name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])
    return buffer.getvalue()
