"""How a located complaint is linked to its asset and its evidence: pure decisions.

The I/O layer (``api.open311.linker_task``) finds the candidate assets and reads their
telemetry; these functions say what the telemetry means for the complaint (a verdict per
asset: confirms, refutes or unknown), which alert the complaint opens or joins, and whether
it must wait (a collection window or a bus's next passage still to come). Rules and radii:
``LinkRules``, filled from ``RASD_API_COMPLAINT_*`` (docs/open311.md, Linking).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

from telemetry.complaints.facts import AlertRef, Fix, Headway, Reading
from telemetry.complaints.services import Service
from telemetry.geometry import haversine_m
from telemetry.solar import elevation_at
from telemetry.topics import Fleet

CITIZEN_REPORT: Final = "citizen_report"
MISSED_COLLECTION: Final = "missed_collection"  # same kind as alerts.rules.collection


class Verdict(StrEnum):
    """What a piece of evidence says about the complaint."""

    CONFIRMS = "confirms"
    REFUTES = "refutes"
    UNKNOWN = "unknown"


class LinkState(StrEnum):
    """``complaints.link_state``."""

    PENDING = "pending"
    LINKED = "linked"
    NO_ASSET = "no_asset"
    NO_LOCATION = "no_location"


@dataclass(frozen=True, slots=True)
class LinkRules:
    """Radii, windows and thresholds of the linking rules (docs/open311.md)."""

    light_radius_m: float = 35.0
    light_max: int = 3
    light_recent_h: float = 24.0
    light_silent_s: float = 2700.0
    lamp_on_min_w: float = 2.0
    night_max_elevation_deg: float = -2.0
    day_min_elevation_deg: float = 3.0
    waste_radius_m: float = 150.0
    waste_points_max: int = 3
    waste_service_m: float = 50.0
    waste_stop_kmh: float = 5.0
    settle_s: float = 900.0
    stop_radius_m: float = 300.0
    stop_max: int = 2
    bus_passage_m: float = 80.0
    bus_before_s: float = 5400.0
    bus_after_s: float = 1800.0
    bus_late_factor: float = 1.5
    passage_gap_s: float = 300.0
    driving_radius_m: float = 150.0
    driving_before_s: float = 900.0
    driving_after_s: float = 300.0
    driving_limit_kmh: float = 60.0
    district_radius_m: float = 1000.0


@dataclass(frozen=True, slots=True)
class Evidence:
    """One ``complaint_evidence`` row (``seq`` is its position in the decision's list)."""

    kind: str
    asset_kind: str | None
    asset_key: str | None
    distance_m: float | None
    verdict: Verdict
    observed_at: datetime | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class JoinAlert:
    """Attach the complaint to this existing alert."""

    alert_id: int
    kind: str


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """Open (or, when one already covers it, join) the alert of this asset and kind."""

    kind: str
    asset_kind: Fleet
    asset_key: str
    opened_at: datetime
    summary: str
    device_id: str | None = None
    district: str | None = None
    circuit: str | None = None
    lat: float | None = None
    lon: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


AlertAction = JoinAlert | OpenAlert


@dataclass(frozen=True, slots=True)
class Decision:
    """What linking a complaint comes to."""

    state: LinkState
    evidence: tuple[Evidence, ...] = ()
    alert: AlertAction | None = None
    note: str | None = None
    retry_at: datetime | None = None  # pending: link again from then on
    district: str | None = None


def pending(until: datetime, note: str, evidence: Iterable[Evidence] = ()) -> Decision:
    """Wait until ``until`` before judging (evidence so far kept for operators)."""
    return Decision(LinkState.PENDING, tuple(evidence), note=note, retry_at=until)


def merge_details(current: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """An alert's ``current`` details with ``extra`` added; lists under the same key are united,
    not replaced (the missed points of a shift the alerts service listed stay listed)."""
    merged = dict(current)
    for key, value in extra.items():
        old = merged.get(key)
        if isinstance(old, list) and isinstance(value, list):
            merged[key] = old + [v for v in value if v not in old]
        else:
            merged[key] = value
    return merged


# -- lighting ------------------------------------------------------------------------------------

DARK_FAULTS: Final = frozenset({"lampFailure", "controlGearFailure", "relayFailure", "supplyLoss"})
DAY_FAULTS: Final = frozenset({"lampUnexpectedOn"})
POLE_FAULTS: Final = frozenset({"impactDetected", "orientationChanged", "cabinetDoorOpen"})

#: Which unresolved alerts of a light a complaint of each lighting service joins.
JOINABLE: Final[dict[str, frozenset[str]]] = {
    "streetlight_out": DARK_FAULTS
    | {
        "silent_light",
        "energy_anomaly",
        "communicationFailure",
        "circuit_outage",
        "district_outage",
        CITIZEN_REPORT,
    },
    "streetlight_day": DAY_FAULTS | {"day_burning", CITIZEN_REPORT},
    "damaged_pole": POLE_FAULTS | {CITIZEN_REPORT},
}


@dataclass(frozen=True, slots=True)
class LightFacts:
    """A candidate light: where it is and what it reported recently."""

    device_id: str
    distance_m: float
    lat: float
    lon: float
    district: str | None
    circuit: str | None
    latest: Reading | None
    readings: tuple[Reading, ...]  # recent, oldest first
    open_faults: tuple[tuple[str, datetime], ...]  # (fault, since)


def _fault(light: LightFacts, names: frozenset[str]) -> tuple[str, datetime] | None:
    for name, since in light.open_faults:
        if name in names:
            return name, since
    return None


def _readings(light: LightFacts) -> list[Reading]:
    seen = {r.time: r for r in light.readings}
    if light.latest is not None:
        seen[light.latest.time] = light.latest
    return [seen[t] for t in sorted(seen)]


def _newest(light: LightFacts, at: datetime, keep: Any) -> Reading | None:
    for reading in reversed(_readings(light)):
        if reading.time <= at and keep(elevation_at(reading.time, light.lat, light.lon)):
            return reading
    return None


def _light_row(light: LightFacts, verdict: Verdict, why: str, when: datetime | None) -> Evidence:
    details: dict[str, Any] = {
        "reason": why,
        "district": light.district,
        "circuit": light.circuit,
        "open_faults": [{"fault": f, "since": s.isoformat()} for f, s in light.open_faults],
        "readings": [
            {"time": r.time.isoformat(), "lamp_on": r.lamp_on, "power_w": r.power_w}
            for r in _readings(light)[-6:]
        ],
    }
    return Evidence(
        "nearest_light",
        Fleet.LIGHT.value,
        light.device_id,
        round(light.distance_m, 1),
        verdict,
        when,
        details,
    )


def light_evidence(service: Service, light: LightFacts, at: datetime, rules: LinkRules) -> Evidence:
    """What the light's faults and readings say about a lighting complaint made at ``at``."""
    latest = light.latest
    silent = latest is None or (at - latest.time).total_seconds() > rules.light_silent_s
    if service.code == "damaged_pole":
        fault = _fault(light, POLE_FAULTS)
        if fault is not None:
            return _light_row(light, Verdict.CONFIRMS, f"{fault[0]} active", fault[1])
        return _light_row(light, Verdict.UNKNOWN, "damage is not visible in telemetry", None)
    if service.code == "streetlight_day":
        fault = _fault(light, DAY_FAULTS)
        if fault is not None:
            return _light_row(light, Verdict.CONFIRMS, f"{fault[0]} active", fault[1])
        day = _newest(light, at, lambda e: e >= rules.day_min_elevation_deg)
        if day is None:
            return _light_row(light, Verdict.UNKNOWN, "no daylight reading recently", None)
        if day.lit(rules.lamp_on_min_w):
            return _light_row(light, Verdict.CONFIRMS, "lit in daylight", day.time)
        return _light_row(light, Verdict.REFUTES, "off in daylight", day.time)
    fault = _fault(light, DARK_FAULTS)
    if fault is not None:
        return _light_row(light, Verdict.CONFIRMS, f"{fault[0]} active", fault[1])
    night = _newest(light, at, lambda e: e <= rules.night_max_elevation_deg)
    if night is not None and not silent:
        if night.lit(rules.lamp_on_min_w):
            return _light_row(light, Verdict.REFUTES, "lit at night", night.time)
        return _light_row(light, Verdict.CONFIRMS, "dark at night", night.time)
    if silent:
        since = latest.time if latest is not None else None
        return _light_row(light, Verdict.UNKNOWN, "silent: no recent reading", since)
    return _light_row(light, Verdict.UNKNOWN, "no night reading recently", None)


def lighting_decision(
    service: Service,
    lights: Sequence[LightFacts],
    alerts: Mapping[str, Sequence[AlertRef]],
    at: datetime,
    rules: LinkRules,
) -> Decision:
    """Evidence from the nearest lights (nearest first) and the maintenance alert to join.

    The complaint concerns the nearest light whose telemetry confirms it, else the nearest:
    it joins that light's unresolved alert of a matching kind (its own fault first, then an
    outage listing it, then an earlier citizen report), else opens a ``citizen_report``.
    """
    if not lights:
        return Decision(
            LinkState.NO_ASSET, note=f"no streetlight within {rules.light_radius_m:g} m"
        )
    evidence = tuple(light_evidence(service, light, at, rules) for light in lights)
    chosen = next(
        (light for light, e in zip(lights, evidence, strict=True) if e.verdict is Verdict.CONFIRMS),
        lights[0],
    )
    joinable = JOINABLE.get(service.code, frozenset({CITIZEN_REPORT}))
    candidates = [a for a in alerts.get(chosen.device_id, ()) if a.kind in joinable]

    def rank(a: AlertRef) -> tuple[int, int]:
        own = a.device_id == chosen.device_id and not a.grouped
        return (0 if own and a.kind != CITIZEN_REPORT else 1 if a.grouped else 2, a.alert_id)

    action: AlertAction
    if candidates:
        best = min(candidates, key=rank)
        action = JoinAlert(best.alert_id, best.kind)
    else:
        verdict = evidence[lights.index(chosen)].verdict
        action = OpenAlert(
            kind=CITIZEN_REPORT,
            asset_kind=Fleet.LIGHT,
            asset_key=chosen.device_id,
            opened_at=at,
            summary=f"Citizen report: {service.name.lower()} at {chosen.device_id} "
            f"(telemetry {verdict.value})",
            device_id=chosen.device_id,
            district=chosen.district,
            circuit=chosen.circuit,
            lat=chosen.lat,
            lon=chosen.lon,
            details={"service_code": service.code, "verdict": verdict.value},
        )
    return Decision(LinkState.LINKED, evidence, action, district=chosen.district)


# -- waste ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundPoint:
    """A collection point near the complaint, with its round's shift and trucks."""

    round: str
    seq: int
    label: str | None
    lat: float
    lon: float
    radius_m: float
    distance_m: float
    shift_start: time
    shift_end: time
    timezone: str
    trucks: tuple[str, ...]  # devices whose round this is (route = round, or id = round)


@dataclass(frozen=True, slots=True)
class Shift:
    """One night of a round, in UTC."""

    day: date  # local date the shift starts
    start: datetime
    end: datetime


def latest_shift(start_local: time, end_local: time, timezone: str, at: datetime) -> Shift:
    """The last shift of a round that started at or before ``at`` ("that night's")."""
    zone = ZoneInfo(timezone)
    local = at.astimezone(zone).date()
    for day in (local, local - timedelta(days=1), local - timedelta(days=2)):
        start = datetime.combine(day, start_local, zone)
        if start <= at:
            end_day = day if end_local > start_local else day + timedelta(days=1)
            return Shift(day, start, datetime.combine(end_day, end_local, zone))
    raise AssertionError("a shift starts every day")  # pragma: no cover


def _served(point: RoundPoint, fixes: Iterable[Fix], shift: Shift, rules: LinkRules) -> Fix | None:
    """The first stopped fix of one of the round's trucks at the point during the shift."""
    best: Fix | None = None
    for fix in fixes:
        if fix.device_id not in point.trucks or not shift.start <= fix.time < shift.end:
            continue
        if fix.speed_kmh is not None and fix.speed_kmh > rules.waste_stop_kmh:
            continue
        if haversine_m(point.lat, point.lon, fix.lat, fix.lon) > rules.waste_service_m:
            continue
        if best is None or fix.time < best.time:
            best = fix
    return best


def waste_decision(
    service: Service,
    points: Sequence[RoundPoint],
    fixes: Sequence[Fix],
    reported: Mapping[str, int],
    at: datetime,
    now: datetime,
    rules: LinkRules,
    *,
    district: str | None = None,
) -> Decision:
    """Which round covers the place and, for a missed collection, proof of service from GPS.

    ``points`` are the collection points within ``waste_radius_m``, nearest first; ``fixes``
    the positions of their rounds' trucks near them during the shifts; ``reported`` how many
    fixes each truck stored during the shift (0: its tracker was silent).
    """
    if not points:
        return Decision(
            LinkState.NO_ASSET, note=f"no collection point within {rules.waste_radius_m:g} m"
        )
    shifts = {p.round: latest_shift(p.shift_start, p.shift_end, p.timezone, at) for p in points}
    rows: list[Evidence] = []
    for p in points:
        shift = shifts[p.round]
        rows.append(
            Evidence(
                "collection_point",
                "round",
                p.round,
                round(p.distance_m, 1),
                Verdict.UNKNOWN,
                shift.start,
                {
                    "seq": p.seq,
                    "label": p.label,
                    "trucks": list(p.trucks),
                    "shift_start": shift.start.isoformat(),
                    "shift_end": shift.end.isoformat(),
                },
            )
        )
    if service.code != MISSED_COLLECTION:
        return Decision(LinkState.LINKED, tuple(rows), district=district)
    last_end = max(s.end for s in shifts.values())
    settle = timedelta(seconds=rules.settle_s)
    if now < last_end + settle:
        return pending(last_end + settle, "collection window not over yet", rows)
    misses: list[tuple[RoundPoint, Shift]] = []
    for p in points:
        shift = shifts[p.round]
        served = _served(p, fixes, shift, rules)
        if served is not None:
            rows.append(
                Evidence(
                    "truck_passage",
                    Fleet.TRUCK.value,
                    served.device_id,
                    round(haversine_m(p.lat, p.lon, served.lat, served.lon), 1),
                    Verdict.REFUTES,
                    served.time,
                    {
                        "round": p.round,
                        "seq": p.seq,
                        "label": p.label,
                        "speed_kmh": served.speed_kmh,
                    },
                )
            )
            continue
        heard = {t: reported.get(t, 0) for t in p.trucks}
        silent = bool(p.trucks) and not any(heard.values())
        rows.append(
            Evidence(
                "no_service",
                "round",
                p.round,
                round(p.distance_m, 1),
                Verdict.UNKNOWN if silent or not p.trucks else Verdict.CONFIRMS,
                shift.end,
                {
                    "seq": p.seq,
                    "label": p.label,
                    "trucks": list(p.trucks),
                    "fixes_in_shift": heard,
                    "reason": "no GPS record from the round's trucks during the shift"
                    if silent
                    else f"no truck stopped within {rules.waste_service_m:g} m during the shift",
                },
            )
        )
        misses.append((p, shift))
    if len(misses) < len(points):
        return Decision(LinkState.LINKED, tuple(rows), district=district)
    point, shift = misses[0]
    truck = point.trucks[0] if point.trucks else point.round
    label = point.label or str(point.seq)
    action = OpenAlert(
        kind=MISSED_COLLECTION,
        asset_kind=Fleet.TRUCK,
        asset_key=truck,
        opened_at=shift.end,
        summary=f"{truck} missed {label} of round {point.round} ({shift.day.isoformat()}), "
        "reported by a citizen",
        device_id=truck,
        district=district,
        lat=point.lat,
        lon=point.lon,
        details={f"shift {shift.day.isoformat()}": [label], "round": point.round},
    )
    return Decision(LinkState.LINKED, tuple(rows), action, district=district)


# -- buses ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StopFacts:
    """A bus stop near the complaint and the lines serving it."""

    stop_id: str
    name: str
    lat: float
    lon: float
    distance_m: float
    routes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Passage:
    """A bus passing a stop: the time of its closest fix."""

    device_id: str
    time: datetime
    distance_m: float


def passages(stop: StopFacts, fixes: Iterable[Fix], rules: LinkRules) -> list[Passage]:
    """Fixes near the stop grouped into passages (one per vehicle visit), in time order."""
    near = sorted(
        (
            (f.device_id, f.time, haversine_m(stop.lat, stop.lon, f.lat, f.lon))
            for f in fixes
            if haversine_m(stop.lat, stop.lon, f.lat, f.lon) <= rules.bus_passage_m
        ),
        key=lambda t: (t[0], t[1]),
    )
    out: list[Passage] = []
    current: Passage | None = None
    last_seen: datetime | None = None
    for device, when, dist in near:
        gap = rules.passage_gap_s
        new_visit = (
            current is None
            or current.device_id != device
            or last_seen is None
            or (when - last_seen).total_seconds() > gap
        )
        if new_visit:
            if current is not None:
                out.append(current)
            current = Passage(device, when, dist)
        elif current is not None and dist < current.distance_m:
            current = Passage(device, when, dist)
        last_seen = when
    if current is not None:
        out.append(current)
    return sorted(out, key=lambda p: (p.time, p.device_id))


def scheduled_headway(rows: Sequence[Headway], route: str, at: datetime) -> int | None:
    """The line's headway at ``at`` (local time of its schedule), or None outside service."""
    for row in rows:
        if row.route != route:
            continue
        local = at.astimezone(ZoneInfo(row.timezone)).time()
        inside = (
            row.start_local <= local < row.end_local
            if row.start_local < row.end_local
            else local >= row.start_local or local < row.end_local
        )
        if inside:
            return row.headway_s
    return None


def _bus_row(
    stop: StopFacts,
    route: str,
    seen: Sequence[Passage],
    schedule: Sequence[Headway],
    at: datetime,
    rules: LinkRules,
) -> Evidence:
    before = [p for p in seen if p.time <= at]
    after = [p for p in seen if p.time > at]
    window_start = at - timedelta(seconds=rules.bus_before_s)
    window_end = at + timedelta(seconds=rules.bus_after_s)
    last = before[-1].time if before else window_start
    following = after[0].time if after else window_end
    gap_s = (following - last).total_seconds()
    times = [p.time for p in seen]
    gaps = [round((b - a).total_seconds()) for a, b in itertools.pairwise(times)]
    headway = scheduled_headway(schedule, route, at)
    details: dict[str, Any] = {
        "route": route,
        "stop": stop.name,
        "scheduled_headway_s": headway,
        "gap_at_complaint_s": round(gap_s),
        "gap_censored": not before or not after,  # the gap runs past the observed window
        "observed_headways_s": gaps,
        "passages": [{"vehicle": p.device_id, "at": p.time.isoformat()} for p in seen[-20:]],
    }
    if not any(r.route == route for r in schedule):
        verdict = Verdict.UNKNOWN
        details["reason"] = "no timetable for this line"
    elif headway is None:
        verdict = Verdict.REFUTES
        details["reason"] = "no scheduled service at that time"
    elif gap_s > headway * rules.bus_late_factor:
        verdict = Verdict.CONFIRMS
        details["reason"] = (
            f"waited {round(gap_s / 60)} min for a {round(headway / 60)} min headway"
        )
    else:
        verdict = Verdict.REFUTES
        details["reason"] = f"buses passed within {round(gap_s / 60)} min"
    return Evidence(
        "bus_passages",
        "stop",
        stop.stop_id,
        round(stop.distance_m, 1),
        verdict,
        before[-1].time if before else None,
        details,
    )


def bus_decision(
    stops: Sequence[StopFacts],
    fixes: Mapping[str, Sequence[Fix]],
    schedule: Sequence[Headway],
    at: datetime,
    now: datetime,
    rules: LinkRules,
    *,
    district: str | None = None,
) -> Decision:
    """Each nearby stop's lines: observed passages around ``at`` against the timetable.

    ``fixes`` are the positions near each stop (by stop id) of the buses of its lines during
    ``[at - bus_before_s, at + bus_after_s]``. Judged once that window is over.
    """
    if not stops:
        return Decision(LinkState.NO_ASSET, note=f"no bus stop within {rules.stop_radius_m:g} m")
    done = at + timedelta(seconds=rules.bus_after_s)
    if now < done:
        return pending(done, "waiting to see the next bus at the stop")
    rows: list[Evidence] = []
    for stop in stops:
        near = fixes.get(stop.stop_id, ())
        for route in stop.routes:
            line = [f for f in near if f.route == route]
            rows.append(_bus_row(stop, route, passages(stop, line, rules), schedule, at, rules))
    return Decision(LinkState.LINKED, tuple(rows), district=district)


def driving_decision(
    lat: float,
    lon: float,
    fixes: Sequence[Fix],
    fleets: Mapping[str, Fleet],
    at: datetime,
    now: datetime,
    rules: LinkRules,
    *,
    district: str | None = None,
) -> Decision:
    """The speeds vehicles recorded within ``driving_radius_m`` around the complaint's time."""
    done = at + timedelta(seconds=rules.driving_after_s + rules.settle_s)
    if now < done:
        return pending(done, "waiting for the vehicles' GPS records")
    fastest: dict[str, tuple[Fix, float]] = {}
    for fix in fixes:
        dist = haversine_m(lat, lon, fix.lat, fix.lon)
        if dist > rules.driving_radius_m or fix.speed_kmh is None:
            continue
        best = fastest.get(fix.device_id)
        if best is None or fix.speed_kmh > (best[0].speed_kmh or 0.0):
            fastest[fix.device_id] = (fix, dist)
    if not fastest:
        return Decision(
            LinkState.NO_ASSET,
            note=f"no bus or truck within {rules.driving_radius_m:g} m around that time",
            district=district,
        )
    ranked = sorted(fastest.values(), key=lambda t: (-(t[0].speed_kmh or 0.0), t[0].device_id))
    rows = tuple(
        Evidence(
            "vehicle_speed",
            fleets.get(fix.device_id, Fleet.BUS).value,
            fix.device_id,
            round(dist, 1),
            Verdict.CONFIRMS
            if (fix.speed_kmh or 0.0) > rules.driving_limit_kmh
            else Verdict.REFUTES,
            fix.time,
            {"speed_kmh": fix.speed_kmh, "limit_kmh": rules.driving_limit_kmh, "route": fix.route},
        )
        for fix, dist in ranked[:10]
    )
    return Decision(LinkState.LINKED, rows, district=district)
