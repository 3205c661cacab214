-- Complaints, second part (docs/open311.md): tokens for reporting apps, the rate-limit
-- counters every API process shares, re-link scheduling of pending complaints, and the trigger
-- that keeps a complaint's status in step with the alert it opened or joined, whichever path
-- resolves that alert (a crew through the API, the alerts service clearing it, a group alert
-- absorbing it). All SQL touching these objects lives in telemetry/storage/complaints.py.

-- Reporting apps (Open311 clients) hold tokens of their own role: they may only POST requests.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('operator', 'crew', 'admin', 'reporter'));

-- A pending complaint is not linked again before link_after (a collection window that has not
-- ended yet); link_note says why it is pending or has no asset (for operators, not citizens).
ALTER TABLE complaints ADD COLUMN link_after timestamptz;
ALTER TABLE complaints ADD COLUMN link_note text CHECK (length(link_note) <= 500);
ALTER TABLE complaints ADD COLUMN link_attempts integer NOT NULL DEFAULT 0;
CREATE INDEX complaints_due_idx ON complaints (link_after NULLS FIRST, complaint_id)
    WHERE link_state = 'pending';
CREATE INDEX complaints_open_idx ON complaints (requested_at DESC) WHERE status = 'open';

-- Fixed-window counters of POSTed requests, per API key and per client address, shared by
-- every API process (an in-process counter would let N processes accept N times the limit).
CREATE TABLE complaint_rate_counters (
    bucket       text NOT NULL CHECK (length(bucket) BETWEEN 1 AND 200),
    window_start timestamptz NOT NULL,
    hits         integer NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, window_start)
);
CREATE INDEX complaint_rate_counters_window_idx ON complaint_rate_counters (window_start);

-- A resolved alert closes its complaints; an alert resolved by being grouped hands them to the
-- group alert, which closes them in turn. The citizen-facing note is generic on purpose: crew
-- notes are internal and may name people.
CREATE FUNCTION rasd_complaints_follow_alert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.resolution = 'grouped' AND NEW.grouped_into IS NOT NULL THEN
        UPDATE complaints SET alert_id = NEW.grouped_into, updated_at = now()
        WHERE alert_id = NEW.alert_id AND status = 'open';
    ELSE
        UPDATE complaints SET
            status = 'closed',
            closed_at = greatest(NEW.resolved_at, requested_at),
            updated_at = now(),
            status_notes = CASE NEW.resolution
                WHEN 'cleared' THEN 'Resolved: the telemetry shows the problem has ended.'
                ELSE 'Resolved by the municipal services.'
            END
        WHERE alert_id = NEW.alert_id AND status = 'open';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER complaints_follow_alert AFTER UPDATE OF state ON alerts
    FOR EACH ROW WHEN (NEW.state = 'resolved' AND OLD.state <> 'resolved')
    EXECUTE FUNCTION rasd_complaints_follow_alert();
