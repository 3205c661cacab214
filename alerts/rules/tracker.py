"""Faulty tracker: (0, 0) fixes and impossible jumps between consecutive fixes."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from alerts.catalog import Catalog
from alerts.config import VehicleThresholds
from alerts.effects import AlertKey
from alerts.lifecycle import Lifecycle
from alerts.observations import NullFix, Position, iso
from telemetry.geometry import haversine_m
from telemetry.topics import Fleet

KIND = "faulty_tracker"


def impossible_jump(
    distance_m: float, seconds: float, max_speed_kmh: float, min_jump_m: float
) -> bool:
    """A move no vehicle makes: at least ``min_jump_m`` and faster than ``max_speed_kmh``."""
    if distance_m < min_jump_m:
        return False
    return seconds <= 0 or distance_m / seconds * 3.6 > max_speed_kmh


@dataclass(slots=True)
class _Track:
    ref: tuple[float, float, float] | None = None  # last good fix: (ts, lat, lon)
    suspects: list[tuple[float, float, float]] = field(default_factory=list)
    bad: deque[float] = field(default_factory=deque)
    last_bad: float | None = None


class TrackerRule:
    """Counts bad fixes in a sliding window; clears after a long run of good fixes."""

    def __init__(self, life: Lifecycle, catalog: Catalog, thresholds: VehicleThresholds) -> None:
        self._life = life
        self._catalog = catalog
        self._t = thresholds
        self._tracks: dict[str, _Track] = {}

    def null_fix(self, fix: NullFix, fleet: Fleet) -> None:
        """A (0, 0) fix."""
        track = self._tracks.setdefault(fix.device_id, _Track())
        self._bad(fix.device_id, track, fix.ts, fleet, "(0,0) fix", None)

    def observe(self, position: Position, fleet: Fleet) -> bool:
        """A fix in device-time order: good (True) unless it jumps impossibly from the last."""
        t = self._t
        device = position.device_id
        track = self._tracks.setdefault(device, _Track())
        here = (position.ts, position.lat, position.lon)
        ref = track.ref
        if ref is not None:
            distance = haversine_m(ref[1], ref[2], position.lat, position.lon)
            seconds = position.ts - ref[0]
            if impossible_jump(distance, seconds, t.tracker_max_speed_kmh, t.tracker_min_jump_m):
                self._suspect(track, here)
                why = f"jump of {distance:.0f} m in {seconds:.0f} s"
                self._bad(device, track, position.ts, fleet, why, position)
                return False
        track.ref = here
        track.suspects.clear()
        if track.last_bad is not None and position.ts - track.last_bad >= t.tracker_clear_after_s:
            self._life.fall(AlertKey(KIND, device), position.ts, "good fixes only for a while")
        return True

    def _suspect(self, track: _Track, here: tuple[float, float, float]) -> None:
        t = self._t
        if track.suspects:
            last = track.suspects[-1]
            if impossible_jump(
                haversine_m(last[1], last[2], here[1], here[2]),
                here[0] - last[0],
                t.tracker_max_speed_kmh,
                t.tracker_min_jump_m,
            ):
                track.suspects.clear()  # suspects disagree with each other: just noise
        track.suspects.append(here)
        if len(track.suspects) >= t.tracker_relocate_after:
            track.ref = here  # consistent new place: the tracker (or vehicle) was moved
            track.suspects.clear()

    def _bad(
        self, device: str, track: _Track, ts: float, fleet: Fleet, why: str, fix: Position | None
    ) -> None:
        t = self._t
        track.bad.append(ts)
        while track.bad and track.bad[0] < ts - t.tracker_window_s:
            track.bad.popleft()
        track.last_bad = ts if track.last_bad is None else max(track.last_bad, ts)
        if len(track.bad) < t.tracker_bad_fixes:
            return
        details: dict[str, object] = {"reason": why, "bad_fixes": len(track.bad), "at": iso(ts)}
        if fix is not None:
            details |= {"lat": fix.lat, "lon": fix.lon}
        self._life.rise(
            AlertKey(KIND, device),
            ts,
            self._catalog.subject(device, fleet),
            f"{device} tracker faulty: {why}",
            details,
        )
