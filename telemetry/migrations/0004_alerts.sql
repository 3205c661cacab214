-- Alerts (python -m alerts): lifecycle rows, their history and grouped members; the per-worker
-- checkpoint used for catch-up; and the reference geometry the vehicle rules need (route
-- polylines, collection rounds), filled by `python -m alerts routes import FILE.json`.
-- Plain tables on every backend. All SQL touching them lives in telemetry/storage/alerts.py
-- and telemetry/storage/assets.py. See docs/alerts.md.

CREATE TABLE alerts (
    alert_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- A TALQ fault name (lampFailure, ...) or one of the rule kinds (day_burning, ...).
    kind            text NOT NULL CHECK (kind ~ '^[A-Za-z_]{1,64}$'),
    asset_kind      text NOT NULL CHECK (asset_kind IN ('light', 'bus', 'truck')),
    -- Dedup key with kind: a device id, or circuit:<id> / district:<name> for grouped alerts.
    asset_key       text NOT NULL CHECK (length(asset_key) BETWEEN 1 AND 260),
    device_id       text,
    circuit         text,
    district        text,
    device_count    integer NOT NULL DEFAULT 1 CHECK (device_count >= 0),
    severity        text NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    state           text NOT NULL DEFAULT 'open'
                    CHECK (state IN ('open', 'acknowledged', 'resolved')),
    crew            text,
    assignee        text,
    summary         text NOT NULL DEFAULT '',
    details         jsonb NOT NULL DEFAULT '{}',
    lat             double precision,
    lon             double precision,
    -- When the condition began (device time, or the deadline a silence passed), not when the
    -- service noticed it (detected_at): a restart or a catch-up gives the same opened_at.
    opened_at       timestamptz NOT NULL,
    detected_at     timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    acknowledged_by text,
    assigned_at     timestamptz,
    assigned_by     text,
    resolved_at     timestamptz,
    resolved_by     text,
    resolution      text CHECK (resolution IN ('cleared', 'manual', 'grouped')),
    cleared_at      timestamptz,
    grouped_into    bigint REFERENCES alerts (alert_id),
    sla_due_at      timestamptz,
    escalated_at    timestamptz,
    flap_count      integer NOT NULL DEFAULT 0,
    last_flap_at    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'resolved') = (resolved_at IS NOT NULL)),
    CHECK (state = 'open' OR state = 'resolved' OR acknowledged_at IS NOT NULL)
);
-- The dedup key: at most one unresolved alert per asset and kind.
CREATE UNIQUE INDEX alerts_one_open_idx ON alerts (asset_key, kind) WHERE state <> 'resolved';
CREATE INDEX alerts_episodes_idx ON alerts (asset_key, kind, opened_at);
CREATE INDEX alerts_opened_idx ON alerts (opened_at DESC, alert_id DESC);
CREATE INDEX alerts_unresolved_idx ON alerts (district, asset_kind, severity)
    WHERE state <> 'resolved';
CREATE INDEX alerts_device_idx ON alerts (device_id) WHERE device_id IS NOT NULL;
CREATE INDEX alerts_sla_idx ON alerts (sla_due_at)
    WHERE state <> 'resolved' AND escalated_at IS NULL;

-- The lights a grouped alert (circuit_outage, district_outage) lists.
CREATE TABLE alert_members (
    alert_id     bigint NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    device_id    text NOT NULL,
    circuit      text,
    since        timestamptz NOT NULL,
    recovered_at timestamptz,
    PRIMARY KEY (alert_id, device_id)
);
CREATE INDEX alert_members_device_idx ON alert_members (device_id);

-- Who did what and when, one row per change (the NOTIFY payload names the same event).
CREATE TABLE alert_history (
    history_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id   bigint NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    event      text NOT NULL
               CHECK (event IN ('open', 'ack', 'assign', 'resolve', 'escalate', 'update')),
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    note       text,
    state      text NOT NULL,
    severity   text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX alert_history_alert_idx ON alert_history (alert_id, history_id);

-- Receipt time up to which each alerts worker ("<index>of<count>") has committed its work;
-- a restart replays stored readings from a little before it.
CREATE TABLE alert_checkpoints (
    worker          text PRIMARY KEY,
    processed_until timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Route polylines by route name (devices.route of a bus, or the route a position reports):
-- a JSON array of [lat, lon] pairs in driving order.
CREATE TABLE route_shapes (
    route      text PRIMARY KEY CHECK (length(route) BETWEEN 1 AND 64),
    points     jsonb NOT NULL
               CHECK (jsonb_typeof(points) = 'array' AND jsonb_array_length(points) >= 2),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A truck's round (devices.route of the truck, or its device id when that is empty): the
-- points it must visit between shift_start and shift_end, local time in `timezone`.
CREATE TABLE collection_rounds (
    round       text PRIMARY KEY CHECK (length(round) BETWEEN 1 AND 64),
    shift_start time NOT NULL,
    shift_end   time NOT NULL,
    timezone    text NOT NULL DEFAULT 'Africa/Casablanca',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE collection_points (
    round    text NOT NULL REFERENCES collection_rounds (round) ON DELETE CASCADE,
    seq      integer NOT NULL CHECK (seq >= 0),
    lat      double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon      double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    radius_m double precision NOT NULL DEFAULT 40 CHECK (radius_m > 0),
    label    text,
    PRIMARY KEY (round, seq)
);
