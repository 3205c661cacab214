"""Linking complaints to assets and evidence in the API: the I/O around the pure rules of
``telemetry.complaints.matching``.

A ``Linker`` holds the spatial index of the city's lights (rebuilt when the registry of lights
changes), reads the telemetry a complaint's rules ask for, and writes the decision in the
caller's transaction: evidence rows, the link state, and the alert the complaint opens or
joins (through ``telemetry.storage.alerts``, so the change is in the alert's history and
NOTIFYed like any other; its severity, SLA and crew come from the alerts' thresholds).
Synchronous, like the rest of the storage layer: the API calls it from worker threads, and
``api.open311.desk`` runs its sweep.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import psycopg
import structlog

from alerts.config import Thresholds
from telemetry.alert_events import Severity
from telemetry.alert_records import NewAlert
from telemetry.complaints.facts import Fix
from telemetry.complaints.matching import (
    Decision,
    Evidence,
    JoinAlert,
    LightFacts,
    LinkRules,
    LinkState,
    OpenAlert,
    RoundPoint,
    StopFacts,
    bus_decision,
    driving_decision,
    latest_shift,
    lighting_decision,
    merge_details,
    pending,
    waste_decision,
)
from telemetry.complaints.records import ComplaintRow, EvidenceRow, LinkedAlert
from telemetry.complaints.services import Domain, Service, service
from telemetry.complaints.spatial_index import LightCatalog, box
from telemetry.geometry import haversine_m
from telemetry.storage import alerts as alert_store
from telemetry.storage import complaints as store
from telemetry.storage import work_orders
from telemetry.storage.devices import fleets_of

log = structlog.get_logger("alerts.complaints")

ACTOR: Final = "rasd-complaints"
#: Errors of one complaint's linking that leave it pending (retried later) instead of failing
#: the caller: bad data in a row, a constraint, a rule's ValueError.
LINK_ERRORS: Final = (psycopg.DataError, psycopg.IntegrityError, ValueError, KeyError)


@dataclass(frozen=True, slots=True)
class CitizenAlertPolicy:
    """Severity and SLA of the ``citizen_report`` alerts complaints open."""

    severity: Severity = Severity.MEDIUM
    sla_hours: float | None = 72.0


@dataclass(frozen=True, slots=True)
class _Context:
    """A complaint's point and time, when it is decided, and the district near the point."""

    lat: float
    lon: float
    at: datetime
    now: datetime
    district: str | None


@dataclass(slots=True)
class SweepReport:
    """What one sweep over due pending complaints did."""

    linked: int = 0
    pending: int = 0
    failed: int = 0
    states: dict[str, int] = field(default_factory=dict)


class Linker:
    """Links complaints; one per process, shared by request threads and the sweeper."""

    def __init__(
        self,
        rules: LinkRules,
        thresholds: Thresholds,
        *,
        citizen_policy: CitizenAlertPolicy | None = None,
        retry_s: float = 60.0,
    ) -> None:
        self.rules = rules
        self.thresholds = thresholds
        self.citizen_policy = citizen_policy or CitizenAlertPolicy()
        self.retry_s = retry_s
        self.lights: LightCatalog | None = None
        self._version: tuple[int, datetime | None] | None = None
        self._refresh_lock = threading.Lock()

    # -- the lights' index -------------------------------------------------------------------------

    def refresh(self, conn: psycopg.Connection) -> bool:
        """Rebuild the lights' index if the registry of lights changed; True when rebuilt."""
        with self._refresh_lock:
            version = store.lights_version(conn)
            if version == self._version and self.lights is not None:
                return False
            self.lights = LightCatalog(store.light_rows(conn))
            self._version = version
            log.info("light_index_built", lights=len(self.lights.rows))
            return True

    # -- deciding ----------------------------------------------------------------------------------

    def district_near(self, lat: float, lon: float) -> str | None:
        """The district of the nearest light within ``district_radius_m``."""
        catalog = self.lights
        if catalog is None:
            return None
        hit = catalog.index.nearest(lat, lon, self.rules.district_radius_m)
        return None if hit is None else catalog.rows[hit.index].district

    def decide(self, conn: psycopg.Connection, complaint: ComplaintRow, now: datetime) -> Decision:
        """What the telemetry says about a complaint (reads only)."""
        if complaint.lat is None or complaint.lon is None:
            return Decision(LinkState.NO_LOCATION, note="no coordinates")
        svc = service(complaint.service_code)
        if svc is None:
            return Decision(LinkState.NO_ASSET, note=f"unknown service {complaint.service_code}")
        if self.lights is None:
            return pending(now + timedelta(seconds=self.retry_s), "lights index not loaded yet")
        lat, lon, at = complaint.lat, complaint.lon, complaint.requested_at
        if svc.domain is Domain.LIGHTING:
            return self._lighting(conn, svc, lat, lon, at)
        ctx = _Context(lat, lon, at, now, self.district_near(lat, lon))
        if svc.domain is Domain.WASTE:
            return self._waste(conn, svc, ctx)
        if svc.code == "dangerous_driving":
            return self._driving(conn, ctx)
        return self._buses(conn, ctx)

    def _lighting(
        self, conn: psycopg.Connection, svc: Service, lat: float, lon: float, at: datetime
    ) -> Decision:
        catalog = self.lights
        assert catalog is not None
        rules = self.rules
        hits = catalog.index.within(lat, lon, rules.light_radius_m, rules.light_max)
        rows = [catalog.rows[h.index] for h in hits]
        ids = [r.device_id for r in rows]
        telemetry = store.light_telemetry(conn, ids, at - timedelta(hours=rules.light_recent_h), at)
        facts = [
            LightFacts(
                r.device_id,
                h.distance_m,
                r.lat,
                r.lon,
                r.district,
                r.circuit,
                telemetry[r.device_id].latest,
                telemetry[r.device_id].readings,
                telemetry[r.device_id].faults,
            )
            for r, h in zip(rows, hits, strict=True)
        ]
        decision = lighting_decision(svc, facts, store.light_alerts(conn, ids), at, rules)
        if decision.district is None:
            return _with_district(decision, self.district_near(lat, lon))
        return decision

    def _waste(self, conn: psycopg.Connection, svc: Service, ctx: _Context) -> Decision:
        rules = self.rules
        near: list[RoundPoint] = []
        for p in store.collection_points_in(conn, box(ctx.lat, ctx.lon, rules.waste_radius_m)):
            distance = haversine_m(ctx.lat, ctx.lon, p.lat, p.lon)
            if distance <= rules.waste_radius_m:
                near.append(
                    RoundPoint(
                        p.round,
                        p.seq,
                        p.label,
                        p.lat,
                        p.lon,
                        p.radius_m,
                        distance,
                        p.shift_start,
                        p.shift_end,
                        p.timezone,
                        tuple(p.trucks),
                    )
                )
        near.sort(key=lambda p: (p.distance_m, p.round, p.seq))
        points = near[: rules.waste_points_max]
        fixes: list[Fix] = []
        reported: dict[str, int] = {}
        settle = timedelta(seconds=rules.settle_s)
        shifts = [latest_shift(p.shift_start, p.shift_end, p.timezone, ctx.at) for p in points]
        if svc.code == "missed_collection" and all(ctx.now >= s.end + settle for s in shifts):
            counted: set[tuple[str, datetime]] = set()
            for point, shift in zip(points, shifts, strict=True):
                area = box(point.lat, point.lon, rules.waste_service_m)
                fixes.extend(
                    store.vehicle_fixes(conn, shift.start, shift.end, area, device_ids=point.trucks)
                )
                trucks = [t for t in point.trucks if (t, shift.start) not in counted]
                counted.update((t, shift.start) for t in trucks)
                for truck, count in store.fix_counts(conn, trucks, shift.start, shift.end).items():
                    reported[truck] = reported.get(truck, 0) + count
        return waste_decision(
            svc, points, fixes, reported, ctx.at, ctx.now, rules, district=ctx.district
        )

    def _buses(self, conn: psycopg.Connection, ctx: _Context) -> Decision:
        rules = self.rules
        stops = sorted(
            (
                StopFacts(s.stop_id, s.name, s.lat, s.lon, d, tuple(s.routes))
                for s in store.stops_in(conn, box(ctx.lat, ctx.lon, rules.stop_radius_m))
                if (d := haversine_m(ctx.lat, ctx.lon, s.lat, s.lon)) <= rules.stop_radius_m
                and s.routes
            ),
            key=lambda s: (s.distance_m, s.stop_id),
        )[: rules.stop_max]
        done = ctx.at + timedelta(seconds=rules.bus_after_s)
        fixes: dict[str, list[Fix]] = {}
        schedule = []
        if stops and ctx.now >= done:
            routes = sorted({r for s in stops for r in s.routes})
            schedule = store.schedules(conn, routes)
            buses = store.buses_of(conn, routes)
            start = ctx.at - timedelta(seconds=rules.bus_before_s)
            for s in stops:
                area = box(s.lat, s.lon, rules.bus_passage_m)
                fixes[s.stop_id] = store.vehicle_fixes(conn, start, done, area, device_ids=buses)
        return bus_decision(stops, fixes, schedule, ctx.at, ctx.now, rules, district=ctx.district)

    def _driving(self, conn: psycopg.Connection, ctx: _Context) -> Decision:
        rules = self.rules
        start = ctx.at - timedelta(seconds=rules.driving_before_s)
        end = ctx.at + timedelta(seconds=rules.driving_after_s)
        fixes: list[Fix] = []
        if ctx.now >= end + timedelta(seconds=rules.settle_s):
            area = box(ctx.lat, ctx.lon, rules.driving_radius_m)
            fixes = store.vehicle_fixes(conn, start, end, area, fleets=("bus", "truck"))
        fleets = fleets_of(conn, {f.device_id for f in fixes})
        return driving_decision(
            ctx.lat, ctx.lon, fixes, fleets, ctx.at, ctx.now, rules, district=ctx.district
        )

    # -- writing -----------------------------------------------------------------------------------

    def link(self, conn: psycopg.Connection, complaint: ComplaintRow, now: datetime) -> Decision:
        """Decide and record, in one transaction (a savepoint inside the caller's)."""
        with conn.transaction():
            decision = self.decide(conn, complaint, now)
            self.apply(conn, complaint, decision)
        return decision

    def apply(self, conn: psycopg.Connection, complaint: ComplaintRow, decision: Decision) -> None:
        """Write a decision: evidence, link state, and the alert opened or joined."""
        target = self._alert(conn, decision, complaint) if decision.alert is not None else None
        store.save_link(
            conn,
            complaint.complaint_id,
            decision.state.value,
            [_row(e) for e in decision.evidence],
            alert_id=None if target is None else target.alert_id,
            note=decision.note,
            retry_at=decision.retry_at,
            district=decision.district,
        )
        if target is None:
            return
        if target.state == "resolved":
            store.close_complaint(
                conn, complaint.complaint_id, "Already resolved by the municipal services."
            )
            return
        extra = dict(decision.alert.details) if isinstance(decision.alert, OpenAlert) else {}
        extra["complaints"] = store.complaints_of_alert(conn, target.alert_id)
        merged = merge_details(target.details, extra)
        if merged != target.details:
            alert_store.update_details(
                conn, target.asset_key, target.kind, merged, target.summary, actor=ACTOR
            )

    def _alert(
        self, conn: psycopg.Connection, decision: Decision, complaint: ComplaintRow
    ) -> LinkedAlert | None:
        action = decision.alert
        if isinstance(action, JoinAlert):
            return store.alert_state(conn, action.alert_id)
        assert isinstance(action, OpenAlert)
        if action.kind == "citizen_report":
            severity, sla = self.citizen_policy.severity, self.citizen_policy.sla_hours
        else:
            policy = self.thresholds.policy(action.kind)
            severity, sla = policy.severity, policy.sla_hours
        district = action.district or decision.district
        opened = alert_store.open_alert(
            conn,
            NewAlert(
                kind=action.kind,
                asset_kind=action.asset_kind,
                asset_key=action.asset_key,
                opened_at=action.opened_at,
                severity=severity,
                device_id=action.device_id,
                circuit=action.circuit,
                district=district,
                crew=self.thresholds.crew(district, action.asset_kind.value),
                summary=action.summary,
                details={**action.details, "complaints": [complaint.complaint_id]},
                lat=action.lat,
                lon=action.lon,
                sla_due_at=None if sla is None else action.opened_at + timedelta(hours=sla),
            ),
            actor=ACTOR,
        )
        if opened is not None:
            # A citizen's dark light is a maintenance fault too: its order opens with it.
            work_orders.open_for_alert(conn, opened, actor=ACTOR)
            return store.alert_state(conn, opened.alert_id)
        # One of this asset and kind covers it already (the alerts service found the missed
        # collection too, or another citizen reported the same light): join it.
        return store.covering_alert(conn, action.asset_key, action.kind, action.opened_at)

    # -- sweeping ----------------------------------------------------------------------------------

    def sweep(
        self,
        conn: psycopg.Connection,
        now: Callable[[], datetime],
        *,
        limit: int = 200,
    ) -> SweepReport:
        """Link due pending complaints, one transaction each; several processes may sweep at
        once (rows are claimed with SKIP LOCKED). ``conn`` must be in autocommit mode."""
        report = SweepReport()
        for _ in range(limit):
            at = now()
            with conn.transaction():
                complaint = store.claim_due(conn, at)
                if complaint is None:
                    break
                try:
                    decision = self.link(conn, complaint, at)
                except LINK_ERRORS as exc:
                    # The savepoint rolled back; keep the complaint pending and retry later.
                    attempts = store.defer_link(
                        conn,
                        complaint.complaint_id,
                        at + timedelta(seconds=min(86_400.0, self.retry_s * 2**4)),
                        f"linking failed: {type(exc).__name__}: {exc}",
                    )
                    log.warning(
                        "complaint_link_failed",
                        complaint_id=complaint.complaint_id,
                        attempts=attempts,
                        error=str(exc),
                    )
                    report.failed += 1
                    continue
            state = decision.state.value
            report.states[state] = report.states.get(state, 0) + 1
            if decision.state is LinkState.PENDING:
                report.pending += 1
            else:
                report.linked += 1
        return report


def _with_district(decision: Decision, district: str | None) -> Decision:
    return Decision(
        decision.state,
        decision.evidence,
        decision.alert,
        decision.note,
        decision.retry_at,
        district,
    )


def _row(e: Evidence) -> EvidenceRow:
    return EvidenceRow(
        kind=e.kind,
        asset_kind=e.asset_kind,
        asset_key=e.asset_key,
        distance_m=e.distance_m,
        verdict=e.verdict.value,
        observed_at=e.observed_at,
        details=e.details,
    )
