"""The canonical validators on Rasd's feeds: ``gtfs-validator`` (MobilityData's GTFS Schedule
rules) and ``gtfs-rt-validator`` (its GTFS-Realtime rules), run as their command lines with
``--fail-on-error`` (both exit 0 on errors otherwise), reports read back as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise AssertionError(f"{name} is not installed: pip install -e '.[dev]'")
    return str(path)


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """A validator's exit status and its notices (code -> (severity, count, samples))."""

    returncode: int
    notices: dict[str, tuple[str, int, list[Any]]]
    output: str

    def of(self, severity: str) -> dict[str, int]:
        """Notice codes of one severity, with their counts."""
        return {c: n for c, (s, n, _) in self.notices.items() if s == severity}


def _read(report: Path, returncode: int, output: str) -> Verdict:
    notices = json.loads(report.read_text("utf-8"))["notices"]
    return Verdict(
        returncode=returncode,
        notices={
            n["code"]: (n["severity"], n["totalNotices"], n.get("sampleNotices", [])[:3])
            for n in notices
        },
        output=output,
    )


def validate_static(feed: Path, out: Path, *, date: str) -> Verdict:
    """``gtfs-validator`` on a zip, as of ``date`` (YYYY-MM-DD)."""
    done = subprocess.run(
        [_tool("gtfs-validator"), "-i", str(feed), "-o", str(out), "-d", date, "--fail-on-error"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return _read(out / "report.json", done.returncode, done.stdout + done.stderr)


def validate_realtime(
    static: Path,
    vehicle_positions: Path | None,
    out: Path,
    *,
    at: str,
    trip_updates: Path | None = None,
    alerts: Path | None = None,
) -> Verdict:
    """``gtfs-rt-validator`` on VehiclePositions, TripUpdates and Alerts messages (each under
    its own feed role, checked together) against a static zip, its clock pinned to ``at``
    (ISO 8601)."""
    roles = [
        arg
        for flag, path in (("-vp", vehicle_positions), ("-tu", trip_updates), ("-sa", alerts))
        if path is not None
        for arg in (flag, str(path))
    ]
    done = subprocess.run(
        [
            _tool("gtfs-rt-validator"),
            "-gtfs",
            str(static),
            *roles,
            "--at",
            at,
            "--out",
            str(out),
            "--fail-on-error",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return _read(out / "report.json", done.returncode, done.stdout + done.stderr)
