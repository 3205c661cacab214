"""API renderings of alerts and the district scope of alert queries (pure)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from api.auth import Principal
from api.schemas import AlertOut
from telemetry.alert_events import AlertState
from telemetry.alert_records import Alert

UNRESOLVED = (AlertState.OPEN, AlertState.ACKNOWLEDGED)
_OUT_FIELDS = frozenset(AlertOut.model_fields)


def alert_out(alert: Alert) -> AlertOut:
    """The API form of an alert row."""
    values = {k: v for k, v in asdict(alert).items() if k in _OUT_FIELDS}
    values["asset_kind"] = alert.asset_kind.value
    values["severity"] = alert.severity.value
    values["state"] = alert.state.value
    return AlertOut.model_validate(values)


def alert_json(alert: Alert) -> dict[str, Any]:
    """An alert as a JSON-ready dict (WebSocket frames)."""
    return alert_out(alert).model_dump(mode="json")


def actor_of(principal: Principal) -> str:
    """Who is recorded in the alert history for a change made with this token."""
    name = principal.label or f"token {principal.token_id}"
    return f"{principal.role.value}:{name}"


SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
