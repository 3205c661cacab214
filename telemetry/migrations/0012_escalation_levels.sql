-- Escalation in levels (docs/alerts.md): level 1 when an alert's SLA is breached, further
-- levels at the later times the thresholds file sets per kind. The times are fixed when the
-- alert opens (escalate_at, in order); escalation_level counts the levels reached and
-- next_escalation_at is the time of the next one (NULL: none left). escalated_at stays the time
-- of the first escalation. All SQL touching them lives in telemetry/storage/alerts.py.

ALTER TABLE alerts
    ADD COLUMN escalation_level   integer NOT NULL DEFAULT 0 CHECK (escalation_level >= 0),
    ADD COLUMN escalate_at        timestamptz[] NOT NULL DEFAULT '{}',
    ADD COLUMN next_escalation_at timestamptz;

-- Alerts opened before levels existed had one escalation, at their SLA.
UPDATE alerts SET escalate_at = ARRAY[sla_due_at] WHERE sla_due_at IS NOT NULL;
UPDATE alerts SET escalation_level = 1 WHERE escalated_at IS NOT NULL;
UPDATE alerts SET next_escalation_at = sla_due_at
    WHERE state <> 'resolved' AND escalated_at IS NULL AND sla_due_at IS NOT NULL;

DROP INDEX alerts_sla_idx;
CREATE INDEX alerts_escalation_idx ON alerts (next_escalation_at)
    WHERE state <> 'resolved' AND next_escalation_at IS NOT NULL;
